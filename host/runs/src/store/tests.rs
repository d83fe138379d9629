//! The run store's checks, run against both backends: SQLite files of one home (two
//! stores on one file, as a `warden run` and a `warden serve` share it) and two nodes
//! of a cluster on one PostgreSQL database.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::action::{Action, Observation, ToolOutcome, ToolResult, ToolUse};

fn new_run(id: &str) -> Run {
    Run {
        id: id.into(),
        agent: "triage".into(),
        principal: "token:ci".into(),
        roles: vec!["admin".into()],
        task: json!({"ticket": 7}),
        status: Status::Running,
        result: None,
        error: None,
        steps: 0,
        tokens: 0,
        cost: 0.0,
        active_ms: 0,
        created_at: now_ms(),
        updated_at: now_ms(),
        finished_at: None,
        owner: None,
    }
}

fn two_calls() -> Action {
    Action::CallTools {
        calls: vec![
            ToolUse {
                id: "c1".into(),
                tool: "tickets/close".into(),
                arguments: json!({"id": 7}),
            },
            ToolUse {
                id: "c2".into(),
                tool: "mail/send".into(),
                arguments: json!({"to": "ops"}),
            },
        ],
    }
}

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn two_stores_on_one_file_agree() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let store = || RunStore::open(&path).unwrap();
    assert_eq!(store().path(), Some(path.as_path()));
    assert!(!store().is_shared());
    records_steps_and_calls(store);
    leases_go_to_one_holder_at_a_time(store);
    claims_at_once_are_won_by_one(store);
    a_decision_resumes_its_run(store);
}

/// An observation is written unsynced (the next commit syncs it); every other commit
/// stays synced: the connection is back to `synchronous=FULL` after it, whether the
/// observation was recorded or refused.
#[test]
fn an_observation_is_written_and_the_store_stays_synced() {
    let dir = tempfile::tempdir().unwrap();
    let store = RunStore::open(&dir.path().join(FILE_NAME)).unwrap();
    let synchronous = || -> i64 {
        store
            .conn()
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .unwrap()
    };
    assert_eq!(synchronous(), 2, "FULL");
    let run = new_run("run_synced");
    store.create(&run).unwrap();
    assert!(store.claim(&run.id, "a", MINUTE, None).unwrap());
    assert!(
        store
            .begin_step(&run.id, "a", 1, &two_calls(), &json!({}), true, 1)
            .unwrap()
    );
    let observation = Observation::Tools { results: vec![] };
    assert!(
        !store
            .end_step(&run.id, "b", 1, &observation, &[], 0, 0.0, 2)
            .unwrap()
    );
    assert_eq!(synchronous(), 2, "FULL after a refused observation");
    assert!(
        store
            .end_step(&run.id, "a", 1, &observation, &[], 0, 0.0, 2)
            .unwrap()
    );
    assert_eq!(synchronous(), 2, "FULL after a recorded one");
    let step = store.last_step(&run.id).unwrap().unwrap();
    assert_eq!(step.observation, Some(observation));
}

/// Two nodes of a cluster: one store each, on one database.
#[test]
fn two_nodes_on_one_database_agree() {
    use warden_postgres::testing::TestCluster;
    let Some(cluster) = TestCluster::start() else {
        return;
    };
    let url = cluster.database();
    let pool = || warden_postgres::Pool::connect(&url, 2).unwrap();
    warden_postgres::migrate::migrate(&pool()).unwrap();
    let store = || RunStore::postgres(pool());
    assert_eq!(store().path(), None);
    assert!(store().is_shared());
    records_steps_and_calls(store);
    leases_go_to_one_holder_at_a_time(store);
    claims_at_once_are_won_by_one(store);
    a_decision_resumes_its_run(store);
}

/// A run, its steps and calls, written through one store, read through another.
fn records_steps_and_calls(store: impl Fn() -> RunStore) {
    let (a, b) = (store(), store());
    let run = new_run("run_records");
    a.create(&run).unwrap();
    let read = b.run(&run.id).unwrap().unwrap();
    assert_eq!(
        (read.status, read.task.clone()),
        (Status::Running, run.task)
    );
    assert_eq!(read.roles, ["admin"]);
    assert!(b.run("run_none").unwrap().is_none());
    assert!(a.claim(&run.id, "a", MINUTE, None).unwrap());
    assert!(
        a.begin_step(&run.id, "a", 1, &two_calls(), &json!({"m": 1}), true, 5)
            .unwrap()
    );
    // The first call was checked and recorded started with the step; the second waits.
    let calls = b.calls(&run.id, 1).unwrap();
    let states: Vec<_> = calls.iter().map(|c| c.state).collect();
    assert_eq!(states, [CallState::Started, CallState::Pending]);
    assert_eq!(calls[1].call.arguments, json!({"to": "ops"}));
    // Only the holder starts a call.
    assert!(!b.start_call(&run.id, "b", 1, 1).unwrap());
    assert!(a.start_call(&run.id, "a", 1, 1).unwrap());
    let ok = ToolOutcome::Ok {
        result: json!("closed"),
    };
    a.set_call(&run.id, 1, 0, CallState::Done, Some(&ok))
        .unwrap();
    let observation = Observation::Tools {
        results: vec![ToolResult {
            id: "c1".into(),
            outcome: ok.clone(),
        }],
    };
    let done = [(1, ToolOutcome::Interrupted)];
    // Only the holder records the observation.
    assert!(
        !b.end_step(&run.id, "b", 1, &observation, &done, 10, 0.5, 9)
            .unwrap()
    );
    assert!(b.last_step(&run.id).unwrap().unwrap().observation.is_none());
    assert!(
        a.end_step(&run.id, "a", 1, &observation, &done, 10, 0.5, 9)
            .unwrap()
    );
    let step = b.last_step(&run.id).unwrap().unwrap();
    assert_eq!((step.n, step.memo), (1, json!({"m": 1})));
    assert_eq!(step.observation, Some(observation));
    let calls = b.calls(&run.id, 1).unwrap();
    assert_eq!(calls[0].outcome, Some(ok));
    assert_eq!(calls[1].state, CallState::Done);
    assert_eq!(calls[1].outcome, Some(ToolOutcome::Interrupted));
    b.add_usage(&run.id, 5, 0.25).unwrap();
    let read = a.run(&run.id).unwrap().unwrap();
    assert_eq!((read.steps, read.tokens, read.cost), (1, 15, 0.75));
    assert_eq!((read.active_ms, read.owner.as_deref()), (9, Some("a")));
    let finish = Action::Finish {
        result: json!("done"),
    };
    assert!(
        a.begin_step(&run.id, "a", 2, &finish, &json!(null), false, 10)
            .unwrap()
    );
    assert_eq!(b.steps(&run.id).unwrap().len(), 2);
    assert!(
        b.finish(&run.id, None, Status::Finished, Some(&json!("done")), None)
            .unwrap()
    );
    assert!(
        !a.finish(&run.id, None, Status::Failed, None, Some("late"))
            .unwrap()
    );
    let read = a.run(&run.id).unwrap().unwrap();
    assert_eq!(
        (read.status, read.result),
        (Status::Finished, Some(json!("done")))
    );
    assert_eq!(read.owner, None);
    let listed = b.runs(Some(Status::Finished), 10).unwrap();
    assert!(listed.iter().any(|r| r.id == run.id));
    assert!(
        !b.runs(Some(Status::Running), 10)
            .unwrap()
            .iter()
            .any(|r| r.id == run.id)
    );
    // Pruning removes ended runs with their steps and calls.
    assert!(a.prune(now_ms() + 1).unwrap() >= 1);
    assert!(b.run(&run.id).unwrap().is_none());
    assert!(b.steps(&run.id).unwrap().is_empty());
    assert!(b.calls(&run.id, 1).unwrap().is_empty());
}

/// A lease: one holder; renewed by it; taken by another once it ran out, or when its
/// holder is known gone; then the old holder's writes are refused.
fn leases_go_to_one_holder_at_a_time(store: impl Fn() -> RunStore) {
    let (a, b) = (store(), store());
    let run = new_run("run_lease");
    a.create(&run).unwrap();
    let lease = |s: &RunStore| {
        s.running()
            .unwrap()
            .into_iter()
            .find(|l| l.run == run.id)
            .unwrap()
    };
    assert_eq!(
        lease(&b),
        Lease {
            run: run.id.clone(),
            owner: None,
            expired: true
        }
    );
    assert!(!a.holds(&run.id, "a").unwrap(), "claimed by no one yet");
    assert!(a.claim(&run.id, "a", MINUTE, None).unwrap());
    assert!(!b.claim(&run.id, "b", MINUTE, None).unwrap());
    assert!(a.claim(&run.id, "a", MINUTE, None).unwrap(), "renewed");
    // What the driving loop checks before each step, seen from either store.
    assert!(b.holds(&run.id, "a").unwrap());
    assert!(!b.holds(&run.id, "b").unwrap());
    assert!(!b.holds("run_unknown", "a").unwrap());
    assert_eq!(lease(&b).owner.as_deref(), Some("a"));
    assert!(!lease(&b).expired);
    // A holder known gone is taken over at once.
    assert!(b.claim(&run.id, "b", MINUTE, Some("a")).unwrap());
    b.release(&run.id, "b").unwrap();
    assert_eq!(lease(&a).owner, None);
    // A lease that ran out is taken over, and its old holder can write no step.
    assert!(
        a.claim(&run.id, "a", Duration::from_millis(50), None)
            .unwrap()
    );
    assert!(!b.claim(&run.id, "b", MINUTE, None).unwrap());
    std::thread::sleep(Duration::from_millis(120));
    assert!(lease(&b).expired);
    assert!(b.claim(&run.id, "b", MINUTE, None).unwrap());
    assert!(!a.claim(&run.id, "a", MINUTE, None).unwrap());
    assert!(!a.holds(&run.id, "a").unwrap(), "taken over");
    let ask = Action::Ask {
        question: "go?".into(),
        schema: None,
    };
    assert!(
        !a.begin_step(&run.id, "a", 1, &ask, &json!(null), false, 0)
            .unwrap()
    );
    assert!(
        b.begin_step(&run.id, "b", 1, &ask, &json!(null), false, 0)
            .unwrap()
    );
    // Nor can it end the run: only its holder does (or a cancel, which needs none).
    assert!(
        !a.finish(&run.id, Some("a"), Status::Failed, None, Some("stale"))
            .unwrap()
    );
    assert_eq!(b.run(&run.id).unwrap().unwrap().status, Status::Running);
    // Parking gives the lease up; only a running run is claimed.
    a.park(&run.id, "a", 1).unwrap();
    assert_eq!(a.run(&run.id).unwrap().unwrap().status, Status::Running);
    b.park(&run.id, "b", 1).unwrap();
    let parked = a.run(&run.id).unwrap().unwrap();
    assert_eq!(
        (parked.status, parked.owner),
        (Status::AwaitingApproval, None)
    );
    assert!(!a.claim(&run.id, "a", MINUTE, None).unwrap());
    assert!(!a.running().unwrap().iter().any(|l| l.run == run.id));
    assert!(!a.holds(&run.id, "b").unwrap(), "parked");
    a.finish(&run.id, None, Status::Cancelled, None, Some("test"))
        .unwrap();
    assert!(!a.holds(&run.id, "b").unwrap(), "cancelled");
}

/// Two processes claiming one free run at the same moment: exactly one holds it.
fn claims_at_once_are_won_by_one(store: impl Fn() -> RunStore) {
    let stores = [store(), store()];
    for round in 0..30 {
        let run = new_run(&format!("run_race_{round}"));
        stores[0].create(&run).unwrap();
        let barrier = std::sync::Barrier::new(2);
        let won: Vec<bool> = std::thread::scope(|s| {
            let tasks: Vec<_> = stores
                .iter()
                .enumerate()
                .map(|(i, store)| {
                    let (barrier, id) = (&barrier, &run.id);
                    s.spawn(move || {
                        barrier.wait();
                        store.claim(id, &format!("node{i}"), MINUTE, None).unwrap()
                    })
                })
                .collect();
            tasks.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "round {round}: {won:?}"
        );
        stores[1]
            .finish(&run.id, None, Status::Cancelled, None, None)
            .unwrap();
    }
}

/// An approval requested through one store and decided through another puts the run
/// back to `running` (for any process to pick up) once none of its approvals is
/// pending, even when two are decided at once.
fn a_decision_resumes_its_run(store: impl Fn() -> RunStore) {
    let (a, b) = (store(), store());
    let run = new_run("run_approvals");
    a.create(&run).unwrap();
    assert!(a.claim(&run.id, "a", MINUTE, None).unwrap());
    let action = two_calls();
    assert!(
        a.begin_step(&run.id, "a", 1, &action, &json!(null), false, 0)
            .unwrap()
    );
    let Action::CallTools { calls } = &action else {
        unreachable!()
    };
    let policies = vec!["review-mail".to_string()];
    let asked: Vec<Approval> = calls
        .iter()
        .enumerate()
        .map(|(idx, call)| {
            a.request_approval(&NewApproval {
                run: &run,
                step: 1,
                call: Some((idx as u32, call)),
                question: None,
                policies: &policies,
            })
            .unwrap()
        })
        .collect();
    // Asking again gets the one stored.
    let again = a
        .request_approval(&NewApproval {
            run: &run,
            step: 1,
            call: Some((0, &calls[0])),
            question: None,
            policies: &policies,
        })
        .unwrap();
    assert_eq!(again.id, asked[0].id);
    assert_eq!(
        (asked[1].kind, asked[1].tool.as_deref()),
        ("tool", Some("mail/send"))
    );
    a.park(&run.id, "a", 3).unwrap();
    assert_eq!(b.approvals(false, Some(&run.id)).unwrap().len(), 2);
    let found = b.approval_of(&run.id, 1, Some(1)).unwrap().unwrap();
    assert_eq!(found.id, asked[1].id);
    assert!(b.approval_of(&run.id, 1, None).unwrap().is_none());
    // Both decided at once, on two nodes.
    let verdicts = [
        Verdict::Approve {
            edited: Some(json!({"to": "ops-lead"})),
            answer: None,
        },
        Verdict::Reject {
            reason: "not now".into(),
        },
    ];
    let stores = [&a, &b];
    std::thread::scope(|s| {
        for ((store, approval), verdict) in stores.iter().zip(&asked).zip(&verdicts) {
            s.spawn(move || {
                store
                    .decide(&approval.id, "local:alice", verdict)
                    .unwrap()
                    .unwrap()
            });
        }
    });
    let resumed = a.run(&run.id).unwrap().unwrap();
    assert_eq!((resumed.status, resumed.owner), (Status::Running, None));
    assert!(
        a.running()
            .unwrap()
            .iter()
            .any(|l| l.run == run.id && l.expired)
    );
    let decided = a.approval(&asked[0].id).unwrap().unwrap();
    assert_eq!(decided.status, Decision::Approved);
    assert_eq!(decided.edited, Some(json!({"to": "ops-lead"})));
    assert_eq!(decided.decided_by.as_deref(), Some("local:alice"));
    let rejected = b.approval(&asked[1].id).unwrap().unwrap();
    assert_eq!(
        (rejected.status, rejected.reason.as_deref()),
        (Decision::Rejected, Some("not now"))
    );
    // Not pending any more: a second decision is refused.
    assert!(b.decide(&asked[0].id, "x", &verdicts[1]).unwrap().is_none());
    assert!(b.approvals(false, Some(&run.id)).unwrap().is_empty());
    assert_eq!(a.approvals(true, Some(&run.id)).unwrap().len(), 2);
    // A held direct call (no run), and a question cancelled with its run.
    let held = b
        .hold_call("token:ci", "mail/send", &json!({"to": "all"}), &policies)
        .unwrap();
    assert_eq!((held.run.as_str(), held.call), ("", Some(0)));
    assert_eq!(
        a.approval(&held.id).unwrap().unwrap().status,
        Decision::Pending
    );
    assert!(a.claim(&run.id, "a", MINUTE, None).unwrap());
    let question = a
        .request_approval(&NewApproval {
            run: &run,
            step: 2,
            call: None,
            question: Some(("which queue?", Some(&json!({"type": "string"})))),
            policies: &[],
        })
        .unwrap();
    assert_eq!(question.kind, "question");
    assert_eq!(question.schema, Some(json!({"type": "string"})));
    assert!(
        b.finish(&run.id, None, Status::Cancelled, None, Some("by test"))
            .unwrap()
    );
    assert_eq!(
        a.approval(&question.id).unwrap().unwrap().status,
        Decision::Cancelled
    );
}
