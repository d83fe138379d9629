//! Executing one action of a run: each tool call and model call checked against the
//! agent's grant and the access policy (principal `agent:<name>` on behalf of who
//! started the run), then executed, held for a person, or refused.

use std::sync::Arc;

use serde_json::{Value, json};

use super::action::{Action, Observation, ToolOutcome, ToolResult, ToolUse};
use super::store::{CallState, Decision as Verdict, NewApproval, Run, Status};
use super::{RunError, Runner, agent_principal, decision_name, recorded};
use warden_audit::{Event, Outcome as AuditOutcome, Pending};
use warden_config::grant::AgentGrant;
use warden_models::ChatRequest;
use warden_policy::{self, Decision, Resource};
use warden_runtime::error::CallError;
use warden_runtime::plugin::Plugin;
use warden_runtime::{CallOptions, Caller, Via};

/// What came of executing an action.
pub(super) enum Outcome {
    /// An observation to record, with the model use it cost, and the outcomes of the
    /// step's calls not yet marked done (recorded with the observation, in one commit).
    Observed {
        observation: Observation,
        done: Vec<(u32, ToolOutcome)>,
        tokens: u64,
        cost: f64,
    },
    /// Held for a person: the run parks.
    Parked,
    /// The run ends.
    End {
        status: Status,
        result: Option<Value>,
        error: Option<String>,
    },
}

fn observed(observation: Observation) -> Outcome {
    Outcome::Observed {
        observation,
        done: Vec::new(),
        tokens: 0,
        cost: 0.0,
    }
}

/// What the checks of one tool call allow.
pub(super) enum Check {
    Refuse(ToolOutcome),
    Approve(Vec<String>),
    /// Run it, once the allowing decision's record (handed to the log) is on disk.
    Run(Arc<Plugin>, Option<Pending>),
}

impl Runner {
    #[expect(clippy::too_many_arguments, reason = "one step's whole context")]
    pub(super) async fn execute(
        &self,
        run: &Run,
        agent: &Arc<Plugin>,
        limits: &AgentGrant,
        n: u32,
        action: &Action,
        held: &mut Option<Event>,
        first: Option<Check>,
    ) -> Result<Outcome, RunError> {
        match action {
            Action::Finish { result } => Ok(Outcome::End {
                status: Status::Finished,
                result: Some(result.clone()),
                error: None,
            }),
            Action::Fail { reason } => Ok(Outcome::End {
                status: Status::Failed,
                result: None,
                error: Some(format!("the agent gave up: {reason}")),
            }),
            Action::CallModel { route, request } => {
                self.call_model(run, agent, limits, n, route, request).await
            }
            Action::CallTools { .. } => self.call_tools(run, agent, n, held, first).await,
            Action::Ask { question, schema } => self.ask(run, n, question, schema.as_ref()).await,
        }
    }

    async fn call_model(
        &self,
        run: &Run,
        agent: &Plugin,
        limits: &AgentGrant,
        n: u32,
        route: &str,
        request: &ChatRequest,
    ) -> Result<Outcome, RunError> {
        let granted = agent
            .capabilities
            .models
            .as_ref()
            .is_some_and(|m| m.routes.iter().any(|r| r == route));
        if !granted {
            return Ok(observed(Observation::Denied {
                reason: format!(
                    "agent \"{}\" may not use model route {route:?}; an operator grants it with [models] routes = [{route:?}] in its grant",
                    run.agent
                ),
            }));
        }
        let caller = Caller::new(agent_principal(run), Via::Run);
        let principal = &caller.principal;
        let resource = Resource::Route {
            name: route.to_string(),
        };
        let context = json!({ "route": route });
        // Through the gate: a refusal (a deny, or a hold, which a model call cannot wait
        // for) is on the record as `access.denied`, and below in the run's journal.
        let decision = self
            .runtime
            .admit(
                &caller,
                warden_policy::Action::UseModel,
                &resource,
                &context,
            )
            .await
            .unwrap_or_else(|refusal| refusal.decision);
        let event = || {
            Event::new("model.call", principal.id.clone())
                .plugin(run.agent.clone())
                .field("run", run.id.clone())
                .field("step", n)
                .field("route", route)
                .field("decision", decision_name(&decision))
                .field("policies", json!(decision.policies()))
        };
        let refused = match &decision {
            Decision::Allow { .. } => None,
            Decision::Deny { reason, .. } => Some(format!(
                "the access policy refuses model route {route:?} to {}: {reason}",
                principal.id
            )),
            Decision::RequireApproval { policies } => Some(format!(
                "model route {route:?} needs a person's approval ({}); agent runs ask people about tool calls, not model calls",
                policies.join(", ")
            )),
        };
        if let Some(reason) = refused {
            self.record(
                event()
                    .outcome(AuditOutcome::Denied)
                    .field("reason", reason.clone()),
            )
            .await?;
            return Ok(observed(Observation::Denied { reason }));
        }
        let remaining = limits.max_tokens.saturating_sub(run.tokens);
        if remaining == 0 {
            return Ok(Outcome::End {
                status: Status::Failed,
                result: None,
                error: Some(format!(
                    "the run reached its token limit: it used {} tokens, the limit is {} ([agent] max_tokens)",
                    run.tokens, limits.max_tokens
                )),
            });
        }
        let Some(router) = self.runtime.router().cloned() else {
            return Ok(observed(Observation::Failed {
                reason: "this Warden has no model router configured ([models] in warden.toml)"
                    .into(),
            }));
        };
        let mut request = request.clone();
        let cap = u32::try_from(remaining).unwrap_or(u32::MAX);
        request.max_tokens = Some(request.max_tokens.map_or(cap, |m| m.min(cap)));
        let answer = router.complete(route, &request).await;
        match answer {
            Ok(response) => {
                let tokens = response.usage.input + response.usage.output;
                let cost = response.cost;
                self.record(
                    event()
                        .outcome(AuditOutcome::Ok)
                        .field("target", response.target.clone())
                        .field("input_tokens", response.usage.input)
                        .field("output_tokens", response.usage.output)
                        .field("cost", cost),
                )
                .await?;
                Ok(Outcome::Observed {
                    observation: Observation::Model { response },
                    done: Vec::new(),
                    tokens,
                    cost,
                })
            }
            Err(err) => {
                let reason = err.to_string();
                self.record(
                    event()
                        .outcome(AuditOutcome::Error)
                        .field("error", reason.clone()),
                )
                .await?;
                Ok(observed(Observation::Failed { reason }))
            }
        }
    }

    /// Runs the calls of step `n` not yet done; `held` is the step's own record, not
    /// yet handed to the log: it goes with the first call's decision. `first`: the
    /// checks of the first call, made before the step was recorded (a call they let
    /// run was recorded as started with the step).
    async fn call_tools(
        &self,
        run: &Run,
        agent: &Plugin,
        n: u32,
        held: &mut Option<Event>,
        mut first: Option<Check>,
    ) -> Result<Outcome, RunError> {
        // The outcome of the last call that ended, not yet marked done: marked before
        // anything else happens, or (the step's last call) with the observation.
        let mut unsaved: Option<(u32, ToolOutcome)> = None;
        let calls = self.store.calls(&run.id, n)?;
        // Each call's outcome: as stored, until this turn gives it one (every call the
        // loop below gets past has one).
        let mut results: Vec<(u32, ToolResult)> = calls
            .iter()
            .map(|c| {
                let outcome = c.outcome.clone().unwrap_or(ToolOutcome::Interrupted);
                (
                    c.idx,
                    ToolResult {
                        id: c.call.id.clone(),
                        outcome,
                    },
                )
            })
            .collect();
        let put = |results: &mut Vec<(u32, ToolResult)>, idx: u32, outcome: ToolOutcome| {
            if let Some((_, result)) = results.iter_mut().find(|(i, _)| *i == idx) {
                result.outcome = outcome;
            }
        };
        for call in calls {
            if let Some((idx, outcome)) = unsaved.take() {
                self.store
                    .set_call(&run.id, n, idx, CallState::Done, Some(&outcome))?;
                put(&mut results, idx, outcome);
            }
            let idx = call.idx;
            let mut done = |outcome: ToolOutcome| unsaved = Some((idx, outcome));
            // The first call's checks made before the step was recorded: it is pending
            // whatever the store says (recorded as started if they let it run).
            let checked = if idx == 0 { first.take() } else { None };
            let state = if checked.is_some() {
                CallState::Pending
            } else {
                call.state
            };
            match state {
                CallState::Done => {}
                CallState::Pending => {
                    let check = match checked {
                        Some(check) => check,
                        None => self.check(run, agent, n, &call.call, held).await?,
                    };
                    match check {
                        Check::Refuse(outcome) => done(outcome),
                        Check::Approve(policies) => {
                            let approval = self.store.request_approval(&NewApproval {
                                run,
                                step: n,
                                call: Some((idx, &call.call)),
                                question: None,
                                policies: &policies,
                            })?;
                            self.store.set_call(
                                &run.id,
                                n,
                                idx,
                                CallState::AwaitingApproval,
                                None,
                            )?;
                            self.record(
                                Event::new("approval.request", format!("agent:{}", run.agent))
                                    .plugin(run.agent.clone())
                                    .outcome(AuditOutcome::Ok)
                                    .field("approval", approval.id.clone())
                                    .field("run", run.id.clone())
                                    .field("step", n)
                                    .field("tool", call.call.tool.clone())
                                    .field("arguments", self.payload(&call.call.arguments))
                                    .field("policies", json!(policies)),
                            )
                            .await?;
                            return Ok(Outcome::Parked);
                        }
                        Check::Run(plugin, decided) => {
                            // Checked before the step was recorded: marked started with it.
                            let started = call.state == CallState::Started;
                            let outcome = self
                                .run_call(
                                    run,
                                    n,
                                    idx,
                                    &plugin,
                                    &call.call,
                                    &call.call.arguments,
                                    None,
                                    decided,
                                    started,
                                )
                                .await?;
                            done(outcome);
                        }
                    }
                }
                CallState::AwaitingApproval => {
                    let approval = self.store.approval_of(&run.id, n, Some(idx))?;
                    let Some(approval) = approval else {
                        // Crashed between the approval and the call's state: ask again.
                        self.store
                            .set_call(&run.id, n, idx, CallState::Pending, None)?;
                        return Box::pin(self.call_tools(run, agent, n, held, None)).await;
                    };
                    match approval.status {
                        Verdict::Pending => return Ok(Outcome::Parked),
                        Verdict::Rejected | Verdict::Cancelled => done(ToolOutcome::Denied {
                            reason: format!(
                                "a person rejected the call ({}): {}",
                                approval.decided_by.as_deref().unwrap_or("someone"),
                                approval.reason.as_deref().unwrap_or("no reason given")
                            ),
                        }),
                        Verdict::Approved => {
                            let arguments = approval
                                .edited
                                .clone()
                                .unwrap_or_else(|| call.call.arguments.clone());
                            match self.granted(run, agent, &call.call) {
                                Err(outcome) => done(outcome),
                                Ok(plugin) => {
                                    // An edit is a new request: the gate decides it again
                                    // with the edited arguments (a forbid still wins).
                                    let approver =
                                        approval.decided_by.as_deref().unwrap_or("someone");
                                    let outcome = self
                                        .run_call(
                                            run,
                                            n,
                                            idx,
                                            &plugin,
                                            &call.call,
                                            &arguments,
                                            Some(approver),
                                            None,
                                            false,
                                        )
                                        .await?;
                                    done(outcome);
                                }
                            }
                        }
                    }
                }
                CallState::Started => {
                    let plugin = self.granted(run, agent, &call.call);
                    let again = plugin
                        .as_ref()
                        .is_ok_and(|p| p.annotations(call.call.split().1).idempotent);
                    match plugin {
                        Ok(plugin) if again => {
                            tracing::info!(run = %run.id, step = n, tool = %call.call.tool, "running an interrupted idempotent call again");
                            let approval = self.store.approval_of(&run.id, n, Some(idx))?;
                            let arguments = match &approval {
                                Some(a) => a
                                    .edited
                                    .clone()
                                    .unwrap_or_else(|| call.call.arguments.clone()),
                                None => call.call.arguments.clone(),
                            };
                            let approver = approval.as_ref().and_then(|a| a.decided_by.as_deref());
                            let outcome = self
                                .run_call(
                                    run, n, idx, &plugin, &call.call, &arguments, approver, None,
                                    false,
                                )
                                .await?;
                            done(outcome);
                        }
                        _ => {
                            tracing::warn!(run = %run.id, step = n, tool = %call.call.tool, "a call was interrupted before its result was recorded; not running it again");
                            self.record(
                                Event::new("run.interrupted", format!("agent:{}", run.agent))
                                    .plugin(call.call.split().0)
                                    .tool(call.call.split().1)
                                    .outcome(AuditOutcome::Error)
                                    .field("run", run.id.clone())
                                    .field("step", n)
                                    .field("call", call.call.id.clone()),
                            )
                            .await?;
                            done(ToolOutcome::Interrupted);
                        }
                    }
                }
            }
        }
        if let Some((idx, outcome)) = &unsaved {
            put(&mut results, *idx, outcome.clone());
        }
        Ok(Outcome::Observed {
            observation: Observation::Tools {
                results: results.into_iter().map(|(_, result)| result).collect(),
            },
            done: unsaved.into_iter().collect(),
            tokens: 0,
            cost: 0.0,
        })
    }

    /// The tool's plugin, if the agent's grant allows the tool and it exists.
    fn granted(
        &self,
        run: &Run,
        agent: &Plugin,
        call: &ToolUse,
    ) -> Result<Arc<Plugin>, ToolOutcome> {
        let (plugin, tool) = call.split();
        let allowed = agent
            .capabilities
            .tools
            .as_ref()
            .is_some_and(|t| t.allows(plugin, tool));
        if !allowed {
            let patterns = agent
                .capabilities
                .tools
                .as_ref()
                .map(|t| t.allow.join(", "))
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "none".into());
            return Err(ToolOutcome::Denied {
                reason: format!(
                    "agent \"{}\" may not call {} (its grant's [tools] allow: {patterns}); an operator adds it to the agent's grant",
                    run.agent, call.tool
                ),
            });
        }
        let unknown = |message: String| ToolOutcome::Error {
            error: json!({ "code": "unknown-tool", "message": message }),
        };
        let loaded = self.plugins.plugin(plugin).map_err(unknown)?;
        if let Some(withheld) = loaded.withheld(tool) {
            return Err(ToolOutcome::Error {
                error: json!({ "code": "withheld", "message": withheld.reason(plugin) }),
            });
        }
        if loaded.tool(tool).is_none() {
            return Err(unknown(format!(
                "plugin \"{plugin}\" has no tool \"{tool}\" (its tools: {})",
                loaded
                    .tools
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(loaded)
    }

    /// The grant, then the access policy, for one call; its decision is recorded
    /// after `held` (the step's own record, if not yet handed over), in one
    /// transaction. (A deny's `access.denied`, written by the gate, comes first.)
    pub(super) async fn check(
        &self,
        run: &Run,
        agent: &Plugin,
        n: u32,
        call: &ToolUse,
        held: &mut Option<Event>,
    ) -> Result<Check, RunError> {
        let principal = agent_principal(run);
        let plugin = match self.granted(run, agent, call) {
            Ok(plugin) => plugin,
            Err(outcome) => {
                if let ToolOutcome::Denied { reason } = &outcome {
                    self.record_after(
                        held,
                        Event::new("run.decision", principal.id.clone())
                            .plugin(call.split().0)
                            .tool(call.split().1)
                            .outcome(AuditOutcome::Denied)
                            .field("run", run.id.clone())
                            .field("step", n)
                            .field("call", call.id.clone())
                            .field("decision", "deny")
                            .field("reason", reason.clone())
                            .field("by", "grant"),
                    )
                    .await?;
                } else if let Some(event) = held.take() {
                    self.record(event).await?;
                }
                return Ok(Check::Refuse(outcome));
            }
        };
        let (plugin_name, tool) = call.split();
        let resource = Resource::Tool {
            plugin: plugin_name.to_string(),
            tool: tool.to_string(),
            annotations: plugin.annotations(tool),
            signer: plugin.signer.clone(),
        };
        // Through the gate: a deny is on the record as `access.denied`; a hold parks the
        // run. Either way the decision goes into the run's journal below.
        let caller = Caller::new(principal.clone(), Via::Run);
        let decision = self
            .runtime
            .decide(
                &caller,
                warden_policy::Action::CallTool,
                &resource,
                &call.arguments,
            )
            .await;
        let mut event = Event::new("run.decision", principal.id.clone())
            .plugin(plugin_name)
            .tool(tool)
            .field("run", run.id.clone())
            .field("step", n)
            .field("call", call.id.clone())
            .field("decision", decision_name(&decision))
            .field("policies", json!(decision.policies()))
            .field("by", "policy");
        let check = match decision {
            Decision::Allow { .. } => {
                // Written while the call is marked started; waited for before it runs.
                let decided = self.record_soon_after(held, event.outcome(AuditOutcome::Ok))?;
                return Ok(Check::Run(plugin, decided));
            }
            Decision::RequireApproval { ref policies } => {
                event = event.outcome(AuditOutcome::Ok);
                Check::Approve(policies.clone())
            }
            Decision::Deny {
                ref reason,
                ref policies,
            } => {
                event = event
                    .outcome(AuditOutcome::Denied)
                    .field("reason", reason.clone());
                Check::Refuse(ToolOutcome::Denied {
                    reason: format!(
                        "the access policy refuses {} to {}: {reason}{}",
                        call.tool,
                        principal.id,
                        if policies.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", policies.join(", "))
                        }
                    ),
                })
            }
        };
        self.record_after(held, event).await?;
        Ok(check)
    }

    /// Marks the call started (unless it is `started` already; not at all, and the call
    /// is not made, once another process holds the run), waits for the record
    /// of the decision that allowed it (`decided`, handed to the log before), runs it
    /// through the gate as the run's agent on behalf of its starter (`approved_by`:
    /// the person who approved a held call), and returns its outcome (to be marked
    /// done).
    #[expect(clippy::too_many_arguments, reason = "one call's whole context")]
    async fn run_call(
        &self,
        run: &Run,
        n: u32,
        idx: u32,
        plugin: &Plugin,
        call: &ToolUse,
        arguments: &Value,
        approved_by: Option<&str>,
        decided: Option<Pending>,
        started: bool,
    ) -> Result<ToolOutcome, RunError> {
        if !started && !self.store.start_call(&run.id, &self.owner, n, idx)? {
            // Another process took the run over (this one's lease ran out): the call is
            // its to make, not this one's.
            tracing::warn!(run = %run.id, step = n, tool = %call.tool, "the run was taken over by another process; not running the call here");
            return Ok(ToolOutcome::Interrupted);
        }
        recorded(decided).await?;
        let caller = Caller::new(agent_principal(run), Via::Run);
        let options = CallOptions {
            approved_by,
            ..CallOptions::default()
        };
        let result = self
            .runtime
            .call_tool(&caller, plugin, call.split().1, arguments, options)
            .await;
        Ok(match result {
            Ok(result) => ToolOutcome::Ok { result },
            Err(CallError::Refused { refusal, .. }) => ToolOutcome::Denied {
                reason: refusal.message,
            },
            Err(CallError::ToolError { error, .. }) => ToolOutcome::Error { error },
            Err(err) => ToolOutcome::Error {
                error: json!({ "code": err.code(), "message": err.to_string() }),
            },
        })
    }

    async fn ask(
        &self,
        run: &Run,
        n: u32,
        question: &str,
        schema: Option<&Value>,
    ) -> Result<Outcome, RunError> {
        match self.store.approval_of(&run.id, n, None)? {
            None => {
                let approval = self.store.request_approval(&NewApproval {
                    run,
                    step: n,
                    call: None,
                    question: Some((question, schema)),
                    policies: &[],
                })?;
                self.record(
                    Event::new("approval.request", format!("agent:{}", run.agent))
                        .plugin(run.agent.clone())
                        .outcome(AuditOutcome::Ok)
                        .field("approval", approval.id)
                        .field("run", run.id.clone())
                        .field("step", n)
                        .field("question", question),
                )
                .await?;
                Ok(Outcome::Parked)
            }
            Some(approval) => Ok(match approval.status {
                Verdict::Pending => Outcome::Parked,
                Verdict::Approved => observed(Observation::Answer {
                    answer: approval.answer.unwrap_or(Value::Null),
                }),
                Verdict::Rejected | Verdict::Cancelled => observed(Observation::Denied {
                    reason: format!(
                        "{} declined to answer: {}",
                        approval.decided_by.as_deref().unwrap_or("someone"),
                        approval.reason.as_deref().unwrap_or("no reason given")
                    ),
                }),
            }),
        }
    }
}
