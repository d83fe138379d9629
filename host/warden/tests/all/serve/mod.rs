//! `warden serve` over HTTP: tokens and roles (401/403/200), tool calls and their
//! error statuses, uploads, hot reload, metrics, the OpenAPI document, body limits and
//! the audit records of HTTP calls. Each test serves its own home on 127.0.0.1:0.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use warden::config::home::{Config, hash_token};
use warden::home::{Home, InstalledMeta};
use warden::serve::{ServeOptions, Server};
use warden_tests::guests;

mod annotations;
pub(crate) mod commands;
mod connections;
mod fuzz;
mod gateway_and_mcp;
mod headers;
mod idle_poll;
mod inflight;
mod mcp_direct;
mod mcp_holds;
pub(crate) mod oauth;
mod refusals;
mod telemetry;
mod tool_pins;

pub(crate) const ADMIN: &str = "wdn_admin-test-token";
const READER: &str = "wdn_reader-test-token";
const AUDITOR: &str = "wdn_auditor-test-token";

fn config(extra: &str) -> Config {
    let text = format!(
        r#"
{extra}
[roles.reader]
tools = ["text/*", "hostile/*", "types/echo-string"]
actions = ["call-tool"]

[[tokens]]
name = "admin"
sha256 = "{}"
roles = ["admin"]
principal = "user:root"

[[tokens]]
name = "reader"
sha256 = "{}"
roles = ["reader"]

[[tokens]]
name = "auditor"
sha256 = "{}"
roles = ["auditor"]
"#,
        hash_token(ADMIN),
        hash_token(READER),
        hash_token(AUDITOR)
    );
    Config::parse(&text, "test config").unwrap()
}

pub(crate) fn install(home: &Home, name: &str, path: &str) {
    let wasm = std::fs::read(path).unwrap();
    let meta = InstalledMeta {
        name: name.into(),
        digest: warden::plugin::digest(&wasm),
        added_at: 0,
        source: path.into(),
        manifest: None,
        wit_docs: None,
        provenance: None,
    };
    home.install(&meta, &wasm).unwrap();
}

pub(crate) struct Test {
    _dir: tempfile::TempDir,
    home: Home,
    pub(crate) server: Server,
    pub(crate) url: String,
    http: reqwest::Client,
}

impl Test {
    pub(crate) async fn start(plugins: &[(&str, &str)], extra_config: &str) -> Self {
        Self::start_granted(plugins, &[], extra_config).await
    }

    /// Like [`Test::start`], with `grants` set on the installed plugins first.
    pub(crate) async fn start_granted(
        plugins: &[(&str, &str)],
        grants: &[(&str, warden::grant::Grant)],
        extra_config: &str,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        for (name, path) in plugins {
            install(&home, name, path);
        }
        for (name, grant) in grants {
            home.set_grant(name, grant).unwrap();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let options = ServeOptions {
            config: config(extra_config),
            ..ServeOptions::new(home.clone())
        };
        let server = Server::start(options, listener).await.unwrap();
        let url = format!("http://{}", server.addr());
        Self {
            _dir: dir,
            home,
            server,
            url,
            http: reqwest::Client::new(),
        }
    }

    pub(crate) fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.url));
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn call(&self, token: &str, tool: &str, args: Value) -> (StatusCode, Value) {
        let resp = self
            .req(
                reqwest::Method::POST,
                &format!("/v1/tools/{tool}"),
                Some(token),
            )
            .json(&args)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap())
    }

    /// Asserts that `/metrics`, read by the auditor, has each of `lines`.
    pub(crate) async fn assert_metrics(&self, lines: &[&str]) {
        let (status, text) = self.get(Some(AUDITOR), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        let text = text.as_str().unwrap();
        for line in lines {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }

    pub(crate) async fn get(&self, token: Option<&str>, path: &str) -> (StatusCode, Value) {
        let resp = self
            .req(reqwest::Method::GET, path, token)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn tools(&self) -> Vec<String> {
        let (_, body) = self.get(Some(ADMIN), "/v1/tools").await;
        body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect()
    }
}

#[track_caller]
fn error_code(body: &Value) -> &str {
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"));
    assert!(body["error"]["message"].is_string(), "{body}");
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_roles_decide_401_403_200_and_audit_the_principal() {
    let t = Test::start(&[("text", guests::TEXT), ("files", guests::FILES)], "").await;
    let args = json!({"text": "one two three"});

    let resp = t
        .req(reqwest::Method::POST, "/v1/tools/text/word-count", None)
        .json(&args)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "unauthenticated");

    let (status, body) = t
        .call("wdn_not-a-token", "text/word-count", args.clone())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown token"),
        "{body}"
    );

    // A plugin the reader may not call is, for it, a plugin that is not served (the
    // refusal is on record below).
    let (status, body) = t.call(READER, "files/list", json!({"path": "/"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(error_code(&body), "unknown-plugin");
    let (_, missing) = t.call(READER, "nope/list", json!({"path": "/"})).await;
    assert_eq!(
        body.to_string().replace("files", "nope"),
        missing.to_string()
    );

    let (status, body) = t.call(READER, "text/word-count", args.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["words"], 3, "{body}");

    // The reader sees only the tools it may call; it may not read the audit log.
    let (_, tools) = t.get(Some(READER), "/v1/tools").await;
    let ids: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"text/word-count") && !ids.iter().any(|i| i.starts_with("files/")),
        "{ids:?}"
    );
    let (status, _) = t.get(Some(READER), "/v1/audit").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = t.get(Some(READER), "/v1/plugins/files").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = t.get(Some(AUDITOR), "/v1/audit?kind=access.denied").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let denied = body["records"].as_array().unwrap();
    let principals: Vec<&str> = denied
        .iter()
        .map(|r| r["principal"].as_str().unwrap())
        .collect();
    assert_eq!(
        principals.iter().filter(|p| **p == "anonymous").count(),
        2,
        "{principals:?}"
    );
    assert!(principals.contains(&"token:reader"), "{principals:?}");
    let call_denial = denied.iter().find(|r| r["tool"] == "list").unwrap();
    assert_eq!(call_denial["plugin"], "files");
    assert_eq!(call_denial["fields"]["action"], "call-tool");

    let (_, body) = t
        .get(Some(AUDITOR), "/v1/audit?kind=tool.call&plugin=text")
        .await;
    let calls = body["records"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{body}");
    assert_eq!(calls[0]["principal"], "token:reader");
    assert_eq!(calls[0]["outcome"], "ok");

    let (status, body) = t.get(Some(AUDITOR), "/v1/audit/verify").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ok"], true, "{body}");
    assert!(body["count"].as_u64().unwrap() >= 5, "{body}");
    let (status, body) = t.get(Some(AUDITOR), "/v1/audit?outcome=maybe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "bad-request");
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_calls_answer_with_their_status_and_json_error() {
    let t = Test::start(
        &[
            ("hostile", guests::HOSTILE),
            ("types", guests::TYPES),
            ("text", guests::TEXT),
        ],
        "",
    )
    .await;
    let cases = [
        (
            "nope/tool",
            json!({}),
            StatusCode::NOT_FOUND,
            "unknown-plugin",
        ),
        (
            "text/nope",
            json!({}),
            StatusCode::NOT_FOUND,
            "unknown-tool",
        ),
        (
            "text/word-count",
            json!({"text": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-arguments",
        ),
        (
            "hostile/read-file",
            json!({"path": "/etc/passwd"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "tool-error",
        ),
        (
            "hostile/panic",
            json!({"msg": "boom"}),
            StatusCode::INTERNAL_SERVER_ERROR,
            "trap",
        ),
    ];
    for (tool, args, status, code) in cases {
        let (got, body) = t.call(ADMIN, tool, args).await;
        assert_eq!(got, status, "{tool}: {body}");
        assert_eq!(error_code(&body), code, "{tool}: {body}");
    }
    let (_, body) = t
        .call(ADMIN, "hostile/read-file", json!({"path": "/etc/passwd"}))
        .await;
    assert!(
        body["error"]["error"]
            .as_str()
            .unwrap()
            .contains("/etc/passwd"),
        "{body}"
    );
    let (status, body) = t.call(ADMIN, "types/echo-string", json!({"v": "hi"})).await;
    assert_eq!(
        (status, &body["result"]),
        (StatusCode::OK, &json!("hi")),
        "{body}"
    );

    let resp = t
        .req(
            reqwest::Method::POST,
            "/v1/tools/text/word-count",
            Some(ADMIN),
        )
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&resp.json().await.unwrap()), "bad-request");
    let (status, body) = t.get(Some(ADMIN), "/v1/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "no-route");
    let resp = t
        .req(reqwest::Method::DELETE, "/v1/tools", Some(ADMIN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        error_code(&resp.json().await.unwrap()),
        "method-not-allowed"
    );
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_call_replace_grant_and_delete() {
    let t = Test::start(&[], "").await;
    let text = std::fs::read(guests::TEXT).unwrap();
    let put = |body: reqwest::Body| {
        t.req(reqwest::Method::PUT, "/v1/plugins/up", Some(ADMIN))
            .header("content-type", "application/wasm")
            .body(body)
    };
    let resp = put(text.clone().into()).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["name"], "up");
    let (status, body) = t.call(ADMIN, "up/word-count", json!({"text": "a b"})).await;
    assert_eq!(
        (status, &body["result"]["words"]),
        (StatusCode::OK, &json!(2))
    );

    // A broken upload is refused and the old version keeps serving.
    let resp = put(b"\0asm garbage".to_vec().into()).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&resp.json().await.unwrap()), "invalid-plugin");
    let (status, _) = t.call(ADMIN, "up/word-count", json!({"text": "a b"})).await;
    assert_eq!(status, StatusCode::OK);

    // Replace with another component and a grant, as a form.
    let form = reqwest::multipart::Form::new()
        .part(
            "component",
            reqwest::multipart::Part::bytes(std::fs::read(guests::COUNTER).unwrap()),
        )
        .text("grant", "[limits]\ntimeout_ms = 2000\n");
    let resp = t
        .req(reqwest::Method::PUT, "/v1/plugins/up", Some(ADMIN))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["limits"]["timeout_ms"], 2000, "{doc}");
    assert_eq!(t.tools().await, ["up/bump"]);
    let (status, body) = t.call(ADMIN, "up/bump", json!({})).await;
    assert_eq!((status, &body["result"]), (StatusCode::OK, &json!(1)));

    // Grants: set, refuse an invalid one, and who may.
    let grant = |token, body: &'static str| {
        t.req(reqwest::Method::PUT, "/v1/plugins/up/grant", Some(token))
            .header("content-type", "application/toml")
            .body(body)
            .send()
    };
    let resp = grant(ADMIN, "[limits]\nfuel = 1000000\n").await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, doc) = t.get(Some(ADMIN), "/v1/plugins/up").await;
    assert_eq!(doc["limits"]["fuel"], 1_000_000, "{doc}");
    let resp = grant(ADMIN, "[limits]\nfuell = 1\n").await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "invalid-grant");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("fuell"),
        "{body}"
    );
    assert_eq!(
        grant(READER, "").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let resp = t
        .req(reqwest::Method::PUT, "/v1/plugins/up", Some(READER))
        .header("content-type", "application/wasm")
        .body(text.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    let (status, body) = t.get(Some(ADMIN), "/v1/plugins").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["plugins"][0]["tools"], json!(["up/bump"]));

    let resp = t
        .req(reqwest::Method::DELETE, "/v1/plugins/up", Some(ADMIN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, body) = t.call(ADMIN, "up/bump", json!({})).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "unknown-plugin")
    );
    let resp = t
        .req(reqwest::Method::DELETE, "/v1/plugins/up", Some(ADMIN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Every change is on record, on behalf of the token's principal.
    let (_, body) = t
        .get(Some(ADMIN), "/v1/audit?plugin=up&principal=user:root")
        .await;
    let kinds: Vec<(String, String)> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().into(),
                r["outcome"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    for expected in [
        ("plugin.add", "ok"),
        ("plugin.replace", "error"),
        ("plugin.replace", "ok"),
        ("grant.set", "ok"),
        ("plugin.remove", "ok"),
        ("plugin.unload", "ok"),
    ] {
        assert!(
            kinds.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} not in {kinds:?}"
        );
    }
    t.server.shutdown().await;
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn component_path(home: &Home, name: &str) -> std::path::PathBuf {
    home.root()
        .join("plugins")
        .join(name)
        .join("component.wasm")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_serves_a_replaced_file_and_keeps_the_old_version_when_broken() {
    let t = Test::start(&[("p", guests::TEXT)], "").await;
    assert!(t.tools().await.contains(&"p/word-count".to_string()));

    std::fs::copy(guests::COUNTER, component_path(&t.home, "p")).unwrap();
    wait_for("the new version", async || t.tools().await == ["p/bump"]).await;
    let (status, _) = t.call(ADMIN, "p/bump", json!({})).await;
    assert_eq!(status, StatusCode::OK);

    std::fs::write(component_path(&t.home, "p"), b"not wasm at all").unwrap();
    wait_for("the refusal on record", async || {
        let (_, body) = t
            .get(Some(ADMIN), "/v1/audit?kind=plugin.load&outcome=error")
            .await;
        !body["records"].as_array().unwrap().is_empty()
    })
    .await;
    assert_eq!(t.tools().await, ["p/bump"]);
    let (status, _) = t.call(ADMIN, "p/bump", json!({})).await;
    assert_eq!(status, StatusCode::OK);

    // A plugin added by another process (as `warden plugin add` does) is served; one
    // removed is not.
    install(&t.home, "text", guests::TEXT);
    wait_for("the added plugin", async || {
        t.tools().await.contains(&"text/word-count".to_string())
    })
    .await;
    t.home.remove("text").unwrap();
    wait_for("the removed plugin", async || {
        !t.tools().await.iter().any(|id| id.starts_with("text/"))
    })
    .await;

    let (_, body) = t
        .get(Some(ADMIN), "/v1/audit?kind=plugin.load&plugin=p")
        .await;
    let loads = body["records"].as_array().unwrap();
    let refused = loads.iter().find(|r| r["outcome"] == "error").unwrap();
    assert_eq!(refused["principal"], "system:watch");
    assert!(
        refused["fields"]["serving"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{refused}"
    );
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_openapi_and_limits() {
    let t = Test::start(
        &[("text", guests::TEXT)],
        "[server]\nmax_body_kb = 1\nmax_upload_mb = 1\n",
    )
    .await;
    let (status, _) = t.call(ADMIN, "text/word-count", json!({"text": "a"})).await;
    assert_eq!(status, StatusCode::OK);
    let _ = t.call(ADMIN, "text/word-count", json!({"text": 1})).await;
    let _ = t.call(READER, "text/nope", json!({})).await;

    t.assert_metrics(&[
        r#"warden_tool_calls_total{plugin="text",tool="word-count",outcome="ok"} 1"#,
        r#"warden_tool_calls_total{plugin="text",tool="word-count",outcome="error"} 1"#,
        r#"warden_tool_errors_total{plugin="text",tool="word-count",code="invalid-arguments"} 1"#,
        r#"warden_tool_call_duration_seconds_count{plugin="text",tool="word-count"} 2"#,
        "warden_instances_live 0",
        "warden_plugins_loaded 1",
        r#"warden_http_requests_total{method="POST",route="/v1/tools/{plugin}/{tool}",status="200"} 1"#,
    ])
    .await;
    let (status, _) = t.get(Some(READER), "/metrics").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // 413 past max_body_kb (1 KiB here) and past max_upload_mb.
    let big = json!({"text": "x".repeat(4096)});
    let (status, body) = t.call(ADMIN, "text/word-count", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(error_code(&body), "too-large");
    // An upload declared larger than max_upload_mb is refused before its body is read.
    let mut conn = tokio::net::TcpStream::connect(t.server.addr())
        .await
        .unwrap();
    let head = format!(
        "PUT /v1/plugins/big HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ADMIN}\r\ncontent-type: application/wasm\r\ncontent-length: {}\r\n\r\n",
        2 << 20
    );
    tokio::io::AsyncWriteExt::write_all(&mut conn, head.as_bytes())
        .await
        .unwrap();
    let mut answer = vec![0; 1024];
    let n = tokio::io::AsyncReadExt::read(&mut conn, &mut answer)
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("too-large"), "{answer}");

    // The OpenAPI document and the routes match, both ways.
    let (status, doc) = t.get(None, "/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in warden::serve::api::ROUTES {
        assert!(
            paths.get(*path).and_then(|p| p.get(*method)).is_some(),
            "{method} {path} is not in openapi.json"
        );
        let concrete = path
            .replace("{name}", "text")
            .replace("{plugin}", "text")
            .replace("{tool}", "word-count");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let resp = t
            .req(method.clone(), &concrete, Some(AUDITOR))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let code = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_string));
        assert!(
            status != StatusCode::METHOD_NOT_ALLOWED && code.as_deref() != Some("no-route"),
            "{method} {concrete}: {status} {text}"
        );
    }
    for (path, item) in paths {
        for method in item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "parameters")
        {
            assert!(
                warden::serve::api::ROUTES.contains(&(method.as_str(), path.as_str())),
                "openapi.json has {method} {path}, the server does not"
            );
        }
    }
    let (status, body) = t.get(None, "/healthz").await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("ok")));
    t.server.shutdown().await;
}
