//! Nothing of one plugin is left in the pool slots the next plugin gets (the
//! adversarial catalog's item 8): plugin A writes a marker over all of its memory and
//! fills its table, in 200 instances at once; plugin B, another component, then takes
//! those warm slots (the pooling allocator hands out a slot another module used once
//! more than 100 stand unused) and finds neither a non-zero byte of memory nor a table
//! entry that is not null.

use std::sync::Arc;

use serde_json::json;
use warden::grant::Grant;
use warden::limits::Limits;

use crate::audited::Audited;

/// The component's imports (a clock to wait on, so that its instances are alive at
/// once) and its core module's start; `$body` and the exports are filled in.
const COMPONENT: &str = r#"
(component
  (import "wasi:io/poll@0.2.0" (instance $poll
    (export "pollable" (type $p (sub resource)))
    (export "[method]pollable.block" (func (param "self" (borrow $p))))))
  (alias export $poll "pollable" (type $pollable))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
    (export "pollable" (type $p (eq $pollable)))
    (export "subscribe-duration" (func (param "when" u64) (result (own $p))))))
  (core func $block (canon lower (func $poll "[method]pollable.block")))
  (core func $subscribe (canon lower (func $clock "subscribe-duration")))
  (core func $drop (canon resource.drop $pollable))
  (core module $m
    (import "host" "block" (func $block (param i32)))
    (import "host" "subscribe" (func $subscribe (param i64) (result i32)))
    (import "host" "drop" (func $drop (param i32)))
    (memory 4)
    (table 1000 funcref)
    (func $f)
    (elem declare func $f)
    (func $wait (param $ms i32) (local $p i32)
      (local.set $p (call $subscribe
        (i64.mul (i64.extend_i32_u (local.get $ms)) (i64.const 1000000))))
      (call $block (local.get $p))
      (call $drop (local.get $p)))
    ;; The non-zero 8-byte words of memory and the table entries that are not null.
    (func $scan (result i32) (local $at i32) (local $found i32)
      (loop $l
        (if (i64.ne (i64.load (local.get $at)) (i64.const 0))
          (then (local.set $found (i32.add (local.get $found) (i32.const 1)))))
        (local.set $at (i32.add (local.get $at) (i32.const 8)))
        (br_if $l (i32.lt_u (local.get $at) (i32.const 262144))))
      (local.set $at (i32.const 0))
      (loop $t
        (if (i32.eqz (ref.is_null (table.get (local.get $at))))
          (then (local.set $found (i32.add (local.get $found) (i32.const 1)))))
        (local.set $at (i32.add (local.get $at) (i32.const 1)))
        (br_if $t (i32.lt_u (local.get $at) (i32.const 1000))))
      (local.get $found))
    BODY)
  (core instance $i (instantiate $m (with "host" (instance
    (export "block" (func $block)) (export "subscribe" (func $subscribe))
    (export "drop" (func $drop))))))
  EXPORT
)
"#;

/// Plugin A: "WARDEN!!" in every 8 bytes of its 256 KiB, its table full; what
/// `$scan` then finds (all of it: the scan sees what is there), before a wait.
const WRITE: (&str, &str) = (
    r#"
    (func (export "write") (param $ms i32) (result i32) (local $at i32)
      (loop $l
        (i64.store (local.get $at) (i64.const 0x2121_4E45_4452_4157))
        (local.set $at (i32.add (local.get $at) (i32.const 8)))
        (br_if $l (i32.lt_u (local.get $at) (i32.const 262144))))
      (table.fill (i32.const 0) (ref.func $f) (i32.const 1000))
      (call $scan)
      (call $wait (local.get $ms)))"#,
    r#"(func (export "write") (param "ms" u32) (result u32) (canon lift (core func $i "write")))"#,
);

/// Plugin B: what `$scan` finds, before a wait.
pub(crate) const SCAN: (&str, &str) = (
    r#"
    (func (export "scan") (param $ms i32) (result i32)
      (call $scan)
      (call $wait (local.get $ms)))"#,
    r#"(func (export "scan") (param "ms" u32) (result u32) (canon lift (core func $i "scan")))"#,
);

pub(crate) fn component((body, export): (&str, &str)) -> String {
    COMPONENT.replace("BODY", body).replace("EXPORT", export)
}

/// Runs `count` calls of `tool` at once, each waiting 100 ms so that all hold an
/// instance together; their results.
async fn at_once(
    host: &Arc<Audited>,
    plugin: &Arc<warden::Plugin>,
    tool: &str,
    count: usize,
) -> Vec<serde_json::Value> {
    let mut calls = Vec::new();
    for _ in 0..count {
        let (host, plugin, tool) = (host.clone(), plugin.clone(), tool.to_string());
        calls.push(tokio::spawn(async move {
            host.call(&plugin, &tool, json!({"ms": 100})).await.unwrap()
        }));
    }
    let mut results = Vec::new();
    for call in calls {
        results.push(call.await.unwrap());
    }
    results
}

#[tokio::test]
async fn a_plugin_finds_nothing_of_another_in_the_pool_slots_it_reuses() {
    let host = Arc::new(Audited::new());
    let grant = Grant {
        limits: Limits {
            max_concurrency: 256,
            timeout_ms: 60_000,
            ..Limits::default()
        },
        ..Grant::default()
    };
    let a = Arc::new(host.load("a", &component(WRITE), grant.clone()).unwrap());
    let b = Arc::new(host.load("b", &component(SCAN), grant).unwrap());
    let metrics = host.runtime.engine().pooling_allocator_metrics().unwrap();
    for round in 0..3 {
        let written = at_once(&host, &a, "write", 200).await;
        // 32 768 words and 1 000 entries.
        assert_eq!(written, vec![json!(33_768); 200], "round {round}");
        let warm = metrics.unused_warm_memories();
        assert!(
            warm >= 200,
            "round {round}: {warm} warm slots after 200 of A"
        );
        // 100 of B at once: with more than 100 warm slots unused, each takes one.
        let found = at_once(&host, &b, "scan", 100).await;
        assert_eq!(found, vec![json!(0); 100], "round {round}");
        // B took slots A had used: no slot was used for the first time.
        assert_eq!(metrics.unused_warm_memories(), warm, "round {round}");
    }
    // On record, and the host serves the next call.
    let last = host.last_call();
    assert_eq!(last.tool.as_deref(), Some("scan"));
    assert_eq!(last.outcome, Some(warden::audit::Outcome::Ok));
    assert_eq!(
        host.call(&b, "scan", json!({"ms": 0})).await.unwrap(),
        json!(0)
    );
}
