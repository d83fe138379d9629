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

/// The other direction, for Warden's own OpenAI-compatible endpoint: a client's
/// chat-completions body → (`model`, the request). `model` names a route.
pub fn parse_request(body: &Value) -> Result<(String, ChatRequest), String> {
    use crate::models::types::{Message, ToolDef};
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
pub fn build_response(route: &str, answer: &crate::models::ChatResponse, created: u64) -> Value {
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
        "id": format!("chatcmpl-warden-{created}"),
        "object": "chat.completion",
        "created": created,
        "model": route,
        "choices": [{ "index": 0, "message": message, "finish_reason": answer.finish_reason }],
        "usage": {
            "prompt_tokens": answer.usage.input,
            "completion_tokens": answer.usage.output,
            "total_tokens": answer.usage.input + answer.usage.output,
            "prompt_tokens_details": { "cached_tokens": answer.usage.cached },
            "completion_tokens_details": { "reasoning_tokens": answer.usage.reasoning },
        },
        "warden": { "target": answer.target, "cost": answer.cost },
    })
}
