//! Durable calls with the audit log in PostgreSQL (a cluster's store) against the
//! embedded SQLite file, in one run: the same trivial tool (`text`'s `word-count`)
//! called in process (`Runtime::call_as`) by 1 to 128 concurrent callers, each call's
//! record committed before the answer (`synchronous_commit = on`, and SQLite's
//! `synchronous=FULL`). Then two nodes (two runtimes, each its own audit writer and
//! connection) on one database, half the callers each: one chain, every call on it.
//!
//! The PostgreSQL server is a throwaway one on loopback (`initdb` in a temporary
//! directory, as the tests start it); without PostgreSQL the bench says so and stops.
//! `cargo bench -p warden --bench cluster`; figures in BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use warden::audit::{Audit, AuditOptions};
use warden::{PluginSource, Runtime};
use warden_postgres::testing::TestCluster;

const TEXT: &str = "Warden runs every tool in its own sandbox. Nothing is ambient.";

/// (callers, calls each).
const ROUNDS: [(usize, usize); 4] = [(1, 1000), (8, 500), (32, 250), (128, 100)];

fn main() {
    let Some(cluster) = TestCluster::start() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(&cluster));
}

/// A node: its runtime and the loaded `text`.
type Node = (Arc<Runtime>, Arc<warden::Plugin>);

/// A runtime with `text` loaded and its audit log in `store` (SQLite when `None`).
fn node(wasm: &[u8], url: Option<&warden_postgres::DatabaseUrl>, home: &std::path::Path) -> Node {
    let runtime = Arc::new(Runtime::new().unwrap());
    let audit = match url {
        None => Audit::open(home, AuditOptions::default()).unwrap(),
        Some(url) => Audit::with_store(
            Box::new(warden::audit::postgres::PgStore::open(url).unwrap()),
            home,
            AuditOptions::default(),
        )
        .unwrap(),
    };
    runtime.set_audit(audit).unwrap();
    let source = PluginSource {
        name: "text",
        wasm,
        extra_docs: Default::default(),
        grant: None,
        signer: None,
    };
    let plugin = Arc::new(runtime.load(source, None).unwrap());
    (runtime, plugin)
}

/// `callers` tasks spread over `nodes`, `calls` each; figures of every call.
async fn round(nodes: &[Node], callers: usize, calls: usize) -> (Duration, Vec<Duration>) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|i| {
            let (runtime, plugin) = nodes[i % nodes.len()].clone();
            tokio::spawn(async move {
                let args = json!({ "text": TEXT });
                let mut latencies = Vec::with_capacity(calls);
                for _ in 0..calls {
                    let t = Instant::now();
                    let out = runtime
                        .call_as("token:bench", &plugin, "word-count", &args)
                        .await
                        .unwrap();
                    assert_eq!(out["sentences"], 2);
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    latencies.sort_unstable();
    (started.elapsed(), latencies)
}

async fn run(cluster: &TestCluster) {
    let wasm = std::fs::read(warden_tests::guests::TEXT).unwrap();
    let mut rows = Vec::new();
    let at = |l: &[Duration], q: f64| {
        l[((l.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e6
    };
    let mut setups: Vec<(&str, Vec<Node>, Vec<tempfile::TempDir>)> = Vec::new();
    let sqlite_home = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    setups.push((
        "SQLite (one node)",
        vec![node(&wasm, None, sqlite_home.path())],
        vec![sqlite_home],
    ));
    let url = cluster.database();
    warden_postgres::migrate::migrate(&warden_postgres::Pool::connect(&url, 1).unwrap()).unwrap();
    let pg_home = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    setups.push((
        "PostgreSQL (one node)",
        vec![node(&wasm, Some(&url), pg_home.path())],
        vec![pg_home],
    ));
    let two = cluster.database();
    warden_postgres::migrate::migrate(&warden_postgres::Pool::connect(&two, 1).unwrap()).unwrap();
    // The nodes of a cluster hold one audit signing key.
    let homes: Vec<_> = (0..2)
        .map(|_| {
            use std::os::unix::fs::OpenOptionsExt as _;
            let home = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
            let mut key = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(home.path().join("audit.key"))
                .unwrap();
            std::io::Write::write_all(&mut key, "ab".repeat(32).as_bytes()).unwrap();
            home
        })
        .collect();
    setups.push((
        "PostgreSQL (two nodes)",
        homes
            .iter()
            .map(|h| node(&wasm, Some(&two), h.path()))
            .collect(),
        homes,
    ));
    for (callers, calls) in ROUNDS {
        for (what, nodes, _) in &setups {
            // Warm-up, then the measured round.
            round(nodes, callers.min(8), 20).await;
            let (elapsed, latencies) = round(nodes, callers, calls).await;
            let row = format!(
                "| {what} | {callers} | {} | {:.0} | {:.0} µs | {:.0} µs |",
                latencies.len(),
                latencies.len() as f64 / elapsed.as_secs_f64(),
                at(&latencies, 0.5),
                at(&latencies, 0.99)
            );
            eprintln!("{row}");
            rows.push(row);
        }
    }
    // Every call on record, in one chain that verifies.
    for (what, nodes, _) in &setups {
        let report = nodes[0].0.audit().unwrap().verify().unwrap();
        assert!(report.problem.is_none(), "{what}: {:?}", report.problem);
    }
    println!(
        "| store | callers | calls | calls/s | p50 | p99 |\n| --- | --- | --- | --- | --- | --- |"
    );
    for row in rows {
        println!("{row}");
    }
}
