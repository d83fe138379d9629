//! The engine's own traps, made by components written in WAT (the adversarial
//! catalog's items 1, 3, 7 and 9): loads and stores at the edges of linear memory (at
//! `0xFFFFFFFF` plus an offset, an 8-byte load at the last byte), at the smallest
//! `memory_mb` and at the largest; `call_indirect` with a wrong signature, past the
//! table and at a null entry; a `memory.fill`, `memory.copy` or `table.fill` loop
//! stopped at the deadline. Each ends its own call as a trap or a limit on the audit
//! record, and the host serves the next call. And a plugin is called only on the
//! runtime (the engine) that loaded it (item 10).

use std::time::{Duration, Instant};

use serde_json::json;
use warden::grant::Grant;
use warden::limits::Limits;

use crate::audited::Audited;

/// One page of memory that `grow` adds to; loads and stores of 1 and 8 bytes at any
/// address, and a 1-byte load with the largest static offset there is.
const EDGES: &str = r#"
(component
  (core module $m
    (memory 1)
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
    (func (export "size") (result i32) (i32.mul (memory.size) (i32.const 65536)))
    (func (export "load8") (param $pages i32) (param $addr i32) (result i32)
      (drop (memory.grow (local.get $pages)))
      (i32.load8_u (local.get $addr)))
    (func (export "load64") (param $pages i32) (param $addr i32) (result i64)
      (drop (memory.grow (local.get $pages)))
      (i64.load (local.get $addr)))
    (func (export "store64") (param $pages i32) (param $addr i32)
      (drop (memory.grow (local.get $pages)))
      (i64.store (local.get $addr) (i64.const -1)))
    (func (export "load-far") (param $addr i32) (result i32)
      (i32.load8_u offset=4294967295 (local.get $addr))))
  (core instance $i (instantiate $m))
  (func (export "grow") (param "pages" u32) (result s32) (canon lift (core func $i "grow")))
  (func (export "size") (result u32) (canon lift (core func $i "size")))
  (func (export "load8") (param "pages" u32) (param "addr" u32) (result u8)
    (canon lift (core func $i "load8")))
  (func (export "load64") (param "pages" u32) (param "addr" u32) (result u64)
    (canon lift (core func $i "load64")))
  (func (export "store64") (param "pages" u32) (param "addr" u32)
    (canon lift (core func $i "store64")))
  (func (export "load-far") (param "addr" u32) (result u8) (canon lift (core func $i "load-far")))
)
"#;

fn limits(memory_mb: u64) -> Grant {
    Grant {
        limits: Limits {
            memory_mb,
            timeout_ms: 30_000,
            ..Limits::default()
        },
        ..Grant::default()
    }
}

/// Calls `tool` with `args` and asserts a trap saying `says`, on record.
async fn traps(
    host: &Audited,
    plugin: &warden::Plugin,
    tool: &str,
    args: serde_json::Value,
    says: &str,
) {
    let err = host.call(plugin, tool, args.clone()).await.unwrap_err();
    assert_eq!(err.code(), "trap", "{tool} {args}: {err}");
    assert!(err.to_string().contains(says), "{tool} {args}: {err}");
    assert!(
        host.last_failure(tool, "trap").contains(says),
        "{tool} {args}"
    );
}

const OOB: &str = "out of bounds memory access";

#[tokio::test]
async fn loads_and_stores_past_the_end_trap_at_every_edge() {
    let host = Audited::new();
    let plugin = host.load("edges", EDGES, limits(1)).unwrap();
    let end: u64 = 65536;
    // The last byte and the last 8 bytes are in bounds.
    assert_eq!(
        host.call(&plugin, "load8", json!({"pages": 0, "addr": end - 1}))
            .await
            .unwrap(),
        json!(0)
    );
    assert_eq!(
        host.call(&plugin, "load64", json!({"pages": 0, "addr": end - 8}))
            .await
            .unwrap(),
        json!(0)
    );
    for (tool, args) in [
        // 8 bytes from the last byte, from 4 before the end, at the end.
        ("load64", json!({"pages": 0, "addr": end - 1})),
        ("load64", json!({"pages": 0, "addr": end - 4})),
        ("load8", json!({"pages": 0, "addr": end})),
        ("store64", json!({"pages": 0, "addr": end - 1})),
        ("load64", json!({"pages": 0, "addr": u32::MAX})),
        // Address plus offset past 2³²: no wrapping around to the start.
        ("load-far", json!({"addr": 0})),
        ("load-far", json!({"addr": 1})),
        ("load-far", json!({"addr": u32::MAX})),
    ] {
        traps(&host, &plugin, tool, args, OOB).await;
        assert_eq!(
            host.call(&plugin, "size", json!({})).await.unwrap(),
            json!(end)
        );
    }
}

#[tokio::test]
async fn bounds_hold_at_the_smallest_and_the_largest_memory_mb() {
    let host = Audited::new();
    // memory_mb = 1: 16 pages. Grown to all of it, the last 8 bytes are in bounds and
    // one byte further is not; a 17th page is refused as the memory limit.
    let small = host.load("edges", EDGES, limits(1)).unwrap();
    let mib: u64 = 1 << 20;
    let last = json!({"pages": 15, "addr": mib - 8});
    assert_eq!(host.call(&small, "load64", last).await.unwrap(), json!(0));
    traps(
        &host,
        &small,
        "load64",
        json!({"pages": 15, "addr": mib - 1}),
        OOB,
    )
    .await;
    traps(
        &host,
        &small,
        "store64",
        json!({"pages": 15, "addr": mib - 4}),
        OOB,
    )
    .await;
    let err = host
        .call(&small, "grow", json!({"pages": 16}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "limit", "{err}");
    assert!(err.to_string().contains("more than 1 MiB"), "{err}");
    assert_eq!(
        host.call(&small, "grow", json!({"pages": 15}))
            .await
            .unwrap(),
        json!(1)
    );

    // memory_mb = 1024, the most a grant may give and the pool's slot size: the same
    // at 1 GiB.
    let large = host.load("edges", EDGES, limits(1024)).unwrap();
    let gib: u64 = 1 << 30;
    let last = json!({"pages": 16383, "addr": gib - 8});
    assert_eq!(host.call(&large, "load64", last).await.unwrap(), json!(0));
    traps(
        &host,
        &large,
        "load64",
        json!({"pages": 16383, "addr": gib - 1}),
        OOB,
    )
    .await;
    traps(
        &host,
        &large,
        "load8",
        json!({"pages": 16383, "addr": gib}),
        OOB,
    )
    .await;
    traps(&host, &large, "load-far", json!({"addr": u32::MAX}), OOB).await;
    let err = host
        .call(&large, "grow", json!({"pages": 16384}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "limit", "{err}");
    assert_eq!(
        host.call(&large, "size", json!({})).await.unwrap(),
        json!(65536)
    );
}

/// A table of four: `double` at 0, `nothing` (another signature) at 1, a function
/// returning i64 from an i32 (same arity, another result) at 2, null at 3.
const INDIRECT: &str = r#"
(component
  (core module $m
    (type $i2i (func (param i32) (result i32)))
    (table 4 funcref)
    (elem (i32.const 0) func $double $nothing $wide)
    (func $double (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
    (func $nothing)
    (func $wide (param i32) (result i64) (i64.extend_i32_u (local.get 0)))
    (func (export "call") (param $index i32) (param $x i32) (result i32)
      (call_indirect (type $i2i) (local.get $x) (local.get $index))))
  (core instance $i (instantiate $m))
  (func (export "call") (param "index" u32) (param "x" s32) (result s32)
    (canon lift (core func $i "call")))
)
"#;

#[tokio::test]
async fn indirect_calls_of_the_wrong_type_past_the_table_or_at_null_trap() {
    let host = Audited::new();
    let plugin = host.load("indirect", INDIRECT, Grant::default()).unwrap();
    let call = |index: u32| json!({"index": index, "x": 21});
    assert_eq!(
        host.call(&plugin, "call", call(0)).await.unwrap(),
        json!(42)
    );
    for (index, says) in [
        (1, "indirect call type mismatch"),
        (2, "indirect call type mismatch"),
        (3, "uninitialized element"),
        (4, "undefined element"),
        (u32::MAX, "undefined element"),
    ] {
        traps(&host, &plugin, "call", call(index), says).await;
        assert_eq!(
            host.call(&plugin, "call", call(0)).await.unwrap(),
            json!(42)
        );
    }
}

/// Bulk operations over 16 MiB of memory, or a table of 10 000 elements, repeated
/// forever: each instruction is long, and the deadline has to stop the loop between
/// them. `peek` reads a byte the loops write.
const BULK: &str = r#"
(component
  (core module $m
    (memory 256)
    (table 10000 funcref)
    (func $f)
    (elem declare func $f)
    (func (export "fill")
      (loop $l (memory.fill (i32.const 0) (i32.const 7) (i32.const 16777216)) (br $l)))
    (func (export "copy")
      (loop $l (memory.copy (i32.const 1) (i32.const 0) (i32.const 16777215)) (br $l)))
    (func (export "table-fill")
      (loop $l (table.fill (i32.const 0) (ref.func $f) (i32.const 10000))
        (table.copy (i32.const 1) (i32.const 0) (i32.const 9999)) (br $l)))
    (func (export "peek") (result i32) (i32.load8_u (i32.const 4096))))
  (core instance $i (instantiate $m))
  (func (export "fill") (canon lift (core func $i "fill")))
  (func (export "copy") (canon lift (core func $i "copy")))
  (func (export "table-fill") (canon lift (core func $i "table-fill")))
  (func (export "peek") (result u8) (canon lift (core func $i "peek")))
)
"#;

#[tokio::test]
async fn bulk_memory_and_table_loops_are_stopped_at_the_deadline() {
    let host = Audited::new();
    let grant = Grant {
        limits: Limits {
            timeout_ms: 200,
            ..Limits::default()
        },
        ..Grant::default()
    };
    let plugin = host.load("bulk", BULK, grant).unwrap();
    for tool in ["fill", "copy", "table-fill"] {
        let started = Instant::now();
        let err = host.call(&plugin, tool, json!({})).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{tool}: {:?}",
            started.elapsed()
        );
        assert_eq!(err.code(), "limit", "{tool}: {err}");
        assert!(
            err.to_string().contains("timeout limit hit"),
            "{tool}: {err}"
        );
        let records = host.records();
        let hit = records.iter().rfind(|r| r.kind == "limit.hit").unwrap();
        assert_eq!(hit.tool.as_deref(), Some(tool));
        assert_eq!(hit.fields["limit"], "timeout", "{hit:#?}");
        // The next call is served, in memory the loop never touched.
        assert_eq!(
            host.call(&plugin, "peek", json!({})).await.unwrap(),
            json!(0)
        );
    }
}

#[tokio::test]
async fn a_plugin_called_on_a_runtime_that_did_not_load_it_is_refused() {
    let (a, b) = (Audited::new(), Audited::new());
    let plugin = a.load("indirect", INDIRECT, Grant::default()).unwrap();
    let call = json!({"index": 0, "x": 21});
    let err = b.call(&plugin, "call", call.clone()).await.unwrap_err();
    // Warden's own refusal, not the guest's trap, on the record of the runtime asked.
    assert_eq!(err.code(), "internal", "{err}");
    let says = "the plugin was loaded by another runtime";
    assert!(err.to_string().contains(says), "{err}");
    assert!(b.last_failure("call", "internal").contains(says));
    // Both runtimes serve their own plugins on.
    assert_eq!(
        a.call(&plugin, "call", call.clone()).await.unwrap(),
        json!(42)
    );
    let own = b.load("indirect", INDIRECT, Grant::default()).unwrap();
    assert_eq!(b.call(&own, "call", call).await.unwrap(), json!(42));
}
