//! Every allowed request succeeds against an upstream that writes the response head
//! and the body in separate, delayed writes (as Python's `http.server` does), with a
//! guest built on `wstd` and with the bundled `fetch` plugin.
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

/// An HTTP/1.0 upstream on 127.0.0.1 that answers every request with the head, a
/// pause, the body, a pause, then closes; it counts the answers it finished writing.
struct SlowUpstream {
    addr: SocketAddr,
    finished: Arc<AtomicU64>,
}

impl SlowUpstream {
    async fn start(pause: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let finished = Arc::new(AtomicU64::new(0));
        let count = finished.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let count = count.clone();
                tokio::spawn(async move {
                    if answer(stream, pause).await.is_ok() {
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

async fn answer(mut stream: TcpStream, pause: Duration) -> std::io::Result<()> {
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
    stream
        .write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        .await?;
    stream.flush().await?;
    tokio::time::sleep(pause).await;
    stream.write_all(BODY.as_bytes()).await?;
    stream.flush().await?;
    tokio::time::sleep(pause).await;
    stream.shutdown().await
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

/// Requests per guest: enough to catch a race that loses most of the time, few enough
/// for a few seconds on a loaded CI machine.
const REQUESTS: u32 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_of_a_wstd_guest_succeeds_against_a_slow_upstream() {
    let upstream = SlowUpstream::start(Duration::from_millis(2)).await;
    let plugin = load_granted("wstdclient", guests::WSTDCLIENT, grant(&upstream));
    let started = Instant::now();
    let (mut ok, mut first_error) = (0, None);
    // In calls of 20 requests each, as a plugin making several requests per call.
    for _ in 0..REQUESTS / 20 {
        let args = json!({"url": upstream.url(), "count": 20, "expect": BODY});
        let tally = call(&plugin, "get-many", args).await.unwrap();
        ok += tally["ok"].as_u64().unwrap();
        if first_error.is_none() && !tally["first-error"].is_null() {
            first_error = Some(tally["first-error"].clone());
        }
    }
    assert_eq!(
        ok,
        u64::from(REQUESTS),
        "{ok} of {REQUESTS} requests succeeded; the first failure: {first_error:?}"
    );
    // Give the upstream's last answer a moment to finish its close.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        upstream.finished.load(Ordering::Relaxed),
        u64::from(REQUESTS),
        "the upstream could not finish writing every answer"
    );
    eprintln!("{REQUESTS} wstd requests in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_of_the_fetch_plugin_succeeds_against_a_slow_upstream() {
    let upstream = SlowUpstream::start(Duration::from_millis(2)).await;
    let plugin = load_granted("fetch", guests::FETCH, grant(&upstream));
    let started = Instant::now();
    for i in 0..REQUESTS {
        let answer = call(&plugin, "get", json!({"url": upstream.url()})).await;
        let answer = answer.unwrap_or_else(|err| panic!("request {i}: {err}"));
        assert_eq!(answer["status"], 200, "request {i}: {answer}");
        assert_eq!(answer["body"], BODY, "request {i}: {answer}");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        upstream.finished.load(Ordering::Relaxed),
        u64::from(REQUESTS)
    );
    eprintln!("{REQUESTS} fetch calls in {:?}", started.elapsed());
}
