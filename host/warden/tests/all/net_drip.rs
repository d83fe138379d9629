//! A slow-loris upstream (the adversarial catalog's item 19): an allowed upstream that
//! drips its response head, or its body, one byte every 100 ms and never finishes. The
//! call ends at its own deadline (1 s), on record, however steadily bytes arrive, and
//! the host serves the next call.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use warden::grant::{Grant, NetGrant};
use warden::limits::Limits;
use warden_tests::guests;

use crate::audited::Audited;

/// Serves on 127.0.0.1: `/head` drips the head, `/body` sends a head announcing
/// 100 000 bytes and drips them, `/ok` answers at once.
async fn drip_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request).into_owned();
                let (head, drip): (&[u8], bool) = if request.starts_with("GET /head") {
                    (b"", true)
                } else if request.starts_with("GET /body") {
                    (b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n", true)
                } else {
                    (
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        false,
                    )
                };
                if stream.write_all(head).await.is_err() || !drip {
                    return;
                }
                let bytes = if head.is_empty() {
                    b"HTTP/1.1 200 OK\r\nx-drip: ".as_slice()
                } else {
                    b"x".as_slice()
                };
                for n in 0.. {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let byte = bytes[n % bytes.len()..][..1].to_vec();
                    if stream.write_all(&byte).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn an_upstream_that_drips_its_head_or_body_is_cut_off_at_the_deadline() {
    let port = drip_upstream().await;
    let host = Audited::new();
    let grant = Grant {
        net: Some(NetGrant {
            allow: vec![format!("http://127.0.0.1:{port}")],
            ..NetGrant::default()
        }),
        limits: Limits {
            timeout_ms: 1000,
            ..Limits::default()
        },
        ..Grant::default()
    };
    let plugin = host.load_guest("netprobe", guests::NETPROBE, grant);
    let get = |path: &str| json!({"method": "GET", "url": format!("http://127.0.0.1:{port}{path}"), "headers": []});
    for path in ["/head", "/body"] {
        let started = Instant::now();
        let err = host.call(&plugin, "http", get(path)).await.unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(err.code(), "limit", "{path}: {err}");
        assert!(err.to_string().contains("timeout limit hit"), "{err}");
        assert!(host.last_failure("http", "limit").contains("1000 ms"));
        let records = host.records();
        let hit = records.iter().rfind(|r| r.kind == "limit.hit").unwrap();
        assert_eq!(hit.fields["limit"], "timeout", "{hit:#?}");
        let used = records
            .iter()
            .rfind(|r| r.kind == "capability.use")
            .unwrap();
        assert_eq!(used.fields["capability"], "net", "{used:#?}");
        assert!(elapsed < Duration::from_secs(5), "{path}: {elapsed:?}");
    }
    let ok = host.call(&plugin, "http", get("/ok")).await.unwrap();
    assert_eq!(ok["status"], 200);
}
