//! What can go wrong with the run store.

use std::io;
use std::path::PathBuf;

/// The run store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store's file could not be created.
    #[error("creating {}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The store could not be opened or set up.
    #[error("opening the run store {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// SQLite would not use its write-ahead log for the store.
    #[error("{}: could not switch to WAL mode (got {mode})", path.display())]
    NotWal {
        /// The file.
        path: PathBuf,
        /// The journal mode SQLite answered with.
        mode: String,
    },
    /// A read or a write of the store failed.
    #[error("{what} in the run store {}", path.display())]
    Storage {
        /// What was being done (`reading a run`, `recording a step`…).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// SQLite failed preparing or running a statement (its own message).
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// The cluster's database failed a read or a write (the message names the
    /// database, password hidden, and what was being done).
    #[error(transparent)]
    Postgres(#[from] warden_postgres::PgError),
    /// A value read from the database is not one the store writes.
    #[error("the run store holds a value it cannot read: {0}")]
    Corrupt(String),
    /// An approval just written could not be read back.
    #[error("the approval just recorded is missing")]
    ApprovalMissing,
}
