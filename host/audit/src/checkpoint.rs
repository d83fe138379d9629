//! Signed checkpoints of the head: proof that the log once held record `seq` with
//! `hash`, so that removing the tail (which a hash chain alone cannot show) is caught.
//!
//! The signature is ed25519 over the canonical JSON (RFC 8785) of
//! `{"hash": …, "seq": …, "time": …, "type": "warden.audit.checkpoint"}`; `signature`
//! and `public_key` are lowercase hex. The key is `<home>/audit.key` (the 32-byte seed
//! in hex, mode 0600), created on first use.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{AuditError, SignatureError};

/// The file name of the signing key in the home.
pub const KEY_FILE: &str = "audit.key";

/// A signed statement that the log held record `seq` with `hash` at `time`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The record's sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
    /// When the checkpoint was signed.
    pub time: String,
    /// ed25519 signature, hex.
    pub signature: String,
    /// The signing key's public half, hex.
    pub public_key: String,
}

fn message(seq: u64, hash: &str, time: &str) -> Vec<u8> {
    super::canonical::to_vec(&json!({
        "hash": hash,
        "seq": seq,
        "time": time,
        "type": "warden.audit.checkpoint",
    }))
}

impl Checkpoint {
    /// Checks the signature against the checkpoint's own public key.
    pub fn verify_signature(&self) -> Result<(), SignatureError> {
        let key: [u8; 32] = hex::decode(&self.public_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(SignatureError::KeyNotHex)?;
        let key = VerifyingKey::from_bytes(&key).map_err(SignatureError::BadKey)?;
        let sig: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(SignatureError::SignatureNotHex)?;
        key.verify(
            &message(self.seq, &self.hash, &self.time),
            &Signature::from_bytes(&sig),
        )
        .map_err(|_| SignatureError::Mismatch { seq: self.seq })
    }

    /// Checks the signature, and that it was made by `trusted` (the public key, hex,
    /// of the home that keeps the log) when one is given: a checkpoint signed by any
    /// other key, its own included, proves nothing about this log.
    pub fn verify_signature_by(&self, trusted: Option<&str>) -> Result<(), SignatureError> {
        if let Some(trusted) = trusted
            && !self.public_key.eq_ignore_ascii_case(trusted)
        {
            return Err(SignatureError::Untrusted {
                seq: self.seq,
                key: self.public_key.clone(),
                trusted: trusted.to_string(),
            });
        }
        self.verify_signature()
    }

    /// Reads a checkpoint as `warden audit checkpoint` prints it.
    pub fn read(path: &Path) -> Result<Self, AuditError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuditError::ReadCheckpoint {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| AuditError::NotCheckpoint {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// The first 16 hex digits of a key, as messages name it.
pub(crate) fn short(key: &str) -> &str {
    key.get(..16).unwrap_or(key)
}

/// The public key (hex) of `<home>/audit.key`, without creating one: `None` when the
/// home has no key yet.
pub fn home_public_key(home: &Path) -> Result<Option<String>, AuditError> {
    Ok(Signer::load(&home.join(KEY_FILE))?.map(|signer| signer.public_key()))
}

/// The key that signs checkpoints.
pub struct Signer {
    key: SigningKey,
}

impl Signer {
    /// Loads `<home>/audit.key`, creating it (mode 0600) if there is none.
    pub fn load_or_create(home: &Path) -> Result<Self, AuditError> {
        let path = home.join(KEY_FILE);
        match Self::load(&path) {
            Ok(Some(signer)) => return Ok(signer),
            Ok(None) => {}
            Err(err) => return Err(err),
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|error| AuditError::KeyGeneration { error })?;
        warden_files::create_dir(home).map_err(|source| AuditError::Create {
            path: home.to_path_buf(),
            source,
        })?;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut file) => {
                writeln!(file, "{}", hex::encode(seed))?;
                file.sync_all()?;
                Ok(Self {
                    key: SigningKey::from_bytes(&seed),
                })
            }
            // Another process made it first.
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::load(&path)?.ok_or(AuditError::KeyVanished)
            }
            Err(source) => Err(AuditError::Create { path, source }),
        }
    }

    fn load(path: &Path) -> Result<Option<Self>, AuditError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(AuditError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(AuditError::KeyExposed {
                path: path.to_path_buf(),
                mode,
            });
        }
        let seed: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| AuditError::NotKey {
                path: path.to_path_buf(),
            })?;
        Ok(Some(Self {
            key: SigningKey::from_bytes(&seed),
        }))
    }

    /// The public key, hex.
    pub fn public_key(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// Signs record `seq` with `hash`, now.
    pub fn sign(&self, seq: u64, hash: &str) -> Checkpoint {
        let time = super::time::now();
        let signature = self.key.sign(&message(seq, hash, &time));
        Checkpoint {
            seq,
            hash: hash.to_string(),
            time,
            signature: hex::encode(signature.to_bytes()),
            public_key: self.public_key(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_private_and_signatures_check() {
        let home = tempfile::tempdir().unwrap();
        let signer = Signer::load_or_create(home.path()).unwrap();
        let mode = std::fs::metadata(home.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Signer::load_or_create(home.path()).unwrap();
        assert_eq!(again.public_key(), signer.public_key());

        let cp = signer.sign(7, &"ab".repeat(32));
        cp.verify_signature().unwrap();
        let mut forged = cp.clone();
        forged.seq = 8;
        let err = forged.verify_signature().unwrap_err().to_string();
        assert!(err.contains("signature does not match"), "{err}");
    }
}
