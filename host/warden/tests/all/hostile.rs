//! Hostile guests: traps, infinite loops, memory bombs, deep recursion, huge outputs
//! and log floods end the call with a clear error, and the host keeps serving.

use serde_json::json;
use warden::limits::Limits;
use warden_tests::guests;

use crate::{call, load, load_with};

fn tight() -> Limits {
    Limits {
        memory_mb: 32,
        timeout_ms: 200,
        max_output_kb: 64,
        ..Limits::default()
    }
}

/// After every hostile call, a well-behaved call on the same plugin still works.
async fn still_serves(plugin: &warden::Plugin) {
    let ok = call(plugin, "big-output", json!({"kb": 1})).await.unwrap();
    assert_eq!(ok.as_str().map(str::len), Some(1024));
}

#[tokio::test]
async fn a_panic_is_a_trap_with_the_panic_message() {
    let plugin = load_with("hostile", guests::HOSTILE, tight());
    let err = call(&plugin, "panic", json!({"msg": "boom at line 7"}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "trap");
    assert_eq!(warden::exit::code(&err), 1);
    let message = err.to_string();
    assert!(message.contains("unreachable"), "{message}");
    assert!(message.contains("boom at line 7"), "{message}");
    let err = call(&plugin, "unreachable", json!({})).await.unwrap_err();
    assert_eq!(err.code(), "trap");
    still_serves(&plugin).await;
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_at_the_deadline() {
    let plugin = load_with("hostile", guests::HOSTILE, tight());
    let err = call(&plugin, "loop-forever", json!({})).await.unwrap_err();
    assert_eq!(err.code(), "limit");
    assert!(err.to_string().contains("timeout limit hit"), "{err}");
    assert!(err.to_string().contains("200 ms"), "{err}");
    still_serves(&plugin).await;
}

/// The epoch ticker sleeps once no guest has run for a while (an idle process is not
/// woken 200 times a second), and a call made then wakes it: an infinite loop is
/// still stopped at its deadline.
#[tokio::test]
async fn an_infinite_loop_after_the_ticker_slept_is_still_stopped() {
    use std::time::{Duration, Instant};
    // A runtime of its own: other tests' calls keep the shared one's ticker awake.
    let runtime = warden::Runtime::new().unwrap();
    let grant = warden::grant::Grant {
        limits: tight(),
        ..Default::default()
    };
    let plugin = crate::load_into(&runtime, "hostile", guests::HOSTILE, grant);
    let until = Instant::now() + warden::engine::TICKER_IDLE * 10;
    while !runtime.ticker_asleep() {
        assert!(Instant::now() < until, "the epoch ticker never slept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // On a thread of its own: a loop that is never stopped would hold it for ever, and
    // the test fails on the wait below instead of hanging.
    let runtime = std::sync::Arc::new(runtime);
    let (tx, rx) = std::sync::mpsc::channel();
    let caller = runtime.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = tx.send(rt.block_on(caller.call(&plugin, "loop-forever", &json!({}))));
    });
    let result = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("an infinite loop made while the ticker slept was not stopped");
    let err = result.unwrap_err();
    assert_eq!(err.code(), "limit");
    assert!(err.to_string().contains("timeout limit hit"), "{err}");
    assert!(!runtime.ticker_asleep(), "a call woke the ticker");
}

#[tokio::test]
async fn fuel_stops_a_loop_at_the_same_instruction_count_every_time() {
    let limits = Limits {
        fuel: 2_000_000,
        ..Limits::default()
    };
    let plugin = load_with("hostile", guests::HOSTILE, limits);
    let err = call(&plugin, "loop-forever", json!({})).await.unwrap_err();
    assert_eq!(err.code(), "limit");
    assert!(err.to_string().contains("fuel limit hit"), "{err}");
    assert!(err.to_string().contains("2000000 units of fuel"), "{err}");
    // Well within its fuel, a call runs normally: the limit allows as well as denies.
    still_serves(&plugin).await;
    let sum = call(&plugin, "recurse", json!({"depth": 100}))
        .await
        .unwrap();
    assert_eq!(sum, json!(100));
    // Too little fuel for the same work fails the same way on every run.
    let starved = load_with(
        "hostile",
        guests::HOSTILE,
        Limits {
            fuel: 1_000,
            ..Limits::default()
        },
    );
    for _ in 0..2 {
        let err = call(&starved, "big-output", json!({"kb": 64}))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("fuel limit hit"), "{err}");
    }
}

#[tokio::test]
async fn a_memory_bomb_is_refused_at_the_limit() {
    // The memory limit alone: on a loaded machine touching 32 MiB can outlast a short
    // timeout, and the test would see the wrong limit.
    let limits = Limits {
        timeout_ms: 30_000,
        ..tight()
    };
    let plugin = load_with("hostile", guests::HOSTILE, limits);
    let err = call(&plugin, "grow-memory", json!({"mb": 64}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("memory limit hit"), "{err}");
    assert!(err.to_string().contains("32 MiB"), "{err}");
    let fits = call(&plugin, "grow-memory", json!({"mb": 8}))
        .await
        .unwrap();
    assert!(fits.as_u64().is_some(), "{fits}");
    still_serves(&plugin).await;
}

#[tokio::test]
async fn deep_recursion_traps() {
    let plugin = load_with("hostile", guests::HOSTILE, tight());
    let err = call(&plugin, "recurse", json!({"depth": 100_000_000}))
        .await
        .unwrap_err();
    assert!(matches!(err.code(), "trap" | "limit"), "{err}");
    still_serves(&plugin).await;
}

#[tokio::test]
async fn a_huge_output_is_refused() {
    let plugin = load_with("hostile", guests::HOSTILE, tight());
    let err = call(&plugin, "big-output", json!({"kb": 1024}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("output limit hit"), "{err}");
    assert!(err.to_string().contains("64 KiB"), "{err}");
    still_serves(&plugin).await;
}

#[tokio::test]
async fn a_log_flood_is_capped_and_the_record_counts_what_was_dropped() {
    let host = crate::audited::Audited::new();
    let plugin = host.load_guest("hostile", guests::HOSTILE, warden::grant::Grant::default());
    let out = host
        .call(&plugin, "log-flood", json!({"lines": 100_000}))
        .await
        .unwrap();
    assert_eq!(out, json!(null));
    // 1000 lines written (the cap), the other 99 000 dropped and counted.
    let record = host.last_call();
    assert_eq!(record.tool.as_deref(), Some("log-flood"));
    assert_eq!(record.fields["log_lines"], 1000, "{record:#?}");
    assert_eq!(record.fields["log_dropped"], 99_000, "{record:#?}");
    // Under the cap, nothing is dropped; the next call counts afresh.
    let out = host.call(&plugin, "log-flood", json!({"lines": 10})).await;
    assert_eq!(out.unwrap(), json!(null));
    let record = host.last_call();
    assert_eq!(record.fields["log_lines"], 10, "{record:#?}");
    assert_eq!(record.fields["log_dropped"], 0, "{record:#?}");
    let ok = host.call(&plugin, "big-output", json!({"kb": 1})).await;
    assert_eq!(ok.unwrap().as_str().map(str::len), Some(1024));
}

#[tokio::test]
async fn network_without_a_grant_is_a_denial() {
    let plugin = load("fetch", guests::FETCH);
    let err = call(&plugin, "get", json!({"url": "http://127.0.0.1:9/"}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "denied", "{err}");
    assert_eq!(warden::exit::code(&err), 3);
    let message = err.to_string();
    assert!(
        message.contains("net denied for GET http://127.0.0.1:9/"),
        "{message}"
    );
    assert!(message.contains("[net] allow"), "{message}");
    let json = err.to_json();
    assert_eq!(json["denials"][0]["capability"], "net");
}

#[tokio::test]
async fn files_without_a_grant_see_no_directory() {
    let plugin = load("files", guests::FILES);
    for (tool, args) in [
        ("list", json!({"path": "/"})),
        ("read", json!({"path": "/etc/passwd"})),
        (
            "write",
            json!({"path": "/tmp/x", "content": "x", "mode": "create"}),
        ),
    ] {
        let err = call(&plugin, tool, args).await.unwrap_err();
        assert_eq!(err.code(), "tool-error", "{tool}: {err}");
        assert!(
            err.to_string().contains("no directory is granted"),
            "{tool}: {err}"
        );
    }
}

#[tokio::test]
async fn a_handle_leak_loop_hits_the_handle_cap_on_record_and_the_next_call_is_served() {
    use warden::audit::{Audit, AuditOptions, Filter};
    let home = tempfile::tempdir().unwrap();
    let runtime = warden::Runtime::new().unwrap();
    runtime
        .set_audit(Audit::open(home.path(), AuditOptions::default()).unwrap())
        .unwrap();
    let limits = Limits {
        timeout_ms: 30_000,
        ..Limits::default()
    };
    let plugin = crate::load_into(
        &runtime,
        "hostile",
        guests::HOSTILE,
        warden::grant::Grant {
            limits,
            ..Default::default()
        },
    );
    // Under the cap, the guest keeps every handle it opened (a clock pollable takes
    // two entries of the table: its deadline and the pollable).
    let held = runtime
        .call(&plugin, "hold-handles", &json!({"count": 4000}))
        .await
        .unwrap();
    assert_eq!(held, json!(4000));
    // Past it: the call ends at the cap, as a limit that names it and says what to do.
    let err = runtime
        .call(&plugin, "hold-handles", &json!({"count": 100_000}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "limit", "{err}");
    let text = err.to_string();
    assert!(text.contains("handles limit hit"), "{text}");
    assert!(text.contains("more than 10000 handles at once"), "{text}");
    assert!(text.contains("must drop each handle"), "{text}");
    let records = runtime.audit().unwrap().read(Filter::default()).unwrap();
    let hit = records
        .iter()
        .find(|r| r.kind == "limit.hit")
        .unwrap_or_else(|| panic!("no limit.hit record: {records:#?}"));
    assert_eq!(hit.fields["limit"], json!("handles"), "{hit:#?}");
    // Each call has a table of its own: the next call starts with none held.
    let again = runtime
        .call(&plugin, "hold-handles", &json!({"count": 4900}))
        .await
        .unwrap();
    assert_eq!(again, json!(4900));
    let ok = runtime
        .call(&plugin, "big-output", &json!({"kb": 1}))
        .await
        .unwrap();
    assert_eq!(ok.as_str().map(str::len), Some(1024));
}

#[tokio::test]
async fn held_files_are_capped_below_the_hosts_descriptor_limit_and_closed_ones_do_not_count() {
    use warden::grant::{Access, FsGrant, Grant};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "alpha").unwrap();
    let plugin = crate::load_granted(
        "hostile",
        guests::HOSTILE,
        Grant {
            fs: vec![FsGrant {
                host: dir.path().to_path_buf(),
                guest: "/data".into(),
                access: Access::Read,
            }],
            limits: Limits {
                timeout_ms: 30_000,
                ..Limits::default()
            },
            ..Grant::default()
        },
    );
    let hold = |count: u32| {
        call(
            &plugin,
            "hold-files",
            json!({"path": "/data/a.txt", "count": count}),
        )
    };
    assert_eq!(hold(200).await.unwrap(), json!(200));
    // The preopen is one of the 256: the 256th file is refused, with a denial naming
    // the cap, and the guest sees an error it can handle.
    let err = hold(1000).await.unwrap_err();
    let warden::CallError::Denied {
        denials,
        tool_error,
        ..
    } = &err
    else {
        panic!("expected a denial, got {err}");
    };
    assert!(
        tool_error
            .as_ref()
            .and_then(|e| e.as_str())
            .is_some_and(|e| e.starts_with("after 255 open: ")),
        "{err}"
    );
    assert_eq!(denials.len(), 1, "{denials:?}");
    assert_eq!(denials[0].target, "/data/a.txt");
    assert!(
        denials[0].reason.contains(
            "the call holds 256 files and directories open already, the most one call may"
        ),
        "{}",
        denials[0].reason
    );
    assert!(
        denials[0].reason.contains("close files it is done with"),
        "{}",
        denials[0].reason
    );
    // Files opened and closed one after the other never reach the cap.
    let reads = call(
        &plugin,
        "read-file-loop",
        json!({"path": "/data/a.txt", "count": 2000}),
    )
    .await
    .unwrap();
    assert_eq!(reads, json!([["alpha", 2000]]));
    assert_eq!(hold(255).await.unwrap(), json!(255));
}
