//! The floor under any HTTP server on this machine: a bare `axum` server, on the
//! bench's runtime or on a current-thread runtime of its own.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Figures;
use crate::clients::{Waits, rest_client};

/// Where a floor server runs.
#[derive(Clone, Copy)]
pub(crate) enum FloorRuntime {
    /// On the bench's multi-threaded runtime, as `warden serve` runs.
    Shared,
    /// On a current-thread runtime on a thread of its own: no other worker to wake.
    OwnThread,
}

/// The floor under any HTTP server on this machine: a bare `axum` router with the same
/// route, parsing the same body and answering the same JSON after `busy` (spinning; no
/// tool, no audit, no layers), called as the same client calls Warden.
pub(crate) async fn floor_round(
    calls: usize,
    busy: Duration,
    runtime: FloorRuntime,
    waits: Waits,
) -> Figures {
    let app = axum::Router::new().route(
        "/v1/tools/text/word-count",
        axum::routing::post(move |axum::Json(args): axum::Json<Value>| async move {
            let spin = Instant::now();
            while spin.elapsed() < busy {
                std::hint::spin_loop();
            }
            let text = args["text"].as_str().unwrap_or_default();
            let sentences = text.matches('.').count();
            axum::Json(json!({ "result": { "sentences": sentences } }))
        }),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    // On the runtime that serves it; as `warden serve` does, no Nagle delay on its
    // connections.
    let serve = |listener| async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        warden::serve::idle_poll::watch(&listener);
        let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
            let _ = stream.set_nodelay(true);
            warden::serve::idle_poll::watch(stream);
        });
        axum::serve(listener, app).await
    };
    match runtime {
        FloorRuntime::Shared => {
            let server = tokio::spawn(serve(listener));
            let figures = rest_client(addr, calls, waits).await;
            server.abort();
            figures
        }
        FloorRuntime::OwnThread => {
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let server = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async move {
                        tokio::select! {
                            _ = serve(listener) => {}
                            _ = stopped => {}
                        }
                    });
            });
            let figures = rest_client(addr, calls, waits).await;
            let _ = stop.send(());
            server.join().expect("the floor server panicked");
            figures
        }
    }
}
