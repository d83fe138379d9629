//! The journal: what callers write, what a writer commits from it, and what is left
//! of it after a process that owned it dies.

use std::path::Path;

use super::*;
use crate::sqlite::SqliteStore;
use crate::store::{Filter, Store as _};
use crate::{Audit, AuditOptions, Durability};

fn event(n: u64) -> Event {
    Event::new("test.event", "local:test").field("n", n)
}

fn options(durability: Durability) -> AuditOptions {
    AuditOptions {
        durability,
        ..AuditOptions::default()
    }
}

fn journal_len(home: &Path) -> u64 {
    std::fs::metadata(home.join(FILE_NAME)).map_or(0, |m| m.len())
}

fn seqs_and_ns(home: &Path) -> Vec<(u64, u64)> {
    let mut store = SqliteStore::open(&home.join("audit.db")).unwrap();
    store
        .read(&Filter::default())
        .unwrap()
        .iter()
        .map(|r| (r.seq, r.fields["n"].as_u64().unwrap()))
        .collect()
}

/// Journals `events` the way a process that owns the journal does, and dies without
/// its writer committing them (the lock goes with the process; the lines stay).
fn journal_and_die(home: &Path, events: impl IntoIterator<Item = Event>) -> String {
    let owned = take(&home.join(FILE_NAME), true).unwrap().unwrap();
    let mut journal = owned.into_journal().unwrap();
    let events: Vec<_> = events.into_iter().map(|e| (e, None)).collect();
    journal.write(events).unwrap();
    journal.generation.clone()
}

#[test]
fn a_callers_records_are_journaled_at_once_and_read_verified_and_committed_in_order() {
    let home = tempfile::tempdir().unwrap();
    let audit = Audit::open(home.path(), options(Durability::Process)).unwrap();
    assert!(audit.inner.journal.is_some(), "process durability journals");
    for n in 0..5 {
        let pending = audit
            .submit_all(vec![event(n * 2), event(n * 2 + 1)])
            .unwrap();
        assert!(pending.iter().all(|p| p.0.is_none()), "written already");
    }
    // A read takes every line journaled before it.
    let records = audit.read(Filter::default()).unwrap();
    let ns: Vec<u64> = records
        .iter()
        .map(|r| r.fields["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, (0..10).collect::<Vec<_>>());
    assert!(audit.verify().unwrap().problem.is_none());
    // A caller that wants the record itself gets it once it is committed.
    let record = audit.append_blocking(event(10)).unwrap();
    assert_eq!(record.seq, 11);
    drop(audit);
    assert_eq!(journal_len(home.path()), 0, "emptied once committed");
    let mut store = SqliteStore::open(&home.path().join("audit.db")).unwrap();
    assert_eq!(store.journal_mark().unwrap().map(|m| m.line), Some(11));
}

#[test]
fn a_journal_left_by_a_process_that_died_is_committed_once_with_its_own_times() {
    let home = tempfile::tempdir().unwrap();
    Audit::open(home.path(), options(Durability::Full))
        .unwrap()
        .append_blocking(event(0))
        .unwrap();
    journal_and_die(home.path(), (1..4).map(event));
    let text = std::fs::read_to_string(home.path().join(FILE_NAME)).unwrap();
    let time = serde_json::from_str::<Value>(text.lines().next().unwrap()).unwrap()["time"]
        .as_str()
        .unwrap()
        .to_string();
    // A command with full durability (`warden audit verify`) recovers it too, and
    // keeps no journal of its own.
    let audit = Audit::open(home.path(), options(Durability::Full)).unwrap();
    assert!(audit.inner.journal.is_none());
    let records = audit.read(Filter::default()).unwrap();
    assert_eq!(records.len(), 4);
    assert_eq!(records[1].time, time, "the record keeps its journal time");
    assert!(audit.verify().unwrap().problem.is_none());
    drop(audit);
    assert_eq!(journal_len(home.path()), 0);
    drop(Audit::open(home.path(), options(Durability::Process)).unwrap());
    assert_eq!(seqs_and_ns(home.path()), [(1, 0), (2, 1), (3, 2), (4, 3)]);
}

#[test]
fn lines_a_store_already_holds_are_not_committed_again() {
    let home = tempfile::tempdir().unwrap();
    let audit = Audit::open(home.path(), options(Durability::Process)).unwrap();
    for n in 0..3 {
        audit.append_blocking(event(n)).unwrap();
    }
    drop(audit);
    let mut store = SqliteStore::open(&home.path().join("audit.db")).unwrap();
    let mark = store.journal_mark().unwrap().unwrap();
    assert_eq!(mark.line, 3);
    drop(store);
    // The process died after its commit and before it emptied the journal, with one
    // more line written: only that one is new.
    let mut text = Vec::new();
    for n in 0..4 {
        encode(
            &mut text,
            &mark.generation,
            n + 1,
            &crate::time::now(),
            &event(n),
        );
    }
    std::fs::write(home.path().join(FILE_NAME), text).unwrap();
    drop(Audit::open(home.path(), options(Durability::Full)).unwrap());
    assert_eq!(seqs_and_ns(home.path()), [(1, 0), (2, 1), (3, 2), (4, 3)]);
}

#[test]
fn a_torn_last_line_is_left_out_and_a_bad_line_before_good_ones_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join(FILE_NAME);
    let mut text = Vec::new();
    encode(&mut text, "g1", 1, &crate::time::now(), &event(1));
    let good = text.clone();
    text.extend_from_slice(br#"{"g":"g1","n":2,"ti"#);
    std::fs::write(&path, &text).unwrap();
    drop(Audit::open(home.path(), options(Durability::Full)).unwrap());
    assert_eq!(seqs_and_ns(home.path()), [(1, 1)]);

    let mut text = b"{\"g\":\"g2\",\"n\":1,\"time\":\n".to_vec();
    encode(&mut text, "g2", 2, &crate::time::now(), &event(2));
    std::fs::write(&path, &text).unwrap();
    let err = Audit::open(home.path(), options(Durability::Process))
        .err()
        .expect("a bad line before a good one is refused");
    let message = err.to_string();
    assert!(
        message.contains("line 1 of the audit journal") && message.contains(FILE_NAME),
        "{message}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        text,
        "the journal is kept as it was"
    );
    assert_ne!(text, good);
}

#[test]
fn a_second_process_appends_through_its_writer_while_the_first_owns_the_journal() {
    let home = tempfile::tempdir().unwrap();
    let first = Audit::open(home.path(), options(Durability::Process)).unwrap();
    let second = Audit::open(home.path(), options(Durability::Process)).unwrap();
    assert!(first.inner.journal.is_some());
    assert!(second.inner.journal.is_none(), "the journal has one owner");
    for n in 0..6 {
        let audit = if n % 2 == 0 { &first } else { &second };
        audit.append_blocking(event(n)).unwrap();
        let _ = audit.submit(event(100 + n)).unwrap();
    }
    drop(first);
    drop(second);
    let records = seqs_and_ns(home.path());
    assert_eq!(records.len(), 12);
    assert!(
        Audit::open(home.path(), options(Durability::Full))
            .unwrap()
            .verify()
            .unwrap()
            .problem
            .is_none()
    );
}

#[test]
fn the_journal_is_its_owners_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join(FILE_NAME);
    let audit = Audit::open(home.path(), options(Durability::Process)).unwrap();
    let mode = || std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(), 0o600);
    drop(audit);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    drop(Audit::open(home.path(), options(Durability::Full)).unwrap());
    assert_eq!(mode(), 0o600, "tightened when it is opened");
}

#[test]
fn a_long_journal_with_lines_waiting_is_rewritten_with_just_those_and_stays_locked() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join(FILE_NAME);
    let owned = take(&path, true).unwrap().unwrap();
    let mut journal = owned.into_journal().unwrap();
    // Lines the writer has taken (and committed), past the size that compacts…
    let big = "x".repeat(4096);
    let taken: Vec<_> = (0..300)
        .map(|n| (event(n).field("pad", big.as_str()), None))
        .collect();
    journal.write(taken).unwrap();
    assert!(journal.take().is_some());
    assert!(journal.len >= COMPACT_AT);
    // …and two that came in meanwhile, not yet committed.
    journal
        .write(vec![(event(300), None), (event(301), None)])
        .unwrap();
    journal.committed();
    let text = std::fs::read(&path).unwrap();
    let lines = parse(&path, &text).unwrap();
    let ns: Vec<u64> = lines
        .iter()
        .map(|l| l.event.fields["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, [300, 301]);
    assert_eq!(
        lines.iter().map(|l| l.mark.line).collect::<Vec<_>>(),
        [301, 302]
    );
    assert_eq!(journal.len, text.len() as u64);
    // The new file is the one locked: another owner cannot take it.
    assert!(take(&path, true).unwrap().is_none());
    // Lines written after the rewrite go to the new file.
    journal.write(vec![(event(302), None)]).unwrap();
    let text = std::fs::read(&path).unwrap();
    assert_eq!(parse(&path, &text).unwrap().len(), 3);
}
