//! A guest cannot change the environment a later read or a later call gets (the
//! adversarial catalog's item 33): `wasi:cli/environment` has no setter, and what a
//! guest may overwrite is its own copy in its own memory, which is what a libc's
//! `setenv` changes too. A component written in WAT overwrites every byte of the
//! variables the host handed it, then asks again; it and the next call get the
//! grant's values, and each read is on the audit record.

use std::collections::BTreeMap;

use serde_json::json;
use warden::grant::{EnvGrant, Grant};

use crate::audited::Audited;

/// `value` returns the first variable's value; `tamper` overwrites the first
/// variable's name and value in its memory with `X`, checks they now read `X`, and
/// returns the value a second `get-environment` gives.
const ENVIRONMENT: &str = r#"
(component
  (import "wasi:cli/environment@0.2.0" (instance $env
    (export "get-environment" (func (result (list (tuple string string)))))))
  ;; BUMP_LIBC
  (core instance $libc (instantiate $libc))
  (core func $get (canon lower (func $env "get-environment")
    (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core module $m
    (import "libc" "memory" (memory 1))
    (import "env" "get" (func $get (param i32)))
    ;; The first variable: a pointer to its (name, value) tuple, whose value's
    ;; (pointer, length) is at +8.
    (func $first (result i32)
      (call $get (i32.const 16))
      (i32.load (i32.const 16)))
    (func (export "value") (result i32) (i32.add (call $first) (i32.const 8)))
    (func (export "tamper") (result i32) (local $var i32)
      (local.set $var (call $first))
      (memory.fill (i32.load (local.get $var)) (i32.const 88) (i32.load offset=4 (local.get $var)))
      (memory.fill (i32.load offset=8 (local.get $var)) (i32.const 88)
        (i32.load offset=12 (local.get $var)))
      (if (i32.ne (i32.load8_u (i32.load offset=8 (local.get $var))) (i32.const 88))
        (then unreachable))
      (i32.add (call $first) (i32.const 8))))
  (core instance $m (instantiate $m (with "libc" (instance $libc))
    (with "env" (instance (export "get" (func $get))))))
  (func (export "value") (result string) (canon lift (core func $m "value")
    (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (func (export "tamper") (result string) (canon lift (core func $m "tamper")
    (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
)
"#;

#[tokio::test]
async fn a_guest_that_overwrites_its_environment_changes_nothing_the_host_hands_out() {
    let host = Audited::new();
    let grant = Grant {
        env: EnvGrant {
            vars: BTreeMap::from([("GREETING".to_string(), "hello".to_string())]),
        },
        ..Grant::default()
    };
    let plugin = host.load("environment", ENVIRONMENT, grant).unwrap();
    assert_eq!(
        host.call(&plugin, "value", json!({})).await.unwrap(),
        json!("hello")
    );
    // Overwritten in the guest's memory, asked again in the same call: the grant's.
    assert_eq!(
        host.call(&plugin, "tamper", json!({})).await.unwrap(),
        json!("hello")
    );
    let records = host.records();
    let read = records
        .iter()
        .rfind(|r| r.fields["capability"] == "env")
        .expect("the environment read on record");
    assert_eq!(read.tool.as_deref(), Some("tamper"));
    assert_eq!(read.fields["names"], json!(["GREETING"]));
    // The next call gets the grant's value.
    assert_eq!(
        host.call(&plugin, "value", json!({})).await.unwrap(),
        json!("hello")
    );
    assert_eq!(host.last_call().outcome, Some(warden::audit::Outcome::Ok));
}
