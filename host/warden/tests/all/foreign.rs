//! A component written for another WebAssembly MCP host (Wassette style: plain exports,
//! WASI imports only, no `warden:` interfaces) runs unchanged: added, checked and called
//! through the `warden` binary like any other.

use serde_json::{Value, json};
use warden_tests::guests;

use crate::authoring::{expect, json, text, warden};

#[test]
fn a_component_for_another_host_runs_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");

    let out = warden(
        &home,
        tmp.path(),
        &["plugin", "check", guests::FOREIGN, "--json"],
    );
    let report = json(&out);
    let imports: Vec<&str> = report["imports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert!(
        imports.iter().all(|i| i.starts_with("wasi:")),
        "{imports:?}"
    );
    assert_eq!(report["unmapped"], json!([]), "{report:#}");
    let ids: Vec<&str> = report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        ["foreign/convert", "foreign/get-env", "foreign/text.reverse"]
    );
    let convert = &report["tools"][0];
    assert_eq!(
        convert["input_schema"]["properties"]["from"]["enum"],
        json!(["celsius", "fahrenheit"])
    );

    let out = warden(&home, tmp.path(), &["plugin", "add", guests::FOREIGN]);
    expect(&out, 0);
    let call = |tool: &str, input: Value| {
        warden(
            &home,
            tmp.path(),
            &["call", tool, "--input", &input.to_string()],
        )
    };
    let out = call(
        "foreign/convert",
        json!({"value": 100.0, "from": "celsius", "to": "fahrenheit"}),
    );
    assert_eq!(json(&out), json!(212.0));
    let out = call("foreign/text.reverse", json!({"s": "Warden"}));
    assert_eq!(json(&out), json!("nedraW"));

    // Its WASI imports get what the grant gives, like any plugin's: nothing by default.
    let out = call("foreign/get-env", json!({"name": "HOME"}));
    expect(&out, 1);
    assert!(
        text(&out.stderr).contains("HOME is not set"),
        "{}",
        text(&out.stderr)
    );
    let grant = tmp.path().join("foreign.toml");
    std::fs::write(
        &grant,
        "plugin = \"foreign\"\n\n[env]\nvars = { GREETING = \"hej\" }\n",
    )
    .unwrap();
    let out = warden(
        &home,
        tmp.path(),
        &["grant", "set", "foreign", grant.to_str().unwrap()],
    );
    expect(&out, 0);
    let out = call("foreign/get-env", json!({"name": "GREETING"}));
    assert_eq!(json(&out), json!("hej"));
}

/// What an author reads from `plugin check`, for the Wassette-style guest. The path,
/// digest, size and compile time vary from build to build and are redacted.
#[test]
fn check_output_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let out = warden(
        tmp.path(),
        tmp.path(),
        &["plugin", "check", guests::FOREIGN],
    );
    expect(&out, 0);
    let shown = text(&out.stdout)
        .lines()
        .map(|line| {
            if line.contains(": a valid component (sha256:") {
                "[path]: a valid component ([digest])".to_string()
            } else if line.starts_with("size ") {
                "size     [size]".to_string()
            } else if line.starts_with("compile ") {
                "compile  [ms] ms (load: compile, link, tools)".to_string()
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("check_foreign", shown);
}
