//! Truncating the tail and appending on (the adversarial catalog's item 62), and
//! rewriting a suffix and re-signing it with the log's own key (item 63), by someone
//! who can write the database: they delete the log's own checkpoints too, so the log
//! alone verifies. A checkpoint kept elsewhere, signed before, catches both. A log
//! forked to show two auditors two histories (item 64) is exposed when they exchange
//! their checkpoints.

use warden::audit::{Audit, AuditOptions, ProblemKind};

use super::{db, event, home_with_log};

#[test]
fn a_truncated_and_appended_or_rewritten_and_resigned_tail_is_caught_by_a_checkpoint_kept_elsewhere()
 {
    for resign in [false, true] {
        let home = home_with_log(10);
        let audit = Audit::open(home.path(), AuditOptions::default()).unwrap();
        // The operator's copy, published or kept off the machine.
        let kept = audit.checkpoint().unwrap().unwrap();
        assert_eq!(kept.seq, 10);
        drop(audit);

        // Records 8.. and every checkpoint the log holds, gone.
        let conn = db(home.path());
        conn.execute("DELETE FROM records WHERE seq >= 8", [])
            .unwrap();
        conn.execute("DELETE FROM checkpoints", []).unwrap();
        drop(conn);
        let audit = Audit::open(home.path(), AuditOptions::default()).unwrap();
        for i in 0..5 {
            audit.append_blocking(event(200 + i)).unwrap();
        }
        if resign {
            // A fresh checkpoint of the rewritten head, signed with the log's own key.
            let forged = audit.checkpoint().unwrap().unwrap();
            assert_eq!(forged.seq, 12);
            assert!(audit.check_checkpoint(&forged).unwrap().is_ok());
        }
        // The log alone holds together…
        let report = audit.verify().unwrap();
        assert!(
            report.problem.is_none(),
            "resign {resign}: {:?}",
            report.problem
        );
        assert_eq!(report.count, 12);
        // …the checkpoint kept elsewhere does not: record 10 is another record now.
        let problem = audit.check_checkpoint(&kept).unwrap().unwrap_err();
        assert_eq!(
            (problem.seq, problem.kind),
            (Some(10), ProblemKind::Changed),
            "resign {resign}: {problem}"
        );
    }
}

/// Item 64, split view: the holder of the log and its key forks it and shows auditor A
/// one branch and auditor B the other. Each branch verifies alone and each carries a
/// checkpoint validly signed with the log's key; exchanged between the auditors (the
/// gossip `warden audit checkpoint` and `verify --checkpoint` make by hand), the two
/// checkpoints expose two heads for one size.
#[test]
fn a_forked_log_shown_to_two_auditors_is_exposed_when_they_exchange_checkpoints() {
    let a = home_with_log(5);
    let b = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(a.path()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), b.path().join(entry.file_name())).unwrap();
        }
    }
    let mut checkpoints = Vec::new();
    for (home, first) in [(&a, 100), (&b, 200)] {
        let audit = Audit::open(home.path(), AuditOptions::default()).unwrap();
        for i in 0..3 {
            audit.append_blocking(event(first + i)).unwrap();
        }
        assert!(audit.verify().unwrap().problem.is_none());
        let checkpoint = audit.checkpoint().unwrap().unwrap();
        assert!(audit.check_checkpoint(&checkpoint).unwrap().is_ok());
        checkpoints.push(checkpoint);
    }
    let (for_a, for_b) = (&checkpoints[0], &checkpoints[1]);
    // Two heads for one size, both signed by the log's key.
    assert_eq!(for_a.seq, 8);
    assert_eq!(for_b.seq, 8);
    assert_ne!(for_a.hash, for_b.hash);
    // Each auditor checks the other's checkpoint against the branch it was shown.
    for (home, theirs) in [(&a, for_b), (&b, for_a)] {
        let audit = Audit::open(home.path(), AuditOptions::default()).unwrap();
        let problem = audit.check_checkpoint(theirs).unwrap().unwrap_err();
        assert_eq!(
            (problem.seq, problem.kind),
            (Some(8), ProblemKind::Changed),
            "{problem}"
        );
    }
}
