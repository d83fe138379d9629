//! A client that polls its socket for the answer instead of sleeping in the kernel until
//! it comes, as a latency benchmark's busy-poll mode does: what a server costs a call,
//! without the caller's own wake-up. On this VM a thread that sleeps through a call
//! is woken through the hypervisor (halt polling is off), which adds tens of µs to
//! every round trip whatever the server does; a polling caller never sleeps.
//!
//! One plain TCP connection with keep-alive, without Nagle's delay, the request's bytes
//! made once; the answer read until its `content-length` is in. Only what the bench's
//! servers send is understood: HTTP/1.1 with a length, no chunks.

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use serde_json::{Value, json};

use crate::{Figures, TEXT, TOKEN};

/// `calls` calls of `text`'s `word-count` at `addr`'s REST route, one after another,
/// each answer polled for; on a thread of its own.
pub(crate) async fn polling_client(addr: SocketAddr, calls: usize) -> Figures {
    tokio::task::spawn_blocking(move || polling_round(addr, calls))
        .await
        .expect("the polling client panicked")
}

fn polling_round(addr: SocketAddr, calls: usize) -> Figures {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream.set_nonblocking(true).unwrap();
    let body = json!({ "text": TEXT }).to_string();
    let request = format!(
        "POST /v1/tools/text/word-count HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {TOKEN}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut answer = Vec::with_capacity(4096);
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        write_all(&mut stream, request.as_bytes());
        let (status, body) = read_answer(&mut stream, &mut answer);
        latencies.push(t.elapsed());
        let value: Value = serde_json::from_slice(body).unwrap();
        assert!(
            status == 200 && value["result"]["sentences"] == json!(2),
            "{status}: {value}"
        );
    }
    Figures::new(started.elapsed(), latencies)
}

/// Writes all of `bytes` to the non-blocking `stream`, spinning while its buffer is full.
fn write_all(stream: &mut TcpStream, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(err) if err.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(err) => panic!("writing a request: {err}"),
        }
    }
}

/// Reads one whole answer from the non-blocking `stream` into `buf`, polling until it
/// is in: its status and its body.
fn read_answer<'a>(stream: &mut TcpStream, buf: &'a mut Vec<u8>) -> (u16, &'a [u8]) {
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => panic!("the server closed the connection"),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(err) if err.kind() == ErrorKind::WouldBlock => {
                std::hint::spin_loop();
                continue;
            }
            Err(err) => panic!("reading an answer: {err}"),
        }
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut head = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(body_at) = head.parse(buf).expect("an HTTP/1.1 answer")
        else {
            continue;
        };
        let length: usize = head
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
            .expect("an answer with a content-length");
        if buf.len() >= body_at + length {
            let status = head.code.expect("a status");
            return (status, &buf[body_at..body_at + length]);
        }
    }
}
