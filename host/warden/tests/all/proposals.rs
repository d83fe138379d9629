//! WebAssembly proposals Warden does not enable (the adversarial catalog's item 79): a
//! component whose code needs threads and shared memory, GC, exceptions, 64-bit
//! memories, custom page sizes, wide arithmetic, stack switching or the component
//! model's async ABI is refused at load, with an error naming what it needs; the
//! runtime then loads and serves a plain component.

use serde_json::json;
use warden::grant::Grant;

use crate::audited::Audited;

/// A component of one core module with `body`, exporting its function `f` (no
/// parameters, an `s32` result).
fn component(body: &str) -> String {
    format!(
        r#"(component
  (core module $m {body})
  (core instance $i (instantiate $m))
  (func (export "f") (result s32) (canon lift (core func $i "f"))))"#
    )
}

/// What each proposal's code looks like, and the words the refusal must hold.
const PROPOSALS: &[(&str, &str, &str)] = &[
    (
        "shared memory",
        r#"(memory 1 1 shared) (func (export "f") (result i32) (i32.atomic.load (i32.const 0)))"#,
        "threads must be enabled for shared memories",
    ),
    (
        "atomics",
        r#"(memory 1) (func (export "f") (result i32) (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))"#,
        "threads support is not enabled",
    ),
    (
        "GC",
        r#"(type $s (struct (field i32)))
           (func (export "f") (result i32) (struct.get $s 0 (struct.new $s (i32.const 1))))"#,
        "gc types are disabled",
    ),
    (
        "exceptions",
        r#"(tag $t (param i32)) (func (export "f") (result i32) (throw $t (i32.const 1)))"#,
        "exceptions proposal not enabled",
    ),
    (
        "64-bit memory",
        r#"(memory i64 1) (func (export "f") (result i32) (i32.load (i64.const 0)))"#,
        "memory64 must be enabled",
    ),
    (
        "custom page sizes",
        r#"(memory 1 (pagesize 1)) (func (export "f") (result i32) (i32.const 0))"#,
        "custom page sizes proposal must be enabled",
    ),
    (
        "wide arithmetic",
        r#"(func (export "f") (result i32)
             (i64.add128 (i64.const 1) (i64.const 0) (i64.const 1) (i64.const 0))
             drop drop (i32.const 0))"#,
        "wide arithmetic support is not enabled",
    ),
    (
        "stack switching",
        r#"(type $ft (func)) (type $ct (cont $ft)) (func (export "f") (result i32) (i32.const 0))"#,
        "stack switching is disabled",
    ),
];

/// A component whose export is lifted with the component model's async ABI.
const ASYNC_LIFT: &str = r#"
(component
  (core module $m (func (export "f")))
  (core instance $i (instantiate $m))
  (type $f (func async (result s32)))
  (func (export "f") (type $f) (canon lift (core func $i "f") async)))
"#;

#[tokio::test]
async fn a_component_needing_a_proposal_warden_does_not_enable_is_refused_by_name() {
    let host = Audited::new();
    let cases = PROPOSALS
        .iter()
        .map(|(name, body, says)| (*name, component(body), *says))
        .chain([(
            "async ABI",
            ASYNC_LIFT.to_string(),
            "require the component model async feature",
        )]);
    for (name, wat, says) in cases {
        let Err(err) = host.load("proposal", &wat, Grant::default()) else {
            panic!("a component needing {name} was loaded");
        };
        let err = err.to_string();
        assert!(err.starts_with("plugin \"proposal\": "), "{name}: {err}");
        assert!(err.contains(says), "{name}: {err}");
    }
    // The runtime then loads and serves a plain component.
    let plain = component(r#"(func (export "f") (result i32) (i32.const 7))"#);
    let plugin = host.load("plain", &plain, Grant::default()).unwrap();
    assert_eq!(host.call(&plugin, "f", json!({})).await.unwrap(), json!(7));
}
