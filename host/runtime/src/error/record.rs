//! What can go wrong writing the audit records the runtime writes: changes to a
//! home, and what a call or a step did at the host boundary.

use super::BoxError;

/// The audit log could not record something; what was done is not on the record.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A change was made, but its audit record could not be written.
    #[error(
        "the change was made, but its audit record ({kind}) could not be written; check the home's audit.db and `warden audit verify`"
    )]
    Change {
        /// The kind of the record (`plugin.add`, …).
        kind: String,
        /// The audit log's error.
        #[source]
        source: BoxError,
    },
    /// The audit log refused the records (its own error, as it said it).
    #[error(transparent)]
    Append(BoxError),
    /// A call's records could not be written, so its result is withheld.
    #[error("the audit log could not record this call, so its result is withheld")]
    Call(#[source] BoxError),
    /// A step's uses of host services could not be recorded, so its output is withheld.
    #[error(
        "the audit log could not record the step's use of host services, so its output is withheld"
    )]
    Step(#[source] BoxError),
}
