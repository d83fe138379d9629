//! Clock games (catalog item 68): records dated back in time, with the chain intact
//! (a clock set back, or records written by whoever holds the log and chose their
//! dates). Sequence numbers order the log, so the chain verifies; `verify` names each
//! record dated more than `CLOCK_TOLERANCE_MS` (1 s) before one ahead of it, as a
//! warning, and lets a smaller step back (an NTP correction) pass.

use std::path::Path;
use std::process::Command;

use warden::audit::{Audit, AuditOptions, CLOCK_TOLERANCE_MS, GENESIS, Record, verify_file};

use super::{db, event, put, verify};

/// Records 1..=n chained, dated `times`.
fn chain(times: &[&str]) -> Vec<Record> {
    let mut prev = GENESIS.to_string();
    let mut records = Vec::new();
    for (i, time) in times.iter().enumerate() {
        let seq = i as u64 + 1;
        let record = Record::new(seq, (*time).to_string(), event(seq), prev);
        prev = record.hash.clone();
        records.push(record);
    }
    records
}

const TIMES: [&str; 8] = [
    "2026-12-04T10:00:00.000Z",
    "2026-12-04T10:00:01.000Z",
    "2026-12-04T10:00:02.000Z",
    // Back 0.5 s: a clock correction, tolerated.
    "2026-12-04T10:00:01.500Z",
    "2026-12-04T10:00:03.000Z",
    // Back an hour: a warning.
    "2026-12-04T09:00:03.000Z",
    "2026-12-04T10:00:04.000Z",
    // Not a record time at all: a warning.
    "yesterday",
];

fn assert_warnings(report: &warden::audit::Report) {
    assert!(report.problem.is_none(), "{:?}", report.problem);
    assert_eq!(report.count, 8);
    assert_eq!(report.time_warnings_total, 2, "{:#?}", report.time_warnings);
    let [hour, unreadable] = &report.time_warnings[..] else {
        panic!("{:#?}", report.time_warnings);
    };
    assert_eq!(hour.seq, 6);
    assert_eq!(
        hour.to_string(),
        "record 6: dated 2026-12-04T09:00:03.000Z, 3600.000 s before record 5 (2026-12-04T10:00:03.000Z) that comes ahead of it: the clock was set back, or the record was dated by hand"
    );
    assert_eq!(unreadable.seq, 8);
    assert!(
        unreadable
            .detail
            .contains("\"yesterday\" is not a record time"),
        "{unreadable}"
    );
}

#[test]
fn records_dated_back_in_time_are_warnings_beyond_a_second_and_the_chain_verifies() {
    assert_eq!(CLOCK_TOLERANCE_MS, 1000);
    let records = chain(&TIMES);

    // An export.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.jsonl");
    let lines: Vec<String> = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    assert_warnings(&verify_file(&path, None).unwrap().0);

    // The same records in a store.
    let home = tempfile::tempdir().unwrap();
    drop(Audit::open(home.path(), AuditOptions::default()).unwrap());
    let conn = db(home.path());
    for record in &records {
        put(&conn, record);
    }
    drop(conn);
    assert_warnings(&verify(home.path()));

    // `warden audit verify` passes, and says which records are dated back, on stderr.
    for args in [vec!["--file", path.to_str().unwrap()], vec![]] {
        let out = warden_audit_verify(home.path(), &args);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{args:?}: {stdout}{stderr}");
        assert!(stdout.starts_with("ok: 8 records intact"), "{stdout}");
        assert!(
            stderr
                .contains(": record 6: dated 2026-12-04T09:00:03.000Z, 3600.000 s before record 5"),
            "{stderr}"
        );
        assert!(
            stderr.contains(": record 8: its time \"yesterday\""),
            "{stderr}"
        );
        assert!(
            stderr.contains("up to 1000 ms before one ahead of it is not flagged"),
            "{stderr}"
        );
        assert!(!stderr.contains("record 4"), "{stderr}");
    }
}

fn warden_audit_verify(home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(home)
        .args(["audit", "verify"])
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}
