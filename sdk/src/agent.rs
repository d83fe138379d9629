//! Agents: the decision logic of an agent run, one step at a time
//! (`warden:plugin/agent`).
//!
//! The host calls the agent's `step` with the run's task, the memo the agent returned
//! last time and the observation of its last action; the agent answers with its next
//! action and a new memo. The host checks the action against the agent's grant and the
//! access policy, executes it (or holds it for a person), records it, and calls `step`
//! again. Every step runs in a fresh instance: whatever the agent needs next time goes
//! into the memo.
//!
//! A hand-written agent implements [`Guest`] and exports it with
//! [`export_agent!`](crate::export_agent):
//!
//! ```ignore
//! use warden_sdk::agent::{self, Guest, Observation, StepInput, StepOutput};
//!
//! struct Echo;
//!
//! impl Guest for Echo {
//!     fn step(input: StepInput) -> Result<StepOutput, String> {
//!         let action = match &input.observation {
//!             Observation::None => agent::call_tool("t1", "notes/search", &serde_json::json!({"query": "refund"}))?.into(),
//!             Observation::Tools(results) => agent::finish(&agent::results_json(results))?,
//!             _ => agent::fail("unexpected observation"),
//!         };
//!         agent::reply(action, &serde_json::Value::Null)
//!     }
//! }
//!
//! warden_sdk::export_agent!(Echo);
//! ```
//!
//! The common agent — a model proposes tool calls, the host runs them, repeat — is
//! ready made: [`ToolLoop`](crate::agent_loop::ToolLoop).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "warden:plugin/agent@0.1.0",
        path: "../wit",
        with: {
            "warden:host/log@0.1.0": crate::host::log,
            "warden:host/memory@0.1.0": crate::host::memory,
            "warden:host/models@0.1.0": crate::host::models,
        },
        pub_export_macro: true,
        export_macro_name: "export_agent",
        default_bindings_module: "warden_sdk::agent::bindings",
    });
}

pub use self::bindings::exports::warden::plugin::agent_policy::{
    Action, Guest, Observation, Question, StepInput, StepOutput, ToolInfo, ToolOutcome, ToolResult,
    ToolUse,
};
pub use crate::host::models::{Message, Request, Response, Role, ToolCall, ToolDef, Usage};

fn to_json(what: &str, value: &impl Serialize) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| format!("{what} does not serialize to JSON: {e}"))
}

/// Reads `text` (JSON) as a `T`, naming `what` in the error.
pub fn parse<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| format!("{what}: {e}"))
}

/// The run's task as a `T`.
pub fn task<T: DeserializeOwned>(input: &StepInput) -> Result<T, String> {
    parse("the task", &input.task)
}

/// The memo as a `T`; at the first step (memo `null`) `T::default()`.
pub fn memo<T: DeserializeOwned + Default>(input: &StepInput) -> Result<T, String> {
    if input.memo.trim() == "null" {
        return Ok(T::default());
    }
    parse("the memo", &input.memo)
}

/// The step's answer: `action`, and `memo` for the next step.
pub fn reply(action: Action, memo: &impl Serialize) -> Result<StepOutput, String> {
    Ok(StepOutput {
        action,
        memo: to_json("the memo", memo)?,
    })
}

/// Finish the run with `result`.
pub fn finish(result: &impl Serialize) -> Result<Action, String> {
    Ok(Action::Finish(to_json("the result", result)?))
}

/// Give up, saying why.
pub fn fail(reason: impl Into<String>) -> Action {
    Action::Fail(reason.into())
}

/// Ask a person `question`; with `schema`, the answer must follow it.
pub fn ask(question: impl Into<String>, schema: Option<&Value>) -> Action {
    Action::Ask(Question {
        text: question.into(),
        schema: schema.map(Value::to_string),
    })
}

/// One tool call: `id` (yours, unique in the action), `tool` as `plugin/tool`, and the
/// arguments keyed by parameter name.
pub fn call_tool(
    id: impl Into<String>,
    tool: impl Into<String>,
    arguments: &impl Serialize,
) -> Result<ToolUse, String> {
    Ok(ToolUse {
        id: id.into(),
        tool: tool.into(),
        arguments: to_json("a tool call's arguments", arguments)?,
    })
}

impl From<ToolUse> for Action {
    fn from(call: ToolUse) -> Self {
        Action::CallTools(vec![call])
    }
}

/// Call several tools, in order.
pub fn call_tools(calls: Vec<ToolUse>) -> Action {
    Action::CallTools(calls)
}

/// Send `messages` to the model route `route`, offering `tools`.
pub fn call_model(route: impl Into<String>, messages: Vec<Message>, tools: Vec<ToolDef>) -> Action {
    Action::CallModel(Request {
        route: route.into(),
        messages,
        tools,
        temperature: None,
        max_tokens: None,
        stop: Vec::new(),
        response_format: None,
    })
}

/// A message of `role` saying `content`.
pub fn message(role: Role, content: impl Into<String>) -> Message {
    Message {
        role,
        content: content.into(),
        tool_calls: Vec::new(),
        tool_call_id: None,
    }
}

/// A tool's outcome as JSON: its result, or `{"error": …}`, `{"denied": …}`,
/// `{"interrupted": true}`.
pub fn outcome_json(outcome: &ToolOutcome) -> Value {
    let parsed =
        |text: &str| serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()));
    match outcome {
        ToolOutcome::Ok(text) => parsed(text),
        ToolOutcome::Error(text) => serde_json::json!({ "error": parsed(text) }),
        ToolOutcome::Denied(reason) => serde_json::json!({ "denied": reason }),
        ToolOutcome::Interrupted => serde_json::json!({ "interrupted": true }),
    }
}

/// Every call's outcome as a JSON object keyed by call id.
pub fn results_json(results: &[ToolResult]) -> Value {
    Value::Object(
        results
            .iter()
            .map(|r| (r.id.clone(), outcome_json(&r.outcome)))
            .collect(),
    )
}

/// The name a model sees for a tool id: `notes/search` → `notes__search` (model APIs
/// allow only `a-z A-Z 0-9 _ -` in names).
pub fn model_name(tool_id: &str) -> String {
    tool_id
        .chars()
        .map(|c| match c {
            '/' => "__".to_string(),
            c if c.is_ascii_alphanumeric() || c == '-' || c == '_' => c.to_string(),
            _ => "_".to_string(),
        })
        .collect()
}

/// The tools of `input` as a model's tool definitions (named by [`model_name`]).
pub fn tool_defs(tools: &[ToolInfo]) -> Vec<ToolDef> {
    tools
        .iter()
        .map(|t| ToolDef {
            name: model_name(&t.id),
            description: t.description.clone(),
            parameters: t.input_schema.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_are_what_model_apis_accept() {
        assert_eq!(model_name("notes/search"), "notes__search");
        assert_eq!(model_name("text/transform.upper"), "text__transform_upper");
    }

    #[test]
    fn outcomes_read_as_json() {
        assert_eq!(
            outcome_json(&ToolOutcome::Ok("{\"a\":1}".into())),
            serde_json::json!({"a": 1})
        );
        assert_eq!(
            outcome_json(&ToolOutcome::Interrupted),
            serde_json::json!({"interrupted": true})
        );
    }
}
