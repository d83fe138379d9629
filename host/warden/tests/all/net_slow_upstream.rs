//! Every allowed request succeeds against an upstream that writes the response head
//! and the body in separate, delayed writes (as Python's `http.server` does), closing
//! to end the body or keeping the connection open after a `Content-Length`, with a
//! guest built on `wstd`, one built on `waki`, and the bundled `fetch` plugin (raw
//! `wasi:http` through the `wasip2` bindings).
//!
//! Regression: wstd writes its empty request body through the body's output stream
//! after `handle`; hyper sends a GET without framing headers with no body and drops
//! the body as soon as the head is written, so that write found the stream closed and
//! wstd failed the request as "connection reset" (most requests, on loopback), then
//! dropped it while the upstream was still writing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use warden::grant::{Grant, NetGrant};
use warden::limits::Limits;
use warden_tests::guests;

use crate::{call, load_granted};

const BODY: &str = "slow hello";

/// How the upstream frames its answers.
#[derive(Clone, Copy, Debug)]
enum Framing {
    /// HTTP/1.0, no length: the body ends when the upstream closes (Python's
    /// `http.server`).
    Close,
    /// HTTP/1.1 with `Content-Length`, the connection kept open for the client to close.
    Length,
}

/// An upstream on 127.0.0.1 that answers every request with the head, a pause, the
/// body, a pause, then ends the answer as `framing` says; it counts the answers it
/// finished writing.
struct SlowUpstream {
    addr: SocketAddr,
    finished: Arc<AtomicU64>,
}

impl SlowUpstream {
    async fn start(pause: Duration, framing: Framing) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let finished = Arc::new(AtomicU64::new(0));
        let count = finished.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let count = count.clone();
                tokio::spawn(async move {
                    if answer(stream, pause, framing).await.is_ok() {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        Self { addr, finished }
    }

    fn url(&self) -> String {
        format!("http://{}/slow", self.addr)
    }
}

async fn answer(mut stream: TcpStream, pause: Duration, framing: Framing) -> std::io::Result<()> {
    // Read the request head (a GET has no body).
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = match framing {
        Framing::Close => "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n".to_string(),
        Framing::Length => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            BODY.len()
        ),
    };
    stream.write_all(head.as_bytes()).await?;
    stream.flush().await?;
    tokio::time::sleep(pause).await;
    stream.write_all(BODY.as_bytes()).await?;
    stream.flush().await?;
    tokio::time::sleep(pause).await;
    match framing {
        Framing::Close => stream.shutdown().await,
        Framing::Length => {
            // The client closes a kept-alive connection when it is done with it.
            let closed = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf));
            match closed.await {
                Ok(Ok(0)) => Ok(()),
                _ => Err(std::io::ErrorKind::TimedOut.into()),
            }
        }
    }
}

fn grant(upstream: &SlowUpstream) -> Grant {
    Grant {
        net: Some(NetGrant {
            allow: vec![format!("http://{}", upstream.addr)],
            ..NetGrant::default()
        }),
        limits: Limits {
            timeout_ms: 60_000,
            ..Limits::default()
        },
        ..Grant::default()
    }
}

/// Requests per guest on the upstream that closes: enough to catch a race that lost
/// about half the time, few enough for a few seconds on a loaded CI machine; half as
/// many on the kept-alive one. `WARDEN_SLOW_UPSTREAM_REQUESTS` asks for more (the
/// issue's 1 000 each: `WARDEN_SLOW_UPSTREAM_REQUESTS=1000 cargo test -p warden --test
/// all net_slow_upstream`).
fn requests() -> u32 {
    std::env::var("WARDEN_SLOW_UPSTREAM_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .map_or(200, |n: u32| n.max(40) / 20 * 20)
}

/// Waits (a little) until `upstream` finished writing `count` answers.
async fn assert_all_written(upstream: &SlowUpstream, count: u32) {
    let started = Instant::now();
    while upstream.finished.load(Ordering::Relaxed) < u64::from(count)
        && started.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        upstream.finished.load(Ordering::Relaxed),
        u64::from(count),
        "the upstream could not finish writing every answer"
    );
}

/// `count` GETs through a guest exporting `get-many` (the `wstdclient` and
/// `wakiclient` test guests), in calls of 20.
async fn guest_requests(name: &str, wasm: &str, framing: Framing, count: u32) {
    let upstream = SlowUpstream::start(Duration::from_millis(2), framing).await;
    let plugin = load_granted(name, wasm, grant(&upstream));
    let started = Instant::now();
    let (mut ok, mut first_error) = (0, None);
    // In calls of 20 requests each, as a plugin making several requests per call.
    for _ in 0..count / 20 {
        let args = json!({"url": upstream.url(), "count": 20, "expect": BODY});
        let tally = call(&plugin, "get-many", args).await.unwrap();
        ok += tally["ok"].as_u64().unwrap();
        if first_error.is_none() && !tally["first-error"].is_null() {
            first_error = Some(tally["first-error"].clone());
        }
    }
    assert_eq!(
        ok,
        u64::from(count),
        "{name}, {framing:?}: {ok} of {count} requests succeeded; the first failure: {first_error:?}"
    );
    assert_all_written(&upstream, count).await;
    eprintln!(
        "{count} {name} requests ({framing:?}) in {:?}",
        started.elapsed()
    );
}

async fn fetch_calls(framing: Framing, count: u32) {
    let upstream = SlowUpstream::start(Duration::from_millis(2), framing).await;
    let plugin = load_granted("fetch", guests::FETCH, grant(&upstream));
    let started = Instant::now();
    for i in 0..count {
        let answer = call(&plugin, "get", json!({"url": upstream.url()})).await;
        let answer = answer.unwrap_or_else(|err| panic!("{framing:?}, request {i}: {err}"));
        assert_eq!(answer["status"], 200, "{framing:?}, request {i}: {answer}");
        assert_eq!(answer["body"], BODY, "{framing:?}, request {i}: {answer}");
    }
    assert_all_written(&upstream, count).await;
    eprintln!(
        "{count} fetch calls ({framing:?}) in {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_of_a_wstd_guest_succeeds_against_a_slow_upstream() {
    let wstd = ("wstdclient", guests::WSTDCLIENT);
    guest_requests(wstd.0, wstd.1, Framing::Close, requests()).await;
    guest_requests(wstd.0, wstd.1, Framing::Length, requests() / 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_of_a_waki_guest_succeeds_against_a_slow_upstream() {
    let waki = ("wakiclient", guests::WAKICLIENT);
    guest_requests(waki.0, waki.1, Framing::Close, requests()).await;
    guest_requests(waki.0, waki.1, Framing::Length, requests() / 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_of_the_fetch_plugin_succeeds_against_a_slow_upstream() {
    fetch_calls(Framing::Close, requests()).await;
    fetch_calls(Framing::Length, requests() / 2).await;
}
