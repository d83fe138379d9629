//! JSON ↔ component values through real calls: a round trip for every WIT shape, and
//! every error path of the mapping.

use serde_json::{Value, json};
use warden_tests::guests;

use crate::{call, load};

async fn echo(tool: &str, value: Value) -> Value {
    let plugin = load("types", guests::TYPES);
    call(&plugin, tool, json!({ "v": value }))
        .await
        .unwrap_or_else(|err| panic!("{tool}({value}): {err}"))
}

#[tokio::test]
async fn every_shape_round_trips() {
    let cases = [
        ("echo-bool", json!(true)),
        ("echo-s8", json!(-128)),
        ("echo-u8", json!(255)),
        ("echo-s16", json!(-32768)),
        ("echo-u16", json!(65535)),
        ("echo-s32", json!(-2147483648i64)),
        ("echo-u32", json!(4294967295u64)),
        ("echo-s64", json!(i64::MIN)),
        ("echo-u64", json!(u64::MAX)),
        ("echo-f32", json!(1.5)),
        ("echo-f64", json!(-2.25e100)),
        ("echo-char", json!("é")),
        ("echo-string", json!("hello, wörld")),
        ("echo-list", json!(["a", "b", ""])),
        ("echo-bytes", json!([0, 1, 255])),
        ("echo-tuple", json!(["x", 7, false])),
        ("echo-record", json!({"x": -1, "y": 2})),
        (
            "echo-nested",
            json!({"name": "tri", "corners": [{"x": 0, "y": 0}, {"x": 1, "y": 0}], "centre": {"x": 0, "y": 1}}),
        ),
        ("echo-variant", json!({"tag": "ping"})),
        ("echo-variant", json!({"tag": "text", "val": "hi"})),
        (
            "echo-variant",
            json!({"tag": "at", "val": {"x": 3, "y": 4}}),
        ),
        ("echo-variant", json!({"tag": "values", "val": [1, 2]})),
        ("echo-enum", json!("green")),
        ("echo-flags", json!(["read", "exec"])),
        ("echo-flags", json!([])),
        ("echo-option", json!(null)),
        ("echo-option", json!(5)),
        ("echo-option-record", json!({"x": 1, "y": 1})),
        ("echo-results", json!([{"ok": 1}, {"err": "no"}])),
    ];
    for (tool, value) in cases {
        assert_eq!(echo(tool, value.clone()).await, value, "{tool}");
    }
}

#[tokio::test]
async fn a_returned_result_is_the_tools_success_or_failure() {
    let plugin = load("types", guests::TYPES);
    let ok = call(&plugin, "fallible", json!({"fail": false}))
        .await
        .unwrap();
    assert!(ok.is_string(), "{ok}");
    let err = call(&plugin, "fallible", json!({"fail": true}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "tool-error");
    assert_eq!(warden::exit::code(&err), 1);
    let echoed = call(&plugin, "echo-result", json!({"v": {"ok": 3}}))
        .await
        .unwrap();
    assert_eq!(echoed, json!(3));
    let failed = call(&plugin, "echo-result", json!({"v": {"err": "bad"}}))
        .await
        .unwrap_err();
    assert_eq!(failed.to_json()["error"], json!("bad"));
}

#[tokio::test]
async fn no_params_no_result_and_interface_exports() {
    let plugin = load("types", guests::TYPES);
    assert_eq!(call(&plugin, "answer", json!({})).await.unwrap(), json!(42));
    assert_eq!(
        call(&plugin, "answer", Value::Null).await.unwrap(),
        json!(42)
    );
    assert_eq!(
        call(&plugin, "nothing", json!({"v": "x"})).await.unwrap(),
        Value::Null
    );
    assert_eq!(
        call(&plugin, "math.add", json!({"a": 2, "b": -5}))
            .await
            .unwrap(),
        json!(-3)
    );
    let err = call(&plugin, "math.divide", json!({"a": 1.0, "b": 0.0}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "tool-error", "{err}");
}

#[tokio::test]
async fn a_missing_option_is_none() {
    let plugin = load("types", guests::TYPES);
    let with = call(
        &plugin,
        "describe",
        json!({"name": "a", "count": 1, "tags": [], "colour": "red"}),
    )
    .await
    .unwrap();
    let without = call(
        &plugin,
        "describe",
        json!({"name": "a", "count": 1, "tags": []}),
    )
    .await
    .unwrap();
    assert_ne!(with, without);
    let nested = echo("echo-nested", json!({"name": "n", "corners": []})).await;
    assert_eq!(nested["centre"], Value::Null);
}

async fn invalid(tool: &str, args: Value) -> String {
    let plugin = load("types", guests::TYPES);
    let err = call(&plugin, tool, args).await.unwrap_err();
    assert_eq!(err.code(), "invalid-arguments", "{err}");
    assert_eq!(warden::exit::code(&err), 2);
    err.to_string()
}

#[tokio::test]
async fn every_mapping_error_names_the_argument() {
    let cases = [
        (
            "echo-u8",
            json!({"v": 300}),
            "argument \"v\": expected u8 (0..=255), got 300",
        ),
        ("echo-s8", json!({"v": -129}), "argument \"v\""),
        ("echo-u32", json!({"v": 1.5}), "got 1.5"),
        (
            "echo-u32",
            json!({"v": "7"}),
            "argument \"v\": expected u32",
        ),
        ("echo-char", json!({"v": "ab"}), "one-character string"),
        ("echo-record", json!({"v": {"x": 1}}), "missing field \"y\""),
        (
            "echo-record",
            json!({"v": {"x": 1, "y": 2, "z": 3}}),
            "unknown field \"z\"",
        ),
        (
            "echo-nested",
            json!({"v": {"name": "a", "corners": [{"x": 1, "y": "no"}]}}),
            "argument \"v.corners[0].y\"",
        ),
        ("echo-tuple", json!({"v": ["x", 1]}), "an array of 3 items"),
        (
            "echo-enum",
            json!({"v": "purple"}),
            "unknown case \"purple\"",
        ),
        ("echo-flags", json!({"v": ["fly"]}), "unknown flag \"fly\""),
        (
            "echo-variant",
            json!({"v": {"tag": "nope"}}),
            "unknown case \"nope\"",
        ),
        (
            "echo-variant",
            json!({"v": {"tag": "ping", "val": 1}}),
            "has no payload",
        ),
        (
            "echo-variant",
            json!({"v": {"tag": "text"}}),
            "needs \"val\"",
        ),
        (
            "echo-result",
            json!({"v": {"ok": 1, "err": "x"}}),
            "argument \"v\"",
        ),
        ("echo-u8", json!({}), "missing parameter \"v\""),
        (
            "echo-u8",
            json!({"v": 1, "w": 2}),
            "unknown parameter \"w\"",
        ),
        ("echo-u8", json!([1]), "expected an object"),
    ];
    for (tool, args, expected) in cases {
        let message = invalid(tool, args.clone()).await;
        assert!(message.contains(expected), "{tool}({args}): {message}");
        assert!(message.starts_with(&format!("types/{tool}: ")), "{message}");
    }
}

#[tokio::test]
async fn an_unknown_tool_lists_the_tools() {
    let plugin = load("types", guests::TYPES);
    let err = call(&plugin, "echo-nope", json!({})).await.unwrap_err();
    assert_eq!(err.code(), "unknown-tool");
    assert_eq!(warden::exit::code(&err), 2);
    let message = err.to_string();
    assert!(message.contains("has no tool \"echo-nope\""), "{message}");
    assert!(message.contains("echo-u8"), "{message}");
}
