//! Two `warden serve` nodes (`warden up`, each its own home and process) on one
//! PostgreSQL database: what one node writes, the other serves. Skipped, with a
//! message, where PostgreSQL is not installed, unless WARDEN_REQUIRE_POSTGRES=1.

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use warden_postgres::testing::TestCluster;

use super::models::fake::Fake;
use super::models::gateway::openai_provider;

/// The audit signing key every node of the cluster holds.
const KEY: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

/// A home configured for the cluster's database, holding the cluster's audit key.
fn node_home(config: &str) -> tempfile::TempDir {
    use std::os::unix::fs::OpenOptionsExt as _;
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("warden.toml"), config).unwrap();
    let mut key = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(home.path().join("audit.key"))
        .unwrap();
    std::io::Write::write_all(&mut key, KEY.as_bytes()).unwrap();
    home
}

/// A node: `warden up` on a free port; its process, URL and what it printed.
fn up(home: &Path) -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(home)
        .args(["up", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
        let at = printed
            .find(prefix)
            .unwrap_or_else(|| panic!("no {prefix} in\n{printed}"));
        printed[at..]
            .split(|c: char| c.is_whitespace() || c == '\'' || c == '"')
            .next()
            .unwrap()
            .to_string()
    };
    let url = word("http://127.0.0.1:");
    (child, url, printed)
}

async fn call(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    tool: &str,
    args: Value,
) -> (u16, Value) {
    let resp = http
        .post(format!("{url}/v1/tools/{tool}"))
        .bearer_auth(token)
        .json(&args)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Waits until `url`'s tool list passes `done`; how long it took.
async fn until(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    done: impl Fn(&Vec<String>) -> bool,
) -> std::time::Duration {
    let started = std::time::Instant::now();
    loop {
        let body: Value = http
            .get(format!("{url}/v1/tools"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let tools: Vec<String> = body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap_or_default().to_string())
            .collect();
        if done(&tools) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{url}: {tools:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_audit_chain_and_memory() {
    let Some(cluster) = TestCluster::start() else {
        return;
    };
    let db = cluster.database();
    // A model route with a daily budget for the admin token `up` makes.
    let fake = Fake::auto("pong").await;
    let config = format!(
        "[storage]\nurl = \"{}\"\n\n{}[models.routes.fast]\ntargets = [\"local/m\"]\n\n[models.budgets]\nprincipals.\"token:admin\" = {{ tokens_per_day = 30 }}\n",
        db.secret(),
        openai_provider("local", &fake)
    );
    let home_a = node_home(&config);
    let (mut a, url_a, printed) = up(home_a.path());
    let token = {
        let at = printed
            .find("wdn_")
            .unwrap_or_else(|| panic!("no token in\n{printed}"));
        printed[at..]
            .split(|c: char| c.is_whitespace() || c == '\'')
            .next()
            .unwrap()
            .to_string()
    };
    // Node B: the same config (with A's token) and key, its own home and process.
    let home_b = node_home(&std::fs::read_to_string(home_a.path().join("warden.toml")).unwrap());
    let (mut b, url_b, _) = up(home_b.path());
    let http = reqwest::Client::new();

    // Calls answered by both.
    for url in [&url_a, &url_b] {
        let (status, body) = call(
            &http,
            url,
            &token,
            "text/word-count",
            json!({"text": "one two three"}),
        )
        .await;
        assert_eq!(status, 200, "{url}: {body}");
    }
    // A note written through A is found by a search on B.
    let (status, body) = call(
        &http,
        &url_a,
        &token,
        "notes/remember",
        json!({"text": "the cluster shares its memory through PostgreSQL", "tags": ["ops"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &http,
        &url_b,
        &token,
        "notes/search",
        json!({"query": "memory", "tag": "ops"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"][0]["id"], "n1", "{body}");
    assert!(
        body["result"][0]["snippet"]
            .as_str()
            .unwrap()
            .contains("[memory]"),
        "{body}"
    );

    // A budget is the cluster's: what A spent, B counts (429 naming the budget).
    let chat = |url: &str, max_tokens: u32| {
        http.post(format!("{url}/v1/chat/completions"))
            .bearer_auth(&token)
            .json(&json!({"model": "fast", "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hello"}]}))
            .send()
    };
    assert_eq!(chat(&url_a, 10).await.unwrap().status(), 200);
    let resp = chat(&url_b, 25).await.unwrap();
    assert_eq!(resp.status(), 429);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["error"]["budget"], "principal \"token:admin\"",
        "{body}"
    );
    assert_eq!(
        chat(&url_b, 10).await.unwrap().status(),
        200,
        "what is left"
    );

    // Each node says it reaches the database; B's metrics have the pool.
    for url in [&url_a, &url_b] {
        let health: Value = http
            .get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health["status"], "ok", "{health}");
        assert_eq!(health["database"]["status"], "ok", "{health}");
        assert!(
            !health.to_string().contains(db.secret()),
            "no password: {health}"
        );
    }
    let metrics = http
        .get(format!("{url_b}/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("warden_db_pool_connections{state=\"connected\"}"),
        "{metrics}"
    );
    assert!(metrics.trim_end().ends_with("# EOF"), "{metrics}");

    // A plugin uploaded to A answers on B; replaced on B, A serves the new version;
    // removed on A, B no longer lists it. (Within a second here; waited for up to 20 s,
    // as the machines are shared.)
    let put = |url: &str, wasm: &str| {
        http.put(format!("{url}/v1/plugins/shared"))
            .bearer_auth(&token)
            .header("content-type", "application/wasm")
            .body(std::fs::read(wasm).unwrap())
            .send()
    };
    assert_eq!(
        put(&url_a, warden_tests::guests::TEXT)
            .await
            .unwrap()
            .status(),
        201
    );
    let waited = until(&http, &url_b, &token, |tools| {
        tools.contains(&"shared/word-count".to_string())
    })
    .await;
    eprintln!("a plugin added on A answered on B after {waited:?}");
    let (status, body) = call(
        &http,
        &url_b,
        &token,
        "shared/word-count",
        json!({"text": "a b c"}),
    )
    .await;
    assert_eq!(
        (status, &body["result"]["words"]),
        (200, &json!(3)),
        "{body}"
    );
    assert_eq!(
        put(&url_b, warden_tests::guests::COUNTER)
            .await
            .unwrap()
            .status(),
        200
    );
    until(&http, &url_a, &token, |tools| {
        tools.contains(&"shared/bump".to_string())
    })
    .await;
    let resp = http
        .delete(format!("{url_a}/v1/plugins/shared"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    until(&http, &url_b, &token, |tools| {
        !tools.iter().any(|t| t.starts_with("shared/"))
    })
    .await;

    a.kill().unwrap();
    b.kill().unwrap();
    let _ = (a.wait(), b.wait());

    // One chain holds both nodes' calls, and verifies from either home.
    for home in [&home_a, &home_b] {
        let out = Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("--home")
            .arg(home.path())
            .args(["audit", "verify"])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(home_b.path())
        .args(["audit", "export"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"tool.call\"") && l.contains("word-count"))
        .count();
    assert_eq!(
        calls, 3,
        "text/word-count on each node and shared/word-count on B, in one log"
    );
    assert!(
        !home_a.path().join("audit.db").exists(),
        "no SQLite log beside the database"
    );
}

/// A wrong password or an unreachable server: a clear error naming the URL (password
/// hidden), a non-zero exit, and no server.
#[test]
fn a_database_that_refuses_stops_the_node_before_it_serves() {
    let Some(cluster) = TestCluster::start() else {
        return;
    };
    let wrong = format!(
        "postgres://warden:not-the-password@127.0.0.1:{}/postgres",
        cluster.port()
    );
    let closed = "postgres://warden:s3cret@127.0.0.1:1/warden".to_string();
    for url in [wrong, closed] {
        let home = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("--home")
            .arg(home.path())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("WARDEN_DATABASE_URL", &url)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains("cannot connect to the database at postgres://warden:***@127.0.0.1:"),
            "{stderr}"
        );
        assert!(
            !stderr.contains("not-the-password") && !stderr.contains("s3cret"),
            "{stderr}"
        );
        assert!(!stderr.contains("serving"), "{stderr}");
    }
}

/// `warden db migrate` and `warden db status`; a database newer than the binary is
/// refused by name.
#[test]
fn db_migrate_and_status() {
    let Some(cluster) = TestCluster::start() else {
        return;
    };
    let db = cluster.database();
    let home = tempfile::tempdir().unwrap();
    let warden = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("--home")
            .arg(home.path())
            .args(args)
            .env("WARDEN_DATABASE_URL", db.secret())
            .output()
            .unwrap();
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (code, text) = warden(&["db", "status"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("run `warden db migrate`"), "{text}");
    let (code, text) = warden(&["db", "migrate"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("applied migration 1"), "{text}");
    assert!(text.contains("applied migration 2"), "{text}");
    assert!(text.contains("applied migration 3"), "{text}");
    let (code, text) = warden(&["db", "migrate"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("up to date"), "{text}");
    let (code, text) = warden(&["db", "status"]);
    assert_eq!(code, Some(0), "{text}");
    warden_postgres::off_runtime(|| {
        let mut client = db.connect().unwrap();
        client
            .execute(
                "INSERT INTO warden_schema (version, name) VALUES (99, 'later')",
                &[],
            )
            .unwrap();
    });
    let (code, text) = warden(&["db", "status"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("newer than this warden's"), "{text}");
    let (code, text) = warden(&["audit", "verify"]);
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("upgrade warden"), "{text}");
}

/// The database goes away under a serving node: calls fail clearly (nothing answered
/// off the record), /healthz says so, and once the database is back the node serves
/// again with no restart; every answered call is in the log, which verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_fails_clearly_while_the_database_is_away_and_recovers() {
    let Some(mut cluster) = TestCluster::start() else {
        return;
    };
    let db = cluster.database();
    let home = node_home(&format!("[storage]\nurl = \"{}\"\n", db.secret()));
    let (mut node, url, printed) = up(home.path());
    let token = {
        let at = printed
            .find("wdn_")
            .unwrap_or_else(|| panic!("no token in\n{printed}"));
        printed[at..]
            .split(|c: char| c.is_whitespace() || c == '\'')
            .next()
            .unwrap()
            .to_string()
    };
    let http = reqwest::Client::new();
    let words = json!({"text": "one two"});
    let mut answered = 0;
    for _ in 0..3 {
        assert_eq!(
            call(&http, &url, &token, "text/word-count", words.clone())
                .await
                .0,
            200
        );
        answered += 1;
    }
    cluster.stop();
    let (status, body) = call(&http, &url, &token, "text/word-count", words.clone()).await;
    assert!(status >= 500, "{status} {body}");
    let text = body.to_string();
    assert!(text.contains("audit"), "names what failed: {text}");
    assert!(!text.contains(db.secret()), "{text}");
    let health = http.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    cluster.start_again();
    let started = std::time::Instant::now();
    loop {
        let (status, body) = call(&http, &url, &token, "text/word-count", words.clone()).await;
        if status == 200 {
            answered += 1;
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{status} {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for _ in 0..3 {
        assert_eq!(
            call(&http, &url, &token, "text/word-count", words.clone())
                .await
                .0,
            200
        );
        answered += 1;
    }
    assert_eq!(
        http.get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    node.kill().unwrap();
    let _ = node.wait();
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(home.path())
        .args(["audit", "export"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ok_calls = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"tool.call\"") && l.contains("\"outcome\":\"ok\""))
        .count();
    assert_eq!(ok_calls, answered, "every answered call on record");
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(home.path())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Runs in a cluster: the `tally` tool counts its executions in the cluster's memory,
/// and a policy holds `tally/bump` of the key `big` for a person.
mod runs {
    use std::process::Command;
    use std::time::{Duration, Instant};

    use serde_json::{Value, json};
    use warden::config::home::hash_token;
    use warden_postgres::testing::TestCluster;
    use warden_tests::guests;

    use super::{call, node_home, up};

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
            let out = Command::new(env!("CARGO_BIN_EXE_warden"))
                .arg("--home")
                .arg(dir)
                .args(["plugin", "add", wasm, "--name", name, "--grant"])
                .arg(grants.join(format!("{name}.toml")))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
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
            let (status, body) =
                send(http, ADMIN, "GET", format!("{url}/v1/runs/{id}"), None).await;
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
        let (done, _) =
            run_when(&http, &url_a, &parked, |b| b["run"]["status"] == "finished").await;
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
}
