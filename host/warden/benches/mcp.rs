//! The MCP `tools/call` round trip: the official Rust SDK's client (`rmcp`) driving
//! `warden mcp` as a child process over stdio, as a desktop agent does, against the
//! same call made in process. Same component and arguments throughout: `text`'s
//! `word-count`.
//!
//! - `stdio, warden mcp`: the whole round trip, JSON-RPC over pipes, the call's audit
//!   record synced to the home's log before the answer (as `warden mcp` always does);
//! - `in-process call_as, durable audit`: the same call and the same durable record,
//!   without MCP or a process boundary;
//! - `in-process pipe, no audit`: the same client and server code over an in-memory
//!   pipe, without the audit log: what MCP (JSON-RPC, the SDK, the tokio tasks) costs;
//! - `in-process call, no audit`: the call alone.
//!
//! `cargo bench -p warden --bench mcp`; figures in BENCHMARKS.md. Homes and logs live
//! in the target directory (a real disk: fsync is not free there, as it is on tmpfs).

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, ClientConfig, ProtocolVersion};
use rmcp::transport::TokioChildProcess;
use serde_json::json;
use warden::audit::{Audit, AuditOptions};
use warden::mcp::{FixedTools, Mcp};
use warden::{PluginSource, Runtime};

const TEXT: &str = "Warden runs every tool in its own sandbox. Nothing is ambient.";

fn request() -> CallToolRequestParams {
    CallToolRequestParams::new("text__word-count")
        .with_arguments(json!({ "text": TEXT }).as_object().unwrap().clone())
}

fn client_config() -> ClientConfig {
    let mut config = ClientConfig::default();
    config.protocol_version = ProtocolVersion::V_2025_11_25;
    config
}

fn round_trips(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let home = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let added = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(home.path())
        .args([
            "plugin",
            "add",
            warden_tests::guests::TEXT,
            "--name",
            "text",
        ])
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");

    let stdio = rt.block_on(async {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"));
        cmd.arg("--home").arg(home.path()).arg("mcp");
        let (transport, _) = TokioChildProcess::builder(cmd)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        client_config().serve(transport).await.unwrap()
    });

    let wasm = std::fs::read(warden_tests::guests::TEXT).unwrap();
    let load = |runtime: &Runtime| {
        let source = PluginSource {
            name: "text",
            wasm: &wasm,
            extra_docs: Default::default(),
            grant: None,
            signer: None,
        };
        Arc::new(runtime.load(source, None).unwrap())
    };
    let durable = Runtime::new().unwrap();
    let log = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    durable
        .set_audit(Audit::open(log.path(), AuditOptions::default()).unwrap())
        .unwrap();
    let durable_text = load(&durable);
    let plain = Arc::new(Runtime::new().unwrap());
    let plain_text = load(&plain);
    let args = json!({ "text": TEXT });

    let mcp = Mcp::new(
        plain.clone(),
        Arc::new(FixedTools::new(vec![plain_text.clone()])),
    );
    let (piped, _server) = rt.block_on(async {
        let (server_io, client_io) = tokio::io::duplex(1 << 16);
        let server = mcp
            .handler(warden::Caller::local(warden::Via::McpStdio))
            .serve(server_io);
        let client = client_config().serve(client_io);
        let (server, client) = tokio::join!(server, client);
        (client.unwrap(), server.unwrap())
    });

    let mut group = c.benchmark_group("mcp-tools-call");
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("stdio, warden mcp", |b| {
        b.to_async(&rt).iter(|| async {
            let result = stdio.call_tool(request()).await.unwrap();
            assert_eq!(result.is_error, Some(false));
        })
    });
    group.bench_function("in-process call_as, durable audit", |b| {
        b.to_async(&rt).iter(|| async {
            durable
                .call_as("local:bench", &durable_text, "word-count", &args)
                .await
                .unwrap()
        })
    });
    group.bench_function("in-process pipe, no audit", |b| {
        b.to_async(&rt).iter(|| async {
            let result = piped.call_tool(request()).await.unwrap();
            assert_eq!(result.is_error, Some(false));
        })
    });
    group.bench_function("in-process call, no audit", |b| {
        b.to_async(&rt)
            .iter(|| async { plain.call(&plain_text, "word-count", &args).await.unwrap() })
    });
    group.finish();

    rt.block_on(async {
        let _ = stdio.cancel().await;
        let _ = piped.cancel().await;
    });
}

criterion_group!(benches, round_trips);
criterion_main!(benches);
