//! Agent runs over HTTP under `warden serve`, with a Cedar policy that holds
//! `tally/bump` of the key `big` for a person: a run started and parked, the queue,
//! an approval by a second admin and a rejection by the starter (the run continues in
//! the server's background), a run started before the server (as a crashed process
//! would leave it) picked up at start, and the errors (no token, unknown agent, a
//! decided approval).

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use warden::config::home::{Config, hash_token};
use warden::grant::{Access, Grant, MemoryGrant, ToolsGrant};
use warden::home::{Home, InstalledMeta};
use warden::runs::store::RunStore;
use warden::runs::{HomePlugins, Runner};
use warden::serve::{ServeOptions, Server};
use warden_tests::guests;

pub(crate) const ADMIN: &str = "wdn_runs-admin";

/// A second admin, `token:reviewer`: approves what [`ADMIN`] started (by default the
/// starter of a run may not approve its own holds).
const REVIEWER: &str = "wdn_runs-reviewer";

const POLICY: &str = r#"
@id("big-bump")
@approval("required")
permit(principal, action == Warden::Action::"call-tool", resource == Warden::Tool::"tally/bump")
when { context.args has key && context.args.key == "big" };
"#;

/// A home with `scripted` (granted `tally/*`), `tally` (its namespace) and [`POLICY`].
pub(crate) fn home(dir: &std::path::Path) -> Home {
    let home = Home::at(dir);
    for (name, path) in [("scripted", guests::SCRIPTED), ("tally", guests::TALLY)] {
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
    let agent = Grant {
        tools: Some(ToolsGrant {
            allow: vec!["tally/*".into()],
        }),
        ..Grant::default()
    };
    home.set_grant("scripted", &agent).unwrap();
    let tally = Grant {
        memory: [("tally".to_string(), MemoryGrant::new(Access::ReadWrite))].into(),
        ..Grant::default()
    };
    home.set_grant("tally", &tally).unwrap();
    std::fs::write(dir.join("policy.cedar"), POLICY).unwrap();
    home
}

fn config() -> Config {
    let text = format!(
        "[policy.args]\nkey = \"String\"\n\n[[tokens]]\nname = \"admin\"\nsha256 = \"{}\"\nroles = [\"admin\"]\n\n[[tokens]]\nname = \"reviewer\"\nsha256 = \"{}\"\nroles = [\"admin\"]\n",
        hash_token(ADMIN),
        hash_token(REVIEWER)
    );
    Config::parse(&text, "test config").unwrap()
}

pub(crate) struct Client {
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
}

impl Client {
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.send_as(ADMIN, method, path, body).await
    }

    /// [`Client::send`] with another token.
    pub(crate) async fn send_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.url);
        let mut request = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url),
        }
        .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        (
            response.status(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    /// The run once its status is `status` (the server drives it in the background).
    pub(crate) async fn run_when(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (code, body) = self.send("GET", &format!("/v1/runs/{id}"), None).await;
            assert_eq!(code, StatusCode::OK, "{body}");
            if body["run"]["status"] == status {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "run {id} never became {status}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub(crate) fn bump_big() -> Value {
    json!({ "script": [
        { "call": [{ "id": "a", "tool": "tally/bump", "arguments": { "key": "big" } }] },
        { "finish": "done" },
    ] })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_park_for_approval_and_continue_in_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(dir.path());
    // A run recorded before the server starts, never driven: what a crashed process
    // leaves behind. The server picks it up at start.
    let early = {
        let runtime = Arc::new(warden::Runtime::new().unwrap());
        let plugins = Arc::new(HomePlugins::new(home.clone(), runtime.clone()).unwrap());
        let store = Arc::new(RunStore::open(&dir.path().join("runs.db")).unwrap());
        let runner = Runner::new(runtime, plugins, store);
        let task = json!({ "script": [{ "call": [{ "id": "e", "tool": "tally/bump", "arguments": { "key": "early" } }] }, { "finish": 1 }] });
        runner
            .start(
                "scripted",
                task,
                &warden::Caller::new(super::operator(), warden::Via::Library),
            )
            .await
            .unwrap()
            .id
    };
    let options = ServeOptions {
        config: config(),
        watch: false,
        ..ServeOptions::new(home)
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::start(options, listener).await.unwrap();
    let c = Client {
        url: format!("http://{}", server.addr()),
        http: reqwest::Client::new(),
    };
    let early = c.run_when(&early, "finished").await;
    assert_eq!(early["steps"].as_array().unwrap().len(), 2);

    // Started and driven before the answer: it parks on the held call.
    let (status, body) = c
        .send(
            "POST",
            "/v1/runs",
            Some(json!({ "agent": "scripted", "task": bump_big(), "wait": true })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["run"]["status"], "awaiting-approval");
    assert_eq!(body["run"]["principal"], "token:admin");
    let run = body["run"]["id"].as_str().unwrap().to_string();
    let (_, queue) = c.send("GET", "/v1/approvals", None).await;
    let approvals = queue["approvals"].as_array().unwrap();
    assert_eq!(approvals.len(), 1, "{queue}");
    assert_eq!(
        approvals[0]["policies"],
        json!(["big-bump", "role:admin:call-tool"])
    );
    assert_eq!(approvals[0]["arguments"], json!({ "key": "big" }));
    let id = approvals[0]["id"].as_str().unwrap();
    let (status, body) = c
        .send_as(
            REVIEWER,
            "POST",
            &format!("/v1/approvals/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["approval"]["decided_by"], "token:reviewer");
    let done = c.run_when(&run, "finished").await;
    assert_eq!(
        done["run"]["result"]["observations"],
        json!([{ "tools": { "a": 1 } }])
    );
    // Deciding again is a conflict.
    let (status, body) = c
        .send("POST", &format!("/v1/approvals/{id}/approve"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Started in the background; rejected (its starter may reject its own hold); the
    // agent sees the reason.
    let (status, body) = c
        .send(
            "POST",
            "/v1/runs",
            Some(json!({ "agent": "scripted", "task": bump_big() })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let run = body["run"]["id"].as_str().unwrap().to_string();
    c.run_when(&run, "awaiting-approval").await;
    let (_, queue) = c.send("GET", "/v1/approvals", None).await;
    let id = queue["approvals"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = c
        .send(
            "POST",
            &format!("/v1/approvals/{id}/reject"),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a rejection needs a reason: {body}"
    );
    let (status, _) = c
        .send(
            "POST",
            &format!("/v1/approvals/{id}/reject"),
            Some(json!({ "reason": "no" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let done = c.run_when(&run, "finished").await;
    assert_eq!(
        done["run"]["result"]["observations"],
        json!([{ "tools": { "a": { "denied": "a person rejected the call (token:admin): no" } } }])
    );

    // Errors.
    let (status, body) = c
        .send(
            "POST",
            "/v1/runs",
            Some(json!({ "agent": "nope", "task": null })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = c.send("GET", "/v1/runs/run_0000", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let anonymous = c
        .http
        .post(format!("{}/v1/runs", c.url))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = c.send("GET", "/v1/runs?status=finished", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["runs"].as_array().unwrap().len(), 3, "{body}");
    server.shutdown().await;
}
