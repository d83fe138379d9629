//! What can go wrong with a registry, an artifact, a key or a signature.
//!
//! Each kind names the reference (or file) and says what to do; the registry client's
//! own error is kept as the source, so `{:#}` prints the whole chain.

use std::path::PathBuf;

/// Another crate's error, held as it is.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error of `warden-oci`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OciError {
    /// A reference that is not `oci://REGISTRY/REPO:TAG` or `…@sha256:DIGEST`.
    #[error("{reference:?} is not a registry reference: {problem}")]
    Reference {
        /// As given.
        reference: String,
        /// What is wrong, and what to write.
        problem: String,
    },
    /// The registry could not be reached (no connection, refused, timed out, TLS).
    #[error(
        "registry {registry} is unreachable ({reference}); check the address and that it is up"
    )]
    Unreachable {
        /// The registry.
        registry: String,
        /// The reference being fetched or pushed.
        reference: String,
        /// The connection error.
        #[source]
        source: BoxError,
    },
    /// The tag or digest is not in the repository (or the repository does not exist).
    #[error(
        "{reference} was not found in the registry; check the tag (or digest) and the repository"
    )]
    NotFound {
        /// The reference.
        reference: String,
    },
    /// The registry refused the credentials, or wants some.
    #[error(
        "registry {registry} refused access to {reference}; log in (docker login {registry}, or set WARDEN_REGISTRY_USERNAME and WARDEN_REGISTRY_PASSWORD)"
    )]
    Unauthorized {
        /// The registry.
        registry: String,
        /// The reference.
        reference: String,
        /// What the registry said.
        #[source]
        source: BoxError,
    },
    /// Any other answer of the registry that is not what the protocol promises.
    #[error("registry {registry}: {action} {reference}")]
    Registry {
        /// The registry.
        registry: String,
        /// What Warden was doing (`pulling`, `pushing`, …).
        action: &'static str,
        /// The reference.
        reference: String,
        /// The client's error.
        #[source]
        source: BoxError,
    },
    /// The artifact is not a Wasm component in the Wasm OCI artifact layout.
    #[error("{reference} is not a Wasm component artifact: {found}")]
    NotWasm {
        /// The reference.
        reference: String,
        /// What it is instead, and what was expected.
        found: String,
    },
    /// Content whose digest is not the one it was asked for by (a tampered or corrupt blob).
    #[error(
        "{reference}: the {what} does not match its digest (expected {expected}, got {found}); it was refused"
    )]
    DigestMismatch {
        /// The reference.
        reference: String,
        /// `component layer`, `manifest`, …
        what: &'static str,
        /// The digest asked for.
        expected: String,
        /// The digest of what arrived.
        found: String,
    },
    /// Registry credentials that cannot be read (a Docker config or a helper).
    #[error("registry credentials for {registry}: {problem}")]
    Credentials {
        /// The registry.
        registry: String,
        /// What is wrong, and where.
        problem: String,
    },
    /// A key file that cannot be read or is not a key Warden can use.
    #[error("key {}: {problem}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what to use instead.
        problem: String,
    },
    /// A Sigstore trusted root file that cannot be used.
    #[error("trusted root {}: {problem}", path.display())]
    TrustedRoot {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what to use instead.
        problem: String,
    },
    /// The artifact has no signature that the trust policy accepts.
    #[error("{reference} is refused: {found}; expected {expected}")]
    Untrusted {
        /// The reference.
        reference: String,
        /// What signature the policy wanted (which keys, for which repositories).
        expected: String,
        /// What was found.
        found: String,
    },
    /// Reading or writing a local file.
    #[error("{action} {}", path.display())]
    File {
        /// What Warden was doing.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The system's random number generator failed (making a key).
    #[error("getting random bytes: {0}")]
    Random(String),
}

impl OciError {
    /// Maps an `oci-client` error met while doing `action` on `reference`.
    pub(crate) fn client(
        action: &'static str,
        reference: &crate::OciRef,
        err: oci_client::errors::OciDistributionError,
    ) -> Self {
        use oci_client::errors::{OciDistributionError as E, OciErrorCode};
        let registry = reference.registry().to_string();
        let shown = reference.to_string();
        match err {
            E::RequestError(e) if e.is_connect() || e.is_timeout() => Self::Unreachable {
                registry,
                reference: shown,
                source: Box::new(e),
            },
            E::ImageManifestNotFoundError(_) => Self::NotFound { reference: shown },
            E::RegistryError { envelope, url }
                if envelope.errors.iter().any(|e| {
                    matches!(
                        e.code,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                    )
                }) && action != "pushing" =>
            {
                let _ = url;
                Self::NotFound { reference: shown }
            }
            E::ServerError { code: 404, .. } if action != "pushing" => {
                Self::NotFound { reference: shown }
            }
            E::DigestError(oci_client::errors::DigestError::VerificationError {
                expected,
                actual,
            }) => Self::DigestMismatch {
                reference: shown,
                what: "content",
                expected,
                found: actual,
            },
            err @ (E::UnauthorizedError { .. } | E::AuthenticationFailure(_)) => {
                Self::Unauthorized {
                    registry,
                    reference: shown,
                    source: Box::new(err),
                }
            }
            E::RegistryError { envelope, url }
                if envelope.errors.iter().any(|e| {
                    matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)
                }) =>
            {
                Self::Unauthorized {
                    registry,
                    reference: shown,
                    source: Box::new(E::RegistryError { envelope, url }),
                }
            }
            other => Self::Registry {
                registry,
                action,
                reference: shown,
                source: Box::new(other),
            },
        }
    }
}
