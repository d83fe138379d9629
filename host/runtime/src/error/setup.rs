//! What can go wrong setting up the runtime, or the store of one call.

use std::path::PathBuf;

use super::BoxError;

/// The runtime, or the store of one call, could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The wasmtime engine could not be created.
    #[error("creating the wasmtime engine")]
    Engine(#[source] BoxError),
    /// A host interface could not be put into the linker.
    #[error("{what}")]
    Link {
        /// What was being linked (`linking WASI`, …).
        what: &'static str,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// A part of the runtime that is set once was set already.
    #[error("this runtime already {what}")]
    AlreadySet {
        /// What it has already (`has a memory store`, …).
        what: &'static str,
    },
    /// A directory the grant gives could not be opened for a call.
    #[error("opening the granted directory {} ([[fs]] host)", path.display())]
    GrantedDir {
        /// The directory on the host.
        path: PathBuf,
        /// The cause.
        #[source]
        source: BoxError,
    },
}
