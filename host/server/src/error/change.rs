//! What can go wrong changing a home's plugins through the registry.

use warden_runtime::error::{HomeError, RecordError};

/// A change to the home asked for through [`Registry`](crate::registry::Registry)
/// that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// No such plugin.
    #[error("no plugin named \"{0}\" is installed (GET /v1/plugins lists them)")]
    NotFound(String),
    /// The request is wrong: a bad name, a component or grant that does not load.
    #[error("{0}")]
    Invalid(String),
    /// The home could not be changed (I/O).
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The change was made, but its audit record could not be written.
    #[error(transparent)]
    NotRecorded(#[from] RecordError),
    /// The server keeps no audit log, so it makes no changes.
    #[error("the server has no audit log to record changes in")]
    NoAudit,
}
