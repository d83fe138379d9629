//! Where a node keeps its state: the home's SQLite files (the default), or the
//! cluster's PostgreSQL database (`[storage] url`, `WARDEN_DATABASE_URL`) for the audit
//! log, memory, model budgets, and agent runs with their approvals. Every command that opens one of them opens it here,
//! so `warden serve`, `warden call` and `warden audit verify` of one config agree.
//!
//! Opening the database connects and migrates it first: a wrong URL, an unreachable
//! server or a wrong password stops the command before anything else starts.

use std::path::Path;
use std::sync::Arc;

use warden_audit::{Audit, AuditError, AuditOptions};
use warden_config::storage::StorageConfig;
use warden_memory::{PgMemory, SqliteMemory, StoreError};
use warden_models::{Ledger, LedgerError};
use warden_postgres::{DatabaseUrl, PgError, Pool};
use warden_runs::store::{RunStore, StoreError as RunStoreError};

/// The memory store's file in the home (the embedded default).
pub const MEMORY_FILE: &str = "memory.db";

/// The stores of one node.
#[derive(Clone, Default)]
pub struct Storage {
    pool: Option<Pool>,
}

impl Storage {
    /// The home's SQLite files.
    pub fn embedded() -> Self {
        Self { pool: None }
    }

    /// What `config` names: the database (connected and migrated), or the home's
    /// files.
    pub fn open(config: &StorageConfig) -> Result<Self, PgError> {
        let Some(url) = config.database_url() else {
            return Ok(Self::embedded());
        };
        let url = DatabaseUrl::parse(&url)?;
        let pool = Pool::connect(&url, config.pool_size)?;
        let applied = warden_postgres::migrate::migrate(&pool)?;
        if !applied.is_empty() {
            tracing::info!(database = %url, migrations = applied.len(), "database schema migrated");
        }
        Ok(Self { pool: Some(pool) })
    }

    /// The cluster's database, if this node uses one.
    pub fn pool(&self) -> Option<&Pool> {
        self.pool.as_ref()
    }

    /// Where the audit log is, for messages: the database's URL (password hidden) or
    /// the home's file.
    pub fn audit_location(&self, home: &Path) -> String {
        match &self.pool {
            Some(pool) => pool.url().redacted().to_string(),
            None => home
                .join(warden_audit::sqlite::FILE_NAME)
                .display()
                .to_string(),
        }
    }

    /// The audit log; checkpoints are signed with `<home>/audit.key` (in a cluster,
    /// every node holds the same key).
    pub fn audit(&self, home: &Path, options: AuditOptions) -> Result<Audit, AuditError> {
        match &self.pool {
            None => Audit::open(home, options),
            Some(pool) => Audit::with_store(
                Box::new(warden_audit::postgres::PgStore::open(pool.url())?),
                home,
                options,
            ),
        }
    }

    /// The memory store.
    pub fn memory(&self, home: &Path) -> Result<Arc<dyn warden_memory::Store>, StoreError> {
        Ok(match &self.pool {
            None => Arc::new(SqliteMemory::open(&home.join(MEMORY_FILE))?),
            Some(pool) => Arc::new(PgMemory::new(pool.clone())),
        })
    }

    /// The model budgets' ledger.
    pub fn ledger(&self, home: &Path) -> Result<Ledger, LedgerError> {
        match &self.pool {
            None => Ledger::open_home(home),
            Some(pool) => Ok(Ledger::postgres(pool.clone())),
        }
    }

    /// The run store: agent runs and the approvals queue.
    pub fn runs(&self, home: &Path) -> Result<RunStore, RunStoreError> {
        match &self.pool {
            None => RunStore::open(&home.join(warden_runs::store::FILE_NAME)),
            Some(pool) => Ok(RunStore::postgres(pool.clone())),
        }
    }

    /// The lease of a run for `config` (`[runs] lease_ms`): its default is
    /// [`warden_runs::LEASE`] on one machine, [`warden_runs::CLUSTER_LEASE`] in a
    /// cluster.
    pub fn run_lease(&self, config: &warden_runs::RunsConfig) -> std::time::Duration {
        match (config.lease_ms, &self.pool) {
            (Some(ms), _) => std::time::Duration::from_millis(ms),
            (None, None) => warden_runs::LEASE,
            (None, Some(_)) => warden_runs::CLUSTER_LEASE,
        }
    }
}
