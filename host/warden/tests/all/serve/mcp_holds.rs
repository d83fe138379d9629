//! A call the policy holds for a person, over MCP 2026-07-28: the client is asked for
//! input (`input_required`, a URL-mode elicitation of the approval's page, the hold as
//! `requestState`), retries while it waits, and gets the tool's result once another
//! person approves it, or the approver's reason once one rejects it. A `requestState`
//! that is not this caller's hold of this call is refused; a client that cannot be
//! sent to a URL gets the refusal it got before. Each hold is on the record.

use reqwest::StatusCode;
use serde_json::{Value, json};
use warden::config::home::{Config, hash_token};
use warden::home::Home;
use warden::serve::{ServeOptions, Server};
use warden_tests::guests;

use crate::policy::http::POLICY;

pub(super) const ALICE: &str = "wdn_holds-alice";
const BOB: &str = "wdn_holds-bob";
const TOOL: &str = "types__echo-u32";

pub(super) struct Held {
    _dir: tempfile::TempDir,
    pub(super) server: Server,
    pub(super) url: String,
    pub(super) http: reqwest::Client,
}

impl Held {
    pub(super) async fn start() -> Self {
        Self::start_with(None).await
    }

    /// With `grant` set on `types`.
    async fn start_with(grant: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        super::install(&home, "types", guests::TYPES);
        if let Some(grant) = grant {
            home.set_grant(
                "types",
                &warden::grant::Grant::parse(grant, "types").unwrap(),
            )
            .unwrap();
        }
        std::fs::write(dir.path().join("policy.cedar"), POLICY).unwrap();
        let text = format!(
            r#"
[policy.args]
v = "Long"

[[tokens]]
name = "alice"
sha256 = "{}"
roles = ["admin"]
principal = "user:alice"

[[tokens]]
name = "bob"
sha256 = "{}"
roles = ["admin"]
principal = "user:bob"
"#,
            hash_token(ALICE),
            hash_token(BOB)
        );
        let options = ServeOptions {
            config: Config::parse(&text, "test config").unwrap(),
            ..ServeOptions::new(home)
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server::start(options, listener).await.unwrap();
        let url = format!("http://{}", server.addr());
        Self {
            _dir: dir,
            server,
            url,
            http: reqwest::Client::new(),
        }
    }

    /// `tools/call` at 2026-07-28 as `token`, with `capabilities`; the JSON-RPC
    /// response.
    async fn call(&self, token: &str, params: Value, capabilities: Value) -> Value {
        self.rpc(token, "tools/call", Some(TOOL), params, capabilities)
            .await
    }

    /// A 2026-07-28 request `method` as `token`, with `capabilities`; the JSON-RPC
    /// response.
    async fn rpc(
        &self,
        token: &str,
        method: &str,
        name: Option<&str>,
        params: Value,
        capabilities: Value,
    ) -> Value {
        let mut params = params;
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": capabilities,
            "io.modelcontextprotocol/clientInfo": {"name": "holds-test", "version": "1"},
        });
        let mut request = self
            .http
            .post(format!("{}/mcp", self.url))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method);
        if let Some(name) = name {
            request = request.header("mcp-name", name);
        }
        let resp = request
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .send()
            .await
            .unwrap();
        if resp.status() != StatusCode::OK {
            panic!("{method}: {} {}", resp.status(), resp.text().await.unwrap());
        }
        // Each answer here is one message, held or not, so one JSON body rather than
        // an event stream of one message.
        assert_eq!(
            resp.headers()["content-type"],
            "application/json",
            "{method}"
        );
        resp.json().await.unwrap()
    }

    pub(super) async fn records(&self, query: &str) -> Vec<Value> {
        let body: Value = self
            .http
            .get(format!("{}/v1/audit?limit=1000&{query}", self.url))
            .bearer_auth(BOB)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["records"].as_array().cloned().unwrap_or_default()
    }

    async fn decide(&self, token: &str, id: &str, verdict: &str, body: Value) -> StatusCode {
        self.http
            .post(format!("{}/v1/approvals/{id}/{verdict}", self.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
    }
}

fn url_elicitation() -> Value {
    json!({"elicitation": {"url": {}}})
}

fn echo(v: u32) -> Value {
    json!({"name": TOOL, "arguments": {"v": v}})
}

/// The hold asked for in an `input_required` result: its id and URL.
#[track_caller]
fn asked(response: &Value) -> (String, String) {
    let result = &response["result"];
    assert_eq!(result["resultType"], "input_required", "{response}");
    let request = &result["inputRequests"]["approval"];
    assert_eq!(request["method"], "elicitation/create", "{response}");
    assert_eq!(request["params"]["mode"], "url", "{response}");
    let id = result["requestState"].as_str().unwrap().to_string();
    assert!(id.starts_with("apr_"), "{response}");
    let url = request["params"]["url"].as_str().unwrap().to_string();
    assert!(url.ends_with(&format!("/console/approvals#{id}")), "{url}");
    (id, url)
}

fn retry(v: u32, state: &str) -> Value {
    json!({"name": TOOL, "arguments": {"v": v}, "requestState": state})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_call_asks_for_input_and_completes_once_another_person_approves() {
    let t = Held::start().await;

    // Below the threshold: no hold.
    let small = t.call(ALICE, echo(7), url_elicitation()).await;
    assert_eq!(small["result"]["isError"], false, "{small}");

    let first = t.call(ALICE, echo(500), url_elicitation()).await;
    let (id, page_url) = asked(&first);
    assert!(page_url.starts_with(&t.url), "{page_url}");
    let url = format!("{}/v1/approvals/{id}", t.url);
    // Still waiting: asked again, for the same hold.
    let again = t.call(ALICE, retry(500, &id), url_elicitation()).await;
    assert_eq!(asked(&again).0, id);

    // The approver reads the hold the client was sent to (the console's inbox shows
    // it; here its JSON).
    let page: Value = t
        .http
        .get(&url)
        .bearer_auth(BOB)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["approval"]["tool"], "types/echo-u32", "{page}");
    assert_eq!(page["approval"]["status"], "pending", "{page}");
    assert_eq!(page["approval"]["principal"], "user:alice", "{page}");
    // Four eyes: the caller does not approve its own hold.
    assert_eq!(
        t.decide(ALICE, &id, "approve", json!({})).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        t.decide(BOB, &id, "approve", json!({})).await,
        StatusCode::OK
    );

    // Another caller's retry, or other arguments, do not take the hold.
    let stolen = t.call(BOB, retry(500, &id), url_elicitation()).await;
    assert!(stolen["error"]["message"].is_string(), "{stolen}");
    let changed = t.call(ALICE, retry(501, &id), url_elicitation()).await;
    assert!(
        changed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("arguments differ"),
        "{changed}"
    );
    let forged = t
        .call(ALICE, retry(500, "apr_0000000000000000"), url_elicitation())
        .await;
    assert!(forged["error"]["message"].is_string(), "{forged}");

    let done = t.call(ALICE, retry(500, &id), url_elicitation()).await;
    assert_eq!(done["result"]["isError"], false, "{done}");
    assert_eq!(done["result"]["structuredContent"], json!(500), "{done}");

    // On the record: the hold, then the call, approved by bob.
    let audit = t.records("kind=call.held").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["principal"], "user:alice");
    assert_eq!(audit[0]["fields"]["approval"], json!(id), "{audit:?}");
    let calls = t.records("kind=tool.call&tool=echo-u32").await;
    let last = calls.last().unwrap();
    assert!(last.to_string().contains("user:bob"), "{last}");
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_hold_answers_with_the_reason_and_a_client_without_urls_is_refused() {
    let t = Held::start().await;
    let (id, _) = asked(&t.call(ALICE, echo(900), url_elicitation()).await);
    let reason = json!({"reason": "nine hundred is too many"});
    assert_eq!(t.decide(BOB, &id, "reject", reason).await, StatusCode::OK);
    let done = t.call(ALICE, retry(900, &id), url_elicitation()).await;
    assert_eq!(done["result"]["isError"], true, "{done}");
    let text = done["result"]["content"][0]["text"].as_str().unwrap();
    let error: Value = serde_json::from_str(text).unwrap();
    assert_eq!(error["code"], "rejected", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("nine hundred is too many"),
        "{error}"
    );

    // A client that declared no URL elicitation: refused, as before, nothing held.
    let plain = t.call(ALICE, echo(900), json!({})).await;
    assert_eq!(plain["result"]["isError"], true, "{plain}");
    let text = plain["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("approval-required"), "{text}");
    let queue: Value = t
        .http
        .get(format!("{}/v1/approvals", t.url))
        .bearer_auth(BOB)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(queue["approvals"], json!([]), "{queue}");
    t.server.shutdown().await;
}

/// The official MCP Python SDK as the client, at both revisions: its elicitation
/// callback is the person who opens the URL, where another person approves the hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_completes_a_held_call_at_both_revisions() {
    let Some(python) = crate::mcp_python::python_with_mcp() else {
        return;
    };
    let t = Held::start().await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/all/fixtures/mcp_held_call.py");
    let url = format!("{}/mcp", t.url);
    for (mode, version) in [("legacy", "2025-11-25"), ("auto", "2026-07-28")] {
        let out = tokio::process::Command::new(&python)
            .arg(&script)
            .args([mode, &url, ALICE, BOB])
            .env_remove("RUST_LOG")
            .output()
            .await
            .expect("running the MCP Python client");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{mode}:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(&format!("protocol: {version}")), "{stdout}");
        assert!(stdout.contains("ok: its result"), "{stdout}");
    }
    assert_eq!(t.records("kind=call.held").await.len(), 2);
    t.server.shutdown().await;
}

fn tasks_and_urls() -> Value {
    json!({"elicitation": {"url": {}}, "extensions": {"io.modelcontextprotocol/tasks": {}}})
}

/// `tasks/get` until the task leaves `working`; its last state.
async fn settled(t: &Held, token: &str, id: &str) -> Value {
    for _ in 0..200 {
        let got = t
            .rpc(
                token,
                "tasks/get",
                Some(id),
                json!({"taskId": id}),
                tasks_and_urls(),
            )
            .await;
        if got["result"]["status"] != "working" {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("task {id} still working");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_call_runs_as_a_task_and_a_held_one_asks_through_it() {
    let t = Held::start_with(Some("[limits]\ntimeout_ms = 30000\n")).await;

    // A client of the tasks extension gets a task for the long tool, and its result.
    let created = t.call(ALICE, echo(7), tasks_and_urls()).await;
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    let id = created["result"]["taskId"].as_str().unwrap().to_string();
    let done = settled(&t, ALICE, &id).await;
    assert_eq!(done["result"]["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["result"]["structuredContent"],
        json!(7),
        "{done}"
    );
    // Another principal's task does not exist for it.
    let other = t
        .rpc(
            BOB,
            "tasks/get",
            Some(&id),
            json!({"taskId": id}),
            tasks_and_urls(),
        )
        .await;
    assert!(other["error"]["message"].is_string(), "{other}");
    // A client without the extension waits on its request, as before.
    let plain = t.call(ALICE, echo(8), url_elicitation()).await;
    assert_eq!(plain["result"]["structuredContent"], json!(8), "{plain}");

    // Held in its task: input_required with the hold's page, answered by tasks/update.
    let created = t.call(ALICE, echo(600), tasks_and_urls()).await;
    let id = created["result"]["taskId"].as_str().unwrap().to_string();
    let asking = settled(&t, ALICE, &id).await;
    assert_eq!(asking["result"]["status"], "input_required", "{asking}");
    let request = &asking["result"]["inputRequests"]["approval"];
    assert_eq!(request["params"]["mode"], "url", "{asking}");
    let hold = request["params"]["url"]
        .as_str()
        .unwrap()
        .rsplit('#')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        t.decide(BOB, &hold, "approve", json!({})).await,
        StatusCode::OK
    );
    let answered = t
        .rpc(
            ALICE,
            "tasks/update",
            Some(&id),
            json!({"taskId": id, "inputResponses": {"approval": {"action": "accept"}}}),
            tasks_and_urls(),
        )
        .await;
    assert!(answered["result"].is_object(), "{answered}");
    let done = settled(&t, ALICE, &id).await;
    assert_eq!(done["result"]["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["result"]["structuredContent"],
        json!(600),
        "{done}"
    );
    t.server.shutdown().await;
}
