//! The trust policy at work: the `[trust]` keys and identities, read once, judging the
//! signatures found beside an artifact. A cosign signature counts when it verifies
//! with a key trusted for the repository the artifact was pulled from, and its
//! payload names the artifact's manifest digest; a Sigstore bundle counts when it
//! verifies against the trusted root of an identity trusted for that repository, for
//! that identity and issuer, over that manifest digest (see [`crate::sigstore`]).

use std::path::Path;

use warden_config::trust::{Signed, TrustConfig};

use crate::cosign::{self, PublicKey};
use crate::error::OciError;
use crate::reference::OciRef;
use crate::registry::FoundSignature;
use crate::sigstore::{self, TrustedIdentity};

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
    identities: Vec<TrustedIdentity>,
}

/// What the signatures of an artifact come to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A signature by a trusted key or identity: who, and which key.
    Signed {
        /// The signer's name in `[trust.keys]` or `[trust.identities]`.
        signer: String,
        /// The key's fingerprint (for a keyless signature, the certificate key's).
        key: String,
        /// For a keyless signature: the certificate's identity and OIDC issuer.
        keyless: Option<(String, String)>,
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
        let identities = config
            .identities
            .iter()
            .map(|(name, entry)| TrustedIdentity::load(name, entry, config_dir))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            config: config.clone(),
            keys,
            identities,
        })
    }

    /// Whether any keyless identity is trusted (so bundles are worth fetching).
    pub fn has_identities(&self) -> bool {
        !self.identities.is_empty()
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
        let identities: Vec<&TrustedIdentity> = self
            .config
            .identities_for(&repository)
            .filter_map(|(name, _)| self.identities.iter().find(|i| i.name == name))
            .collect();
        let mut problems = Vec::new();
        let (mut cosign_found, mut bundles_found) = (0, 0);
        for signature in found {
            match signature {
                FoundSignature::Cosign {
                    payload,
                    signature,
                    keyless,
                } => {
                    cosign_found += 1;
                    if let Err(problem) = cosign::check_payload(payload, manifest_digest) {
                        problems.push(problem);
                        continue;
                    }
                    for key in &trusted {
                        if key.key.verify(payload, signature).is_ok() {
                            return Verdict::Signed {
                                signer: key.name.clone(),
                                key: key.key.fingerprint().to_string(),
                                keyless: None,
                            };
                        }
                    }
                    // cosign 2's keyless form: the same payload, signed with a Fulcio
                    // certificate and logged in Rekor.
                    let Some((certificate, rekor)) = keyless.as_ref() else {
                        continue;
                    };
                    if identities.is_empty() {
                        continue;
                    }
                    let (bundle, payload_digest) =
                        match sigstore::legacy_bundle(payload, signature, certificate, rekor) {
                            Ok(made) => made,
                            Err(problem) => {
                                problems.push(problem);
                                continue;
                            }
                        };
                    match verify_keyless(&identities, &bundle, &payload_digest, manifest_digest) {
                        Ok(verdict) => return verdict,
                        Err(mut said) => problems.append(&mut said),
                    }
                }
                FoundSignature::Bundle(json) => {
                    bundles_found += 1;
                    let bundle = match sigstore::parse_bundle(json) {
                        Ok(bundle) => bundle,
                        Err(problem) => {
                            problems.push(problem);
                            continue;
                        }
                    };
                    match verify_keyless(&identities, &bundle, manifest_digest, manifest_digest) {
                        Ok(verdict) => return verdict,
                        Err(mut said) => problems.append(&mut said),
                    }
                }
            }
        }
        let mut wanted: Vec<String> = trusted
            .iter()
            .map(|k| format!("a signature by \"{}\" ({})", k.name, k.key.fingerprint()))
            .collect();
        wanted.extend(
            identities
                .iter()
                .map(|i| format!("a Sigstore bundle from {}", i.describe())),
        );
        let expected = if wanted.is_empty() {
            format!(
                "a signature by a key or identity trusted for {repository}, and no [trust.keys] or [trust.identities] entry of warden.toml lists it in its repositories"
            )
        } else {
            wanted.join(" or ")
        };
        let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        let found = match (cosign_found, bundles_found) {
            (0, 0) => format!(
                "it is not signed (no {} beside it{})",
                cosign::signature_tag(manifest_digest),
                if self.has_identities() {
                    ", no Sigstore bundle referring to it"
                } else {
                    ""
                }
            ),
            (c, b) => {
                let mut what = Vec::new();
                if c > 0 {
                    what.push(plural(c, "signature"));
                }
                if b > 0 {
                    what.push(plural(b, "Sigstore bundle"));
                }
                let mut text = format!(
                    "{} beside it, none by a key or identity trusted for {repository}",
                    what.join(" and ")
                );
                if !problems.is_empty() {
                    text.push_str(&format!(" ({})", problems.join("; ")));
                }
                text
            }
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
            Verdict::Signed {
                signer,
                key,
                keyless,
            } => Ok(Some(Signed {
                signer,
                key,
                identity: keyless.as_ref().map(|(identity, _)| identity.clone()),
                issuer: keyless.map(|(_, issuer)| issuer),
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

/// The verdict of the first of `identities` that `bundle` verifies for (a signature
/// over `artifact_digest`, for the manifest `manifest_digest`), or what each said.
fn verify_keyless(
    identities: &[&TrustedIdentity],
    bundle: &sigstore_verify::types::Bundle,
    artifact_digest: &str,
    manifest_digest: &str,
) -> Result<Verdict, Vec<String>> {
    let claimed = sigstore::claimed_identity(bundle)
        .map(|(identity, issuer)| format!("a bundle from identity {identity}, issuer {issuer}"))
        .unwrap_or_else(|| "a bundle without a certificate".into());
    if identities.is_empty() {
        return Err(vec![claimed]);
    }
    let mut problems = Vec::new();
    for identity in identities {
        match identity.verify_artifact(bundle, artifact_digest, manifest_digest) {
            Ok(signed) => {
                return Ok(Verdict::Signed {
                    signer: identity.name.clone(),
                    key: signed.key,
                    keyless: Some((signed.identity, signed.issuer)),
                });
            }
            Err(problem) => {
                problems.push(format!("{claimed}: not \"{}\": {problem}", identity.name))
            }
        }
    }
    Err(problems)
}
