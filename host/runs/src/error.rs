//! Why a run could not be started, driven or decided on.

use warden_runtime::error::BoxError;

use crate::store::StoreError;

/// Why a run could not be started, driven or decided on.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No such run, approval or agent.
    #[error("{0}")]
    NotFound(String),
    /// The request is wrong (not an agent, a decision on a decided approval…).
    #[error("{0}")]
    Invalid(String),
    /// The access policy refused it.
    #[error("{0}")]
    Denied(String),
    /// The run store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit log could not record a step of the run (so the run goes no further).
    #[error("the audit log could not record a step of the run")]
    Audit(#[source] BoxError),
}
