//! Actions and observations as the host keeps them: JSON values, not text, so that a
//! run's record reads as what happened. Converted from and to the WIT types of
//! `warden:plugin/agent-policy` here, which is also where an agent's output is checked
//! (JSON that does not parse, empty or repeated call ids, a memo over its limit).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use warden_models::{ChatRequest, ChatResponse, ToolCall, Usage};
use warden_runtime::bindings::agent::policy as wit;
use warden_runtime::bindings::models as models_wit;

/// Most tool calls one `call-tools` action may ask for.
pub const MAX_CALLS_PER_STEP: usize = 32;

/// What an agent asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// A request to a model route.
    CallModel {
        /// The route.
        route: String,
        /// The request.
        request: ChatRequest,
    },
    /// Tool calls, in order.
    CallTools {
        /// The calls.
        calls: Vec<ToolUse>,
    },
    /// A question for a person.
    Ask {
        /// What to ask.
        question: String,
        /// A JSON Schema the answer must follow.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schema: Option<Value>,
    },
    /// Done, with a result.
    Finish {
        /// The run's result.
        result: Value,
    },
    /// Given up, with a reason.
    Fail {
        /// Why.
        reason: String,
    },
}

impl Action {
    /// The action's kind as written in records: `call-model`, `call-tools`, …
    pub fn kind(&self) -> &'static str {
        match self {
            Action::CallModel { .. } => "call-model",
            Action::CallTools { .. } => "call-tools",
            Action::Ask { .. } => "ask",
            Action::Finish { .. } => "finish",
            Action::Fail { .. } => "fail",
        }
    }

    /// One line for people: `call-tools notes/search, refunds/issue`.
    pub fn summary(&self) -> String {
        match self {
            Action::CallModel { route, .. } => format!("call-model {route}"),
            Action::CallTools { calls } => format!(
                "call-tools {}",
                calls
                    .iter()
                    .map(|c| c.tool.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Action::Ask { question, .. } => format!("ask {question:?}"),
            Action::Finish { .. } => "finish".into(),
            Action::Fail { reason } => format!("fail: {reason}"),
        }
    }
}

/// One tool call an agent asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolUse {
    /// The agent's id of the call.
    pub id: String,
    /// `plugin/tool`.
    pub tool: String,
    /// The arguments, a JSON object.
    pub arguments: Value,
}

impl ToolUse {
    /// The plugin and the tool, split at the first `/` (checked when the action was
    /// read).
    pub fn split(&self) -> (&str, &str) {
        self.tool.split_once('/').unwrap_or((&self.tool, ""))
    }
}

/// How one tool call ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum ToolOutcome {
    /// The result.
    Ok {
        /// The tool's result.
        result: Value,
    },
    /// The tool failed.
    Error {
        /// Its error value, or `{"code", "message"}` from the host.
        error: Value,
    },
    /// Not run: refused or rejected.
    Denied {
        /// Why.
        reason: String,
    },
    /// Started, not recorded, not idempotent: not run again.
    Interrupted,
}

/// The outcome of one call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The call's id.
    pub id: String,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: ToolOutcome,
}

/// What came of an action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Observation {
    /// Before the first action.
    None,
    /// The model's answer.
    Model {
        /// The answer.
        response: ChatResponse,
    },
    /// Every call's outcome.
    Tools {
        /// In the order asked.
        results: Vec<ToolResult>,
    },
    /// A person's answer.
    Answer {
        /// The answer.
        answer: Value,
    },
    /// Refused.
    Denied {
        /// Why.
        reason: String,
    },
    /// Failed.
    Failed {
        /// Why.
        reason: String,
    },
}

/// What is wrong with an agent's output.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

fn json(what: &str, text: &str) -> Result<Value, Malformed> {
    serde_json::from_str(text)
        .map_err(|e| Malformed(format!("{what} is not JSON ({e}): {}", cut(text))))
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{:?}…", &text[..at]),
        None => format!("{text:?}"),
    }
}

/// Reads an agent's output: the action and the memo, each checked.
pub fn from_output(
    output: wit::StepOutput,
    max_memo_bytes: usize,
) -> Result<(Action, Value), Malformed> {
    if output.memo.len() > max_memo_bytes {
        return Err(Malformed(format!(
            "the memo is {} bytes, the limit is {} KiB ([agent] max_memo_kb)",
            output.memo.len(),
            max_memo_bytes / 1024
        )));
    }
    let memo = json("the memo", &output.memo)?;
    let action = match output.action {
        wit::Action::CallModel(request) => {
            let route = request.route.clone();
            if route.is_empty() {
                return Err(Malformed("call-model names no route".into()));
            }
            let request =
                warden_runtime::capabilities::models::to_request(&request).map_err(|e| {
                    let (models_wit::Error::Invalid(m)
                    | models_wit::Error::Denied(m)
                    | models_wit::Error::BudgetExceeded(m)
                    | models_wit::Error::Failed(m)) = e;
                    Malformed(format!("call-model: {m}"))
                })?;
            Action::CallModel { route, request }
        }
        wit::Action::CallTools(uses) => {
            if uses.is_empty() {
                return Err(Malformed("call-tools asks for no call".into()));
            }
            if uses.len() > MAX_CALLS_PER_STEP {
                return Err(Malformed(format!(
                    "call-tools asks for {} calls, at most {MAX_CALLS_PER_STEP} a step",
                    uses.len()
                )));
            }
            let mut ids = std::collections::BTreeSet::new();
            let mut calls = Vec::with_capacity(uses.len());
            for call in uses {
                if call.id.is_empty() || !ids.insert(call.id.clone()) {
                    return Err(Malformed(format!(
                        "call-tools: call id {:?} is empty or used twice",
                        call.id
                    )));
                }
                match call.tool.split_once('/') {
                    Some((plugin, tool)) if !plugin.is_empty() && !tool.is_empty() => {}
                    _ => {
                        return Err(Malformed(format!(
                            "call-tools: tool {:?} is not of the form plugin/tool",
                            call.tool
                        )));
                    }
                }
                let arguments = json(
                    &format!("the arguments of call {:?}", call.id),
                    &call.arguments,
                )?;
                if !arguments.is_object() {
                    return Err(Malformed(format!(
                        "call-tools: the arguments of call {:?} are not a JSON object",
                        call.id
                    )));
                }
                calls.push(ToolUse {
                    id: call.id,
                    tool: call.tool,
                    arguments,
                });
            }
            Action::CallTools { calls }
        }
        wit::Action::Ask(question) => Action::Ask {
            schema: question
                .schema
                .as_deref()
                .map(|s| json("the question's schema", s))
                .transpose()?,
            question: question.text,
        },
        wit::Action::Finish(result) => Action::Finish {
            result: json("the result", &result)?,
        },
        wit::Action::Fail(reason) => Action::Fail { reason },
    };
    Ok((action, memo))
}

/// The observation as the agent sees it.
pub fn to_wit(observation: &Observation) -> wit::Observation {
    match observation {
        Observation::None => wit::Observation::None,
        Observation::Model { response } => wit::Observation::Model(response_to_wit(response)),
        Observation::Tools { results } => wit::Observation::Tools(
            results
                .iter()
                .map(|r| wit::ToolResult {
                    id: r.id.clone(),
                    outcome: match &r.outcome {
                        ToolOutcome::Ok { result } => wit::ToolOutcome::Ok(result.to_string()),
                        ToolOutcome::Error { error } => wit::ToolOutcome::Error(error.to_string()),
                        ToolOutcome::Denied { reason } => wit::ToolOutcome::Denied(reason.clone()),
                        ToolOutcome::Interrupted => wit::ToolOutcome::Interrupted,
                    },
                })
                .collect(),
        ),
        Observation::Answer { answer } => wit::Observation::Answer(answer.to_string()),
        Observation::Denied { reason } => wit::Observation::Denied(reason.clone()),
        Observation::Failed { reason } => wit::Observation::Failed(reason.clone()),
    }
}

fn response_to_wit(response: &ChatResponse) -> models_wit::Response {
    let Usage {
        input,
        output,
        cached,
        reasoning,
    } = response.usage;
    models_wit::Response {
        content: response.content.clone(),
        tool_calls: response
            .tool_calls
            .iter()
            .map(|c: &ToolCall| models_wit::ToolCall {
                id: c.id.clone(),
                name: c.name.clone(),
                arguments: c.arguments.to_string(),
            })
            .collect(),
        finish_reason: response.finish_reason.clone(),
        usage: models_wit::Usage {
            input,
            output,
            cached,
            reasoning,
        },
        cost: response.cost,
        target: response.target.clone(),
    }
}
