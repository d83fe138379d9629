//! `[trust]` of the home's `warden.toml`: which keys and which keyless (Sigstore)
//! identities may sign plugins from which registries and repositories, and whether a
//! plugin without a trusted signature is refused; and [`Provenance`], what Warden
//! records about where an installed plugin came from and who signed it.
//!
//! ```toml
//! [trust]
//! require_signatures = true          # a plugin without a trusted signature is refused
//!
//! [trust.keys.acme]                  # a signer, by the name a grant pins (signer = "acme")
//! public_key = "keys/acme.pub"       # PEM (cosign.pub, `warden plugin keygen`), beside warden.toml
//! repositories = ["ghcr.io/acme/*", "127.0.0.1:5000/tools/weather"]
//!
//! [trust.identities.acme-ci]         # a keyless signer: a Sigstore bundle beside the artifact
//! identity = "https://github.com/acme/tools/.github/workflows/release.yml@refs/heads/main"
//! issuer = "https://token.actions.githubusercontent.com"
//! trusted_root = "sigstore/trusted_root.json"   # Fulcio CAs and Rekor keys, read offline
//! repositories = ["ghcr.io/acme/*"]
//! ```
//!
//! An identity is the signing certificate's subject alternative name (an email
//! address or a URI), matched exactly; the issuer is the OIDC issuer Fulcio wrote into
//! the certificate. Key and identity names share one namespace: a grant's `signer`
//! names either.
//!
//! A repository pattern is `REGISTRY/REPOSITORY` exactly, `REGISTRY/PATH/*` for every
//! repository under that path, or `*` for every repository of every registry. A key
//! counts only for the repositories its patterns name: a signature by a key trusted
//! for `ghcr.io/acme/*` says nothing about an artifact pulled from anywhere else.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// `[trust]`: the signers Warden accepts, and whether a signature is required.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// Refuse a plugin that has no signature by a key trusted for where it came from
    /// (a registry artifact without one, and any plugin added from a file or upload).
    #[serde(default)]
    pub require_signatures: bool,
    /// Trusted keys, by signer name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<String, TrustKey>,
    /// Trusted keyless (Sigstore) identities, by signer name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub identities: BTreeMap<String, TrustIdentity>,
}

/// `[trust.identities.NAME]`: a keyless signer, known by the identity in its Fulcio
/// certificate and the OIDC issuer that vouched for it, and where its Sigstore
/// bundles count.
///
/// ```toml
/// [trust.identities.acme-ci]
/// identity = "release@acme.example"
/// issuer = "https://accounts.google.com"
/// trusted_root = "trusted_root.json"
/// repositories = ["ghcr.io/acme/*"]
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustIdentity {
    /// The certificate's subject alternative name (email or URI), exactly.
    pub identity: String,
    /// The OIDC issuer in the certificate (Fulcio's extension 1.3.6.1.4.1.57264.1.8).
    pub issuer: String,
    /// The Sigstore `trusted_root.json` (Fulcio CAs, Rekor and CT log keys) bundles are
    /// verified against, offline; relative to the directory of `warden.toml`.
    pub trusted_root: PathBuf,
    /// Repository patterns (`REGISTRY/REPO`, `REGISTRY/PATH/*`, `*`) this identity may sign.
    pub repositories: Vec<String>,
}

/// `[trust.keys.NAME]`: one signer's public key and where its signatures count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustKey {
    /// The public key file (PEM, ECDSA P-256 as cosign makes them), relative to the
    /// directory of `warden.toml`.
    pub public_key: PathBuf,
    /// Repository patterns (`REGISTRY/REPO`, `REGISTRY/PATH/*`, `*`) this key may sign.
    pub repositories: Vec<String>,
}

impl TrustConfig {
    /// True when nothing is configured (no keys or identities, signatures not required).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The keys whose signatures count for `repository` (`REGISTRY/REPO`), by name.
    pub fn keys_for<'a>(
        &'a self,
        repository: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a TrustKey)> + 'a {
        self.keys
            .iter()
            .filter(move |(_, key)| {
                key.repositories
                    .iter()
                    .any(|p| repository_matches(p, repository))
            })
            .map(|(name, key)| (name.as_str(), key))
    }

    /// The keyless identities whose bundles count for `repository`, by name.
    pub fn identities_for<'a>(
        &'a self,
        repository: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a TrustIdentity)> + 'a {
        self.identities
            .iter()
            .filter(move |(_, id)| {
                id.repositories
                    .iter()
                    .any(|p| repository_matches(p, repository))
            })
            .map(|(name, id)| (name.as_str(), id))
    }

    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        for (name, key) in &self.keys {
            let problem = |problem: String| ConfigError::TrustKey {
                name: name.clone(),
                problem,
            };
            check_signer(name).map_err(problem)?;
            if key.public_key.as_os_str().is_empty() {
                return Err(problem(
                    "public_key is empty: name the key's PEM file".into(),
                ));
            }
            if key.repositories.is_empty() {
                return Err(problem(
                    "repositories is empty: name where this key may sign (e.g. [\"ghcr.io/acme/*\"], or [\"*\"] for anywhere)".into(),
                ));
            }
            for pattern in &key.repositories {
                check_repository_pattern(pattern).map_err(problem)?;
            }
        }
        for (name, id) in &self.identities {
            let problem = |problem: String| ConfigError::TrustIdentity {
                name: name.clone(),
                problem,
            };
            check_signer(name).map_err(problem)?;
            if self.keys.contains_key(name) {
                return Err(problem(format!(
                    "[trust.keys.{name}] has the same name; a grant's signer must name one of them, so rename one"
                )));
            }
            if id.identity.trim().is_empty() {
                return Err(problem(
                    "identity is empty: name the certificate's email or URI (e.g. \"release@acme.example\")".into(),
                ));
            }
            if !(id.issuer.starts_with("https://") || id.issuer.starts_with("http://")) {
                return Err(problem(format!(
                    "issuer {:?} is not an OIDC issuer URL (e.g. \"https://token.actions.githubusercontent.com\")",
                    id.issuer
                )));
            }
            if id.trusted_root.as_os_str().is_empty() {
                return Err(problem(
                    "trusted_root is empty: name a Sigstore trusted_root.json".into(),
                ));
            }
            if id.repositories.is_empty() {
                return Err(problem(
                    "repositories is empty: name where this identity may sign (e.g. [\"ghcr.io/acme/*\"], or [\"*\"] for anywhere)".into(),
                ));
            }
            for pattern in &id.repositories {
                check_repository_pattern(pattern).map_err(problem)?;
            }
        }
        Ok(())
    }
}

/// Whether `name` can be a signer's name: 1 to 64 of `a-z 0-9 . _ -`, starting with a
/// letter or digit (the error says what to write).
pub fn check_signer(name: &str) -> Result<(), String> {
    if crate::grant::valid_namespace(name) {
        Ok(())
    } else {
        Err(format!(
            "signer {name:?}: a signer name is 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
        ))
    }
}

fn check_repository_pattern(pattern: &str) -> Result<(), String> {
    if pattern == "*" {
        return Ok(());
    }
    let body = pattern.strip_suffix("/*").unwrap_or(pattern);
    let ok = !body.is_empty()
        && !body.contains('*')
        && !body.contains("://")
        && !body.contains('@')
        && body
            .split('/')
            .all(|part| !part.is_empty() && !part.contains(char::is_whitespace));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "repositories: {pattern:?} is not REGISTRY/REPO, REGISTRY/PATH/* or * (no scheme, tag or digest)"
        ))
    }
}

/// Whether repository pattern `pattern` covers `repository` (`REGISTRY/REPO`).
pub fn repository_matches(pattern: &str, repository: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix("/*") {
        Some(prefix) => repository
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.len() > 1 && rest.starts_with('/')),
        None => pattern == repository,
    }
}

/// Where an installed plugin came from, when it came from a registry, and who
/// signed it. Kept in the home's record of the plugin (`plugin.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The reference it was added from, as given (`oci://REGISTRY/REPO:TAG` or `…@sha256:…`).
    pub reference: String,
    /// `sha256:<hex>` of the OCI manifest that was pulled.
    pub manifest_digest: String,
    /// The trusted signature that was verified, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signed>,
}

/// A verified signature: which trusted key (or keyless identity) signed the artifact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed {
    /// The signer's name in `[trust.keys]` or `[trust.identities]`.
    pub signer: String,
    /// `sha256:<hex>` of the public key (its DER form): which key it was; for a keyless
    /// signature, of the Fulcio certificate's public key.
    pub key: String,
    /// For a keyless (Sigstore bundle) signature: the certificate's identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// For a keyless signature: the OIDC issuer in the certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `sha256:<hex>` of the component the signature covers (through the manifest).
    pub digest: String,
}

impl Provenance {
    /// The signer whose signature covers the component with `digest`, if any.
    pub fn signer_of(&self, digest: &str) -> Option<&str> {
        self.signature
            .as_ref()
            .filter(|s| s.digest == digest)
            .map(|s| s.signer.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::Config;

    #[test]
    fn patterns_cover_what_they_name_and_nothing_else() {
        assert!(repository_matches("*", "ghcr.io/acme/x"));
        assert!(repository_matches("ghcr.io/acme/*", "ghcr.io/acme/x"));
        assert!(repository_matches("ghcr.io/acme/*", "ghcr.io/acme/x/y"));
        assert!(!repository_matches("ghcr.io/acme/*", "ghcr.io/acme"));
        assert!(!repository_matches("ghcr.io/acme/*", "ghcr.io/acmeevil/x"));
        assert!(repository_matches("ghcr.io/acme/x", "ghcr.io/acme/x"));
        assert!(!repository_matches("ghcr.io/acme/x", "ghcr.io/acme/x/y"));
    }

    #[test]
    fn a_key_without_repositories_or_with_a_bad_pattern_is_refused_by_name() {
        let parse = |text: &str| {
            Config::parse(text, "w.toml")
                .map(|c| c.trust)
                .map_err(|e| format!("{e:#}"))
        };
        let err =
            parse("[trust.keys.acme]\npublic_key = \"a.pub\"\nrepositories = []\n").unwrap_err();
        assert!(
            err.contains("[trust.keys.acme]") && err.contains("repositories is empty"),
            "{err}"
        );
        let err =
            parse("[trust.keys.acme]\npublic_key = \"a.pub\"\nrepositories = [\"oci://x/y:1\"]\n")
                .unwrap_err();
        assert!(err.contains("is not REGISTRY/REPO"), "{err}");
        let err = parse("[trust]\nrequire_signature = true\n").unwrap_err();
        assert!(err.contains("require_signature"), "{err}");
        let trust = parse(
            "[trust]\nrequire_signatures = true\n[trust.keys.acme]\npublic_key = \"a.pub\"\nrepositories = [\"r.example/acme/*\"]\n",
        )
        .unwrap();
        assert!(trust.require_signatures);
        assert_eq!(
            trust
                .keys_for("r.example/acme/w")
                .map(|(n, _)| n)
                .collect::<Vec<_>>(),
            ["acme"]
        );
        assert_eq!(trust.keys_for("r.example/other/w").count(), 0);
    }

    #[test]
    fn an_identity_needs_an_identity_an_issuer_url_a_root_and_its_own_name() {
        let parse = |text: &str| {
            Config::parse(text, "w.toml")
                .map(|c| c.trust)
                .map_err(|e| format!("{e:#}"))
        };
        let entry = |name: &str, identity: &str, issuer: &str| {
            format!(
                "[trust.identities.{name}]\nidentity = \"{identity}\"\nissuer = \"{issuer}\"\ntrusted_root = \"root.json\"\nrepositories = [\"r.example/acme/*\"]\n"
            )
        };
        let trust = parse(&entry(
            "acme-ci",
            "ci@acme.example",
            "https://issuer.example",
        ))
        .unwrap();
        assert_eq!(
            trust
                .identities_for("r.example/acme/w")
                .map(|(n, i)| (n, i.identity.as_str()))
                .collect::<Vec<_>>(),
            [("acme-ci", "ci@acme.example")]
        );
        assert_eq!(trust.identities_for("r.example/other/w").count(), 0);
        let err = parse(&entry("acme-ci", "ci@acme.example", "issuer.example")).unwrap_err();
        assert!(
            err.contains("[trust.identities.acme-ci]") && err.contains("not an OIDC issuer URL"),
            "{err}"
        );
        let err = parse(&entry("acme-ci", " ", "https://issuer.example")).unwrap_err();
        assert!(err.contains("identity is empty"), "{err}");
        let both = format!(
            "[trust.keys.acme]\npublic_key = \"a.pub\"\nrepositories = [\"*\"]\n{}",
            entry("acme", "ci@acme.example", "https://issuer.example")
        );
        let err = parse(&both).unwrap_err();
        assert!(err.contains("[trust.keys.acme] has the same name"), "{err}");
        let err = parse("[trust.identities.x]\nidentity = \"a\"\nissuer = \"https://i\"\ntrusted_root = \"r.json\"\nrepositories = [\"*\"]\nsubject = \"a\"\n").unwrap_err();
        assert!(err.contains("subject"), "{err}");
    }
}
