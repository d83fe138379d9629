//! Host-allocation amplification through `wasi:random` (the adversarial catalog's item
//! 15): the host builds the bytes a guest asks for before the guest gets them, so a
//! request is refused past what the guest's own memory (`memory_mb`) could hold: 2⁴⁰
//! bytes, or 4 MiB from a guest of 1 MiB, trap that call naming the limit, before the
//! host allocates them; the call is on record and the next is served. And a tool's
//! result claiming a list of 2³¹ bytes, or one past its memory, traps before the host
//! copies it (item 59).

use serde_json::json;
use warden::grant::Grant;
use warden::limits::Limits;

use crate::audited::Audited;

/// `random` asks `wasi:random` for `len` bytes and returns how many it got; its
/// allocator grows memory as the bytes need.
const RANDOM: &str = r#"
(component
  (import "wasi:random/random@0.2.0" (instance $random
    (export "get-random-bytes" (func (param "len" u64) (result (list u8))))))
  (core module $libc
    (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 4096))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $at i32) (local $end i32) (local $have i32)
      (local.set $at (global.get $next))
      (local.set $end (i32.add (local.get $at) (local.get 3)))
      (local.set $have (i32.mul (memory.size) (i32.const 65536)))
      (if (i32.gt_u (local.get $end) (local.get $have))
        (then (if (i32.eq (i32.const -1) (memory.grow (i32.add (i32.const 1)
              (i32.shr_u (i32.sub (local.get $end) (local.get $have)) (i32.const 16)))))
          (then unreachable))))
      (global.set $next (local.get $end))
      (local.get $at)))
  (core instance $libc (instantiate $libc))
  (core func $get (canon lower (func $random "get-random-bytes")
    (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core module $m
    (import "libc" "memory" (memory 1))
    (import "random" "get" (func $get (param i64 i32)))
    (func (export "random") (param $len i64) (result i32)
      (call $get (local.get $len) (i32.const 16))
      (i32.load (i32.const 20))))
  (core instance $m (instantiate $m (with "libc" (instance $libc))
    (with "random" (instance (export "get" (func $get))))))
  (func (export "random") (param "len" u64) (result u32) (canon lift (core func $m "random")))
)
"#;

#[tokio::test]
async fn random_bytes_past_the_guests_memory_are_refused_before_the_host_makes_them() {
    let host = Audited::new();
    let grant = Grant {
        limits: Limits {
            memory_mb: 1,
            ..Limits::default()
        },
        ..Grant::default()
    };
    let plugin = host.load("random", RANDOM, grant).unwrap();
    let random = |len: u64| json!({"len": len});
    assert_eq!(
        host.call(&plugin, "random", random(1024)).await.unwrap(),
        json!(1024)
    );
    for len in [1 << 40, 4 << 20, (1 << 20) + 1] {
        let err = host.call(&plugin, "random", random(len)).await.unwrap_err();
        assert_eq!(err.code(), "trap", "{len}: {err}");
        let says = format!("requested len {len} exceeds limit 1048576");
        assert!(err.to_string().contains(&says), "{len}: {err}");
        assert!(host.last_failure("random", "trap").contains(&says));
        assert_eq!(
            host.call(&plugin, "random", random(16)).await.unwrap(),
            json!(16)
        );
    }
}

/// `bytes` returns a `list<u8>` of the pointer and length it is given, whatever they
/// are: the result the host lifts is the guest's claim.
const CLAIMS: &str = r#"
(component
  (core module $m
    (memory (export "memory") 2)
    (func (export "bytes") (param $ptr i32) (param $len i32) (result i32)
      (i32.store (i32.const 0) (local.get $ptr))
      (i32.store (i32.const 4) (local.get $len))
      (i32.const 0)))
  (core instance $i (instantiate $m))
  (func (export "bytes") (param "ptr" u32) (param "len" u32) (result (list u8))
    (canon lift (core func $i "bytes") (memory (core memory $i "memory"))))
)
"#;

#[tokio::test]
async fn a_result_claiming_more_than_the_guests_memory_traps_before_the_host_copies_it() {
    let host = Audited::new();
    let grant = Grant {
        limits: Limits {
            max_output_kb: 64,
            ..Limits::default()
        },
        ..Grant::default()
    };
    let plugin = host.load("claims", CLAIMS, grant).unwrap();
    let claim = |ptr: u32, len: u32| json!({"ptr": ptr, "len": len});
    for (ptr, len) in [(0, 1 << 31), (0, u32::MAX), (u32::MAX, 2), (131_000, 1000)] {
        let err = host
            .call(&plugin, "bytes", claim(ptr, len))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "trap", "{ptr} {len}: {err}");
        let says = "list pointer/length out of bounds of memory";
        assert!(err.to_string().contains(says), "{ptr} {len}: {err}");
        assert!(host.last_failure("bytes", "trap").contains(says));
    }
    // Within its memory but past `max_output_kb`: the output limit, on record.
    let err = host
        .call(&plugin, "bytes", claim(0, 128 << 10))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "limit", "{err}");
    assert!(err.to_string().contains("output limit hit"), "{err}");
    let records = host.records();
    let hit = records.iter().rfind(|r| r.kind == "limit.hit").unwrap();
    assert_eq!(hit.fields["limit"], "output", "{hit:#?}");
    let bytes = host.call(&plugin, "bytes", claim(8, 4)).await.unwrap();
    assert_eq!(bytes, json!([0, 0, 0, 0]));
}
