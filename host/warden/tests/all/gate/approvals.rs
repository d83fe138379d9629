//! Approvals that are not decided again: an approval whose edited arguments a forbid
//! refuses (today the edited call runs with a hard-coded allow), and the starter of a
//! run approving its own hold (today anyone with the action may).

use reqwest::StatusCode;
use serde_json::{Value, json};
use warden::config::home::{Config, hash_token};
use warden::serve::{ServeOptions, Server};
use warden_tests::guests;

use super::{add, expect, stderr, stdout, warden};
use crate::models::fake::{Fake, openai_answer};
use crate::models::gateway::openai_provider;
use crate::runs::http::{ADMIN, Client, bump_big};

const REFUNDS_POLICY: &str = include_str!("../../../../../plugins/refunds/policy.cedar");

/// Beside the refunds policy (above 100 waits for a person): above 1000, never.
const NO_BIG_REFUNDS: &str = r#"
@id("no-refunds-above-1000")
forbid (
    principal,
    action == Warden::Action::"call-tool",
    resource == Warden::Tool::"refunds/issue"
)
when { context.args has amount && context.args.amount > 1000 };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_approval_is_decided_again_and_a_forbid_wins() {
    // The model classifies the ticket (a refund of 150), then drafts the reply.
    let fake = Fake::start(
        vec![
            openai_answer("{\"category\": \"refund\", \"amount\": 150}"),
            openai_answer("Sorry about the kettle: your refund is on its way."),
        ],
        openai_answer("unexpected"),
    )
    .await;
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(
        h.join("warden.toml"),
        format!(
            "{}[models.routes.smart]\ntargets = [\"local/m\"]\n\n[policy.args]\namount = \"Long\"\n",
            openai_provider("local", &fake)
        ),
    )
    .unwrap();
    std::fs::write(
        h.join("policy.cedar"),
        format!("{REFUNDS_POLICY}\n{NO_BIG_REFUNDS}"),
    )
    .unwrap();
    add(
        h,
        "notes",
        guests::NOTES,
        Some("[memory]\nnotes = \"read-write\"\n"),
    )
    .await;
    add(
        h,
        "refunds",
        guests::REFUNDS,
        Some("[memory]\nrefunds = \"read-write\"\n"),
    )
    .await;
    add(
        h,
        "triage",
        guests::TRIAGE,
        Some(
            "[tools]\nallow = [\"notes/search\", \"refunds/issue\"]\n\n[models]\nroutes = [\"smart\"]\n",
        ),
    )
    .await;

    // The refund of 150 parks the run for a person.
    let task = json!({"ticket": "My kettle arrived broken, I want my 150 back.", "order": "A-17"});
    let out = warden(h, &["run", "triage", "--task", &task.to_string()]).await;
    expect(&out, 4);
    let out = warden(h, &["approvals", "list"]).await;
    let approvals: Value = serde_json::from_str(&expect(&out, 0)).unwrap();
    let approval = &approvals[0];
    assert_eq!(approval["tool"], "refunds/issue", "{approvals}");
    assert_eq!(approval["arguments"]["amount"], 150, "{approvals}");
    let id = approval["id"].as_str().unwrap();

    // Approved with an amount the forbid refuses: a new request, decided again.
    let edited = json!({"order": "A-17", "amount": 5000, "reason": "edited"});
    let approved = warden(
        h,
        &[
            "approvals",
            "approve",
            id,
            "--edit-args",
            &edited.to_string(),
        ],
    )
    .await;
    let said = format!("{}{}", stdout(&approved), stderr(&approved));

    let out = warden(h, &["call", "refunds/issued", "--input", "{}"]).await;
    let issued: Value = serde_json::from_str(&expect(&out, 0)).unwrap();
    assert_eq!(
        issued,
        json!([]),
        "an approval edited to an amount of 5000 issued the refund past the forbid no-refunds-above-1000; `warden approvals approve` said:\n{said}"
    );
    assert!(
        said.contains("no-refunds-above-1000"),
        "the refusal names the forbid:\n{said}"
    );
    // The refusal is on record, naming the forbid.
    let out = warden(h, &["audit", "query", "--json"]).await;
    let denials: Vec<Value> = expect(&out, 0)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["outcome"] == "denied" && r["tool"] == "issue")
        .collect();
    assert!(
        denials
            .iter()
            .any(|r| r["fields"].to_string().contains("no-refunds-above-1000")),
        "no denied record of refunds/issue names the forbid: {denials:?}"
    );
}

/// A second admin: approves what [`ADMIN`] started.
const APPROVER: &str = "wdn_runs-approver";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_starter_of_a_run_may_not_approve_its_own_hold() {
    let dir = tempfile::tempdir().unwrap();
    let home = crate::runs::http::home(dir.path());
    let config = Config::parse(
        &format!(
            "[policy.args]\nkey = \"String\"\n\n[[tokens]]\nname = \"admin\"\nsha256 = \"{}\"\nroles = [\"admin\"]\n\n[[tokens]]\nname = \"approver\"\nsha256 = \"{}\"\nroles = [\"admin\"]\n",
            hash_token(ADMIN),
            hash_token(APPROVER)
        ),
        "test config",
    )
    .unwrap();
    let options = ServeOptions {
        config,
        watch: false,
        ..ServeOptions::new(home)
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::start(options, listener).await.unwrap();
    let c = Client {
        url: format!("http://{}", server.addr()),
        http: reqwest::Client::new(),
    };

    // token:admin starts a run that parks on `tally/bump` of `big`.
    let (status, body) = c
        .send(
            "POST",
            "/v1/runs",
            Some(json!({ "agent": "scripted", "task": bump_big(), "wait": true })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["run"]["status"], "awaiting-approval", "{body}");
    assert_eq!(body["run"]["principal"], "token:admin");
    let run = body["run"]["id"].as_str().unwrap().to_string();
    let (_, queue) = c.send("GET", "/v1/approvals", None).await;
    let id = queue["approvals"][0]["id"].as_str().unwrap().to_string();

    // Its own hold: refused, and still waiting.
    let (status, body) = c
        .send("POST", &format!("/v1/approvals/{id}/approve"), None)
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "token:admin started run {run} and approved its own hold: {body}"
    );
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    let (_, queue) = c.send("GET", "/v1/approvals", None).await;
    assert_eq!(queue["approvals"][0]["id"], id.as_str(), "{queue}");

    // Another approver may.
    let (status, body) = c
        .send_as(
            APPROVER,
            "POST",
            &format!("/v1/approvals/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["approval"]["decided_by"], "token:approver");
    let done = c.run_when(&run, "finished").await;
    assert_eq!(
        done["run"]["result"]["observations"],
        json!([{ "tools": { "a": 1 } }])
    );
    server.shutdown().await;
}
