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
    // The chain alone still holds…
    assert!(audit.verify().unwrap().problem.is_none());
    // …the checkpoint does not.
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

fn warden(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("RUST_LOG")
        .env("USER", "auditor")
        .output()
        .expect("running warden")
}

#[track_caller]
fn expect(out: &Output, code: i32) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn management_commands_are_on_record() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    expect(
        &warden(h, &["plugin", "add", guests::TEXT, "--name", "text"]),
        0,
    );
    expect(
        &warden(h, &["plugin", "add", guests::TEXT, "--name", "text"]),
        0,
    );
    let grant = h.join("text.toml");
    std::fs::write(
        &grant,
        "plugin = \"text\"\n[env]\nvars = { LANG = \"C\" }\n",
    )
    .unwrap();
    expect(
        &warden(h, &["grant", "set", "text", grant.to_str().unwrap()]),
        0,
    );
    expect(&warden(h, &["plugin", "remove", "text"]), 0);

    let out = expect(&warden(h, &["audit", "query", "--json"]), 0);
    let records: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["plugin.add", "plugin.replace", "grant.set", "plugin.remove"]
    );
    for r in &records {
        assert_eq!(r["principal"], "local:auditor");
        assert_eq!(r["plugin"], "text");
        assert_eq!(r["outcome"], "ok");
    }
    let digest = records[0]["fields"]["digest"].as_str().unwrap();
    assert!(digest.starts_with("sha256:"));
    assert_eq!(records[1]["fields"]["old_digest"], digest);
    assert_eq!(records[3]["fields"]["digest"], digest);
    let set = &records[2]["fields"];
    assert_eq!(set["old"], Value::Null);
    assert!(set["new"].as_str().unwrap().contains("LANG = \"C\""));
    assert!(set["new_sha256"].as_str().unwrap().starts_with("sha256:"));

    // Human-readable: one line a record.
    let out = expect(&warden(h, &["audit", "tail", "-n", "2"]), 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].contains("grant.set") && lines[0].contains("local:auditor"));
    assert!(lines[1].contains("plugin.remove"));

    let out = expect(
        &warden(
            h,
            &["audit", "query", "--kind", "plugin.add", "--since", "1h"],
        ),
        0,
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    let out = expect(&warden(h, &["audit", "query", "--until", "2000-01-01"]), 0);
    assert_eq!(out, "");
}

#[test]
fn cli_verify_export_checkpoint_and_exit_codes() {
    let home = home_with_log(6);
    let h = home.path();
    let out = expect(&warden(h, &["audit", "verify"]), 0);
    assert!(out.starts_with("ok: 6 records intact (1..=6)"), "{out}");

    let checkpoint = h.join("checkpoint.json");
    let out = expect(&warden(h, &["audit", "checkpoint"]), 0);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["seq"], 6);
    std::fs::write(&checkpoint, &out).unwrap();

    let export = h.join("audit.jsonl");
    expect(
        &warden(h, &["audit", "export", "--out", export.to_str().unwrap()]),
        0,
    );
    let out = warden(h, &["audit", "export", "--out", export.to_str().unwrap()]);
    expect(&out, 2);
    assert!(stderr(&out).contains("choose another --out"));
    let out = expect(
        &warden(
            h,
            &[
                "audit",
                "verify",
                "--file",
                export.to_str().unwrap(),
                "--checkpoint",
                checkpoint.to_str().unwrap(),
            ],
        ),
        0,
    );
    assert!(out.contains("ok: 6 records intact"), "{out}");
    assert!(out.contains("checkpoint of record 6"), "{out}");

    // An edited line: exit 1, the record named.
    let text = std::fs::read_to_string(&export).unwrap();
    let edited: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 3 {
                l.replace("\"n\":4", "\"n\":40")
            } else {
                l.into()
            }
        })
        .collect();
    std::fs::write(&export, edited.join("\n")).unwrap();
    let out = warden(h, &["audit", "verify", "--file", export.to_str().unwrap()]);
    expect(&out, 1);
    assert!(
        stderr(&out).contains("record 4: changed"),
        "{}",
        stderr(&out)
    );

    // A truncated tail: the chain holds, the checkpoint does not.
    db(h)
        .execute("DELETE FROM records WHERE seq = 6", [])
        .unwrap();
    expect(&warden(h, &["audit", "verify"]), 0);
    let out = warden(
        h,
        &[
            "audit",
            "verify",
            "--checkpoint",
            checkpoint.to_str().unwrap(),
        ],
    );
    expect(&out, 1);
    assert!(
        stderr(&out).contains("record 6: removed") && stderr(&out).contains("truncated"),
        "{}",
        stderr(&out)
    );

    // An edited record: exit 1, and no checkpoint is signed over it.
    db(h)
        .execute("UPDATE records SET kind = 'x' WHERE seq = 2", [])
        .unwrap();
    let out = warden(h, &["audit", "verify"]);
    expect(&out, 1);
    assert!(
        stderr(&out).contains("record 2: changed"),
        "{}",
        stderr(&out)
    );
    let out = warden(h, &["audit", "checkpoint"]);
    expect(&out, 1);
    assert!(stderr(&out).contains("not signing"), "{}", stderr(&out));
}

#[test]
fn cli_prune_and_bad_input() {
    let home = home_with_log(3);
    let h = home.path();
    let out = warden(h, &["audit", "prune", "--before", "someday"]);
    expect(&out, 2);
    assert!(stderr(&out).contains("use RFC 3339"), "{}", stderr(&out));
    let out = expect(&warden(h, &["audit", "prune", "--before", "2000-01-01"]), 0);
    assert!(out.contains("nothing pruned"), "{out}");
    let out = expect(&warden(h, &["audit", "prune", "--before", "2999-01-01"]), 0);
    assert!(out.contains("pruned records up to 3"), "{out}");
    let out = expect(&warden(h, &["audit", "verify"]), 0);
    assert!(out.contains("after a prune anchor at record 3"), "{out}");

    let out = warden(h, &["audit", "query", "--outcome", "maybe"]);
    expect(&out, 2);
    let empty = tempfile::tempdir().unwrap();
    let out = warden(empty.path(), &["audit", "tail"]);
    expect(&out, 2);
    assert!(stderr(&out).contains("no audit log at"), "{}", stderr(&out));
}

#[test]
fn tail_follow_shows_new_records() {
    use std::io::BufRead as _;
    let home = home_with_log(2);
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(home.path())
        .args(["audit", "tail", "-f", "--json", "-n", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("running warden");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["seq"], 2);
    let audit = Audit::open(home.path(), AuditOptions::default()).unwrap();
    audit.append_blocking(event(3)).unwrap();
    let next: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(next["seq"], 3);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn stats_count_by_kind_outcome_and_tool() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let out = warden(h, &["audit", "stats"]);
    expect(&out, 2);
    assert!(stderr(&out).contains("no audit log at"), "{}", stderr(&out));

    let audit = Audit::open(h, AuditOptions::default()).unwrap();
    for (kind, plugin, tool, outcome) in [
        ("tool.call", "text", "word-count", Outcome::Ok),
        ("tool.call", "text", "word-count", Outcome::Ok),
        ("tool.call", "text", "word-count", Outcome::Error),
        ("capability.denied", "fetch", "get", Outcome::Denied),
        ("tool.call", "fetch", "get", Outcome::Denied),
    ] {
        audit
            .append_blocking(
                Event::new(kind, "local:test")
                    .plugin(plugin)
                    .tool(tool)
                    .outcome(outcome),
            )
            .unwrap();
    }
    audit
        .append_blocking(Event::new("plugin.remove", "local:test").plugin("old"))
        .unwrap();
    let checkpoint = audit.checkpoint().unwrap().unwrap();
    drop(audit);

    let out = expect(&warden(h, &["audit", "stats", "--json"]), 0);
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["records"], 6, "{stats:#}");
    assert_eq!(stats["kinds"]["tool.call"], 4);
    assert_eq!(stats["kinds"]["capability.denied"], 1);
    assert_eq!(stats["kinds"]["plugin.remove"], 1);
    assert_eq!(stats["outcomes"]["ok"], 2);
    assert_eq!(stats["outcomes"]["error"], 1);
    assert_eq!(stats["outcomes"]["denied"], 2);
    assert_eq!(stats["outcomes"]["none"], 1);
    let tools = stats["tools"].as_array().unwrap();
    let wc = tools
        .iter()
        .find(|t| t["plugin"] == "text" && t["tool"] == "word-count")
        .unwrap();
    assert_eq!(
        (
            &wc["records"],
            &wc["calls"],
            &wc["ok"],
            &wc["errors"],
            &wc["denied"]
        ),
        (&json(3), &json(3), &json(2), &json(1), &json(0))
    );
    let get = tools.iter().find(|t| t["plugin"] == "fetch").unwrap();
    assert_eq!((&get["calls"], &get["denied"]), (&json(1), &json(2)));
    assert!(stats["first"].as_str().unwrap() <= stats["last"].as_str().unwrap());
    assert_eq!(stats["head"]["seq"], 6);
    assert_eq!(stats["checkpoint"]["seq"], checkpoint.seq);
    assert_eq!(stats["checkpoint"]["time"], checkpoint.time.as_str());

    // For people: the same, one block.
    let out = expect(&warden(h, &["audit", "stats"]), 0);
    assert!(out.contains("records     6"), "{out}");
    assert!(out.contains("head        record 6"), "{out}");
    assert!(out.contains("checkpoint  record 6"), "{out}");
    assert!(out.contains("tool.call 4"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("text/word-count") && l.split_whitespace().count() == 6),
        "{out}"
    );

    // A period with nothing in it; a bad bound.
    let out = expect(
        &warden(h, &["audit", "stats", "--json", "--until", "2000-01-01"]),
        0,
    );
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["records"], 0);
    assert_eq!(stats["first"], Value::Null);
    assert_eq!(
        stats["head"]["seq"], 6,
        "the head is the log's, not the period's"
    );
    let out = warden(h, &["audit", "stats", "--since", "someday"]);
    expect(&out, 2);
}

fn json(n: u64) -> Value {
    Value::from(n)
}

/// The bytes of the home's log files (the database and its write-ahead log).
fn log_bytes(home: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(home.join("audit.db")).unwrap();
    bytes.extend(std::fs::read(home.join("audit.db-wal")).unwrap_or_default());
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn payloads_are_kept_only_with_the_environment_setting() {
    const MARK: &str = "zebra-quokka-4417";
    let input = format!(r#"{{"text": "{MARK} {MARK}"}}"#);
    let args: Value = serde_json::from_str(&input).unwrap();
    let sha = warden::audit::digest(&warden::audit::canonical::to_vec(&args));
    let run = |keep: Option<&str>| {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        expect(
            &warden(h, &["plugin", "add", guests::TEXT, "--name", "text"]),
            0,
        );
        let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
        command
            .arg("--home")
            .arg(h)
            .args(["call", "text/word-count", "--input", &input])
            .env_remove("RUST_LOG")
            .env_remove("WARDEN_AUDIT_KEEP_PAYLOADS");
        if let Some(keep) = keep {
            command.env("WARDEN_AUDIT_KEEP_PAYLOADS", keep);
        }
        let out = expect(&command.output().unwrap(), 0);
        assert!(out.contains("\"words\": 2"), "{out}");
        home
    };

    // Off (unset, or 0): the arguments are in the log only as their digest.
    for keep in [None, Some("0")] {
        let home = run(keep);
        let bytes = log_bytes(home.path());
        assert!(
            !contains(&bytes, MARK),
            "{keep:?}: the argument is in audit.db"
        );
        assert!(contains(&bytes, &sha), "{keep:?}: the digest is not");
    }

    // On: the arguments too, with their digest.
    let home = run(Some("1"));
    let bytes = log_bytes(home.path());
    assert!(contains(&bytes, MARK), "the argument is not in audit.db");
    assert!(contains(&bytes, &sha));
    let out = expect(
        &warden(
            home.path(),
            &["audit", "query", "--kind", "tool.call", "--json"],
        ),
        0,
    );
    let record: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(record["fields"]["arguments"]["value"], args);
    assert_eq!(record["fields"]["arguments"]["sha256"], sha.as_str());

    // Anything else is refused, before the command acts.
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(home.path())
        .args(["plugin", "add", guests::TEXT, "--name", "text"])
        .env("WARDEN_AUDIT_KEEP_PAYLOADS", "maybe")
        .output()
        .unwrap();
    expect(&out, 2);
    assert!(
        stderr(&out).contains("WARDEN_AUDIT_KEEP_PAYLOADS"),
        "{}",
        stderr(&out)
    );
}
