//! The same comparison over HTTP: `warden serve`'s `/mcp` beside a peer's HTTP
//! transport, with one lean client (one `hyper` HTTP/1.1 connection on a one-thread
//! runtime, one request at a time) speaking whichever transport the host serves:
//!
//! - Streamable HTTP in a session (2025-11-25: `initialize`, then each request with
//!   its `Mcp-Session-Id`; an answer is a JSON body or a short event stream);
//! - Streamable HTTP without a session (2026-07-28: each request carries its version
//!   and capabilities in `_meta` and its method and tool in headers);
//! - the HTTP+SSE transport of 2024-11-05, which older hosts serve (Wassette 0.2's
//!   `serve --http`): a `GET` opens an event stream that names where to post, each
//!   request is posted there (answered 202) and its answer comes on the stream.
//!
//! ```text
//! PEER_MCP_HTTP_CMD='wassette serve --http --plugin-dir "$PEER_COMPONENT_DIR"' \
//! PEER_MCP_HTTP_URL=http://127.0.0.1:9001/sse cargo bench -p warden --bench mcp_peer
//! ```
//!
//! A URL whose path ends in `/sse` is spoken to as HTTP+SSE, any other as Streamable
//! HTTP in a session.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use serde_json::{Value, json};

use crate::Client;

/// How a client speaks MCP over HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    /// Streamable HTTP in a session (2025-11-25).
    Session,
    /// Streamable HTTP, no session (2026-07-28).
    Stateless,
    /// HTTP+SSE (2024-11-05).
    Sse,
}

impl Transport {
    /// The transport for `url`: HTTP+SSE if its path ends in `/sse`.
    pub(crate) fn of(url: &str) -> Self {
        if url.trim_end_matches('/').ends_with("/sse") {
            Self::Sse
        } else {
            Self::Session
        }
    }
}

/// One client connection to an MCP host over HTTP.
pub(crate) struct HttpClient {
    runtime: tokio::runtime::Runtime,
    send: SendRequest<Full<Bytes>>,
    host: String,
    /// Where requests are posted.
    path: String,
    token: Option<String>,
    transport: Transport,
    session: Option<String>,
    /// HTTP+SSE: the event stream answers come on.
    events: Option<Events>,
    next_id: u64,
}

impl HttpClient {
    /// Connects to `url` (`http://host:port/path`), retrying for up to 30 s while the
    /// host starts.
    pub(crate) fn connect(url: &str, token: Option<String>, transport: Transport) -> Self {
        let rest = url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("{url}: only http:// URLs"));
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let send = runtime.block_on(open(host));
        let mut client = Self {
            runtime,
            send,
            host: host.to_string(),
            path: path.to_string(),
            token,
            transport,
            session: None,
            events: None,
            next_id: 1,
        };
        if transport == Transport::Sse {
            client.open_events();
        }
        client
    }

    /// HTTP+SSE: opens the event stream on a connection of its own and reads where
    /// to post (its `endpoint` event).
    fn open_events(&mut self) {
        let request = hyper::Request::get(&self.path)
            .header("host", &self.host)
            .header("accept", "text/event-stream")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let host = self.host.clone();
        let (endpoint, events) = self.runtime.block_on(async move {
            let mut send = open(&host).await;
            let response = send.send_request(request).await.unwrap();
            assert_eq!(response.status(), 200, "GET the event stream");
            let mut events = Events {
                body: response.into_body(),
                buffer: String::new(),
            };
            loop {
                let (name, data) = events.next().await;
                if name == "endpoint" {
                    break (data, events);
                }
            }
        });
        self.path = endpoint;
        self.events = Some(events);
    }

    fn post(&self, message: &Value) -> hyper::Request<Full<Bytes>> {
        let mut request = hyper::Request::post(&self.path)
            .header("host", &self.host)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(session) = &self.session {
            request = request.header("mcp-session-id", session);
        }
        if self.transport == Transport::Stateless {
            let name = message["params"]["name"].as_str().unwrap_or_default();
            request = request
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", message["method"].as_str().unwrap_or_default());
            if !name.is_empty() {
                request = request.header("mcp-name", name);
            }
        }
        request
            .body(Full::new(Bytes::from(message.to_string())))
            .unwrap()
    }

    /// Posts `message` and returns the answer to request `id`, if it is one.
    fn exchange(&mut self, message: &Value, id: Option<u64>) -> Option<Value> {
        let request = self.post(message);
        let (send, events, transport) = (&mut self.send, &mut self.events, self.transport);
        let (session, answer) = self.runtime.block_on(async move {
            if let Err(err) = send.ready().await {
                panic!("the connection closed before {message}: {err}");
            }
            let response = send.send_request(request).await.unwrap();
            let status = response.status();
            let session = response
                .headers()
                .get("mcp-session-id")
                .map(|v| v.to_str().unwrap().to_owned());
            let streamed = response
                .headers()
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            let body = response.into_body();
            let Some(id) = id else {
                assert!(status.is_success(), "{}: {status}", message["method"]);
                body.collect().await.unwrap();
                return (session, None);
            };
            let answer = match transport {
                Transport::Sse => {
                    assert_eq!(status, 202, "{}", message["method"]);
                    body.collect().await.unwrap();
                    answer_on(events.as_mut().unwrap(), id).await
                }
                _ if streamed => {
                    let mut stream = Events {
                        body,
                        buffer: String::new(),
                    };
                    let answer = answer_on(&mut stream, id).await;
                    // Read to its end, so the connection serves the next request.
                    stream.body.collect().await.unwrap();
                    answer
                }
                _ => {
                    let bytes = body.collect().await.unwrap().to_bytes();
                    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
                    serde_json::from_slice(&bytes).unwrap()
                }
            };
            (session, Some(answer))
        });
        if session.is_some() {
            self.session = session;
        }
        answer
    }
}

impl Client for HttpClient {
    fn request(&mut self, method: &str, mut params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        if self.transport == Transport::Stateless {
            params["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            });
        }
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let answer = self.exchange(&message, Some(id)).unwrap();
        if let Some(error) = answer.get("error") {
            panic!("{method}: {error}");
        }
        answer["result"].clone()
    }

    fn notify(&mut self, method: &str) {
        self.exchange(&json!({"jsonrpc": "2.0", "method": method}), None);
    }

    fn initialize(&mut self) {
        // Without a session, every request says what `initialize` would have.
        if self.transport != Transport::Stateless {
            crate::initialize(self);
        }
    }
}

/// Reads messages off `events` until the answer to request `id`.
async fn answer_on(events: &mut Events, id: u64) -> Value {
    loop {
        let (_, data) = events.next().await;
        let Ok(message) = serde_json::from_str::<Value>(&data) else {
            continue;
        };
        if message.get("id") == Some(&json!(id)) && message.get("method").is_none() {
            return message;
        }
    }
}

/// A server-sent event stream being read.
struct Events {
    body: Incoming,
    buffer: String,
}

impl Events {
    /// The next event: its name (`message` if unnamed) and its data lines joined.
    async fn next(&mut self) -> (String, String) {
        loop {
            let normalized = self.buffer.replace("\r\n", "\n");
            if let Some(end) = normalized.find("\n\n") {
                let (name, data) = parse_event(&normalized[..end]);
                self.buffer = normalized[end + 2..].to_string();
                if !data.is_empty() || name != "message" {
                    return (name, data);
                }
                continue;
            }
            let frame = self
                .body
                .frame()
                .await
                .expect("the event stream ended")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                self.buffer.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
    }
}

fn parse_event(block: &str) -> (String, String) {
    let mut name = "message".to_string();
    let mut data = Vec::new();
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            name = value.trim().to_string();
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    (name, data.join("\n"))
}

/// One HTTP/1.1 connection to `host`, without Nagle's delay; retried for up to 30 s.
async fn open(host: &str) -> SendRequest<Full<Bytes>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let stream = loop {
        match tokio::net::TcpStream::connect(host).await {
            Ok(stream) => break stream,
            Err(err) if Instant::now() > deadline => panic!("connecting to {host}: {err}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    stream.set_nodelay(true).unwrap();
    let (send, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    send
}

/// `command` with no standard streams: a host serving HTTP.
pub(crate) fn quiet(command: &mut Command) -> &mut Command {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
}

/// A loopback address with a port free a moment ago.
pub(crate) fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}
