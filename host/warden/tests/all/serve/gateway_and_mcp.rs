//! The OpenAI-compatible gateway and `/mcp` on a served home.

use super::*;

#[tokio::test]
async fn the_openai_compatible_gateway_routes_by_model_name() {
    let fake = crate::models::Fake::start(vec![], crate::models::openai_answer("pong")).await;
    let models = format!(
        "[models.providers.local]\nkind = \"openai\"\nbase_url = \"{}/v1\"\n\n[models.routes.fast]\ntargets = [\"local/small-model\"]\n",
        fake.url()
    );
    let t = Test::start(&[], &models).await;
    let chat = |token: &'static str, body: Value| {
        t.req(reqwest::Method::POST, "/v1/chat/completions", Some(token))
            .json(&body)
            .send()
    };
    let body = json!({"model": "fast", "messages": [{"role": "user", "content": "ping"}]});
    let resp = chat(ADMIN, body.clone()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], "fast");
    assert_eq!(answer["choices"][0]["message"]["content"], "pong");
    assert_eq!(answer["usage"]["total_tokens"], 12);
    assert_eq!(answer["warden"]["target"], "local/small-model");
    assert_eq!(fake.received()[0].body["model"], "small-model");
    // The auditor role may not use models; an unknown route is 404.
    let resp = chat(AUDITOR, body).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = chat(ADMIN, json!({"model": "slow", "messages": []}))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&err), "unknown-route");
    // On record, with the token's principal.
    let (_, records) = t.get(Some(ADMIN), "/v1/audit?kind=model.call").await;
    let records = records["records"].as_array().cloned().unwrap_or_default();
    assert!(
        records
            .iter()
            .any(|r| r["principal"] == "user:root" && r["fields"]["target"] == "local/small-model"),
        "{records:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_on_serve_uses_the_tokens_roles_and_principal() {
    let t = Test::start(&[("text", guests::TEXT), ("files", guests::FILES)], "").await;
    let url = format!("{}/mcp", t.url);
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "0"}}
    });
    // No token: 401, like the rest of the API.
    let response = crate::mcp::post(&t.http, &url, initialize.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let response = crate::mcp::post(&t.http, &url, initialize)
        .bearer_auth(READER)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    crate::mcp::message(response).await;
    let send = |body: Value| {
        crate::mcp::post(&t.http, &url, body)
            .bearer_auth(READER)
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
            .send()
    };
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await
        .unwrap();
    // The reader role may call text/* but not files/*: only text tools are listed.
    let list = crate::mcp::message(
        send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
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
    assert!(names.contains(&"text__word-count"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("files__")), "{names:?}");
    let result = crate::mcp::message(
        send(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                    "params": {"name": "text__word-count", "arguments": {"text": "one two"}}}))
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        result["result"]["structuredContent"]["words"], 2,
        "{result}"
    );
    // On record with the token's principal.
    let (_, records) = t
        .get(Some(ADMIN), "/v1/audit?kind=tool.call&tool=word-count")
        .await;
    let records = records["records"].as_array().cloned().unwrap_or_default();
    assert!(
        records.iter().any(|r| r["principal"] == "token:reader"),
        "{records:?}"
    );

    // Counted in `/metrics` as the REST route's calls are: a call that fails, and one
    // of a tool the reader may not call (an unknown tool to it, a denial to the
    // operator).
    let failed = crate::mcp::message(
        send(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                    "params": {"name": "text__word-count", "arguments": {"text": 1}}}))
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(failed["result"]["isError"], true, "{failed}");
    let hidden = crate::mcp::message(
        send(json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                    "params": {"name": "files__list", "arguments": {"path": "."}}}))
        .await
        .unwrap(),
    )
    .await;
    assert!(hidden["error"].is_object(), "{hidden}");
    t.assert_metrics(&[
        r#"warden_tool_calls_total{plugin="text",tool="word-count",outcome="ok"} 1"#,
        r#"warden_tool_calls_total{plugin="text",tool="word-count",outcome="error"} 1"#,
        r#"warden_tool_errors_total{plugin="text",tool="word-count",code="invalid-arguments"} 1"#,
        r#"warden_tool_call_duration_seconds_count{plugin="text",tool="word-count"} 2"#,
        r#"warden_tool_denials_total{plugin="files",tool="list",reason="access"} 1"#,
        "warden_instances_live 0",
    ])
    .await;

    // A session the server does not hold: 404, as the specification has it (the client
    // starts a new one), with a body that says so.
    let response = crate::mcp::post(
        &t.http,
        &url,
        json!({"jsonrpc": "2.0", "id": 6, "method": "tools/list"}),
    )
    .bearer_auth(READER)
    .header("mcp-session-id", "gone")
    .header("mcp-protocol-version", "2025-11-25")
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "unknown-session", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("start a new one with initialize"),
        "{body}"
    );
}
