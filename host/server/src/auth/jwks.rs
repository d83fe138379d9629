//! An issuer's signing keys (a JWK Set): read from `jwks_file` when the config is
//! loaded, or fetched from `jwks_url` when a token names a key that is not known yet,
//! and kept. A fetch happens at most once per `jwks_refresh_secs`, however many
//! tokens with unknown keys arrive (the rest are refused as `unknown-kid`), and keys
//! older than [`MAX_AGE`] are fetched again on the next request, so a key the issuer
//! rotated in is found and one it withdrew stops being accepted.
//!
//! Only public signing keys are kept: a symmetric (`oct`) key in a set is ignored, so
//! no HS* token can be checked against anything the issuer published.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::error::AuthError;

/// Keys older than this are fetched again (when `jwks_refresh_secs` allows).
pub const MAX_AGE: Duration = Duration::from_secs(600);

/// The longest a fetch of a JWK Set may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest JWK Set read.
const MAX_BYTES: usize = 1 << 20;

/// One usable key.
#[derive(Clone)]
struct Key {
    kid: Option<String>,
    alg: Option<Algorithm>,
    key: DecodingKey,
}

impl Key {
    /// Whether this key may verify a token signed with `alg`.
    fn fits(&self, alg: Algorithm) -> bool {
        self.alg.is_none_or(|a| a == alg) && self.key.family() == alg.family()
    }
}

/// The usable keys of `set` (public signing keys of a supported kind).
fn usable(set: &JwkSet) -> Vec<Key> {
    set.keys.iter().filter_map(usable_key).collect()
}

fn usable_key(jwk: &Jwk) -> Option<Key> {
    if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_))
        || matches!(
            jwk.common.public_key_use,
            Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
        )
    {
        return None;
    }
    let alg = match jwk.common.key_algorithm {
        Some(alg) => Some(Algorithm::try_from(alg).ok()?),
        None => None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
    })
}

/// Why no key was found for a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Miss {
    /// No key with the token's `kid` (or, without one, no single key that fits).
    UnknownKid,
    /// The keys could not be fetched, and none known fits.
    Unavailable(String),
}

/// Where the keys come from.
enum Source {
    /// Read once, from a file.
    Fixed,
    /// Fetched from a URL.
    Url {
        url: String,
        client: reqwest::Client,
    },
}

/// When the keys were last fetched.
#[derive(Default)]
struct Fetched {
    /// The last attempt, successful or not.
    tried: Option<Instant>,
    /// The last success.
    ok: Option<Instant>,
    /// What the last failed attempt said.
    error: Option<String>,
}

/// The keys of one issuer.
pub struct Keys {
    issuer: String,
    source: Source,
    refresh: Duration,
    keys: RwLock<Arc<Vec<Key>>>,
    /// When the keys were last fetched (for the fast path; [`Fetched`] is the truth).
    fetched_at: RwLock<Option<Instant>>,
    fetched: tokio::sync::Mutex<Fetched>,
}

impl Keys {
    /// The keys of the JWK Set file at `path`, read now.
    pub fn from_file(issuer: &str, path: &std::path::Path) -> Result<Self, AuthError> {
        let text = std::fs::read(path).map_err(|source| AuthError::ReadKeys {
            issuer: issuer.to_string(),
            path: path.to_path_buf(),
            source,
        })?;
        let set: JwkSet = serde_json::from_slice(&text).map_err(|err| AuthError::ParseKeys {
            issuer: issuer.to_string(),
            path: path.to_path_buf(),
            error: err.to_string(),
        })?;
        let keys = usable(&set);
        if keys.is_empty() {
            return Err(AuthError::NoKeys {
                issuer: issuer.to_string(),
                path: path.to_path_buf(),
            });
        }
        Ok(Self::new(issuer, Source::Fixed, Duration::MAX, keys))
    }

    /// The keys at `url`, fetched when first needed.
    pub fn from_url(issuer: &str, url: &str, refresh: Duration) -> Result<Self, AuthError> {
        let client_error = |error: String| AuthError::Client {
            issuer: issuer.to_string(),
            error,
        };
        let tls = warden_net::tls_config(&[]).map_err(|e| client_error(e.to_string()))?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(rustls::ClientConfig::clone(&tls))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .user_agent("warden-jwks")
            .build()
            .map_err(|e| client_error(e.to_string()))?;
        let source = Source::Url {
            url: url.to_string(),
            client,
        };
        Ok(Self::new(issuer, source, refresh, Vec::new()))
    }

    fn new(issuer: &str, source: Source, refresh: Duration, keys: Vec<Key>) -> Self {
        Self {
            issuer: issuer.to_string(),
            source,
            refresh,
            keys: RwLock::new(Arc::new(keys)),
            fetched_at: RwLock::new(None),
            fetched: tokio::sync::Mutex::default(),
        }
    }

    /// The URL the keys are fetched from, if any.
    pub fn url(&self) -> Option<&str> {
        match &self.source {
            Source::Url { url, .. } => Some(url),
            Source::Fixed => None,
        }
    }

    /// The key that verifies a token with `kid` signed with `alg`: a known one, else
    /// one fetched now (if the last fetch is old enough).
    pub async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, Miss> {
        let Source::Url { url, client } = &self.source else {
            return self.find(kid, alg).ok_or(Miss::UnknownKid);
        };
        // The fast path, without waiting for a fetch in progress: fresh keys, and one
        // of them fits.
        let fresh = self
            .fetched_at
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() < MAX_AGE);
        if fresh && let Some(key) = self.find(kid, alg) {
            return Ok(key);
        }
        // One fetch at a time; whoever waited finds what it fetched.
        let mut fetched = self.fetched.lock().await;
        let due = fetched.tried.is_none_or(|at| at.elapsed() >= self.refresh);
        if due {
            fetched.tried = Some(Instant::now());
            match fetch(client, url).await {
                Ok(keys) => {
                    tracing::info!(issuer = %self.issuer, keys = keys.len(), "fetched the issuer's keys");
                    *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
                    let now = Instant::now();
                    fetched.ok = Some(now);
                    *self.fetched_at.write().unwrap_or_else(|e| e.into_inner()) = Some(now);
                    fetched.error = None;
                }
                Err(error) => {
                    tracing::warn!(issuer = %self.issuer, "fetching {url}: {error}; keeping the keys known");
                    fetched.error = Some(error);
                }
            }
        }
        match self.find(kid, alg) {
            Some(key) => Ok(key),
            None => match &fetched.error {
                Some(error) if fetched.ok.is_none() => Err(Miss::Unavailable(error.clone())),
                _ => Err(Miss::UnknownKid),
            },
        }
    }

    /// A known key for `kid` that fits `alg`; without a `kid`, the only key that fits.
    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner()).clone();
        match kid {
            Some(kid) => keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid) && k.fits(alg))
                .map(|k| k.key.clone()),
            None => {
                let mut fitting = keys.iter().filter(|k| k.fits(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(only), None) => Some(only.key.clone()),
                    _ => None,
                }
            }
        }
    }
}

/// The usable keys of the JWK Set at `url`.
async fn fetch(client: &reqwest::Client, url: &str) -> Result<Vec<Key>, String> {
    let mut response = client.get(url).send().await.map_err(|e| describe(&e))?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > MAX_BYTES {
            return Err(format!("the JWK Set is larger than {MAX_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    let set: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("not a JWK Set: {e}"))?;
    Ok(usable(&set))
}

/// reqwest's Display leaves out the cause (refused, reset…); the chain has it.
fn describe(err: &reqwest::Error) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_encryption_keys_are_never_used() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc",
             "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "sig", "alg": "EdDSA",
             "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
        ]}))
        .unwrap();
        let keys = usable(&set);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("sig"));
        assert!(keys[0].fits(Algorithm::EdDSA));
        assert!(!keys[0].fits(Algorithm::HS256));
        assert!(!keys[0].fits(Algorithm::RS256));
    }
}
