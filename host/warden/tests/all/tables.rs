//! Table bombs (the adversarial catalog's item 14): `table.grow` toward 2³² elements,
//! and a component that declares a table larger than any host could hold, each fail as
//! that call's error, and the host serves the next call.

use serde_json::json;
use warden::PluginSource;
use warden::grant::Grant;

use crate::runtime;

/// A table of one funcref; `grow` adds `n` null elements and returns the old size, or
/// -1 when the growth is refused.
const GROWS_A_TABLE: &str = r#"
(component
  (core module $m
    (table $t 1 funcref)
    (func (export "grow") (param i32) (result i32)
      (table.grow $t (ref.null func) (local.get 0))))
  (core instance $i (instantiate $m))
  (func (export "grow") (param "n" u32) (result s32)
    (canon lift (core func $i "grow")))
)
"#;

/// A module whose table starts at 2³² − 1 elements.
const HUGE_TABLE: &str = r#"
(component
  (core module $m
    (table 4294967295 funcref)
    (func (export "size") (result i32) (i32.const 0)))
  (core instance $i (instantiate $m))
  (func (export "size") (result s32)
    (canon lift (core func $i "size")))
)
"#;

fn load(name: &str, wat: &str) -> Result<warden::Plugin, warden::LoadError> {
    let wasm = wat::parse_str(wat).unwrap();
    runtime().load(
        PluginSource {
            name,
            wasm: &wasm,
            extra_docs: Default::default(),
            grant: Some(Grant::default()),
            signer: None,
        },
        None,
    )
}

#[tokio::test]
async fn a_table_bomb_fails_its_own_call_and_the_host_serves_the_next() {
    let plugin = load("tables", GROWS_A_TABLE).unwrap();
    // Toward 2³² elements: the call traps (growth failures trap), never a panic.
    let outcome = runtime()
        .call(&plugin, "grow", &json!({"n": u32::MAX}))
        .await;
    let err = outcome.unwrap_err();
    assert_eq!(err.code(), "trap", "{err}");
    assert!(err.to_string().contains("growing table"), "{err}");
    // A modest growth in the next call's fresh store: the old size, 1.
    let grown = runtime()
        .call(&plugin, "grow", &json!({"n": 10}))
        .await
        .unwrap();
    assert_eq!(grown, json!(1));

    // A table larger than the host holds (20,000 elements a table) is refused at load.
    let Err(err) = load("huge-table", HUGE_TABLE) else {
        panic!("a table of 2³² − 1 elements was loaded");
    };
    let err = err.to_string();
    assert!(
        err.contains("does not fit in pooling allocator") && err.contains("20000"),
        "{err}"
    );
    let grown = runtime()
        .call(&plugin, "grow", &json!({"n": 1}))
        .await
        .unwrap();
    assert_eq!(grown, json!(1));
}
