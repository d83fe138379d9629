//! Warden's own OpenAI-compatible endpoint (`POST /v1/chat/completions` on `serve`,
//! where `model` names a route): a client's body to a request, and the answer back as
//! a `chat.completion`, or streamed as `chat.completion.chunk` server-sent events.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::stream::Delta;
use crate::types::{ChatRequest, Role, ToolCall, Usage};

/// A client's chat-completions body → (`model`, the request). `model` names a route.
pub fn parse_request(body: &Value) -> Result<(String, ChatRequest), String> {
    use crate::types::{Message, ToolDef};
    let model = body["model"]
        .as_str()
        .ok_or("`model` is missing: give the name of a route")?
        .to_string();
    let text_of = |content: &Value| -> String {
        match content {
            Value::String(s) => s.clone(),
            // Content parts: the text ones, joined.
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join(""),
            _ => String::new(),
        }
    };
    let mut messages = Vec::new();
    for (i, m) in body["messages"]
        .as_array()
        .ok_or("`messages` must be an array")?
        .iter()
        .enumerate()
    {
        let role = match m["role"].as_str() {
            Some("system" | "developer") => Role::System,
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            Some("tool") => Role::Tool,
            other => {
                return Err(format!(
                    "messages[{i}].role {other:?} is not system, user, assistant or tool"
                ));
            }
        };
        let mut tool_calls = Vec::new();
        for c in m["tool_calls"].as_array().into_iter().flatten() {
            let arguments = match &c["function"]["arguments"] {
                Value::String(s) if s.trim().is_empty() => json!({}),
                Value::String(s) => serde_json::from_str(s)
                    .map_err(|e| format!("messages[{i}]: tool call arguments are not JSON: {e}"))?,
                other => other.clone(),
            };
            tool_calls.push(ToolCall {
                id: c["id"].as_str().unwrap_or("").to_string(),
                name: c["function"]["name"].as_str().unwrap_or("").to_string(),
                arguments,
            });
        }
        messages.push(Message {
            role: Some(role),
            content: text_of(&m["content"]),
            tool_calls,
            tool_call_id: m["tool_call_id"].as_str().map(str::to_string),
        });
    }
    let tools = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| ToolDef {
            name: t["function"]["name"].as_str().unwrap_or("").to_string(),
            description: t["function"]["description"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            parameters: t["function"]["parameters"].clone(),
        })
        .collect();
    let stop = match &body["stop"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let max_tokens = body["max_completion_tokens"]
        .as_u64()
        .or_else(|| body["max_tokens"].as_u64())
        .and_then(|n| u32::try_from(n).ok());
    let response_format = match body["response_format"]["type"].as_str() {
        Some("json_schema") => Some(body["response_format"]["json_schema"]["schema"].clone()),
        Some("json_object") => Some(json!({"type": "object"})),
        _ => None,
    };
    Ok((
        model,
        ChatRequest {
            messages,
            tools,
            temperature: body["temperature"].as_f64(),
            max_tokens,
            stop,
            response_format,
        },
    ))
}

/// A chat-completions answer for `route` from the router's response.
pub fn build_response(route: &str, answer: &crate::ChatResponse, created: u64) -> Value {
    let tool_calls: Vec<Value> = answer
        .tool_calls
        .iter()
        .map(|c| {
            json!({
                "id": c.id, "type": "function",
                "function": { "name": c.name, "arguments": c.arguments.to_string() },
            })
        })
        .collect();
    let mut message = json!({ "role": "assistant", "content": answer.content });
    if !tool_calls.is_empty() {
        message["tool_calls"] = json!(tool_calls);
    }
    json!({
        "id": completion_id(created),
        "object": "chat.completion",
        "created": created,
        "model": route,
        "choices": [{ "index": 0, "message": message, "finish_reason": answer.finish_reason }],
        "usage": usage(&answer.usage),
        "warden": { "target": answer.target, "cost": answer.cost },
    })
}

fn usage(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.input,
        "completion_tokens": usage.output,
        "total_tokens": usage.input + usage.output,
        "prompt_tokens_details": { "cached_tokens": usage.cached },
        "completion_tokens_details": { "reasoning_tokens": usage.reasoning },
    })
}

/// A completion's id, unique in this process.
fn completion_id(created: u64) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "chatcmpl-warden-{created}-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The `chat.completion.chunk`s of one streamed answer, as an OpenAI client reads
/// them: a first chunk with the role, one per delta, then (when the client asked
/// with `stream_options.include_usage`) one without choices that has the usage.
pub struct Chunks {
    id: String,
    created: u64,
    route: String,
}

impl Chunks {
    /// The chunks of an answer on `route`, made at `created` (Unix seconds).
    pub fn new(route: &str, created: u64) -> Self {
        Self {
            id: completion_id(created),
            created,
            route: route.to_string(),
        }
    }

    fn chunk(&self, choices: Value) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.route,
            "choices": choices,
        })
    }

    /// The first chunk: the assistant's role, no content yet.
    pub fn role(&self) -> Value {
        self.chunk(json!([{
            "index": 0,
            "delta": { "role": "assistant", "content": "" },
            "finish_reason": null,
        }]))
    }

    /// The chunk of one delta.
    pub fn delta(&self, delta: &Delta) -> Value {
        let (delta, finish) = match delta {
            Delta::Text(text) => (json!({ "content": text }), Value::Null),
            Delta::ToolCall {
                index,
                id,
                name,
                arguments,
            } => {
                let mut call = json!({ "index": index, "function": { "arguments": arguments } });
                if let Some(id) = id {
                    call["id"] = json!(id);
                    call["type"] = json!("function");
                }
                if let Some(name) = name {
                    call["function"]["name"] = json!(name);
                }
                (json!({ "tool_calls": [call] }), Value::Null)
            }
            Delta::Finish(reason) => (json!({}), json!(reason)),
        };
        self.chunk(json!([{ "index": 0, "delta": delta, "finish_reason": finish }]))
    }

    /// The last chunk: no choices, the usage, and which target answered at what cost.
    pub fn usage(&self, used: &Usage, target: &str, cost: f64) -> Value {
        let mut chunk = self.chunk(json!([]));
        chunk["usage"] = usage(used);
        chunk["warden"] = json!({ "target": target, "cost": cost });
        chunk
    }
}

/// An error event, ending a stream that had begun: OpenAI's clients raise it.
pub fn stream_error(code: &str, message: &str) -> Value {
    json!({ "error": { "message": message, "type": code.replace('-', "_"), "code": code } })
}

/// One server-sent event of `data`.
pub fn sse(data: &Value) -> bytes::Bytes {
    bytes::Bytes::from(format!("data: {data}\n\n"))
}

/// The event that closes a stream.
pub const SSE_DONE: &[u8] = b"data: [DONE]\n\n";
