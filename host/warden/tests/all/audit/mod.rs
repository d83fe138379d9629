//! The audit log: a chain that verifies, and that names the record each kind of
//! tampering touched — in the SQLite file and in an export; checkpoints that catch a
//! truncated tail; pruning that keeps the rest verifiable; group commit under
//! concurrency; and the records the CLI's management commands write.

use std::path::Path;
use std::process::{Command, Output};

use rusqlite::{Connection, params};
use serde_json::Value;
use warden::audit::sqlite::SqliteStore;
use warden::audit::{
    Audit, AuditOptions, Event, Outcome, ProblemKind, Record, Report, verify_file,
};
use warden_tests::guests;

mod cli;
mod clock;
mod rewrite;

fn event(n: u64) -> Event {
    Event::new("tool.call", "local:test")
        .plugin("text")
        .tool("word-count")
        .outcome(Outcome::Ok)
        .field("n", n)
}

/// A home with a log of `n` records, the writer stopped.
fn home_with_log(n: u64) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let audit = Audit::open(home.path(), AuditOptions::default()).unwrap();
    for i in 1..=n {
        let record = audit.append_blocking(event(i)).unwrap();
        assert_eq!(record.seq, i);
    }
    home
}

fn db(home: &Path) -> Connection {
    Connection::open(home.join("audit.db")).unwrap()
}

fn verify(home: &Path) -> Report {
    Audit::open(home, AuditOptions::default())
        .unwrap()
        .verify()
        .unwrap()
}

#[track_caller]
fn assert_problem(report: &Report, seq: u64, kind: ProblemKind) {
    let problem = report.problem.as_ref().expect("a problem");
    assert_eq!((problem.seq, problem.kind), (Some(seq), kind), "{problem}");
    assert!(
        problem.to_string().starts_with(&format!("record {seq}: ")),
        "{problem}"
    );
}

fn record_at(conn: &Connection, seq: u64) -> Record {
    conn.query_row(
        "SELECT seq, time, kind, principal, plugin, tool, outcome, fields, prev, hash FROM records WHERE seq = ?1",
        [seq as i64],
        |row| {
            let fields: String = row.get(7)?;
            let outcome: Option<String> = row.get(6)?;
            Ok(Record {
                seq: row.get::<_, i64>(0)? as u64,
                time: row.get(1)?,
                kind: row.get(2)?,
                principal: row.get(3)?,
                plugin: row.get(4)?,
                tool: row.get(5)?,
                outcome: outcome.map(|o| o.parse().unwrap()),
                fields: serde_json::from_str(&fields).unwrap(),
                prev: row.get(8)?,
                hash: row.get(9)?,
            })
        },
    )
    .unwrap()
}

fn put(conn: &Connection, r: &Record) {
    conn.execute(
        "INSERT INTO records (seq, time, kind, principal, plugin, tool, outcome, fields, prev, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            r.seq as i64,
            r.time,
            r.kind,
            r.principal,
            r.plugin,
            r.tool,
            r.outcome.map(|o| o.as_str()),
            r.fields.to_string(),
            r.prev,
            r.hash
        ],
    )
    .unwrap();
}

#[test]
fn chain_verifies() {
    let home = home_with_log(10);
    let report = verify(home.path());
    assert!(report.problem.is_none(), "{:?}", report.problem);
    assert_eq!(report.count, 10);
    assert_eq!(report.head.unwrap().seq, 10);
}

#[test]
fn durability_is_full_in_wal_mode() {
    let home = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&home.path().join("audit.db")).unwrap();
    assert_eq!(store.pragma("synchronous").unwrap(), "2", "FULL");
    assert_eq!(store.pragma("journal_mode").unwrap(), "wal");
}

#[test]
fn edited_field_in_the_store_is_named() {
    let home = home_with_log(10);
    db(home.path())
        .execute(
            "UPDATE records SET principal = 'local:mallory' WHERE seq = 5",
            [],
        )
        .unwrap();
    assert_problem(&verify(home.path()), 5, ProblemKind::Changed);
}

#[test]
fn edited_and_rehashed_record_is_named() {
    let home = home_with_log(10);
    let conn = db(home.path());
    let mut r = record_at(&conn, 5);
    r.fields["n"] = 500.into();
    r.hash = r.compute_hash();
    conn.execute("DELETE FROM records WHERE seq = 5", [])
        .unwrap();
    put(&conn, &r);
    assert_problem(&verify(home.path()), 5, ProblemKind::Changed);
}

#[test]
fn deleted_record_is_named() {
    let home = home_with_log(10);
    db(home.path())
        .execute("DELETE FROM records WHERE seq = 5", [])
        .unwrap();
    assert_problem(&verify(home.path()), 5, ProblemKind::Removed);
}

#[test]
fn deleted_first_records_are_named() {
    let home = home_with_log(10);
    db(home.path())
        .execute("DELETE FROM records WHERE seq <= 3", [])
        .unwrap();
    let report = verify(home.path());
    assert_problem(&report, 1, ProblemKind::Removed);
    assert!(report.problem.unwrap().detail.contains("no prune anchor"));
}

#[test]
fn inserted_record_is_named() {
    let home = home_with_log(10);
    let conn = db(home.path());
    // Make room at 5, then add a forged record that links to 4 and hashes correctly.
    conn.execute("UPDATE records SET seq = seq + 1000 WHERE seq >= 5", [])
        .unwrap();
    conn.execute("UPDATE records SET seq = seq - 999 WHERE seq >= 1005", [])
        .unwrap();
    let four = record_at(&conn, 4);
    let forged = Record::new(5, four.time.clone(), event(99), four.hash);
    put(&conn, &forged);
    assert_problem(&verify(home.path()), 5, ProblemKind::Inserted);
}

#[test]
fn swapped_records_are_named() {
    let home = home_with_log(10);
    let conn = db(home.path());
    conn.execute_batch(
        "UPDATE records SET seq = -1 WHERE seq = 5;
         UPDATE records SET seq = 5 WHERE seq = 6;
         UPDATE records SET seq = 6 WHERE seq = -1;",
    )
    .unwrap();
    assert_problem(&verify(home.path()), 5, ProblemKind::Reordered);
}

#[test]
fn truncated_tail_is_caught_by_a_checkpoint() {
    let home = home_with_log(10);
    let audit = Audit::open(home.path(), AuditOptions::default()).unwrap();
    let checkpoint = audit.checkpoint().unwrap().unwrap();
    assert_eq!(checkpoint.seq, 10);
    assert!(audit.check_checkpoint(&checkpoint).unwrap().is_ok());
    drop(audit);

    db(home.path())
        .execute("DELETE FROM records WHERE seq >= 8", [])
        .unwrap();
    let audit = Audit::open(home.path(), AuditOptions::default()).unwrap();
    // The chain alone still holds, but the log's own checkpoint of record 10 does not:
    // verify checks every checkpoint the log holds.
    let problem = audit.verify().unwrap().problem.expect("truncation caught");
    assert_eq!(
        (problem.seq, problem.kind),
        (Some(10), ProblemKind::Removed),
        "{problem}"
    );
    // So does the checkpoint kept elsewhere.
    let problem = audit.check_checkpoint(&checkpoint).unwrap().unwrap_err();
    assert_eq!(
        (problem.seq, problem.kind),
        (Some(10), ProblemKind::Removed)
    );
    assert!(
        problem.to_string().contains("tail was truncated"),
        "{problem}"
    );

    let mut forged = checkpoint.clone();
    forged.seq = 7;
    let problem = audit.check_checkpoint(&forged).unwrap().unwrap_err();
    assert!(problem.to_string().contains("signature"), "{problem}");

    // Appending again after the truncation refills seq 8..10 with other records: the
    // stored checkpoint of record 10 now names a hash the log does not hold.
    for i in 0..5 {
        audit.append_blocking(event(100 + i)).unwrap();
    }
    let problem = audit
        .verify()
        .unwrap()
        .problem
        .expect("rewritten tail caught");
    assert_eq!(
        (problem.seq, problem.kind),
        (Some(10), ProblemKind::Changed),
        "{problem}"
    );
}

#[test]
fn a_checkpoint_signed_by_another_key_proves_nothing() {
    let home = home_with_log(5);
    let audit = Audit::open(home.path(), AuditOptions::default()).unwrap();
    let ours = audit.checkpoint().unwrap().unwrap();
    assert!(audit.check_checkpoint(&ours).unwrap().is_ok());
    // A checkpoint of the same record and hash, validly signed by a key of its own.
    let elsewhere = tempfile::tempdir().unwrap();
    let signer = warden::audit::checkpoint::Signer::load_or_create(elsewhere.path()).unwrap();
    let theirs = signer.sign(ours.seq, &ours.hash);
    theirs.verify_signature().unwrap();
    let problem = audit.check_checkpoint(&theirs).unwrap().unwrap_err();
    assert_eq!(problem.kind, ProblemKind::Changed);
    assert!(
        problem.to_string().contains("not by this log's audit key"),
        "{problem}"
    );
    // Stored in the log, it fails the log's own verification.
    drop(audit);
    db(home.path())
        .execute(
            "INSERT INTO checkpoints (seq, hash, time, signature, public_key) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![theirs.seq as i64, theirs.hash, theirs.time, theirs.signature, theirs.public_key],
        )
        .unwrap();
    let audit = Audit::open(home.path(), AuditOptions::default()).unwrap();
    let problem = audit
        .verify()
        .unwrap()
        .problem
        .expect("foreign checkpoint caught");
    assert!(
        problem.to_string().contains("not by this log's audit key"),
        "{problem}"
    );
}

#[test]
fn checkpoints_every_n_records_and_at_shutdown() {
    let home = tempfile::tempdir().unwrap();
    let options = AuditOptions {
        checkpoint_every: 4,
        ..AuditOptions::default()
    };
    let audit = Audit::open(home.path(), options).unwrap();
    for i in 1..=5 {
        audit.append_blocking(event(i)).unwrap();
    }
    assert_eq!(audit.latest_checkpoint().unwrap().unwrap().seq, 4);
    drop(audit);
    let audit = Audit::open(home.path(), AuditOptions::default()).unwrap();
    let latest = audit.latest_checkpoint().unwrap().unwrap();
    assert_eq!(latest.seq, 5, "signed at shutdown");
    latest.verify_signature().unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(home.path().join("audit.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn pruned_log_still_verifies_and_an_unanchored_prefix_does_not() {
    let home = home_with_log(5);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let cut = warden::audit::time::now();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let audit = Audit::open(home.path(), AuditOptions::default()).unwrap();
    for i in 6..=8 {
        audit.append_blocking(event(i)).unwrap();
    }
    let (anchor, record) = audit.prune(&cut, "local:test").unwrap().unwrap();
    assert_eq!(anchor.seq, 5);
    assert_eq!(record.seq, 9);
    assert_eq!(record.kind, "audit.anchor");
    assert_eq!(record.fields["seq"], 5);
    let report = audit.verify().unwrap();
    assert!(report.problem.is_none(), "{:?}", report.problem);
    assert_eq!((report.first, report.count), (Some(6), 4));

    // The export of a pruned log verifies on its own.
    let file = home.path().join("export.jsonl");
    audit
        .export(&mut std::fs::File::create(&file).unwrap())
        .unwrap();
    let (report, _) = verify_file(&file, None).unwrap();
    assert!(report.problem.is_none(), "{:?}", report.problem);
    drop(audit);

    // Without the anchor, the missing prefix shows.
    db(home.path()).execute("DELETE FROM anchors", []).unwrap();
    assert_problem(&verify(home.path()), 1, ProblemKind::Removed);
}

#[test]
fn prefix_removed_with_a_forged_anchor_row_is_caught() {
    let home = home_with_log(8);
    let conn = db(home.path());
    let three = record_at(&conn, 3);
    conn.execute("DELETE FROM records WHERE seq <= 3", [])
        .unwrap();
    conn.execute(
        "INSERT INTO anchors (seq, hash, time) VALUES (3, ?1, '2026-01-01T00:00:00.000Z')",
        [three.hash],
    )
    .unwrap();
    let report = verify(home.path());
    let problem = report.problem.expect("a problem");
    assert_eq!(problem.kind, ProblemKind::Anchor, "{problem}");
    assert!(problem.to_string().contains("audit.anchor"), "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_make_one_dense_chain() {
    let home = tempfile::tempdir().unwrap();
    let audit = Audit::open(home.path(), AuditOptions::default()).unwrap();
    let mut tasks = Vec::new();
    for task in 0..16u64 {
        let audit = audit.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..25 {
                seqs.push(audit.append(event(task * 100 + i)).await.unwrap().seq);
            }
            seqs
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.extend(task.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=400).collect::<Vec<u64>>());
    let report = tokio::task::block_in_place(|| audit.verify().unwrap());
    assert!(report.problem.is_none(), "{:?}", report.problem);
    assert_eq!(report.count, 400);
}

/// Exports a log of 10 and returns the home, the file's lines and its path.
fn exported() -> (tempfile::TempDir, Vec<String>, std::path::PathBuf) {
    let home = home_with_log(10);
    let audit = Audit::open(home.path(), AuditOptions::default()).unwrap();
    let mut out = Vec::new();
    assert_eq!(audit.export(&mut out).unwrap(), 10);
    let lines: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let path = home.path().join("export.jsonl");
    (home, lines, path)
}

fn verify_lines(path: &Path, lines: &[String]) -> Report {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
    verify_file(path, None).unwrap().0
}

#[test]
fn export_verifies_and_each_edit_is_named() {
    let (_home, lines, path) = exported();
    let report = verify_lines(&path, &lines);
    assert!(report.problem.is_none(), "{:?}", report.problem);
    assert_eq!(report.count, 10);

    let mut edited = lines.clone();
    edited[2] = edited[2].replace("local:test", "local:mallory");
    assert_problem(&verify_lines(&path, &edited), 3, ProblemKind::Changed);

    let mut removed = lines.clone();
    removed.remove(4);
    assert_problem(&verify_lines(&path, &removed), 5, ProblemKind::Removed);

    let mut swapped = lines.clone();
    swapped.swap(4, 5);
    assert_problem(&verify_lines(&path, &swapped), 6, ProblemKind::Reordered);

    let mut duplicated = lines.clone();
    duplicated.insert(5, lines[3].clone());
    assert_problem(&verify_lines(&path, &duplicated), 4, ProblemKind::Inserted);

    let mut garbage = lines.clone();
    garbage.insert(3, "{not json".into());
    let report = verify_lines(&path, &garbage);
    let problem = report.problem.unwrap();
    assert_eq!(problem.kind, ProblemKind::Malformed);
    assert!(problem.to_string().contains("line 4"), "{problem}");
}

#[test]
fn truncated_export_is_caught_by_a_checkpoint() {
    let (home, lines, path) = exported();
    let audit = Audit::open(home.path(), AuditOptions::default()).unwrap();
    let checkpoint = audit.checkpoint().unwrap().unwrap();
    std::fs::write(&path, lines[..7].join("\n")).unwrap();
    let (report, checked) = verify_file(&path, Some(&checkpoint)).unwrap();
    assert!(report.problem.is_none());
    let problem = checked.unwrap().unwrap_err();
    assert_eq!(
        (problem.seq, problem.kind),
        (Some(10), ProblemKind::Removed)
    );
}

#[test]
fn corrupted_database_is_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("audit.db"), vec![0x5a; 8192]).unwrap();
    let err = format!(
        "{:#}",
        Audit::open(home.path(), AuditOptions::default())
            .err()
            .expect("an error")
    );
    assert!(err.contains("audit.db"), "{err}");
    assert!(err.contains("move it aside"), "{err}");
}

#[test]
fn payloads_are_digests_unless_kept() {
    let home = tempfile::tempdir().unwrap();
    let args = serde_json::json!({"text": "secret-ish"});
    let digest_only = Audit::open(home.path(), AuditOptions::default())
        .unwrap()
        .payload(&args);
    assert!(digest_only.get("value").is_none());
    assert!(
        digest_only["sha256"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let kept = Audit::open(
        home.path(),
        AuditOptions {
            keep_payloads: true,
            ..AuditOptions::default()
        },
    )
    .unwrap()
    .payload(&args);
    assert_eq!(kept["value"], args);
    assert_eq!(kept["sha256"], digest_only["sha256"]);
}

// The CLI, through the binary.
