//! A guest's own outbound request fields (catalog item 47, the outbound half): a line
//! break or NUL in a field, a name that is not a token, a `Host` other than the URL's
//! authority, a 1 MiB value and a flood of fields. Each is refused by wasi:http before
//! anything is sent: the first ones to the guest (`fields.append` answers
//! `invalid-syntax` or `forbidden`), the oversized ones by ending the call as the
//! `http-fields` limit (wasi:http traps past 128 KiB of fields). The upstream sees only
//! the URL's authority as `Host` and no injected field, and the next request is served.

use serde_json::{Value, json};
use warden::CallError;
use warden::grant::{Grant, NetGrant};
use warden_tests::guests;

use crate::upstream::Upstream;
use crate::{call, load_granted};

async fn http(plugin: &warden::Plugin, url: &str, headers: Vec<Value>) -> Result<Value, CallError> {
    call(
        plugin,
        "http",
        json!({"method": "GET", "url": url, "headers": headers}),
    )
    .await
}

/// The guest's error: the field it tried and the wasi:http error for it.
fn tool_error(result: Result<Value, CallError>) -> String {
    match result {
        Err(CallError::ToolError { error, .. }) => error.as_str().unwrap().to_string(),
        other => panic!("expected the guest's error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_guest_cannot_send_a_line_break_a_foreign_host_or_a_field_flood() {
    let upstream = Upstream::start().await;
    let plugin = load_granted(
        "netprobe",
        guests::NETPROBE,
        Grant {
            net: Some(NetGrant {
                allow: vec![upstream.url("")],
                ..NetGrant::default()
            }),
            ..Grant::default()
        },
    );
    let url = upstream.url("/hello");
    for (name, value, expected) in [
        ("x-test", "a\r\nInjected: yes", "InvalidSyntax"),
        ("x-test", "a\nInjected: yes", "InvalidSyntax"),
        ("x-test", "a\rInjected: yes", "InvalidSyntax"),
        ("x-test", "a\0b", "InvalidSyntax"),
        ("x-test\r\ninjected", "yes", "InvalidSyntax"),
        ("x test", "yes", "InvalidSyntax"),
        ("host", "evil.example", "Forbidden"),
    ] {
        let error = tool_error(http(&plugin, &url, vec![json!([name, value])]).await);
        assert!(
            error.starts_with(&format!("header {name}: ")) && error.contains(expected),
            "{name:?}: {value:?}: {error}"
        );
    }
    // Past wasi:http's 128 KiB of fields the call ends, as a limit that names it.
    let huge = vec![json!(["x-huge", "a".repeat(1 << 20)])];
    let flood: Vec<Value> = (0..100_000)
        .map(|n| json!([format!("x-{n}"), "v"]))
        .collect();
    for (what, headers) in [("a 1 MiB value", huge), ("100 000 fields", flood)] {
        let err = http(&plugin, &url, headers).await.unwrap_err();
        assert_eq!(err.code(), "limit", "{what}: {err}");
        let text = err.to_string();
        assert!(
            text.contains("http-fields limit hit: the guest's HTTP fields went past wasi:http's limit (total size of fields exceeds limit"),
            "{what}: {text}"
        );
        assert!(
            text.contains("send fewer or smaller headers"),
            "{what}: {text}"
        );
    }
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen().len());

    // The next request is served, with the URL's authority as its Host.
    let answer = http(&plugin, &url, vec![json!(["x-fine", "yes"])])
        .await
        .unwrap();
    assert_eq!(answer["status"], 200);
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("host"),
        Some(upstream.addr.to_string().as_str())
    );
    assert_eq!(seen[0].header("x-fine"), Some("yes"));
    assert!(seen[0].header("injected").is_none());
}
