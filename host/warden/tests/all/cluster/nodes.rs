//! Two nodes on one database: calls, the audit chain, memory, budgets, plugins.

use super::*;

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
    let token = token_of(&printed);
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
        let (code, text) = warden(home.path(), &[], &["audit", "verify"]);
        assert_eq!(code, Some(0), "{text}");
    }
    let (code, export) = warden(home_b.path(), &[], &["audit", "export"]);
    assert_eq!(code, Some(0), "{export}");
    let calls = export
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
