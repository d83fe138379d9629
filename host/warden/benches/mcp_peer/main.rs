//! `warden mcp` side by side with another MCP host over stdio: the same lean JSON-RPC
//! client (newline-delimited JSON over the child's pipes, one request at a time), the
//! same component (`tests/guests/adder`, a typed `add(a, b)` with no imports), the same
//! number of sequential `tools/call`s after a warm-up. It prints each host's p50, p99
//! and calls per second, and the ratio of each p50 to the peer's.
//!
//! ```text
//! cargo bench -p warden --bench mcp_peer
//! PEER_MCP_CMD='wassette serve --stdio --plugin-dir "$PEER_COMPONENT_DIR"' \
//!     cargo bench -p warden --bench mcp_peer
//! ```
//!
//! - `PEER_MCP_CMD`: the peer, run by `sh -c`, with `PEER_COMPONENT_DIR` set to a
//!   directory holding the component (`adder.wasm`); unset, only Warden runs.
//! - `PEER_MCP_TOOL`: the peer's name of the tool (default: the one tool whose name is
//!   `add` or ends in it).
//! - `MCP_PEER_CALLS`: calls measured per host (default 3000), after a tenth as many
//!   unmeasured.
//! - `MCP_PEER_WARDEN`: the `warden` binary to run (default: this build's), to compare
//!   two builds in turn on a noisy machine.
//!
//! Warden runs twice: with the audit log's `full` durability (each record synced
//! before its answer) and `process` (written before its answer, synced within 10 ms;
//! `warden mcp`'s default). Homes live in the target directory, a real disk.
//!
//! A third row is the floor (see `floor.rs`): the same SDK, transport and answer with
//! `add` computed natively, no sandbox and no audit record, served by this bench
//! binary itself as a child. `warden mcp`'s p50 less the floor's is Warden's own work.
//!
//! A second table does the same over HTTP (see `http.rs`): `warden serve`'s `/mcp`
//! (a child process, the home's token), in a 2025-11-25 session and in 2026-07-28
//! requests without one, with each durability; beside it the peer named by
//! `PEER_MCP_HTTP_CMD`, reached at `PEER_MCP_HTTP_URL` over its own HTTP transport.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod floor;
mod http;

use http::{HttpClient, Transport};

/// A host under test, as a child process stopped when this is dropped.
struct Running(Child);

impl Running {
    /// Starts `command` with the standard streams it sets (null where it sets none).
    fn spawn(command: &mut Command) -> Self {
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("starting {command:?}: {err}"));
        Self(child)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One host under test, as a child speaking MCP over stdio.
struct Host {
    _child: Running,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Host {
    fn spawn(mut command: Command) -> Self {
        let mut child = Running::spawn(
            command
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        );
        let stdin = child.0.stdin.take().unwrap();
        let stdout = BufReader::new(child.0.stdout.take().unwrap());
        Self {
            _child: child,
            stdin,
            stdout,
            next_id: 1,
        }
    }

    fn send(&mut self, message: &Value) {
        let mut line = serde_json::to_vec(message).unwrap();
        line.push(b'\n');
        self.stdin.write_all(&line).unwrap();
        self.stdin.flush().unwrap();
    }
}

impl Client for Host {
    /// Sends a request and reads messages until its response (skipping notifications
    /// and the host's own requests).
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(
                n > 0,
                "the host closed stdout while {method} {id} was pending"
            );
            let Ok(message) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if message.get("id") == Some(&json!(id)) && message.get("method").is_none() {
                if let Some(error) = message.get("error") {
                    panic!("{method}: {error}");
                }
                return message["result"].clone();
            }
        }
    }

    fn notify(&mut self, method: &str) {
        self.send(&json!({"jsonrpc": "2.0", "method": method}));
    }
}

/// An MCP client of one host, one request at a time, over stdio or HTTP.
trait Client {
    /// Sends a request and returns its result (panics on an error).
    fn request(&mut self, method: &str, params: Value) -> Value;

    /// Sends a notification.
    fn notify(&mut self, method: &str);

    /// Starts the session: `initialize`, then `notifications/initialized`.
    fn initialize(&mut self) {
        initialize(self);
    }
}

fn initialize(client: &mut (impl Client + ?Sized)) {
    client.request(
        "initialize",
        json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "warden-mcp-peer-bench", "version": "0.1.0"},
        }),
    );
    client.notify("notifications/initialized");
}

/// The name of the `add` tool: `wanted` if given, else the one whose name is `add` or
/// ends in it.
fn add_tool(client: &mut impl Client, wanted: Option<&str>) -> String {
    let listed = client.request("tools/list", json!({}));
    let names: Vec<String> = listed["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(String::from))
        .collect();
    if let Some(wanted) = wanted {
        assert!(
            names.iter().any(|n| n == wanted),
            "no tool {wanted} in {names:?}"
        );
        return wanted.to_string();
    }
    let matching: Vec<&String> = names.iter().filter(|n| n.ends_with("add")).collect();
    match matching[..] {
        [one] => one.clone(),
        _ => panic!("tools {names:?}: set PEER_MCP_TOOL to the add tool's name"),
    }
}

fn add(client: &mut impl Client, tool: &str, a: i64) {
    let result = client.request(
        "tools/call",
        json!({"name": tool, "arguments": {"a": a, "b": 1}}),
    );
    assert_ne!(result["isError"], json!(true), "{result}");
    let text = result.to_string();
    assert!(text.contains(&(a + 1).to_string()), "add({a}, 1): {text}");
}

/// Starts the session, finds the add tool (`wanted`, or the one [`add_tool`] finds),
/// then times `calls` round trips after `calls / 10` unmeasured.
fn measure(client: &mut impl Client, wanted: Option<&str>, calls: usize) -> Figures {
    client.initialize();
    let tool = add_tool(client, wanted);
    for a in 0..calls / 10 {
        add(client, &tool, a as i64);
    }
    let mut times = Vec::with_capacity(calls);
    let start = Instant::now();
    for a in 0..calls {
        let t = Instant::now();
        add(client, &tool, 1000 + a as i64);
        times.push(t.elapsed());
    }
    let total = start.elapsed();
    times.sort();
    Figures {
        p50: times[times.len() / 2],
        p99: times[(times.len() * 99 / 100).min(times.len() - 1)],
        per_second: calls as f64 / total.as_secs_f64(),
    }
}

struct Figures {
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

/// Starts `command` as a host over stdio, then measures `calls` of its add tool; the
/// host is stopped after.
fn measure_host(command: Command, wanted: Option<&str>, calls: usize) -> Figures {
    measure(&mut Host::spawn(command), wanted, calls)
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn warden(home: &Path) -> Command {
    let binary =
        std::env::var_os("MCP_PEER_WARDEN").unwrap_or_else(|| env!("CARGO_BIN_EXE_warden").into());
    let mut command = Command::new(binary);
    command
        .arg("--home")
        .arg(home)
        .env_remove("RUST_LOG")
        .env_remove("WARDEN_AUDIT_DURABILITY");
    command
}

fn main() {
    if std::env::var_os(floor::FLOOR_ENV).is_some() {
        return floor::serve();
    }
    // `cargo bench` passes `--bench`; a filter argument is not meaningful here.
    let calls: usize = std::env::var("MCP_PEER_CALLS")
        .ok()
        .map(|v| v.parse().expect("MCP_PEER_CALLS: a number of calls"))
        .unwrap_or(3000);
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let components = work.path().join("components");
    std::fs::create_dir_all(&components).unwrap();
    std::fs::copy(warden_tests::guests::ADDER, components.join("adder.wasm")).unwrap();

    let home = work.path().join("home");
    let added = warden(&home)
        .args([
            "plugin",
            "add",
            warden_tests::guests::ADDER,
            "--name",
            "adder",
        ])
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");

    let mut rows: Vec<(String, Figures)> = Vec::new();
    for durability in ["full", "process"] {
        let mut command = warden(&home);
        command
            .arg("mcp")
            .env("WARDEN_AUDIT_DURABILITY", durability);
        let figures = measure_host(command, None, calls);
        rows.push((format!("warden mcp, audit {durability}"), figures));
    }
    let mut command = Command::new(std::env::current_exe().expect("the bench's own path"));
    command.env(floor::FLOOR_ENV, "1");
    let figures = measure_host(command, None, calls);
    rows.push(("floor: rmcp, native add, no audit".to_string(), figures));
    let peer = std::env::var("PEER_MCP_CMD").ok().filter(|c| !c.is_empty());
    if let Some(cmd) = &peer {
        // `exec`: the shell becomes the peer, so killing the child at the end stops
        // the peer (a peer that outlives its stdin would otherwise be left running).
        let mut command = Command::new("sh");
        command
            .args(["-c", &format!("exec {cmd}")])
            .env("PEER_COMPONENT_DIR", &components);
        let wanted = std::env::var("PEER_MCP_TOOL").ok();
        let figures = measure_host(command, wanted.as_deref(), calls);
        rows.push((format!("peer: {cmd}"), figures));
    }

    print_rows(
        &format!(
            "{calls} sequential tools/call of add(a, 1) over stdio, one client, after a warm-up"
        ),
        &rows,
        peer.is_some(),
    );
    if peer.is_none() {
        println!("(set PEER_MCP_CMD to run a peer host beside Warden; see the file's docs)");
    }
    println!();

    // Over HTTP: `warden serve`'s `/mcp` in both revisions, and the peer's HTTP
    // transport if it is named.
    let created = warden(&home)
        .args(["token", "create", "bench", "--role", "admin"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let token = String::from_utf8(created.stdout)
        .unwrap()
        .trim()
        .to_string();
    let mut rows: Vec<(String, Figures)> = Vec::new();
    for durability in ["full", "process"] {
        let addr = http::free_address();
        let mut command = warden(&home);
        command
            .args(["serve", "--listen", &addr.to_string()])
            .env("WARDEN_AUDIT_DURABILITY", durability);
        let _server = Running::spawn(http::quiet(&mut command));
        for (transport, revision) in [
            (Transport::Session, "a 2025-11-25 session"),
            (Transport::Stateless, "2026-07-28, no session"),
        ] {
            let url = format!("http://{addr}/mcp");
            let mut client = HttpClient::connect(&url, Some(token.clone()), transport);
            let figures = measure(&mut client, None, calls);
            rows.push((
                format!("warden serve /mcp, {revision}, audit {durability}"),
                figures,
            ));
        }
    }
    let peer = std::env::var("PEER_MCP_HTTP_CMD")
        .ok()
        .filter(|c| !c.is_empty());
    if let Some(cmd) = &peer {
        let url = std::env::var("PEER_MCP_HTTP_URL")
            .expect("PEER_MCP_HTTP_URL: where the peer serves MCP (http://127.0.0.1:9001/sse)");
        let mut command = Command::new("sh");
        command
            .args(["-c", &format!("exec {cmd}")])
            .env("PEER_COMPONENT_DIR", &components);
        let _server = Running::spawn(http::quiet(&mut command));
        let mut client = HttpClient::connect(&url, None, Transport::of(&url));
        let wanted = std::env::var("PEER_MCP_TOOL").ok();
        let figures = measure(&mut client, wanted.as_deref(), calls);
        rows.push((format!("peer: {cmd}"), figures));
    }
    print_rows(
        &format!(
            "{calls} sequential tools/call of add(a, 1) over HTTP, one client, after a warm-up"
        ),
        &rows,
        peer.is_some(),
    );
    if peer.is_none() {
        println!(
            "(set PEER_MCP_HTTP_CMD and PEER_MCP_HTTP_URL to run a peer host beside Warden; see http.rs)"
        );
    }
}

/// The table: each row's p50, p99 and calls per second, and with `peer_last` the ratio
/// of each p50 to the last row's.
fn print_rows(title: &str, rows: &[(String, Figures)], peer_last: bool) {
    println!("{title}");
    println!(
        "{:<56} {:>9} {:>9} {:>10} {:>13}",
        "host", "p50", "p99", "calls/s", "p50 / peer"
    );
    let peer_p50 = rows.last().filter(|_| peer_last).map(|(_, f)| f.p50);
    for (name, f) in rows {
        let ratio = peer_p50.map_or("-".to_string(), |p| {
            format!("{:.2}", f.p50.as_secs_f64() / p.as_secs_f64())
        });
        println!(
            "{:<56} {:>9} {:>9} {:>10.0} {:>13}",
            name,
            micros(f.p50),
            micros(f.p99),
            f.per_second,
            ratio
        );
    }
}
