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
//! The server watches its home for hot reload, as `warden serve` does. More rows, one
//! caller each, split what HTTP costs between the transport and Warden's own layers:
//!
//! - the floor: a bare `axum` router on loopback that parses the same body and answers
//!   the same JSON at once (no tool, no audit, no layers), called by a bare `hyper`
//!   HTTP/1.1 client (one connection, the request built once, no pool, redirect or
//!   retry logic) on a thread and runtime of its own, as a client in another process;
//!   and the same floor whose handler spins as long as Warden's router takes in
//!   process (the row below) before it answers: on a VM, a request that is not
//!   answered at once costs the transport more (both ends' threads sleep and are
//!   woken), and this row shows how much with none of Warden's code; and both
//!   again with the floor served from a current-thread runtime on a thread of its own
//!   (a server that never wakes a second worker);
//! - `warden serve` called by that same bare client;
//! - an MCP `tools/call` over HTTP (`/mcp`, Streamable HTTP) by that client, in one
//!   session on one kept-alive connection: each answer is a short server-sent event
//!   stream, written in pieces; and the same as requests without a session, each
//!   answered with one JSON body;
//! - `warden serve`'s router called in process (`tower::ServiceExt::oneshot`, no
//!   connection): every layer, the token check and the handler, without the transport;
//! - the same, with the thread asleep for [`REST`] before each call: behind a
//!   connection, the server's thread sleeps between one caller's requests, and on this
//!   VM a thread that slept runs the same code about twice as slowly, every function a
//!   little, as if caches and predictors were cold;
//! - and, in process, `call_as` warm and after the same sleep: the rested router less
//!   the rested call is what Warden's HTTP layers cost on a thread that has just woken.
//!
//! `SERVE_LOAD_LEAN=N` runs only the one-caller rows, with `N` calls each (for
//! profiling); `SERVE_LOAD_WORKERS` sets the server's worker threads (default 2, one
//! per core here).
//!
//! `SERVE_LOAD_IDLE_POLL_US=N` sets the server's `[server] idle_poll_us`: its idle
//! workers poll for the next request N µs before they sleep (the runtime's park hook is
//! installed as `warden` installs it). A second client row, a client that polls its
//! socket instead of sleeping until the answer comes, shows what the server costs a
//! call apart from the caller's own wake-up, for the busy floor and for Warden.
//!
//! The last column is the bytes the whole process (client, server and audit log)
//! allocated a call over the row, counted by wrapping the allocator: unlike the
//! times, it does not move with the machine's noise.
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

mod clients;
mod floor;
mod polling;

use clients::{Waits, bare_client, mcp_client};
use floor::{FloorRuntime, floor_round};
use polling::polling_client;

// The allocator `warden` runs with, on both sides of the comparison, wrapped in `cap`
// to count the bytes each row allocates: unlike its time, that figure does not move
// with the machine's noise, so a change of a few allocations shows.
#[global_allocator]
static ALLOCATOR: cap::Cap<mimalloc::MiMalloc> = cap::Cap::new(mimalloc::MiMalloc, usize::MAX);

const TOKEN: &str = "wdn_load-test-token";
const TEXT: &str = "Warden runs every tool in its own sandbox. Nothing is ambient.";

/// A round: (callers, calls each).
type Round = (usize, usize);

/// How long the thread sleeps before each call of the rested router row: about what the
/// bare client takes between an answer and its next request here, wake-up included.
const REST: Duration = Duration::from_micros(100);

/// The rounds of a full run, over HTTP and in process.
const ROUNDS: [Round; 4] = [(1, 1000), (8, 500), (32, 250), (128, 100)];

struct Figures {
    calls: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// Bytes allocated a call, in the whole process (client included) over the round.
    allocs: f64,
}

impl Figures {
    fn new(elapsed: Duration, mut latencies: Vec<Duration>) -> Self {
        latencies.sort_unstable();
        Self {
            calls: latencies.len(),
            elapsed,
            latencies,
            allocs: f64::NAN,
        }
    }

    fn at(&self, q: f64) -> Duration {
        let i = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
        self.latencies[i]
    }

    fn row(&self, what: &str, callers: usize) -> String {
        format!(
            "| {what} | {callers} | {} | {:.0} | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} |",
            self.calls,
            self.calls as f64 / self.elapsed.as_secs_f64(),
            micros(self.at(0.5)),
            micros(self.at(0.99)),
            micros(*self.latencies.last().unwrap()),
            self.allocs,
        )
    }
}

/// `round`'s figures with the bytes the process allocated while it ran, a call.
async fn with_allocs(round: impl Future<Output = Figures>) -> Figures {
    let before = ALLOCATOR.total_allocated();
    let mut figures = round.await;
    figures.allocs = (ALLOCATOR.total_allocated() - before) as f64 / figures.calls as f64;
    figures
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

/// `calls` requests through `warden serve`'s router in process: its layers, the token check
/// and the handler, without a connection; the thread sleeps `rest` before each (not
/// timed).
async fn router_round(router: axum::Router, calls: usize, rest: Duration) -> Figures {
    use tower::ServiceExt;
    let body = axum::body::Bytes::from(json!({ "text": TEXT }).to_string());
    let authorization = format!("Bearer {TOKEN}");
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(calls);
    for _ in 0..calls {
        let request = hyper::Request::post("/v1/tools/text/word-count")
            .header("authorization", &authorization)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.clone()))
            .unwrap();
        if !rest.is_zero() {
            std::thread::sleep(rest);
        }
        let t = Instant::now();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        latencies.push(t.elapsed());
        let answer: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(
            status == 200 && answer["result"]["sentences"] == json!(2),
            "{status}: {answer}"
        );
    }
    Figures::new(started.elapsed(), latencies)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::env::var("SERVE_LOAD_WORKERS").map_or(2, |n| {
            n.parse().expect("SERVE_LOAD_WORKERS: a number of threads")
        }))
        .on_thread_park(warden::serve::idle_poll::before_park)
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
    // As `[server] idle_poll_us`: the server's idle workers poll this long before they
    // sleep (the floor's sockets are watched too, as they share the runtime).
    let idle_poll_us: u64 = std::env::var("SERVE_LOAD_IDLE_POLL_US").map_or(0, |us| {
        us.parse()
            .expect("SERVE_LOAD_IDLE_POLL_US: a number of µs, at most 1000")
    });
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
            "[server]\nmax_body_kb = 64\nidle_poll_us = {}\n[audit]\ndurability = \"{}\"\n[[tokens]]\nname = \"load\"\nsha256 = \"{}\"\nroles = [\"admin\"]\n",
            idle_poll_us,
            if process { "process" } else { "full" },
            hash_token(TOKEN)
        ),
        "bench config",
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::start(
        // As `warden serve` runs: watching the home for hot reload.
        ServeOptions {
            config,
            watch: true,
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
    let lean: Option<usize> = std::env::var("SERVE_LOAD_LEAN")
        .ok()
        .map(|n| n.parse().expect("SERVE_LOAD_LEAN: a number of calls"));
    let mut total = 0;
    let one = lean.unwrap_or(2000);
    // On a worker, as the in-process calls run. First, so the floor can match it.
    let router = server.router();
    let routed = tokio::spawn(with_allocs(router_round(router, one, Duration::ZERO)))
        .await
        .unwrap();
    // The same calls, each after its thread slept as long as a caller over HTTP takes
    // to send the next request: the state the router finds behind a connection.
    let rested = tokio::spawn(with_allocs(router_round(server.router(), one, REST)))
        .await
        .unwrap();
    let floor = with_allocs(floor_round(
        one,
        Duration::ZERO,
        FloorRuntime::Shared,
        Waits::Sleeping,
    ))
    .await;
    rows.push(floor.row("HTTP floor: bare `axum` answering at once", 1));
    // The same floor with a handler that takes as long as Warden's router does in
    // process: what the transport costs a request that is not answered at once.
    let busy = routed.at(0.5);
    let slow = with_allocs(floor_round(
        one,
        busy,
        FloorRuntime::Shared,
        Waits::Sleeping,
    ))
    .await;
    rows.push(slow.row(
        &format!(
            "HTTP floor: bare `axum` busy {:.0} µs, then answering",
            micros(busy)
        ),
        1,
    ));
    // Both again, served from a current-thread runtime on a thread of its own: a server
    // that never wakes a second worker.
    let own = with_allocs(floor_round(
        one,
        Duration::ZERO,
        FloorRuntime::OwnThread,
        Waits::Sleeping,
    ))
    .await;
    rows.push(own.row(
        "HTTP floor: bare `axum` on a current-thread runtime, answering at once",
        1,
    ));
    let own_slow = with_allocs(floor_round(
        one,
        busy,
        FloorRuntime::OwnThread,
        Waits::Sleeping,
    ))
    .await;
    rows.push(own_slow.row(
        &format!(
            "HTTP floor: bare `axum` on a current-thread runtime, busy {:.0} µs, then answering",
            micros(busy)
        ),
        1,
    ));
    let bare = with_allocs(bare_client(server.addr(), one)).await;
    rows.push(bare.row("HTTP `warden serve`, bare `hyper` client", 1));
    // The busy floor and Warden again, called by a client that polls for its answer
    // instead of sleeping: what each server costs a call apart from the caller's own
    // wake-up.
    let polled_floor =
        with_allocs(floor_round(one, busy, FloorRuntime::Shared, Waits::Polling)).await;
    rows.push(polled_floor.row(
        &format!(
            "HTTP floor: bare `axum` busy {:.0} µs, then answering, a client that polls",
            micros(busy)
        ),
        1,
    ));
    let polled = with_allocs(polling_client(server.addr(), one)).await;
    rows.push(polled.row("HTTP `warden serve`, a client that polls", 1));
    let mcp = with_allocs(mcp_client(server.addr(), one, false)).await;
    rows.push(mcp.row(
        "MCP `tools/call` over HTTP (`/mcp`, a 2025-11-25 session), bare `hyper` client",
        1,
    ));
    let stateless = with_allocs(mcp_client(server.addr(), one, true)).await;
    rows.push(stateless.row(
        "MCP `tools/call` over HTTP (`/mcp`, 2026-07-28, no session), bare `hyper` client",
        1,
    ));
    rows.push(routed.row("`warden serve`'s router in process, no connection", 1));
    rows.push(rested.row(
        &format!(
            "`warden serve`'s router in process, its thread asleep {} µs before each call",
            REST.as_micros()
        ),
        1,
    ));
    total += bare.calls + polled.calls + mcp.calls + stateless.calls + routed.calls + rested.calls;
    // With SERVE_LOAD_LEAN, the one-caller rows only (and one in process).
    let (http_rounds, process_rounds): (&[Round], &[Round]) = match lean {
        Some(calls) => (&[], &[(1, calls)]),
        None => (&ROUNDS, &ROUNDS),
    };
    for &(callers, calls) in http_rounds {
        let (http, url, args, expected) =
            (http.clone(), url.clone(), args.clone(), expected.clone());
        let figures = with_allocs(drive(callers, calls, move || {
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
        }))
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
    // Read through the server's own log: with `process` durability the newest records
    // may still be in its journal (committed within 2 ms), which only it reads.
    let audit = server.registry().runtime().audit().unwrap().clone();
    server.shutdown().await;
    let filter = Filter {
        kind: Some("tool.call".into()),
        ..Filter::default()
    };
    let recorded = audit.read(filter).unwrap().len();
    drop(audit);
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
    let mut in_process_p50 = None;
    for &(callers, calls) in process_rounds {
        let (runtime, plugin, args, expected) = (
            runtime.clone(),
            plugin.clone(),
            args.clone(),
            expected.clone(),
        );
        let figures = with_allocs(drive(callers, calls, move || {
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
        }))
        .await;
        rows.push(figures.row("in process `call_as`", callers));
        if callers == 1 {
            in_process_p50 = Some(figures.at(0.5));
        }
    }
    // The same call after its thread slept, as the router's rested row: what a thread
    // that has just woken costs the call itself, apart from Warden's HTTP layers.
    let rested_call = {
        let (runtime, plugin, args) = (runtime.clone(), plugin.clone(), args.clone());
        tokio::spawn(with_allocs(async move {
            let started = Instant::now();
            let mut latencies = Vec::with_capacity(one);
            for _ in 0..one {
                std::thread::sleep(REST);
                let t = Instant::now();
                let out = runtime
                    .call_as("token:load", &plugin, "word-count", &args)
                    .await
                    .unwrap();
                latencies.push(t.elapsed());
                assert_eq!(out["sentences"], expected);
            }
            Figures::new(started.elapsed(), latencies)
        }))
        .await
        .unwrap()
    };
    rows.push(rested_call.row(
        &format!(
            "in process `call_as`, its thread asleep {} µs before each call",
            REST.as_micros()
        ),
        1,
    ));

    println!(
        "| path | callers | calls | calls/s | p50 | p99 | max | bytes allocated a call |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for row in rows {
        println!("{row}");
    }
    // The one-caller split, from the p50s: what HTTP adds to the call in process, what
    // the transport alone costs a bare server whose handler takes as long as Warden's
    // router, what Warden's layers and handler add to the call, and what they add when
    // their thread slept before the call, as it does behind a connection.
    if let Some(in_process) = in_process_p50 {
        let over = |a: Duration, b: Duration| micros(a) - micros(b);
        println!(
            "\nOne caller, p50: HTTP adds {:.0} µs to the call in process; a bare `axum` server \
             busy as long as the router adds {:.0} µs over its handler ({:.0} µs on a \
             current-thread runtime); the router adds {:.0} µs to the call, {:.0} µs when its \
             thread slept before it ({:.0} µs over the call after the same sleep).",
            over(bare.at(0.5), in_process),
            over(slow.at(0.5), busy),
            over(own_slow.at(0.5), busy),
            over(routed.at(0.5), in_process),
            over(rested.at(0.5), in_process),
            over(rested.at(0.5), rested_call.at(0.5)),
        );
        println!(
            "With a client that polls for its answer, p50: HTTP adds {:.0} µs to the call in \
             process; the busy bare server adds {:.0} µs over its handler.",
            over(polled.at(0.5), in_process),
            over(polled_floor.at(0.5), busy),
        );
    }
    println!(
        "\n{total} HTTP calls: all answered 200 with the right result, all counted, all on record."
    );
}
