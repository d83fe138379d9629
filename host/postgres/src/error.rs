//! What can go wrong with the database.

/// The database could not be reached, set up, or used.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// `[storage] url` is not a PostgreSQL URL.
    #[error(
        "[storage] url {url:?} is not a PostgreSQL URL ({reason}); write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE"
    )]
    BadUrl {
        /// The URL, its password hidden.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server could not be reached or refused the login.
    #[error(
        "cannot connect to the database at {url}: {}; check that the server runs, and the user, password and database in [storage] url (or WARDEN_DATABASE_URL)",
        describe(error)
    )]
    Connect {
        /// The URL, its password hidden.
        url: String,
        /// What the client said (in the message, not a separate cause).
        error: postgres::Error,
    },
    /// A statement failed.
    #[error("database {url}: {action}: {}", describe(error))]
    Sql {
        /// The URL, its password hidden.
        url: String,
        /// What was being done.
        action: String,
        /// What the server said (in the message, not a separate cause).
        error: postgres::Error,
    },
    /// The database holds a schema newer than this binary knows.
    #[error(
        "database {url} has schema version {found}, newer than this warden's {known}: upgrade warden on this node to the version the other nodes run"
    )]
    TooNew {
        /// The URL, its password hidden.
        url: String,
        /// The database's version.
        found: i32,
        /// The newest this binary knows.
        known: i32,
    },
    /// The database's schema is older than this binary's and it was not migrated.
    #[error(
        "database {url} has schema version {found}, older than this warden's {known}: run `warden db migrate`"
    )]
    TooOld {
        /// The URL, its password hidden.
        url: String,
        /// The database's version.
        found: i32,
        /// The newest this binary knows.
        known: i32,
    },
    /// A thread of the pool could not be started.
    #[error("cannot start a database connection thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The pool's threads are gone (the process is stopping).
    #[error("database {url}: the connection pool has stopped")]
    Stopped {
        /// The URL, its password hidden.
        url: String,
    },
}

impl PgError {
    /// Whether the connection broke (as opposed to a statement the server refused):
    /// the pool reconnects before the next statement.
    pub fn is_connection(&self) -> bool {
        match self {
            Self::Connect { .. } => true,
            Self::Sql { error, .. } => error.is_closed() || error.as_db_error().is_none(),
            _ => false,
        }
    }
}

/// What the client or server said: a server's message with its detail and hint (the
/// client's own `Display` of a server error is only "db error").
fn describe(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = db.message().to_string();
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("; hint: {hint}"));
            }
            text
        }
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}
