//! A test authorization server on loopback: signing keys (checked in under
//! `fixtures/oauth/`, test-only), a JWK Set served over HTTP that a test can change
//! (key rotation), a count of its fetches, and tokens signed with `jsonwebtoken`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::routing::get;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// The test issuer's identifier (the `iss` of its tokens).
pub(crate) const ISSUER: &str = "https://idp.test";

/// The resource Warden is (the `aud` its tokens must carry).
pub(crate) const AUDIENCE: &str = "https://warden.test/mcp";

/// Where the resource's metadata is, as 401s name it.
pub(crate) const METADATA: &str = "https://warden.test/.well-known/oauth-protected-resource/mcp";

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/all/fixtures/oauth");

/// Reads a fixture of `fixtures/oauth/`.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
}

/// A key the issuer signs with.
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pub(crate) alg: Algorithm,
    key: EncodingKey,
}

impl SigningKey {
    /// The RSA key of `fixtures/oauth/{file}`, for RS256.
    pub(crate) fn rsa(kid: &str, file: &str) -> Self {
        Self::new(
            kid,
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&fixture(file)).unwrap(),
        )
    }

    /// The P-256 key of `fixtures/oauth/ec.pem`, for ES256.
    pub(crate) fn ec(kid: &str) -> Self {
        let key = EncodingKey::from_ec_pem(&fixture("ec.pem")).unwrap();
        Self::new(kid, Algorithm::ES256, key)
    }

    /// The Ed25519 key of `fixtures/oauth/ed25519.pem`, for EdDSA.
    pub(crate) fn ed(kid: &str) -> Self {
        let key = EncodingKey::from_ed_pem(&fixture("ed25519.pem")).unwrap();
        Self::new(kid, Algorithm::EdDSA, key)
    }

    fn new(kid: &str, alg: Algorithm, key: EncodingKey) -> Self {
        Self {
            kid: kid.into(),
            alg,
            key,
        }
    }

    /// Its public half, as a JWK with its `kid`.
    pub(crate) fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.key, self.alg).unwrap();
        jwk.common.key_id = Some(self.kid.clone());
        jwk
    }

    /// `claims` signed with this key, its `kid` in the header.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

/// Seconds since the epoch.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

/// Claims of a token for `sub`, valid for five minutes, with `extra` over them.
pub(crate) fn claims(sub: &str, extra: Value) -> Value {
    let mut claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": sub,
        "iat": now(), "exp": now() + 300,
    });
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

#[derive(Clone, Default)]
struct Shared {
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

/// The issuer's JWKS endpoint on 127.0.0.1.
pub(crate) struct Issuer {
    pub(crate) jwks_url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Issuer {
    /// Serves the public halves of `keys` at `/jwks.json`.
    pub(crate) async fn start(keys: &[&SigningKey]) -> Self {
        let shared = Shared::default();
        let issuer_shared = shared.clone();
        let app = axum::Router::new()
            .route(
                "/jwks.json",
                get(|State(shared): State<Shared>| async move {
                    shared.fetches.fetch_add(1, Ordering::SeqCst);
                    axum::Json(shared.jwks.lock().unwrap().clone())
                }),
            )
            .with_state(issuer_shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let jwks_url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let issuer = Self {
            jwks_url,
            shared,
            task,
        };
        issuer.publish(keys);
        issuer
    }

    /// From now on, serves `keys` (a rotation).
    pub(crate) fn publish(&self, keys: &[&SigningKey]) {
        let set = JwkSet {
            keys: keys.iter().map(|k| k.jwk()).collect(),
        };
        *self.shared.jwks.lock().unwrap() = serde_json::to_value(set).unwrap();
    }

    /// How often the JWKS was fetched.
    pub(crate) fn fetches(&self) -> usize {
        self.shared.fetches.load(Ordering::SeqCst)
    }

    /// The `[[auth.issuers]]` entry for this issuer, with `extra` lines.
    pub(crate) fn config(&self, extra: &str) -> String {
        format!(
            "[[auth.issuers]]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks_url = \"{}\"\nroles_claim = \"roles\"\nscope_roles = {{ \"tools:call\" = \"caller\", \"warden:admin\" = \"admin\" }}\n{extra}\n",
            self.jwks_url
        )
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
