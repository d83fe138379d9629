//! Runs in a cluster: the `tally` tool counts its executions in the cluster's memory,
//! and a policy holds `tally/bump` of the key `big` for a person.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden::config::home::hash_token;
use warden_postgres::testing::TestCluster;
use warden_tests::guests;

use super::{call, node_home, up, warden};

/// Starts runs.
const ADMIN: &str = "wdn_cluster-admin";
/// Approves what [`ADMIN`] started (a run's starter may not approve its own holds).
const REVIEWER: &str = "wdn_cluster-reviewer";
/// The term of a run's lease here: short, so the test is.
const LEASE_MS: u64 = 3000;

const POLICY: &str = r#"
@id("big-bump")
@approval("required")
permit(principal, action == Warden::Action::"call-tool", resource == Warden::Tool::"tally/bump")
when { context.args has key && context.args.key == "big" };
"#;

/// A node's home: the cluster's database, the tokens, a short lease; `scripted`
/// (granted `tally/*`), `tally` (its memory) and the policy.
fn home(db: &str) -> tempfile::TempDir {
    let config = format!(
        "[storage]\nurl = \"{db}\"\n\n[runs]\nlease_ms = {LEASE_MS}\n\n[policy.args]\nkey = \"String\"\n\n[[tokens]]\nname = \"admin\"\nsha256 = \"{}\"\nroles = [\"admin\"]\n\n[[tokens]]\nname = \"reviewer\"\nsha256 = \"{}\"\nroles = [\"admin\"]\n",
        hash_token(ADMIN),
        hash_token(REVIEWER)
    );
    let home = node_home(&config);
    let dir = home.path();
    std::fs::write(dir.join("policy.cedar"), POLICY).unwrap();
    let grants = dir.join("grant-files");
    std::fs::create_dir_all(&grants).unwrap();
    std::fs::write(
        grants.join("scripted.toml"),
        "[tools]\nallow = [\"tally/*\"]\n",
    )
    .unwrap();
    std::fs::write(
        grants.join("tally.toml"),
        // Long enough for the call that sleeps until its node is killed.
        "[memory]\ntally = \"read-write\"\n\n[limits]\ntimeout_ms = 300000\n",
    )
    .unwrap();
    for (name, wasm) in [("scripted", guests::SCRIPTED), ("tally", guests::TALLY)] {
        let grant = grants.join(format!("{name}.toml"));
        let grant = grant.to_str().unwrap();
        let (code, text) = warden(
            dir,
            &[],
            &["plugin", "add", wasm, "--name", name, "--grant", grant],
        );
        assert_eq!(code, Some(0), "{text}");
    }
    home
}

async fn send(
    http: &reqwest::Client,
    token: &str,
    method: &str,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = match method {
        "GET" => http.get(url),
        _ => http.post(url),
    }
    .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

/// How many times `tally/bump` ran for `key`, in the cluster's memory, asked of
/// the node at `url`.
async fn tally(http: &reqwest::Client, url: &str, key: &str) -> u64 {
    let (status, body) = call(http, url, ADMIN, "tally/count", json!({ "key": key })).await;
    assert_eq!(status, 200, "{body}");
    body["result"].as_u64().unwrap_or_else(|| panic!("{body}"))
}

/// The run as `url` shows it once `done` holds, and how long that took.
async fn run_when(
    http: &reqwest::Client,
    url: &str,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> (Value, Duration) {
    let started = Instant::now();
    loop {
        let (status, body) = send(http, ADMIN, "GET", format!("{url}/v1/runs/{id}"), None).await;
        assert_eq!(status, 200, "{body}");
        if done(&body) {
            return (body, started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "run {id}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_run_is_finished_by_another_and_approvals_resume_runs_anywhere() {
    let Some(cluster) = TestCluster::start() else {
        return;
    };
    let db = cluster.database();
    let http = reqwest::Client::new();
    let home_a = home(db.secret());
    let (mut a, url_a, _) = up(home_a.path());

    // Node A drives a run whose step 2 bumps `slow`, then sleeps in the tool: A is
    // killed there, after the side effect, before its result is recorded.
    let task = json!({ "script": [
        { "call": [{ "id": "a", "tool": "tally/bump", "arguments": { "key": "fast" } }] },
        { "call": [{ "id": "b", "tool": "tally/bump", "arguments": { "key": "slow", "sleep-ms": 60000 } }] },
        { "finish": "taken over" },
    ] });
    let (status, body) = send(
        &http,
        ADMIN,
        "POST",
        format!("{url_a}/v1/runs"),
        Some(json!({ "agent": "scripted", "task": task })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let crashed = body["run"]["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    while tally(&http, &url_a, "slow").await == 0 {
        assert!(Instant::now() < deadline, "the run never reached step 2");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (held, _) = run_when(&http, &url_a, &crashed, |_| true).await;
    let owner = held["run"]["owner"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        owner.contains(&format!(":{}:", a.id())),
        "A drives it: {held}"
    );

    // Node B joins while A drives the run (longer than a lease: A's heartbeat
    // keeps it), and does not take it.
    let home_b = home(db.secret());
    let (mut b, url_b, _) = up(home_b.path());
    tokio::time::sleep(Duration::from_millis(LEASE_MS + 1500)).await;
    let (held, _) = run_when(&http, &url_b, &crashed, |_| true).await;
    assert_eq!(held["run"]["owner"], owner.as_str(), "{held}");
    assert_eq!(held["run"]["status"], "running", "{held}");

    // A run parked on A for a person; approved on B by a reviewer, it goes on.
    let (status, body) = send(
        &http,
        ADMIN,
        "POST",
        format!("{url_a}/v1/runs"),
        Some(
            json!({ "agent": "scripted", "wait": true, "task": { "script": [
            { "call": [{ "id": "h", "tool": "tally/bump", "arguments": { "key": "big" } }] },
            { "finish": "approved" },
        ] } }),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let parked = body["run"]["id"].as_str().unwrap().to_string();
    run_when(&http, &url_b, &parked, |b| {
        b["run"]["status"] == "awaiting-approval"
    })
    .await;
    let (status, queue) = send(
        &http,
        REVIEWER,
        "GET",
        format!("{url_b}/v1/approvals"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{queue}");
    let approval = queue["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["run"] == parked.as_str())
        .unwrap_or_else(|| panic!("{queue}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = send(
        &http,
        REVIEWER,
        "POST",
        format!("{url_b}/v1/approvals/{approval}/approve"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (done, _) = run_when(&http, &url_a, &parked, |b| b["run"]["status"] == "finished").await;
    assert_eq!(
        done["run"]["result"]["observations"],
        json!([{ "tools": { "h": 1 } }]),
        "{done}"
    );
    assert_eq!(tally(&http, &url_b, "big").await, 1);

    // A dies mid-step; B takes the run over once A's lease ran out and finishes it,
    // without running the interrupted call again.
    a.kill().unwrap(); // SIGKILL
    a.wait().unwrap();
    let (finished, took) = run_when(&http, &url_b, &crashed, |b| {
        b["run"]["status"] == "finished"
    })
    .await;
    eprintln!("B finished A's run {took:?} after A was killed (lease {LEASE_MS} ms)");
    assert!(took < Duration::from_millis(LEASE_MS + 10_000), "{took:?}");
    assert_eq!(
        finished["run"]["result"]["observations"],
        json!([{ "tools": { "a": 1 } }, { "tools": { "b": { "interrupted": true } } }]),
        "{finished}"
    );
    assert_eq!(finished["steps"].as_array().unwrap().len(), 3, "{finished}");
    assert_eq!(
        (
            tally(&http, &url_b, "fast").await,
            tally(&http, &url_b, "slow").await
        ),
        (1, 1),
        "no side effect twice"
    );
    b.kill().unwrap();
    let _ = b.wait();
}
