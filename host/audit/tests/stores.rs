//! The same checks against both stores: the embedded SQLite file and PostgreSQL (the
//! latter skipped, with a message, where PostgreSQL is not installed, unless
//! WARDEN_REQUIRE_POSTGRES=1). And what only a shared store has: several nodes
//! appending to one chain.

use warden_audit::postgres::PgStore;
use warden_audit::sqlite::SqliteStore;
use warden_audit::{Audit, AuditOptions, Durability, Event, Filter, Outcome, Store};
use warden_postgres::testing::TestCluster;
use warden_postgres::{DatabaseUrl, Pool, migrate};

fn migrated(cluster: &TestCluster) -> DatabaseUrl {
    let url = cluster.database();
    migrate::migrate(&Pool::connect(&url, 1).unwrap()).unwrap();
    url
}

/// Appends from many tasks, reads with filters, counts, checkpoints, prunes, and
/// verifies, on the log kept in `store`.
async fn the_log_works(store: Box<dyn Store>, durability: Durability) {
    let home = tempfile::tempdir().unwrap();
    let options = AuditOptions {
        checkpoint_every: 50,
        durability,
        ..Default::default()
    };
    let audit = Audit::with_store(store, home.path(), options).unwrap();
    let mut tasks = Vec::new();
    for task in 0..8 {
        let audit = audit.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..25 {
                let outcome = if n % 5 == 0 {
                    Outcome::Error
                } else {
                    Outcome::Ok
                };
                audit
                    .append(
                        Event::new("tool.call", format!("local:p{task}"))
                            .plugin("text")
                            .tool(if n % 2 == 0 { "upper" } else { "count" })
                            .outcome(outcome)
                            .field("n", n),
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let report = audit.verify().unwrap();
    assert!(report.problem.is_none(), "{:?}", report.problem);
    assert_eq!(report.count, 200);
    let errors = audit
        .read(Filter {
            tool: Some("upper".into()),
            outcome: Some(Outcome::Error),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(errors.len(), 8 * 3, "n = 0, 10, 20 of each task");
    let newest = audit
        .read(Filter {
            limit: Some(3),
            newest: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        newest.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [198, 199, 200]
    );
    let stats = audit.stats(None, None).unwrap();
    assert_eq!(stats.records, 200);
    assert_eq!(stats.outcomes["error"], 40);
    assert_eq!(stats.tools.len(), 2);
    assert_eq!(
        stats
            .tools
            .iter()
            .map(|t| (t.calls, t.errors))
            .collect::<Vec<_>>(),
        [(96, 16), (104, 24)],
        "count (odd n), upper (even n)"
    );
    let checkpoint = audit
        .checkpoint()
        .unwrap()
        .expect("a checkpoint of the head");
    assert_eq!(checkpoint.seq, audit.head().unwrap().unwrap().seq);
    audit.check_checkpoint(&checkpoint).unwrap().unwrap();
    // Prune everything but what is written from now on.
    let cut = warden_audit::time::now();
    std::thread::sleep(std::time::Duration::from_millis(5));
    audit
        .append(Event::new("tool.call", "local:late").outcome(Outcome::Ok))
        .await
        .unwrap();
    audit
        .prune(&cut, "local:admin")
        .unwrap()
        .expect("a prefix pruned");
    let report = audit.verify().unwrap();
    assert!(report.problem.is_none(), "{:?}", report.problem);
    assert!(report.anchor.is_some());
    assert_eq!(report.count, 2, "the late record and the prune's own");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    for durability in [Durability::Full, Durability::Process] {
        let path = dir.path().join(format!("{durability:?}.db"));
        the_log_works(Box::new(SqliteStore::open(&path).unwrap()), durability).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store() {
    let Some(cluster) = TestCluster::start() else {
        return;
    };
    for durability in [Durability::Full, Durability::Process] {
        let url = migrated(&cluster);
        the_log_works(Box::new(PgStore::open(&url).unwrap()), durability).await;
    }
}

/// Three nodes (each its own writer and connection, the same signing key) append at
/// once: one chain, every record once, no fork, and it verifies from any node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_append_to_one_chain() {
    let Some(cluster) = TestCluster::start() else {
        return;
    };
    let url = migrated(&cluster);
    // A cluster's nodes share the audit signing key (README, "Running a cluster").
    let key = "7a".repeat(32);
    let homes: Vec<_> = (0..3)
        .map(|_| {
            use std::os::unix::fs::OpenOptionsExt as _;
            let home = tempfile::tempdir().unwrap();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(home.path().join("audit.key"))
                .unwrap();
            std::io::Write::write_all(&mut file, key.as_bytes()).unwrap();
            home
        })
        .collect();
    let nodes: Vec<Audit> = homes
        .iter()
        .map(|home| {
            Audit::with_store(
                Box::new(PgStore::open(&url).unwrap()),
                home.path(),
                AuditOptions {
                    checkpoint_every: 100,
                    ..Default::default()
                },
            )
            .unwrap()
        })
        .collect();
    let mut tasks = Vec::new();
    for (node, audit) in nodes.iter().enumerate() {
        for task in 0..4 {
            let audit = audit.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..50 {
                    audit
                        .append(
                            Event::new("tool.call", format!("local:node{node}-{task}"))
                                .outcome(Outcome::Ok)
                                .field("n", n),
                        )
                        .await
                        .unwrap();
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    for audit in &nodes {
        let report = audit.verify().unwrap();
        assert!(report.problem.is_none(), "{:?}", report.problem);
        assert_eq!(report.count, 600);
        assert_eq!(report.head.unwrap().seq, 600);
    }
    let records = nodes[0].read(Filter::default()).unwrap();
    for window in records.windows(2) {
        assert_eq!(window[1].prev, window[0].hash, "one chain");
    }
}
