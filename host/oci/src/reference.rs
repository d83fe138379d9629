//! `oci://REGISTRY/REPOSITORY:TAG` and `oci://REGISTRY/REPOSITORY@sha256:DIGEST`: where
//! a plugin lives in a registry.
//!
//! The registry is always named (no implicit `docker.io`): a reference that Warden pulls
//! and the trust policy that judges it name the same place. A loopback registry
//! (`localhost`, `127.0.0.1`, `[::1]`) is spoken to over plain HTTP; every other one
//! over TLS.

use std::fmt;
use std::str::FromStr;

use crate::error::OciError;

/// The scheme of a plugin reference.
pub const SCHEME: &str = "oci://";

/// A parsed `oci://` reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl OciRef {
    /// True when `text` is meant as a registry reference (starts with `oci://`).
    pub fn looks_like(text: &str) -> bool {
        text.starts_with(SCHEME)
    }

    /// The registry, `host[:port]`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository within the registry (`acme/weather`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// `REGISTRY/REPOSITORY`: what `[trust.keys] repositories` patterns match.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The tag, if the reference names one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The manifest digest, if the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The same repository at manifest `digest` (no tag).
    pub fn at_digest(&self, digest: &str) -> Self {
        Self {
            digest: Some(digest.to_string()),
            tag: None,
            ..self.clone()
        }
    }

    /// The same repository at `tag`.
    pub fn at_tag(&self, tag: &str) -> Self {
        Self {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// True for a registry on this machine's loopback interface (plain HTTP).
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => self.registry.as_str(),
        };
        matches!(host, "localhost" | "[::1]")
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The reference as `oci-client` takes it.
    pub(crate) fn client_ref(&self) -> oci_client::Reference {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => oci_client::Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                digest.clone(),
            ),
            (None, tag) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                tag.clone().unwrap_or_else(|| "latest".into()),
            ),
        }
    }
}

impl fmt::Display for OciRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Whether `digest` is `sha256:` and 64 lowercase hex digits.
pub fn valid_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

impl FromStr for OciRef {
    type Err = OciError;

    fn from_str(text: &str) -> Result<Self, OciError> {
        let bad = |problem: &str| OciError::Reference {
            reference: text.to_string(),
            problem: problem.to_string(),
        };
        let rest = text.strip_prefix(SCHEME).ok_or_else(|| {
            bad("a registry reference starts with oci:// (oci://REGISTRY/REPO:TAG or oci://REGISTRY/REPO@sha256:DIGEST)")
        })?;
        let (rest, digest) = match rest.split_once('@') {
            Some((rest, digest)) => {
                if !valid_digest(digest) {
                    return Err(bad(
                        "the digest after @ must be sha256: and 64 lowercase hex digits",
                    ));
                }
                (rest, Some(digest.to_string()))
            }
            None => (rest, None),
        };
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("name the registry and the repository: oci://REGISTRY/REPO:TAG"))?;
        let registry_ok = !registry.is_empty()
            && (registry.contains('.') || registry.contains(':') || registry == "localhost")
            && registry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
        if !registry_ok {
            return Err(bad(
                "the first part must be a registry host (with a dot or a port, or localhost), e.g. ghcr.io or 127.0.0.1:5000",
            ));
        }
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag.to_string())),
            _ => (path, None),
        };
        let repo_ok = !repository.is_empty()
            && repository.split('/').all(|part| {
                !part.is_empty()
                    && part.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
                    && part.starts_with(|c: char| c.is_ascii_alphanumeric())
            });
        if !repo_ok {
            return Err(bad(
                "the repository is lowercase letters, digits, '.', '_', '-', in parts separated by '/'",
            ));
        }
        if let Some(tag) = &tag {
            let ok = (1..=128).contains(&tag.len())
                && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !ok {
                return Err(bad(
                    "a tag is 1 to 128 of letters, digits, '.', '_', '-' (not starting with '.' or '-')",
                ));
            }
        }
        if tag.is_none() && digest.is_none() {
            return Err(bad(
                "name a tag (oci://REGISTRY/REPO:TAG) or a digest (oci://REGISTRY/REPO@sha256:…)",
            ));
        }
        Ok(Self {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn tags_digests_and_loopback_are_read_from_a_reference() {
        let r: OciRef = "oci://127.0.0.1:5000/tools/weather:1.2".parse().unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "tools/weather");
        assert_eq!(r.tag(), Some("1.2"));
        assert_eq!(r.name(), "127.0.0.1:5000/tools/weather");
        assert!(r.is_loopback());
        assert_eq!(r.to_string(), "oci://127.0.0.1:5000/tools/weather:1.2");
        let r: OciRef = format!("oci://ghcr.io/acme/w@{D}").parse().unwrap();
        assert_eq!(r.digest(), Some(D));
        assert_eq!(r.tag(), None);
        assert!(!r.is_loopback());
        assert!(
            "oci://localhost:5000/w:1"
                .parse::<OciRef>()
                .unwrap()
                .is_loopback()
        );
        assert!(
            !"oci://127.0.0.1.evil.example/w:1"
                .parse::<OciRef>()
                .unwrap()
                .is_loopback()
        );
    }

    #[test]
    fn a_malformed_reference_says_what_to_write() {
        for (text, says) in [
            ("ghcr.io/acme/w:1", "starts with oci://"),
            ("oci://acme/w:1", "registry host"),
            ("oci://ghcr.io/Acme/w:1", "lowercase"),
            ("oci://ghcr.io/acme/w", "name a tag"),
            ("oci://ghcr.io/acme/w@sha256:12", "64 lowercase hex"),
            ("oci://ghcr.io", "registry and the repository"),
        ] {
            let err = text.parse::<OciRef>().unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
    }
}
