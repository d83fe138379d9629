//! Host overhead of one agent step, model time excluded: the agent's `step` in a fresh
//! instance, its action checked (grant, access policy) and recorded, one tool call
//! executed, the observation recorded, all durably (the run store's writes are synced,
//! WAL + `synchronous=FULL`). Two settings: with the audit log (every step's records
//! synced too) and without.
//!
//! Each iteration is one run of [`STEPS`] steps (the `scripted` test agent calling
//! `tally/count`, then `finish`); the figure is the run's time divided by its steps.
//!
//! `cargo bench -p warden --bench runs`; figures in BENCHMARKS.md.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use warden::audit::{Audit, AuditOptions};
use warden::grant::{Access, Grant, MemoryGrant, ToolsGrant};
use warden::memory::SqliteMemory;
use warden::policy::Principal;
use warden::runs::store::{RunStore, Status};
use warden::runs::{Plugins, Runner};
use warden::{Plugin, PluginSource, Runtime};

/// Steps in one run: `STEPS - 1` tool calls and a `finish`.
const STEPS: u32 = 20;

fn load(runtime: &Runtime, name: &str, path: &str, grant: Grant) -> Arc<Plugin> {
    let wasm = std::fs::read(path).expect("reading a built guest");
    Arc::new(
        runtime
            .load(
                PluginSource {
                    name,
                    wasm: &wasm,
                    extra_docs: Default::default(),
                    grant: Some(grant),
                    signer: None,
                },
                None,
            )
            .expect("loading a built guest"),
    )
}

fn runner(dir: &std::path::Path, audited: bool) -> Runner {
    let runtime = Runtime::new().unwrap();
    if audited {
        runtime
            .set_audit(Audit::open(dir, AuditOptions::default()).unwrap())
            .unwrap();
    }
    let memory = SqliteMemory::open(&dir.join("memory.db")).unwrap();
    runtime.set_memory(Arc::new(memory)).unwrap();
    let agent = Grant {
        tools: Some(ToolsGrant {
            allow: vec!["tally/*".into()],
        }),
        ..Grant::default()
    };
    let tally = Grant {
        memory: BTreeMap::from([("tally".to_string(), MemoryGrant::new(Access::ReadWrite))]),
        ..Grant::default()
    };
    let plugins: BTreeMap<String, Arc<Plugin>> = BTreeMap::from([
        (
            "scripted".to_string(),
            load(&runtime, "scripted", warden_tests::guests::SCRIPTED, agent),
        ),
        (
            "tally".to_string(),
            load(&runtime, "tally", warden_tests::guests::TALLY, tally),
        ),
    ]);
    let plugins: Arc<dyn Plugins> = Arc::new(plugins);
    let store = Arc::new(RunStore::open(&dir.join("runs.db")).unwrap());
    Runner::new(Arc::new(runtime), plugins, store)
}

fn steps(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let operator = Principal {
        id: "local:bench".into(),
        roles: vec!["admin".into()],
        on_behalf_of: None,
    };
    let caller = warden::Caller::new(operator, warden::Via::Library);
    let mut script: Vec<_> = (1..STEPS)
        .map(|_| json!({ "call": [{ "id": "c", "tool": "tally/count", "arguments": { "key": "k" } }] }))
        .collect();
    script.push(json!({ "finish": null }));
    let task = json!({ "script": script });
    let mut group = c.benchmark_group("agent-step");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(20));
    for (name, audited) in [("durable+audit", true), ("durable", false)] {
        let dir = tempfile::tempdir().unwrap();
        let runner = runner(dir.path(), audited);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let run = runner
                            .start("scripted", task.clone(), &caller)
                            .await
                            .unwrap();
                        let run = runner.drive(&run.id).await.unwrap();
                        assert_eq!(run.status, Status::Finished);
                    }
                    started.elapsed() / STEPS
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, steps);
criterion_main!(benches);
