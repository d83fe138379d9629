//! Forged and stale resource handles (the adversarial catalog's item 50), and flags with
//! bits no flag has (item 58), at WASI imports: a component written in WAT hands the
//! host a handle it never got, one it has dropped, one of another resource type, and
//! `open-at` flags with every undefined bit set. A bad handle fails its own call as a
//! trap naming it, on the audit record; undefined flag bits are ignored, as the
//! Canonical ABI says, and open nothing the defined bits would not; the host serves
//! the next call.

use serde_json::json;
use warden::grant::{Access, Grant};

use crate::audited::Audited;

/// Pollables from `wasi:clocks` and the stdout stream from `wasi:cli`, and ways of
/// handing them back wrong.
const POLLABLES: &str = r#"
(component
  (import "wasi:io/poll@0.2.0" (instance $poll
    (export "pollable" (type $p (sub resource)))
    (export "[method]pollable.ready" (func (param "self" (borrow $p)) (result bool)))))
  (alias export $poll "pollable" (type $pollable))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
    (export "pollable" (type $p (eq $pollable)))
    (export "subscribe-duration" (func (param "when" u64) (result (own $p))))))
  (import "wasi:io/streams@0.2.0" (instance $streams
    (export "output-stream" (type $o (sub resource)))))
  (alias export $streams "output-stream" (type $output))
  (import "wasi:cli/stdout@0.2.0" (instance $stdout
    (export "output-stream" (type $o (eq $output)))
    (export "get-stdout" (func (result (own $o))))))
  (core func $ready (canon lower (func $poll "[method]pollable.ready")))
  (core func $subscribe (canon lower (func $clock "subscribe-duration")))
  (core func $stdout (canon lower (func $stdout "get-stdout")))
  (core func $drop (canon resource.drop $pollable))
  (core module $m
    (import "host" "ready" (func $ready (param i32) (result i32)))
    (import "host" "subscribe" (func $subscribe (param i64) (result i32)))
    (import "host" "stdout" (func $stdout (result i32)))
    (import "host" "drop" (func $drop (param i32)))
    (func (export "fresh") (result i32) (call $ready (call $subscribe (i64.const 0))))
    (func (export "forged") (param i32) (result i32) (call $ready (local.get 0)))
    (func (export "forged-drop") (param i32) (call $drop (local.get 0)))
    (func (export "stale") (result i32) (local $h i32)
      (local.set $h (call $subscribe (i64.const 0)))
      (call $drop (local.get $h))
      (call $ready (local.get $h)))
    (func (export "dropped-twice") (local $h i32)
      (local.set $h (call $subscribe (i64.const 0)))
      (call $drop (local.get $h))
      (call $drop (local.get $h)))
    (func (export "wrong-type") (result i32) (call $ready (call $stdout)))
    (func (export "drop-wrong-type") (call $drop (call $stdout))))
  (core instance $m (instantiate $m (with "host" (instance
    (export "ready" (func $ready)) (export "subscribe" (func $subscribe))
    (export "stdout" (func $stdout)) (export "drop" (func $drop))))))
  (func (export "fresh") (result bool) (canon lift (core func $m "fresh")))
  (func (export "forged") (param "handle" u32) (result bool) (canon lift (core func $m "forged")))
  (func (export "forged-drop") (param "handle" u32) (canon lift (core func $m "forged-drop")))
  (func (export "stale") (result bool) (canon lift (core func $m "stale")))
  (func (export "dropped-twice") (canon lift (core func $m "dropped-twice")))
  (func (export "wrong-type") (result bool) (canon lift (core func $m "wrong-type")))
  (func (export "drop-wrong-type") (canon lift (core func $m "drop-wrong-type")))
)
"#;

#[tokio::test]
async fn forged_stale_and_mistyped_handles_trap_their_own_call_on_record() {
    let host = Audited::new();
    let plugin = host.load("pollables", POLLABLES, Grant::default()).unwrap();
    // A handle the host gave is served (whether its deadline of now has passed yet
    // or not).
    let fresh = host.call(&plugin, "fresh", json!({})).await.unwrap();
    assert!(fresh.is_boolean(), "{fresh}");
    let cases = [
        // Index 0 is never a handle; 1 is the first the guest could get, but it got none.
        ("forged", json!({"handle": 0}), "unknown handle index 0"),
        ("forged", json!({"handle": 1}), "unknown handle index 1"),
        (
            "forged",
            json!({"handle": 12345}),
            "unknown handle index 12345",
        ),
        (
            "forged",
            json!({"handle": u32::MAX}),
            "unknown handle index 4294967295",
        ),
        (
            "forged-drop",
            json!({"handle": 7}),
            "unknown handle index 7",
        ),
        ("stale", json!({}), "unknown handle index 1"),
        ("dropped-twice", json!({}), "unknown handle index 1"),
        (
            "wrong-type",
            json!({}),
            "handle index 1 used with the wrong type",
        ),
        (
            "drop-wrong-type",
            json!({}),
            "handle index 1 used with the wrong type",
        ),
    ];
    for (tool, args, says) in cases {
        let err = host.call(&plugin, tool, args.clone()).await.unwrap_err();
        assert_eq!(err.code(), "trap", "{tool} {args}: {err}");
        assert!(err.to_string().contains(says), "{tool} {args}: {err}");
        let recorded = host.last_failure(tool, "trap");
        assert!(recorded.contains(says), "{recorded}");
        let fresh = host.call(&plugin, "fresh", json!({})).await.unwrap();
        assert!(fresh.is_boolean(), "{fresh}");
    }
}

/// `open-at` under the first preopen, or under a handle the guest forged or dropped.
/// `open` returns -1 when the file was opened, else the `error-code` (20 `no-entry`,
/// 31 `not-permitted`).
const DESCRIPTORS: &str = r#"
(component
  (import "wasi:filesystem/types@0.2.0" (instance $types
    (export "descriptor" (type $d (sub resource)))
    (type $error-code (enum "access" "would-block" "already" "bad-descriptor" "busy"
      "deadlock" "quota" "exist" "file-too-large" "illegal-byte-sequence" "in-progress"
      "interrupted" "invalid" "io" "is-directory" "loop" "too-many-links" "message-size"
      "name-too-long" "no-device" "no-entry" "no-lock" "insufficient-memory"
      "insufficient-space" "not-directory" "not-empty" "not-recoverable" "unsupported"
      "no-tty" "no-such-device" "overflow" "not-permitted" "pipe" "read-only"
      "invalid-seek" "text-file-busy" "cross-device"))
    (export "error-code" (type $e (eq $error-code)))
    (type $path-flags (flags "symlink-follow"))
    (export "path-flags" (type $pf (eq $path-flags)))
    (type $open-flags (flags "create" "directory" "exclusive" "truncate"))
    (export "open-flags" (type $of (eq $open-flags)))
    (type $descriptor-flags (flags "read" "write" "file-integrity-sync"
      "data-integrity-sync" "requested-write-sync" "mutate-directory"))
    (export "descriptor-flags" (type $df (eq $descriptor-flags)))
    (export "[method]descriptor.open-at" (func (param "self" (borrow $d))
      (param "path-flags" $pf) (param "path" string) (param "open-flags" $of)
      (param "flags" $df) (result (result (own $d) (error $e)))))))
  (alias export $types "descriptor" (type $descriptor))
  (import "wasi:filesystem/preopens@0.2.0" (instance $preopens
    (export "descriptor" (type $d (eq $descriptor)))
    (export "get-directories" (func (result (list (tuple (own $d) string)))))))
  ;; BUMP_LIBC
  (core instance $libc (instantiate $libc))
  (core func $dirs (canon lower (func $preopens "get-directories")
    (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core func $open (canon lower (func $types "[method]descriptor.open-at")
    (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core func $drop (canon resource.drop $descriptor))
  (core module $m
    (import "libc" "memory" (memory 1))
    (import "host" "dirs" (func $dirs (param i32)))
    (import "host" "open" (func $open (param i32 i32 i32 i32 i32 i32 i32)))
    (import "host" "drop" (func $drop (param i32)))
    (data (i32.const 16) "a.txt")
    (func $preopen (result i32)
      (call $dirs (i32.const 512))
      (i32.load (i32.load (i32.const 512))))
    (func $open_at (param $dir i32) (param $pf i32) (param $path i32) (param $len i32)
      (param $of i32) (param $df i32) (result i32)
      (call $open (local.get $dir) (local.get $pf) (local.get $path) (local.get $len)
        (local.get $of) (local.get $df) (i32.const 1024))
      (if (result i32) (i32.load8_u (i32.const 1024))
        (then (i32.load8_u (i32.const 1028)))
        (else (i32.const -1))))
    (func (export "open") (param $path i32) (param $len i32) (param $pf i32) (param $of i32)
      (param $df i32) (result i32)
      (call $open_at (call $preopen) (local.get $pf) (local.get $path) (local.get $len)
        (local.get $of) (local.get $df)))
    (func (export "open-forged") (param $dir i32) (result i32)
      (call $open_at (local.get $dir) (i32.const 0) (i32.const 16) (i32.const 5)
        (i32.const 0) (i32.const 1)))
    (func (export "open-stale") (result i32) (local $dir i32)
      (local.set $dir (call $preopen))
      (call $drop (local.get $dir))
      (call $open_at (local.get $dir) (i32.const 0) (i32.const 16) (i32.const 5)
        (i32.const 0) (i32.const 1))))
  (core instance $m (instantiate $m (with "libc" (instance $libc)) (with "host" (instance
    (export "dirs" (func $dirs)) (export "open" (func $open)) (export "drop" (func $drop))))))
  (func (export "open") (param "path" string) (param "path-flags" u32)
    (param "open-flags" u32) (param "flags" u32) (result s32)
    (canon lift (core func $m "open") (memory (core memory $libc "memory"))
      (realloc (core func $libc "realloc"))))
  (func (export "open-forged") (param "descriptor" u32) (result s32)
    (canon lift (core func $m "open-forged")))
  (func (export "open-stale") (result s32) (canon lift (core func $m "open-stale")))
)
"#;

fn files(host: &Audited, dir: &std::path::Path, access: Access) -> warden::Plugin {
    let grant = crate::fs_grant(dir, access);
    host.load("descriptors", DESCRIPTORS, grant).unwrap()
}

/// The `fs` records of the latest call: (op, path, mode, error) of each.
fn fs_records(host: &Audited) -> Vec<serde_json::Value> {
    let records = host.records();
    let call = records.iter().rfind(|r| r.kind == "tool.call").unwrap();
    let id = &call.fields["call"];
    records
        .iter()
        .filter(|r| &r.fields["call"] == id && r.fields["capability"] == "fs")
        .map(|r| {
            json!([
                r.kind,
                r.fields["path"],
                r.fields["mode"],
                r.fields["error"]
            ])
        })
        .collect()
}

#[tokio::test]
async fn forged_and_stale_descriptors_trap_before_anything_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "alpha").unwrap();
    let host = Audited::new();
    let plugin = files(&host, dir.path(), Access::ReadWrite);
    let read = json!({"path": "a.txt", "path-flags": 0, "open-flags": 0, "flags": 1});
    for (tool, args, says) in [
        (
            "open-forged",
            json!({"descriptor": 1}),
            "unknown handle index 1",
        ),
        (
            "open-forged",
            json!({"descriptor": 99}),
            "unknown handle index 99",
        ),
        ("open-stale", json!({}), "unknown handle index 1"),
    ] {
        let err = host.call(&plugin, tool, args.clone()).await.unwrap_err();
        assert_eq!(err.code(), "trap", "{tool} {args}: {err}");
        assert!(err.to_string().contains(says), "{tool} {args}: {err}");
        assert!(host.last_failure(tool, "trap").contains(says));
        assert_eq!(fs_records(&host), Vec::<serde_json::Value>::new(), "{tool}");
        // The next call opens the file through the preopen, on record.
        let opened = host.call(&plugin, "open", read.clone()).await.unwrap();
        assert_eq!(opened, json!(-1));
        assert_eq!(
            fs_records(&host),
            [json!(["capability.use", "/data/a.txt", "read", null])]
        );
    }
}

#[tokio::test]
async fn flag_bits_no_flag_has_are_ignored_and_open_nothing_more() {
    // Every bit past the defined flags set: `path-flags` has 1, `open-flags` 4,
    // `descriptor-flags` 6 (0xC0 | 1 is `read` and two undefined bits).
    const NO_PATH_FLAG: u32 = !1;
    const NO_OPEN_FLAG: u32 = !0xF;
    const READ: u32 = !0x3F | 1;
    const READ_WRITE: u32 = !0x3F | 3;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "alpha").unwrap();
    let host = Audited::new();
    let open = |path: &str, open_flags: u32, flags: u32| json!({"path": path, "path-flags": NO_PATH_FLAG, "open-flags": open_flags, "flags": flags});
    // Read-only grant: the undefined bits read as nothing, so this is a plain read…
    let plugin = files(&host, dir.path(), Access::Read);
    let opened = host
        .call(&plugin, "open", open("a.txt", NO_OPEN_FLAG, READ))
        .await;
    assert_eq!(opened.unwrap(), json!(-1));
    assert_eq!(
        fs_records(&host),
        [json!(["capability.use", "/data/a.txt", "read", null])]
    );
    // …and `write` among them is still refused, as a denial on record.
    let opened = host
        .call(&plugin, "open", open("a.txt", NO_OPEN_FLAG, READ_WRITE))
        .await;
    assert_eq!(opened.unwrap(), json!(31), "not-permitted");
    assert_eq!(
        fs_records(&host),
        [json!([
            "capability.denied",
            "/data/a.txt",
            "read-write",
            "not-permitted"
        ])]
    );
    // Read-write grant: undefined open flags do not create a missing file…
    let plugin = files(&host, dir.path(), Access::ReadWrite);
    let opened = host
        .call(&plugin, "open", open("new.txt", NO_OPEN_FLAG, READ_WRITE))
        .await;
    assert_eq!(opened.unwrap(), json!(20), "no-entry");
    assert!(!dir.path().join("new.txt").exists());
    assert_eq!(
        fs_records(&host),
        [json!([
            "capability.use",
            "/data/new.txt",
            "read-write",
            "no-entry"
        ])]
    );
    // …and with `create` among them it is created: the defined bits still count.
    let opened = host
        .call(
            &plugin,
            "open",
            open("new.txt", NO_OPEN_FLAG | 1, READ_WRITE),
        )
        .await;
    assert_eq!(opened.unwrap(), json!(-1));
    assert!(dir.path().join("new.txt").exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a.txt")).unwrap(),
        "alpha"
    );
}
