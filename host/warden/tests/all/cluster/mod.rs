//! Nodes (`warden up`, each its own home and process) on one PostgreSQL database: what
//! one node writes, the other serves. Skipped, with a message, where PostgreSQL is not
//! installed, unless WARDEN_REQUIRE_POSTGRES=1.
//!
//! - [`nodes`]: two nodes share the audit chain, memory, budgets and plugins;
//! - [`database`]: a database that refuses, migrations, a database lost and back;
//! - [`runs`]: agent runs taken over from a dead node, approvals decided anywhere.

mod database;
mod nodes;
mod runs;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use warden_postgres::testing::TestCluster;

use super::models::fake::Fake;
use super::models::gateway::openai_provider;

/// The audit signing key every node of the cluster holds.
const KEY: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

/// A home configured for the cluster's database, holding the cluster's audit key.
fn node_home(config: &str) -> tempfile::TempDir {
    use std::os::unix::fs::OpenOptionsExt as _;
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("warden.toml"), config).unwrap();
    let mut key = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(home.path().join("audit.key"))
        .unwrap();
    std::io::Write::write_all(&mut key, KEY.as_bytes()).unwrap();
    home
}

/// A node: `warden up` on a free port; its process, URL and what it printed.
fn up(home: &Path) -> (Child, String, String) {
    super::serve::commands::up_quietly(home)
}

async fn call(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    tool: &str,
    args: Value,
) -> (u16, Value) {
    let resp = http
        .post(format!("{url}/v1/tools/{tool}"))
        .bearer_auth(token)
        .json(&args)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Waits until `url`'s tool list passes `done`; how long it took.
async fn until(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    done: impl Fn(&Vec<String>) -> bool,
) -> std::time::Duration {
    let started = std::time::Instant::now();
    loop {
        let body: Value = http
            .get(format!("{url}/v1/tools"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let tools: Vec<String> = body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap_or_default().to_string())
            .collect();
        if done(&tools) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{url}: {tools:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The token `warden up` printed.
fn token_of(printed: &str) -> String {
    super::serve::commands::word(printed, "wdn_")
}

/// `warden --home HOME ARGS…` with `env` set: its exit code, and what it printed
/// (stdout, then stderr).
pub(super) fn warden(home: &Path, env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(home)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
