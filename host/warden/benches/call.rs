//! One isolated tool call through the host (fresh store and instance, arguments from
//! JSON, result to JSON) against the same Rust function called natively.
//!
//! `cargo bench -p warden --bench call`; figures in BENCHMARKS.md.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use warden::{PluginSource, Runtime};

/// The plugin's own counting code, compiled natively (it names `crate::Counts`).
#[path = "../../../plugins/text/src/count.rs"]
#[allow(
    unused_imports,
    reason = "the plugin's unit tests come along under cfg(test)"
)]
mod count;

/// The native twin of the WIT record `counts`.
#[derive(serde::Serialize)]
struct Counts {
    words: u32,
    lines: u32,
    chars: u32,
    bytes: u32,
    sentences: u32,
}

const TEXT: &str = "Warden runs every tool in its own sandbox. Nothing is ambient.";

fn load(runtime: &Runtime, name: &str, path: &str) -> warden::Plugin {
    let wasm = std::fs::read(path).expect("reading a built guest");
    runtime
        .load(
            PluginSource {
                name,
                wasm: &wasm,
                extra_docs: Default::default(),
                grant: None,
                signer: None,
            },
            None,
        )
        .expect("loading a built guest")
}

fn calls(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let text = load(&runtime, "text", warden_tests::guests::TEXT);
    let counter = load(&runtime, "counter", warden_tests::guests::COUNTER);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let args = json!({ "text": TEXT });

    let mut group = c.benchmark_group("word-count");
    group.bench_function("native", |b| b.iter(|| count::counts(black_box(TEXT))));
    group.bench_function("native+json", |b| {
        b.iter(|| {
            let text = black_box(&args)["text"].as_str().unwrap();
            serde_json::to_value(count::counts(text)).unwrap()
        })
    });
    group.bench_function("warden", |b| {
        b.to_async(&rt).iter(|| async {
            runtime
                .call(&text, "word-count", black_box(&args))
                .await
                .unwrap()
        })
    });
    group.finish();

    let dir = tempfile::tempdir().unwrap();
    let granted = {
        let wasm = std::fs::read(warden_tests::guests::COUNTER).unwrap();
        let grant = warden::grant::Grant {
            fs: vec![warden::grant::FsGrant {
                host: dir.path().to_path_buf(),
                guest: "/data".into(),
                access: warden::grant::Access::Read,
            }],
            env: warden::grant::EnvGrant {
                vars: [("LANG".to_string(), "C.UTF-8".to_string())].into(),
            },
            net: Some(warden::grant::NetGrant {
                allow: vec![
                    "https://api.example.com".into(),
                    "https://*.example.org:8443".into(),
                ],
                ..Default::default()
            }),
            limits: warden::limits::Limits {
                memory_mb: 64,
                timeout_ms: 5_000,
                fuel: 50_000_000,
                max_output_kb: 256,
                max_concurrency: 8,
            },
            ..Default::default()
        };
        runtime
            .load(
                PluginSource {
                    name: "counter",
                    wasm: &wasm,
                    extra_docs: Default::default(),
                    grant: Some(grant),
                    signer: None,
                },
                None,
            )
            .unwrap()
    };
    let empty = json!({});
    c.bench_function(
        "trivial/warden with a grant (one preopen, one variable, two hosts, limits and fuel on)",
        |b| {
            b.to_async(&rt).iter(|| async {
                runtime
                    .call(&granted, "bump", black_box(&empty))
                    .await
                    .unwrap()
            })
        },
    );
    c.bench_function("trivial/warden (counter.bump, no arguments)", |b| {
        b.to_async(&rt).iter(|| async {
            runtime
                .call(&counter, "bump", black_box(&empty))
                .await
                .unwrap()
        })
    });
}

/// Calls recorded in an audit log, each durable (fsync) before its answer: one caller
/// at a time (latency), and 256 callers at once (throughput, group commit).
fn durable(c: &mut Criterion) {
    let home = tempfile::tempdir().unwrap();
    let runtime = std::sync::Arc::new(Runtime::new().unwrap());
    runtime
        .set_audit(
            warden::audit::Audit::open(home.path(), warden::audit::AuditOptions::default())
                .unwrap(),
        )
        .unwrap();
    let counter = {
        let wasm = std::fs::read(warden_tests::guests::COUNTER).unwrap();
        let grant = warden::grant::Grant {
            limits: warden::limits::Limits {
                max_concurrency: 256,
                ..Default::default()
            },
            ..Default::default()
        };
        let source = PluginSource {
            name: "counter",
            wasm: &wasm,
            extra_docs: Default::default(),
            grant: Some(grant),
            signer: None,
        };
        std::sync::Arc::new(runtime.load(source, None).unwrap())
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let empty = json!({});

    let mut group = c.benchmark_group("durable");
    group.bench_function("one caller (counter.bump, audit synced)", |b| {
        b.to_async(&rt).iter(|| async {
            runtime
                .call_as("bench", &counter, "bump", black_box(&empty))
                .await
                .unwrap()
        })
    });
    const CALLERS: u64 = 256;
    group.throughput(criterion::Throughput::Elements(CALLERS));
    group.sample_size(20);
    group.bench_function("256 callers at once", |b| {
        b.to_async(&rt).iter_custom(|rounds| {
            let runtime = runtime.clone();
            let counter = counter.clone();
            async move {
                let started = std::time::Instant::now();
                for _ in 0..rounds {
                    let calls: Vec<_> = (0..CALLERS)
                        .map(|_| {
                            let runtime = runtime.clone();
                            let counter = counter.clone();
                            tokio::spawn(async move {
                                runtime
                                    .call_as("bench", &counter, "bump", &json!({}))
                                    .await
                                    .unwrap()
                            })
                        })
                        .collect();
                    for call in calls {
                        call.await.unwrap();
                    }
                }
                started.elapsed()
            }
        })
    });
    // The same 256 callers, each calling again as soon as its answer is in (no round
    // barrier): the sustained rate a server with 256 busy clients sees.
    group.bench_function("256 callers, sustained", |b| {
        b.to_async(&rt).iter_custom(|rounds| {
            let runtime = runtime.clone();
            let counter = counter.clone();
            async move {
                let left = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(rounds * CALLERS));
                let started = std::time::Instant::now();
                let callers: Vec<_> = (0..CALLERS)
                    .map(|_| {
                        let (runtime, counter, left) =
                            (runtime.clone(), counter.clone(), left.clone());
                        tokio::spawn(async move {
                            let taken = std::sync::atomic::Ordering::Relaxed;
                            while left
                                .fetch_update(taken, taken, |n| n.checked_sub(1))
                                .is_ok()
                            {
                                runtime
                                    .call_as("bench", &counter, "bump", &json!({}))
                                    .await
                                    .unwrap();
                            }
                        })
                    })
                    .collect();
                for caller in callers {
                    caller.await.unwrap();
                }
                started.elapsed()
            }
        })
    });
    group.finish();
}

criterion_group!(benches, calls, durable);
criterion_main!(benches);
