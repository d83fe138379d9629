//! The audit log through the `warden` binary: records of management commands, verify, export and checkpoint exit codes.

use super::*;

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

    // A truncated tail: the chain holds, the checkpoints do not (the log's own, and
    // the one kept elsewhere).
    db(h)
        .execute("DELETE FROM records WHERE seq = 6", [])
        .unwrap();
    let out = warden(h, &["audit", "verify"]);
    expect(&out, 1);
    assert!(
        stderr(&out).contains("record 6: removed") && stderr(&out).contains("truncated"),
        "{}",
        stderr(&out)
    );
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

/// The bytes of the home's log files (the database, its write-ahead log and the
/// journal).
fn log_bytes(home: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(home.join("audit.db")).unwrap();
    for other in ["audit.db-wal", "audit.journal"] {
        bytes.extend(std::fs::read(home.join(other)).unwrap_or_default());
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn payloads_are_kept_only_with_the_setting_or_the_environment() {
    const MARK: &str = "zebra-quokka-4417";
    let input = format!(r#"{{"text": "{MARK} {MARK}"}}"#);
    let args: Value = serde_json::from_str(&input).unwrap();
    let sha = warden::audit::digest(&warden::audit::canonical::to_vec(&args));
    let run_with = |keep: Option<&str>, config: &str| {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        expect(
            &warden(h, &["plugin", "add", guests::TEXT, "--name", "text"]),
            0,
        );
        std::fs::write(h.join("warden.toml"), config).unwrap();
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
    let run = |keep: Option<&str>| run_with(keep, "");

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

    // `[audit] keep_content` in warden.toml sets it; the environment overrides the file.
    const KEEP: &str = "[audit]\nkeep_content = true\n";
    let bytes = log_bytes(run_with(None, KEEP).path());
    assert!(contains(&bytes, MARK), "keep_content = true: not kept");
    let bytes = log_bytes(run_with(Some("0"), KEEP).path());
    assert!(
        !contains(&bytes, MARK),
        "WARDEN_AUDIT_KEEP_PAYLOADS=0: kept"
    );

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

    // A misspelled key in `[audit]` is named, with the file.
    std::fs::write(
        home.path().join("warden.toml"),
        "[audit]\nkeep_contents = true\n",
    )
    .unwrap();
    let out = warden(
        home.path(),
        &["plugin", "add", guests::TEXT, "--name", "text"],
    );
    expect(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("keep_contents") && err.contains("warden.toml"),
        "{err}"
    );
}

/// The home's databases hold what tools were called with and answered, and the
/// home holds the audit key and token hashes: none of it is readable by others.
#[test]
fn the_home_and_its_databases_are_the_owners_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let root = tempfile::tempdir().unwrap();
    let h = root.path().join("home");
    expect(
        &warden(&h, &["plugin", "add", guests::TEXT, "--name", "text"]),
        0,
    );
    expect(
        &warden(
            &h,
            &["call", "text/word-count", "--input", r#"{"text": "a b"}"#],
        ),
        0,
    );
    expect(&warden(&h, &["audit", "checkpoint"]), 0);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&h), 0o700, "the home");
    for file in ["audit.db", "audit.key", "budgets.db"] {
        let path = h.join(file);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{file}");
        }
    }
    assert_eq!(mode(&h.join("audit.db")), 0o600);
    // One made readable by others (an older Warden, a careless copy) is tightened.
    std::fs::set_permissions(h.join("audit.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    expect(&warden(&h, &["audit", "verify"]), 0);
    assert_eq!(mode(&h.join("audit.db")), 0o600);
}

/// Deleting the newest records leaves a chain that still links; the checkpoints the
/// log holds do not, and `audit verify` says so.
#[test]
fn verify_catches_a_truncated_tail_by_the_logs_own_checkpoints() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    expect(
        &warden(h, &["plugin", "add", guests::TEXT, "--name", "text"]),
        0,
    );
    for _ in 0..3 {
        expect(
            &warden(
                h,
                &["call", "text/word-count", "--input", r#"{"text": "a b"}"#],
            ),
            0,
        );
    }
    expect(&warden(h, &["audit", "verify"]), 0);
    let head: i64 = db(h)
        .query_row("SELECT MAX(seq) FROM records", [], |r| r.get(0))
        .unwrap();
    db(h)
        .execute("DELETE FROM records WHERE seq >= ?1", [head - 1])
        .unwrap();
    let out = warden(h, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("tail was truncated"),
        "{}",
        stderr(&out)
    );
}
