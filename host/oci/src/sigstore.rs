//! Keyless signatures: Sigstore bundles, verified offline against a trusted root file.
//!
//! A bundle (`application/vnd.dev.sigstore.bundle.v0.3+json`, as `cosign sign` with
//! the new bundle format and `cosign sign-blob --bundle` write it) carries a Fulcio
//! signing certificate, a signature over the artifact's manifest digest (a message
//! signature, or a DSSE envelope whose in-toto subject names that digest) and a Rekor
//! transparency log entry. It is stored beside the artifact as an OCI referrer: an
//! artifact manifest whose `subject` is the signed manifest, found through the
//! registry's referrers API or, where the registry has none, the referrers tag
//! (`sha256-<hex>`), as cosign's bundle specification says. cosign 2's older keyless
//! form (the certificate and the Rekor entry in annotations of a `.sig` layer) is
//! turned into the v0.1 bundle it amounts to ([`legacy_bundle`]) and verified the same
//! way, over its simple-signing payload.
//!
//! Verification is sigstore-rust's (`sigstore-verify`), against the operator's
//! `trusted_root.json` and nothing fetched: the certificate chains to one of the root's
//! Fulcio CAs, its identity and OIDC issuer are the ones `[trust.identities]` names,
//! the signature verifies with its key over the manifest digest, the Rekor entry
//! describes this very signature and is proven by the log's key (the signed entry
//! timestamp, and the inclusion proof against a signed checkpoint), and the
//! certificate was valid at the time the log integrated the entry. The certificate's
//! embedded SCT is verified when the trusted root lists certificate transparency
//! logs; a root without any (a private Sigstore) skips that one check.
//!
//! This module reads the trusted root files; it never touches the network.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use sigstore_verify::trust_root::TrustedRoot;
use sigstore_verify::types::{Bundle, Sha256Hash};
use sigstore_verify::{VerificationPolicy, Verifier};
use warden_config::trust::TrustIdentity;

use crate::error::OciError;

/// The media type (and OCI artifact type) of a v0.3 Sigstore bundle.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The prefix of every Sigstore bundle media type (v0.1 to v0.3).
const BUNDLE_MEDIA_PREFIX: &str = "application/vnd.dev.sigstore.bundle";

/// Whether `media_type` is a Sigstore bundle's.
pub fn is_bundle_media_type(media_type: &str) -> bool {
    media_type.starts_with(BUNDLE_MEDIA_PREFIX)
}

/// One `[trust.identities.NAME]`, its trusted root read.
#[derive(Clone)]
pub struct TrustedIdentity {
    /// The signer's name.
    pub name: String,
    /// The certificate identity (email or URI) required.
    pub identity: String,
    /// The OIDC issuer required.
    pub issuer: String,
    /// The trusted root file, as configured (for messages).
    pub root: PathBuf,
    verifier: Arc<Verifier>,
    verify_sct: bool,
}

impl std::fmt::Debug for TrustedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedIdentity")
            .field("name", &self.name)
            .field("identity", &self.identity)
            .field("issuer", &self.issuer)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// A bundle that verified: who signed, as the certificate says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeylessSignature {
    /// The certificate's identity.
    pub identity: String,
    /// The certificate's OIDC issuer.
    pub issuer: String,
    /// `sha256:<hex>` of the certificate's public key (DER SPKI).
    pub key: String,
}

impl TrustedIdentity {
    /// Reads the trusted root of `entry`, relative to `config_dir`.
    pub fn load(name: &str, entry: &TrustIdentity, config_dir: &Path) -> Result<Self, OciError> {
        let path = config_dir.join(&entry.trusted_root);
        let problem = |problem: String| OciError::TrustedRoot {
            path: path.clone(),
            problem: format!("[trust.identities.{name}] trusted_root: {problem}"),
        };
        let text = std::fs::read_to_string(&path).map_err(|source| OciError::File {
            action: "reading trusted root",
            path: path.clone(),
            source,
        })?;
        let root = TrustedRoot::from_json(&text).map_err(|e| {
            problem(format!(
                "not a Sigstore trusted_root.json ({e}); use the one the Sigstore TUF repository publishes, or one made by `cosign trusted-root create`"
            ))
        })?;
        if root.certificate_authorities.is_empty() {
            return Err(problem(
                "it lists no certificate authority (certificateAuthorities), so no certificate could chain to it".into(),
            ));
        }
        if root.tlogs.is_empty() {
            return Err(problem(
                "it lists no transparency log (tlogs), so no Rekor entry could be verified".into(),
            ));
        }
        let verify_sct = !root.ctlogs.is_empty();
        let verifier = Verifier::new(&root).map_err(|e| problem(e.to_string()))?;
        Ok(Self {
            name: name.to_string(),
            identity: entry.identity.clone(),
            issuer: entry.issuer.clone(),
            root: entry.trusted_root.clone(),
            verifier: Arc::new(verifier),
            verify_sct,
        })
    }

    /// How this signer is described in messages: `"acme-ci" (identity …, issuer …,
    /// trusted root …)`.
    pub fn describe(&self) -> String {
        format!(
            "\"{}\" (identity {}, issuer {}, trusted root {})",
            self.name,
            self.identity,
            self.issuer,
            self.root.display()
        )
    }

    /// Verifies `bundle` as a signature by this identity over the manifest
    /// `manifest_digest` (`sha256:<hex>`).
    pub fn verify(
        &self,
        bundle: &Bundle,
        manifest_digest: &str,
    ) -> Result<KeylessSignature, String> {
        self.verify_artifact(bundle, manifest_digest, manifest_digest)
    }

    /// Verifies `bundle` as a signature by this identity over the artifact with
    /// `artifact_digest` (`sha256:<hex>`), for the manifest `manifest_digest`.
    pub fn verify_artifact(
        &self,
        bundle: &Bundle,
        artifact_digest: &str,
        manifest_digest: &str,
    ) -> Result<KeylessSignature, String> {
        let hex = artifact_digest
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("digest {artifact_digest} is not sha256"))?;
        let digest = Sha256Hash::from_hex(hex).map_err(|e| e.to_string())?;
        let mut policy = VerificationPolicy::new(self.identity.as_str(), self.issuer.as_str());
        if !self.verify_sct {
            policy = policy.skip_sct();
        }
        let result = self
            .verifier
            .verify(digest, bundle, &policy)
            .map_err(|e| self.explain(&e.to_string(), manifest_digest))?;
        // Belt and braces: record only a signature whose certificate chain and log
        // entry were both verified (the policy skips neither).
        if !(result.certificate_verified() && result.tlog_verified()) {
            return Err("the certificate chain or the transparency log was not verified".into());
        }
        let key = result
            .certificate()
            .map(|c| {
                format!(
                    "sha256:{}",
                    hex::encode(Sha256::digest(c.public_key.as_bytes()))
                )
            })
            .unwrap_or_default();
        Ok(KeylessSignature {
            identity: result
                .identity()
                .map(|i| i.as_str().to_string())
                .unwrap_or_default(),
            issuer: result.issuer().unwrap_or_default().to_string(),
            key,
        })
    }
}

impl TrustedIdentity {
    /// The verifier's error, with what it means said first.
    fn explain(&self, error: &str, manifest_digest: &str) -> String {
        let root = self.root.display();
        let meaning = if error.contains("CertExpired") || error.contains("CertNotValidYet") {
            "the certificate was not valid when the log integrated the entry".to_string()
        } else if error.contains("UnknownIssuer") {
            format!("the certificate does not chain to a Fulcio CA of {root}")
        } else if error.contains("inclusion promise")
            || error.contains("checkpoint")
            || error.contains("inclusion proof")
        {
            format!("the transparency log entry is not proven by a log key of {root}")
        } else if error.contains("artifact mismatch") {
            format!("it signs another artifact, not manifest {manifest_digest}")
        } else {
            return error.to_string();
        };
        format!("{meaning} ({error})")
    }
}

/// Parses a bundle's JSON.
pub fn parse_bundle(json: &[u8]) -> Result<Bundle, String> {
    let text = std::str::from_utf8(json).map_err(|_| "the bundle is not UTF-8".to_string())?;
    Bundle::from_json(text).map_err(|e| format!("not a Sigstore bundle ({e})"))
}

/// cosign 2's keyless signature (a simple-signing `payload`, its base64 `signature`,
/// the Fulcio `certificate` in PEM and the Rekor entry `rekor_bundle` from the
/// layer's annotations) as the v0.1 Sigstore bundle it amounts to: a message
/// signature over the payload, the certificate, and the log entry with its signed
/// entry timestamp (cosign 2 keeps no inclusion proof). Returns the bundle and the
/// payload's digest (what it signs).
pub fn legacy_bundle(
    payload: &[u8],
    signature: &str,
    certificate: &str,
    rekor_bundle: &str,
) -> Result<(Bundle, String), String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let pem: String = certificate
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    let der = b64
        .decode(pem)
        .map_err(|_| "the certificate annotation is not PEM".to_string())?;
    let rekor: serde_json::Value = serde_json::from_str(rekor_bundle)
        .map_err(|_| "the Rekor bundle annotation is not JSON".to_string())?;
    let entry = &rekor["Payload"];
    let body_b64 = entry["body"].as_str().unwrap_or_default();
    let body: serde_json::Value = b64
        .decode(body_b64)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| "the Rekor entry's body is not base64 JSON".to_string())?;
    let log_id = hex::decode(entry["logID"].as_str().unwrap_or_default())
        .map_err(|_| "the Rekor entry's logID is not hex".to_string())?;
    let digest = Sha256::digest(payload);
    let bundle = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": {
            "x509CertificateChain": {"certificates": [{"rawBytes": b64.encode(&der)}]},
            "tlogEntries": [{
                "logIndex": entry["logIndex"].as_i64().unwrap_or_default().to_string(),
                "logId": {"keyId": b64.encode(&log_id)},
                "kindVersion": {
                    "kind": body["kind"].as_str().unwrap_or_default(),
                    "version": body["apiVersion"].as_str().unwrap_or_default(),
                },
                "integratedTime": entry["integratedTime"].as_i64().unwrap_or_default().to_string(),
                "inclusionPromise": {
                    "signedEntryTimestamp": rekor["SignedEntryTimestamp"].as_str().unwrap_or_default(),
                },
                "canonicalizedBody": body_b64,
            }],
        },
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": b64.encode(digest)},
            "signature": signature.trim(),
        },
    });
    let bundle = Bundle::from_json(&bundle.to_string())
        .map_err(|e| format!("cosign's keyless annotations do not make a bundle ({e})"))?;
    Ok((bundle, format!("sha256:{}", hex::encode(digest))))
}

/// The identity and issuer a bundle's certificate claims, unverified: for saying
/// what was found when no trusted identity accepts it.
pub fn claimed_identity(bundle: &Bundle) -> Option<(String, String)> {
    use sigstore_verify::types::bundle::VerificationMaterialContent as C;
    let der = match &bundle.verification_material.content {
        C::Certificate(cert) => &cert.raw_bytes,
        C::X509CertificateChain { certificates } => &certificates.first()?.raw_bytes,
        _ => return None,
    };
    let info = sigstore_verify::crypto::parse_certificate_info(der).ok()?;
    Some((
        info.identity
            .map(|i| i.as_str().to_string())
            .unwrap_or_default(),
        info.issuer.unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(root: &str) -> TrustIdentity {
        TrustIdentity {
            identity: "ci@acme.example".into(),
            issuer: "https://issuer.example".into(),
            trusted_root: root.into(),
            repositories: vec!["*".into()],
        }
    }

    #[test]
    fn a_trusted_root_that_is_missing_or_not_one_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let err = TrustedIdentity::load("acme-ci", &entry("gone.json"), dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("reading trusted root") && err.contains("gone.json"),
            "{err}"
        );
        std::fs::write(dir.path().join("bad.json"), "{\"hello\": 1}").unwrap();
        let err = TrustedIdentity::load("acme-ci", &entry("bad.json"), dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad.json") && err.contains("[trust.identities.acme-ci] trusted_root"),
            "{err}"
        );
        std::fs::write(
            dir.path().join("empty.json"),
            "{\"mediaType\": \"application/vnd.dev.sigstore.trustedroot+json;version=0.1\"}",
        )
        .unwrap();
        let err = TrustedIdentity::load("acme-ci", &entry("empty.json"), dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("lists no certificate authority"), "{err}");
    }

    #[test]
    fn only_sigstore_bundle_media_types_are_bundles() {
        assert!(is_bundle_media_type(BUNDLE_MEDIA_TYPE));
        assert!(is_bundle_media_type(
            "application/vnd.dev.sigstore.bundle+json;version=0.2"
        ));
        assert!(!is_bundle_media_type(
            "application/vnd.dev.cosign.simplesigning.v1+json"
        ));
        assert!(parse_bundle(b"{}").is_err());
    }
}
