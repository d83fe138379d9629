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

use rusqlite::{Connection, TransactionBehavior, params};

use super::config::Budget;
use super::error::LedgerError;

use super::router::{RouteError, Router};

mod postgres;
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
    /// Where the ledger is kept.
    backend: Backend,
    /// Milliseconds an unsettled reservation counts.
    expiry_ms: AtomicI64,
}

/// A SQLite file (or memory), or the cluster's database.
#[expect(
    clippy::large_enum_variant,
    reason = "one per ledger, made once and never moved"
)]
enum Backend {
    Sqlite {
        conn: Mutex<Connection>,
        /// The file, `None` in memory.
        path: Option<PathBuf>,
    },
    /// `budget_accounts` and `budget_holds` in PostgreSQL ([`postgres`]).
    Postgres(warden_postgres::Pool),
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
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        warden_files::database(path).map_err(|source| LedgerError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        let context = |source| LedgerError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(context)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(context)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
            .map_err(context)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(LedgerError::NotWal {
                path: path.to_path_buf(),
                mode,
            });
        }
        conn.execute_batch("PRAGMA synchronous=NORMAL;")
            .map_err(context)?;
        conn.execute_batch(SCHEMA).map_err(context)?;
        let ledger = Self::with_conn(conn, Some(path.to_path_buf()));
        // Holds of processes long gone: they no longer count, and need not be kept.
        let cutoff = now_ms().saturating_sub(ledger.db.expiry());
        ledger
            .db
            .conn()
            .execute("DELETE FROM holds WHERE created_ms <= ?1", [cutoff])
            .map_err(context)?;
        Ok(ledger)
    }

    /// Opens the ledger of the home at `root`: `<root>/budgets.db`.
    pub fn open_home(root: &Path) -> Result<Self, LedgerError> {
        Self::open(&root.join(Self::FILE))
    }

    fn with_conn(conn: Connection, path: Option<PathBuf>) -> Self {
        conn.set_prepared_statement_cache_capacity(16);
        Self::with_backend(Backend::Sqlite {
            conn: Mutex::new(conn),
            path,
        })
    }

    fn with_backend(backend: Backend) -> Self {
        Self {
            db: Arc::new(Db {
                backend,
                expiry_ms: AtomicI64::new(int(Self::DEFAULT_EXPIRY.as_millis() as u64)),
            }),
        }
    }

    /// The cluster's ledger, in the PostgreSQL database of `pool` (migrated): every
    /// node that uses it spends from the same accounts, so a budget is the cluster's.
    pub fn postgres(pool: warden_postgres::Pool) -> Self {
        Self::with_backend(Backend::Postgres(pool))
    }

    /// This ledger, where an unsettled reservation counts for `expiry` (10 minutes
    /// unless set) rather than until it is settled.
    pub fn with_expiry(self, expiry: Duration) -> Self {
        let expiry_ms = int(u64::try_from(expiry.as_millis()).unwrap_or(u64::MAX));
        self.db.expiry_ms.store(expiry_ms, Ordering::Relaxed);
        self
    }

    /// The file, `None` for a ledger in memory or in the cluster's database.
    pub fn path(&self) -> Option<&Path> {
        match &self.db.backend {
            Backend::Sqlite { path, .. } => path.as_deref(),
            Backend::Postgres(_) => None,
        }
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
        let cutoff = now_ms().saturating_sub(self.db.expiry());
        let used = match &self.db.backend {
            Backend::Sqlite { .. } => {
                Db::account(&self.db.conn(), scope, name, day, cutoff).map_err(LedgerError::from)
            }
            Backend::Postgres(pool) => postgres::used(pool, scope, name, day, cutoff),
        };
        used.unwrap_or_else(|err| {
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

    /// The SQLite connection (a ledger in PostgreSQL has none: only SQLite paths
    /// call this).
    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        match &self.backend {
            Backend::Sqlite { conn, .. } => conn.lock().unwrap_or_else(|e| e.into_inner()),
            Backend::Postgres(_) => unreachable!("a SQLite statement on the PostgreSQL ledger"),
        }
    }

    fn name(&self) -> String {
        match &self.backend {
            Backend::Sqlite { path, .. } => path
                .as_ref()
                .map_or_else(|| "(in memory)".into(), |p| p.display().to_string()),
            Backend::Postgres(pool) => pool.url().redacted().to_string(),
        }
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
    ) -> Result<Result<(), BudgetExceeded>, LedgerError> {
        let cutoff = now_ms.saturating_sub(self.expiry());
        if let Backend::Postgres(pool) = &self.backend {
            return postgres::reserve(pool, now_ms, cutoff, day, limited, estimate, id);
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
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
    fn settle(&self, keys: &[Key], id: i64, tokens: u64, cost: f64) -> Result<(), LedgerError> {
        if let Backend::Postgres(pool) = &self.backend {
            return postgres::settle(pool, keys, id, tokens, cost);
        }
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
    fn release(&self, keys: &[Key], id: i64) -> Result<(), LedgerError> {
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
mod tests;
