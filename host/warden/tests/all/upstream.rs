//! A small HTTP/1.1 server on 127.0.0.1 for the network tests: it records every
//! request it receives and answers by path.
//!
//! - `/hello` → 200 `hello`
//! - `/echo` → 200, the request's headers as the body (`name: value` lines)
//! - `/redirect?to=URL` → 302 to URL
//! - `/big?n=N` → 200 with N bytes (with `Content-Length`)
//! - `/stream?n=N` → 200 with N bytes, no length, connection close
//! - `/slow` → waits 30 s before answering

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) headers: Vec<(String, String)>,
}

impl Seen {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A running upstream; it stops when the test's runtime ends.
pub(crate) struct Upstream {
    pub(crate) addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    /// Starts a plain-HTTP upstream on 127.0.0.1 (an ephemeral port).
    pub(crate) async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Starts an upstream that speaks TLS with `acceptor` when given.
    pub(crate) async fn start_with(acceptor: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let record = record.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(stream).await {
                                serve(tls, record).await;
                            }
                        }
                        None => serve(stream, record).await,
                    }
                });
            }
        });
        Self { addr, seen }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request received so far.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve(mut stream: impl AsyncRead + AsyncWrite + Unpin, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    let _ = stream.read_exact(&mut body).await;
    let request = Seen {
        method,
        target: target.clone(),
        headers: headers.clone(),
    };
    seen.lock().unwrap().push(request);

    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let param = |key: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    };
    let n = || {
        param("n")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0)
    };
    let reply = |status: &str, extra: &str, body: &[u8]| {
        let mut out = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\ncontent-type: text/plain\r\nconnection: close\r\n{extra}\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    };
    let out = match path {
        "/hello" => reply("200 OK", "", b"hello"),
        "/echo" => {
            let lines: String = headers.iter().map(|(n, v)| format!("{n}: {v}\n")).collect();
            reply("200 OK", "", lines.as_bytes())
        }
        "/redirect" => reply(
            "302 Found",
            &format!("location: {}\r\n", param("to").unwrap_or_default()),
            b"",
        ),
        "/big" => reply("200 OK", "", &vec![b'x'; n()]),
        "/stream" => {
            let mut out =
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n"
                    .to_vec();
            out.extend(vec![b'x'; n()]);
            out
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            reply("200 OK", "", b"late")
        }
        _ => reply("404 Not Found", "", b"no such path"),
    };
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
}
