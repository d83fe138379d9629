//! PostgreSQL, the shared store of a cluster of Warden nodes (`[storage] url` in
//! `warden.toml`, or `WARDEN_DATABASE_URL`). Without it every store stays the home's
//! SQLite file.
//!
//! - [`url`]: the database's address, shown with its password hidden;
//! - [`pool`]: connections on threads of their own, usable from any thread or task;
//! - [`migrate`]: the versioned schema, applied on start and by `warden db migrate`;
//! - `testing` (feature): a throwaway server on loopback for tests.
//!
//! The concerns' own code (audit, memory, budgets) holds the SQL that reads and writes
//! their tables; the tables are made here, by [`migrate`], in one numbered sequence.

mod error;
pub mod migrate;
pub mod pool;
#[cfg(feature = "testing")]
pub mod testing;
pub mod url;

pub use error::PgError;
pub use pool::{Pool, PoolStats};
pub use url::DatabaseUrl;

/// The error a statement returns.
pub use postgres::Error as SqlError;
/// Runs `f` where the blocking client may run: here, unless this thread drives tasks
/// of a tokio runtime (the client blocks on a runtime of its own, which tokio forbids
/// there), then on a scoped thread of its own. For what a store does from code that
/// may be called either way (setting up, dropping a connection).
pub fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// What notifications are read with (`next`, `count`).
pub use postgres::fallible_iterator::FallibleIterator;
/// The client type the stores use.
pub use postgres::{Client, GenericClient, Row, Transaction};
