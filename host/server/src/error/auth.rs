//! An `[[auth.issuers]]` entry whose keys cannot be had when the config is loaded.

use std::io;
use std::path::PathBuf;

/// The OAuth issuers of a config could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// `jwks_file` could not be read.
    #[error(
        "[[auth.issuers]] {issuer:?}: jwks_file {}: cannot be read; check the path (relative to the config file's directory) or use jwks_url",
        path.display()
    )]
    ReadKeys {
        /// The issuer.
        issuer: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// `jwks_file` is not a JWK Set.
    #[error(
        "[[auth.issuers]] {issuer:?}: jwks_file {}: not a JWK Set ({{\"keys\": [...]}}): {error}",
        path.display()
    )]
    ParseKeys {
        /// The issuer.
        issuer: String,
        /// The file.
        path: PathBuf,
        /// What the JSON parser said (part of the message).
        error: String,
    },
    /// `jwks_file` holds no key Warden can verify signatures with.
    #[error(
        "[[auth.issuers]] {issuer:?}: jwks_file {}: no usable signing key (RSA, EC P-256/P-384 or Ed25519 public keys; symmetric keys are never accepted)",
        path.display()
    )]
    NoKeys {
        /// The issuer.
        issuer: String,
        /// The file.
        path: PathBuf,
    },
    /// The HTTP client that fetches `jwks_url` could not be made.
    #[error("[[auth.issuers]] {issuer:?}: setting up the HTTP client for jwks_url: {error}")]
    Client {
        /// The issuer.
        issuer: String,
        /// What failed (part of the message).
        error: String,
    },
}
