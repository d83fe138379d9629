//! What a caller sees is what it may use: a tool the policy forbids to a principal is
//! not in its `GET /v1/tools` or `tools/list`, and calling it is answered exactly as
//! calling a tool that does not exist, over `/v1` and `/mcp` — while the refusal is on
//! the record for the security team.

use super::issuer::{Issuer, SigningKey, claims};
use super::{mcp_session, records};
use crate::serve::Test;
use reqwest::StatusCode;
use serde_json::{Value, json};
use warden_tests::guests;

/// For bob: `text/word-count`, and every tool of `files`, forbidden.
const POLICY: &str = r#"
@id("bob-no-word-count")
forbid(principal == Warden::User::"bob", action == Warden::Action::"call-tool", resource == Warden::Tool::"text/word-count");
@id("bob-no-files")
forbid(principal == Warden::User::"bob", action == Warden::Action::"call-tool", resource in Warden::Plugin::"files");
"#;

/// `body` with `name` written as `{}`: the answer's form, whatever tool it names.
fn form(body: &Value, name: &str) -> String {
    body.to_string().replace(name, "{}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_tool_is_hidden_and_answers_as_an_unknown_one() {
    let rsa = SigningKey::rsa("rsa-1", "rsa-1.pem");
    let idp = Issuer::start(&[&rsa]).await;
    let policy_dir = tempfile::tempdir().unwrap();
    let policy = policy_dir.path().join("policy.cedar");
    std::fs::write(&policy, POLICY).unwrap();
    let config = format!(
        "[policy]\nfile = \"{}\"\n\n{}",
        policy.display(),
        idp.config("")
    );
    let t = Test::start(&[("text", guests::TEXT), ("files", guests::FILES)], &config).await;
    let scope = json!({"scope": "tools:call"});
    let bob = rsa.sign(&claims("bob", scope.clone()));
    let alice = rsa.sign(&claims("alice", scope));

    // The lists: alice sees word-count and files; bob sees neither.
    let ids = |body: Value| -> Vec<String> {
        body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, tools) = t.get(Some(&alice), "/v1/tools").await;
    let seen = ids(tools);
    assert!(seen.contains(&"text/word-count".to_string()), "{seen:?}");
    assert!(seen.iter().any(|i| i.starts_with("files/")), "{seen:?}");
    let (_, tools) = t.get(Some(&bob), "/v1/tools").await;
    let seen = ids(tools);
    assert!(!seen.contains(&"text/word-count".to_string()), "{seen:?}");
    assert!(!seen.iter().any(|i| i.starts_with("files/")), "{seen:?}");
    assert!(seen.contains(&"text/detect".to_string()), "{seen:?}");

    // Over /v1: the hidden tool answers as a tool that does not exist, the hidden
    // plugin as a plugin that does not exist.
    let args = json!({"text": "a b"});
    let (status, hidden) = t.call(&bob, "text/word-count", args.clone()).await;
    let (status_none, missing) = t.call(&bob, "text/no-such-tool", args.clone()).await;
    assert_eq!(
        (status, status_none),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );
    assert_eq!(hidden["error"]["code"], "unknown-tool", "{hidden}");
    assert_eq!(form(&hidden, "word-count"), form(&missing, "no-such-tool"));
    let (status, hidden) = t.call(&bob, "files/list", json!({"path": "/"})).await;
    let (_, missing) = t.call(&bob, "nothing/list", json!({"path": "/"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(hidden["error"]["code"], "unknown-plugin", "{hidden}");
    assert_eq!(form(&hidden, "files"), form(&missing, "nothing"));
    // Alice still calls it.
    let (status, body) = t.call(&alice, "text/word-count", args.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Over MCP: not listed; a call is the JSON-RPC error of an unknown tool.
    let send = mcp_session(&t, &bob).await;
    let list = crate::mcp::message(
        send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"text__detect"), "{names:?}");
    assert!(!names.contains(&"text__word-count"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("files__")), "{names:?}");
    let call = |id: u32, name: &str| {
        send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                    "params": {"name": name, "arguments": {"text": "a b"}}}))
        .send()
    };
    let hidden = crate::mcp::message(call(3, "text__word-count").await.unwrap()).await;
    let missing = crate::mcp::message(call(3, "text__no-such-tool").await.unwrap()).await;
    assert_eq!(hidden["error"]["code"], -32602, "{hidden}");
    assert_eq!(
        form(&hidden, "text__word-count"),
        form(&missing, "text__no-such-tool")
    );
    let hidden = crate::mcp::message(call(4, "files__list").await.unwrap()).await;
    let missing = crate::mcp::message(call(4, "nothing__list").await.unwrap()).await;
    assert_eq!(
        form(&hidden, "files__list"),
        form(&missing, "nothing__list")
    );

    // The refusals are on record, naming the policy, for each entry point; nothing ran.
    let denied = records(&t, "kind=access.denied&principal=user:bob").await;
    for (tool, via) in [
        ("word-count", "http"),
        ("word-count", "mcp"),
        ("list", "http"),
        ("list", "mcp"),
    ] {
        let record = denied
            .iter()
            .find(|r| r["tool"] == tool && r["fields"]["via"] == via)
            .unwrap_or_else(|| panic!("no denial of {tool} via {via}: {denied:?}"));
        let policies = record["fields"]["decision"].to_string();
        assert!(policies.contains("bob-no-"), "{record}");
    }
    let calls = records(&t, "kind=tool.call&principal=user:bob").await;
    assert!(calls.is_empty(), "{calls:?}");
    t.server.shutdown().await;
}
