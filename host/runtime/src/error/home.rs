//! What can go wrong reading and changing a home directory.

use std::io;
use std::path::PathBuf;

use super::BoxError;

/// The home's plugins or grants could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    /// The plugin name is not one Warden accepts.
    #[error(transparent)]
    InvalidName(BoxError),
    /// No plugin of that name is installed.
    #[error(
        "no plugin named \"{name}\" in {}{}",
        root.display(),
        if *hint { " (see `warden plugin list`; add one with `warden plugin add PATH.wasm`)" } else { "" }
    )]
    NotInstalled {
        /// The name asked for.
        name: String,
        /// The home.
        root: PathBuf,
        /// Whether the message says how to list and add plugins.
        hint: bool,
    },
    /// A file or directory of the home could not be read or changed.
    #[error("{action} {}", path.display())]
    File {
        /// What was being done (`reading`, `creating`, `moving aside`…).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A file could not be put in place.
    #[error("writing {}", path.display())]
    Persist {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: tempfile::PersistError,
    },
    /// A plugin's record (`plugin.json`) does not parse.
    #[error("parsing {}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A grant could not be read, or is not valid.
    #[error(transparent)]
    Grant(BoxError),
    /// The grant of a removed plugin could not be removed.
    #[error("removing the grant of {name}")]
    RemoveGrant {
        /// The plugin.
        name: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Other I/O in the home (a staged file, a directory listing).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A plugin's record could not be serialized.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}
