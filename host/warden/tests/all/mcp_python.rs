//! The official MCP Python SDK (`mcp`, as `.ci/run` installs it in `target/py-tools`)
//! as a client of Warden: over stdio (`warden mcp` as its subprocess) and over
//! Streamable HTTP (`/mcp` of `warden serve`, with a bearer token), at the handshake
//! revision 2025-11-25 and at the newest one the SDK and the server share. The client
//! (`fixtures/mcp_client.py`) checks the tool list with schemas and annotations,
//! structuredContent, isError and progress; over HTTP it also hears
//! `notifications/tools/list_changed` when a plugin is added while it is connected.
//!
//! An OAuth access token of a test issuer on loopback works as the bearer token too.
//!
//! Skipped with a message when the package is not installed, unless
//! `WARDEN_REQUIRE_POLYGLOT` is set (`.ci/run` sets it).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncBufReadExt as _;
use warden::config::home::{Config, hash_token};
use warden::home::Home;
use warden::serve::{ServeOptions, Server};
use warden_tests::guests;

use crate::authoring::{repo, text};

/// The version `.ci/run` installs.
const MCP_PY: &str = "2.3.0";

const TOKEN: &str = "wdn_python-sdk-test-token";

/// The venv's Python, if it has the `mcp` package.
pub(crate) fn python_with_mcp() -> Option<PathBuf> {
    let python = repo().join("target/py-tools/bin/python");
    let found = std::process::Command::new(&python)
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('mcp'))",
        ])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| text(&out.stdout).trim().to_string());
    match found {
        Some(_) => Some(python),
        None if std::env::var_os("WARDEN_REQUIRE_POLYGLOT").is_some() => panic!(
            "the mcp Python package is not in target/py-tools and WARDEN_REQUIRE_POLYGLOT is set: run .ci/run, or target/py-tools/bin/pip install mcp=={MCP_PY}"
        ),
        None => {
            eprintln!(
                "skipped: the mcp Python package is not in target/py-tools (target/py-tools/bin/pip install mcp=={MCP_PY}, or run .ci/run); set WARDEN_REQUIRE_POLYGLOT=1 to fail instead"
            );
            None
        }
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/all/fixtures/mcp_client.py")
}

/// Runs the client script with `args` to its end; panics with its output on failure.
async fn client(python: &Path, args: &[&str]) -> String {
    let out = tokio::process::Command::new(python)
        .arg(script())
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("running the MCP Python client");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "the MCP Python client failed:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_lists_and_calls_tools_over_stdio() {
    let Some(python) = python_with_mcp() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    crate::mcp::add_with(home.path(), "text", guests::TEXT, Some("text"));
    let warden = env!("CARGO_BIN_EXE_warden");
    let home_arg = home.path().to_str().unwrap();
    for (mode, version) in [("legacy", "2025-11-25"), ("auto", "2026-07-28")] {
        let out = client(&python, &["stdio", mode, warden, home_arg]).await;
        assert!(out.contains(&format!("protocol: {version}")), "{out}");
        assert!(
            out.contains("ok: a failing tool is a result with isError"),
            "{out}"
        );
    }
}

/// `warden serve` in process on a free loopback port, one admin token.
async fn serve() -> (tempfile::TempDir, Server) {
    serve_with("").await
}

/// `warden serve` in process on a free loopback port, one admin token and `extra`
/// config.
async fn serve_with(extra: &str) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    crate::mcp::add_with(dir.path(), "text", guests::TEXT, Some("text"));
    let home = Home::at(dir.path());
    let config = Config::parse(
        &format!(
            "{extra}\n[[tokens]]\nname = \"sdk\"\nsha256 = \"{}\"\nroles = [\"admin\"]\n",
            hash_token(TOKEN)
        ),
        "test config",
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = ServeOptions {
        config,
        ..ServeOptions::new(home)
    };
    (dir, Server::start(options, listener).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_uses_mcp_over_http_and_hears_list_changed() {
    let Some(python) = python_with_mcp() else {
        return;
    };
    let (_dir, server) = serve().await;
    let base = format!("http://{}", server.addr());
    let url = format!("{base}/mcp");

    // The newest revision: listed and called, no session.
    let out = client(&python, &["http", "auto", &url, TOKEN]).await;
    assert!(out.contains("protocol: 2026-07-28"), "{out}");

    // 2025-11-25, with a session: a plugin added while connected is announced.
    let mut child = tokio::process::Command::new(&python)
        .arg(script())
        .args(["http", "legacy", &url, TOKEN])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("running the MCP Python client");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("the client ended before it was ready:\n{seen}"));
        seen.push_str(&line);
        seen.push('\n');
        if line == "READY" {
            break;
        }
    }
    assert!(seen.contains("protocol: 2025-11-25"), "{seen}");
    let resp = reqwest::Client::new()
        .put(format!("{base}/v1/plugins/counter"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/wasm")
        .body(std::fs::read(guests::COUNTER).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::CREATED);
    while let Some(line) = lines.next_line().await.unwrap() {
        seen.push_str(&line);
        seen.push('\n');
    }
    let status = child.wait().await.unwrap();
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert!(status.success(), "{seen}\nstderr:\n{stderr}");
    assert!(
        seen.contains("ok: notifications/tools/list_changed after the reload"),
        "{seen}"
    );
    assert!(
        seen.contains("ok: the added plugin's tool is listed"),
        "{seen}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_calls_tools_with_an_oauth_access_token() {
    use crate::serve::oauth::issuer::{Issuer, SigningKey, claims};
    let Some(python) = python_with_mcp() else {
        return;
    };
    let key = SigningKey::ed("sdk-key");
    let idp = Issuer::start(&[&key]).await;
    let (_dir, server) = serve_with(&idp.config("")).await;
    let url = format!("http://{}/mcp", server.addr());
    let token = key.sign(&claims(
        "sdk-user",
        serde_json::json!({"scope": "tools:call"}),
    ));
    let out = client(&python, &["http", "auto", &url, &token]).await;
    assert!(out.contains("protocol: 2026-07-28"), "{out}");
    assert!(
        out.contains("ok: a failing tool is a result with isError"),
        "{out}"
    );
    // On record under the token's principal.
    let audit = server.registry().runtime().audit().unwrap().clone();
    let calls = tokio::task::spawn_blocking(move || {
        audit.read(warden::audit::Filter {
            kind: Some("tool.call".into()),
            principal: Some("user:sdk-user".into()),
            ..Default::default()
        })
    })
    .await
    .unwrap()
    .unwrap();
    assert!(calls.len() >= 2, "{calls:?}");
    server.shutdown().await;
}
