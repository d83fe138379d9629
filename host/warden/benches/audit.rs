//! The audit log: durable appends (each acknowledged only after its transaction is on
//! disk), by one caller and by 16, 64 and 256 at once (group commit), and verification
//! speed.
//!
//! `cargo bench -p warden --bench audit`; figures in BENCHMARKS.md. The log lives in
//! the target directory (a real disk: fsync is not free there, as it is on tmpfs).

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden::audit::{Audit, AuditOptions, Event, Outcome};

fn event(n: u64) -> Event {
    Event::new("tool.call", "local:bench")
        .plugin("text")
        .tool("word-count")
        .outcome(Outcome::Ok)
        .field("args", serde_json::json!({"sha256": "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "bytes": 62}))
        .field("duration_ms", 1)
        .field("n", n)
}

const CONCURRENT: u64 = 16;

/// The numbers of concurrent appenders measured for throughput.
const CALLERS: [u64; 3] = [16, 64, 256];

fn appends(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let audit = Audit::open(dir.path(), AuditOptions::default()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();

    let mut group = c.benchmark_group("audit-append");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("1 appender", |b| {
        b.to_async(&rt).iter(|| audit.append(event(1)))
    });
    // Time per append, amortised, with N callers appending in a loop: 1/throughput.
    for callers in CALLERS {
        group.bench_function(format!("{callers} appenders, time per append"), |b| {
            b.iter_custom(|iters| {
                let per_task = iters.div_ceil(callers).max(1);
                let elapsed = rt.block_on(async {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..callers)
                        .map(|t| {
                            let audit = audit.clone();
                            tokio::spawn(async move {
                                for i in 0..per_task {
                                    audit.append(event(t * per_task + i)).await.unwrap();
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap();
                    }
                    start.elapsed()
                });
                elapsed.mul_f64(iters as f64 / (per_task * callers) as f64)
            })
        });
    }
    // 16 appends issued at once, until the last is acknowledged: what each caller waits.
    group.bench_function("16 appenders, latency of a round", |b| {
        b.to_async(&rt).iter(|| {
            let audit = audit.clone();
            async move {
                let tasks: Vec<_> = (0..CONCURRENT)
                    .map(|t| {
                        let audit = audit.clone();
                        tokio::spawn(async move { audit.append(event(t)).await.unwrap() })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
            }
        })
    });
    group.finish();
}

fn verify(c: &mut Criterion) {
    const RECORDS: u64 = 20_000;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let audit = Audit::open(dir.path(), AuditOptions::default()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..64)
            .map(|t| {
                let audit = audit.clone();
                tokio::spawn(async move {
                    for i in 0..RECORDS / 64 {
                        audit.append(event(t * 1000 + i)).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    let mut group = c.benchmark_group("audit-verify");
    group.sample_size(20);
    group.throughput(Throughput::Elements(RECORDS / 64 * 64));
    group.bench_function("20000 records from the store", |b| {
        b.iter(|| {
            let report = audit.verify().unwrap();
            assert!(report.problem.is_none());
        })
    });
    group.finish();
}

criterion_group!(benches, appends, verify);
criterion_main!(benches);
