//! Traces over OTLP: `warden up` with `OTEL_EXPORTER_OTLP_ENDPOINT` set exports a span
//! per HTTP request and per tool call, named and attributed as the OpenTelemetry GenAI
//! conventions say, to a collector on 127.0.0.1 (OTLP/HTTP with JSON bodies); an MCP
//! call's `_meta.traceparent` makes Warden's spans part of the caller's trace.

use std::io::BufRead as _;
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::{Value, json};

/// Every span the collector received, flattened.
fn spans(batches: &[Value]) -> Vec<Value> {
    let mut spans = Vec::new();
    for batch in batches {
        for resource in batch["resourceSpans"].as_array().into_iter().flatten() {
            for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                spans.extend(scope["spans"].as_array().into_iter().flatten().cloned());
            }
        }
    }
    spans
}

/// The value of attribute `key` of `span`, whichever OTLP value kind it has.
fn attribute(span: &Value, key: &str) -> Option<Value> {
    let found = span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)?;
    found["value"].as_object()?.values().next().cloned()
}

/// The trace and span of an MCP client's call, as its `_meta.traceparent` says.
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_tool_calls_are_exported_as_genai_spans() {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let collector = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post({
            let received = received.clone();
            move |body: axum::body::Bytes| async move {
                let batch: Value = serde_json::from_slice(&body).expect("OTLP JSON");
                received.lock().unwrap().push(batch);
                axum::Json(json!({}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, collector).await });

    // A model route to a fake OpenAI-compatible provider, for the gateway's `chat` span.
    let fake = crate::models::fake::Fake::auto("traced answer").await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[models.providers.fake]\nkind = \"openai\"\nbase_url = \"{}/v1\"\n\n[models.routes.smart]\ntargets = [\"fake/model-a\"]\n",
        fake.url()
    );
    std::fs::write(dir.path().join("warden.toml"), config).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(dir.path())
        .args(["up", "--listen", "127.0.0.1:0"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut printed = String::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    let word = |prefix: &str| {
        let at = printed.find(prefix).unwrap_or_else(|| panic!("{printed}"));
        printed[at..]
            .split(|c: char| c.is_whitespace() || c == '\'' || c == '"')
            .next()
            .unwrap()
            .to_string()
    };
    let (token, url) = (word("wdn_"), word("http://127.0.0.1:"));
    let http = reqwest::Client::new();
    let call = |tool: &str, args: Value| {
        http.post(format!("{url}/v1/tools/{tool}"))
            .bearer_auth(&token)
            .json(&args)
            .send()
    };
    let ok = call("text/word-count", json!({"text": "traced words"}));
    assert_eq!(ok.await.unwrap().status(), StatusCode::OK);
    let chat = http
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(&token)
        .json(&json!({"model": "smart", "messages": [{"role": "user", "content": "hi"}]}))
        .send();
    assert_eq!(chat.await.unwrap().status(), StatusCode::OK);
    let bad = call("text/word-count", json!({"nope": 1}));
    assert_eq!(
        bad.await.unwrap().status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // An MCP 2026-07-28 call carrying the caller's trace in `_meta` (SEP-414).
    let mcp = http
        .post(format!("{url}/mcp"))
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "text__word-count")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                "name": "text__word-count",
                "arguments": {"text": "traced over mcp"},
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {},
                    "traceparent": format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"),
                },
            }}),
        )
        .send();
    let mcp = mcp.await.unwrap();
    assert_eq!(mcp.status(), StatusCode::OK);
    let mcp = mcp.text().await.unwrap();
    assert!(mcp.contains("\"isError\":false"), "{mcp}");
    // SIGTERM: the server drains and exports what is left before it exits.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());

    let spans = spans(&received.lock().unwrap());
    let named =
        |name: &str| -> Vec<&Value> { spans.iter().filter(|s| s["name"] == name).collect() };
    let tools = named("execute_tool text/word-count");
    assert_eq!(tools.len(), 2, "two calls reached the tool: {spans:#?}");
    let (over_mcp, over_http): (Vec<&Value>, Vec<&Value>) =
        tools.iter().partition(|t| t["traceId"] == CALLER_TRACE);
    let tool = over_http[0];
    // The MCP call joined the caller's trace: its span's parent is the caller's.
    let mcp = named("tools/call text/word-count");
    assert_eq!(mcp.len(), 1, "{spans:#?}");
    assert_eq!(mcp[0]["traceId"], CALLER_TRACE, "{:#}", mcp[0]);
    assert_eq!(mcp[0]["parentSpanId"], CALLER_SPAN, "{:#}", mcp[0]);
    assert_eq!(over_mcp.len(), 1, "{spans:#?}");
    assert_eq!(over_mcp[0]["parentSpanId"], mcp[0]["spanId"]);
    assert_eq!(
        attribute(tool, "gen_ai.operation.name"),
        Some(json!("execute_tool"))
    );
    assert_eq!(
        attribute(tool, "gen_ai.tool.name"),
        Some(json!("text/word-count"))
    );
    assert!(attribute(tool, "gen_ai.tool.call.id").is_some(), "{tool:#}");

    let chat = named("chat smart");
    assert_eq!(chat.len(), 1, "{spans:#?}");
    let chat = chat[0];
    assert_eq!(
        attribute(chat, "gen_ai.operation.name"),
        Some(json!("chat"))
    );
    assert_eq!(
        attribute(chat, "gen_ai.request.model"),
        Some(json!("smart"))
    );
    assert_eq!(
        attribute(chat, "gen_ai.response.model"),
        Some(json!("fake/model-a"))
    );
    assert!(
        attribute(chat, "gen_ai.usage.input_tokens").is_some(),
        "{chat:#}"
    );
    let gateway = named("POST /v1/chat/completions");
    assert_eq!(gateway.len(), 1, "{spans:#?}");
    assert_eq!(chat["parentSpanId"], gateway[0]["spanId"]);

    let requests = named("POST /v1/tools/{plugin}/{tool}");
    assert_eq!(requests.len(), 2, "{spans:#?}");
    let parent = requests
        .iter()
        .find(|r| r["spanId"] == tool["parentSpanId"])
        .unwrap_or_else(|| panic!("the tool span's parent is its request: {spans:#?}"));
    assert_eq!(parent["traceId"], tool["traceId"]);
    let status = attribute(parent, "http.response.status_code").unwrap();
    assert!(status.to_string().contains("200"), "{parent:#}");
    let statuses: Vec<_> = requests
        .iter()
        .map(|r| attribute(r, "http.response.status_code").unwrap())
        .collect();
    assert!(
        statuses.iter().any(|s| s.to_string().contains("422")),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().any(|s| s.to_string().contains("200")),
        "{statuses:?}"
    );
}

#[test]
fn an_otlp_protocol_warden_cannot_speak_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(dir.path())
        .args(["plugin", "list"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("OTEL_EXPORTER_OTLP_PROTOCOL=\"grpc\"") && err.contains("http/protobuf"),
        "{err}"
    );
}
