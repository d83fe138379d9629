//! Anthropic's Messages API (`POST {base}/v1/messages`).

use serde_json::{Value, json};

use std::collections::HashMap;

use crate::classify::{Failure, FailureKind};
use crate::stream::{Delta, Out};
use crate::types::{ChatRequest, Role, ToolCall, Usage};

/// Anthropic requires `max_tokens`; this is used when the request gives none.
const DEFAULT_MAX_TOKENS: u32 = 1024;

/// The request body for `model`. System messages become `system`; tool results are
/// `tool_result` blocks of a user turn; a JSON Schema answer format is asked for in the
/// system text (the Messages API has no schema-constrained mode here).
pub(crate) fn request(model: &str, req: &ChatRequest, stream: bool) -> Value {
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
    if stream {
        body["stream"] = json!(true);
    }
    body
}

fn finish_reason(stop_reason: Option<&str>) -> String {
    match stop_reason {
        Some("max_tokens") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
    .to_string()
}

fn usage(u: &Value, mut into: Usage) -> Usage {
    if let Some(input) = u["input_tokens"].as_u64() {
        let cache_read = u["cache_read_input_tokens"].as_u64().unwrap_or(0);
        let cache_write = u["cache_creation_input_tokens"].as_u64().unwrap_or(0);
        into.input = input + cache_read + cache_write;
        into.cached = cache_read;
    }
    if let Some(output) = u["output_tokens"].as_u64() {
        into.output = output;
    }
    into
}

/// What a streamed message has said so far: which content blocks are tool calls (and
/// their index among the answer's calls), and the usage.
#[derive(Default)]
pub(crate) struct StreamState {
    tools: HashMap<u64, usize>,
    usage: Usage,
}

impl StreamState {
    /// One event of a streamed message (`message_start`, `content_block_start`,
    /// `content_block_delta`, `message_delta`, `message_stop`, `ping`, `error`);
    /// true at `message_stop`.
    pub(crate) fn event(&mut self, data: &str, out: Out<'_>) -> Result<bool, Failure> {
        let event: Value = serde_json::from_str(data).map_err(|e| {
            Failure::new(
                FailureKind::MalformedResponse,
                format!("a streamed event is not JSON: {e}"),
            )
        })?;
        match event["type"].as_str() {
            Some("message_start") => {
                self.usage = usage(&event["message"]["usage"], self.usage);
            }
            Some("content_block_start") => {
                let block = &event["content_block"];
                match block["type"].as_str() {
                    Some("tool_use") => {
                        let index = self.tools.len();
                        self.tools
                            .insert(event["index"].as_u64().unwrap_or(0), index);
                        out.deltas.push_back(Delta::ToolCall {
                            index,
                            id: block["id"].as_str().map(str::to_string),
                            name: block["name"].as_str().map(str::to_string),
                            arguments: String::new(),
                        });
                    }
                    Some("text") => {
                        if let Some(text) = block["text"].as_str().filter(|t| !t.is_empty()) {
                            out.deltas.push_back(Delta::Text(text.to_string()));
                        }
                    }
                    _ => {}
                }
            }
            Some("content_block_delta") => {
                let delta = &event["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => {
                        let text = delta["text"].as_str().unwrap_or("");
                        if !text.is_empty() {
                            out.deltas.push_back(Delta::Text(text.to_string()));
                        }
                    }
                    Some("input_json_delta") => {
                        let block = event["index"].as_u64().unwrap_or(0);
                        let index = *self.tools.get(&block).ok_or_else(|| {
                            Failure::new(
                                FailureKind::MalformedResponse,
                                format!(
                                    "tool input for content block {block}, which is no tool_use"
                                ),
                            )
                        })?;
                        out.deltas.push_back(Delta::ToolCall {
                            index,
                            id: None,
                            name: None,
                            arguments: delta["partial_json"].as_str().unwrap_or("").to_string(),
                        });
                    }
                    _ => {}
                }
            }
            Some("message_delta") => {
                self.usage = usage(&event["usage"], self.usage);
                *out.usage = Some(self.usage);
                if let Some(reason) = event["delta"]["stop_reason"].as_str() {
                    out.deltas
                        .push_back(Delta::Finish(finish_reason(Some(reason))));
                }
            }
            Some("message_stop") => {
                *out.usage = Some(self.usage);
                return Ok(true);
            }
            Some("error") => {
                let error = &event["error"];
                let kind = match error["type"].as_str() {
                    Some("rate_limit_error") => FailureKind::RateLimited,
                    Some("invalid_request_error") => FailureKind::BadRequest,
                    _ => FailureKind::Server,
                };
                let message = error["message"].as_str().unwrap_or("no message");
                return Err(Failure::new(kind, format!("error event: {message}")));
            }
            Some(_) => {}
            None => {
                return Err(Failure::new(
                    FailureKind::MalformedResponse,
                    "a streamed event without a type",
                ));
            }
        }
        Ok(false)
    }
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
    let finish = finish_reason(body["stop_reason"].as_str());
    Ok((text, calls, finish, usage(&body["usage"], Usage::default())))
}
