//! OpenAI-compatible chat completions (`POST {base}/chat/completions`): OpenAI, vLLM,
//! Ollama, llama.cpp's server, Mistral, OpenRouter…

use serde_json::{Value, json};

use crate::models::classify::{Failure, FailureKind};
use crate::models::types::{ChatRequest, Role, ToolCall, Usage};

/// The request body for `model`.
pub(crate) fn request(model: &str, req: &ChatRequest) -> Value {
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| {
            let role = match m.role.unwrap_or(Role::User) {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
                Role::Tool => "tool",
            };
            let mut out = json!({ "role": role, "content": m.content });
            if !m.tool_calls.is_empty() {
                out["tool_calls"] = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        json!({
                            "id": c.id,
                            "type": "function",
                            "function": { "name": c.name, "arguments": c.arguments.to_string() },
                        })
                    })
                    .collect();
            }
            if let Some(id) = &m.tool_call_id {
                out["tool_call_id"] = json!(id);
            }
            out
        })
        .collect();
    let mut body = json!({ "model": model, "messages": messages });
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "function": { "name": t.name, "description": t.description, "parameters": t.parameters },
                })
            })
            .collect();
    }
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(n) = req.max_tokens {
        body["max_tokens"] = json!(n);
    }
    if !req.stop.is_empty() {
        body["stop"] = json!(req.stop);
    }
    if let Some(schema) = &req.response_format {
        body["response_format"] = json!({
            "type": "json_schema",
            "json_schema": { "name": "response", "schema": schema, "strict": true },
        });
    }
    body
}

/// The answer: content, tool calls, finish reason, usage.
pub(crate) fn response(body: &Value) -> Result<(String, Vec<ToolCall>, String, Usage), Failure> {
    let malformed = |what: &str| {
        Failure::new(
            FailureKind::MalformedResponse,
            format!("chat completion without {what}"),
        )
    };
    let choice = body["choices"].get(0).ok_or_else(|| malformed("choices"))?;
    let message = &choice["message"];
    if !message.is_object() {
        return Err(malformed("a message"));
    }
    let content = message["content"].as_str().unwrap_or("").to_string();
    let mut calls = Vec::new();
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        let name = call["function"]["name"]
            .as_str()
            .ok_or_else(|| malformed("a tool call's name"))?;
        let arguments = match &call["function"]["arguments"] {
            Value::String(text) if text.trim().is_empty() => json!({}),
            Value::String(text) => serde_json::from_str(text).map_err(|e| {
                Failure::new(
                    FailureKind::MalformedResponse,
                    format!("tool call {name}: arguments are not JSON: {e}"),
                )
            })?,
            other => other.clone(),
        };
        calls.push(ToolCall {
            id: call["id"].as_str().unwrap_or("").to_string(),
            name: name.to_string(),
            arguments,
        });
    }
    let finish = choice["finish_reason"]
        .as_str()
        .unwrap_or("stop")
        .to_string();
    let u = &body["usage"];
    let usage = Usage {
        input: u["prompt_tokens"].as_u64().unwrap_or(0),
        output: u["completion_tokens"].as_u64().unwrap_or(0),
        cached: u["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0),
        reasoning: u["completion_tokens_details"]["reasoning_tokens"]
            .as_u64()
            .unwrap_or(0),
    };
    Ok((content, calls, finish, usage))
}
