//! Loading: a minimal hand-written component, and bad input that must be refused
//! with a clear error.

use serde_json::json;
use warden::{LoadError, PluginSource};

use crate::runtime;

const ADD: &str = r#"
(component
  (core module $m
    (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))
  (core instance $i (instantiate $m))
  (func (export "add") (param "a" u32) (param "b" u32) (result u32)
    (canon lift (core func $i "add")))
)
"#;

fn load(wasm: &[u8]) -> Result<warden::Plugin, LoadError> {
    runtime().load(
        PluginSource {
            name: "subject",
            wasm,
            extra_docs: Default::default(),
            grant: None,
            signer: None,
        },
        None,
    )
}

#[tokio::test]
async fn calls_a_minimal_component() {
    let plugin = load(&wat::parse_str(ADD).unwrap()).unwrap();
    let out = runtime()
        .call(&plugin, "add", &json!({"a": 2, "b": 40}))
        .await
        .unwrap();
    assert_eq!(out, json!(42));
    assert_eq!(plugin.tools[0].description, "add(a: u32, b: u32) -> u32");
}

#[test]
fn malformed_wasm_is_refused_with_a_reason() {
    let cases: [(&[u8], &str); 4] = [
        (b"", "not a WebAssembly binary"),
        (b"hello, world", "not a WebAssembly binary"),
        (
            &wat::parse_str("(module)").unwrap(),
            "a core WebAssembly module, not a component",
        ),
        (b"\0asm\x0d\0\x01\0\xff\xff", "malformed component"),
    ];
    for (wasm, expected) in cases {
        let err = load(wasm).map(|_| ()).unwrap_err();
        assert!(matches!(err, LoadError::Invalid { .. }), "{err}");
        let message = err.to_string();
        assert!(message.starts_with("plugin \"subject\": "), "{message}");
        assert!(message.contains(expected), "{message}");
    }
}

#[test]
fn a_truncated_component_is_refused() {
    let wasm = std::fs::read(warden_tests::guests::COUNTER).unwrap();
    let err = load(&wasm[..wasm.len() / 2]).map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("malformed component"), "{err}");
}
