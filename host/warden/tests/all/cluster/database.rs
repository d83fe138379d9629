//! The database itself: refusing it, migrating it, losing it under a node.

use super::*;

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
        let (code, stderr) = warden(
            home.path(),
            &[("WARDEN_DATABASE_URL", &url)],
            &["serve", "--listen", "127.0.0.1:0"],
        );
        assert_ne!(code, Some(0), "{stderr}");
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
    let db_cmd = |args: &[&str]| warden(home.path(), &[("WARDEN_DATABASE_URL", db.secret())], args);
    let (code, text) = db_cmd(&["db", "status"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("run `warden db migrate`"), "{text}");
    let (code, text) = db_cmd(&["db", "migrate"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("applied migration 1"), "{text}");
    assert!(text.contains("applied migration 2"), "{text}");
    assert!(text.contains("applied migration 3"), "{text}");
    let (code, text) = db_cmd(&["db", "migrate"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("up to date"), "{text}");
    let (code, text) = db_cmd(&["db", "status"]);
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
    let (code, text) = db_cmd(&["db", "status"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("newer than this warden's"), "{text}");
    let (code, text) = db_cmd(&["audit", "verify"]);
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
    let token = token_of(&printed);
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
    let (code, export) = warden(home.path(), &[], &["audit", "export"]);
    assert_eq!(code, Some(0), "{export}");
    let ok_calls = export
        .lines()
        .filter(|l| l.contains("\"tool.call\"") && l.contains("\"outcome\":\"ok\""))
        .count();
    assert_eq!(ok_calls, answered, "every answered call on record");
    let (code, text) = warden(home.path(), &[], &["audit", "verify"]);
    assert_eq!(code, Some(0), "{text}");
}
