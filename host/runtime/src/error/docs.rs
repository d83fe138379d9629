//! What can go wrong reading WIT docs, and exporting or resolving Warden's own WIT
//! packages.

use std::io;
use std::path::PathBuf;

use super::BoxError;

/// WIT docs that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    /// The `package-docs` JSON does not parse.
    #[error("parsing package-docs JSON")]
    Json(#[source] serde_json::Error),
    /// The `package-docs` section has a version this Warden does not read.
    #[error("package-docs section has version {0}; this Warden reads 0 and 1")]
    Version(u8),
    /// The `package-docs` section is empty.
    #[error("package-docs section is empty")]
    Empty,
    /// The `package-docs` section is not UTF-8.
    #[error("package-docs is not UTF-8")]
    Utf8(#[source] std::str::Utf8Error),
    /// Warden's own WIT packages did not resolve.
    #[error(transparent)]
    Wit(#[from] WitError),
    /// The WIT source in a directory could not be read or resolved.
    #[error("reading WIT from {}", path.display())]
    Read {
        /// The directory.
        path: PathBuf,
        /// wit-parser's error.
        #[source]
        source: BoxError,
    },
    /// The docs could not be encoded as a `package-docs` section.
    #[error("encoding WIT docs")]
    Encode(#[source] BoxError),
}

/// Warden's WIT packages could not be exported or resolved.
#[derive(Debug, thiserror::Error)]
pub enum WitError {
    /// A package's directory could not be created.
    #[error("creating {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A file could not be written.
    #[error("writing {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An embedded package does not parse.
    #[error("parsing Warden's WIT package {package}")]
    Parse {
        /// The package's directory name.
        package: &'static str,
        /// wit-parser's error.
        #[source]
        source: BoxError,
    },
    /// An embedded package does not resolve.
    #[error("resolving Warden's WIT package {package}")]
    Resolve {
        /// The package's directory name.
        package: &'static str,
        /// wit-parser's error.
        #[source]
        source: BoxError,
    },
}
