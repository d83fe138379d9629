//! `[auth]` of the home's `warden.toml`: the OAuth 2.1 authorization servers whose
//! access tokens (JWTs) `serve` accepts beside its static `[[tokens]]`.
//!
//! ```toml
//! [[auth.issuers]]
//! issuer = "https://idp.example"              # must equal the token's `iss`
//! audience = "https://warden.example/mcp"     # this server's resource URL; must be in `aud`
//! jwks_url = "https://idp.example/jwks.json"  # or: jwks_file = "keys.json" (read at start)
//! clock_skew_secs = 60                        # leeway on exp and nbf; default 60
//! jwks_refresh_secs = 30                      # least time between two fetches; default 30
//! principal_claim = "sub"                     # the principal is user:<its value>; default "sub"
//! roles_claim = "roles"                       # optional: a list (or space-separated) of roles
//! scope_roles = { "tools:call" = "caller", "warden:admin" = "admin" }  # optional
//! ```
//!
//! Data only: the keys are fetched and the tokens validated by `warden-server`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// `[auth]`: who else but the static tokens may call.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The authorization servers whose access tokens are accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issuers: Vec<IssuerConfig>,
}

/// The default leeway on `exp` and `nbf`, in seconds.
pub const DEFAULT_CLOCK_SKEW_SECS: u64 = 60;

/// The default least time between two fetches of an issuer's JWKS, in seconds.
pub const DEFAULT_JWKS_REFRESH_SECS: u64 = 30;

/// One `[[auth.issuers]]` entry (see the module's example).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The issuer identifier: a token's `iss` must be exactly this.
    pub issuer: String,
    /// This server's resource identifier (its `/mcp` URL): a token's `aud` must hold it.
    pub audience: String,
    /// Where the issuer publishes its keys (a JWK Set), fetched when needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// A JWK Set in a file (relative to the config file's directory), read at start
    /// and on every reload of the config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// Leeway on `exp` and `nbf`, in seconds.
    #[serde(default = "default_skew")]
    pub clock_skew_secs: u64,
    /// Least time between two fetches of `jwks_url` (a token with an unknown `kid`
    /// fetches the keys again at most this often), in seconds.
    #[serde(default = "default_refresh")]
    pub jwks_refresh_secs: u64,
    /// The claim whose (string) value names the principal, as `user:<value>`.
    #[serde(default = "default_principal_claim")]
    pub principal_claim: String,
    /// A claim holding roles: a list of strings, or one space-separated string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles_claim: Option<String>,
    /// Scopes (of the `scope` claim) that give a role.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scope_roles: BTreeMap<String, String>,
}

fn default_skew() -> u64 {
    DEFAULT_CLOCK_SKEW_SECS
}

fn default_refresh() -> u64 {
    DEFAULT_JWKS_REFRESH_SECS
}

fn default_principal_claim() -> String {
    "sub".to_string()
}

/// Where an issuer's keys come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySource<'a> {
    /// Fetched from this URL.
    Url(&'a str),
    /// Read from this file (relative to the config file's directory).
    File(&'a std::path::Path),
}

impl IssuerConfig {
    /// Where this issuer's keys come from (the config's check makes it exactly one).
    pub fn keys(&self) -> Option<KeySource<'_>> {
        match (&self.jwks_url, &self.jwks_file) {
            (Some(url), None) => Some(KeySource::Url(url)),
            (None, Some(file)) => Some(KeySource::File(file)),
            _ => None,
        }
    }

    fn check(&self, roles: &BTreeSet<&str>) -> Result<(), String> {
        if !is_http_url(&self.issuer) {
            return Err(
                "issuer must be the authorization server's URL (https://…), exactly as its tokens' `iss` claim has it"
                    .into(),
            );
        }
        if self.audience.trim().is_empty() {
            return Err(
                "audience is empty: set it to this server's resource URL (e.g. https://warden.example/mcp), which tokens must name in `aud`"
                    .into(),
            );
        }
        match (&self.jwks_url, &self.jwks_file) {
            (Some(_), Some(_)) => {
                return Err("both jwks_url and jwks_file are set: keep one".into());
            }
            (None, None) => {
                return Err(
                    "no keys: set jwks_url (the issuer's JWK Set URL) or jwks_file (a JWK Set file)"
                        .into(),
                );
            }
            (Some(url), None) if !is_http_url(url) => {
                return Err(format!(
                    "jwks_url {url:?} is not an http(s) URL: use the issuer's jwks_uri"
                ));
            }
            _ => {}
        }
        if self.principal_claim.trim().is_empty() {
            return Err(
                "principal_claim is empty: name the claim that names the caller (e.g. \"sub\")"
                    .into(),
            );
        }
        if self
            .roles_claim
            .as_deref()
            .is_some_and(|c| c.trim().is_empty())
        {
            return Err("roles_claim is empty: name a claim, or leave it out".into());
        }
        if self.jwks_refresh_secs == 0 {
            return Err("jwks_refresh_secs must be at least 1 (it bounds how often unknown keys make Warden fetch the JWKS)".into());
        }
        for (scope, role) in &self.scope_roles {
            if scope.is_empty() || scope.contains(char::is_whitespace) {
                return Err(format!(
                    "scope_roles: {scope:?} is not a scope (one word, no spaces)"
                ));
            }
            if !roles.contains(role.as_str()) {
                return Err(format!(
                    "scope_roles: scope {scope:?} names unknown role {role:?} (roles: {})",
                    roles.iter().copied().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        Ok(())
    }
}

fn is_http_url(text: &str) -> bool {
    http::Uri::try_from(text).is_ok_and(|uri| {
        matches!(uri.scheme_str(), Some("https" | "http"))
            && uri.host().is_some_and(|h| !h.is_empty())
    })
}

impl AuthConfig {
    /// True when no issuer is configured.
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// Checks every issuer against the roles there are.
    pub(crate) fn check(&self, roles: &BTreeSet<&str>) -> Result<(), ConfigError> {
        let mut seen = BTreeSet::new();
        for entry in &self.issuers {
            if !seen.insert(entry.issuer.as_str()) {
                return Err(ConfigError::Issuer {
                    issuer: entry.issuer.clone(),
                    problem: "listed twice: keep one [[auth.issuers]] entry per issuer".into(),
                });
            }
            entry.check(roles).map_err(|problem| ConfigError::Issuer {
                issuer: entry.issuer.clone(),
                problem,
            })?;
        }
        Ok(())
    }

    /// Every scope some issuer maps to a role, sorted.
    pub fn scopes(&self) -> Vec<String> {
        let scopes: BTreeSet<&String> = self
            .issuers
            .iter()
            .flat_map(|i| i.scope_roles.keys())
            .collect();
        scopes.into_iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::home::Config;

    fn parse(entry: &str) -> Result<Config, String> {
        Config::parse(&format!("[[auth.issuers]]\n{entry}"), "w.toml").map_err(|e| format!("{e:#}"))
    }

    #[test]
    fn an_issuer_takes_its_defaults() {
        let config = parse(
            "issuer = \"https://idp.example\"\naudience = \"https://w.example/mcp\"\njwks_url = \"https://idp.example/jwks\"\n",
        )
        .unwrap();
        let issuer = &config.auth.issuers[0];
        assert_eq!(issuer.clock_skew_secs, 60);
        assert_eq!(issuer.jwks_refresh_secs, 30);
        assert_eq!(issuer.principal_claim, "sub");
        assert_eq!(issuer.roles_claim, None);
    }

    #[test]
    fn bad_issuer_entries_name_the_field_and_what_to_do() {
        let base = "issuer = \"https://idp.example\"\naudience = \"https://w.example/mcp\"\n";
        let cases = [
            (base.to_string(), "no keys: set jwks_url"),
            (
                format!("{base}jwks_url = \"https://i/j\"\njwks_file = \"k.json\"\n"),
                "both jwks_url and jwks_file",
            ),
            (
                format!("{base}jwks_url = \"ftp://i/j\"\n"),
                "jwks_url \"ftp://i/j\" is not an http(s) URL",
            ),
            (
                "issuer = \"idp\"\naudience = \"a\"\njwks_file = \"k\"\n".to_string(),
                "issuer must be the authorization server's URL",
            ),
            (
                format!("{base}jwks_file = \"k\"\nscope_roles = {{ \"a\" = \"boss\" }}\n"),
                "scope_roles: scope \"a\" names unknown role \"boss\"",
            ),
            (
                format!("{base}jwks_file = \"k\"\njwks_refresh_secs = 0\n"),
                "jwks_refresh_secs must be at least 1",
            ),
            (
                format!("{base}jwks_file = \"k\"\nprincipal = \"x\"\n"),
                "unknown field `principal`",
            ),
            (
                format!("{base}jwks_file = \"k\"\n[[auth.issuers]]\n{base}jwks_file = \"k\"\n"),
                "listed twice",
            ),
        ];
        for (entry, expected) in cases {
            let err = parse(&entry).unwrap_err();
            assert!(err.contains(expected), "{entry}: {err}");
            assert!(err.starts_with("w.toml"), "{err}");
        }
        let err = parse(&format!(
            "{base}jwks_file = \"k\"\nscope_roles = {{ \"a\" = \"boss\" }}\n"
        ))
        .unwrap_err();
        assert!(
            err.contains("[[auth.issuers]] \"https://idp.example\""),
            "{err}"
        );
    }
}
