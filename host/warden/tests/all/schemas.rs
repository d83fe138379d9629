//! Snapshots of what people and models read: every tool's description and schemas.

use serde_json::{Value, json};
use warden_tests::guests;

use crate::load;

fn tools(name: &str, path: &str) -> Value {
    let plugin = load(name, path);
    let tools: Vec<Value> = plugin
        .tools
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "signature": t.signature,
                "description": t.description,
                "description_source": t.description_source,
                "input_schema": t.input_schema,
                "output_schema": t.output_schema,
            })
        })
        .collect();
    json!({ "tools": tools, "not_tools": plugin.skipped })
}

#[test]
fn types_guest_schemas() {
    insta::assert_json_snapshot!("types", tools("types", guests::TYPES));
}

#[test]
fn text_plugin_schemas() {
    insta::assert_json_snapshot!("text", tools("text", guests::TEXT));
}

#[test]
fn files_and_fetch_plugin_schemas() {
    insta::assert_json_snapshot!("files", tools("files", guests::FILES));
    insta::assert_json_snapshot!("fetch", tools("fetch", guests::FETCH));
}
