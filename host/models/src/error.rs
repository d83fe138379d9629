//! What can go wrong when the models configuration is checked, a router is set up or
//! a budget ledger is opened. (A call's failures are [`RouteError`](crate::RouteError).)
//!
//! Every error here prints its message with `{}`; `{:#}` adds each cause after
//! `": "`, as `anyhow` prints a chain.

use std::error::Error;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// A `[models]` configuration that is not valid (what the types cannot say).
#[derive(Debug, thiserror::Error)]
pub enum ModelsConfigError {
    /// A provider's `base_url` is not an HTTP URL.
    #[error(
        "[models.providers.{provider}] base_url = {base_url:?} must start with http:// or https://"
    )]
    BaseUrl {
        /// The provider.
        provider: String,
        /// Its `base_url`.
        base_url: String,
    },
    /// A route without targets.
    #[error("[models.routes.{route}] has no targets")]
    NoTargets {
        /// The route.
        route: String,
    },
    /// A target that is not `provider/model`.
    #[error("[models.routes.{route}] target {target:?} is not provider/model")]
    Target {
        /// The route.
        route: String,
        /// The target as written.
        target: String,
    },
    /// A target naming a provider that is not configured (or no model).
    #[error(
        "[models.routes.{route}] target {target:?}: no provider {provider:?} (providers: {})",
        providers.join(", ")
    )]
    UnknownProvider {
        /// The route.
        route: String,
        /// The target as written.
        target: String,
        /// The provider it names.
        provider: String,
        /// The providers configured.
        providers: Vec<String>,
    },
    /// A `weighted` route without one weight per target.
    #[error("[models.routes.{route}] weighted: give one weight per target")]
    Weights {
        /// The route.
        route: String,
    },
    /// A route budget for a route that is not configured.
    #[error("[models.budgets.routes.{route}]: no route {route:?} (routes: {})", routes.join(", "))]
    UnknownRoute {
        /// The route the budget names.
        route: String,
        /// The routes configured.
        routes: Vec<String>,
    },
    /// A budget's `cost_per_day` that is negative or not a number.
    #[error("[models.budgets.{budget}] cost_per_day must be a number of US dollars, 0 or more")]
    Cost {
        /// The budget (`principals."…"` or `routes.…`).
        budget: String,
    },
}

/// A router that could not be set up. It prints as the error it holds.
#[derive(Debug)]
pub enum SetupError {
    /// The configuration is not valid.
    Config(ModelsConfigError),
    /// The TLS client configuration could not be built (as `warden-net` says it).
    Tls(Box<dyn Error + Send + Sync + 'static>),
    /// A provider's HTTP client could not be built (as `reqwest` says it).
    Client(reqwest::Error),
}

impl From<ModelsConfigError> for SetupError {
    fn from(err: ModelsConfigError) -> Self {
        Self::Config(err)
    }
}

impl From<reqwest::Error> for SetupError {
    fn from(err: reqwest::Error) -> Self {
        Self::Client(err)
    }
}

impl Error for SetupError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Config(err) => err.source(),
            Self::Tls(err) => err.source(),
            Self::Client(err) => err.source(),
        }
    }
}

/// A budget ledger that could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The ledger's file (or its directory) could not be created.
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// SQLite could not open or set up the ledger.
    Open {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The ledger would not switch to WAL mode.
    NotWal {
        /// The file.
        path: PathBuf,
        /// The journal mode SQLite kept.
        mode: String,
    },
    /// A read or transaction failed (as SQLite says it).
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// A read or transaction on the cluster's database failed (as it says it).
    #[error(transparent)]
    Postgres(#[from] warden_postgres::PgError),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(err) => write!(f, "{err}"),
            Self::Tls(err) => write!(f, "{err}"),
            Self::Client(err) => write!(f, "{err}"),
        }?;
        causes(self, f)
    }
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Create { path, .. } => write!(f, "creating {}", path.display()),
            Self::Open { path, .. } => write!(f, "opening the budget ledger {}", path.display()),
            Self::NotWal { path, mode } => write!(
                f,
                "{}: could not switch to WAL mode (got {mode})",
                path.display()
            ),
            Self::Sqlite(err) => write!(f, "{err}"),
            Self::Postgres(err) => write!(f, "{err}"),
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
