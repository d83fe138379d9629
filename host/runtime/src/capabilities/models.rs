//! `warden:host/models` for guests, the one path of every model call a guest makes (a
//! tool's, or an agent's own `step`): the route checked against the grant, the access
//! policy's `use-model` decision where the call has one to take (an agent's step, as
//! the run's agent on behalf of its starter), the allowance of the call checked (what
//! is left of an agent run's `max_tokens` and `max_cost`), the budgets (the plugin's,
//! the payer's, the route's) reserved, the router called, the budgets settled, the
//! call kept for the audit ([`ModelCalls`]).

use std::sync::Arc;

use serde_json::json;

use crate::bindings::warden::host::models as wit;
use crate::denial::Denial;
use crate::gate::{Caller, Question, admit_with};
use crate::state::CallState;

use warden_models::{ChatRequest, Message, Payer, Role, RouteError, Router, ToolCall, ToolDef};
use warden_policy::{Action, Resource};

/// What a call's model calls may still spend: the rest of an agent run's `[agent]`
/// `max_tokens` and `max_cost` when its step runs. Each answer's usage is taken off.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Allowance {
    /// Tokens (input + output).
    pub tokens: u64,
    /// US dollars.
    pub cost: f64,
}

/// The models capability's state for one call, set up by whoever starts the call (a
/// tool call, an agent's step) and read back when it ends.
#[derive(Clone, Debug, Default)]
pub struct ModelCalls {
    /// On whose behalf the calls are made: charged to that principal's budget beside the
    /// plugin's (a tool call's caller, or the person who started an agent run).
    pub payer: Option<Arc<str>>,
    /// Who the access policy decides `use-model` on each route for, when the call has
    /// that to decide (an agent's step: the run's agent principal on behalf of its
    /// starter). A tool call's model use was decided with the tool call, and is bounded
    /// by the plugin's grant.
    pub decide_as: Option<Caller>,
    /// What the calls may still spend (an agent run's rest); none: only the budgets.
    pub allowance: Option<Allowance>,
    /// The calls made, for the audit records.
    pub uses: Vec<ModelUse>,
}

impl ModelCalls {
    /// Tokens (input + output) and US dollars the calls used.
    pub fn usage(&self) -> (u64, f64) {
        self.uses.iter().fold((0, 0.0), |(tokens, cost), used| {
            (tokens + used.tokens.0 + used.tokens.1, cost + used.cost)
        })
    }
}

/// One model call a guest made, for the call's audit records.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelUse {
    /// The route.
    pub route: String,
    /// The target that answered, if one did.
    pub target: Option<String>,
    /// Input and output tokens.
    pub tokens: (u64, u64),
    /// US dollars.
    pub cost: f64,
    /// `ok`, or the failure.
    pub outcome: String,
}

fn invalid(what: &str, e: serde_json::Error) -> wit::Error {
    wit::Error::Invalid(format!("{what} is not JSON: {e}"))
}

/// The provider-neutral request of a guest's request (its JSON texts parsed).
pub fn to_request(req: &wit::Request) -> Result<ChatRequest, wit::Error> {
    let messages = req
        .messages
        .iter()
        .map(|m| {
            let tool_calls = m
                .tool_calls
                .iter()
                .map(|c| {
                    Ok(ToolCall {
                        id: c.id.clone(),
                        name: c.name.clone(),
                        arguments: serde_json::from_str(&c.arguments)
                            .map_err(|e| invalid("a tool call's arguments", e))?,
                    })
                })
                .collect::<Result<Vec<_>, wit::Error>>()?;
            Ok(Message {
                role: Some(match m.role {
                    wit::Role::System => Role::System,
                    wit::Role::User => Role::User,
                    wit::Role::Assistant => Role::Assistant,
                    wit::Role::Tool => Role::Tool,
                }),
                content: m.content.clone(),
                tool_calls,
                tool_call_id: m.tool_call_id.clone(),
            })
        })
        .collect::<Result<Vec<_>, wit::Error>>()?;
    let tools = req
        .tools
        .iter()
        .map(|t| {
            Ok(ToolDef {
                name: t.name.clone(),
                description: t.description.clone(),
                parameters: serde_json::from_str(&t.parameters)
                    .map_err(|e| invalid("a tool's parameters", e))?,
            })
        })
        .collect::<Result<Vec<_>, wit::Error>>()?;
    let response_format = req
        .response_format
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| invalid("response-format", e))?;
    Ok(ChatRequest {
        messages,
        tools,
        temperature: req.temperature,
        max_tokens: req.max_tokens,
        stop: req.stop.clone(),
        response_format,
    })
}

impl CallState {
    /// Notes the refusal of a call on `route` (a `capability.denied` record), and the
    /// error the guest sees.
    fn refuse_model(&mut self, route: &str, reason: String) -> String {
        let denial = Denial::new("models", route.to_string(), reason.clone());
        tracing::info!(plugin = %self.plugin, call = self.call_id, %denial, "model route denied");
        self.denials.push(denial);
        reason
    }

    /// The access policy's `use-model` decision on `route`, when the call has one to
    /// take: through the gate, which records a refusal as `access.denied`.
    async fn decide_route(&mut self, route: &str) -> Result<(), String> {
        let Some(caller) = self.models.decide_as.clone() else {
            return Ok(());
        };
        let policy = self.policy.clone();
        let audit = self.audit.clone();
        let plugin = self.plugin.clone();
        let route = route.to_string();
        // Decided on a task of its own, off the guest's fiber: the policy engine guards
        // its recursion by the thread's stack, which a fiber's is not.
        let decided = tokio::spawn(async move {
            let policy: &dyn warden_policy::Decide = match &policy {
                Some(policy) => policy.as_ref(),
                None => &warden_policy::AllowAll,
            };
            let resource = Resource::Route {
                name: route.clone(),
            };
            let context = json!({ "route": route });
            let question = Question {
                caller: &caller,
                action: Action::UseModel,
                resource: &resource,
                context: &context,
                approved_by: None,
                plugin: Some(&plugin),
                may_hold: false,
            };
            admit_with(policy, audit.as_ref(), &question)
                .await
                .map(drop)
                .map_err(|refusal| refusal.message)
        })
        .await;
        decided.unwrap_or_else(|err| Err(format!("the access policy could not decide: {err}")))
    }
}

/// Checks `request` on `route` against `allowance` before it goes out: refused if its
/// prompt and the answer it allows for (its `max_tokens`) would pass the tokens left,
/// or its estimated cost the dollars left; a request without `max_tokens` is capped to
/// what is left.
fn check_allowance(
    router: &Router,
    route: &str,
    request: &mut ChatRequest,
    allowance: Allowance,
) -> Result<(), String> {
    let prompt = ChatRequest {
        max_tokens: Some(0),
        ..request.clone()
    };
    // An unknown route fails at the router, with its own message.
    let Ok(input) = router.estimate(route, &prompt) else {
        return Ok(());
    };
    let room = allowance.tokens.saturating_sub(input.tokens);
    let limit = |what: String| {
        format!(
            "{what}; the run has {} tokens and ${:.4} left of its [agent] max_tokens and max_cost",
            allowance.tokens, allowance.cost
        )
    };
    match request.max_tokens {
        _ if room == 0 => {
            return Err(limit(format!(
                "the request's prompt (about {} tokens) leaves no room for an answer",
                input.tokens
            )));
        }
        None => request.max_tokens = Some(u32::try_from(room).unwrap_or(u32::MAX)),
        Some(max) if u64::from(max) > room => {
            return Err(limit(format!(
                "the request (a prompt of about {} tokens and an answer of up to {max}) would pass the run's token limit",
                input.tokens
            )));
        }
        Some(_) => {}
    }
    if let Ok(estimate) = router.estimate(route, request)
        && estimate.cost > allowance.cost
    {
        return Err(limit(format!(
            "the request may cost ${:.4}, which would pass the run's cost limit",
            estimate.cost
        )));
    }
    Ok(())
}

impl wit::Host for CallState {
    async fn complete(&mut self, req: wit::Request) -> Result<wit::Response, wit::Error> {
        let grant = self.grant.models.clone().unwrap_or_default();
        if !grant.routes.contains(&req.route) {
            return Err(wit::Error::Denied(self.refuse_model(
                &req.route,
                format!(
                    "plugin \"{}\" may not use model route {:?}; an operator grants it with [models] routes = [{:?}]",
                    self.plugin, req.route, req.route
                ),
            )));
        }
        if let Err(refused) = self.decide_route(&req.route).await {
            return Err(wit::Error::Denied(self.refuse_model(&req.route, refused)));
        }
        let Some(router): Option<Arc<Router>> = self.router.clone() else {
            return Err(wit::Error::Failed(
                "this Warden has no model router configured ([models] in warden.toml)".into(),
            ));
        };
        let mut request = to_request(&req)?;
        if let Some(allowance) = self.models.allowance
            && let Err(refused) = check_allowance(&router, &req.route, &mut request, allowance)
        {
            return Err(wit::Error::BudgetExceeded(
                self.refuse_model(&req.route, refused),
            ));
        }
        let payer = Payer {
            plugin: Some((&self.plugin, &grant.budget)),
            principal: self.models.payer.as_deref(),
        };
        let reservation = match router.reserve(&req.route, payer, &request) {
            Ok(reservation) => reservation,
            Err(RouteError::Budget(err)) => return Err(wit::Error::BudgetExceeded(err.message)),
            Err(err) => return Err(wit::Error::Failed(err.to_string())),
        };
        let result = router.complete(&req.route, &request).await;
        match result {
            Ok(answer) => {
                router.settle(reservation, &answer.usage, answer.cost);
                if let Some(allowance) = &mut self.models.allowance {
                    allowance.tokens = allowance
                        .tokens
                        .saturating_sub(answer.usage.input + answer.usage.output);
                    allowance.cost = (allowance.cost - answer.cost).max(0.0);
                }
                self.models.uses.push(ModelUse {
                    route: req.route.clone(),
                    target: Some(answer.target.clone()),
                    tokens: (answer.usage.input, answer.usage.output),
                    cost: answer.cost,
                    outcome: "ok".into(),
                });
                Ok(wit::Response {
                    content: answer.content,
                    tool_calls: answer
                        .tool_calls
                        .into_iter()
                        .map(|c| wit::ToolCall {
                            id: c.id,
                            name: c.name,
                            arguments: c.arguments.to_string(),
                        })
                        .collect(),
                    finish_reason: answer.finish_reason,
                    usage: wit::Usage {
                        input: answer.usage.input,
                        output: answer.usage.output,
                        cached: answer.usage.cached,
                        reasoning: answer.usage.reasoning,
                    },
                    cost: answer.cost,
                    target: answer.target,
                })
            }
            Err(err) => {
                router.settle(reservation, &Default::default(), 0.0);
                self.models.uses.push(ModelUse {
                    route: req.route.clone(),
                    target: None,
                    tokens: (0, 0),
                    cost: 0.0,
                    outcome: err.to_string(),
                });
                Err(wit::Error::Failed(err.to_string()))
            }
        }
    }
}
