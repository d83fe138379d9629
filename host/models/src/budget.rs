//! The budget ledger: one account per plugin, per principal, per route and per agent,
//! per UTC day. A call reserves an estimate against every budget that applies to it,
//! all or none, before it goes out (so concurrent calls cannot all pass a limit), and
//! settles with the real usage when it ends.
//!
//! The ledger is durable: the home's one lives in `<home>/budgets.db` (SQLite, WAL), so
//! what one `warden call` spent counts in the next, in `warden mcp` and after a restart,
//! and several processes on one home share the limits. A reservation is checked and
//! written in one `IMMEDIATE` transaction, so two processes cannot both pass a limit.
//! Reservations carry their creation time: one never settled (its process was killed)
//! stops counting once it is older than the ledger's expiry (10 minutes by default).
//! A [`Reservation`] dropped without being settled is released.
//!
//! Only accounts with a limit are kept: a plugin, principal or route without a budget
//! costs the ledger nothing (not even a database access).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use rusqlite::{Connection, TransactionBehavior, params};

use super::config::Budget;

use super::router::{RouteError, Router};
use super::types::{ChatRequest, Usage};

/// Whose budget an account is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A plugin's, from its grant's `[models] budget`.
    Plugin,
    /// A principal's (who called), from `[models.budgets.principals]`.
    Principal,
    /// A route's (every use of it), from `[models.budgets.routes]`.
    Route,
    /// An agent's (every run of it, whoever started it). No configuration sets one
    /// yet: the ledger keeps its accounts like the others' for when one does.
    Agent,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Plugin => "plugin",
            Scope::Principal => "principal",
            Scope::Route => "route",
            Scope::Agent => "agent",
        }
    }

    /// Where the limit `field` of `name`'s budget is set.
    fn setting(self, name: &str, field: &str) -> String {
        match self {
            Scope::Plugin => format!("budget.{field} in [models] of the plugin's grant"),
            Scope::Principal => {
                format!("[models.budgets.principals.{name:?}] {field} in warden.toml")
            }
            Scope::Route => format!("[models.budgets.routes.{name}] {field} in warden.toml"),
            Scope::Agent => format!("the {field} of agent {name:?}'s budget"),
        }
    }
}

/// A call that would pass a budget.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct BudgetExceeded {
    /// The budget: `principal "token:ci"`, `route "smart"`, `plugin "notes"`.
    pub budget: String,
    /// What was used, what the call needed, and where the limit is set.
    pub message: String,
}

/// What a call may use, reserved before it goes out.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Estimate {
    /// Input and output tokens.
    pub tokens: u64,
    /// US dollars.
    pub cost: f64,
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS accounts (
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    day INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    cost REAL NOT NULL,
    PRIMARY KEY (scope, name, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS holds (
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    day INTEGER NOT NULL,
    reservation INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    cost REAL NOT NULL,
    PRIMARY KEY (scope, name, day, reservation)
) WITHOUT ROWID;
"#;

/// Spent (settled) amounts per account and day, and the amounts held by reservations
/// not settled yet, in a SQLite database: the home's file ([`Ledger::open`]) or one in
/// memory ([`Ledger::default`], for tests and routers without a home).
pub struct Ledger {
    db: Arc<Db>,
}

struct Db {
    conn: Mutex<Connection>,
    /// The file, `None` in memory.
    path: Option<PathBuf>,
    /// Milliseconds an unsettled reservation counts.
    expiry_ms: AtomicI64,
}

type Key = (Scope, String, u64);

/// An amount held for one call until it settles. Dropped without being settled, it is
/// released: the call is charged nothing.
#[must_use = "settle the reservation with the call's real usage"]
pub struct Reservation {
    keys: Vec<Key>,
    held: Estimate,
    /// The ledger and the reservation's id there, until settled or released.
    pending: Option<(Arc<Db>, i64)>,
}

impl fmt::Debug for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("accounts", &self.keys.len())
            .field("held", &self.held)
            .field("pending", &self.pending.as_ref().map(|(_, id)| id))
            .finish()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some((db, id)) = self.pending.take()
            && let Err(err) = db.release(&self.keys, id)
        {
            tracing::warn!(
                "budget ledger {}: could not release a reservation (it expires on its own): {err:#}",
                db.name()
            );
        }
    }
}

/// The UTC day number of a Unix time.
pub fn day_of(unix_seconds: u64) -> u64 {
    unix_seconds / 86_400
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A reservation id: random, so processes sharing the file never pick the same one.
fn new_reservation_id() -> i64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes = (nanos ^ u64::from(std::process::id()).rotate_left(40)).to_le_bytes();
    }
    (u64::from_le_bytes(bytes) >> 1) as i64
}

impl Default for Ledger {
    /// A ledger in memory, gone with it.
    fn default() -> Self {
        let conn = Connection::open_in_memory().expect("an in-memory SQLite database");
        conn.execute_batch(SCHEMA)
            .expect("the ledger schema in memory");
        Self::with_conn(conn, None)
    }
}

impl Ledger {
    /// The file of the home's ledger, in the home's root.
    pub const FILE: &str = "budgets.db";

    /// How long an unsettled reservation counts by default: past it, its process is
    /// taken to be gone (no model call of the router's lasts that long).
    pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(600);

    /// Opens (creating if needed) the ledger in the SQLite file at `path`: WAL,
    /// `synchronous=NORMAL` (a settled call survives the process, if not a power cut),
    /// waiting up to 5 s for another process's transaction.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let context = || format!("opening the budget ledger {}", path.display());
        let conn = Connection::open(path).with_context(context)?;
        conn.busy_timeout(Duration::from_secs(5))
            .with_context(context)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
            .with_context(context)?;
        if !mode.eq_ignore_ascii_case("wal") {
            anyhow::bail!(
                "{}: could not switch to WAL mode (got {mode})",
                path.display()
            );
        }
        conn.execute_batch("PRAGMA synchronous=NORMAL;")
            .with_context(context)?;
        conn.execute_batch(SCHEMA).with_context(context)?;
        let ledger = Self::with_conn(conn, Some(path.to_path_buf()));
        // Holds of processes long gone: they no longer count, and need not be kept.
        let cutoff = now_ms().saturating_sub(ledger.db.expiry());
        ledger
            .db
            .conn()
            .execute("DELETE FROM holds WHERE created_ms <= ?1", [cutoff])
            .with_context(context)?;
        Ok(ledger)
    }

    /// Opens the ledger of the home at `root`: `<root>/budgets.db`.
    pub fn open_home(root: &Path) -> anyhow::Result<Self> {
        Self::open(&root.join(Self::FILE))
    }

    fn with_conn(conn: Connection, path: Option<PathBuf>) -> Self {
        conn.set_prepared_statement_cache_capacity(16);
        Self {
            db: Arc::new(Db {
                conn: Mutex::new(conn),
                path,
                expiry_ms: AtomicI64::new(int(Self::DEFAULT_EXPIRY.as_millis() as u64)),
            }),
        }
    }

    /// This ledger, where an unsettled reservation counts for `expiry` (10 minutes
    /// unless set) rather than until it is settled.
    pub fn with_expiry(self, expiry: Duration) -> Self {
        let expiry_ms = int(u64::try_from(expiry.as_millis()).unwrap_or(u64::MAX));
        self.db.expiry_ms.store(expiry_ms, Ordering::Relaxed);
        self
    }

    /// The file, `None` for a ledger in memory.
    pub fn path(&self) -> Option<&Path> {
        self.db.path.as_deref()
    }

    /// Holds `estimate` on `day` in the account of every `(scope, name, budget)`
    /// given, unless that would pass one of the budgets: then nothing is held and the
    /// error names the first budget passed. A ledger that cannot be read refuses too
    /// (the error says why).
    pub fn reserve(
        &self,
        day: u64,
        budgets: &[(Scope, &str, &Budget)],
        estimate: Estimate,
    ) -> Result<Reservation, BudgetExceeded> {
        self.reserve_at(now_ms(), day, budgets, estimate)
    }

    fn reserve_at(
        &self,
        now_ms: i64,
        day: u64,
        budgets: &[(Scope, &str, &Budget)],
        estimate: Estimate,
    ) -> Result<Reservation, BudgetExceeded> {
        let limited: Vec<_> = budgets
            .iter()
            .filter(|(_, _, b)| b.tokens_per_day.is_some() || b.cost_per_day.is_some())
            .collect();
        let Some((first_scope, first_name, _)) = limited.first() else {
            return Ok(Reservation {
                keys: Vec::new(),
                held: estimate,
                pending: None,
            });
        };
        let id = new_reservation_id();
        match self.db.reserve(now_ms, day, &limited, estimate, id) {
            Ok(Ok(())) => Ok(Reservation {
                keys: limited
                    .iter()
                    .map(|(scope, name, _)| (*scope, name.to_string(), day))
                    .collect(),
                held: estimate,
                pending: Some((self.db.clone(), id)),
            }),
            Ok(Err(exceeded)) => Err(exceeded),
            Err(err) => {
                let budget = format!("{} {first_name:?}", first_scope.name());
                tracing::error!("budget ledger {}: {err:#}", self.db.name());
                Err(BudgetExceeded {
                    message: format!(
                        "the budget of {budget} could not be checked: budget ledger {}: {err:#}",
                        self.db.name()
                    ),
                    budget,
                })
            }
        }
    }

    /// Replaces the reservation with what the call really used (0 if it failed). The
    /// usage is charged even if the reservation had expired.
    pub fn settle(&self, mut reservation: Reservation, tokens: u64, cost: f64) {
        let Some((db, id)) = reservation.pending.take() else {
            return;
        };
        if let Err(err) = db.settle(&reservation.keys, id, tokens, cost) {
            tracing::error!(
                "budget ledger {}: could not settle a call ({tokens} tokens, ${cost:.4}): {err:#}",
                db.name()
            );
        }
    }

    /// Tokens and cost used on `day` in the account of `scope` `name`, reservations
    /// not expired included (0 for one without a budget).
    pub fn used(&self, scope: Scope, name: &str, day: u64) -> (u64, f64) {
        let conn = self.db.conn();
        let cutoff = now_ms().saturating_sub(self.db.expiry());
        Db::account(&conn, scope, name, day, cutoff).unwrap_or_else(|err| {
            tracing::error!("budget ledger {}: {err:#}", self.db.name());
            (0, 0.0)
        })
    }
}

/// What an account has used, as the SQL of [`Db::account`] reads it.
const ACCOUNT_SQL: &str = "SELECT COALESCE(SUM(tokens), 0), COALESCE(SUM(cost), 0.0) FROM (
    SELECT tokens, cost FROM accounts WHERE scope = ?1 AND name = ?2 AND day = ?3
    UNION ALL
    SELECT tokens, cost FROM holds
    WHERE scope = ?1 AND name = ?2 AND day = ?3 AND created_ms > ?4
)";

impl Db {
    fn expiry(&self) -> i64 {
        self.expiry_ms.load(Ordering::Relaxed)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn name(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| "(in memory)".into(), |p| p.display().to_string())
    }

    /// Settled usage plus holds made after `cutoff` (ms).
    fn account(
        conn: &Connection,
        scope: Scope,
        name: &str,
        day: u64,
        cutoff: i64,
    ) -> rusqlite::Result<(u64, f64)> {
        conn.prepare_cached(ACCOUNT_SQL)?.query_row(
            params![scope.name(), name, int(day), cutoff],
            |row| {
                let tokens: i64 = row.get(0)?;
                Ok((u64::try_from(tokens).unwrap_or(0), row.get(1)?))
            },
        )
    }

    /// Checks every budget and holds `estimate` in each, in one `IMMEDIATE`
    /// transaction (no other process writes in between); the inner error is the first
    /// budget passed, with nothing held.
    fn reserve(
        &self,
        now_ms: i64,
        day: u64,
        limited: &[&(Scope, &str, &Budget)],
        estimate: Estimate,
        id: i64,
    ) -> anyhow::Result<Result<(), BudgetExceeded>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let cutoff = now_ms.saturating_sub(self.expiry());
        for (scope, name, budget) in limited {
            let (tokens, cost) = Self::account(&tx, *scope, name, day, cutoff)?;
            if let Some(exceeded) = check(*scope, name, budget, tokens, cost, estimate) {
                return Ok(Err(exceeded));
            }
        }
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO holds (scope, name, day, reservation, created_ms, tokens, cost)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (scope, name, _) in limited {
                insert.execute(params![
                    scope.name(),
                    name,
                    int(day),
                    id,
                    now_ms,
                    int(estimate.tokens),
                    estimate.cost
                ])?;
            }
        }
        tx.commit()?;
        Ok(Ok(()))
    }

    /// Charges `tokens` and `cost` to every account of `keys` and removes reservation
    /// `id`'s holds, in one transaction.
    fn settle(&self, keys: &[Key], id: i64, tokens: u64, cost: f64) -> anyhow::Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut charge = tx.prepare_cached(
                "INSERT INTO accounts (scope, name, day, tokens, cost) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (scope, name, day) DO UPDATE SET
                    tokens = tokens + excluded.tokens, cost = cost + excluded.cost",
            )?;
            let mut release = tx.prepare_cached(
                "DELETE FROM holds WHERE scope = ?1 AND name = ?2 AND day = ?3 AND reservation = ?4",
            )?;
            for (scope, name, day) in keys {
                if tokens > 0 || cost > 0.0 {
                    charge.execute(params![scope.name(), name, int(*day), int(tokens), cost])?;
                }
                release.execute(params![scope.name(), name, int(*day), id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes reservation `id`'s holds.
    fn release(&self, keys: &[Key], id: i64) -> anyhow::Result<()> {
        self.settle(keys, id, 0, 0.0)
    }
}

/// The budget `budget` of `scope` `name` passed if a call of `estimate` were added to
/// what it used (`tokens`, `cost`), if it would be.
fn check(
    scope: Scope,
    name: &str,
    budget: &Budget,
    tokens: u64,
    cost: f64,
    estimate: Estimate,
) -> Option<BudgetExceeded> {
    let exceeded = |field: &str, message: String| BudgetExceeded {
        budget: format!("{} {name:?}", scope.name()),
        message: format!(
            "budget of {} {name:?} exceeded: {message}; raise {} or wait for the next UTC day",
            scope.name(),
            scope.setting(name, field)
        ),
    };
    if let Some(limit) = budget.tokens_per_day
        && tokens + estimate.tokens > limit
    {
        return Some(exceeded(
            "tokens_per_day",
            format!(
                "{tokens} of its {limit} tokens used today, and this call may need {} more",
                estimate.tokens
            ),
        ));
    }
    if let Some(limit) = budget.cost_per_day
        && (cost >= limit || cost + estimate.cost > limit)
    {
        return Some(exceeded(
            "cost_per_day",
            format!(
                "${cost:.4} of its ${limit} spent today, and this call may cost ${:.4} more",
                estimate.cost
            ),
        ));
    }
    None
}

/// Who pays for a model call, beside its route.
#[derive(Clone, Copy, Debug, Default)]
pub struct Payer<'a> {
    /// The plugin making it, and its grant's budget.
    pub plugin: Option<(&'a str, &'a Budget)>,
    /// The principal on whose behalf (the API token's).
    pub principal: Option<&'a str>,
}

/// Tokens of `request`'s prompt, estimated at ~4 bytes a token.
pub(crate) fn prompt_tokens(request: &ChatRequest) -> u64 {
    let text: usize = request
        .messages
        .iter()
        .map(|m| {
            m.content.len()
                + m.tool_calls
                    .iter()
                    .map(|c| c.name.len() + c.arguments.to_string().len())
                    .sum::<usize>()
        })
        .sum::<usize>()
        + request
            .tools
            .iter()
            .map(|t| t.name.len() + t.description.len() + t.parameters.to_string().len())
            .sum::<usize>();
    (text as u64).div_ceil(4)
}

/// Tokens an answer may take when the request sets no `max_tokens`.
const DEFAULT_ANSWER_TOKENS: u64 = 1024;

impl Router {
    /// This router, keeping its budgets in `ledger` (the home's, [`Ledger::open_home`])
    /// rather than in memory.
    pub fn with_ledger(mut self, ledger: Ledger) -> Self {
        self.ledger = ledger;
        self
    }

    /// What `request` on `route` may use: its prompt (estimated) plus the answer's
    /// `max_tokens` (1024 when not given), at the dearest price among the route's
    /// targets.
    pub fn estimate(&self, route: &str, request: &ChatRequest) -> Result<Estimate, RouteError> {
        let config = self.route(route)?;
        let input = prompt_tokens(request);
        let output = request.max_tokens.map_or(DEFAULT_ANSWER_TOKENS, u64::from);
        let cost = config
            .targets
            .iter()
            .filter_map(|t| self.config().prices.get(t))
            .map(|p| {
                p.cost(&Usage {
                    input,
                    output,
                    ..Usage::default()
                })
            })
            .fold(0.0, f64::max);
        Ok(Estimate {
            tokens: input + output,
            cost,
        })
    }

    /// Reserves what `request` on `route` may use against every budget that applies:
    /// the payer's plugin's, the payer's principal's and the route's. Settle it with
    /// [`Router::settle`] when the call ends, failed or not.
    pub fn reserve(
        &self,
        route: &str,
        payer: Payer<'_>,
        request: &ChatRequest,
    ) -> Result<Reservation, RouteError> {
        let estimate = self.estimate(route, request)?;
        let budgets = &self.config().budgets;
        let mut charged: Vec<(Scope, &str, &Budget)> = Vec::with_capacity(3);
        if let Some((plugin, budget)) = payer.plugin {
            charged.push((Scope::Plugin, plugin, budget));
        }
        if let Some(principal) = payer.principal
            && let Some(budget) = budgets.principals.get(principal)
        {
            charged.push((Scope::Principal, principal, budget));
        }
        if let Some(budget) = budgets.routes.get(route) {
            charged.push((Scope::Route, route, budget));
        }
        let day = day_of(unix_now());
        Ok(self.ledger.reserve(day, &charged, estimate)?)
    }

    /// Settles `reservation` with what the call used (nothing, if it failed).
    pub fn settle(&self, reservation: Reservation, usage: &Usage, cost: f64) {
        self.ledger
            .settle(reservation, usage.input + usage.output, cost);
    }
}

/// Seconds since the Unix epoch, now.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
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
        let a = Ledger::open_home(dir.path()).unwrap();
        let b = Ledger::open_home(dir.path()).unwrap();
        assert_eq!(a.path(), Some(dir.path().join(Ledger::FILE).as_path()));
        let p = [(Scope::Plugin, "p", &TOKENS_1000)];
        // What `a` holds, `b` counts; what `a` settles, `b` (and a later ledger) sees.
        let held = a.reserve(1, &p, tokens(600)).unwrap();
        assert_eq!(b.used(Scope::Plugin, "p", 1), (600, 0.0));
        assert!(b.reserve(1, &p, tokens(600)).is_err());
        a.settle(held, 700, 0.25);
        assert_eq!(b.used(Scope::Plugin, "p", 1), (700, 0.25));
        drop((a, b));
        let c = Ledger::open_home(dir.path()).unwrap();
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

    #[test]
    fn concurrent_reservations_from_two_ledgers_cannot_both_pass_a_limit() {
        let dir = tempfile::tempdir().unwrap();
        let ledgers = [
            Ledger::open_home(dir.path()).unwrap(),
            Ledger::open_home(dir.path()).unwrap(),
        ];
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
}
