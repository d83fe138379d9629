//! OAuth 2.1 access tokens (JWTs) of the issuers in `[[auth.issuers]]`: the signature
//! (RS256/384/512, PS256/384/512, ES256/384, EdDSA; never `none` or HS*, so a public
//! key can never be used as an HMAC secret), `iss`, `aud`, `exp` and `nbf` (with the
//! issuer's clock skew) are checked by `jsonwebtoken`; a valid token becomes a
//! principal and roles, as a static token does.
//!
//! The principal is `user:<value of principal_claim>` (default `sub`), so policies
//! name it `Warden::User::"<value>"`; a value starting `local:` (the CLI operator's
//! entity) is refused. Its roles are those of `roles_claim` (a list,
//! or one space-separated string) and those `scope_roles` gives for the scopes of
//! the `scope` claim (a space-separated string, or a list).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::jwks::{Keys, Miss};
use crate::error::AuthError;
use warden_config::auth::{AuthConfig, IssuerConfig, KeySource};

/// The signing algorithms accepted: asymmetric only.
const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The longest principal claim value accepted.
const MAX_PRINCIPAL: usize = 256;

/// Why a token was refused, as records and `error_description` say it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Not a JWT (three base64url parts, JSON header and claims).
    Malformed,
    /// `alg` is `none`, symmetric (HS*) or unknown.
    AlgNotAllowed(String),
    /// `iss` is no configured issuer (or is missing).
    WrongIssuer,
    /// `aud` does not hold this server's audience.
    WrongAudience,
    /// No key of the issuer has the token's `kid`.
    UnknownKid,
    /// The signature does not verify.
    BadSignature,
    /// `exp` has passed (beyond the clock skew).
    Expired,
    /// `nbf` is still ahead (beyond the clock skew).
    NotYetValid,
    /// A claim that is needed is missing or of the wrong type.
    Claim(String),
    /// The issuer's keys could not be fetched.
    KeysUnavailable,
}

impl Rejection {
    /// The reason, as audit records name it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::AlgNotAllowed(_) => "alg-not-allowed",
            Self::WrongIssuer => "wrong-issuer",
            Self::WrongAudience => "wrong-audience",
            Self::UnknownKid => "unknown-kid",
            Self::BadSignature => "bad-signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not-yet-valid",
            Self::Claim(_) => "bad-claim",
            Self::KeysUnavailable => "keys-unavailable",
        }
    }

    /// What a client is told (ASCII without quotes, fit for `error_description`).
    pub fn describe(&self) -> String {
        match self {
            Self::Malformed => "the token is not a well-formed JWT".into(),
            Self::AlgNotAllowed(alg) => format!(
                "the token's alg {} is not allowed (only asymmetric signatures: RS256, ES256, EdDSA and kin)",
                printable(alg)
            ),
            Self::WrongIssuer => "the token's issuer is not trusted by this server".into(),
            Self::WrongAudience => "the token is not for this server (aud)".into(),
            Self::UnknownKid => {
                "the token's signing key (kid) is not among the issuer's keys".into()
            }
            Self::BadSignature => "the token's signature does not verify".into(),
            Self::Expired => "the token has expired".into(),
            Self::NotYetValid => "the token is not valid yet (nbf)".into(),
            Self::Claim(claim) => format!(
                "the token's {} claim is missing or not valid",
                printable(claim)
            ),
            Self::KeysUnavailable => {
                "the issuer's keys could not be fetched; try again later".into()
            }
        }
    }
}

/// `text` cut to 64 characters of printable ASCII other than `"` and `\`.
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
        .take(64)
        .collect()
}

/// A token that was refused, and the issuer it claimed, when that is a configured one.
#[derive(Clone, Debug)]
pub struct Refused {
    /// Why.
    pub rejection: Rejection,
    /// The configured issuer the token named, if any.
    pub issuer: Option<String>,
}

/// What a valid token says about its bearer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bearer {
    /// `user:<principal claim>`.
    pub principal: String,
    /// The roles its claims give.
    pub roles: Vec<String>,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// The issuer.
    pub issuer: String,
}

/// One configured issuer with its keys.
struct Issuer {
    config: IssuerConfig,
    keys: Arc<Keys>,
}

/// The issuers of a config.
#[derive(Default)]
pub struct Issuers {
    issuers: Vec<Issuer>,
    scopes: Vec<String>,
}

impl std::fmt::Debug for Issuers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.issuers.iter().map(|i| &i.config.issuer))
            .finish()
    }
}

impl Issuers {
    /// The issuers of `auth`; `jwks_file`s are read now, relative to `config_dir`. An
    /// issuer whose entry is unchanged from `previous` keeps the keys it fetched.
    pub fn from_config(
        auth: &AuthConfig,
        config_dir: &Path,
        previous: Option<&Issuers>,
    ) -> Result<Self, AuthError> {
        let mut issuers = Vec::new();
        for config in &auth.issuers {
            let kept = previous.and_then(|p| {
                p.issuers
                    .iter()
                    .find(|i| i.config == *config && i.keys.url().is_some())
            });
            let keys = match (kept, config.keys()) {
                (Some(kept), _) => kept.keys.clone(),
                (None, Some(KeySource::Url(url))) => Arc::new(Keys::from_url(
                    &config.issuer,
                    url,
                    Duration::from_secs(config.jwks_refresh_secs),
                )?),
                (None, Some(KeySource::File(file))) => {
                    Arc::new(Keys::from_file(&config.issuer, &config_dir.join(file))?)
                }
                // The config's check refuses an entry without keys.
                (None, None) => continue,
            };
            issuers.push(Issuer {
                config: config.clone(),
                keys,
            });
        }
        Ok(Self {
            issuers,
            scopes: auth.scopes(),
        })
    }

    /// True when no issuer is configured.
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// The issuers' identifiers.
    pub fn identifiers(&self) -> Vec<&str> {
        self.issuers
            .iter()
            .map(|i| i.config.issuer.as_str())
            .collect()
    }

    /// The resource this server is, as the first issuer's audience names it.
    pub fn resource(&self) -> Option<&str> {
        self.issuers.first().map(|i| i.config.audience.as_str())
    }

    /// Every scope that gives a role.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The bearer of `token`, if it is a valid access token of one of the issuers.
    pub async fn validate(&self, token: &str) -> Result<Bearer, Refused> {
        let refused = |rejection, issuer: Option<&Issuer>| Refused {
            rejection,
            issuer: issuer.map(|i| i.config.issuer.clone()),
        };
        let (header, claims) = peek(token).map_err(|r| refused(r, None))?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or_else(|| refused(Rejection::Malformed, None))?;
        let Some(alg) = ALGORITHMS.into_iter().find(|a| alg_name(*a) == alg) else {
            return Err(refused(Rejection::AlgNotAllowed(alg.to_string()), None));
        };
        let iss = claims.get("iss").and_then(Value::as_str);
        let Some(issuer) = self
            .issuers
            .iter()
            .find(|i| Some(i.config.issuer.as_str()) == iss)
        else {
            return Err(refused(Rejection::WrongIssuer, None));
        };
        let kid = header.get("kid").and_then(Value::as_str);
        let key = issuer.keys.key(kid, alg).await.map_err(|miss| {
            let rejection = match miss {
                Miss::UnknownKid => Rejection::UnknownKid,
                Miss::Unavailable(_) => Rejection::KeysUnavailable,
            };
            refused(rejection, Some(issuer))
        })?;
        let config = &issuer.config;
        let mut validation = Validation::new(alg);
        validation.leeway = config.clock_skew_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|err| refused(rejection(err.kind()), Some(issuer)))?;
        bearer(config, &data.claims).map_err(|r| refused(r, Some(issuer)))
    }
}

/// The name `alg` has in a JWT header.
fn alg_name(alg: Algorithm) -> String {
    serde_json::to_value(alg)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A JSON object: a JWT's header or claims.
type Object = Map<String, Value>;

/// The header and claims of `token`, unverified: only to choose the issuer and key.
fn peek(token: &str) -> Result<(Object, Object), Rejection> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed);
    };
    let part = |text: &str| {
        URL_SAFE_NO_PAD
            .decode(text)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Object>(&bytes).ok())
            .ok_or(Rejection::Malformed)
    };
    Ok((part(header)?, part(claims)?))
}

/// True when `token` has the shape of a JWT (three base64url parts): only such tokens
/// are tried against the issuers.
pub fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| !p.is_empty())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The rejection `jsonwebtoken`'s error stands for.
fn rejection(kind: &jsonwebtoken::errors::ErrorKind) -> Rejection {
    use jsonwebtoken::errors::ErrorKind;
    match kind {
        ErrorKind::ExpiredSignature => Rejection::Expired,
        ErrorKind::ImmatureSignature => Rejection::NotYetValid,
        ErrorKind::InvalidAudience => Rejection::WrongAudience,
        ErrorKind::InvalidIssuer => Rejection::WrongIssuer,
        ErrorKind::InvalidSignature => Rejection::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            Rejection::AlgNotAllowed(String::new())
        }
        ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim) => {
            Rejection::Claim(claim.clone())
        }
        _ => Rejection::Malformed,
    }
}

/// The bearer the verified `claims` name.
fn bearer(config: &IssuerConfig, claims: &Map<String, Value>) -> Result<Bearer, Rejection> {
    let name = claims
        .get(&config.principal_claim)
        .and_then(Value::as_str)
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_PRINCIPAL
                && !v.chars().any(char::is_control)
                // `Warden::User::"local:…"` is the CLI's operator: no token may be it.
                && !v.starts_with("local:")
        })
        .ok_or_else(|| Rejection::Claim(config.principal_claim.clone()))?;
    let scopes = words(claims.get("scope"));
    let mut roles = BTreeSet::new();
    if let Some(claim) = &config.roles_claim {
        roles.extend(words(claims.get(claim)));
    }
    for scope in &scopes {
        if let Some(role) = config.scope_roles.get(scope) {
            roles.insert(role.clone());
        }
    }
    Ok(Bearer {
        principal: format!("user:{name}"),
        roles: roles.into_iter().collect(),
        scopes,
        issuer: config.issuer.clone(),
    })
}

/// A claim of words: a space-separated string, or a list of strings.
fn words(claim: Option<&Value>) -> Vec<String> {
    match claim {
        Some(Value::String(text)) => text.split_whitespace().map(str::to_string).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .flat_map(str::split_whitespace)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_asymmetric_algorithms_are_named() {
        assert_eq!(alg_name(Algorithm::EdDSA), "EdDSA");
        assert_eq!(alg_name(Algorithm::RS256), "RS256");
        assert!(ALGORITHMS.iter().all(|a| !alg_name(*a).starts_with("HS")));
    }

    #[test]
    fn roles_come_from_the_roles_claim_and_the_scopes() {
        let config: IssuerConfig = serde_json::from_value(serde_json::json!({
            "issuer": "https://i", "audience": "a", "jwks_file": "k", "roles_claim": "groups",
            "scope_roles": {"tools:call": "caller"}
        }))
        .unwrap();
        let claims = serde_json::json!({"sub": "alice", "groups": "auditor x", "scope": "openid tools:call"});
        let bearer = bearer(&config, claims.as_object().unwrap()).unwrap();
        assert_eq!(bearer.principal, "user:alice");
        assert_eq!(bearer.roles, ["auditor", "caller", "x"]);
        assert_eq!(bearer.scopes, ["openid", "tools:call"]);
        // Not a number, and never the CLI's operator.
        let claims = serde_json::json!({"sub": "local:root"});
        assert_eq!(
            super::bearer(&config, claims.as_object().unwrap()),
            Err(Rejection::Claim("sub".into()))
        );
        let claims = serde_json::json!({"sub": 5});
        assert_eq!(
            super::bearer(&config, claims.as_object().unwrap()),
            Err(Rejection::Claim("sub".into()))
        );
    }

    #[test]
    fn only_jwt_shaped_tokens_are_tried() {
        assert!(looks_like_jwt("eyJh.eyJi.c2ln"));
        assert!(looks_like_jwt("eyJh.eyJi."));
        assert!(!looks_like_jwt("wdn_0123"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a b.c.d"));
    }

    #[test]
    fn descriptions_are_fit_for_a_header() {
        let r = Rejection::AlgNotAllowed("\"none\\\r\n".into());
        assert!(
            !r.describe().contains(['"', '\\', '\r', '\n']),
            "{}",
            r.describe()
        );
    }
}
