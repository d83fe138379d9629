//! Plugins as OCI artifacts: pulled from and pushed to registries, signed and verified
//! with cosign-compatible signatures, judged by the operator's trust policy.
//!
//! - [`reference`]: `oci://REGISTRY/REPO:TAG` and `…@sha256:DIGEST`;
//! - [`artifact`]: the Wasm OCI artifact layout (an `application/wasm` layer, a
//!   `application/vnd.wasm.config.v0+json` config, Warden's annotations);
//! - [`registry`]: one registry's client: pull (every blob checked against its
//!   digest), push, signatures; and its Sigstore bundles, attached as OCI referrers;
//! - [`cosign`]: cosign's simple-signing payload, ECDSA P-256 keys and signatures;
//! - [`sigstore`]: keyless signatures, Sigstore bundles verified offline against a
//!   trusted root file;
//! - [`trust`]: `[trust]` of `warden.toml` judging the signatures found;
//! - [`auth`]: registry credentials, from the environment or Docker's config file.
//!
//! This crate touches the network (the registries named by references) and reads key
//! files, trusted root files and Docker's config; it never writes to a Warden home.

pub mod artifact;
pub mod auth;
pub mod cosign;
mod error;
pub mod reference;
mod referrers;
pub mod registry;
pub mod sigstore;
pub mod trust;

pub use error::{BoxError, OciError};
pub use reference::OciRef;
pub use registry::{Pulled, Registry};
pub use trust::{TrustPolicy, Verdict};

use warden_config::trust::Provenance;

/// A component pulled, with what its signatures come to.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The pulled artifact.
    pub pulled: Pulled,
    /// What its signatures come to under the policy it was judged by.
    pub verdict: Verdict,
}

impl Fetched {
    /// Its provenance as the home records it, or the refusal of `policy` (an
    /// unsigned artifact under `require_signatures`).
    pub fn provenance(&self, policy: &TrustPolicy) -> Result<Provenance, OciError> {
        let reference = &self.pulled.reference;
        Ok(Provenance {
            reference: reference.to_string(),
            manifest_digest: self.pulled.manifest_digest.clone(),
            signature: policy.decide(reference, &self.pulled.digest, self.verdict.clone())?,
        })
    }
}

/// Pulls `reference` (the manifest and the component, each checked against its
/// digest), reads the signatures beside it and judges them by `policy`.
pub async fn fetch(reference: &OciRef, policy: &TrustPolicy) -> Result<Fetched, OciError> {
    let registry = Registry::connect(reference)?;
    let pulled = registry.pull(reference).await?;
    let mut signatures = registry
        .signatures(reference, &pulled.manifest_digest)
        .await?;
    if policy.has_identities() {
        signatures.extend(registry.bundles(reference, &pulled.manifest_digest).await?);
    }
    let verdict = policy.judge(reference, &pulled.manifest_digest, &signatures);
    tracing::debug!(reference = %reference, manifest = %pulled.manifest_digest, ?verdict, "pulled");
    Ok(Fetched { pulled, verdict })
}

/// Signs the artifact `reference` names with `key` and stores the signature beside it
/// (cosign's format); returns the manifest digest signed.
pub async fn sign(reference: &OciRef, key: &cosign::PrivateKey) -> Result<String, OciError> {
    let registry = Registry::connect(reference)?;
    let digest = registry.resolve(reference).await?;
    let payload = cosign::payload(&reference.name(), &digest);
    let signature = key.sign(&payload);
    registry
        .push_signature(reference, &digest, payload, signature, Default::default())
        .await?;
    Ok(digest)
}

/// Stores a cosign signature made elsewhere beside the artifact `reference` names:
/// `payload` (simple signing), its base64 `signature`, and the layer's `annotations`
/// (cosign 2's keyless mode puts the certificate and the Rekor entry there, see
/// [`cosign::CERTIFICATE_ANNOTATION`]); returns the manifest digest.
pub async fn attach_signature(
    reference: &OciRef,
    payload: Vec<u8>,
    signature: String,
    annotations: std::collections::BTreeMap<String, String>,
) -> Result<String, OciError> {
    let registry = Registry::connect(reference)?;
    let digest = registry.resolve(reference).await?;
    registry
        .push_signature(reference, &digest, payload, signature, annotations)
        .await?;
    Ok(digest)
}

/// Attaches the Sigstore bundle `bundle` (JSON) to the artifact `reference` names, as
/// an OCI referrer (cosign's bundle layout); returns the manifest digest it signs.
pub async fn attach_bundle(reference: &OciRef, bundle: Vec<u8>) -> Result<String, OciError> {
    sigstore::parse_bundle(&bundle).map_err(|problem| OciError::Reference {
        reference: reference.to_string(),
        problem: format!("the bundle to attach: {problem}"),
    })?;
    let registry = Registry::connect(reference)?;
    let digest = registry.resolve(reference).await?;
    registry.push_bundle(reference, &digest, bundle).await?;
    Ok(digest)
}

/// Pushes `artifact` to `reference` (a tag); returns the manifest digest.
pub async fn push(reference: &OciRef, artifact: &artifact::Artifact) -> Result<String, OciError> {
    if reference.tag().is_none() {
        return Err(OciError::Reference {
            reference: reference.to_string(),
            problem:
                "push to a tag (oci://REGISTRY/REPO:TAG); the digest is the registry's to give"
                    .into(),
        });
    }
    Registry::connect(reference)?
        .push(reference, artifact)
        .await
}

#[cfg(test)]
mod tests {
    fn send<T: Send>(_: T) {}

    #[test]
    fn registry_futures_are_send() {
        let reference: crate::OciRef = "oci://127.0.0.1:1/a:1".parse().unwrap();
        let policy = crate::TrustPolicy::default();
        send(crate::fetch(&reference, &policy));
    }
}
