//! Self-escalation through MCP (the adversarial catalog's item 53): what `warden mcp`
//! serves an agent is exactly the installed plugins' tools. No tool, prompt or
//! resource manages plugins, grants, tokens or the audit log, and calling one by a
//! management name is a protocol error, never a change.

use std::collections::BTreeSet;

use rmcp::model::ProtocolVersion;
use serde_json::json;
use warden_tests::guests;

use crate::mcp::{add_with, call, connect};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_surface_is_the_plugins_tools_and_nothing_that_manages_warden() {
    let home = tempfile::tempdir().unwrap();
    add_with(home.path(), "text", guests::TEXT, Some("text"));
    let inspect = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(home.path())
        .args(["plugin", "inspect", "text", "--json"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let expected: BTreeSet<String> = doc["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("text__{}", t["name"].as_str().unwrap().replace('.', "_")))
        .collect();
    assert!(!expected.is_empty(), "{doc}");

    let client = connect(home.path(), ProtocolVersion::V_2025_11_25).await;
    let tools = client.list_all_tools().await.unwrap();
    let names: BTreeSet<String> = tools.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names, expected);
    let info = client.peer_info().unwrap();
    assert!(
        info.capabilities.prompts.is_none(),
        "{:?}",
        info.capabilities
    );
    assert!(
        info.capabilities.resources.is_none(),
        "{:?}",
        info.capabilities
    );
    for name in [
        "grant__set",
        "warden__grant-set",
        "plugin__add",
        "warden__plugin-add",
        "audit__prune",
        "tokens__create",
    ] {
        let err = client.call_tool(call(name, json!({}))).await;
        assert!(err.is_err(), "{name}: {err:?}");
    }
    // The grant is as it was (none), and the plugin's tools still answer.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(home.path())
        .args(["grant", "show", "text"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.starts_with("# plugin text has no grant"), "{shown}");
    let result = client
        .call_tool(call("text__word-count", json!({"text": "one two"})))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(false), "{result:?}");
    client.cancel().await.unwrap();
}
