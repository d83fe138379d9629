//! The MCP server: `warden mcp` over stdio driven by the official Rust SDK's client
//! (as a child process, as desktop agents run it), `tools/list_changed` in process,
//! and the Streamable HTTP transport on loopback.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig, ProtocolVersion};
use rmcp::service::{NotificationContext, RoleClient, RunningService, ServiceError};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, ServiceExt as _};
use serde_json::{Value, json};
use warden::mcp::{Authorizer, FixedTools, HttpOptions, Mcp, Principal, ToolSource};
use warden::{Plugin, PluginSource, Runtime};
use warden_tests::guests;

/// `warden plugin add`, with the bundled plugin's manifest when `manifest` names one.
pub(crate) fn add_with(home: &Path, name: &str, path: &str, manifest: Option<&str>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
    cmd.arg("--home")
        .arg(home)
        .args(["plugin", "add", path, "--name", name]);
    if let Some(m) = manifest {
        cmd.arg("--manifest").arg(format!(
            "{}/../../plugins/{m}/warden.toml",
            env!("CARGO_MANIFEST_DIR")
        ));
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A home with `text` (with its manifest) and `fetch` (without one, and no grant: no
/// network).
fn home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    add_with(home.path(), "text", guests::TEXT, Some("text"));
    add_with(home.path(), "fetch", guests::FETCH, None);
    home
}

pub(crate) async fn connect(
    home: &Path,
    version: ProtocolVersion,
) -> RunningService<RoleClient, ClientConfig> {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"));
    cmd.arg("--home")
        .arg(home)
        .arg("mcp")
        .env_remove("RUST_LOG");
    let (transport, _stderr) = TokioChildProcess::builder(cmd)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting warden mcp");
    let mut config = ClientConfig::default();
    config.protocol_version = version;
    config.serve(transport).await.expect("initialize")
}

pub(crate) fn call(name: &str, args: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(name.to_string()).with_arguments(args.as_object().unwrap().clone())
}

fn error_json(result: &CallToolResult) -> Value {
    assert_eq!(result.is_error, Some(true), "{result:?}");
    let text = &result.content[0].as_text().expect("a text block").text;
    serde_json::from_str(text).expect("the error as JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_lists_and_calls_tools_with_the_sdk_client() {
    let home = home();
    let client = connect(home.path(), ProtocolVersion::V_2025_11_25).await;
    let info = client.peer_info().expect("server info");
    assert_eq!(info.server_info.as_ref().unwrap().name, "warden");
    assert_eq!(info.protocol_version, ProtocolVersion::V_2025_11_25);
    assert!(info.capabilities.tools.as_ref().unwrap().list_changed == Some(true));

    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert!(names.contains(&"text__word-count"), "{names:?}");
    assert!(names.contains(&"text__transform_case-convert"), "{names:?}");
    assert!(names.contains(&"fetch__get"), "{names:?}");
    let wc = tools.iter().find(|t| t.name == "text__word-count").unwrap();
    assert_eq!(wc.title.as_deref(), Some("text/word-count"));
    assert!(
        wc.description
            .as_deref()
            .unwrap()
            .starts_with("Counts words")
    );
    assert_eq!(wc.input_schema["type"], "object");
    assert_eq!(wc.input_schema["required"], json!(["text"]));
    let output = wc.output_schema.as_ref().expect("an output schema");
    assert_eq!(output["type"], "object");
    assert!(output["properties"]["words"].is_object(), "{output:?}");
    // Annotations: what the manifest says (text: pure functions)…
    let hints = wc.annotations.as_ref().unwrap();
    assert_eq!(hints.title.as_deref(), Some("text/word-count"));
    assert_eq!(
        (
            hints.read_only_hint,
            hints.destructive_hint,
            hints.idempotent_hint,
            hints.open_world_hint
        ),
        (Some(true), Some(false), Some(true), Some(false))
    );
    // … or, without a manifest, the conservative defaults, but not an open world
    // where the grant reaches no network.
    let fetch = tools.iter().find(|t| t.name == "fetch__get").unwrap();
    let hints = fetch.annotations.as_ref().unwrap();
    assert_eq!(
        (
            hints.read_only_hint,
            hints.destructive_hint,
            hints.idempotent_hint,
            hints.open_world_hint
        ),
        (Some(false), Some(true), Some(false), Some(false))
    );

    // A call that works: text and structured content.
    let result = client
        .call_tool(call("text__word-count", json!({"text": "One two. Three"})))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(false));
    let structured = result.structured_content.clone().unwrap();
    assert_eq!(structured["words"], 3);
    assert_eq!(structured["sentences"], 2);
    let text: Value = serde_json::from_str(&result.content[0].as_text().unwrap().text).unwrap();
    assert_eq!(text, structured);

    // An interface tool, by its mapped name.
    let result = client
        .call_tool(call(
            "text__transform_case-convert",
            json!({"text": "hello world", "style": "snake"}),
        ))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(false), "{result:?}");
    // Structured content must be an object before 2026-07-28: the text carries it.
    assert_eq!(result.structured_content, None);
    let text: Value = serde_json::from_str(&result.content[0].as_text().unwrap().text).unwrap();
    assert_eq!(text, json!("hello_world"));

    // The tool's own error: a result with isError, the message for the model.
    let result = client
        .call_tool(call(
            "text__json-query",
            json!({"document": "{\"a\": 1}", "path": "b"}),
        ))
        .await
        .unwrap();
    let error = error_json(&result);
    assert_eq!(error["code"], "tool-error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("no key \\\"b\\\"")
            || error["message"].as_str().unwrap().contains("no key \"b\""),
        "{error}"
    );
    assert!(result.structured_content.is_none());

    // Arguments that do not fit the schema: also a tool result, so the model can retry.
    let result = client
        .call_tool(call("text__word-count", json!({"txt": "x"})))
        .await
        .unwrap();
    assert_eq!(error_json(&result)["code"], "invalid-arguments");

    // A capability the plugin has no grant for: the denial, as a tool result.
    let result = client
        .call_tool(call("fetch__get", json!({"url": "https://example.com/"})))
        .await
        .unwrap();
    let error = error_json(&result);
    assert_eq!(error["code"], "denied", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("example.com"), "{message}");
    assert!(
        error["denials"].as_array().is_some_and(|d| !d.is_empty()),
        "{error}"
    );

    // An unknown tool: a protocol error (invalid params), not a tool result.
    for name in ["text__no-such-tool", "nope__word-count", "no-separator"] {
        let err = client
            .call_tool(call(name, json!({})))
            .await
            .expect_err("an unknown tool is a protocol error");
        match err {
            ServiceError::McpError(e) => {
                assert_eq!(e.code.0, -32602, "{e:?}");
                assert!(e.message.contains(name), "{}", e.message);
            }
            other => panic!("expected an MCP error, got {other:?}"),
        }
    }

    client.cancel().await.unwrap();

    // Every call is on the home's audit record, with the local principal.
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(home.path())
        .args(["audit", "query", "--kind", "tool.call", "--json"])
        .output()
        .unwrap();
    let records = String::from_utf8_lossy(&out.stdout);
    let calls: Vec<Value> = records
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(calls.len(), 5, "{records}");
    assert!(records.contains("\"local:"), "{records}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_serves_the_newest_protocol_revision_too() {
    let home = home();
    let client = connect(home.path(), ProtocolVersion::LATEST).await;
    let result = client
        .call_tool(call("text__word-count", json!({"text": "a b"})))
        .await
        .unwrap();
    assert_eq!(result.structured_content.unwrap()["words"], 2);
    client.cancel().await.unwrap();
}

/// Without pipes on both sides (here stdout is a file), `warden mcp` reads and writes
/// through the runtime's stdin and stdout, with the same line handling: a blank line
/// is skipped, JSON that is no message is answered `Invalid request`, a call is answered.
#[test]
fn stdio_serves_when_stdout_is_a_file() {
    use std::io::Write as _;
    let home = home();
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(home.path())
        .arg("mcp")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(out.reopen().unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let script = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "script", "version": "1"}}})
        .to_string(),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string(),
        String::new(),
        json!({"hello": "not a message"}).to_string(),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "text__word-count", "arguments": {"text": "One two. Three"}}})
        .to_string(),
    ];
    for line in script {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        // One at a time, as a client waits for `initialize`'s answer.
        std::thread::sleep(Duration::from_millis(100));
    }
    let answers = (0..100)
        .find_map(|_| {
            let text = std::fs::read_to_string(out.path()).unwrap();
            let answers: Vec<Value> = text
                .lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect();
            if answers.len() >= 3 {
                return Some(answers);
            }
            std::thread::sleep(Duration::from_millis(100));
            None
        })
        .expect("three answers within 10 s");
    drop(stdin);
    assert!(child.wait().unwrap().success());
    let by_id = |id: Value| answers.iter().find(|a| a["id"] == id).cloned();
    assert!(by_id(json!(1)).unwrap()["result"]["serverInfo"].is_object());
    assert_eq!(
        by_id(json!(2)).unwrap()["result"]["structuredContent"]["sentences"],
        2,
        "{answers:?}"
    );
    let invalid = answers.iter().find(|a| a.get("error").is_some());
    assert_eq!(invalid.unwrap()["error"]["code"], -32600, "{answers:?}");
}

fn load(runtime: &Runtime, name: &str, path: &str) -> Arc<Plugin> {
    let wasm = std::fs::read(path).unwrap();
    let source = PluginSource {
        name,
        wasm: &wasm,
        extra_docs: Default::default(),
        grant: None,
        signer: None,
    };
    Arc::new(runtime.load(source, None).unwrap())
}

/// A source whose plugins a test changes, as the registry does on hot reload.
#[derive(Default)]
struct Changing(Mutex<Vec<Arc<Plugin>>>);

impl ToolSource for Changing {
    fn plugins(&self) -> Vec<Arc<Plugin>> {
        self.0.lock().unwrap().clone()
    }
}

struct Counting(Arc<AtomicUsize>, Arc<tokio::sync::Notify>);

impl ClientHandler for Counting {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.0.fetch_add(1, Ordering::SeqCst);
        self.1.notify_one();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_changed_reaches_connected_clients() {
    let runtime = Arc::new(Runtime::new().unwrap());
    let source = Arc::new(Changing::default());
    source
        .0
        .lock()
        .unwrap()
        .push(load(&runtime, "text", guests::TEXT));
    let mcp = Mcp::new(runtime.clone(), source.clone());

    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    let server = mcp
        .handler(warden::Caller::local(warden::Via::McpStdio))
        .serve(server_io);
    let changes = Arc::new(AtomicUsize::new(0));
    let notify = Arc::new(tokio::sync::Notify::new());
    let client = Counting(changes.clone(), notify.clone()).serve(client_io);
    let (server, client) = tokio::join!(server, client);
    let (server, client) = (server.unwrap(), client.unwrap());
    for _ in 0..100 {
        if mcp.clients() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(mcp.clients(), 1);
    let before = client.list_all_tools().await.unwrap();
    assert!(before.iter().all(|t| t.name.starts_with("text__")));

    source
        .0
        .lock()
        .unwrap()
        .push(load(&runtime, "counter", guests::COUNTER));
    mcp.tools_changed();
    tokio::time::timeout(Duration::from_secs(10), notify.notified())
        .await
        .expect("notifications/tools/list_changed");
    assert_eq!(changes.load(Ordering::SeqCst), 1);
    let after = client.list_all_tools().await.unwrap();
    assert!(after.len() > before.len());
    assert!(after.iter().any(|t| t.name.starts_with("counter__")));

    client.cancel().await.unwrap();
    let _ = server.cancel().await;
}

/// Serves `mcp` on a free loopback port; `principal` and `authorizer` are what
/// authentication would put into each request (none: an endpoint mounted without
/// authentication).
async fn serve_http(mcp: &Mcp, principal: Option<&str>, authorizer: Option<Authorizer>) -> String {
    let mut router = mcp.http_router(HttpOptions::default());
    if let Some(p) = principal {
        let p = Principal(warden::Caller::new(
            warden::policy::Principal::new(p, Vec::new()),
            warden::Via::McpHttp,
        ));
        router = router.layer(axum::middleware::from_fn(
            move |mut req: axum::extract::Request, next: axum::middleware::Next| {
                req.extensions_mut().insert(p.clone());
                if let Some(a) = &authorizer {
                    req.extensions_mut().insert(a.clone());
                }
                next.run(req)
            },
        ));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/mcp")
}

/// The JSON-RPC message of a response that is either JSON or an SSE stream.
pub(crate) async fn message(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    if let Ok(value) = serde_json::from_str(&text) {
        return value;
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC response in {text:?}"))
}

pub(crate) fn post(http: &reqwest::Client, url: &str, body: Value) -> reqwest::RequestBuilder {
    http.post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamable_http_calls_tools_and_checks_origin_and_principal() {
    let runtime = Arc::new(Runtime::new().unwrap());
    let text = load(&runtime, "text", guests::TEXT);
    let mcp = Mcp::new(runtime, Arc::new(FixedTools::new(vec![text])));
    let not_json_query =
        Authorizer::new(|plugin, tool| !(plugin == "text" && tool == "json-query"));
    let url = serve_http(&mcp, Some("token:tester"), Some(not_json_query)).await;
    let http = reqwest::Client::new();
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"}
        }
    });

    let response = post(&http, &url, initialize.clone())
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let session = response
        .headers()
        .get("mcp-session-id")
        .expect("a session id")
        .to_str()
        .unwrap()
        .to_string();
    let init = message(response).await;
    assert_eq!(init["result"]["serverInfo"]["name"], "warden");

    let response = post(
        &http,
        &url,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .header("mcp-session-id", &session)
    .header("mcp-protocol-version", "2025-11-25")
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 202);

    let response = post(
        &http,
        &url,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "text__word-count", "arguments": {"text": "a b c"}}}),
    )
    .header("mcp-session-id", &session)
    .header("mcp-protocol-version", "2025-11-25")
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let result = message(response).await;
    assert_eq!(
        result["result"]["structuredContent"]["words"], 3,
        "{result}"
    );
    assert_eq!(result["result"]["isError"], false);

    // What the caller's roles do not allow is neither listed nor callable.
    let response = post(
        &http,
        &url,
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
    )
    .header("mcp-session-id", &session)
    .header("mcp-protocol-version", "2025-11-25")
    .send()
    .await
    .unwrap();
    let list = message(response).await;
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"text__word-count"), "{names:?}");
    assert!(!names.contains(&"text__json-query"), "{names:?}");
    let response = post(
        &http,
        &url,
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
               "params": {"name": "text__json-query", "arguments": {"document": "{}", "path": ""}}}),
    )
    .header("mcp-session-id", &session)
    .header("mcp-protocol-version", "2025-11-25")
    .send()
    .await
    .unwrap();
    // A tool the caller may not call is, for it, a tool that does not exist.
    let result = message(response).await;
    assert_eq!(result["error"]["code"], -32602, "{result}");
    assert_eq!(
        result["error"]["message"],
        "unknown tool \"text__json-query\" (tools/list names the tools; names are <plugin>__<tool>)"
    );

    // A browser page from another site: refused before MCP sees it.
    let response = post(&http, &url, initialize.clone())
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden-origin");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("https://evil.example")
    );

    // Mounted without authentication: nothing is served.
    let open = serve_http(&mcp, None, None).await;
    let response = post(&http, &open, initialize).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
}
