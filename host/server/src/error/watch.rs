//! What can go wrong starting to watch a home for changes.

use std::io;
use std::path::PathBuf;

/// The home could not be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// A directory to watch could not be created.
    #[error("creating {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A directory to watch could not be resolved.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The file watcher could not be started.
    #[error("starting the file watcher")]
    Start(#[source] notify::Error),
    /// The home's `plugins/` or `grants/` could not be watched.
    #[error(transparent)]
    Notify(#[from] notify::Error),
}
