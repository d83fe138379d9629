//! `warden:host/models` for guests: the route checked against the grant, the budgets
//! (the plugin's, the route's) reserved, the router called, the budgets settled, the
//! call kept for the audit.

use std::sync::Arc;

use crate::bindings::warden::host::models as wit;
use crate::denial::Denial;
use crate::state::CallState;

use warden_models::{ChatRequest, Message, Payer, Role, RouteError, Router, ToolCall, ToolDef};

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
    fn refuse_model(&mut self, route: &str, reason: String) -> wit::Error {
        let denial = Denial {
            capability: "models",
            target: route.to_string(),
            reason: reason.clone(),
        };
        tracing::info!(plugin = %self.plugin, call = self.call_id, %denial, "model route denied");
        self.denials.push(denial);
        wit::Error::Denied(reason)
    }
}

impl wit::Host for CallState {
    async fn complete(&mut self, req: wit::Request) -> Result<wit::Response, wit::Error> {
        let grant = self.grant.models.clone().unwrap_or_default();
        if !grant.routes.contains(&req.route) {
            return Err(self.refuse_model(
                &req.route,
                format!(
                    "plugin \"{}\" may not use model route {:?}; an operator grants it with [models] routes = [{:?}]",
                    self.plugin, req.route, req.route
                ),
            ));
        }
        let Some(router): Option<Arc<Router>> = self.router.clone() else {
            return Err(wit::Error::Failed(
                "this Warden has no model router configured ([models] in warden.toml)".into(),
            ));
        };
        let request = to_request(&req)?;
        let payer = Payer {
            plugin: Some((&self.plugin, &grant.budget)),
            principal: self.principal.as_deref(),
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
                self.model_uses.push(ModelUse {
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
                self.model_uses.push(ModelUse {
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
