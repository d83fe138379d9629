//! Fake providers on 127.0.0.1 that speak the real wire formats over HTTP/1.1 with
//! keep-alive: OpenAI chat completions and Anthropic Messages, whole or streamed as
//! server-sent events (chunked), tool calls included. Each answers from a script, then
//! with a fallback reply; a reply can be delayed, hang, stream slowly, or break off
//! mid-stream (close the connection, go quiet, send broken JSON).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One request a fake provider received.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Value,
    /// Which connection it came on (1, 2… in the order they were accepted).
    pub(crate) connection: usize,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How a streamed reply ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// The last chunk of the body; the connection stays open for the next request.
    Finish,
    /// The connection is closed without ending the body.
    Close,
    /// Nothing more is sent (until the test ends).
    Hang,
}

/// A scripted answer.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    /// A JSON answer with `status` and extra header lines, after `delay`.
    Json {
        status: u16,
        headers: String,
        body: Value,
        delay: Duration,
    },
    /// Never answer (until the test ends).
    Hang,
    /// `200 text/event-stream`: each event a chunk, `gap` apart, then `end`.
    Stream {
        events: Vec<String>,
        gap: Duration,
        end: End,
    },
    /// An answer in the format and mode the request asks for: streamed if it says
    /// `stream`, a tool call of its first tool if it gives tools, else `text`.
    Auto { text: String },
}

impl Reply {
    pub(crate) fn json(status: u16, body: Value) -> Self {
        Reply::Json {
            status,
            headers: String::new(),
            body,
            delay: Duration::ZERO,
        }
    }

    /// With one more header line (`name: value`).
    pub(crate) fn header(mut self, line: &str) -> Self {
        if let Reply::Json { headers, .. } = &mut self {
            headers.push_str(line);
            headers.push_str("\r\n");
        }
        self
    }

    /// Answered after `wait`.
    pub(crate) fn after(mut self, wait: Duration) -> Self {
        if let Reply::Json { delay, .. } = &mut self {
            *delay = wait;
        }
        self
    }

    /// A stream of `events` (each `data: …` or `event: …\ndata: …`, without the blank
    /// line) that ends with the body's last chunk.
    pub(crate) fn stream(events: Vec<String>) -> Self {
        Reply::Stream {
            events: events.into_iter().map(|e| format!("{e}\n\n")).collect(),
            gap: Duration::ZERO,
            end: End::Finish,
        }
    }

    /// Only the first `n` events, then `end`.
    pub(crate) fn cut(mut self, n: usize, how: End) -> Self {
        if let Reply::Stream { events, end, .. } = &mut self {
            events.truncate(n);
            *end = how;
        }
        self
    }

    /// With `wait` before each event.
    pub(crate) fn gap(mut self, wait: Duration) -> Self {
        if let Reply::Stream { gap, .. } = &mut self {
            *gap = wait;
        }
        self
    }

    /// With `event` (a raw `data: …` line) in place of event `at`.
    pub(crate) fn replace(mut self, at: usize, event: &str) -> Self {
        if let Reply::Stream { events, .. } = &mut self {
            events[at] = format!("{event}\n\n");
        }
        self
    }
}

pub(crate) struct Fake {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    connections: Arc<AtomicUsize>,
}

impl Fake {
    /// A provider that answers from `script` in order, then with `fallback`.
    pub(crate) async fn start(script: Vec<Reply>, fallback: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let (rec, count) = (received.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let connection = count.fetch_add(1, Ordering::SeqCst) + 1;
                let (rec, script, fallback) = (rec.clone(), script.clone(), fallback.clone());
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    while let Some(request) = read_request(&mut stream, connection).await {
                        let reply = script
                            .lock()
                            .unwrap()
                            .pop_front()
                            .unwrap_or_else(|| fallback.clone());
                        let (path, body) = (request.path.clone(), request.body.clone());
                        rec.lock().unwrap().push(request);
                        if !answer(stream.get_mut(), reply, &path, &body).await {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            received,
            connections,
        }
    }

    /// A provider that answers every request in the mode it asks for ([`Reply::Auto`]).
    pub(crate) async fn auto(text: &str) -> Self {
        Self::start(
            vec![],
            Reply::Auto {
                text: text.to_string(),
            },
        )
        .await
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn read_request(stream: &mut BufReader<TcpStream>, connection: usize) -> Option<Received> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let path = lines.first()?.split(' ').nth(1).unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines[1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(Received {
        path,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        connection,
    })
}

/// Writes `reply` to the request to `path` with `body`; false when the connection is
/// done.
async fn answer(stream: &mut TcpStream, reply: Reply, path: &str, body: &Value) -> bool {
    let reply = match reply {
        Reply::Auto { text } => auto_reply(path, body, &text),
        other => other,
    };
    match reply {
        Reply::Json {
            status,
            headers,
            body,
            delay,
        } => {
            tokio::time::sleep(delay).await;
            let body = body.to_string();
            let out = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{headers}\r\n{body}",
                body.len()
            );
            stream.write_all(out.as_bytes()).await.is_ok()
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            false
        }
        Reply::Stream { events, gap, end } => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return false;
            }
            for event in events {
                tokio::time::sleep(gap).await;
                let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                if stream.write_all(chunk.as_bytes()).await.is_err() {
                    return false;
                }
            }
            match end {
                End::Finish => stream.write_all(b"0\r\n\r\n").await.is_ok(),
                End::Close => false,
                End::Hang => {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    false
                }
            }
        }
        Reply::Auto { .. } => unreachable!("resolved above"),
    }
}

/// The reply [`Reply::Auto`] gives to the request to `path` with `body`.
fn auto_reply(path: &str, body: &Value, text: &str) -> Reply {
    let streamed = body["stream"] == true;
    let anthropic = path.ends_with("/v1/messages");
    let tool = body["tools"][0]["function"]["name"]
        .as_str()
        .or(body["tools"][0]["name"].as_str());
    match (anthropic, streamed, tool) {
        (false, false, None) => openai_answer(text),
        (false, false, Some(tool)) => openai_tool_answer(tool),
        (false, true, None) => openai_stream(&split(text)),
        (false, true, Some(tool)) => openai_tool_stream(tool),
        (true, false, _) => Reply::json(
            200,
            json!({
                "type": "message", "role": "assistant",
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": 10, "output_tokens": 2},
            }),
        ),
        (true, true, tool) => anthropic_stream(&split(text), tool),
    }
}

/// `text` in pieces of up to 4 bytes (on character boundaries).
fn split(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    for c in text.chars() {
        if parts.last().unwrap().len() >= 4 {
            parts.push(String::new());
        }
        parts.last_mut().unwrap().push(c);
    }
    parts
}

pub(crate) fn openai_answer(text: &str) -> Reply {
    Reply::json(
        200,
        json!({
            "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2},
        }),
    )
}

pub(crate) fn openai_tool_answer(tool: &str) -> Reply {
    Reply::json(
        200,
        json!({
            "choices": [{
                "message": {"role": "assistant", "content": null, "tool_calls": [{
                    "id": "call_1", "type": "function",
                    "function": {"name": tool, "arguments": "{\"city\": \"Lyon\"}"},
                }]},
                "finish_reason": "tool_calls",
            }],
            "usage": {"prompt_tokens": 30, "completion_tokens": 8},
        }),
    )
}

fn chunk(delta: Value, finish: Value) -> String {
    let chunk = json!({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    });
    format!("data: {chunk}")
}

fn usage_chunk(input: u64, output: u64) -> String {
    let chunk = json!({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [],
        "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output},
    });
    format!("data: {chunk}")
}

/// An OpenAI stream of `parts`: the role, one chunk per part, the finish, the usage
/// (10 in, one per part out), `[DONE]`.
pub(crate) fn openai_stream<S: AsRef<str>>(parts: &[S]) -> Reply {
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for part in parts {
        events.push(chunk(json!({"content": part.as_ref()}), Value::Null));
    }
    events.push(chunk(json!({}), json!("stop")));
    events.push(usage_chunk(10, parts.len() as u64));
    events.push("data: [DONE]".into());
    Reply::stream(events)
}

/// An OpenAI stream of one call of `tool` with `{"city": "Lyon"}` in three pieces.
pub(crate) fn openai_tool_stream(tool: &str) -> Reply {
    let call = |first: bool, args: &str| {
        let mut c = json!({"index": 0, "function": {"arguments": args}});
        if first {
            c["id"] = json!("call_1");
            c["type"] = json!("function");
            c["function"]["name"] = json!(tool);
        }
        json!({"tool_calls": [c]})
    };
    Reply::stream(vec![
        chunk(json!({"role": "assistant", "content": null}), Value::Null),
        chunk(call(true, ""), Value::Null),
        chunk(call(false, "{\"city\": "), Value::Null),
        chunk(call(false, "\"Lyon\"}"), Value::Null),
        chunk(json!({}), json!("tool_calls")),
        usage_chunk(30, 8),
        "data: [DONE]".into(),
    ])
}

/// An Anthropic Messages stream: the text in `parts`, then a call of `tool` (if
/// given) with `{"city": "Lyon"}` in two pieces; usage 25 in (5 cached), 15 out.
pub(crate) fn anthropic_stream<S: AsRef<str>>(parts: &[S], tool: Option<&str>) -> Reply {
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}");
    let mut events = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {
                "id": "msg_1", "type": "message", "role": "assistant", "content": [],
                "model": "claude", "stop_reason": null,
                "usage": {"input_tokens": 20, "cache_read_input_tokens": 5, "output_tokens": 1},
            }}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event("ping", json!({"type": "ping"})),
    ];
    for part in parts {
        events.push(event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": part.as_ref()}}),
        ));
    }
    events.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    if let Some(tool) = tool {
        events.push(event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {
                "type": "tool_use", "id": "toolu_1", "name": tool, "input": {},
            }}),
        ));
        for piece in ["{\"city\": ", "\"Lyon\"}"] {
            events.push(event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": piece}}),
            ));
        }
        events.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ));
    }
    let stop = if tool.is_some() {
        "tool_use"
    } else {
        "end_turn"
    };
    events.push(event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": 15}}),
    ));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    Reply::stream(events)
}
