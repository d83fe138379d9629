//! Soak: `warden serve` (its own process) under mixed load on loopback for minutes,
//! then the checks a reliability claim rests on:
//!
//! - every answered tool call is on the record (the `tool.call` records with outcome
//!   `ok` are exactly the 200s; those with another outcome at least the calls answered
//!   with an error: hang-ups add `cancelled` ones), and the chain verifies;
//! - the server's memory (RSS) settles back near its baseline, and no thread or file
//!   descriptor is left over (read from `/proc/<pid>/` after the load and an idle
//!   pause longer than the blocking pool's keep-alive).
//!
//! The load, from `SOAK_WORKERS` (default 16) workers for `SOAK_SECS` (default 60):
//! normal calls (`text/word-count`), failing ones (`text/json-query` on a missing
//! path: the tool's error), hostile ones (`hostile/panic`, `loop-forever` to its
//! timeout, `grow-memory` past its limit, `big-output` past `max_output_kb`),
//! oversized bodies (413), hang-ups (a client that gives up on a slow call), and
//! unauthenticated requests (401). Prints the figures as a table and exits 1 if a
//! check fails. Linux only (`/proc`).
//!
//! `cargo bench -p warden --bench soak`; figures in BENCHMARKS.md ("Reliability").

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden::config::home::hash_token;
use warden_tests::guests;

const TOKEN: &str = "wdn_soak-test-token";

/// What a worker does on its `n`th request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Normal,
    Failing,
    Panic,
    Timeout,
    Memory,
    Output,
    Oversized,
    HangUp,
    Unauthenticated,
}

/// One in every 20 requests of each hostile kind, the rest normal or failing.
fn kind(n: u64) -> Kind {
    match n % 20 {
        0 => Kind::Panic,
        1 => Kind::Timeout,
        2 => Kind::Memory,
        3 => Kind::Output,
        4 => Kind::Oversized,
        5 => Kind::HangUp,
        6 | 7 => Kind::Unauthenticated,
        8..=10 => Kind::Failing,
        _ => Kind::Normal,
    }
}

/// Answers counted by status.
#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    tool_errors: AtomicU64,
    too_large: AtomicU64,
    unauthenticated: AtomicU64,
    hang_ups: AtomicU64,
    unexpected: AtomicU64,
}

fn warden(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
    command
        .arg("--home")
        .arg(home)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    command
}

fn run(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A home with `text` and `hostile` (tight limits), a token, small bodies.
fn prepare(home: &Path) {
    let manifest = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../plugins/text/warden.toml"
    );
    run(warden(home).args([
        "plugin",
        "add",
        guests::TEXT,
        "--name",
        "text",
        "--manifest",
        manifest,
    ]));
    let grant = home.join("hostile.toml");
    std::fs::write(
        &grant,
        "plugin = \"hostile\"\n[limits]\nmemory_mb = 16\ntimeout_ms = 200\nmax_output_kb = 64\n",
    )
    .unwrap();
    run(warden(home)
        .args([
            "plugin",
            "add",
            guests::HOSTILE,
            "--name",
            "hostile",
            "--grant",
        ])
        .arg(&grant));
    std::fs::write(
        home.join("warden.toml"),
        format!(
            "[server]\nmax_body_kb = 16\n\n[[tokens]]\nname = \"soak\"\nsha256 = \"{}\"\nroles = [\"admin\"]\n",
            hash_token(TOKEN)
        ),
    )
    .unwrap();
}

/// `(RSS KiB, threads, open file descriptors)` of process `pid`.
fn usage(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64;
    (field("VmRSS:"), field("Threads:"), fds)
}

async fn request(http: &reqwest::Client, base: &str, kind: Kind, counts: &Counts) {
    let call = |tool: &str, args: Value| {
        http.post(format!("{base}/v1/tools/{tool}"))
            .bearer_auth(TOKEN)
            .json(&args)
    };
    let sent = match kind {
        Kind::Normal => call("text/word-count", json!({"text": "one two three"})),
        Kind::Failing => call(
            "text/json-query",
            json!({"document": "{\"a\": 1}", "path": "b"}),
        ),
        Kind::Panic => call("hostile/panic", json!({"msg": "soak"})),
        Kind::Timeout => call("hostile/loop-forever", json!({})),
        Kind::Memory => call("hostile/grow-memory", json!({"mb": 64})),
        Kind::Output => call("hostile/big-output", json!({"kb": 256})),
        Kind::Oversized => call("text/word-count", json!({"text": "x".repeat(32 * 1024)})),
        Kind::HangUp => call("hostile/loop-forever", json!({})).timeout(Duration::from_millis(40)),
        Kind::Unauthenticated => http
            .post(format!("{base}/v1/tools/text/word-count"))
            .bearer_auth("wdn_not-a-token")
            .json(&json!({"text": "x"})),
    }
    .send()
    .await;
    let counter = match (kind, sent) {
        (Kind::HangUp, Err(err)) if err.is_timeout() => &counts.hang_ups,
        (_, Err(_)) => &counts.unexpected,
        (Kind::Normal, Ok(r)) if r.status() == 200 => &counts.ok,
        (Kind::Oversized, Ok(r)) if r.status() == 413 => &counts.too_large,
        (Kind::Unauthenticated, Ok(r)) if r.status() == 401 => &counts.unauthenticated,
        (Kind::Failing | Kind::Panic | Kind::Timeout | Kind::Memory | Kind::Output, Ok(r))
            if r.status().is_client_error() || r.status().is_server_error() =>
        {
            &counts.tool_errors
        }
        (_, Ok(_)) => &counts.unexpected,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The `tool.call` records: `(with outcome ok, with another outcome)`.
async fn records(http: &reqwest::Client, base: &str) -> (u64, u64) {
    let (mut ok, mut other, mut after) = (0, 0, 0u64);
    loop {
        let page: Value = http
            .get(format!(
                "{base}/v1/audit?kind=tool.call&limit=1000&after={after}"
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let records = page["records"].as_array().cloned().unwrap_or_default();
        if records.is_empty() {
            return (ok, other);
        }
        for r in &records {
            match r["outcome"].as_str() {
                Some("ok") => ok += 1,
                _ => other += 1,
            }
        }
        after = page["next_after"].as_u64().unwrap();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::main]
async fn main() {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}: a number")))
            .unwrap_or(default)
    };
    let (secs, workers) = (env("SOAK_SECS", 60), env("SOAK_WORKERS", 16));
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let home = work.path().join("home");
    prepare(&home);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server: Child = warden(&home)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = server.id();
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no /healthz in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Warm up with every kind of request (what is opened once, on first use, belongs
    // to the baseline), then the baseline.
    let warm = Counts::default();
    for n in 0..200 {
        request(&http, &base, kind(n), &warm).await;
    }
    drop(http);
    tokio::time::sleep(Duration::from_secs(12)).await;
    let baseline = usage(pid);

    let counts = Arc::new(Counts::default());
    let peak = Arc::new(AtomicU64::new(baseline.0));
    let until = Instant::now() + Duration::from_secs(secs);
    let http = reqwest::Client::new();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (http, base, counts) = (http.clone(), base.clone(), counts.clone());
            tokio::spawn(async move {
                let mut n = w * 7;
                while Instant::now() < until {
                    request(&http, &base, kind(n), &counts).await;
                    n += 1;
                }
            })
        })
        .collect();
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            while Instant::now() < until {
                peak.fetch_max(usage(pid).0, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    for task in tasks {
        task.await.unwrap();
    }
    sampler.await.unwrap();
    drop(http);
    // Idle past the blocking pool's keep-alive (10 s), hung-up calls ended.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let after = usage(pid);

    let http = reqwest::Client::new();
    let (ok_records, other_records) = records(&http, &base).await;
    let verify: Value = http
        .get(format!("{base}/v1/audit/verify"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    drop(http);
    let _ = server.kill();
    let _ = server.wait();

    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let ok = get(&counts.ok) + get(&warm.ok);
    let answered_errors = get(&counts.tool_errors) + get(&warm.tool_errors);
    let total: u64 = [
        &counts.ok,
        &counts.tool_errors,
        &counts.too_large,
        &counts.unauthenticated,
        &counts.hang_ups,
        &counts.unexpected,
    ]
    .iter()
    .map(|c| get(c))
    .sum();
    let rss_bound = baseline.0 + baseline.0 / 2 + 16 * 1024;
    let checks = [
        (
            "no unexpected answer or transport error",
            get(&counts.unexpected) == 0,
        ),
        (
            "every 200 is a tool.call record with outcome ok",
            ok_records == ok,
        ),
        (
            "every answered error is a tool.call record (hang-ups add cancelled ones)",
            other_records >= answered_errors,
        ),
        ("the chain verifies", verify["ok"] == true),
        (
            "RSS settles within 1.5x baseline + 16 MiB",
            after.0 <= rss_bound,
        ),
        ("no thread left over", after.1 <= baseline.1),
        ("no file descriptor left over", after.2 <= baseline.2),
    ];

    println!(
        "soak: {secs} s, {workers} workers, {total} requests ({:.0}/s)",
        total as f64 / secs as f64
    );
    println!();
    println!("| answers | count |");
    println!("| --- | --- |");
    for (what, c) in [
        ("200 (normal calls)", &counts.ok),
        (
            "4xx/5xx from the tool (failing and hostile calls)",
            &counts.tool_errors,
        ),
        ("413 (oversized bodies)", &counts.too_large),
        ("401 (unauthenticated)", &counts.unauthenticated),
        ("hang-ups (client gave up)", &counts.hang_ups),
        ("unexpected", &counts.unexpected),
    ] {
        println!("| {what} | {} |", get(c));
    }
    println!();
    println!("| server | baseline | peak | after |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| RSS | {} MiB | {} MiB | {} MiB |",
        baseline.0 / 1024,
        get(&peak) / 1024,
        after.0 / 1024
    );
    println!("| threads | {} | | {} |", baseline.1, after.1);
    println!("| file descriptors | {} | | {} |", baseline.2, after.2);
    println!();
    println!(
        "records: {ok_records} tool.call ok, {other_records} other; chain: {} records, ok = {}",
        verify["count"], verify["ok"]
    );
    let mut failed = false;
    for (what, passed) in checks {
        println!("{} {what}", if passed { "ok:" } else { "FAILED:" });
        failed |= !passed;
    }
    if failed {
        std::process::exit(1);
    }
}
