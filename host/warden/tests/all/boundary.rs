//! Malformed canonical-ABI values at the host boundary (the adversarial catalog's item
//! 58): a component written in WAT hands `warden:host/log` strings that are not UTF-8 or
//! lie outside its memory, a misaligned or unpaired UTF-16 string, a list past the end
//! of memory and an enum discriminant that does not exist. Each fails its own call as a
//! trap naming what was wrong (never a panic of the host), is on the audit record as
//! that call's error, and the host serves the next call.

use serde_json::json;
use warden::grant::Grant;

use crate::audited::Audited;

/// `warden:host/log` `write` lowered twice (UTF-8 and UTF-16 strings); each export
/// calls it with one bad argument, and `ok` with good ones. In memory: `hi` (UTF-8) at
/// 16, `\xff\xfe` (not UTF-8) at 32, `hi` in UTF-16LE at 48, a lone surrogate
/// (UTF-16LE `0xD800`) at 64, and at 80 one field whose key is the bytes at 32.
const LOGS: &str = r#"
(component
  (type $log (instance
    (type $level (enum "trace" "debug" "info" "warn" "error"))
    (export "level" (type $level' (eq $level)))
    (export "write" (func (param "level" $level') (param "message" string)
      (param "fields" (list (tuple string string)))))))
  (import "warden:host/log@0.1.0" (instance $log (type $log)))
  (core module $libc
    (memory (export "memory") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) unreachable))
  (core instance $libc (instantiate $libc))
  (core func $write8 (canon lower (func $log "write") (memory (core memory $libc "memory"))
    (realloc (core func $libc "realloc")) string-encoding=utf8))
  (core func $write16 (canon lower (func $log "write") (memory (core memory $libc "memory"))
    (realloc (core func $libc "realloc")) string-encoding=utf16))
  (core module $m
    (import "libc" "memory" (memory 1))
    (import "log" "write8" (func $w8 (param i32 i32 i32 i32 i32)))
    (import "log" "write16" (func $w16 (param i32 i32 i32 i32 i32)))
    (data (i32.const 16) "hi")
    (data (i32.const 32) "\ff\fe")
    (data (i32.const 48) "h\00i\00")
    (data (i32.const 64) "\00\d8")
    (data (i32.const 80) "\20\00\00\00\02\00\00\00\10\00\00\00\02\00\00\00")
    (func (export "ok") (call $w8 (i32.const 2) (i32.const 16) (i32.const 2) (i32.const 0) (i32.const 0)))
    (func (export "ok16") (call $w16 (i32.const 2) (i32.const 48) (i32.const 2) (i32.const 0) (i32.const 0)))
    (func (export "bad-level") (param i32)
      (call $w8 (local.get 0) (i32.const 16) (i32.const 2) (i32.const 0) (i32.const 0)))
    (func (export "field-not-utf8") (call $w8 (i32.const 2) (i32.const 16) (i32.const 2) (i32.const 80) (i32.const 1)))
    (func (export "not-utf8") (call $w8 (i32.const 2) (i32.const 32) (i32.const 2) (i32.const 0) (i32.const 0)))
    (func (export "string-out-of-bounds") (param i32 i32)
      (call $w8 (i32.const 2) (local.get 0) (local.get 1) (i32.const 0) (i32.const 0)))
    (func (export "misaligned-utf16") (call $w16 (i32.const 2) (i32.const 49) (i32.const 1) (i32.const 0) (i32.const 0)))
    (func (export "lone-surrogate") (call $w16 (i32.const 2) (i32.const 64) (i32.const 1) (i32.const 0) (i32.const 0)))
    (func (export "list-out-of-bounds") (param i32 i32)
      (call $w8 (i32.const 2) (i32.const 16) (i32.const 2) (local.get 0) (local.get 1)))
    (func (export "misaligned-list") (call $w8 (i32.const 2) (i32.const 16) (i32.const 2) (i32.const 17) (i32.const 1))))
  (core instance $m (instantiate $m
    (with "libc" (instance $libc))
    (with "log" (instance (export "write8" (func $write8)) (export "write16" (func $write16))))))
  (func (export "ok") (canon lift (core func $m "ok")))
  (func (export "ok16") (canon lift (core func $m "ok16")))
  (func (export "bad-level") (param "discriminant" u32) (canon lift (core func $m "bad-level")))
  (func (export "field-not-utf8") (canon lift (core func $m "field-not-utf8")))
  (func (export "not-utf8") (canon lift (core func $m "not-utf8")))
  (func (export "string-out-of-bounds") (param "ptr" u32) (param "len" u32)
    (canon lift (core func $m "string-out-of-bounds")))
  (func (export "misaligned-utf16") (canon lift (core func $m "misaligned-utf16")))
  (func (export "lone-surrogate") (canon lift (core func $m "lone-surrogate")))
  (func (export "list-out-of-bounds") (param "ptr" u32) (param "len" u32)
    (canon lift (core func $m "list-out-of-bounds")))
  (func (export "misaligned-list") (canon lift (core func $m "misaligned-list")))
)
"#;

const STRING_OOB: &str = "string pointer/length out of bounds of memory";
const LIST_OOB: &str = "list pointer/length out of bounds of memory";

#[tokio::test]
async fn malformed_values_to_the_log_import_trap_their_own_call_on_record() {
    let host = Audited::new();
    let plugin = host.load("logs", LOGS, Grant::default()).unwrap();
    // Well-formed, in either encoding, the import is served.
    for tool in ["ok", "ok16"] {
        assert_eq!(
            host.call(&plugin, tool, json!({})).await.unwrap(),
            json!(null)
        );
        assert_eq!(host.last_call().fields["log_lines"], 1, "{tool}");
    }
    let cases = [
        // `level` has five cases.
        (
            "bad-level",
            json!({"discriminant": 5}),
            "unexpected discriminant: 5",
        ),
        (
            "bad-level",
            json!({"discriminant": u32::MAX}),
            "unexpected discriminant: 4294967295",
        ),
        ("not-utf8", json!({}), "invalid utf-8"),
        ("field-not-utf8", json!({}), "invalid utf-8"),
        (
            "string-out-of-bounds",
            json!({"ptr": 65535, "len": 2}),
            STRING_OOB,
        ),
        (
            "string-out-of-bounds",
            json!({"ptr": u32::MAX, "len": 2}),
            STRING_OOB,
        ),
        (
            "string-out-of-bounds",
            json!({"ptr": 0, "len": u32::MAX}),
            STRING_OOB,
        ),
        (
            "misaligned-utf16",
            json!({}),
            "string pointer not aligned to 2",
        ),
        ("lone-surrogate", json!({}), "unpaired surrogate"),
        (
            "list-out-of-bounds",
            json!({"ptr": 65532, "len": 1}),
            LIST_OOB,
        ),
        (
            "list-out-of-bounds",
            json!({"ptr": 0, "len": 1 << 28}),
            LIST_OOB,
        ),
        ("misaligned-list", json!({}), "list pointer is not aligned"),
    ];
    for (tool, args, says) in cases {
        let err = host.call(&plugin, tool, args.clone()).await.unwrap_err();
        assert_eq!(err.code(), "trap", "{tool} {args}: {err}");
        let message = err.to_string().to_lowercase();
        assert!(message.contains(says), "{tool} {args}: {message}");
        // On record as that call's error, and nothing was logged.
        let recorded = host.last_failure(tool, "trap");
        assert!(recorded.to_lowercase().contains(says), "{recorded}");
        assert_eq!(host.last_call().fields["log_lines"], 0, "{tool} {args}");
        // The host serves the next call.
        assert_eq!(
            host.call(&plugin, "ok", json!({})).await.unwrap(),
            json!(null)
        );
    }
}

/// `warden:host/memory` `set`, called with the namespace, the value and the tag of
/// `ttl-seconds` (an `option<u64>`: 0 none, 1 some) as the caller says; the key is
/// `key`, the content type `text/plain`. Returns the result's discriminant (0 stored, 1
/// the host's error). In memory: `notes` at 16, `key` at 32, `text/plain` at 48, the
/// bytes `\xff\xfe` (not UTF-8) at 64.
const MEMORY_SET: &str = r#"
(component
  (type $memory (instance
    (type $error (variant (case "denied" string) (case "too-large" string)
      (case "invalid" string) (case "internal" string)))
    (export "error" (type $error' (eq $error)))
    (export "set" (func (param "namespace" string) (param "key" string)
      (param "value" (list u8)) (param "content-type" string)
      (param "ttl-seconds" (option u64)) (result (result (error $error')))))))
  (import "warden:host/memory@0.1.0" (instance $memory (type $memory)))
  ;; BUMP_LIBC
  (core instance $libc (instantiate $libc))
  (core func $set (canon lower (func $memory "set") (memory (core memory $libc "memory"))
    (realloc (core func $libc "realloc"))))
  (core module $m
    (import "libc" "memory" (memory 1))
    (import "memory" "set"
      (func $set (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i64 i32)))
    (data (i32.const 16) "notes")
    (data (i32.const 32) "key")
    (data (i32.const 48) "text/plain")
    (data (i32.const 64) "\ff\fe")
    (func (export "set") (param $ns i32) (param $ns_len i32) (param $value i32)
      (param $value_len i32) (param $ttl i32) (result i32)
      (call $set (local.get $ns) (local.get $ns_len) (i32.const 32) (i32.const 3)
        (local.get $value) (local.get $value_len) (i32.const 48) (i32.const 10)
        (local.get $ttl) (i64.const 3600) (i32.const 1024))
      (i32.load8_u (i32.const 1024))))
  (core instance $m (instantiate $m
    (with "libc" (instance $libc))
    (with "memory" (instance (export "set" (func $set))))))
  (func (export "set") (param "ns" u32) (param "ns-len" u32) (param "value" u32)
    (param "value-len" u32) (param "ttl-tag" u32) (result u32)
    (canon lift (core func $m "set")))
)
"#;

#[tokio::test]
async fn malformed_values_to_the_memory_import_store_nothing_and_trap_on_record() {
    use warden::grant::{Access, MemoryGrant};
    let host = Audited::with_memory();
    let grant = Grant {
        memory: [("notes".to_string(), MemoryGrant::new(Access::ReadWrite))].into(),
        ..Grant::default()
    };
    let plugin = host.load("memory-set", MEMORY_SET, grant).unwrap();
    let set = |ns: (u32, u32), value: (u32, u32), ttl: u32| json!({"ns": ns.0, "ns-len": ns.1, "value": value.0, "value-len": value.1, "ttl-tag": ttl});
    // Well-formed: `text/plain` stored under `key` in `notes`, on record.
    let stored = host.call(&plugin, "set", set((16, 5), (48, 10), 1)).await;
    assert_eq!(stored.unwrap(), json!(0));
    let cases = [
        // `option` has two cases.
        (set((16, 5), (64, 2), 2), "invalid option discriminant"),
        (
            set((16, 5), (64, 2), u32::MAX),
            "invalid option discriminant",
        ),
        (set((64, 2), (64, 2), 0), "invalid utf-8"),
        (set((65534, 5), (64, 2), 0), STRING_OOB),
        (set((16, 5), (65535, 2), 0), LIST_OOB),
        (set((16, 5), (0, u32::MAX), 0), LIST_OOB),
    ];
    for (args, says) in cases {
        let err = host.call(&plugin, "set", args.clone()).await.unwrap_err();
        assert_eq!(err.code(), "trap", "{args}: {err}");
        assert!(err.to_string().contains(says), "{args}: {err}");
        let recorded = host.last_failure("set", "trap");
        assert!(recorded.contains(says), "{recorded}");
        // The host's code never ran: the entry is as the good call left it.
        let entry = host
            .runtime
            .memory()
            .unwrap()
            .get("notes", "key", 0)
            .unwrap()
            .unwrap();
        assert_eq!(entry.value, b"text/plain", "{args}");
    }
    let uses = host
        .records()
        .into_iter()
        .filter(|r| r.kind == "capability.use" && r.fields["capability"] == "memory")
        .count();
    assert_eq!(uses, 1, "only the well-formed set reached the store");
    // And the next call is served: `not` (the first three bytes of `notes`) is not
    // granted, which the host answers with its own error, on record.
    let refused = host.call(&plugin, "set", set((16, 3), (48, 10), 0)).await;
    assert_eq!(refused.unwrap(), json!(1));
    let records = host.records();
    let denied = records.iter().rfind(|r| r.kind == "capability.denied");
    let denied = denied.expect("a capability.denied record");
    assert_eq!(denied.fields["target"], "set not", "{denied:#?}");
}
