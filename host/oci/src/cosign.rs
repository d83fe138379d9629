//! Cosign key-based signatures, in cosign's own format, so that `cosign sign --key`
//! signs what Warden verifies and Warden signs what `cosign verify --key` accepts.
//!
//! - The signed payload is cosign's "simple signing" JSON: `critical.image.
//!   docker-manifest-digest` is the digest of the artifact's manifest (which names the
//!   component layer by its digest), `critical.type` is `cosign container image
//!   signature`.
//! - The signature is ECDSA P-256 over SHA-256 of the payload, ASN.1 DER, base64.
//! - It is stored beside the artifact: the manifest tagged `sha256-<hex>.sig` in the
//!   same repository, one layer per signature (the payload, media type
//!   `application/vnd.dev.cosign.simplesigning.v1+json`), the signature in the layer's
//!   `dev.cosignproject.cosign/signature` annotation.
//! - Keys are PEM: public keys as SPKI (`PUBLIC KEY`, what `cosign generate-key-pair`
//!   writes to `cosign.pub`), private keys as unencrypted PKCS#8 (`PRIVATE KEY`) or SEC1
//!   (`EC PRIVATE KEY`). Cosign's own encrypted private keys are not read: sign with
//!   `cosign sign --key cosign.key` instead, Warden verifies those signatures.

use std::path::Path;

use base64::Engine as _;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::error::OciError;

/// The media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation that holds the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// cosign 2's keyless mode: the Fulcio certificate (PEM) of a signature layer.
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// cosign 2's keyless mode: the Rekor entry of a signature layer (`SignedEntryTimestamp`
/// and `Payload`: the body, integrated time, log index and log ID).
pub const REKOR_BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// `critical.type` of a cosign image signature payload.
pub const PAYLOAD_TYPE: &str = "cosign container image signature";

/// The tag of the signatures of the manifest with `digest` (`sha256-<hex>.sig`).
pub fn signature_tag(manifest_digest: &str) -> String {
    format!("{}.sig", manifest_digest.replacen(':', "-", 1))
}

/// The simple-signing payload for the manifest `manifest_digest` of `repository`
/// (`REGISTRY/REPO`), as cosign writes it.
pub fn payload(repository: &str, manifest_digest: &str) -> Vec<u8> {
    let doc = json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": PAYLOAD_TYPE,
        },
        "optional": null,
    });
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// A public key that may verify signatures, with its fingerprint.
#[derive(Clone, Debug)]
pub struct PublicKey {
    key: VerifyingKey,
    fingerprint: String,
}

impl PublicKey {
    /// Parses a PEM public key (SPKI, ECDSA P-256).
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| {
            format!("not an ECDSA P-256 public key in PEM (-----BEGIN PUBLIC KEY-----): {e}")
        })?;
        Ok(Self::new(key))
    }

    /// Reads a PEM public key file.
    pub fn read(path: &Path) -> Result<Self, OciError> {
        let text = std::fs::read_to_string(path).map_err(|source| OciError::File {
            action: "reading public key",
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_pem(&text).map_err(|problem| OciError::Key {
            path: path.to_path_buf(),
            problem,
        })
    }

    fn new(key: VerifyingKey) -> Self {
        let der = key
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        Self {
            key,
            fingerprint: format!("sha256:{}", hex::encode(Sha256::digest(der))),
        }
    }

    /// `sha256:<hex>` of the key's DER (SPKI) form.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The key as PEM (SPKI).
    pub fn to_pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// Checks that `signature_b64` is this key's signature of `payload`.
    pub fn verify(&self, payload: &[u8], signature_b64: &str) -> Result<(), String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(signature_b64.trim())
            .map_err(|_| "the signature is not base64".to_string())?;
        let signature = DerSignature::from_bytes(&bytes)
            .map_err(|_| "the signature is not an ASN.1 DER ECDSA signature".to_string())?;
        self.key
            .verify(payload, &signature)
            .map_err(|_| format!("not a signature by key {}", self.fingerprint))
    }
}

/// A private signing key.
pub struct PrivateKey {
    key: SigningKey,
}

impl PrivateKey {
    /// A new random key (ECDSA P-256).
    pub fn generate() -> Result<Self, OciError> {
        loop {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| OciError::Random(e.to_string()))?;
            if let Ok(key) = SigningKey::from_slice(&bytes) {
                return Ok(Self { key });
            }
        }
    }

    /// Reads a PEM private key file (PKCS#8 `PRIVATE KEY`, or SEC1 `EC PRIVATE KEY`).
    pub fn read(path: &Path) -> Result<Self, OciError> {
        let text = std::fs::read_to_string(path).map_err(|source| OciError::File {
            action: "reading private key",
            path: path.to_path_buf(),
            source,
        })?;
        let problem = |problem: &str| OciError::Key {
            path: path.to_path_buf(),
            problem: problem.to_string(),
        };
        if text.contains("ENCRYPTED") {
            return Err(problem(
                "an encrypted (cosign) private key; Warden reads unencrypted PKCS#8 keys (`warden plugin keygen`), or sign with `cosign sign --key` and let Warden verify",
            ));
        }
        let key = if text.contains("BEGIN EC PRIVATE KEY") {
            p256::SecretKey::from_sec1_pem(text.trim())
                .map(SigningKey::from)
                .map_err(|_| problem("not an ECDSA P-256 private key in SEC1 PEM"))?
        } else {
            SigningKey::from_pkcs8_pem(text.trim()).map_err(|_| {
                problem("not an ECDSA P-256 private key in PEM (-----BEGIN PRIVATE KEY-----)")
            })?
        };
        Ok(Self { key })
    }

    /// The key as PKCS#8 PEM.
    pub fn to_pem(&self) -> Result<String, OciError> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|e| OciError::Random(format!("encoding the key: {e}")))
    }

    /// Its public key.
    pub fn public(&self) -> PublicKey {
        PublicKey::new(*self.key.verifying_key())
    }

    /// The base64 signature of `payload`.
    pub fn sign(&self, payload: &[u8]) -> String {
        let signature: DerSignature = self.key.sign(payload);
        base64::engine::general_purpose::STANDARD.encode(signature.as_bytes())
    }
}

/// Checks that `payload` is a cosign image signature payload for `manifest_digest`;
/// returns the `docker-reference` it names.
pub fn check_payload(payload: &[u8], manifest_digest: &str) -> Result<String, String> {
    let doc: Value =
        serde_json::from_slice(payload).map_err(|_| "the payload is not JSON".to_string())?;
    let critical = &doc["critical"];
    if critical["type"].as_str() != Some(PAYLOAD_TYPE) {
        return Err(format!(
            "the payload's critical.type is not {PAYLOAD_TYPE:?}"
        ));
    }
    let signed = critical["image"]["docker-manifest-digest"]
        .as_str()
        .unwrap_or_default();
    if signed != manifest_digest {
        return Err(format!(
            "the signature is for manifest {signed}, not {manifest_digest}"
        ));
    }
    Ok(critical["identity"]["docker-reference"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_signature_verifies_with_its_key_and_no_other() {
        let key = PrivateKey::generate().unwrap();
        let other = PrivateKey::generate().unwrap();
        let payload = payload("r.example/acme/w", DIGEST);
        let signature = key.sign(&payload);
        key.public().verify(&payload, &signature).unwrap();
        let err = other.public().verify(&payload, &signature).unwrap_err();
        assert!(err.contains(other.public().fingerprint()), "{err}");
        let mut tampered = payload.clone();
        tampered[10] ^= 1;
        assert!(key.public().verify(&tampered, &signature).is_err());
        assert_eq!(check_payload(&payload, DIGEST).unwrap(), "r.example/acme/w");
        let err = check_payload(&payload, &DIGEST.replace('0', "1")).unwrap_err();
        assert!(err.contains("is for manifest"), "{err}");
    }

    #[test]
    fn keys_survive_pem_and_say_what_they_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate().unwrap();
        std::fs::write(dir.path().join("k.key"), key.to_pem().unwrap()).unwrap();
        std::fs::write(dir.path().join("k.pub"), key.public().to_pem()).unwrap();
        let read = PrivateKey::read(&dir.path().join("k.key")).unwrap();
        let public = PublicKey::read(&dir.path().join("k.pub")).unwrap();
        assert_eq!(read.public().fingerprint(), public.fingerprint());
        public.verify(b"x", &read.sign(b"x")).unwrap();
        std::fs::write(dir.path().join("bad.pub"), "hello").unwrap();
        let err = PublicKey::read(&dir.path().join("bad.pub"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad.pub") && err.contains("PUBLIC KEY"),
            "{err}"
        );
        assert_eq!(
            signature_tag(DIGEST),
            "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.sig"
        );
    }
}
