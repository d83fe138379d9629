//! What can go wrong starting to serve: the HTTP server, or MCP over stdio.

use std::io;
use std::path::PathBuf;

use warden_runs::store::StoreError;
use warden_runtime::error::{BoxError, CacheError, HomeError, SetupError};

use super::WatchError;

/// A server could not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The runtime could not be set up.
    #[error(transparent)]
    Runtime(#[from] SetupError),
    /// The config is not valid (its `[audit]` settings).
    #[error(transparent)]
    Config(BoxError),
    /// The cluster's database could not be reached, or its schema is another
    /// version's.
    #[error(transparent)]
    Storage(warden_postgres::PgError),
    /// The audit log could not be opened.
    #[error("opening the audit log at {location}")]
    Audit {
        /// The log's file, or the database's URL (password hidden).
        location: String,
        /// The audit log's error.
        #[source]
        source: BoxError,
    },
    /// The home's memory store could not be opened.
    #[error("opening the memory store {}", path.display())]
    Memory {
        /// The store's file.
        path: PathBuf,
        /// The memory store's error.
        #[source]
        source: BoxError,
    },
    /// The model router or its spending ledger could not be set up.
    #[error(transparent)]
    Models(BoxError),
    /// The embedder of hybrid memory search could not be set up.
    #[error(transparent)]
    Embedder(BoxError),
    /// The OAuth issuers' keys could not be read.
    #[error(transparent)]
    Auth(#[from] super::AuthError),
    /// The `[trust]` keys could not be read.
    #[error("reading the [trust] keys of the config")]
    Trust(#[source] BoxError),
    /// The access policy could not be loaded.
    #[error("loading the access policy (check it with `warden policy check`)")]
    Policy(#[source] BoxError),
    /// The home's compile cache could not be opened.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The home's plugins could not be listed.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The agent runs could not be opened.
    #[error("opening the agent runs")]
    Runs(#[source] StoreError),
    /// The home could not be watched for changes.
    #[error(transparent)]
    Watch(#[from] WatchError),
    /// The listener failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The MCP session with a client could not start.
    #[error(transparent)]
    McpInit(BoxError),
    /// The task serving an MCP client failed.
    #[error(transparent)]
    McpTask(#[from] tokio::task::JoinError),
}
