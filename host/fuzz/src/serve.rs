//! `warden serve`'s request decoding: bodies posted to `/mcp` (JSON-RPC messages, in a
//! session opened once) and to `/v1/tools/{plugin}/{tool}` (a tool's arguments), over
//! the test guests `text` and `types`. One server a process, started on loopback as
//! `warden serve` starts; each input is answered in process by its router (the same
//! routes and middleware as the listener), with no connection. Every answer is clean:
//! a 2xx with JSON-RPC messages or the call's result, or a 4xx with an error, never a
//! 5xx, a hang or a body that is not what the route promises.

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use warden_config::home::{Config, hash_token};
use warden_runtime::home::{Home, InstalledMeta};
use warden_server::{ServeOptions, Server};
use warden_tests::guests;

const TOKEN: &str = "wdn_fuzz-admin-token";

/// The tools an input to `http_decode` is posted to: its first byte picks one.
pub const TOOLS: [&str; 20] = [
    "text/word-count",
    "types/echo-record",
    "types/echo-nested",
    "types/echo-variant",
    "types/echo-flags",
    "types/echo-char",
    "types/echo-u8",
    "types/echo-results",
    "types/describe",
    "no/such-tool",
    "types/echo-f32",
    "types/echo-f64",
    "types/echo-s64",
    "types/echo-u64",
    "types/echo-tuple",
    "types/echo-enum",
    "types/echo-option-record",
    "types/echo-bytes",
    "types/fallible",
    "text/transform.truncate",
];

struct Served {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    session: String,
    _server: Server,
    _home: tempfile::TempDir,
}

fn served() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(|| {
        let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
        let dir = tempfile::tempdir().expect("a temp dir");
        let home = Home::at(dir.path());
        for (name, path) in [("text", guests::TEXT), ("types", guests::TYPES)] {
            let wasm = std::fs::read(path).expect("a test guest");
            let meta = InstalledMeta {
                name: name.into(),
                digest: warden_runtime::plugin::digest(&wasm),
                added_at: 0,
                source: path.into(),
                manifest: None,
                wit_docs: None,
                provenance: None,
            };
            home.install(&meta, &wasm).expect("installing a test guest");
        }
        let config = format!(
            "[[tokens]]\nname = \"fuzz\"\nsha256 = \"{}\"\nroles = [\"admin\"]\n",
            hash_token(TOKEN)
        );
        let options = ServeOptions {
            config: Config::parse(&config, "fuzz config").expect("the config"),
            watch: false,
            ..ServeOptions::new(home)
        };
        let server = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a loopback port");
            Server::start(options, listener).await.expect("serving")
        });
        let router = server.router();
        let session = rt.block_on(open_session(&router));
        Served {
            rt,
            router,
            session,
            _server: server,
            _home: dir,
        }
    })
}

fn post(path: &str, session: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut request = Request::post(path)
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json");
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25");
    }
    request.body(Body::from(body)).expect("a request")
}

/// Answers `request` through `router`: its status and whole body.
async fn answer(router: &axum::Router, request: Request<Body>) -> (StatusCode, String) {
    let answered = async {
        let response = router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap_or_else(|err| panic!("{status}: the answer broke off: {err}"))
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(30), answered)
        .await
        .expect("an answer within 30 s")
}

async fn open_session(router: &axum::Router) -> String {
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "fuzz", "version": "0"}}
    });
    let response = router
        .clone()
        .oneshot(post("/mcp", None, initialize.to_string().into_bytes()))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK, "initialize");
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .expect("a session id")
        .to_owned();
    let _ = response.into_body().collect().await;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, text) = answer(
        router,
        post("/mcp", Some(&session), initialized.to_string().into_bytes()),
    )
    .await;
    assert!(status.is_success(), "initialized: {status}: {text}");
    session
}

/// A body posted to `/mcp` in the session.
pub fn mcp_decode(data: &[u8]) {
    let served = served();
    let request = post("/mcp", Some(&served.session), data.to_vec());
    let (status, text) = served.rt.block_on(answer(&served.router, request));
    assert!(
        status.is_success() || status.is_client_error(),
        "{status}: {text}"
    );
    if status == StatusCode::OK {
        // JSON, or server-sent events whose data are JSON-RPC messages.
        let data: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .collect();
        let messages = if data.is_empty() {
            vec![text.as_str()]
        } else {
            data
        };
        for message in messages {
            let value: Value = serde_json::from_str(message)
                .unwrap_or_else(|err| panic!("not JSON ({err}): {message}"));
            assert!(
                value.get("jsonrpc").is_some() || value.is_array(),
                "{value}"
            );
        }
    }
}

/// The first byte picks a tool of [`TOOLS`]; the rest is the body of its call.
pub fn http_decode(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let tool = TOOLS[usize::from(pick) % TOOLS.len()];
    let served = served();
    let request = post(&format!("/v1/tools/{tool}"), None, body.to_vec());
    let (status, text) = served.rt.block_on(answer(&served.router, request));
    assert!(
        status.is_success() || status.is_client_error(),
        "{tool}: {status}: {text}"
    );
    let value: Value = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{tool}: not JSON ({err}): {text}"));
    if status.is_success() {
        assert!(value.get("result").is_some(), "{tool}: {value}");
    } else {
        assert!(value["error"]["code"].is_string(), "{tool}: {value}");
        assert!(value["error"]["message"].is_string(), "{tool}: {value}");
    }
}
