//! `[net]` and `[secrets]`: outbound HTTP through Warden's own policy and connector,
//! against upstreams on 127.0.0.1 started by each test. Loopback is refused by
//! default, so each allowed case names the upstream's address explicitly in the grant.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden::grant::{Grant, NetGrant, SecretGrant};
use warden::limits::Limits;
use warden::{CallError, Plugin};
use warden_tests::guests;

use crate::upstream::Upstream;
use crate::{call, load_granted, runtime};

fn net_grant(allow: &[String]) -> Grant {
    Grant {
        net: Some(NetGrant {
            allow: allow.to_vec(),
            ..NetGrant::default()
        }),
        ..Grant::default()
    }
}

fn probe(grant: Grant) -> Plugin {
    load_granted("netprobe", guests::NETPROBE, grant)
}

async fn get(plugin: &Plugin, url: &str) -> Result<Value, CallError> {
    http(plugin, url, &[]).await
}

async fn http(plugin: &Plugin, url: &str, headers: &[(&str, &str)]) -> Result<Value, CallError> {
    let headers: Vec<Value> = headers.iter().map(|(n, v)| json!([n, v])).collect();
    call(
        plugin,
        "http",
        json!({"method": "GET", "url": url, "headers": headers}),
    )
    .await
}

/// Asserts that the call was denied by the network policy with `reason` in the denial,
/// and that the guest saw `HTTP-request-denied`.
fn assert_denied(result: Result<Value, CallError>, reason: &str) {
    let err = result.expect_err("the request should have been denied");
    let CallError::Denied {
        denials,
        tool_error,
        ..
    } = &err
    else {
        panic!("expected a denial, got {err}");
    };
    assert!(
        denials.iter().any(|d| d.reason.contains(reason)),
        "no denial mentions {reason:?}: {denials:?}"
    );
    assert_eq!(
        tool_error.as_ref(),
        Some(&json!("ErrorCode::HttpRequestDenied"))
    );
    assert_eq!(warden::exit::code(&err), 3);
}

#[tokio::test]
async fn no_grant_means_no_network() {
    let upstream = Upstream::start().await;
    let plugin = probe(Grant::default());
    assert_denied(
        get(&plugin, &upstream.url("/hello")).await,
        "has no network grant",
    );
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn a_listed_address_is_reached_and_an_unlisted_one_is_not() {
    let upstream = Upstream::start().await;
    let other = Upstream::start().await;
    let plugin = probe(net_grant(&[upstream.url("")]));

    let answer = get(&plugin, &upstream.url("/hello")).await.unwrap();
    assert_eq!(answer["status"], 200);
    assert_eq!(answer["body"], "hello");
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    // An origin-form request line: the path only, as HTTP/1.1 to an origin has it.
    assert_eq!(
        (seen[0].method.as_str(), seen[0].target.as_str()),
        ("GET", "/hello")
    );

    // Same address, another port: not listed.
    assert_denied(
        get(&plugin, &other.url("/hello")).await,
        "is not in plugin \"netprobe\"'s [net] allow list",
    );
    assert!(other.seen().is_empty());
    // A name that is not listed is refused before any lookup.
    assert_denied(
        get(&plugin, "https://unlisted.example/").await,
        "https://unlisted.example is not in",
    );
    // Another scheme for the listed host and port: not listed either.
    assert_denied(
        get(&plugin, &format!("https://127.0.0.1:{}/", upstream.port())).await,
        "is not in",
    );
    // And the plugin serves the next call normally.
    assert_eq!(
        get(&plugin, &upstream.url("/hello")).await.unwrap()["status"],
        200
    );
}

#[tokio::test]
async fn ip_literals_are_normalised_before_the_check() {
    let upstream = Upstream::start().await;
    let port = upstream.port();
    let allowed = probe(net_grant(&[upstream.url("")]));
    for spelling in [
        format!("http://0x7f000001:{port}/hello"),
        format!("http://2130706433:{port}/hello"),
        format!("http://0177.0.0.1:{port}/hello"),
        format!("http://[::ffff:127.0.0.1]:{port}/hello"),
    ] {
        let answer = get(&allowed, &spelling).await;
        assert_eq!(answer.unwrap()["body"], "hello", "{spelling}");
    }
    // Without an entry naming 127.0.0.1, every spelling is refused as 127.0.0.1.
    let elsewhere = probe(net_grant(&["https://api.example.com".into()]));
    for spelling in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://0x7f000001:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
    ] {
        assert_denied(
            get(&elsewhere, &spelling).await,
            &format!("http://127.0.0.1:{port} is not in"),
        );
    }
    assert_denied(
        get(&elsewhere, "http://169.254.169.254/latest/meta-data/").await,
        "http://169.254.169.254 is not in",
    );
    assert_eq!(upstream.seen().len(), 4);
}

#[tokio::test]
async fn a_listed_name_that_resolves_to_a_restricted_address_is_refused() {
    let upstream = Upstream::start().await;
    let port = upstream.port();
    runtime()
        .network()
        .pin("rebind.test", vec!["127.0.0.1".parse().unwrap()]);
    runtime()
        .network()
        .pin("metadata.test", vec!["169.254.169.254".parse().unwrap()]);
    runtime()
        .network()
        .pin("mapped.test", vec!["::ffff:10.0.0.1".parse().unwrap()]);
    let plugin = probe(net_grant(&[
        format!("http://rebind.test:{port}"),
        "http://metadata.test".into(),
        "http://mapped.test".into(),
    ]));
    assert_denied(
        get(&plugin, &format!("http://rebind.test:{port}/hello")).await,
        "rebind.test resolves to 127.0.0.1 (loopback)",
    );
    assert_denied(
        get(&plugin, "http://metadata.test/").await,
        "resolves to 169.254.169.254 (cloud metadata)",
    );
    assert_denied(
        get(&plugin, "http://mapped.test/").await,
        "resolves to 10.0.0.1 (private)",
    );
    assert!(upstream.seen().is_empty());

    // An operator who names the address consents to it.
    let consented = probe(net_grant(&[
        format!("http://rebind.test:{port}"),
        upstream.url(""),
    ]));
    let answer = get(&consented, &format!("http://rebind.test:{port}/hello")).await;
    assert_eq!(answer.unwrap()["body"], "hello");
    let seen = upstream.seen();
    assert_eq!(
        seen[0].header("host"),
        Some(format!("rebind.test:{port}").as_str())
    );
}

#[tokio::test]
async fn localhost_is_reached_only_when_named() {
    let upstream = Upstream::start().await;
    let port = upstream.port();
    let named = probe(net_grant(&[format!("http://localhost:{port}")]));
    let answer = get(&named, &format!("http://localhost:{port}/hello")).await;
    assert_eq!(answer.unwrap()["body"], "hello");

    // 127.0.0.1 is listed, but the name localhost is not.
    let by_address = probe(net_grant(&[upstream.url("")]));
    assert_denied(
        get(&by_address, &format!("http://localhost:{port}/hello")).await,
        &format!("http://localhost:{port} is not in"),
    );
}

#[tokio::test]
async fn redirects_are_returned_to_the_guest_not_followed() {
    let listed = Upstream::start().await;
    let unlisted = Upstream::start().await;
    let plugin = probe(net_grant(&[listed.url("")]));
    let target = unlisted.url("/hello");
    let answer = get(&plugin, &listed.url(&format!("/redirect?to={target}")))
        .await
        .unwrap();
    assert_eq!(answer["status"], 302);
    let location = answer["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "location")
        .unwrap();
    assert_eq!(location[1], target.as_str());
    assert!(unlisted.seen().is_empty(), "the redirect was followed");
    // Following it is a new request, checked like any other.
    assert_denied(get(&plugin, &target).await, "is not in");
    assert!(unlisted.seen().is_empty());
}

#[tokio::test]
async fn raw_sockets_and_name_lookups_are_denied() {
    let upstream = Upstream::start().await;
    // Even with the address in [net] allow: that grants HTTP, not sockets.
    let plugin = probe(net_grant(&[upstream.url("")]));
    let err = call(
        &plugin,
        "tcp-connect",
        json!({"addr": upstream.addr.to_string()}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "tool-error", "{err}");
    assert!(err.to_string().contains("access-denied"), "{err}");
    let err = call(&plugin, "lookup", json!({"name": "localhost"}))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("permanent-resolver-failure")
            || err.to_string().contains("access-denied"),
        "{err}"
    );
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn the_response_body_is_capped() {
    let upstream = Upstream::start().await;
    let plugin = probe(Grant {
        net: Some(NetGrant {
            allow: vec![upstream.url("")],
            max_response_kb: 1,
        }),
        ..Grant::default()
    });
    let small = get(&plugin, &upstream.url("/big?n=1000")).await.unwrap();
    assert_eq!(small["body"].as_str().unwrap().len(), 1000);
    // Announced too large: refused with the announced size.
    let err = get(&plugin, &upstream.url("/big?n=5000"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("HttpResponseBodySize(Some(5000))"),
        "{err}"
    );
    assert_eq!(err.code(), "tool-error");
    // Unannounced: cut off at the cap while streaming.
    let err = get(&plugin, &upstream.url("/stream?n=5000"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("HTTP response body size exceeds limit: 1024 bytes"),
        "{err}"
    );
}

#[tokio::test]
async fn a_slow_upstream_cannot_outlast_the_call() {
    let upstream = Upstream::start().await;
    let plugin = probe(Grant {
        limits: Limits {
            timeout_ms: 300,
            ..Limits::default()
        },
        ..net_grant(&[upstream.url("")])
    });
    let started = Instant::now();
    let err = get(&plugin, &upstream.url("/slow")).await.unwrap_err();
    // The upstream waits 30 s; the call ends at its own deadline.
    assert!(started.elapsed() < Duration::from_secs(10), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("timeout") || text.contains("Timeout"),
        "{text}"
    );
    assert_eq!(
        get(&plugin, &upstream.url("/hello")).await.unwrap()["status"],
        200
    );
}

fn secret_grant(upstream: &Upstream, other: &Upstream, secret: SecretGrant) -> Grant {
    Grant {
        secrets: BTreeMap::from([(upstream.url(""), secret)]),
        ..net_grant(&[upstream.url(""), other.url("")])
    }
}

#[tokio::test]
async fn secrets_reach_their_destination_and_never_the_guest() {
    // SAFETY of the test: a variable only this test reads.
    let var = "NET_TEST_SECRET";
    // Setting the process environment is not thread-safe in general; this variable is
    // read only by Warden's secret injection in this test.
    #[allow(unsafe_code, reason = "set_var is unsafe in edition 2024; see above")]
    unsafe {
        std::env::set_var(var, "s3cret-value")
    };
    let upstream = Upstream::start().await;
    let other = Upstream::start().await;
    let plugin = probe(secret_grant(
        &upstream,
        &other,
        SecretGrant {
            header: "Authorization".into(),
            from_env: Some(var.into()),
            from_file: None,
            prefix: Some("Bearer ".into()),
        },
    ));
    // The guest's own Authorization header is replaced.
    let answer = http(
        &plugin,
        &upstream.url("/hello"),
        &[("authorization", "guest")],
    )
    .await
    .unwrap();
    assert_eq!(answer["status"], 200);
    assert_eq!(
        upstream.seen()[0].header("authorization"),
        Some("Bearer s3cret-value")
    );
    // What the guest can read back of its request has no secret in it.
    let sent = answer["sent-headers"].to_string();
    assert!(!sent.contains("s3cret"), "{sent}");
    // Nor its environment.
    let env = call(&plugin, "env-all", json!({})).await.unwrap();
    assert!(!env.to_string().contains("s3cret"), "{env}");
    // Another allowed destination does not get it.
    http(&plugin, &other.url("/hello"), &[]).await.unwrap();
    assert_eq!(other.seen()[0].header("authorization"), None);
}

#[tokio::test]
async fn a_secret_from_a_file_and_a_missing_secret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "file-token\n").unwrap();
    let upstream = Upstream::start().await;
    let other = Upstream::start().await;
    let from_file = probe(secret_grant(
        &upstream,
        &other,
        SecretGrant {
            header: "X-Api-Key".into(),
            from_env: None,
            from_file: Some(file.clone()),
            prefix: None,
        },
    ));
    http(&from_file, &upstream.url("/hello"), &[])
        .await
        .unwrap();
    assert_eq!(upstream.seen()[0].header("x-api-key"), Some("file-token"));

    let missing = probe(secret_grant(
        &upstream,
        &other,
        SecretGrant {
            header: "X-Api-Key".into(),
            from_env: Some("NET_TEST_SECRET_THAT_IS_NOT_SET".into()),
            from_file: None,
            prefix: None,
        },
    ));
    let err = http(&missing, &upstream.url("/hello"), &[])
        .await
        .unwrap_err();
    let CallError::Denied { denials, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(denials[0].capability, "secrets");
    assert!(
        denials[0]
            .reason
            .contains("NET_TEST_SECRET_THAT_IS_NOT_SET is not set"),
        "{denials:?}"
    );
    // The request did not leave without its secret.
    assert_eq!(upstream.seen().len(), 1);
}

#[test]
fn bad_net_grants_are_refused_with_the_entry() {
    let err = |text: &str| format!("{:#}", Grant::parse(text, "p").unwrap_err());
    let e = err("[net]\nallow = [\"api.example.com\"]\n");
    assert!(
        e.contains("entry #1") && e.contains("needs a scheme"),
        "{e}"
    );
    let e = err("[net]\nallow = [\"https://x.com/v1\"]\n");
    assert!(e.contains("paths are not part"), "{e}");
    let e = err(
        "[net]\nallow = [\"https://a.com\"]\n[secrets]\n\"https://b.com\" = { header = \"Authorization\", from_env = \"T\" }\n",
    );
    assert!(e.contains("not in [net] allow"), "{e}");
    let e = err(
        "[net]\nallow = [\"https://a.com\"]\n[secrets]\n\"https://a.com\" = { header = \"Authorization\" }\n",
    );
    assert!(e.contains("exactly one of from_env or from_file"), "{e}");
    let e = err("[net]\nallow = []\nproxy = \"x\"\n");
    assert!(e.contains("proxy"), "{e}");
}

#[tokio::test]
async fn tls_names_the_host_while_connecting_to_the_checked_address() {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    // A private CA the runtime is told to trust, and a certificate for tls.test only.
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["tls.test".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let upstream = Upstream::start_with(Some(acceptor)).await;
    let port = upstream.port();
    runtime()
        .network()
        .trust_roots_pem(ca.pem().as_bytes())
        .unwrap();
    runtime()
        .network()
        .pin("tls.test", vec!["127.0.0.1".parse().unwrap()]);
    let plugin = probe(net_grant(&[
        format!("https://tls.test:{port}"),
        format!("https://127.0.0.1:{port}"),
    ]));
    let answer = get(&plugin, &format!("https://tls.test:{port}/hello")).await;
    assert_eq!(answer.unwrap()["body"], "hello");
    // The certificate names tls.test, not the address: by address, TLS fails.
    let err = get(&plugin, &format!("https://127.0.0.1:{port}/hello"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Tls"), "{err}");
}
