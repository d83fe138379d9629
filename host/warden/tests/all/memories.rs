//! `memory_mb` holds all of a component's linear memories together: a component of
//! four core instances, each with its own memory, used to get four times the limit.

use serde_json::json;
use warden::grant::Grant;
use warden::limits::Limits;
use warden::{Plugin, PluginSource, Runtime};

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
      (i32.mul (local.get $pages) (i32.const 4)))
    (func (export "spin") (loop $forever (br $forever))))
  (core instance $glue (instantiate $glue
    (with "a" (instance $a)) (with "b" (instance $b))
    (with "c" (instance $c)) (with "d" (instance $d))))
  (func (export "grow-all") (param "pages" u32) (result s32)
    (canon lift (core func $glue "grow-all")))
  (func (export "spin")
    (canon lift (core func $glue "spin")))
)
"#;

fn four_memories(memory_mb: u64) -> Plugin {
    four_memories_in(runtime(), memory_mb, Limits::default())
}

fn four_memories_in(runtime: &Runtime, memory_mb: u64, limits: Limits) -> Plugin {
    let wasm = wat::parse_str(FOUR_MEMORIES).unwrap();
    runtime
        .load(
            PluginSource {
                name: "memories",
                wasm: &wasm,
                extra_docs: Default::default(),
                grant: Some(Grant {
                    limits: Limits {
                        memory_mb,
                        ..limits
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

/// The pool holds two memories per instance slot: calls of a component with four
/// memories run out of memories before the runtime runs out of instance slots. Those
/// calls fail as the `concurrency` limit, not as the guest's trap, and the runtime
/// serves again once they end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_past_the_pools_memories_fail_as_the_concurrency_limit() {
    // A runtime of its own: this test fills its pool.
    let runtime = std::sync::Arc::new(Runtime::new().unwrap());
    let limits = Limits {
        timeout_ms: 1500,
        max_concurrency: 200,
        ..Limits::default()
    };
    let plugin = std::sync::Arc::new(four_memories_in(&runtime, 1, limits));
    let calls: Vec<_> = (0..200)
        .map(|_| {
            let (runtime, plugin) = (runtime.clone(), plugin.clone());
            tokio::spawn(async move { runtime.call(&plugin, "spin", &json!({})).await })
        })
        .collect();
    let (mut full, mut timed_out) = (0, 0);
    for call in calls {
        let err = call.await.unwrap().unwrap_err();
        assert_eq!(err.code(), "limit", "{err}");
        let text = err.to_string();
        if text.contains("pool of instances is full") {
            assert!(text.contains("concurrency"), "{err}");
            full += 1;
        } else {
            assert!(text.contains("1500 ms"), "{err}");
            timed_out += 1;
        }
    }
    // 512 memories: at most 128 calls of four memories run at once.
    assert!(timed_out <= 128, "{timed_out} ran");
    assert!(full >= 72, "{full} refused");
    // Served again: the pool's memories came back.
    let grown = runtime
        .call(&plugin, "grow-all", &json!({"pages": 1}))
        .await
        .unwrap();
    assert_eq!(grown, json!(4));
}
