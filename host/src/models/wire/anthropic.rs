//! Anthropic's Messages API (`POST {base}/v1/messages`).

use serde_json::{Value, json};

use crate::models::classify::{Failure, FailureKind};
use crate::models::types::{ChatRequest, Role, ToolCall, Usage};

/// Anthropic requires `max_tokens`; this is used when the request gives none.
const DEFAULT_MAX_TOKENS: u32 = 1024;

/// The request body for `model`. System messages become `system`; tool results are
/// `tool_result` blocks of a user turn; a JSON Schema answer format is asked for in the
/// system text (the Messages API has no schema-constrained mode here).
pub(crate) fn request(model: &str, req: &ChatRequest) -> Value {
    let mut system: Vec<String> = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    for m in &req.messages {
        match m.role.unwrap_or(Role::User) {
            Role::System => system.push(m.content.clone()),
            Role::User => messages.push(json!({
                "role": "user",
                "content": [{ "type": "text", "text": m.content }],
            })),
            Role::Assistant => {
                let mut blocks = Vec::new();
                if !m.content.is_empty() {
                    blocks.push(json!({ "type": "text", "text": m.content }));
                }
                for c in &m.tool_calls {
                    blocks.push(json!({ "type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments }));
                }
                messages.push(json!({ "role": "assistant", "content": blocks }));
            }
            Role::Tool => messages.push(json!({
                "role": "user",
                "content": [{
                    "type": "tool_result",
                    "tool_use_id": m.tool_call_id.clone().unwrap_or_default(),
                    "content": m.content,
                }],
            })),
        }
    }
    if let Some(schema) = &req.response_format {
        system.push(format!(
            "Answer with one JSON value that matches this JSON Schema, and nothing else:\n{schema}"
        ));
    }
    let mut body = json!({
        "model": model,
        "max_tokens": req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages,
    });
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| json!({ "name": t.name, "description": t.description, "input_schema": t.parameters }))
            .collect();
    }
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    if !req.stop.is_empty() {
        body["stop_sequences"] = json!(req.stop);
    }
    body
}

/// The answer, with Anthropic's stop reasons mapped to OpenAI's finish reasons.
pub(crate) fn response(body: &Value) -> Result<(String, Vec<ToolCall>, String, Usage), Failure> {
    let blocks = body["content"].as_array().ok_or_else(|| {
        Failure::new(
            FailureKind::MalformedResponse,
            "message without content blocks",
        )
    })?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in blocks {
        match block["type"].as_str() {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or("")),
            Some("tool_use") => calls.push(ToolCall {
                id: block["id"].as_str().unwrap_or("").to_string(),
                name: block["name"].as_str().unwrap_or("").to_string(),
                arguments: block["input"].clone(),
            }),
            _ => {}
        }
    }
    let finish = match body["stop_reason"].as_str() {
        Some("max_tokens") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
    .to_string();
    let u = &body["usage"];
    let cache_read = u["cache_read_input_tokens"].as_u64().unwrap_or(0);
    let cache_write = u["cache_creation_input_tokens"].as_u64().unwrap_or(0);
    let usage = Usage {
        input: u["input_tokens"].as_u64().unwrap_or(0) + cache_read + cache_write,
        output: u["output_tokens"].as_u64().unwrap_or(0),
        cached: cache_read,
        reasoning: 0,
    };
    Ok((text, calls, finish, usage))
}
