//! The trust policy at work: the `[trust]` keys, read once, judging the signatures
//! found beside an artifact. A signature counts when it verifies with a key trusted
//! for the repository the artifact was pulled from, and its payload names the
//! artifact's manifest digest.

use std::path::Path;

use warden_config::trust::{Signed, TrustConfig};

use crate::cosign::{self, PublicKey};
use crate::error::OciError;
use crate::reference::OciRef;
use crate::registry::FoundSignature;

/// One trusted key.
#[derive(Clone, Debug)]
struct TrustedKey {
    name: String,
    key: PublicKey,
}

/// `[trust]`, with its keys read.
#[derive(Clone, Debug, Default)]
pub struct TrustPolicy {
    config: TrustConfig,
    keys: Vec<TrustedKey>,
}

/// What the signatures of an artifact come to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A signature by a trusted key: who, and which key.
    Signed {
        /// The signer's name in `[trust.keys]`.
        signer: String,
        /// The key's fingerprint.
        key: String,
    },
    /// No signature counts.
    Unsigned {
        /// What was expected (which keys may sign this repository).
        expected: String,
        /// What was found instead.
        found: String,
    },
}

impl TrustPolicy {
    /// Reads the keys of `config`; relative key paths are read from `config_dir` (the
    /// directory of `warden.toml`).
    pub fn load(config: &TrustConfig, config_dir: &Path) -> Result<Self, OciError> {
        let mut keys = Vec::new();
        for (name, entry) in &config.keys {
            let path = config_dir.join(&entry.public_key);
            let key = PublicKey::read(&path).map_err(|err| match err {
                OciError::Key { path, problem } => OciError::Key {
                    path,
                    problem: format!("[trust.keys.{name}] public_key: {problem}"),
                },
                other => other,
            })?;
            keys.push(TrustedKey {
                name: name.clone(),
                key,
            });
        }
        Ok(Self {
            config: config.clone(),
            keys,
        })
    }

    /// Whether a plugin without a trusted signature is refused.
    pub fn requires_signatures(&self) -> bool {
        self.config.require_signatures
    }

    /// Judges `found`, the signatures beside the manifest `manifest_digest` of
    /// `reference`.
    pub fn judge(
        &self,
        reference: &OciRef,
        manifest_digest: &str,
        found: &[FoundSignature],
    ) -> Verdict {
        let repository = reference.name();
        let trusted: Vec<&TrustedKey> = self
            .config
            .keys_for(&repository)
            .filter_map(|(name, _)| self.keys.iter().find(|k| k.name == name))
            .collect();
        let mut problems = Vec::new();
        for signature in found {
            if let Err(problem) = cosign::check_payload(&signature.payload, manifest_digest) {
                problems.push(problem);
                continue;
            }
            for key in &trusted {
                if key
                    .key
                    .verify(&signature.payload, &signature.signature)
                    .is_ok()
                {
                    return Verdict::Signed {
                        signer: key.name.clone(),
                        key: key.key.fingerprint().to_string(),
                    };
                }
            }
        }
        let expected = if trusted.is_empty() {
            format!(
                "a signature by a key trusted for {repository}, and no [trust.keys] entry of warden.toml lists it in its repositories"
            )
        } else {
            format!(
                "a signature by {}",
                trusted
                    .iter()
                    .map(|k| format!("\"{}\" ({})", k.name, k.key.fingerprint()))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
        };
        let found = match (found.len(), problems.is_empty()) {
            (0, _) => format!(
                "it is not signed (no {} beside it)",
                cosign::signature_tag(manifest_digest)
            ),
            (n, true) => format!(
                "{n} signature{} beside it, none by a key trusted for {repository}",
                if n == 1 { "" } else { "s" }
            ),
            (n, false) => format!(
                "{n} signature{} beside it, none by a key trusted for {repository} ({})",
                if n == 1 { "" } else { "s" },
                problems.join("; ")
            ),
        };
        Verdict::Unsigned { expected, found }
    }

    /// The verdict as the record keeps it (`None` when unsigned), or the refusal when
    /// signatures are required and none counts.
    pub fn decide(
        &self,
        reference: &OciRef,
        digest: &str,
        verdict: Verdict,
    ) -> Result<Option<Signed>, OciError> {
        match verdict {
            Verdict::Signed { signer, key } => Ok(Some(Signed {
                signer,
                key,
                digest: digest.to_string(),
            })),
            Verdict::Unsigned { expected, found } if self.requires_signatures() => {
                Err(OciError::Untrusted {
                    reference: reference.to_string(),
                    expected: format!("{expected} ([trust] require_signatures = true)"),
                    found,
                })
            }
            Verdict::Unsigned { .. } => Ok(None),
        }
    }
}
