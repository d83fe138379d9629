//! The ready-made agent loop: a model proposes tool calls, the host runs them, the
//! results go back to the model, until it answers without a tool call.
//!
//! ```ignore
//! use warden_sdk::agent::{Guest, StepInput, StepOutput};
//! use warden_sdk::agent_loop::ToolLoop;
//!
//! struct Helper;
//!
//! impl Guest for Helper {
//!     fn step(input: StepInput) -> Result<StepOutput, String> {
//!         ToolLoop::new("smart")
//!             .system("You answer support questions. Search the notes first.")
//!             .step(&input)
//!     }
//! }
//!
//! warden_sdk::export_agent!(Helper);
//! ```
//!
//! The conversation is the memo. The task becomes the first user message (a JSON
//! string as it is, anything else as JSON text); the model is offered every tool the
//! host says the agent may call (or those [`ToolLoop::tools`] names); a tool call the
//! model makes of a tool it was not offered is answered with an error without a step.
//! The run finishes with `{"answer": TEXT}` when the model answers without tool calls,
//! and fails when the model route is refused or fails.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::agent::{
    self, Action, Message, Observation, Role, StepInput, StepOutput, ToolCall, ToolUse,
};

/// The loop's settings.
#[derive(Clone, Debug)]
pub struct ToolLoop {
    route: String,
    system: Option<String>,
    tools: Option<Vec<String>>,
    max_tokens: Option<u32>,
}

/// One message as kept in the memo.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text.
    #[serde(default)]
    pub content: String,
    /// An assistant's tool calls: (id, model's tool name, arguments JSON text).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<(String, String, String)>,
    /// For a tool message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

/// The loop's memo: the conversation so far.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Conversation {
    /// Every message, in order.
    pub turns: Vec<Turn>,
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

fn role_of(name: &str) -> Role {
    match name {
        "system" => Role::System,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        _ => Role::User,
    }
}

impl Turn {
    fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role: role_name(role).into(),
            content: content.into(),
            ..Self::default()
        }
    }

    fn tool(call_id: &str, content: String) -> Self {
        Self {
            tool_call_id: Some(call_id.to_string()),
            ..Self::new(Role::Tool, content)
        }
    }

    fn message(&self) -> Message {
        Message {
            role: role_of(&self.role),
            content: self.content.clone(),
            tool_calls: self
                .tool_calls
                .iter()
                .map(|(id, name, arguments)| ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: arguments.clone(),
                })
                .collect(),
            tool_call_id: self.tool_call_id.clone(),
        }
    }
}

impl ToolLoop {
    /// A loop on model route `route`, offering every tool the agent may call.
    pub fn new(route: impl Into<String>) -> Self {
        Self {
            route: route.into(),
            system: None,
            tools: None,
            max_tokens: None,
        }
    }

    /// The system prompt.
    pub fn system(mut self, text: impl Into<String>) -> Self {
        self.system = Some(text.into());
        self
    }

    /// Offers only these tools (`plugin/tool`) of those the agent may call.
    pub fn tools(mut self, ids: &[&str]) -> Self {
        self.tools = Some(ids.iter().map(|t| (*t).to_string()).collect());
        self
    }

    /// The most tokens one answer may have.
    pub fn max_tokens(mut self, tokens: u32) -> Self {
        self.max_tokens = Some(tokens);
        self
    }

    /// One step of the loop.
    pub fn step(&self, input: &StepInput) -> Result<StepOutput, String> {
        let mut memo: Conversation = agent::memo(input)?;
        let action = self.next(input, &mut memo)?;
        agent::reply(action, &memo)
    }

    /// The next action, with `memo` brought up to date.
    pub fn next(&self, input: &StepInput, memo: &mut Conversation) -> Result<Action, String> {
        let offered: Vec<_> = input
            .tools
            .iter()
            .filter(|t| self.tools.as_ref().is_none_or(|ids| ids.contains(&t.id)))
            .cloned()
            .collect();
        match &input.observation {
            Observation::None => {
                if let Some(system) = &self.system {
                    memo.turns.push(Turn::new(Role::System, system.clone()));
                }
                let task = match agent::parse::<Value>("the task", &input.task)? {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                memo.turns.push(Turn::new(Role::User, task));
            }
            Observation::Model(response) => {
                memo.turns.push(Turn {
                    tool_calls: response
                        .tool_calls
                        .iter()
                        .map(|c| (c.id.clone(), c.name.clone(), c.arguments.clone()))
                        .collect(),
                    ..Turn::new(Role::Assistant, response.content.clone())
                });
                if response.tool_calls.is_empty() {
                    return agent::finish(&serde_json::json!({ "answer": response.content }));
                }
                let mut calls = Vec::new();
                for call in &response.tool_calls {
                    match offered
                        .iter()
                        .find(|t| agent::model_name(&t.id) == call.name)
                    {
                        Some(tool) => calls.push(ToolUse {
                            id: call.id.clone(),
                            tool: tool.id.clone(),
                            arguments: call.arguments.clone(),
                        }),
                        None => memo.turns.push(Turn::tool(
                            &call.id,
                            format!("error: there is no tool named {:?}", call.name),
                        )),
                    }
                }
                if !calls.is_empty() {
                    return Ok(Action::CallTools(calls));
                }
            }
            Observation::Tools(results) => {
                for result in results {
                    let content = agent::outcome_json(&result.outcome);
                    let text = match content {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    memo.turns.push(Turn::tool(&result.id, text));
                }
            }
            Observation::Answer(answer) => memo.turns.push(Turn::new(Role::User, answer.clone())),
            Observation::Denied(reason) => {
                return Ok(agent::fail(format!("the model call was refused: {reason}")));
            }
            Observation::Failed(reason) => {
                return Ok(agent::fail(format!("the model call failed: {reason}")));
            }
        }
        let mut action = agent::call_model(
            self.route.clone(),
            memo.turns.iter().map(Turn::message).collect(),
            agent::tool_defs(&offered),
        );
        if let Action::CallModel(request) = &mut action {
            request.max_tokens = self.max_tokens;
        }
        Ok(action)
    }
}
