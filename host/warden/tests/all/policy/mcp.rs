//! The policy on `/mcp`: each `tools/call` is decided with its arguments (approval and
//! forbid conditions hold over MCP as over `/v1/tools`), the refusal is a tool error
//! naming the policies, and it is on the audit record.

use serde_json::{Value, json};

use super::http::{ADMIN, Served};

async fn session(t: &Served) -> impl Fn(Value) -> reqwest::RequestBuilder + '_ {
    let url = format!("{}/mcp", t.url);
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "0"}}
    });
    let response = crate::mcp::post(&t.http, &url, initialize)
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    crate::mcp::message(response).await;
    let send = move |body: Value| {
        crate::mcp::post(&t.http, &url, body)
            .bearer_auth(ADMIN)
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
    };
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await
        .unwrap();
    send
}

async fn call(send: &impl Fn(Value) -> reqwest::RequestBuilder, id: u32, v: u32) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                      "params": {"name": "types__echo-u32", "arguments": {"v": v}}});
    crate::mcp::message(send(body).send().await.unwrap()).await["result"].clone()
}

fn error(result: &Value) -> Value {
    assert_eq!(result["isError"], true, "{result}");
    serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_calls_are_decided_with_their_arguments() {
    let t = Served::start().await;
    let send = session(&t).await;

    let result = call(&send, 2, 5).await;
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(result["content"][0]["text"], "5", "{result}");

    let refused = error(&call(&send, 3, 150).await);
    assert_eq!(refused["code"], "approval-required", "{refused}");
    assert_eq!(
        refused["policies"],
        json!(["big-echo", "role:admin:call-tool"])
    );

    let refused = error(&call(&send, 4, 13).await);
    assert_eq!(refused["code"], "forbidden", "{refused}");
    assert_eq!(refused["policies"], json!(["no-thirteen"]));
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("is forbidden by no-thirteen"), "{message}");

    let denied = t.records("access.denied").await;
    assert_eq!(denied.len(), 2, "{denied:?}");
    assert_eq!(denied[0]["fields"]["via"], "mcp");
    assert_eq!(
        denied[0]["fields"]["decision"]["decision"],
        "require-approval"
    );
    assert_eq!(
        denied[1]["fields"]["decision"]["policies"],
        json!(["no-thirteen"])
    );
    let calls = t.records("tool.call").await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        calls[0]["fields"]["policy"],
        json!({"decision": "allow", "policies": ["role:admin:call-tool"]})
    );
    drop(send);
    t.server.shutdown().await;
}
