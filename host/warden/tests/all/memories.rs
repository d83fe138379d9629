//! `memory_mb` holds all of a component's linear memories together: a component of
//! four core instances, each with its own memory, used to get four times the limit.

use serde_json::json;
use warden::grant::Grant;
use warden::limits::Limits;
use warden::{Plugin, PluginSource};

use crate::runtime;

/// Four instances of one module, each with a memory of one page; `grow-all` grows
/// each by `pages` (64 KiB each) and returns the pages added, or -1 when one refused.
const FOUR_MEMORIES: &str = r#"
(component
  (core module $m
    (memory 1)
    (func (export "grow") (param i32) (result i32)
      (memory.grow (local.get 0))))
  (core instance $a (instantiate $m))
  (core instance $b (instantiate $m))
  (core instance $c (instantiate $m))
  (core instance $d (instantiate $m))
  (core module $glue
    (import "a" "grow" (func $a (param i32) (result i32)))
    (import "b" "grow" (func $b (param i32) (result i32)))
    (import "c" "grow" (func $c (param i32) (result i32)))
    (import "d" "grow" (func $d (param i32) (result i32)))
    (func (export "grow-all") (param $pages i32) (result i32)
      (if (i32.lt_s (call $a (local.get $pages)) (i32.const 0)) (then (return (i32.const -1))))
      (if (i32.lt_s (call $b (local.get $pages)) (i32.const 0)) (then (return (i32.const -1))))
      (if (i32.lt_s (call $c (local.get $pages)) (i32.const 0)) (then (return (i32.const -1))))
      (if (i32.lt_s (call $d (local.get $pages)) (i32.const 0)) (then (return (i32.const -1))))
      (i32.mul (local.get $pages) (i32.const 4))))
  (core instance $glue (instantiate $glue
    (with "a" (instance $a)) (with "b" (instance $b))
    (with "c" (instance $c)) (with "d" (instance $d))))
  (func (export "grow-all") (param "pages" u32) (result s32)
    (canon lift (core func $glue "grow-all")))
)
"#;

fn four_memories(memory_mb: u64) -> Plugin {
    let wasm = wat::parse_str(FOUR_MEMORIES).unwrap();
    runtime()
        .load(
            PluginSource {
                name: "memories",
                wasm: &wasm,
                extra_docs: Default::default(),
                grant: Some(Grant {
                    limits: Limits {
                        memory_mb,
                        ..Limits::default()
                    },
                    ..Grant::default()
                }),
                signer: None,
            },
            None,
        )
        .unwrap()
}

#[tokio::test]
async fn memory_mb_holds_all_memories_of_a_component_together() {
    let plugin = four_memories(2);
    // 4 × 17 pages (1.06 MiB each, under 2 MiB) is 4.25 MiB in all: refused.
    let err = runtime()
        .call(&plugin, "grow-all", &json!({"pages": 16}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "limit", "{err}");
    assert!(err.to_string().contains("memory limit hit"), "{err}");
    assert!(
        err.to_string()
            .contains("more than 2 MiB of memory, all its memories together"),
        "{err}"
    );
    // 4 × 5 pages (1.25 MiB in all) fits, in the next call's fresh store.
    let grown = runtime()
        .call(&plugin, "grow-all", &json!({"pages": 4}))
        .await
        .unwrap();
    assert_eq!(grown, json!(16));
}
