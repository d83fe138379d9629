//! Approvals that are not decided again: an approval whose edited arguments a forbid
//! refuses (today the edited call runs with a hard-coded allow), and the starter of a
//! run approving its own hold (today anyone with the action may). With them, what
//! `decide-approval` lets a policy see: a policy file that lets starters approve their
//! own holds, and policies on the edit, the starter and the edited arguments.

use reqwest::StatusCode;
use serde_json::{Value, json};
use warden::config::home::{Config, hash_token};
use warden::serve::{ServeOptions, Server};
use warden_tests::guests;

use super::{add, expect, stderr, stdout, warden};
use crate::models::fake::{Fake, openai_answer};
use crate::models::gateway::openai_provider;
use crate::runs::http::{ADMIN, Client, bump_big};
use std::path::Path;
use std::process::Output;

/// Another person at the same machine (`local:reviewer`) than the one whose `$USER`
/// the tests run as.
const REVIEWER: &str = "reviewer";

/// `warden` as the local user `user` (`local:<user>`).
async fn warden_as(home: &Path, user: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("RUST_LOG")
        .env("USER", user)
        .output()
        .await
        .expect("running warden")
}

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

    // Approved with an amount the forbid refuses: a new request, decided again. By
    // another person at the machine than the one who started the run (four eyes).
    let edited = json!({"order": "A-17", "amount": 5000, "reason": "edited"});
    let approved = warden_as(
        h,
        REVIEWER,
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

/// A server on a home whose policy file is [`crate::runs::http::home`]'s (`tally/bump`
/// of `big` waits for a person) and `policy`, with a token of each `(name, secret,
/// roles)` and `config` (roles); `token:admin` ([`ADMIN`]) has started a run parked on
/// `tally/bump` of `big`. Returns the server, a client, the run and the approval.
async fn parked(
    dir: &Path,
    policy: &str,
    tokens: &[(&str, &str, &str)],
    config: &str,
) -> (Server, Client, String, String) {
    let home = crate::runs::http::home(dir);
    let file = dir.join("policy.cedar");
    let own = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{own}\n{policy}")).unwrap();
    let mut text = format!(
        "[policy.args]\nkey = \"String\"\n\n{config}\n[[tokens]]\nname = \"admin\"\nsha256 = \"{}\"\nroles = [\"admin\"]\n",
        hash_token(ADMIN)
    );
    for (name, secret, roles) in tokens {
        text.push_str(&format!(
            "\n[[tokens]]\nname = \"{name}\"\nsha256 = \"{}\"\nroles = {roles}\n",
            hash_token(secret)
        ));
    }
    let options = ServeOptions {
        config: Config::parse(&text, "test config").unwrap(),
        watch: false,
        ..ServeOptions::new(home)
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::start(options, listener).await.unwrap();
    let c = Client {
        url: format!("http://{}", server.addr()),
        http: reqwest::Client::new(),
    };
    let (status, body) = c
        .send(
            "POST",
            "/v1/runs",
            Some(json!({ "agent": "scripted", "task": bump_big(), "wait": true })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["run"]["status"], "awaiting-approval", "{body}");
    let run = body["run"]["id"].as_str().unwrap().to_string();
    let (_, queue) = c.send("GET", "/v1/approvals", None).await;
    let id = queue["approvals"][0]["id"].as_str().unwrap().to_string();
    (server, c, run, id)
}

/// The `approval.decide` records, oldest first.
async fn decisions(c: &Client) -> Vec<Value> {
    let (status, body) = c
        .send("GET", "/v1/audit?kind=approval.decide&limit=100", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["records"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_file_may_let_the_starter_approve_its_own_hold() {
    let dir = tempfile::tempdir().unwrap();
    let (server, c, run, id) = parked(
        dir.path(),
        r#"
@id("starters-approve-their-own")
permit(principal in Warden::Role::"admin", action == Warden::Action::"decide-approval", resource)
when { context.by_starter && context.starter == "token:admin" };
"#,
        &[],
        "",
    )
    .await;
    let (status, body) = c
        .send("POST", &format!("/v1/approvals/{id}/approve"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["approval"]["decided_by"], "token:admin");
    let done = c.run_when(&run, "finished").await;
    assert_eq!(
        done["run"]["result"]["observations"],
        json!([{ "tools": { "a": 1 } }])
    );
    let records = decisions(&c).await;
    let decided = records.last().unwrap();
    assert_eq!(decided["outcome"], "ok", "{records:?}");
    assert_eq!(decided["fields"]["by_starter"], true, "{decided}");
    assert_eq!(decided["fields"]["starter"], "token:admin", "{decided}");
    assert_eq!(
        decided["fields"]["policies"],
        json!(["starters-approve-their-own"]),
        "{decided}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_reads_the_edit_the_starter_and_the_edited_arguments() {
    const JUNIOR: &str = "wdn_runs-junior";
    const SENIOR: &str = "wdn_runs-senior";
    let dir = tempfile::tempdir().unwrap();
    let (server, c, run, id) = parked(
        dir.path(),
        r#"
@id("juniors-do-not-edit")
forbid(principal in Warden::Role::"junior", action == Warden::Action::"decide-approval", resource)
when { context.edited };

@id("no-huge-keys-in-admin-runs")
forbid(principal, action == Warden::Action::"decide-approval", resource == Warden::Tool::"tally/bump")
when {
  context.starter == "token:admin" && context.tool == "tally/bump" &&
  context.held has key && context.held.key == "big" &&
  context.arguments has key && context.arguments.key == "huge"
};
"#,
        &[
            ("junior", JUNIOR, "[\"admin\", \"junior\"]"),
            ("senior", SENIOR, "[\"admin\"]"),
        ],
        "[roles.junior]\n",
    )
    .await;
    let approve = |token: &'static str, edit: Option<Value>| {
        let c = &c;
        let path = format!("/v1/approvals/{id}/approve");
        async move {
            c.send_as(
                token,
                "POST",
                &path,
                edit.map(|e| json!({ "edit_args": e })),
            )
            .await
        }
    };

    // A junior may not edit.
    let (status, body) = approve(JUNIOR, Some(json!({ "key": "small" }))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    assert!(body.to_string().contains("juniors-do-not-edit"), "{body}");
    // Nobody edits a run of token:admin's to the key `huge`.
    let (status, body) = approve(SENIOR, Some(json!({ "key": "huge" }))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body.to_string().contains("no-huge-keys-in-admin-runs"),
        "{body}"
    );
    // Both refusals on record; the approval still waits.
    let records = decisions(&c).await;
    let denied: Vec<&Value> = records
        .iter()
        .filter(|r| r["outcome"] == "denied")
        .collect();
    assert_eq!(denied.len(), 2, "{records:?}");
    assert_eq!(denied[0]["principal"], "token:junior");
    assert_eq!(denied[1]["principal"], "token:senior");
    let (_, queue) = c.send("GET", "/v1/approvals", None).await;
    assert_eq!(queue["approvals"][0]["id"], id.as_str(), "{queue}");

    // A junior may approve as held.
    let (status, body) = approve(JUNIOR, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["approval"]["decided_by"], "token:junior");
    let done = c.run_when(&run, "finished").await;
    assert_eq!(
        done["run"]["result"]["observations"],
        json!([{ "tools": { "a": 1 } }])
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_command_line_the_starter_is_told_how_to_approve_its_own_hold() {
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path();
    crate::runs::http::home(h);
    std::fs::write(h.join("warden.toml"), "[policy.args]\nkey = \"String\"\n").unwrap();
    let task = bump_big().to_string();
    let out = warden_as(h, "ann", &["run", "scripted", "--task", &task]).await;
    expect(&out, 4);
    let out = warden_as(h, "ann", &["approvals", "list"]).await;
    let approvals: Value = serde_json::from_str(&expect(&out, 0)).unwrap();
    assert_eq!(approvals[0]["principal"], "local:ann", "{approvals}");
    let id = approvals[0]["id"].as_str().unwrap();

    // local:ann started the run: her own approval is refused, saying what to do.
    let out = warden_as(h, "ann", &["approvals", "approve", id]).await;
    expect(&out, 3);
    let said = stderr(&out);
    for part in [
        "four eyes",
        "policy.cedar",
        "principal == Warden::User::\"local:ann\"",
        "when { context.by_starter }",
    ] {
        assert!(said.contains(part), "{part:?} not in:\n{said}");
    }
    let out = warden_as(h, "ann", &["approvals", "list"]).await;
    let approvals: Value = serde_json::from_str(&expect(&out, 0)).unwrap();
    assert_eq!(approvals[0]["id"], id, "still pending: {approvals}");

    // Permitted in policy.cedar, as the message says: she may.
    let file = h.join("policy.cedar");
    let own = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        format!(
            "{own}\npermit(principal == Warden::User::\"local:ann\", action == Warden::Action::\"decide-approval\", resource) when {{ context.by_starter }};\n"
        ),
    )
    .unwrap();
    let out = warden_as(h, "ann", &["approvals", "approve", id]).await;
    expect(&out, 0);
    let out = warden_as(
        h,
        "ann",
        &["audit", "query", "--kind", "approval.decide", "--json"],
    )
    .await;
    let outcomes: Vec<String> = expect(&out, 0)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["outcome"].to_string())
        .collect();
    assert_eq!(outcomes, ["\"denied\"", "\"ok\""]);
}
