//! The policy on the HTTP API: a policy file beside the roles, a call allowed, one that
//! needs approval and one forbidden (403 naming action, resource and reason), and the
//! ids of the deciding policies on the audit records of each.

use reqwest::StatusCode;
use serde_json::{Value, json};
use warden::config::home::{Config, hash_token};
use warden::home::{Home, InstalledMeta};
use warden::serve::{ServeOptions, Server};
use warden_tests::guests;

pub(super) const ADMIN: &str = "wdn_policy-admin";
const READER: &str = "wdn_policy-reader";

pub(crate) const POLICY: &str = r#"// Echoing more than 100 needs a person; 13 never.
@id("big-echo")
@approval("required")
permit(principal, action == Warden::Action::"call-tool", resource == Warden::Tool::"types/echo-u32")
when { context.args has v && context.args.v > 100 };

@id("no-thirteen")
forbid(principal, action == Warden::Action::"call-tool", resource in Warden::Plugin::"types")
when { context.args has v && context.args.v == 13 };
"#;

pub(super) struct Served {
    dir: tempfile::TempDir,
    pub(super) server: Server,
    pub(super) url: String,
    pub(super) http: reqwest::Client,
}

impl Served {
    pub(super) async fn start() -> Self {
        Self::start_with(false, POLICY, None).await
    }

    async fn start_with(watch: bool, policy: &str, manifest: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let wasm = std::fs::read(guests::TYPES).unwrap();
        let meta = InstalledMeta {
            name: "types".into(),
            digest: warden::plugin::digest(&wasm),
            added_at: 0,
            source: guests::TYPES.into(),
            manifest: manifest.map(|m| warden::manifest::Manifest::parse(m).unwrap()),
            wit_docs: None,
            provenance: None,
        };
        home.install(&meta, &wasm).unwrap();
        std::fs::write(dir.path().join("policy.cedar"), policy).unwrap();
        let text = format!(
            r#"
[policy.args]
v = "Long"

[roles.reader]
tools = ["types/echo-string"]
actions = ["call-tool"]

[[tokens]]
name = "admin"
sha256 = "{}"
roles = ["admin"]

[[tokens]]
name = "reader"
sha256 = "{}"
roles = ["reader"]
"#,
            hash_token(ADMIN),
            hash_token(READER)
        );
        let options = ServeOptions {
            config: Config::parse(&text, "test config").unwrap(),
            watch,
            ..ServeOptions::new(home)
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server::start(options, listener).await.unwrap();
        let url = format!("http://{}", server.addr());
        Self {
            dir,
            server,
            url,
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, token: &str, tool: &str, args: Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}/v1/tools/{tool}", self.url))
            .bearer_auth(token)
            .json(&args)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap())
    }

    pub(super) async fn records(&self, kind: &str) -> Vec<Value> {
        let resp = self
            .http
            .get(format!("{}/v1/audit?kind={kind}", self.url))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        body["records"].as_array().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_answer_403_and_go_on_the_audit_record_with_their_policies() {
    let t = Served::start().await;

    let (status, body) = t.call(ADMIN, "types/echo-u32", json!({"v": 5})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], 5);

    let (status, body) = t.call(ADMIN, "types/echo-u32", json!({"v": 150})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "approval-required", "{body}");
    assert_eq!(
        body["error"]["policies"],
        json!(["big-echo", "role:admin:call-tool"])
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("only once a person approves"), "{message}");

    let (status, body) = t.call(ADMIN, "types/echo-u32", json!({"v": 13})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    assert_eq!(body["error"]["policies"], json!(["no-thirteen"]));
    assert_eq!(body["error"]["action"], "call-tool");
    assert_eq!(body["error"]["resource"], "tool types/echo-u32");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("may not call-tool tool types/echo-u32: token:admin to call-tool tool types/echo-u32 is forbidden by no-thirteen"),
        "{message}"
    );

    // Denied by default: no role of the reader's permits the tool, so for the reader
    // it does not exist (the refusal, with its reason, is on record below).
    let (status, body) = t.call(READER, "types/echo-u32", json!({"v": 1})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "unknown-tool", "{body}");
    let (_, missing) = t.call(READER, "types/no-such", json!({"v": 1})).await;
    assert_eq!(
        body.to_string().replace("echo-u32", "no-such"),
        missing.to_string()
    );
    // A malformed body from a caller without access is a 404 all the same.
    let resp = t
        .http
        .post(format!("{}/v1/tools/types/echo-u32", t.url))
        .bearer_auth(READER)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let (status, _) = t
        .call(READER, "types/echo-string", json!({"v": "hi"}))
        .await;
    assert_eq!(status, StatusCode::OK);

    let calls = t.records("tool.call").await;
    let allowed = calls.iter().find(|r| r["tool"] == "echo-u32").unwrap();
    assert_eq!(
        allowed["fields"]["policy"],
        json!({"decision": "allow", "policies": ["role:admin:call-tool"]})
    );
    let reader = calls.iter().find(|r| r["tool"] == "echo-string").unwrap();
    assert_eq!(
        reader["fields"]["policy"]["policies"],
        json!(["role:reader:call-tool"])
    );

    let denied = t.records("access.denied").await;
    let decisions: Vec<&Value> = denied.iter().map(|r| &r["fields"]["decision"]).collect();
    assert_eq!(decisions.len(), 5, "{denied:?}");
    assert_eq!(decisions[0]["decision"], "require-approval");
    assert_eq!(
        decisions[0]["policies"],
        json!(["big-echo", "role:admin:call-tool"])
    );
    assert_eq!(decisions[1]["decision"], "deny");
    assert_eq!(decisions[1]["policies"], json!(["no-thirteen"]));
    assert_eq!(denied[1]["plugin"], "types");
    assert_eq!(denied[1]["tool"], "echo-u32");
    assert_eq!(denied[1]["fields"]["resource"], "tool types/echo-u32");
    assert_eq!(decisions[2]["policies"], json!([]));
    assert!(
        decisions[2]["reason"]
            .as_str()
            .unwrap()
            .starts_with("no policy permits")
    );
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tool_list_hides_what_the_policy_denies() {
    let t = Served::start().await;
    let resp = t
        .http
        .get(format!("{}/v1/tools", t.url))
        .bearer_auth(READER)
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    let ids: Vec<&str> = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    // Only what a policy permits without arguments: the reader's role's tool (the
    // approval permit for echo-u32 applies only to a call with v > 100).
    assert_eq!(ids, ["types/echo-string"]);
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_policy_file_applies_without_a_restart_and_a_broken_one_is_not_taken() {
    let t = Served::start_with(true, POLICY, None).await;
    let (status, _) = t.call(ADMIN, "types/echo-u32", json!({"v": 7})).await;
    assert_eq!(status, StatusCode::OK);
    let file = t.dir.path().join("policy.cedar");
    // A policy that does not validate is refused; the old one stays.
    std::fs::write(
        &file,
        "forbid(principal, action == Warden::Action::\"call-tol\", resource);",
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let (status, _) = t.call(ADMIN, "types/echo-u32", json!({"v": 7})).await;
    assert_eq!(status, StatusCode::OK);
    std::fs::write(
        &file,
        "@id(\"no-seven\")\nforbid(principal, action, resource) when { context has args && context.args has v && context.args.v == 7 };",
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, body) = t.call(ADMIN, "types/echo-u32", json!({"v": 7})).await;
        if status == StatusCode::FORBIDDEN {
            assert_eq!(body["error"]["policies"], json!(["no-seven"]));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new policy was not applied"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_see_the_annotations_the_manifest_gives_a_tool() {
    let t = Served::start_with(
        false,
        r#"@id("readers-read")
permit(principal in Warden::Role::"reader", action == Warden::Action::"call-tool", resource is Warden::Tool)
when { resource.annotations.read_only && !resource.annotations.destructive };"#,
        Some("[tools.echo-u32]\nread_only = true\n"),
    )
    .await;
    let (status, body) = t.call(READER, "types/echo-u32", json!({"v": 3})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = t.call(READER, "types/echo-s32", json!({"v": 3})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let calls = t.records("tool.call").await;
    assert_eq!(
        calls[0]["fields"]["policy"]["policies"],
        json!(["readers-read"])
    );
    t.server.shutdown().await;
}
