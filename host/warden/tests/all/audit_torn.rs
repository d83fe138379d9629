//! A torn or garbled tail of the audit log's write-ahead log (the adversarial catalog's
//! item 72): a `warden` process making calls is killed with SIGKILL, which leaves its
//! last records in `audit.db-wal`; the test then cuts the frame of the WAL's last
//! commit in half, garbles it, drops the frames before it, or cuts the WAL inside its
//! header, as a disk that lost the end of its writes would. Each time the log reopens with the records of the
//! whole frames that were left (SQLite's recovery stops at the first frame whose
//! checksum fails), the chain verifies, and the log takes the next record. The loss is
//! silent: a WAL cut inside its header loses every record since the last checkpoint
//! of the WAL into the database, and what is left still verifies; only a signed
//! checkpoint kept elsewhere shows it (item 62).
//!
//! The last commit may also be the writer moving waiting records into the indexed
//! table (no record of its own): damaged, the move is undone and the records wait
//! unindexed again, all there.

use std::path::Path;

use warden::audit::{Audit, AuditOptions, Event, Filter};

use crate::audit_crash::{home_with_text, run_and_kill};

/// The WAL's header is 32 bytes; each frame is a 24-byte header and a page.
const WAL_HEADER: u64 = 32;
const FRAME_HEADER: u64 = 24;

/// Records waiting unindexed in the log of `home` (the table the writer moves from).
fn waiting(home: &Path) -> i64 {
    rusqlite::Connection::open(home.join("audit.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM unindexed", [], |row| row.get(0))
        .unwrap()
}

/// A way of damaging the WAL's bytes.
type Damage = Box<dyn Fn(&mut Vec<u8>)>;

fn copy_home(from: &Path, to: &Path) {
    for name in ["audit.db", "audit.db-wal", "audit.key"] {
        let source = from.join(name);
        if source.exists() {
            std::fs::copy(&source, to.join(name)).unwrap();
        }
    }
}

#[test]
fn a_torn_or_garbled_wal_tail_reopens_to_a_chain_that_verifies() {
    let home = home_with_text();
    let h = home.path();
    let acked = run_and_kill(h, "full", "torn", 50);
    assert!(!acked.is_empty());
    let wal = std::fs::read(h.join("audit.db-wal")).expect("a WAL left by the kill");
    let page = u64::from(u32::from_be_bytes(wal[8..12].try_into().unwrap()));
    let frame = FRAME_HEADER + page;
    let frames = (wal.len() as u64 - WAL_HEADER) / frame;
    assert!(frames >= 4, "{frames} frames in the WAL");
    let (whole, whole_waiting) = {
        let scratch = tempfile::tempdir().unwrap();
        copy_home(h, scratch.path());
        let waiting = waiting(scratch.path());
        let audit = Audit::open(scratch.path(), AuditOptions::default()).unwrap();
        let report = audit.verify().unwrap();
        assert!(report.problem.is_none(), "{:?}", report.problem);
        (report.count, waiting)
    };
    // What the database file holds by itself, the WAL left out: a WAL cut inside its
    // header is ignored, and the log is this. It has every record when the WAL had been
    // copied into the database in full before the kill (its frames stay in the file
    // until the next write starts the WAL over).
    let in_database = {
        let scratch = tempfile::tempdir().unwrap();
        copy_home(h, scratch.path());
        std::fs::remove_file(scratch.path().join("audit.db-wal")).unwrap();
        let audit = Audit::open(scratch.path(), AuditOptions::default()).unwrap();
        let report = audit.verify().unwrap();
        assert!(report.problem.is_none(), "{:?}", report.problem);
        report.count
    };
    // The WAL's last commit: the last frame of its current generation (its salts are
    // the header's; older frames past it are left from before the WAL was restarted)
    // that ends a transaction (a non-zero database size).
    let last = (0..frames)
        .map(|n| WAL_HEADER + n * frame)
        .rev()
        .find(|&at| {
            let at = at as usize;
            wal[at + 8..at + 16] == wal[16..24] && wal[at + 4..at + 8] != [0; 4]
        })
        .expect("a committed frame in the WAL");
    const HEADER_CUT: &str = "the WAL cut inside its header";
    let damages: [(&str, Damage); 5] = [
        (
            "the last commit's frame cut in half",
            Box::new(move |w| w.truncate((last + frame / 2) as usize)),
        ),
        (
            "the last commit's page garbled",
            Box::new(move |w| {
                let at = (last + FRAME_HEADER + page / 2) as usize;
                for b in &mut w[at..at + 64] {
                    *b ^= 0x5a;
                }
            }),
        ),
        (
            "the last commit's frame header garbled",
            Box::new(move |w| w[last as usize + 8] ^= 0xff),
        ),
        (
            "the WAL cut two frames before the last commit",
            Box::new(move |w| w.truncate(last.saturating_sub(2 * frame).max(WAL_HEADER) as usize)),
        ),
        (HEADER_CUT, Box::new(|w| w.truncate(16))),
    ];
    for (what, damage) in damages {
        let scratch = tempfile::tempdir().unwrap();
        let s = scratch.path();
        copy_home(h, s);
        let mut torn = wal.clone();
        damage(&mut torn);
        std::fs::write(s.join("audit.db-wal"), &torn).unwrap();
        // Read before the log takes a record (after which its writer may move them).
        let torn_waiting = waiting(s);
        let audit = match Audit::open(s, AuditOptions::default()) {
            Ok(audit) => audit,
            Err(err) => {
                // A refusal must say which file and what to do.
                let err = format!("{err:#}");
                assert!(err.contains("audit.db"), "{what}: {err}");
                continue;
            }
        };
        let report = audit.verify().unwrap();
        assert!(report.problem.is_none(), "{what}: {:?}", report.problem);
        if what == HEADER_CUT {
            // The WAL is ignored: what the database file holds is the log.
            assert_eq!(report.count, in_database, "{what}: of {whole}");
        } else {
            // The damaged frames' commits never happened, as far as SQLite can tell:
            // their records are gone and the ones before are all there, or (a move) the
            // records it moved wait unindexed again.
            assert!(
                report.count < whole || (report.count == whole && torn_waiting > whole_waiting),
                "{what}: {} of {whole}, {torn_waiting} waiting against {whole_waiting}",
                report.count
            );
        }
        assert!(report.count >= 1, "{what}");
        // The log goes on from what it kept.
        let next = Event::new("test.after", "local:test");
        let appended = audit.append_blocking(next).unwrap();
        assert_eq!(appended.seq, report.count + 1, "{what}");
        let report = audit.verify().unwrap();
        assert!(report.problem.is_none(), "{what}: {:?}", report.problem);
        let records = audit.read(Filter::default()).unwrap();
        assert_eq!(records.len() as u64, report.count, "{what}");
        assert_eq!(records.last().unwrap().kind, "test.after", "{what}");
    }
}
