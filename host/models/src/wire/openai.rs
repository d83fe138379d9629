//! OpenAI-compatible chat completions (`POST {base}/chat/completions`): OpenAI, vLLM,
//! Ollama, llama.cpp's server, Mistral, OpenRouter…

use serde_json::{Value, json};

use crate::classify::{Failure, FailureKind};
use crate::stream::{Delta, Out};
use crate::types::{ChatRequest, Role, ToolCall, Usage};

/// The request body for `model`; a streamed one asks for the usage at the end.
pub(crate) fn request(model: &str, req: &ChatRequest, stream: bool) -> Value {
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
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({ "include_usage": true });
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
    Ok((content, calls, finish, usage(&body["usage"])))
}

fn usage(u: &Value) -> Usage {
    Usage {
        input: u["prompt_tokens"].as_u64().unwrap_or(0),
        output: u["completion_tokens"].as_u64().unwrap_or(0),
        cached: u["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0),
        reasoning: u["completion_tokens_details"]["reasoning_tokens"]
            .as_u64()
            .unwrap_or(0),
    }
}

/// One event of a streamed chat completion (`data: {chunk}`, or `data: [DONE]` at the
/// end): text and tool-call deltas, the finish reason, the usage (in a last chunk
/// without choices, as `stream_options.include_usage` asks). True at `[DONE]`.
pub(crate) fn stream_event(data: &str, out: Out<'_>) -> Result<bool, Failure> {
    if data.trim() == "[DONE]" {
        return Ok(true);
    }
    let chunk: Value = serde_json::from_str(data).map_err(|e| {
        Failure::new(
            FailureKind::MalformedResponse,
            format!("a streamed chunk is not JSON: {e}"),
        )
    })?;
    if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
        let kind = match error["type"].as_str().or(error["code"].as_str()) {
            Some(t) if t.contains("rate_limit") => FailureKind::RateLimited,
            Some(t) if t.contains("invalid_request") => FailureKind::BadRequest,
            _ => FailureKind::Server,
        };
        let message = error["message"].as_str().unwrap_or("no message");
        return Err(Failure::new(kind, format!("error event: {message}")));
    }
    if !chunk["choices"].is_array() && chunk["usage"].is_null() {
        return Err(Failure::new(
            FailureKind::MalformedResponse,
            "a streamed chunk without choices",
        ));
    }
    if let Some(choice) = chunk["choices"].get(0) {
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            out.deltas.push_back(Delta::Text(text.to_string()));
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().ok_or_else(|| {
                Failure::new(
                    FailureKind::MalformedResponse,
                    "a streamed tool call without an index",
                )
            })?;
            let text = |v: &Value| v.as_str().map(str::to_string);
            out.deltas.push_back(Delta::ToolCall {
                index: usize::try_from(index).unwrap_or(usize::MAX),
                id: text(&call["id"]),
                name: text(&call["function"]["name"]),
                arguments: call["function"]["arguments"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            });
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            out.deltas.push_back(Delta::Finish(reason.to_string()));
        }
    }
    if chunk["usage"].is_object() {
        *out.usage = Some(usage(&chunk["usage"]));
    }
    Ok(false)
}
