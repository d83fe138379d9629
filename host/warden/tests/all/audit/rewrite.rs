//! Truncating the tail and appending on (the adversarial catalog's item 62), and
//! rewriting a suffix and re-signing it with the log's own key (item 63), by someone
//! who can write the database: they delete the log's own checkpoints too, so the log
//! alone verifies. A checkpoint kept elsewhere, signed before, catches both.

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
