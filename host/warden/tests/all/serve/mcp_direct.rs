//! A plain 2026-07-28 `tools/call` over HTTP is answered without rmcp's per-request
//! service (`host/server/src/mcp/direct.rs`; its unit tests say which requests are
//! plain). Here each kind of answer is compared with rmcp's own answer to the same
//! call, sent so that it is not plain (an `Accept` with weights, which only rmcp
//! reads): the same status, type and JSON-RPC message, and both calls on the record.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::mcp_holds::{ALICE, Held};

/// A 2026-07-28 `tools/call` of `name` with `arguments`; `plain` or with an `Accept`
/// that sends it to rmcp. The status, content type and body.
async fn call(t: &Held, name: &str, arguments: Value, plain: bool) -> (StatusCode, String, Value) {
    let accept = if plain {
        "application/json, text/event-stream"
    } else {
        "application/json;q=1, text/event-stream;q=0.9"
    };
    let body = json!({
        "jsonrpc": "2.0", "id": 41, "method": "tools/call",
        "params": {
            "name": name,
            "arguments": arguments,
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    });
    let response = t
        .http
        .post(format!("{}/mcp", t.url))
        .bearer_auth(ALICE)
        .header("accept", accept)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", name)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    (status, kind, response.json().await.unwrap())
}

/// The records written after `seq`, without what differs between any two calls (their
/// place in the chain, time, call number and duration), and the last `seq`.
async fn records_after(t: &Held, seq: u64) -> (Vec<Value>, u64) {
    let mut records = t.records(&format!("after={seq}")).await;
    records.sort_by_key(|r| r["seq"].as_u64());
    let last = records.last().map_or(seq, |r| r["seq"].as_u64().unwrap());
    for record in &mut records {
        let record = record.as_object_mut().unwrap();
        for key in ["seq", "time", "prev", "hash"] {
            record.remove(key);
        }
        if let Some(fields) = record.get_mut("fields").and_then(Value::as_object_mut) {
            fields.remove("call");
            fields.remove("duration_us");
        }
    }
    (records, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_call_is_answered_as_rmcp_answers_it() {
    let t = Held::start().await;
    let cases = [
        ("a result", "types__echo-u32", json!({"v": 5})),
        (
            "arguments that do not fit",
            "types__echo-u32",
            json!({"v": "five"}),
        ),
        ("refused by the policy", "types__echo-u32", json!({"v": 13})),
        (
            "held, for a client that takes no holds",
            "types__echo-u32",
            json!({"v": 900}),
        ),
        ("an unknown tool", "types__nope", json!({})),
        ("an unknown plugin", "nope__echo-u32", json!({"v": 5})),
    ];
    let (_, mut seq) = records_after(&t, 0).await;
    for (case, name, arguments) in cases {
        let direct = call(&t, name, arguments.clone(), true).await;
        let (direct_records, after) = records_after(&t, seq).await;
        let rmcp = call(&t, name, arguments, false).await;
        let (rmcp_records, after) = records_after(&t, after).await;
        seq = after;
        assert_eq!(direct, rmcp, "{case}");
        assert_eq!(direct.0, StatusCode::OK, "{case}");
        assert_eq!(direct.1, "application/json", "{case}");
        assert_eq!(direct.2["id"], 41, "{case}");
        assert_eq!(direct_records, rmcp_records, "{case}: the same records");
        if name == "types__echo-u32" {
            assert!(!direct_records.is_empty(), "{case}: on the record");
        }
    }
    t.server.shutdown().await;
}

/// A plain call whose body ends before its stated length: 400, naming the body, and
/// the server goes on answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_short_is_refused_and_the_server_goes_on() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let t = Held::start().await;
    let address = t.url.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {ALICE}\r\n\
         content-type: application/json\r\naccept: application/json, text/event-stream\r\n\
         mcp-protocol-version: 2026-07-28\r\nmcp-method: tools/call\r\n\
         mcp-name: types__echo-u32\r\ncontent-length: 200\r\n\r\n{{\"jsonrpc\""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("could not read the request body"),
        "{answer}"
    );

    let (status, _, body) = call(&t, "types__echo-u32", json!({"v": 5}), true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["isError"], false, "{body}");
    t.server.shutdown().await;
}
