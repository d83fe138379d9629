//! The ledger's tests: durability across ledgers on one file, all-or-none
//! reservations, expiry and release.

use super::*;

fn tokens(n: u64) -> Estimate {
    Estimate {
        tokens: n,
        cost: 0.0,
    }
}

#[test]
fn reserve_then_settle_against_the_daily_limit() {
    let ledger = Ledger::default();
    let budget = Budget {
        tokens_per_day: Some(1000),
        cost_per_day: None,
    };
    let p = [(Scope::Plugin, "p", &budget)];
    let a = ledger.reserve(1, &p, tokens(600)).unwrap();
    // A concurrent call cannot take what is reserved.
    assert!(ledger.reserve(1, &p, tokens(600)).is_err());
    ledger.settle(a, 100, 0.01);
    assert_eq!(ledger.used(Scope::Plugin, "p", 1), (100, 0.01));
    let b = ledger.reserve(1, &p, tokens(600)).unwrap();
    ledger.settle(b, 0, 0.0);
    // Another day, another account; another plugin too.
    assert!(ledger.reserve(2, &p, tokens(1000)).is_ok());
    assert!(
        ledger
            .reserve(1, &[(Scope::Plugin, "q", &budget)], tokens(1000))
            .is_ok()
    );
}

const TOKENS_1000: Budget = Budget {
    tokens_per_day: Some(1000),
    cost_per_day: None,
};

#[test]
fn two_ledgers_on_one_file_see_each_others_spending() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = || Ledger::open_home(dir.path()).unwrap();
    assert_eq!(
        ledger().path(),
        Some(dir.path().join(Ledger::FILE).as_path())
    );
    two_ledgers_see_each_others_spending(ledger);
}

#[test]
fn concurrent_reservations_from_two_ledgers_cannot_both_pass_a_limit() {
    let dir = tempfile::tempdir().unwrap();
    reservations_cannot_both_pass_a_limit(|| Ledger::open_home(dir.path()).unwrap());
}

/// Two nodes of a cluster: one ledger each, on one database.
#[test]
fn two_nodes_on_one_database_share_their_budgets() {
    use warden_postgres::testing::TestCluster;
    let Some(cluster) = TestCluster::start() else {
        return;
    };
    let url = cluster.database();
    let pool = || warden_postgres::Pool::connect(&url, 2).unwrap();
    warden_postgres::migrate::migrate(&pool()).unwrap();
    let ledger = || Ledger::postgres(pool());
    assert_eq!(ledger().path(), None);
    two_ledgers_see_each_others_spending(ledger);
    reservations_cannot_both_pass_a_limit(ledger);
}

fn two_ledgers_see_each_others_spending(ledger: impl Fn() -> Ledger) {
    let (a, b) = (ledger(), ledger());
    let p = [(Scope::Plugin, "p", &TOKENS_1000)];
    // What `a` holds, `b` counts; what `a` settles, `b` (and a later ledger) sees.
    let held = a.reserve(1, &p, tokens(600)).unwrap();
    assert_eq!(b.used(Scope::Plugin, "p", 1), (600, 0.0));
    assert!(b.reserve(1, &p, tokens(600)).is_err());
    a.settle(held, 700, 0.25);
    assert_eq!(b.used(Scope::Plugin, "p", 1), (700, 0.25));
    drop((a, b));
    let c = ledger();
    assert_eq!(c.used(Scope::Plugin, "p", 1), (700, 0.25));
    let err = c.reserve(1, &p, tokens(301)).unwrap_err();
    assert!(
        err.message.contains("700 of its 1000 tokens used today"),
        "{err}"
    );
    c.settle(c.reserve(1, &p, tokens(300)).unwrap(), 0, 0.0);
    // Accounts are per day and per scope: the same name as a route is another one.
    assert!(c.reserve(2, &p, tokens(1000)).is_ok());
    assert!(
        c.reserve(1, &[(Scope::Route, "p", &TOKENS_1000)], tokens(1000))
            .is_ok()
    );
}

fn reservations_cannot_both_pass_a_limit(ledger: impl Fn() -> Ledger) {
    let ledgers = [ledger(), ledger()];
    let p = [(Scope::Principal, "token:ci", &TOKENS_1000)];
    for round in 0..50u64 {
        let barrier = std::sync::Barrier::new(2);
        let got: Vec<_> = std::thread::scope(|s| {
            let tasks: Vec<_> = ledgers
                .iter()
                .map(|ledger| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        ledger.reserve(round, &p, tokens(600))
                    })
                })
                .collect();
            tasks.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let passed = got.iter().filter(|r| r.is_ok()).count();
        assert_eq!(passed, 1, "round {round}: {got:?}");
        assert_eq!(ledgers[0].used(Scope::Principal, "token:ci", round).0, 600);
        for reservation in got.into_iter().flatten() {
            ledgers[1].settle(reservation, 10, 0.0);
        }
        assert_eq!(
            ledgers[0].used(Scope::Principal, "token:ci", round),
            (10, 0.0)
        );
    }
}

#[test]
fn a_reservation_never_settled_stops_counting_once_expired() {
    let dir = tempfile::tempdir().unwrap();
    let p = [(Scope::Route, "fast", &TOKENS_1000)];
    let t0 = now_ms();
    let minute = 60_000;
    {
        let killed = Ledger::open_home(dir.path()).unwrap();
        // The process dies holding it: no settle, no release.
        std::mem::forget(killed.reserve_at(t0, 1, &p, tokens(600)).unwrap());
    }
    let ledger = Ledger::open_home(dir.path()).unwrap();
    assert!(
        ledger
            .reserve_at(t0 + 9 * minute, 1, &p, tokens(600))
            .is_err()
    );
    let late = ledger
        .reserve_at(t0 + 11 * minute, 1, &p, tokens(1000))
        .unwrap();
    ledger.settle(late, 0, 0.0);
    // A shorter expiry; a reservation settled after it expired is still charged.
    let ledger = ledger.with_expiry(Duration::from_secs(60));
    let slow = ledger.reserve_at(t0, 2, &p, tokens(600)).unwrap();
    assert!(ledger.reserve_at(t0 + 30_000, 2, &p, tokens(600)).is_err());
    assert!(
        ledger
            .reserve_at(t0 + 2 * minute, 2, &p, tokens(600))
            .is_ok()
    );
    ledger.settle(slow, 100, 0.0);
    assert_eq!(ledger.used(Scope::Route, "fast", 2).0, 100);
}

#[test]
fn a_reservation_dropped_without_settling_is_released() {
    let ledger = Ledger::default();
    let p = [(Scope::Agent, "triage", &TOKENS_1000)];
    let held = ledger.reserve(1, &p, tokens(900)).unwrap();
    assert_eq!(ledger.used(Scope::Agent, "triage", 1), (900, 0.0));
    drop(held);
    assert_eq!(ledger.used(Scope::Agent, "triage", 1), (0, 0.0));
    let err = {
        let _held = ledger.reserve(1, &p, tokens(900)).unwrap();
        ledger.reserve(1, &p, tokens(900)).unwrap_err()
    };
    assert!(err.message.contains("agent \"triage\"'s budget"), "{err}");
    assert!(ledger.reserve(1, &p, tokens(900)).is_ok());
}

#[test]
fn every_budget_or_none_and_the_error_names_the_one_passed() {
    let ledger = Ledger::default();
    let plenty = Budget {
        tokens_per_day: Some(10_000),
        cost_per_day: None,
    };
    let dear = Budget {
        tokens_per_day: None,
        cost_per_day: Some(0.5),
    };
    let budgets = [
        (Scope::Plugin, "p", &plenty),
        (Scope::Principal, "token:ci", &plenty),
        (Scope::Route, "smart", &dear),
    ];
    let call = Estimate {
        tokens: 100,
        cost: 0.3,
    };
    let held = ledger.reserve(1, &budgets, call).unwrap();
    let err = ledger.reserve(1, &budgets, call).unwrap_err();
    assert_eq!(err.budget, "route \"smart\"");
    assert!(
        err.message
            .contains("[models.budgets.routes.smart] cost_per_day"),
        "{err}"
    );
    // The refused call held nothing anywhere.
    assert_eq!(ledger.used(Scope::Plugin, "p", 1), (100, 0.3));
    assert_eq!(ledger.used(Scope::Principal, "token:ci", 1).0, 100);
    ledger.settle(held, 40, 0.1);
    assert_eq!(ledger.used(Scope::Principal, "token:ci", 1), (40, 0.1));
    let err = ledger
        .reserve(1, &[(Scope::Principal, "token:ci", &plenty)], tokens(9_999))
        .unwrap_err();
    assert!(
        err.message
            .contains("[models.budgets.principals.\"token:ci\"] tokens_per_day"),
        "{err}"
    );
}
