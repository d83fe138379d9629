//! What can go wrong with the compile cache.

use std::io;
use std::path::PathBuf;

use super::BoxError;

/// The compile cache could not be opened, or a component could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The cache directory could not be created.
    #[error("creating the compile cache {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The OS gave no randomness for the cache's key.
    #[error("reading OS randomness: {0}")]
    Randomness(getrandom::Error),
    /// The cache's key could not be written.
    #[error("writing the cache key {}", path.display())]
    WriteKey {
        /// The key file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: tempfile::PersistError,
    },
    /// A compiled entry could not be put in place.
    #[error(transparent)]
    Persist(#[from] tempfile::PersistError),
    /// Reading or writing in the cache directory failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// wasmtime could not compile the component (or serialize the compiled code).
    #[error(transparent)]
    Compile(BoxError),
}
