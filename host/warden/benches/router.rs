//! Router overhead against a local fake provider (OpenAI-compatible, HTTP/1.1
//! keep-alive, answering at once).
//!
//! - `model-call/*` (criterion, one caller): the same chat request through a pooled
//!   `reqwest` client with the answer's JSON parsed (what any client pays), and through
//!   `Router::complete` (route `fast`, one target: request mapping, target choice and
//!   health bookkeeping, the provider's pooled client, answer mapping, usage and cost).
//! - `load` (after criterion): 64 concurrent callers, each making calls back to back
//!   for a fixed count, first through the plain client, then through the router. For
//!   each router call, its overhead is its total time minus its provider time (the HTTP
//!   exchange, [`ChatResponse::provider_us`](warden::models::ChatResponse)); printed as
//!   p50/p99 with the end-to-end latencies of both.
//!
//! - `budget-ledger/*` (criterion): a reserve and its settle in the budget ledger
//!   against one and three limited accounts, in memory and in the home's SQLite file
//!   (WAL, `synchronous=NORMAL`; one `IMMEDIATE` transaction each): what a call with a
//!   daily budget adds to the router's overhead (none without one).
//!
//! `cargo bench -p warden --bench router`; figures in BENCHMARKS.md.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;
use warden::models::Budget;
use warden::models::{
    ChatRequest, Estimate, Ledger, Message, ModelsConfig, ProviderConfig, ProviderKind, Role,
    RouteConfig, Router, Scope, Strategy, day_of,
};

const ANSWER: &str = r#"{"choices":[{"message":{"role":"assistant","content":"pong"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":2}}"#;

/// Concurrent callers of the load run.
const CALLERS: usize = 64;
/// Calls each caller makes (after a warm-up of 10).
const CALLS: usize = 300;

/// A provider that answers every request at once with `ANSWER`, keeping connections.
async fn fake() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{ANSWER}",
        ANSWER.len()
    );
    let response: Arc<[u8]> = response.into_bytes().into();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let mut stream = BufReader::new(stream);
                let mut line = String::new();
                loop {
                    let mut length = 0usize;
                    loop {
                        line.clear();
                        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    if stream.read_exact(&mut body).await.is_err()
                        || stream.get_mut().write_all(&response).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// What both contenders send and get.
struct Setup {
    router: Router,
    request: ChatRequest,
    client: reqwest::Client,
    url: String,
    body: String,
}

impl Setup {
    fn new(addr: SocketAddr) -> Self {
        let config = ModelsConfig {
            providers: [(
                "local".to_string(),
                ProviderConfig {
                    kind: ProviderKind::Openai,
                    base_url: format!("http://{addr}/v1"),
                    api_key_env: None,
                    timeout_ms: 5_000,
                },
            )]
            .into(),
            routes: [(
                "fast".to_string(),
                RouteConfig {
                    targets: vec!["local/m".into()],
                    strategy: Strategy::Fallback,
                    weights: Vec::new(),
                },
            )]
            .into(),
            ..ModelsConfig::default()
        };
        Self {
            router: Router::new(config).unwrap(),
            request: ChatRequest {
                messages: vec![Message::new(Role::User, "ping")],
                ..ChatRequest::default()
            },
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            url: format!("http://{addr}/v1/chat/completions"),
            body:
                serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "ping"}]})
                    .to_string(),
        }
    }

    /// The request through the plain pooled client, its answer parsed.
    async fn direct(&self) -> serde_json::Value {
        let answer = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(self.body.clone())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        serde_json::from_slice(&answer).unwrap()
    }
}

fn sequential(c: &mut Criterion, rt: &tokio::runtime::Runtime, setup: &Setup) {
    let mut group = c.benchmark_group("model-call");
    group.bench_function("direct (pooled reqwest client, JSON parsed)", |b| {
        b.to_async(rt)
            .iter(|| async { black_box(setup.direct().await) })
    });
    group.bench_function("through the router (route fast, one target)", |b| {
        b.to_async(rt).iter(|| async {
            black_box(setup.router.complete("fast", &setup.request).await.unwrap())
        })
    });
    group.finish();
}

fn ledger(c: &mut Criterion) {
    let budget = Budget {
        tokens_per_day: Some(u64::MAX / 4),
        cost_per_day: Some(1e12),
    };
    let estimate = Estimate {
        tokens: 1026,
        cost: 0.01,
    };
    let one = [(Scope::Plugin, "notes", &budget)];
    let three = [
        (Scope::Plugin, "notes", &budget),
        (Scope::Principal, "token:ci", &budget),
        (Scope::Route, "fast", &budget),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = Ledger::open_home(dir.path()).unwrap();
    let memory = Ledger::default();
    let day = day_of(warden::memory::now());
    let mut group = c.benchmark_group("budget-ledger");
    for (name, ledger, accounts) in [
        ("reserve+settle, 1 account, in memory", &memory, &one[..]),
        ("reserve+settle, 3 accounts, in memory", &memory, &three[..]),
        ("reserve+settle, 1 account, file (WAL)", &file, &one[..]),
        ("reserve+settle, 3 accounts, file (WAL)", &file, &three[..]),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let held = ledger.reserve(day, accounts, estimate).unwrap();
                ledger.settle(black_box(held), 12, 0.0001);
            })
        });
    }
    group.finish();
}

/// `CALLERS` callers making `CALLS` calls each; per call, the time of `call` and what
/// it reports.
async fn load<F, Fut>(call: F) -> Vec<(Duration, Duration)>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Duration> + Send,
{
    let call = Arc::new(call);
    let mut tasks = Vec::new();
    for _ in 0..CALLERS {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                call().await;
            }
            let mut seen = Vec::with_capacity(CALLS);
            for _ in 0..CALLS {
                let started = Instant::now();
                let reported = call().await;
                seen.push((started.elapsed(), reported));
            }
            seen
        }));
    }
    let mut all = Vec::with_capacity(CALLERS * CALLS);
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at]
}

fn report(name: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "load/{name}: p50 {:>8.1} µs   p99 {:>8.1} µs   ({} calls)",
        percentile(&times, 0.50).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6,
        times.len()
    );
}

fn concurrent(rt: &tokio::runtime::Runtime, setup: Arc<Setup>) {
    println!("\nload: {CALLERS} concurrent callers, {CALLS} calls each");
    let s = setup.clone();
    let started = Instant::now();
    let direct = rt.block_on(load(move || {
        let s = s.clone();
        async move {
            black_box(s.direct().await);
            Duration::ZERO
        }
    }));
    let direct_s = started.elapsed().as_secs_f64();
    let s = setup.clone();
    let started = Instant::now();
    let routed = rt.block_on(load(move || {
        let s = s.clone();
        async move {
            let answer = s.router.complete("fast", &s.request).await.unwrap();
            Duration::from_micros(answer.provider_us)
        }
    }));
    let routed_s = started.elapsed().as_secs_f64();
    report("direct, end to end", direct.iter().map(|d| d.0).collect());
    report("router, end to end", routed.iter().map(|d| d.0).collect());
    report(
        "router overhead (total - provider time)",
        routed
            .iter()
            .map(|(total, provider)| total.saturating_sub(*provider))
            .collect(),
    );
    let calls = (CALLERS * CALLS) as f64;
    println!(
        "load/throughput: direct {:.0} calls/s, router {:.0} calls/s",
        calls / direct_s,
        calls / routed_s
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = rt.block_on(fake());
    let setup = Arc::new(Setup::new(addr));
    let mut c = Criterion::default().configure_from_args();
    sequential(&mut c, &rt, &setup);
    ledger(&mut c);
    c.final_summary();
    concurrent(&rt, setup);
}
