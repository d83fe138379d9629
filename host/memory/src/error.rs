//! What can go wrong in a memory store or with the embedding route. (What a plugin is
//! told is [`MemoryError`](crate::MemoryError).)
//!
//! Every error here prints its message with `{}`; `{:#}` adds each cause after
//! `": "`, as `anyhow` prints a chain.

use std::error::Error;
use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::sqlite::SEARCH_BUDGET;

/// Another crate's error, held as it is.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// A memory store that could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store's file (or its directory) could not be created.
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// SQLite could not open the store.
    Open {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The store's tables could not be created.
    Schema {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A read or write failed.
    Query {
        /// What was being done ("reading a memory entry"…).
        action: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A search ran past its time budget and was stopped.
    TooLong {
        /// The search ("searching memory documents"…).
        action: &'static str,
    },
    /// A statement SQLite refused (as SQLite says it).
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// Another [`Store`](crate::Store)'s failure, as it reports it.
    #[error(transparent)]
    Other(BoxError),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Create { path, .. } => write!(f, "creating {}", path.display()),
            Self::Open { path, .. } => write!(f, "opening the memory store {}", path.display()),
            Self::Schema { path, .. } => {
                write!(f, "creating the memory schema in {}", path.display())
            }
            Self::Query { action, .. } => f.write_str(action),
            Self::TooLong { action } => write!(
                f,
                "{action} ran longer than {} ms and was stopped; narrow the query or the filter",
                SEARCH_BUDGET.as_millis()
            ),
            Self::Sqlite(err) => write!(f, "{err}"),
            Self::Other(err) => write!(f, "{err}"),
        }?;
        causes(self, f)
    }
}

/// The embedding route: not usable as configured, or no target of it answered.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// `[memory] embedding_route` names no route.
    UnknownRoute {
        /// The route.
        route: String,
    },
    /// A target of the route that is not `provider/model`.
    Target {
        /// The route.
        route: String,
        /// The target as written.
        target: String,
    },
    /// A target naming a provider that is not configured.
    UnknownProvider {
        /// The route.
        route: String,
        /// The target as written.
        target: String,
        /// The provider it names.
        provider: String,
    },
    /// A provider without an OpenAI-compatible embeddings API.
    NotOpenai {
        /// The route.
        route: String,
        /// The provider.
        provider: String,
    },
    /// The TLS client configuration could not be built (as `warden-net` says it).
    #[error(transparent)]
    Tls(BoxError),
    /// The HTTP client could not be built, or a request failed (as `reqwest` says it).
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// Every target failed; each failure is in the message.
    NoTarget {
        /// The route.
        route: String,
        /// Each target (`provider/model`) with its failure.
        failures: Vec<(String, EmbedError)>,
    },
    /// The provider's API key variable is not set.
    KeyNotSet {
        /// The variable.
        var: String,
        /// Why it could not be read.
        #[source]
        source: std::env::VarError,
    },
    /// The answer is not JSON.
    NotJson(#[source] reqwest::Error),
    /// The provider answered with an error status.
    Status {
        /// The status.
        status: reqwest::StatusCode,
        /// The provider's message (`no message` if it gave none).
        message: String,
    },
    /// The answer is JSON but not embeddings of the inputs; says what is wrong
    /// ("the answer has no `data` list"…).
    Answer(String),
}

impl fmt::Display for EmbedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownRoute { route } => write!(
                f,
                "[memory] embedding_route = {route:?}: no such route in [models.routes] (add one whose targets are embedding models)"
            ),
            Self::Target { route, target } => write!(
                f,
                "[models.routes.{route}] target {target:?}: write it as provider/model"
            ),
            Self::UnknownProvider {
                route,
                target,
                provider,
            } => write!(
                f,
                "[models.routes.{route}] target {target:?}: no provider {provider:?}"
            ),
            Self::NotOpenai { route, provider } => write!(
                f,
                "[memory] embedding_route = {route:?}: provider {provider:?} is not OpenAI-compatible, and only those have an embeddings API here"
            ),
            Self::Tls(err) => write!(f, "{err}"),
            Self::Http(err) => write!(f, "{err}"),
            Self::NoTarget { route, failures } => {
                write!(f, "embedding route {route:?}: no target answered (")?;
                for (i, (target, err)) in failures.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "; " };
                    write!(f, "{sep}{target}: {err:#}")?;
                }
                f.write_str(")")
            }
            Self::KeyNotSet { var, .. } => {
                write!(f, "the environment variable {var} is not set for Warden")
            }
            Self::NotJson(_) => f.write_str("the answer is not JSON"),
            Self::Status { status, message } => write!(f, "HTTP {status}: {message}"),
            Self::Answer(message) => f.write_str(message),
        }?;
        causes(self, f)
    }
}

/// With `{:#}`, each cause of `err` after `": "`, as `anyhow` prints a chain.
fn causes(err: &dyn Error, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if f.alternate() {
        let mut cause = err.source();
        while let Some(err) = cause {
            write!(f, ": {err}")?;
            cause = err.source();
        }
    }
    Ok(())
}
