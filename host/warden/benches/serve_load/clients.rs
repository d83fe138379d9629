//! The bare clients: one `hyper` HTTP/1.1 connection each, on a thread and runtime of
//! their own, calling the REST route or `/mcp` one call after another.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::polling::polling_client;
use crate::{Figures, TEXT, TOKEN};

/// How a one-caller row's client waits for each answer.
#[derive(Clone, Copy)]
pub(crate) enum Waits {
    /// Asleep in the kernel until it comes, as most clients wait: [`bare_client`].
    Sleeping,
    /// Polling its socket, never asleep: [`polling_client`].
    Polling,
}

/// One caller of the REST route at `addr`, waiting as `waits` says.
pub(crate) async fn rest_client(addr: std::net::SocketAddr, calls: usize, waits: Waits) -> Figures {
    match waits {
        Waits::Sleeping => bare_client(addr, calls).await,
        Waits::Polling => polling_client(addr, calls).await,
    }
}

/// One caller making `calls` calls over one bare `hyper` HTTP/1.1 connection, on a
/// thread and runtime of its own (the server's runtime does not run the client).
pub(crate) async fn bare_client(addr: std::net::SocketAddr, calls: usize) -> Figures {
    on_own_thread(move || bare_round(addr, calls)).await
}

/// Runs a client's `round` on a thread and current-thread runtime of its own, as a
/// client in another process would run.
async fn on_own_thread<F>(round: impl FnOnce() -> F + Send + 'static) -> Figures
where
    F: Future<Output = Figures>,
{
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(round())
    })
    .await
    .expect("the client panicked")
}

type Connection = hyper::client::conn::http1::SendRequest<http_body_util::Full<axum::body::Bytes>>;

/// One bare `hyper` HTTP/1.1 connection to `addr`, without Nagle's delay.
async fn connect(addr: std::net::SocketAddr) -> Connection {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

/// `calls` requests over one `hyper` HTTP/1.1 connection, one after another.
async fn bare_round(addr: std::net::SocketAddr, calls: usize) -> Figures {
    use http_body_util::Full;
    let mut send = connect(addr).await;
    let body = axum::body::Bytes::from(json!({ "text": TEXT }).to_string());
    let authorization = format!("Bearer {TOKEN}");
    let host = addr.to_string();
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(calls);
    for _ in 0..calls {
        let request = hyper::Request::post("/v1/tools/text/word-count")
            .header("host", &host)
            .header("authorization", &authorization)
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))
            .unwrap();
        let (status, bytes) = exchange(&mut send, request, &mut latencies).await;
        let answer: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(
            status == 200 && answer["result"]["sentences"] == json!(2),
            "{status}: {answer}"
        );
    }
    Figures::new(started.elapsed(), latencies)
}

/// Sends `request` over `send` and reads the whole answer, its time added to
/// `latencies`.
async fn exchange(
    send: &mut Connection,
    request: hyper::Request<http_body_util::Full<axum::body::Bytes>>,
    latencies: &mut Vec<Duration>,
) -> (hyper::StatusCode, axum::body::Bytes) {
    use http_body_util::BodyExt;
    let t = Instant::now();
    send.ready().await.unwrap();
    let response = send.send_request(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    latencies.push(t.elapsed());
    (status, bytes)
}

/// `calls` MCP `tools/call`s over one `hyper` HTTP/1.1 connection to `/mcp`, one after
/// another, on a thread and runtime of its own: in one session of the 2025-11-25
/// revision (`initialize` first), or with `stateless` as requests of the 2026-07-28
/// revision (no session; each carries its version and capabilities). In a session each
/// answer is a short server-sent event stream; without one, a JSON body.
pub(crate) async fn mcp_client(
    addr: std::net::SocketAddr,
    calls: usize,
    stateless: bool,
) -> Figures {
    on_own_thread(move || mcp_round(addr, calls, stateless)).await
}

async fn mcp_round(addr: std::net::SocketAddr, calls: usize, stateless: bool) -> Figures {
    use http_body_util::Full;
    let mut send = connect(addr).await;
    let authorization = format!("Bearer {TOKEN}");
    let host = addr.to_string();
    let post = |message: Value, session: Option<&str>| {
        let mut request = hyper::Request::post("/mcp")
            .header("host", &host)
            .header("authorization", &authorization)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request
            .body(Full::new(axum::body::Bytes::from(message.to_string())))
            .unwrap()
    };
    let session = if stateless {
        None
    } else {
        Some(mcp_session(&mut send, &post).await)
    };
    let session = session.as_deref();
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(calls);
    for id in 1..=calls {
        let mut params = json!({ "name": "text__word-count", "arguments": { "text": TEXT } });
        if stateless {
            params["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}
            });
        }
        let mut request = post(
            json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params }),
            session,
        );
        if stateless {
            let headers = request.headers_mut();
            headers.insert("mcp-protocol-version", "2026-07-28".parse().unwrap());
            headers.insert("mcp-method", "tools/call".parse().unwrap());
            headers.insert("mcp-name", "text__word-count".parse().unwrap());
        }
        let (status, bytes) = exchange(&mut send, request, &mut latencies).await;
        // The stream's one message (its `data:` line), or the JSON body.
        let text = String::from_utf8_lossy(&bytes);
        let answer: Value = serde_json::from_str(&text)
            .ok()
            .or_else(|| {
                text.lines()
                    .filter_map(|line| line.strip_prefix("data: "))
                    .find_map(|data| serde_json::from_str(data).ok())
            })
            .unwrap_or_else(|| panic!("{status}: no message in {text}"));
        let result: Value = serde_json::from_str(
            answer["result"]["content"][0]["text"]
                .as_str()
                .unwrap_or("{}"),
        )
        .unwrap();
        assert!(
            status == 200
                && answer["result"]["isError"] == json!(false)
                && result["sentences"] == json!(2),
            "{status}: {answer}"
        );
    }
    Figures::new(started.elapsed(), latencies)
}

/// Opens a 2025-11-25 session over `send` (`initialize`, then `initialized`): its id.
async fn mcp_session(
    send: &mut Connection,
    post: &impl Fn(Value, Option<&str>) -> hyper::Request<http_body_util::Full<axum::body::Bytes>>,
) -> String {
    use http_body_util::BodyExt;
    let initialize = post(
        json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": { "name": "serve_load", "version": "1" }
            }
        }),
        None,
    );
    let response = send.send_request(initialize).await.unwrap();
    assert_eq!(response.status(), 200, "initialize");
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    response.into_body().collect().await.unwrap();
    let initialized = post(
        json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
        Some(&session),
    );
    send.ready().await.unwrap();
    let response = send.send_request(initialized).await.unwrap();
    assert_eq!(response.status(), 202, "notifications/initialized");
    response.into_body().collect().await.unwrap();
    session
}
