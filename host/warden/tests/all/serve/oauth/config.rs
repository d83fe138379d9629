//! Issuers from the config file: keys from a `jwks_file` beside it, and an issuer added
//! to `warden.toml` while `serve` runs is trusted without a restart.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use reqwest::StatusCode;
use serde_json::json;
use warden::config::home::Config;
use warden::home::Home;
use warden::serve::{ServeOptions, Server};
use warden_tests::guests;

use super::issuer::{AUDIENCE, ISSUER, Issuer, SigningKey, claims};

/// `serve` of a home with `text`, reading (and watching) `warden.toml` holding `text`.
async fn serve(dir: &std::path::Path, text: &str) -> (Server, String) {
    let home = Home::at(dir);
    crate::serve::install(&home, "text", guests::TEXT);
    let path = dir.join("warden.toml");
    std::fs::write(&path, text).unwrap();
    let options = ServeOptions {
        config: Config::load(&path).unwrap(),
        config_path: Some(path),
        ..ServeOptions::new(home)
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::start(options, listener).await.unwrap();
    let url = format!("http://{}/v1/tools/text/word-count", server.addr());
    (server, url)
}

async fn call(url: &str, token: &str) -> StatusCode {
    reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .json(&json!({"text": "a b"}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_a_jwks_file_beside_the_config_are_read_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::ec("file-key");
    let set = JwkSet {
        keys: vec![key.jwk()],
    };
    std::fs::write(
        dir.path().join("keys.json"),
        serde_json::to_string(&set).unwrap(),
    )
    .unwrap();
    let text = format!(
        "[[auth.issuers]]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks_file = \"keys.json\"\nscope_roles = {{ \"tools:call\" = \"caller\" }}\n"
    );
    let (server, url) = serve(dir.path(), &text).await;
    let token = key.sign(&claims("frank", json!({"scope": "tools:call"})));
    assert_eq!(call(&url, &token).await, StatusCode::OK);
    let other = SigningKey::ec("other-kid").sign(&claims("frank", json!({"scope": "tools:call"})));
    assert_eq!(call(&url, &other).await, StatusCode::UNAUTHORIZED);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_added_to_the_config_is_trusted_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::rsa("rsa-1", "rsa-1.pem");
    let idp = Issuer::start(&[&key]).await;
    let (server, url) = serve(dir.path(), "").await;
    let token = key.sign(&claims("grace", json!({"scope": "tools:call"})));
    assert_eq!(call(&url, &token).await, StatusCode::UNAUTHORIZED);

    // A broken entry is not taken (and nothing else changes)…
    std::fs::write(
        dir.path().join("warden.toml"),
        format!("[[auth.issuers]]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\n"),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(call(&url, &token).await, StatusCode::UNAUTHORIZED);
    // …a valid one is.
    std::fs::write(dir.path().join("warden.toml"), idp.config("")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while call(&url, &token).await != StatusCode::OK {
        assert!(Instant::now() < deadline, "the new issuer was not trusted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.shutdown().await;
}
