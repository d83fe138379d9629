//! Compile bombs (catalog item 20): a component shaped to make the compiler take
//! minutes or gigabytes is refused before compiling, by a limit it names, whether it
//! comes through the library or an upload to `serve`; a compile that outlasts the
//! deadline is abandoned with an error naming it; the host then loads and serves
//! normal plugins.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use warden::compile::CompileLimits;
use warden::{LoadError, PluginSource, Runtime};
use warden_tests::guests;

use crate::serve::{ADMIN, Test};

/// A component whose one core module has one function of `nops` `nop`s.
fn huge_function(nops: usize) -> Vec<u8> {
    wat::parse_str(format!(
        "(component (core module (func {})))",
        "nop ".repeat(nops)
    ))
    .unwrap()
}

/// A component whose one core module has `count` empty functions.
fn many_functions(count: usize) -> Vec<u8> {
    wat::parse_str(format!(
        "(component (core module {}))",
        "(func) ".repeat(count)
    ))
    .unwrap()
}

fn load(runtime: &Runtime, name: &str, wasm: &[u8]) -> Result<warden::Plugin, LoadError> {
    runtime.load(
        PluginSource {
            name,
            wasm,
            extra_docs: Default::default(),
            grant: None,
            signer: None,
        },
        None,
    )
}

#[test]
fn a_huge_function_or_too_many_functions_are_refused_before_compiling() {
    let runtime = Runtime::new().unwrap();
    let cases = [
        (
            "bomb",
            huge_function(2 << 20),
            "a function of its core module 1 is 2.0 MiB, more than the 1.0 MiB one function may have (max_function_bytes)",
        ),
        (
            "swarm",
            many_functions(250_000),
            "it has more than 100000 functions (max_functions)",
        ),
    ];
    for (name, wasm, reason) in cases {
        let started = Instant::now();
        let err = load(&runtime, name, &wasm)
            .err()
            .expect("a compile bomb loaded");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("plugin \"{name}\": refused before compiling: ")),
            "{text}"
        );
        assert!(text.contains(reason), "{text}");
        assert!(text.contains("rebuild it smaller"), "{text}");
        // Measured, not compiled.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
    // The same runtime then loads and runs a normal plugin.
    let wasm = std::fs::read(guests::HOSTILE).unwrap();
    let plugin = load(&runtime, "hostile", &wasm).unwrap();
    assert!(plugin.tools.iter().any(|t| t.name == "big-output"));
}

#[test]
fn a_compile_past_the_deadline_is_abandoned_with_an_error_naming_it() {
    let runtime = Runtime::new().unwrap();
    runtime
        .set_compile_limits(CompileLimits {
            timeout: Duration::from_millis(1),
            ..CompileLimits::default()
        })
        .unwrap();
    let wasm = std::fs::read(guests::HOSTILE).unwrap();
    let started = Instant::now();
    let err = load(&runtime, "slow", &wasm)
        .err()
        .expect("compiled within 1 ms");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let text = err.to_string();
    assert!(
        text.starts_with("plugin \"slow\": does not compile: "),
        "{text}"
    );
    assert!(
        text.contains("compiling took longer than 0.001 s, Warden's deadline for one component"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_compile_bomb_is_refused_and_serve_keeps_serving() {
    let t = Test::start(&[("text", guests::TEXT)], "").await;
    let bomb = huge_function(2 << 20);
    let started = Instant::now();
    let resp = t
        .req(reqwest::Method::PUT, "/v1/plugins/bomb", Some(ADMIN))
        .header("content-type", "application/wasm")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid-plugin", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("\"bomb\""), "{message}");
    assert!(message.contains("(max_function_bytes)"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let (status, _) = t.get(Some(ADMIN), "/v1/plugins/bomb").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let resp = t
        .req(
            reqwest::Method::POST,
            "/v1/tools/text/word-count",
            Some(ADMIN),
        )
        .json(&json!({"text": "still serving"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    t.server.shutdown().await;
}
