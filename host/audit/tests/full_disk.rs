//! A journal write that fails part way, as on a full disk: the part written is cut off,
//! the caller is told, and the records before and after it are whole.
//!
//! The disk fills on command through the file size limit (`RLIMIT_FSIZE`): a `write`
//! that would pass it writes up to it and the next one fails (`EFBIG`). The limit is
//! the process's, so this test has a binary of its own.

use std::path::Path;

use warden_audit::journal::FILE_NAME;
use warden_audit::{Audit, AuditError, AuditOptions, Durability, Event, Filter};

fn event(n: u64) -> Event {
    Event::new("test.event", "local:test").field("n", n)
}

fn journal_len(home: &Path) -> u64 {
    std::fs::metadata(home.join(FILE_NAME)).map_or(0, |m| m.len())
}

/// Sets the soft file size limit (the hard one stays), and returns the one before.
#[expect(unsafe_code, reason = "two libc calls with plain out-parameters")]
fn limit_file_size(bytes: libc::rlim_t) -> libc::rlim_t {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a plain out-parameter of the right type.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit) },
        0
    );
    let before = limit.rlim_cur;
    limit.rlim_cur = bytes.min(limit.rlim_max);
    // SAFETY: as above; only the soft limit changes, within the hard one.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &limit) }, 0);
    before
}

#[test]
#[expect(
    unsafe_code,
    reason = "one libc call, before the audit log's threads exist"
)]
fn a_journal_line_written_in_part_is_cut_off_and_the_log_goes_on_whole() {
    // A write past the limit raises SIGXFSZ, which ends the process unless ignored;
    // ignored, the write fails with EFBIG instead.
    // SAFETY: setting a signal's disposition to "ignore", before any other thread
    // that could rely on it exists.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let home = tempfile::tempdir().unwrap();
    let options = AuditOptions {
        durability: Durability::Process,
        ..AuditOptions::default()
    };
    let audit = Audit::open(home.path(), options).unwrap();
    for n in 0..3 {
        let _ = audit.submit(event(n)).unwrap();
    }
    // A read commits every line journaled before it: then the writer has nothing to
    // do, and writes no file while the limit is low.
    assert_eq!(audit.read(Filter::default()).unwrap().len(), 3);
    let before = journal_len(home.path());

    // Room for a few bytes of the next line, not all of it.
    let limit = limit_file_size(before + 16);
    let failed = audit.submit(event(3));
    limit_file_size(limit);

    match failed {
        Err(err @ AuditError::Journal { .. }) => {
            let message = err.to_string();
            assert!(
                message.contains("writing to the audit journal"),
                "{message}"
            );
        }
        Err(other) => panic!("expected the journal write to fail, got {other}"),
        Ok(_) => panic!("the journal write past the file size limit succeeded"),
    }
    assert_eq!(
        journal_len(home.path()),
        before,
        "the part of the line written is cut off"
    );

    // The next lines go after the last whole one, and the log holds every record but
    // the one whose caller was told it failed.
    for n in 4..6 {
        let _ = audit.submit(event(n)).unwrap();
    }
    let journal = std::fs::read(home.path().join(FILE_NAME)).unwrap();
    for line in journal.split_inclusive(|&b| b == b'\n') {
        assert!(line.ends_with(b"\n"), "a torn line in the journal");
        serde_json::from_slice::<serde_json::Value>(line).expect("each line is whole JSON");
    }
    let records = audit.read(Filter::default()).unwrap();
    let ns: Vec<u64> = records
        .iter()
        .map(|r| r.fields["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, [0, 1, 2, 4, 5]);
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    let report = audit.verify().unwrap();
    assert!(report.problem.is_none(), "{:?}", report.problem);
    assert_eq!(report.count, 5);
}
