//! Denials today's entry points let through or leave off the record: a forbid that
//! stdio `warden mcp` never consults, a `warden call` refused by a forbid with no
//! `access.denied` record, and a refused capability use by a tool that then succeeds,
//! with no `capability.denied` record.

use rmcp::model::ProtocolVersion;
use rmcp::service::ServiceError;
use serde_json::{Value, json};
use warden_tests::guests;

use super::{add, expect, records, stderr, warden};

/// The home's `policy.cedar`: `text/word-count` for nobody.
const FORBID_WORD_COUNT: &str = r#"
@id("no-word-count")
forbid(principal, action == Warden::Action::"call-tool", resource == Warden::Tool::"text/word-count");
"#;

/// Checks that `record` is the denial of `text/word-count` by `no-word-count`.
#[track_caller]
fn assert_word_count_denied(record: &Value) {
    assert_eq!(record["kind"], "access.denied", "{record}");
    assert_eq!(record["outcome"], "denied", "{record}");
    assert_eq!(record["plugin"], "text", "{record}");
    assert_eq!(record["tool"], "word-count", "{record}");
    assert!(
        record["principal"]
            .as_str()
            .is_some_and(|p| p.starts_with("local:")),
        "{record}"
    );
    assert!(
        record["fields"].to_string().contains("no-word-count"),
        "the record names the deciding policy: {record}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_mcp_refuses_a_forbidden_tool_and_records_the_denial() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    add(h, "text", guests::TEXT, None).await;
    std::fs::write(h.join("policy.cedar"), FORBID_WORD_COUNT).unwrap();

    let client = crate::mcp::connect(h, ProtocolVersion::V_2025_11_25).await;
    let answer = client
        .call_tool(crate::mcp::call(
            "text__word-count",
            json!({"text": "one two three"}),
        ))
        .await;
    client.cancel().await.unwrap();
    let refusal = match answer {
        Ok(result) => {
            assert_eq!(
                result.is_error,
                Some(true),
                "stdio `warden mcp` ran text/word-count, which the home's policy.cedar forbids (no-word-count): {result:?}"
            );
            assert!(result.structured_content.is_none(), "{result:?}");
            result.content[0]
                .as_text()
                .expect("a text block")
                .text
                .clone()
        }
        Err(ServiceError::McpError(error)) => error.message.to_string(),
        Err(other) => panic!("expected a refusal, got {other:?}"),
    };
    assert!(
        refusal.contains("no-word-count"),
        "the refusal names the forbid: {refusal}"
    );

    let denied = records(h, "access.denied").await;
    assert_eq!(
        denied.len(),
        1,
        "one access.denied record of the refused MCP call: {denied:?}"
    );
    assert_word_count_denied(&denied[0]);
    let calls = records(h, "tool.call").await;
    assert!(
        calls.iter().all(|c| c["outcome"] != "ok"),
        "the forbidden tool ran: {calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_call_refused_by_a_forbid_is_on_record_as_access_denied() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    add(h, "text", guests::TEXT, None).await;
    std::fs::write(h.join("policy.cedar"), FORBID_WORD_COUNT).unwrap();

    let out = warden(
        h,
        &[
            "call",
            "text/word-count",
            "--input",
            r#"{"text": "one two"}"#,
        ],
    )
    .await;
    expect(&out, 3);
    assert!(
        stderr(&out).contains("is forbidden by no-word-count"),
        "{}",
        stderr(&out)
    );

    let denied = records(h, "access.denied").await;
    assert_eq!(
        denied.len(),
        1,
        "`warden call` refused text/word-count (exit 3) and left no access.denied record: {denied:?}"
    );
    assert_word_count_denied(&denied[0]);
    assert!(records(h, "tool.call").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_capability_use_is_on_record_even_when_the_tool_succeeds() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // Network to one other host only, and no memory namespace at all.
    add(
        h,
        "prober",
        guests::PROBER,
        Some("[net]\nallow = [\"https://api.example.com\"]\n"),
    )
    .await;

    let out = warden(
        h,
        &[
            "call",
            "prober/fetch-then-ok",
            "--input",
            r#"{"url": "http://169.254.169.254/latest/meta-data/"}"#,
        ],
    )
    .await;
    assert_eq!(expect(&out, 0).trim(), "\"ok\"");
    let out = warden(
        h,
        &[
            "call",
            "prober/memory-then-ok",
            "--input",
            r#"{"namespace": "secrets"}"#,
        ],
    )
    .await;
    assert_eq!(expect(&out, 0).trim(), "\"ok\"");

    // Both calls ended well …
    let calls = records(h, "tool.call").await;
    let outcomes: Vec<(&str, &str)> = calls
        .iter()
        .map(|c| (c["tool"].as_str().unwrap(), c["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [("fetch-then-ok", "ok"), ("memory-then-ok", "ok")],
        "{calls:?}"
    );
    // … and what the host refused them is on record all the same.
    let denied = records(h, "capability.denied").await;
    let of = |tool: &str| {
        denied
            .iter()
            .find(|r| r["tool"] == tool)
            .unwrap_or_else(|| {
                panic!(
                    "prober/{tool} was refused a capability, returned \"ok\", and left no capability.denied record: {denied:?}"
                )
            })
            .clone()
    };
    let net = of("fetch-then-ok");
    assert_eq!(net["outcome"], "denied", "{net}");
    assert_eq!(net["plugin"], "prober", "{net}");
    assert_eq!(net["fields"]["capability"], "net", "{net}");
    assert!(
        net["fields"]["target"]
            .as_str()
            .is_some_and(|t| t.contains("169.254.169.254")),
        "{net}"
    );
    let memory = of("memory-then-ok");
    assert_eq!(memory["outcome"], "denied", "{memory}");
    assert_eq!(memory["fields"]["capability"], "memory", "{memory}");
    assert!(
        memory["fields"]["target"]
            .as_str()
            .is_some_and(|t| t.contains("secrets")),
        "{memory}"
    );
}
