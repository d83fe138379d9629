//! Regression tests of issue 13, one gate for every action: each test drives Warden as
//! a user would and shows one way an action gets past the access policy, the grant, a
//! budget or the audit record on the tree before the gate. They fail there, each on
//! the assertion that names the gap, and pass once every entry point goes through the
//! gate.
//!
//! - [`denials`]: a forbid on stdio `warden mcp`; the record of a `warden call` refused
//!   by a forbid; a refused capability use by a tool that then succeeds;
//! - [`hangups`]: an HTTP caller that hangs up mid-call, a call past
//!   `request_timeout_ms`, and a gateway caller that hangs up while the provider stalls;
//! - [`approvals`]: an edited approval decided again (a forbid wins); the starter of a
//!   run approving its own hold;
//! - [`budgets`]: an agent's `step` calling `warden:host/models` itself; a daily budget
//!   across two `warden call` processes.

mod approvals;
mod budgets;
mod denials;
mod hangups;

use std::path::Path;
use std::process::Output;

use serde_json::Value;

/// `warden --home HOME ARGS…`, awaited without blocking the runtime (a fake provider
/// of the test may be answering the process meanwhile).
async fn warden(home: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("running warden")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Checks the exit code; returns stdout.
#[track_caller]
fn expect(out: &Output, code: i32) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// `warden plugin add WASM --name NAME`, with `grant` (TOML) when given.
async fn add(home: &Path, name: &str, wasm: &str, grant: Option<&str>) {
    let dir = home.join("grant-files");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.toml"));
    let mut args = vec!["plugin", "add", wasm, "--name", name];
    if let Some(grant) = grant {
        std::fs::write(&file, grant).unwrap();
        args.extend(["--grant", file.to_str().unwrap()]);
    }
    expect(&warden(home, &args).await, 0);
}

/// The home's audit records of `kind`, as `warden audit query --json` prints them.
async fn records(home: &Path, kind: &str) -> Vec<Value> {
    let out = warden(home, &["audit", "query", "--kind", kind, "--json"]).await;
    expect(&out, 0)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
