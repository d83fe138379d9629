//! The run store: one SQLite file in the home (`<home>/runs.db`), WAL with
//! `synchronous=FULL`, so what a write recorded survives a crash of the process or the
//! machine (a step's observation is only written, and synced by the commit that always
//! follows it: see [`RunStore::end_step`]); or, for a cluster, the tables of the nodes' PostgreSQL database
//! ([`RunStore::postgres`], `postgres.rs`). Several processes may share it (a `warden
//! run` and a `warden serve` on the same home, the nodes of a cluster); a run is
//! driven by one at a time, the one holding its lease.
//!
//! Tables: `runs` (one row a run: status, usage, lease), `steps` (each action with the
//! memo returned with it, and its observation once recorded), `calls` (each tool call
//! of a `call-tools` step: pending, awaiting approval, started, done) and `approvals`
//! (the queue people decide on); in PostgreSQL `runs`, `run_steps`, `run_calls` and
//! `run_approvals`.

mod approvals;
mod error;
mod hot;
mod postgres;
mod records;

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, Row};
use serde::Serialize;

pub use self::approvals::{Approval, Decision, NewApproval, Verdict};
pub use self::error::StoreError;
pub use self::records::{Call, CallState, Run, Status, Step};

/// The store's file name in the home.
pub const FILE_NAME: &str = "runs.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id          TEXT PRIMARY KEY,
    agent       TEXT NOT NULL,
    principal   TEXT NOT NULL,
    roles       TEXT NOT NULL,
    task        TEXT NOT NULL,
    status      TEXT NOT NULL,
    result      TEXT,
    error       TEXT,
    steps       INTEGER NOT NULL DEFAULT 0,
    tokens      INTEGER NOT NULL DEFAULT 0,
    cost        REAL NOT NULL DEFAULT 0,
    active_ms   INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    finished_at INTEGER,
    owner       TEXT,
    lease_until INTEGER
);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
CREATE TABLE IF NOT EXISTS steps (
    run         TEXT NOT NULL,
    n           INTEGER NOT NULL,
    action      TEXT NOT NULL,
    memo        TEXT NOT NULL,
    observation TEXT,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    PRIMARY KEY (run, n)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS calls (
    run       TEXT NOT NULL,
    step      INTEGER NOT NULL,
    idx       INTEGER NOT NULL,
    id        TEXT NOT NULL,
    tool      TEXT NOT NULL,
    arguments TEXT NOT NULL,
    state     TEXT NOT NULL,
    outcome   TEXT,
    PRIMARY KEY (run, step, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS approvals (
    id         TEXT PRIMARY KEY,
    run        TEXT NOT NULL,
    step       INTEGER NOT NULL,
    call       INTEGER,
    agent      TEXT NOT NULL,
    principal  TEXT NOT NULL,
    tool       TEXT,
    arguments  TEXT,
    question   TEXT,
    schema     TEXT,
    policies   TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    decided_by TEXT,
    decided_at INTEGER,
    reason     TEXT,
    edited     TEXT,
    answer     TEXT
);
CREATE INDEX IF NOT EXISTS approvals_status ON approvals (status);
CREATE INDEX IF NOT EXISTS approvals_run ON approvals (run, step, call);
";

pub(super) fn bad_value(column: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("unknown {column} {value:?}").into(),
    )
}

pub(super) fn json_column<T: serde::de::DeserializeOwned>(
    row: &Row<'_>,
    index: usize,
) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, e.into())
    })
}

pub(super) fn json_opt<T: serde::de::DeserializeOwned>(
    row: &Row<'_>,
    index: usize,
) -> rusqlite::Result<Option<T>> {
    let text: Option<String> = row.get(index)?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, e.into())
        })
    })
    .transpose()
}

pub(super) fn text(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A fresh id: `prefix` and 16 hex digits.
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        bytes = now_ms().to_le_bytes();
    }
    format!("{prefix}_{}", hex::encode(bytes))
}

/// The run store.
pub struct RunStore {
    backend: Backend,
}

/// Where the store keeps its tables.
#[expect(
    clippy::large_enum_variant,
    reason = "one per store, made once and never moved"
)]
enum Backend {
    /// A SQLite file of the home.
    Sqlite {
        conn: Mutex<Connection>,
        path: std::path::PathBuf,
    },
    /// The cluster's database (migrated).
    Postgres(warden_postgres::Pool),
}

/// A run that is `running`, as [`RunStore::running`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The run.
    pub run: String,
    /// The process holding its lease, if one does.
    pub owner: Option<String>,
    /// True when the lease ran out (by the store's clock) and was not renewed.
    pub expired: bool,
}

impl RunStore {
    /// Opens (creating if needed) the store at `path`: WAL, `synchronous=FULL`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        warden_files::database(path).map_err(|source| StoreError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        let opening = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(opening)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
            .map_err(opening)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NotWal {
                path: path.to_path_buf(),
                mode,
            });
        }
        conn.execute_batch("PRAGMA synchronous=FULL;")
            .map_err(opening)?;
        conn.execute_batch(SCHEMA).map_err(opening)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Self {
            backend: Backend::Sqlite {
                conn: Mutex::new(conn),
                path: path.to_path_buf(),
            },
        })
    }

    /// The store in the cluster's database behind `pool` (migrated: see
    /// `warden_postgres::migrate`). Every node of the cluster opens the same runs, and
    /// a lease is compared with the database's clock.
    pub fn postgres(pool: warden_postgres::Pool) -> Self {
        Self {
            backend: Backend::Postgres(pool),
        }
    }

    /// The file, for the embedded store; none in a database.
    pub fn path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Sqlite { path, .. } => Some(path),
            Backend::Postgres(_) => None,
        }
    }

    /// True when the store is shared by a cluster's nodes (PostgreSQL): a lease held by
    /// a process of another node is only known gone once it runs out.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// The pool, for the PostgreSQL store.
    pub(super) fn pg(&self) -> Option<&warden_postgres::Pool> {
        match &self.backend {
            Backend::Sqlite { .. } => None,
            Backend::Postgres(pool) => Some(pool),
        }
    }

    pub(super) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        match &self.backend {
            Backend::Sqlite { conn, .. } => conn.lock().unwrap_or_else(|e| e.into_inner()),
            Backend::Postgres(_) => unreachable!("a SQLite statement on the PostgreSQL run store"),
        }
    }

    /// Where the store is, for messages: the file, or the database's URL (password
    /// hidden).
    pub fn location(&self) -> std::path::PathBuf {
        match &self.backend {
            Backend::Sqlite { path, .. } => path.clone(),
            Backend::Postgres(pool) => pool.url().redacted().to_string().into(),
        }
    }

    /// The error of `what` failing with `source`.
    pub(super) fn failed(
        &self,
        what: &'static str,
    ) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Storage {
            what,
            path: self.location(),
            source,
        }
    }

    /// Removes runs that ended before `before` (ms since the epoch), with their steps,
    /// calls and approvals; returns how many.
    pub fn prune(&self, before: i64) -> Result<usize, StoreError> {
        if let Some(pool) = self.pg() {
            return postgres::prune(pool, before);
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let old = "SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at < ?1";
        for table in ["steps", "calls", "approvals"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE run IN ({old})"),
                [before],
            )?;
        }
        let n = tx.execute(
            "DELETE FROM runs WHERE finished_at IS NOT NULL AND finished_at < ?1",
            [before],
        )?;
        tx.commit().map_err(self.failed("pruning old runs"))?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
