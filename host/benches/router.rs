//! Router overhead: a chat request through `Router::complete` (wire mapping, target
//! choice, retry bookkeeping, HTTP client, answer parsing) against the same request
//! sent as raw bytes to the same local fake provider. Both open a new connection per
//! request, as the router does.
//!
//! `cargo bench -p warden --bench router`; figures in BENCHMARKS.md.

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use warden::models::{
    ChatRequest, Message, ModelsConfig, ProviderConfig, ProviderKind, Role, RouteConfig, Router,
    Strategy,
};

const ANSWER: &str = r#"{"choices":[{"message":{"role":"assistant","content":"pong"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":2}}"#;

/// A provider that answers every request at once with `ANSWER`.
async fn fake() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut seen = Vec::new();
                loop {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if seen.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let out = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{ANSWER}",
                    ANSWER.len()
                );
                let _ = stream.write_all(out.as_bytes()).await;
            });
        }
    });
    addr
}

fn router(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = rt.block_on(fake());
    let config = ModelsConfig {
        providers: [(
            "local".to_string(),
            ProviderConfig {
                kind: ProviderKind::Openai,
                base_url: format!("http://{addr}/v1"),
                api_key_env: None,
                timeout_ms: 5_000,
            },
        )]
        .into(),
        routes: [(
            "fast".to_string(),
            RouteConfig {
                targets: vec!["local/m".into()],
                strategy: Strategy::Fallback,
                weights: Vec::new(),
            },
        )]
        .into(),
        ..ModelsConfig::default()
    };
    let router = Router::new(config).unwrap();
    let request = ChatRequest {
        messages: vec![Message::new(Role::User, "ping")],
        ..ChatRequest::default()
    };
    let body = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "ping"}]})
        .to_string();
    let raw = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );

    let mut group = c.benchmark_group("model-call");
    group.bench_function("direct (raw HTTP/1.1 to the fake provider)", |b| {
        b.to_async(&rt).iter(|| async {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(raw.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.unwrap();
            let text = String::from_utf8_lossy(&answer);
            let json = &text[text.find("\r\n\r\n").unwrap() + 4..];
            black_box(serde_json::from_str::<serde_json::Value>(json).unwrap())
        })
    });
    group.bench_function("through the router (route fast, one target)", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(router.complete("fast", &request).await.unwrap()) })
    });
    group.finish();
}

criterion_group!(benches, router);
criterion_main!(benches);
