//! Header and field abuse on `warden serve`'s own HTTP server (catalog item 47), and
//! a spoofed `Host` without `Origin` on `/mcp` (item 80, DNS rebinding): each request
//! is written by hand on a raw connection, as an attacker would, and gets a clear
//! 4xx; the server then serves a normal request.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use warden_tests::guests;

use super::{ADMIN, Test};

/// Writes `request` on a fresh connection and reads the answer until the server
/// closes it (or 10 s pass): the status code and the whole answer as text.
async fn raw(t: &Test, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(t.server.addr()).await.unwrap();
    // The server may answer and close before it read everything: a failed write is
    // then part of the refusal, not of the test.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer));
    match read.await {
        Ok(Ok(_)) => {}
        // A reset after the answer was written is fine; the answer is what counts.
        Ok(Err(err)) if !answer.is_empty() => eprintln!("after the answer: {err}"),
        Ok(Err(err)) => panic!("no answer: {err}"),
        Err(_) => panic!("no answer within 10 s"),
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    (status, text)
}

/// A GET of `/v1/tools` with the admin token, with `extra` header lines (each ending
/// in CRLF) before the blank line.
fn get_with(extra: &str) -> Vec<u8> {
    format!(
        "GET /v1/tools HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN}\r\n{extra}Connection: close\r\n\r\n"
    )
    .into_bytes()
}

async fn still_serves(t: &Test) {
    let (status, text) = raw(t, &get_with("")).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("text/word-count"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_flooded_and_oversized_headers_get_a_4xx_and_the_server_keeps_serving() {
    let t = Test::start(&[("text", guests::TEXT)], "").await;
    still_serves(&t).await;
    let flood: String = (0..100_000)
        .map(|n| format!("X-Flood-{n}: {n}\r\n"))
        .collect();
    let huge = format!("X-Huge: {}\r\n", "a".repeat(1 << 20));
    let cases: [(&str, Vec<u8>, &[u16]); 8] = [
        // A bare CR inside a value, to smuggle a second header past a proxy.
        ("a bare CR in a value", get_with("X-Test: a\rInjected: yes\r\n"), &[400]),
        // A bare LF ends the line, as RFC 9112 (2.2) lets a recipient read it: two
        // headers, neither holding a line break.
        ("a bare LF in a value", get_with("X-Test: a\nInjected: yes\r\n"), &[200, 400]),
        ("a NUL in a value", get_with("X-Test: a\0b\r\n"), &[400]),
        ("a folded line", get_with("X-Test: a\r\n folded: yes\r\n"), &[400]),
        ("a header name with a space", get_with("X Test: a\r\n"), &[400]),
        ("100 000 headers", get_with(&flood), &[431]),
        ("a 1 MiB header value", get_with(&huge), &[431]),
        (
            "two Content-Length values",
            b"POST /v1/tools/text/word-count HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nContent-Length: 40\r\nConnection: close\r\n\r\n{}"
                .to_vec(),
            &[400],
        ),
    ];
    for (what, request, expected) in cases {
        let (status, text) = raw(&t, &request).await;
        assert!(
            expected.contains(&status),
            "{what}: expected {expected:?}, got {status}: {text}"
        );
        // Nothing of the request comes back as a header of the answer.
        assert!(!text.to_lowercase().contains("injected"), "{what}: {text}");
        still_serves(&t).await;
    }
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_refuses_a_spoofed_host_without_an_origin() {
    let t = Test::start(&[("text", guests::TEXT)], "").await;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test","version":"0"}}}"#;
    let initialize = |host: &str| {
        format!(
            "POST /mcp HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    // A page of evil.com whose name was rebound to 127.0.0.1: the browser sends
    // `Host: evil.com`, and a same-origin request may carry no `Origin`.
    for host in ["evil.com", "evil.com:7878", "localhost.evil.com"] {
        let (status, text) = raw(&t, &initialize(host)).await;
        assert_eq!(status, 403, "Host: {host}: {text}");
        assert!(text.contains("forbidden-host"), "Host: {host}: {text}");
        assert!(text.contains(host), "Host: {host}: {text}");
    }
    // The server's own address, and loopback names, are served.
    let own = t.server.addr().to_string();
    for host in [own.as_str(), "localhost", "127.0.0.1"] {
        let (status, text) = raw(&t, &initialize(host)).await;
        assert_eq!(status, 200, "Host: {host}: {text}");
        assert!(text.contains("\"serverInfo\""), "Host: {host}: {text}");
    }
    t.server.shutdown().await;
}
