//! Fuzzing `warden serve`'s request decoding with generated input (proptest): JSON-RPC
//! messages for `/mcp`, valid ones mutated (a member removed or replaced by any JSON),
//! any JSON, batches, truncated messages and bytes that are not JSON; and bodies of the
//! same kinds for the HTTP API's tool call route, against tools of many WIT types.
//! Each gets a clean answer (a 2xx with a JSON-RPC message, or a 4xx with an error),
//! never a 5xx, a hang or a dropped connection; the server then serves a normal call.
//! `PROPTEST_CASES=5000 cargo test -p warden --test all serve::fuzz` runs long; the
//! default is 128 cases a target. A failure prints the smallest body that fails; keep it
//! as a case of its own.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use warden_tests::guests;

use super::{ADMIN, Test};

/// Any JSON, with the strings and keys of JSON-RPC and MCP among the arbitrary ones.
fn any_json() -> impl Strategy<Value = Value> {
    let words = prop::sample::select(vec![
        "2.0",
        "initialize",
        "ping",
        "tools/list",
        "tools/call",
        "resources/list",
        "prompts/get",
        "completion/complete",
        "notifications/cancelled",
        "notifications/initialized",
        "types__echo-record",
        "text__word-count",
        "",
        "\u{0}",
        "\u{fffd}🙂",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,24}".prop_map(Value::String),
        words.prop_map(|w| json!(w)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            prop::sample::select(vec![
                "jsonrpc",
                "id",
                "method",
                "params",
                "name",
                "arguments",
                "v",
                "x",
                "y",
                "text",
                "_meta",
                "task",
                "cursor",
            ])
            .prop_map(String::from),
            ".{0,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Where a mutation of an MCP message lands: a member of the message, of its params
/// or of the arguments of a call.
const MCP_PATHS: [&str; 12] = [
    "jsonrpc",
    "id",
    "method",
    "params",
    "params.name",
    "params.arguments",
    "params.arguments.v",
    "params.arguments.text",
    "params.arguments.v.x",
    "params._meta",
    "params.task",
    "params.cursor",
];

/// Where a mutation of a call's arguments lands.
const ARGUMENT_PATHS: [&str; 9] = [
    "v", "v.x", "v.y", "v.text", "text", "name", "count", "tags", "colour",
];

/// Sets the member at `path` (dotted) of `value` to `to`, or removes it.
fn mutate(value: &mut Value, path: &str, to: Option<Value>) {
    let mut at = value;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let Some(object) = at.as_object_mut() else {
            return;
        };
        if parts.peek().is_none() {
            match to {
                Some(to) => object.insert(part.to_string(), to),
                None => object.remove(part),
            };
            return;
        }
        at = object.entry(part).or_insert_with(|| json!({}));
    }
}

/// A body: a valid message mutated, any JSON, a batch, a truncated message, or bytes.
fn body(valid: Vec<Value>, paths: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    let one = prop::sample::select(valid.clone());
    let mutated = (
        one.clone(),
        prop::collection::vec(
            (prop::sample::select(paths), prop::option::of(any_json())),
            1..4,
        ),
    )
        .prop_map(|(mut message, changes)| {
            for (path, to) in changes {
                mutate(&mut message, path, to);
            }
            message.to_string().into_bytes()
        });
    let batch =
        prop::collection::vec(one.clone(), 0..4).prop_map(|b| json!(b).to_string().into_bytes());
    let truncated = (one, any::<prop::sample::Index>()).prop_map(|(message, at)| {
        let text = message.to_string().into_bytes();
        let at = at.index(text.len());
        text[..at].to_vec()
    });
    prop_oneof![
        4 => mutated,
        2 => any_json().prop_map(|v| v.to_string().into_bytes()),
        1 => batch,
        1 => truncated,
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// How many answers had each status, to show what the cases reached.
#[derive(Default)]
struct Tally(std::sync::Mutex<std::collections::BTreeMap<u16, u64>>);

impl Tally {
    fn record(&self, status: u16) {
        *self.0.lock().unwrap().entry(status).or_default() += 1;
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0.lock().unwrap())
    }
}

fn runner() -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(128);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

fn server(rt: &tokio::runtime::Runtime) -> Test {
    rt.block_on(Test::start(
        &[("text", guests::TEXT), ("types", guests::TYPES)],
        "",
    ))
}

/// Posts `body` to `/mcp` in `session` and checks the answer is clean.
async fn post_mcp(t: &Test, session: &str, body: Vec<u8>) -> Result<u16, TestCaseError> {
    let response = t
        .http
        .post(format!("{}/mcp", t.url))
        .bearer_auth(ADMIN)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .body(body)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .map_err(|err| TestCaseError::fail(format!("no answer: {err}")))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|err| TestCaseError::fail(format!("the answer broke off: {err}")))?;
    prop_assert!(
        status.is_success() || status.is_client_error(),
        "{status}: {text}"
    );
    if status == 200 {
        // JSON, or server-sent events whose data are JSON-RPC messages.
        let data: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .collect();
        let messages: Vec<&str> = if data.is_empty() {
            vec![text.as_str()]
        } else {
            data
        };
        for message in messages {
            let value: Value = serde_json::from_str(message)
                .map_err(|err| TestCaseError::fail(format!("not JSON ({err}): {message}")))?;
            prop_assert!(
                value.get("jsonrpc").is_some() || value.is_array(),
                "{value}"
            );
        }
    }
    Ok(status.as_u16())
}

/// Opens an MCP session on `t` (initialize, then initialized) and returns its id.
async fn session(t: &Test) -> String {
    let url = format!("{}/mcp", t.url);
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "fuzz", "version": "0"}}
    });
    let response = crate::mcp::post(&t.http, &url, initialize)
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let _ = crate::mcp::message(response).await;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = crate::mcp::post(&t.http, &url, initialized)
        .bearer_auth(ADMIN)
        .header("mcp-session-id", &id)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    id
}

#[test]
fn fuzz_mcp_messages_get_a_clean_answer_and_the_server_keeps_serving() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let t = server(&rt);
    let id = rt.block_on(session(&t));
    let call = |name: &str, arguments: Value| {
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
               "params": {"name": name, "arguments": arguments}})
    };
    let valid = vec![
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}),
        json!({"jsonrpc": "2.0", "id": "a", "method": "ping"}),
        call("text__word-count", json!({"text": "one two"})),
        call("types__echo-record", json!({"v": {"x": 1, "y": 2}})),
        call("types__echo-variant", json!({"v": {"text": "hi"}})),
        call("types__echo-flags", json!({"v": ["read"]})),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}),
        json!({"jsonrpc": "2.0", "id": 3, "result": {}}),
    ];
    let tally = Tally::default();
    let mut runner = runner();
    runner
        .run(&body(valid, &MCP_PATHS), |body| {
            tally.record(rt.block_on(post_mcp(&t, &id, body))?);
            Ok(())
        })
        .unwrap();
    eprintln!("MCP answers by status: {tally}");
    // The same session, and a new one, are then served.
    for id in [id.clone(), rt.block_on(session(&t))] {
        let response = rt.block_on(async {
            crate::mcp::post(
                &t.http,
                &format!("{}/mcp", t.url),
                call("text__word-count", json!({"text": "still serving"})),
            )
            .bearer_auth(ADMIN)
            .header("mcp-session-id", &id)
            .header("mcp-protocol-version", "2025-11-25")
            .send()
            .await
            .unwrap()
        });
        let message = rt.block_on(crate::mcp::message(response));
        assert_eq!(message["result"]["isError"], json!(false), "{message}");
    }
    rt.block_on(t.server.shutdown());
}

/// Posts `body` to the API's call route of `tool` and checks the answer is clean.
async fn post_call(t: &Test, tool: &str, body: Vec<u8>) -> Result<u16, TestCaseError> {
    let response = t
        .req(
            reqwest::Method::POST,
            &format!("/v1/tools/{tool}"),
            Some(ADMIN),
        )
        .header("content-type", "application/json")
        .body(body)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .map_err(|err| TestCaseError::fail(format!("no answer: {err}")))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|err| TestCaseError::fail(format!("the answer broke off: {err}")))?;
    prop_assert!(
        status.is_success() || status.is_client_error(),
        "{tool}: {status}: {text}"
    );
    let value: Value = serde_json::from_str(&text)
        .map_err(|err| TestCaseError::fail(format!("{tool}: not JSON ({err}): {text}")))?;
    if !status.is_success() {
        prop_assert!(value["error"]["code"].is_string(), "{tool}: {value}");
        prop_assert!(value["error"]["message"].is_string(), "{tool}: {value}");
    }
    Ok(status.as_u16())
}

#[test]
fn fuzz_call_bodies_get_a_clean_answer_and_the_server_keeps_serving() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let t = server(&rt);
    let tools = [
        "text/word-count",
        "types/echo-record",
        "types/echo-nested",
        "types/echo-variant",
        "types/echo-flags",
        "types/echo-char",
        "types/echo-u8",
        "types/echo-results",
        "types/describe",
        "no/such-tool",
    ];
    // Bodies are arguments: the "message" is what the tools take, here.
    let valid = vec![
        json!({"text": "one two"}),
        json!({"v": {"x": 1, "y": 2}}),
        json!({"v": {"text": "hi"}}),
        json!({"v": ["read", "write"]}),
        json!({"v": "é"}),
        json!({"v": 255}),
        json!({"v": [{"ok": 1}, {"err": "no"}]}),
        json!({"name": "n", "count": 2, "tags": ["a"], "colour": null}),
    ];
    let tally = Tally::default();
    let mut runner = runner();
    runner
        .run(
            &(
                prop::sample::select(tools.to_vec()),
                body(valid, &ARGUMENT_PATHS),
            ),
            |(tool, body)| {
                tally.record(rt.block_on(post_call(&t, tool, body))?);
                Ok(())
            },
        )
        .unwrap();
    eprintln!("call answers by status: {tally}");
    let (status, body) = rt.block_on(t.call(ADMIN, "text/word-count", json!({"text": "a b c"})));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["words"], json!(3), "{body}");
    rt.block_on(t.server.shutdown());
}
