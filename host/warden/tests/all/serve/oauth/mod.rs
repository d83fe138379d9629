//! `serve` as an OAuth 2.1 resource server: access tokens (JWTs) of a test issuer on
//! loopback call tools over `/v1` and `/mcp` under their principal and roles; every
//! kind of bad token is a 401 with the challenge MCP clients follow, and on record;
//! keys rotate in after a refetch; the Protected Resource Metadata; and a caller sees
//! only the tools it may call (a hidden one answers as an unknown one).

mod config;
mod hidden;
pub(crate) mod issuer;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use warden_tests::guests;

use self::issuer::{AUDIENCE, ISSUER, Issuer, METADATA, SigningKey, claims, now};
use super::{ADMIN, Test};

/// An MCP session on `/mcp` with `token`: initialized, ready for requests.
pub(crate) async fn mcp_session(
    t: &Test,
    token: &str,
) -> impl Fn(Value) -> reqwest::RequestBuilder + use<> {
    let url = format!("{}/mcp", t.url);
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "0"}}
    });
    let http = t.http.clone();
    let response = crate::mcp::post(&http, &url, initialize)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    crate::mcp::message(response).await;
    let token = token.to_string();
    let send = move |body: Value| {
        crate::mcp::post(&http, &url, body)
            .bearer_auth(&token)
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
    };
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await
        .unwrap();
    send
}

/// The audit records of `kind`, read with the admin token.
pub(crate) async fn records(t: &Test, query: &str) -> Vec<Value> {
    let (_, body) = t
        .get(Some(ADMIN), &format!("/v1/audit?limit=1000&{query}"))
        .await;
    body["records"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_access_token_calls_tools_over_http_and_mcp_as_its_principal() {
    let (rsa, ec, ed) = (
        SigningKey::rsa("rsa-1", "rsa-1.pem"),
        SigningKey::ec("ec-1"),
        SigningKey::ed("ed-1"),
    );
    let idp = Issuer::start(&[&rsa, &ec, &ed]).await;
    let t = Test::start(&[("text", guests::TEXT)], &idp.config("")).await;
    let args = json!({"text": "one two three"});

    // RS256, the role from a scope.
    let alice = rsa.sign(&claims("alice", json!({"scope": "openid tools:call"})));
    let (status, body) = t.call(&alice, "text/word-count", args.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["words"], 3);
    // ES256 and EdDSA, the role from the roles claim (a list, or words).
    let carol = ec.sign(&claims("carol", json!({"roles": ["caller"]})));
    let (status, body) = t.call(&carol, "text/word-count", args.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let dave = ed.sign(&claims("dave", json!({"roles": "caller auditor"})));
    let (status, body) = t.call(&dave, "text/word-count", args.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Over MCP, with the same token.
    let send = mcp_session(&t, &alice).await;
    let result = crate::mcp::message(
        send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                    "params": {"name": "text__word-count", "arguments": {"text": "one two"}}}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        result["result"]["structuredContent"]["words"], 2,
        "{result}"
    );

    // On record under the token's principal and roles, the token named by its issuer.
    let calls = records(&t, "kind=tool.call&tool=word-count").await;
    let by = |principal: &str, via: &str| {
        calls
            .iter()
            .find(|r| r["principal"] == principal && r["fields"]["via"] == via)
            .unwrap_or_else(|| panic!("no {principal} call via {via}: {calls:?}"))
            .clone()
    };
    for via in ["http", "mcp"] {
        let call = by("user:alice", via);
        assert_eq!(call["outcome"], "ok", "{call}");
        assert_eq!(call["fields"]["roles"], json!(["caller"]), "{call}");
        assert_eq!(call["fields"]["token"], format!("oauth:{ISSUER}"), "{call}");
        assert_eq!(
            call["fields"]["policy"]["policies"],
            json!(["role:caller:call-tool"])
        );
    }
    assert_eq!(
        by("user:carol", "http")["fields"]["roles"],
        json!(["caller"])
    );
    assert_eq!(
        by("user:dave", "http")["fields"]["roles"],
        json!(["auditor", "caller"])
    );
    // The keys were fetched once, when the first token came.
    assert_eq!(idp.fetches(), 1);

    // A valid token whose roles do not allow the request: 403, and the scopes that
    // would give another role in the challenge.
    let response = t
        .req(reqwest::Method::GET, "/v1/audit", Some(&alice))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert_eq!(
        challenge,
        format!(
            "Bearer resource_metadata=\"{METADATA}\", scope=\"warden:admin\", error=\"insufficient_scope\", error_description=\"the token's scopes do not allow this request\""
        )
    );
    t.server.shutdown().await;
}

/// A JWT whose header is `header`, its claims `claims`, and signature `signature`.
fn raw_token(header: &Value, claims: &Value, signature: &str) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.{signature}", part(header), part(claims))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_tokens_are_401_with_the_challenge_and_on_record() {
    let rsa = SigningKey::rsa("rsa-1", "rsa-1.pem");
    let other = SigningKey::rsa("rsa-9", "rsa-2.pem");
    let idp = Issuer::start(&[&rsa]).await;
    let t = Test::start(&[("text", guests::TEXT)], &idp.config("")).await;
    let ok = claims("mallory", json!({"scope": "tools:call"}));
    let with = |extra: Value| {
        let mut c = ok.clone();
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let valid = rsa.sign(&ok);
    // The payload changed after signing: sub root instead of mallory.
    let tampered = {
        let parts: Vec<&str> = valid.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(with(json!({"sub": "root"})).to_string());
        format!("{}.{forged}.{}", parts[0], parts[2])
    };
    // HS256 with the issuer's public key as the secret (key confusion).
    let hs256 = {
        let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("rsa-1".into());
        let secret = EncodingKey::from_secret(&issuer::fixture("rsa-1.pub.pem")).unwrap();
        jsonwebtoken::encode(&header, &ok, &secret).unwrap()
    };
    let none = raw_token(
        &json!({"alg": "none", "typ": "JWT", "kid": "rsa-1"}),
        &ok,
        "",
    );
    let cases = [
        (
            "expired",
            rsa.sign(&with(json!({"exp": now() - 120}))),
            "the token has expired",
        ),
        (
            "not-yet-valid",
            rsa.sign(&with(json!({"nbf": now() + 600}))),
            "the token is not valid yet (nbf)",
        ),
        (
            "wrong-audience",
            rsa.sign(&with(json!({"aud": "https://elsewhere.test/mcp"}))),
            "the token is not for this server (aud)",
        ),
        (
            "wrong-issuer",
            rsa.sign(&with(json!({"iss": "https://evil.test"}))),
            "the token's issuer is not trusted by this server",
        ),
        (
            "unknown-kid",
            other.sign(&ok),
            "the token's signing key (kid) is not among the issuer's keys",
        ),
        (
            "alg-not-allowed",
            none.clone(),
            "the token's alg none is not allowed (only asymmetric signatures: RS256, ES256, EdDSA and kin)",
        ),
        (
            "alg-not-allowed",
            hs256.clone(),
            "the token's alg HS256 is not allowed (only asymmetric signatures: RS256, ES256, EdDSA and kin)",
        ),
        (
            "bad-signature",
            tampered.clone(),
            "the token's signature does not verify",
        ),
    ];
    let mut tokens = vec![valid.clone()];
    for (code, token, description) in &cases {
        for path in ["/v1/tools/text/word-count", "/mcp"] {
            let response = t
                .req(reqwest::Method::POST, path, Some(token))
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{code} on {path}"
            );
            let challenge = response.headers()["www-authenticate"].to_str().unwrap();
            assert_eq!(
                challenge,
                format!(
                    "Bearer resource_metadata=\"{METADATA}\", scope=\"tools:call warden:admin\", error=\"invalid_token\", error_description=\"{description}\""
                ),
                "{code} on {path}"
            );
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unauthenticated", "{body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains(description),
                "{body}"
            );
        }
        tokens.push(token.clone());
    }
    // No token at all: the challenge without an error, so a client starts OAuth.
    let response = t
        .req(reqwest::Method::GET, "/v1/tools", None)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        format!("Bearer resource_metadata=\"{METADATA}\", scope=\"tools:call warden:admin\"")
            .as_str()
    );
    // The valid token still works (the keys were not thrown away by the refusals).
    let (status, body) = t
        .call(&valid, "text/word-count", json!({"text": "a"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Each refusal is on record with its reason; no token is.
    let denied = records(&t, "kind=access.denied").await;
    for (code, _, _) in &cases {
        let found = denied
            .iter()
            .filter(|r| r["fields"]["rejection"] == *code)
            .count();
        let expected = 2 * cases.iter().filter(|(c, _, _)| c == code).count();
        assert_eq!(found, expected, "{code}: {denied:?}");
    }
    let on_record = serde_json::to_string(&records(&t, "").await).unwrap();
    for token in &tokens {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!on_record.contains(token.as_str()), "a token is on record");
        if !signature.is_empty() {
            assert!(
                !on_record.contains(signature),
                "a token's signature is on record"
            );
        }
    }
    let expired = denied
        .iter()
        .find(|r| r["fields"]["rejection"] == "expired")
        .unwrap();
    assert_eq!(expired["principal"], "anonymous");
    assert_eq!(expired["fields"]["auth"], "oauth");
    assert_eq!(expired["fields"]["issuer"], ISSUER);
    assert_eq!(
        expired["fields"]["reason"],
        "access token refused: the token has expired"
    );
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_accepted_once_the_keys_are_fetched_again() {
    let (old, new) = (
        SigningKey::rsa("2026-01", "rsa-1.pem"),
        SigningKey::rsa("2026-02", "rsa-2.pem"),
    );
    let idp = Issuer::start(&[&old]).await;
    let t = Test::start(
        &[("text", guests::TEXT)],
        &idp.config("jwks_refresh_secs = 1"),
    )
    .await;
    let args = json!({"text": "a b"});
    let claims = claims("erin", json!({"scope": "tools:call"}));
    let (status, body) = t
        .call(&old.sign(&claims), "text/word-count", args.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(idp.fetches(), 1);

    // The issuer rotates; the first token with the new kid comes within the refresh
    // interval: refused as unknown, without a fetch (a flood of made-up kids cannot
    // make Warden hammer the issuer).
    idp.publish(&[&old, &new]);
    for _ in 0..3 {
        let (status, body) = t
            .call(&new.sign(&claims), "text/word-count", args.clone())
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    assert_eq!(idp.fetches(), 1);
    // Past the interval, the unknown kid fetches the keys again, and is found.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, body) = t
        .call(&new.sign(&claims), "text/word-count", args.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(idp.fetches(), 2);
    // The old key is still published, and still accepted; withdrawn, it is not (once
    // the keys are fetched again).
    let (status, _) = t
        .call(&old.sign(&claims), "text/word-count", args.clone())
        .await;
    assert_eq!(status, StatusCode::OK);
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_protected_resource_metadata_names_the_issuers() {
    let rsa = SigningKey::rsa("rsa-1", "rsa-1.pem");
    let idp = Issuer::start(&[&rsa]).await;
    let t = Test::start(&[], &idp.config("")).await;
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let response = t
            .req(reqwest::Method::GET, path, None)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        // Readable by browser-based clients of another origin.
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({
                "resource": AUDIENCE,
                "authorization_servers": [ISSUER],
                "scopes_supported": ["tools:call", "warden:admin"],
                "bearer_methods_supported": ["header"],
                "resource_name": "Warden",
            }),
            "{path}"
        );
    }
    t.server.shutdown().await;

    // Without issuers there is no metadata, and a 401 says only `Bearer`.
    let t = Test::start(&[], "").await;
    let (status, body) = t.get(None, "/.well-known/oauth-protected-resource").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "no-oauth", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("[[auth.issuers]]"),
        "{body}"
    );
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_issuer_entry_stops_serve_with_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[[auth.issuers]]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks_file = \"missing.json\"\n"
    );
    let config = warden::config::home::Config::parse(&text, "test config").unwrap();
    let options = warden::serve::ServeOptions {
        config,
        config_path: Some(dir.path().join("warden.toml")),
        ..warden::serve::ServeOptions::new(warden::home::Home::at(dir.path()))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let Err(err) = warden::serve::Server::start(options, listener).await else {
        panic!("serve started with an unreadable jwks_file");
    };
    let message = warden::error::chain(err);
    assert!(
        message.contains("[[auth.issuers]] \"https://idp.test\": jwks_file")
            && message.contains("missing.json")
            && message.contains("check the path"),
        "{message}"
    );
}
