//! Fuzzing verification of an export (JSON Lines) with generated input (proptest): an
//! export with one byte changed, or lines of anything, is judged without a panic, and
//! one that changes what a record says never verifies. `PROPTEST_CASES=100000 cargo
//! test -p warden-audit fuzz` runs long; CI runs the default 256 cases a target.

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::json;

use super::record::{Event, GENESIS, Outcome, Record};
use super::verify_file;

/// An export of 12 chained records, made once.
fn export() -> &'static str {
    static EXPORT: OnceLock<String> = OnceLock::new();
    EXPORT.get_or_init(|| {
        let mut prev = GENESIS.to_string();
        let mut lines = Vec::new();
        for seq in 1..=12u64 {
            let event = Event::new("tool.call", format!("token:t{seq}"))
                .plugin("text")
                .tool("word-count")
                .outcome(if seq % 3 == 0 {
                    Outcome::Error
                } else {
                    Outcome::Ok
                })
                .field("call", seq)
                .field(
                    "arguments",
                    json!({"sha256": "ab".repeat(32), "bytes": seq * 7}),
                );
            let record = Record::new(
                seq,
                format!("2026-12-03T10:00:{seq:02}.000000Z"),
                event,
                prev,
            );
            prev = record.hash.clone();
            lines.push(serde_json::to_string(&record).unwrap());
        }
        lines.join("\n") + "\n"
    })
}

/// Verifies `text` as an export file.
fn verify(text: &str) -> super::Report {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.jsonl");
    std::fs::write(&path, text).unwrap();
    verify_file(&path, None).unwrap().0
}

proptest! {
    #[test]
    fn fuzz_a_changed_byte_never_verifies_a_changed_record(at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let original = export().as_bytes();
        let at = at.index(original.len());
        let mut changed = original.to_vec();
        changed[at] = byte;
        let Ok(text) = String::from_utf8(changed) else {
            return Ok(());
        };
        let report = verify(&text);
        // Judged as the same log only if every line still means the same record.
        let same = text.lines().zip(export().lines()).all(|(a, b)| {
            serde_json::from_str::<Record>(a).ok() == serde_json::from_str::<Record>(b).ok()
        }) && text.lines().count() == export().lines().count();
        if !same {
            prop_assert!(report.problem.is_some(), "byte {at} set to {byte}: verified\n{text}");
        }
    }

    #[test]
    fn fuzz_lines_of_anything_are_judged_without_a_panic(lines in proptest::collection::vec(any::<String>(), 1..6)) {
        let text = lines.join("\n");
        let report = verify(&text);
        if text.lines().any(|l| !l.trim().is_empty()) {
            prop_assert!(report.problem.is_some() || report.count > 0);
        }
    }
}

#[test]
fn the_fuzzed_export_verifies_unchanged() {
    let report = verify(export());
    assert!(report.problem.is_none(), "{:?}", report.problem);
    assert_eq!(report.count, 12);
}
