//! Load test of `warden serve` on loopback: many concurrent HTTP callers of a trivial
//! tool (`text`'s `word-count`), beside the same calls made in process, so the
//! difference is what HTTP costs per call.
//!
//! Every round runs `callers` tasks, each making `calls` requests one after another
//! (`POST /v1/tools/text/word-count` with a bearer token over a pooled keep-alive
//! client; in process: `Runtime::call_as`). Both record each call durably in an audit
//! log, as `serve` always does. A round checks that every call answered 200 with the
//! right result (no errors) and that the server counted and recorded every one (no
//! lost calls: `warden_tool_calls_total` and the log's `tool.call` records), and
//! prints throughput and p50/p99/max latency.
//!
//! Bounded: a fixed number of calls, 127.0.0.1 only. `cargo bench -p warden --bench
//! serve_load`; figures in BENCHMARKS.md. Homes live in the target directory.
//!
//! `SERVE_LOAD_DURABILITY=process` runs both sides with the audit log's `process`
//! durability (written before each answer, synced within 10 ms) instead of `full`:
//! without an fsync on each side of the comparison, what HTTP adds stands out from the
//! disk's noise.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden::audit::{Audit, AuditOptions, Durability, Filter};
use warden::config::home::{Config, hash_token};
use warden::home::Home;
use warden::serve::{ServeOptions, Server};
use warden::{PluginSource, Runtime};

const TOKEN: &str = "wdn_load-test-token";
const TEXT: &str = "Warden runs every tool in its own sandbox. Nothing is ambient.";

/// (callers, calls each).
const ROUNDS: [(usize, usize); 4] = [(1, 1000), (8, 500), (32, 250), (128, 100)];

struct Figures {
    calls: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn new(elapsed: Duration, mut latencies: Vec<Duration>) -> Self {
        latencies.sort_unstable();
        Self {
            calls: latencies.len(),
            elapsed,
            latencies,
        }
    }

    fn at(&self, q: f64) -> Duration {
        let i = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
        self.latencies[i]
    }

    fn row(&self, what: &str, callers: usize) -> String {
        format!(
            "| {what} | {callers} | {} | {:.0} | {:.0} µs | {:.0} µs | {:.0} µs |",
            self.calls,
            self.calls as f64 / self.elapsed.as_secs_f64(),
            micros(self.at(0.5)),
            micros(self.at(0.99)),
            micros(*self.latencies.last().unwrap()),
        )
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// `callers` tasks making `calls` calls each with `call`; every call must succeed.
async fn drive<F, Fut>(callers: usize, calls: usize, call: F) -> Figures
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(calls);
                for _ in 0..calls {
                    let t = Instant::now();
                    call()
                        .await
                        .unwrap_or_else(|e| panic!("a call failed: {e}"));
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(callers * calls);
    for task in tasks {
        latencies.extend(task.await.expect("a caller panicked"));
    }
    Figures::new(started.elapsed(), latencies)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let process = match std::env::var("SERVE_LOAD_DURABILITY").as_deref() {
        Ok("process") => true,
        Ok("full") | Err(_) => false,
        Ok(other) => panic!("SERVE_LOAD_DURABILITY: full or process, not {other}"),
    };
    let durability = if process {
        Durability::Process
    } else {
        Durability::Full
    };
    let wasm = std::fs::read(warden_tests::guests::TEXT).unwrap();
    let expected = json!(2);
    let args = json!({ "text": TEXT });
    let mut rows = Vec::new();

    // Over HTTP: `warden serve` in process, a home with `text`, one token.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let home = Home::at(dir.path());
    let meta = warden::home::InstalledMeta {
        name: "text".into(),
        digest: warden::plugin::digest(&wasm),
        added_at: 0,
        source: "bench".into(),
        manifest: None,
        wit_docs: None,
        provenance: None,
    };
    home.install(&meta, &wasm).unwrap();
    let config = Config::parse(
        &format!(
            "[server]\nmax_body_kb = 64\n[audit]\ndurability = \"{}\"\n[[tokens]]\nname = \"load\"\nsha256 = \"{}\"\nroles = [\"admin\"]\n",
            if process { "process" } else { "full" },
            hash_token(TOKEN)
        ),
        "bench config",
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::start(
        ServeOptions {
            config,
            watch: false,
            ..ServeOptions::new(home)
        },
        listener,
    )
    .await
    .unwrap();
    let base = format!("http://{}", server.addr());
    let url = format!("{base}/v1/tools/text/word-count");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let mut total = 0;
    for (callers, calls) in ROUNDS {
        let (http, url, args, expected) =
            (http.clone(), url.clone(), args.clone(), expected.clone());
        let figures = drive(callers, calls, move || {
            let req = http.post(&url).bearer_auth(TOKEN).json(&args);
            let expected = expected.clone();
            async move {
                let resp = req.send().await.map_err(|e| e.to_string())?;
                let status = resp.status();
                let body: Value = resp.json().await.map_err(|e| e.to_string())?;
                if status != 200 || body["result"]["sentences"] != expected {
                    return Err(format!("{status}: {body}"));
                }
                Ok(())
            }
        })
        .await;
        total += figures.calls;
        rows.push(figures.row("HTTP `warden serve`", callers));
    }
    // No lost calls: the server counted each one, and each is on record.
    let metrics = http
        .get(format!("{base}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted = format!(
        "warden_tool_calls_total{{plugin=\"text\",tool=\"word-count\",outcome=\"ok\"}} {total}"
    );
    assert!(metrics.contains(&counted), "{counted} not in\n{metrics}");
    server.shutdown().await;
    let filter = Filter {
        kind: Some("tool.call".into()),
        ..Filter::default()
    };
    let recorded = Audit::open(dir.path(), AuditOptions::default())
        .unwrap()
        .read(filter)
        .unwrap()
        .len();
    assert_eq!(recorded, total, "tool.call records in the audit log");

    // In process: the same calls and durable records, no HTTP.
    let runtime = Arc::new(Runtime::new().unwrap());
    let log = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    runtime
        .set_audit(
            Audit::open(
                log.path(),
                AuditOptions {
                    durability,
                    ..AuditOptions::default()
                },
            )
            .unwrap(),
        )
        .unwrap();
    let source = PluginSource {
        name: "text",
        wasm: &wasm,
        extra_docs: Default::default(),
        grant: None,
        signer: None,
    };
    let plugin = Arc::new(runtime.load(source, None).unwrap());
    for (callers, calls) in ROUNDS {
        let (runtime, plugin, args, expected) = (
            runtime.clone(),
            plugin.clone(),
            args.clone(),
            expected.clone(),
        );
        let figures = drive(callers, calls, move || {
            let (runtime, plugin, args, expected) = (
                runtime.clone(),
                plugin.clone(),
                args.clone(),
                expected.clone(),
            );
            async move {
                let out = runtime
                    .call_as("token:load", &plugin, "word-count", &args)
                    .await
                    .map_err(|e| e.to_string())?;
                if out["sentences"] != expected {
                    return Err(out.to_string());
                }
                Ok(())
            }
        })
        .await;
        rows.push(figures.row("in process `call_as`", callers));
    }

    println!(
        "| path | callers | calls | calls/s | p50 | p99 | max |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    for row in rows {
        println!("{row}");
    }
    println!(
        "\n{total} HTTP calls: all answered 200 with the right result, all counted, all on record."
    );
}
