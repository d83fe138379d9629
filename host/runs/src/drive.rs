//! The loop that drives a run: renew the lease, check the time limit, ask the agent for
//! its next action (or take the recorded one whose observation is missing), record it,
//! execute it, record the observation; until the run ends or parks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::action::{self, Action, Observation};
use super::store::{Run, RunStore, Status};
use super::{Progress, RunError, Runner, exec, recorded, step};
use warden_audit::{Event, Outcome};
use warden_config::grant::AgentGrant;
use warden_runtime::bindings::agent::policy::{StepInput, ToolInfo};
use warden_runtime::capabilities::models::Allowance;
use warden_runtime::plugin::Plugin;

impl Runner {
    pub(super) async fn drive_claimed(&self, run: Run) -> Result<(), RunError> {
        let agent = match self.plugins.plugin(&run.agent) {
            Ok(agent) => agent,
            Err(err) => {
                return self
                    .end(
                        &run,
                        Status::Failed,
                        None,
                        Some(format!("the agent cannot be loaded: {err}")),
                    )
                    .await;
            }
        };
        let limits = agent.capabilities.agent.clone().unwrap_or_default();
        let session = Instant::now();
        let tools = self.tool_infos(&agent);
        let active =
            |base: u64| base + u64::try_from(session.elapsed().as_millis()).unwrap_or(u64::MAX);
        let base = run.active_ms;
        // Read once: while this process holds the lease, only its own steps change
        // what the loop uses of the run (its usage and steps, kept up to date by
        // `advance`); what another hand can change is whether it still runs here.
        let mut run = run;
        // The step this loop last observed (none: read it from the store).
        let mut last = None;
        loop {
            // The lease is renewed by the heartbeat (see `heartbeat`); a run another
            // process took over, or a person cancelled, is left here.
            if !self.store.holds(&run.id, &self.owner)? {
                return Ok(());
            }
            let spent = active(base);
            if spent >= limits.max_wall_ms {
                let error = format!(
                    "the run reached its time limit: it ran {spent} ms, the limit is {} ms ([agent] max_wall_ms)",
                    limits.max_wall_ms
                );
                return self.end(&run, Status::Failed, None, Some(error)).await;
            }
            let left = Duration::from_millis(limits.max_wall_ms - spent);
            let stepped = tokio::time::timeout(
                left,
                self.advance(&mut run, &mut last, &agent, &limits, &tools, &active, base),
            )
            .await;
            match stepped {
                Err(_) => {
                    let error = format!(
                        "the run reached its time limit of {} ms ([agent] max_wall_ms) during step {}",
                        limits.max_wall_ms,
                        run.steps.max(1)
                    );
                    return self.end(&run, Status::Failed, None, Some(error)).await;
                }
                Ok(Err(err)) => return Err(err),
                Ok(Ok(Flow::Continue)) => continue,
                Ok(Ok(Flow::Stop)) => return Ok(()),
            }
        }
    }

    /// One turn of the loop: execute the step whose observation is missing, or ask the
    /// agent for the next one and execute that; `run` is kept up to date with what the
    /// step adds (its number, usage), and `last` with the step it observed (taken as
    /// the last step instead of reading it, when there is one).
    #[expect(clippy::too_many_arguments, reason = "one turn's whole context")]
    async fn advance(
        &self,
        run: &mut Run,
        last: &mut Option<Last>,
        agent: &Arc<Plugin>,
        limits: &AgentGrant,
        tools: &[ToolInfo],
        active: &(dyn Fn(u64) -> u64 + Send + Sync),
        base: u64,
    ) -> Result<Flow, RunError> {
        // The record of the step begun in this turn, handed to the audit log and
        // waited for before the step's action runs or its observation is recorded.
        let mut begun = None;
        let mut held = None;
        let mut first = None;
        let known = match last.take() {
            Some(known) => known,
            None => match self.store.last_step(&run.id)? {
                None => Last::None,
                Some(step) => match step.observation {
                    None => Last::Unobserved {
                        n: step.n,
                        action: step.action,
                    },
                    Some(observation) => Last::Observed {
                        n: step.n,
                        observation,
                        memo: step.memo,
                    },
                },
            },
        };
        let (n, action, memo) = match known {
            Last::Unobserved { n, action } => (n, action, None),
            last => {
                let n = match &last {
                    Last::Observed { n, .. } => n + 1,
                    _ => 1,
                };
                if n > limits.max_steps {
                    let error = format!(
                        "the run reached its step limit: {} steps ([agent] max_steps)",
                        limits.max_steps
                    );
                    self.end(run, Status::Failed, None, Some(error)).await?;
                    return Ok(Flow::Stop);
                }
                let (observation, memo) = match last {
                    Last::Observed {
                        observation, memo, ..
                    } => (observation, memo),
                    _ => (Observation::None, Value::Null),
                };
                let input = StepInput {
                    run: run.id.clone(),
                    step: n,
                    task: run.task.to_string(),
                    memo: memo.to_string(),
                    observation: action::to_wit(&observation),
                    tools: tools.to_vec(),
                };
                let max_memo =
                    usize::try_from(limits.max_memo_kb.saturating_mul(1024)).unwrap_or(usize::MAX);
                let allowance = Allowance {
                    tokens: limits.max_tokens.saturating_sub(run.tokens),
                    cost: (limits.max_cost - run.cost).max(0.0),
                };
                let (output, used) = step::call(&self.runtime, agent, run, &input, allowance).await;
                // The step's own model calls count towards the run's limits, whatever
                // became of the step.
                if used.tokens > 0 || used.cost > 0.0 {
                    self.store.add_usage(&run.id, used.tokens, used.cost)?;
                    run.tokens += used.tokens;
                    run.cost += used.cost;
                    if let Some(error) = over_limits(limits, run.tokens, run.cost) {
                        self.end_now(run, error).await?;
                        return Ok(Flow::Stop);
                    }
                }
                let (action, memo) = match output {
                    Ok(output) => match action::from_output(output, max_memo) {
                        Ok(decided) => decided,
                        Err(malformed) => {
                            let error = format!(
                                "agent \"{}\" returned a malformed action at step {n}: {malformed}",
                                run.agent
                            );
                            self.end(run, Status::Failed, None, Some(error)).await?;
                            return Ok(Flow::Stop);
                        }
                    },
                    Err(err) => {
                        let error = format!("agent \"{}\" failed at step {n}: {err}", run.agent);
                        self.end(run, Status::Failed, None, Some(error)).await?;
                        return Ok(Flow::Stop);
                    }
                };
                let event = Event::new("run.step", format!("agent:{}", run.agent))
                    .plugin(run.agent.clone())
                    .outcome(Outcome::Ok)
                    .field("run", run.id.clone())
                    .field("step", n)
                    .field("action", action.kind())
                    .field("summary", action.summary());
                // A step that calls tools: its first call is checked before the step
                // is recorded, and the step's record goes to the log with that
                // decision while the step is committed (two writes at once); a call
                // allowed to run is recorded as started with the step.
                let first_call = match &action {
                    Action::CallTools { calls } => calls.first(),
                    _ => None,
                };
                let mut started = false;
                let mut event = Some(event);
                if let Some(call) = first_call {
                    held = event.take();
                    let check = self.check(run, agent, n, call, &mut held).await?;
                    started = matches!(check, exec::Check::Run(..));
                    first = Some(check);
                }
                if !self.store.begin_step(
                    &run.id,
                    &self.owner,
                    n,
                    &action,
                    &memo,
                    started,
                    active(base),
                )? {
                    return Ok(Flow::Stop);
                }
                run.steps = n;
                if let Some(event) = event {
                    begun = self.record_soon(event)?;
                }
                (n, action, Some(memo))
            }
        };
        let outcome = self
            .execute(run, agent, limits, n, &action, &mut held, first)
            .await;
        if let Some(event) = held {
            begun = self.record_soon(event)?;
        }
        // Records handed over later (the call's decision) were written after this one.
        recorded(begun).await?;
        match outcome? {
            exec::Outcome::Observed {
                observation,
                done,
                tokens,
                cost,
            } => {
                let ended = self.store.end_step(
                    &run.id,
                    &self.owner,
                    n,
                    &observation,
                    &done,
                    tokens,
                    cost,
                    active(base),
                )?;
                if !ended {
                    // Taken over by another process meanwhile: its step now.
                    return Ok(Flow::Stop);
                }
                self.observe(run, n, &action, Some(&observation));
                if let Some(memo) = memo {
                    *last = Some(Last::Observed {
                        n,
                        observation,
                        memo,
                    });
                }
                run.tokens += tokens;
                run.cost += cost;
                if let Some(error) = over_limits(limits, run.tokens, run.cost) {
                    self.end_now(run, error).await?;
                    return Ok(Flow::Stop);
                }
                Ok(Flow::Continue)
            }
            exec::Outcome::Parked => {
                self.store.park(&run.id, &self.owner, active(base))?;
                self.observe(run, n, &action, None);
                Ok(Flow::Stop)
            }
            exec::Outcome::End {
                status,
                result,
                error,
            } => {
                self.observe(run, n, &action, None);
                self.end(run, status, result, error).await?;
                Ok(Flow::Stop)
            }
        }
    }

    fn observe(&self, run: &Run, step: u32, action: &Action, observation: Option<&Observation>) {
        if let Some(observer) = &self.observer {
            observer(&Progress {
                run: run.id.clone(),
                step,
                action: action.clone(),
                observation: observation.cloned(),
            });
        }
    }

    /// Ends `run` failed, with the usage recorded since it was read.
    async fn end_now(&self, run: &Run, error: String) -> Result<(), RunError> {
        let run = self.store.run(&run.id)?.unwrap_or_else(|| run.clone());
        self.end(&run, Status::Failed, None, Some(error)).await
    }

    async fn end(
        &self,
        run: &Run,
        status: Status,
        result: Option<Value>,
        error: Option<String>,
    ) -> Result<(), RunError> {
        if !self.store.finish(
            &run.id,
            Some(&self.owner),
            status,
            result.as_ref(),
            error.as_deref(),
        )? {
            return Ok(());
        }
        if let Some(error) = &error {
            tracing::info!(run = %run.id, agent = %run.agent, "run {}: {error}", status.as_str());
        }
        let run = self.store.run(&run.id)?.unwrap_or_else(|| run.clone());
        let mut event = Event::new("run.end", format!("agent:{}", run.agent))
            .plugin(run.agent.clone())
            .outcome(if status == Status::Finished {
                Outcome::Ok
            } else {
                Outcome::Error
            })
            .field("run", run.id.clone())
            .field("status", status.as_str())
            .field("steps", run.steps)
            .field("tokens", run.tokens)
            .field("cost", run.cost)
            .field("active_ms", run.active_ms);
        if let Some(result) = &result {
            event = event.field("result", self.payload(result));
        }
        if let Some(error) = error {
            event = event.field("error", error);
        }
        self.record(event).await
    }

    /// The tools `agent`'s grant lets it call, as its steps are told.
    fn tool_infos(&self, agent: &Plugin) -> Vec<ToolInfo> {
        let Some(grant) = agent.capabilities.tools.as_ref() else {
            return Vec::new();
        };
        let mut infos = Vec::new();
        for name in self.plugins.names() {
            if name == *agent.name || !grant.allows_plugin(&name) {
                continue;
            }
            let Ok(plugin) = self.plugins.plugin(&name) else {
                continue;
            };
            for tool in &plugin.tools {
                if grant.allows(&name, &tool.name) {
                    infos.push(ToolInfo {
                        id: format!("{name}/{}", tool.name),
                        description: tool.description.clone(),
                        input_schema: tool.input_schema.to_string(),
                    });
                }
            }
        }
        infos
    }
}

/// A run's last step, as the loop's next turn starts from it.
enum Last {
    /// No step yet.
    None,
    /// Recorded, its observation missing: the process stopped while executing it.
    Unobserved { n: u32, action: Action },
    /// Observed: the next step is given its observation and memo.
    Observed {
        n: u32,
        observation: Observation,
        memo: Value,
    },
}

/// What the loop does after a turn.
enum Flow {
    Continue,
    Stop,
}

/// Why a run that used `tokens` and `cost` in all is past its limits, if it is.
fn over_limits(limits: &AgentGrant, tokens: u64, cost: f64) -> Option<String> {
    if tokens > limits.max_tokens {
        return Some(format!(
            "the run reached its token limit: it used {tokens} tokens, the limit is {} ([agent] max_tokens)",
            limits.max_tokens
        ));
    }
    if cost > limits.max_cost {
        return Some(format!(
            "the run reached its cost limit: it spent ${cost:.4}, the limit is ${} ([agent] max_cost)",
            limits.max_cost
        ));
    }
    None
}

/// Renews `owner`'s lease of run `id` every third of `lease` until aborted, or until
/// the lease cannot be renewed (the run ended, parked or was taken over): a step that
/// takes longer than the lease keeps its run.
pub(super) fn heartbeat(
    store: Arc<RunStore>,
    id: &str,
    owner: &str,
    lease: Duration,
) -> tokio::task::JoinHandle<()> {
    let (id, owner) = (id.to_string(), owner.to_string());
    tokio::spawn(async move {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(lease / 3).await;
            let (store, id2, owner2) = (store.clone(), id.clone(), owner.clone());
            let claimed =
                tokio::task::spawn_blocking(move || store.claim(&id2, &owner2, lease, None)).await;
            match claimed {
                Ok(Ok(true)) => renewed = Instant::now(),
                Ok(Ok(false)) => return,
                Ok(Err(err)) => {
                    tracing::warn!(run = %id, "renewing the run's lease ({} ms since the last renewal): {}", renewed.elapsed().as_millis(), warden_runtime::error::Chain(&err));
                }
                Err(_) => return,
            }
        }
    })
}
