//! The network guard against a name that resolves inside the network: an entry naming
//! an address consents to that scheme and port only; IPv4 behind every IPv6
//! translation prefix is judged as IPv4; and the caller is not told the address a name
//! resolved to (the audit record keeps it).

use serde_json::json;
use warden::audit::{Audit, AuditOptions, Filter};
use warden::grant::{Grant, NetGrant};
use warden::{CallError, Plugin, Runtime};
use warden_tests::guests;

use crate::upstream::Upstream;

fn runtime_with_audit(home: &std::path::Path) -> Runtime {
    let runtime = Runtime::new().unwrap();
    runtime
        .set_audit(Audit::open(home, AuditOptions::default()).unwrap())
        .unwrap();
    runtime
}

fn probe(runtime: &Runtime, allow: &[String]) -> Plugin {
    let grant = Grant {
        net: Some(NetGrant {
            allow: allow.to_vec(),
            ..NetGrant::default()
        }),
        ..Grant::default()
    };
    crate::load_into(runtime, "netprobe", guests::NETPROBE, grant)
}

async fn get(
    runtime: &Runtime,
    plugin: &Plugin,
    url: &str,
) -> Result<serde_json::Value, CallError> {
    let args = json!({"method": "GET", "url": url, "headers": []});
    runtime.call(plugin, "http", &args).await
}

/// The denial of `result`, checked as the caller sees it: denied, `class` named, and
/// no address in the message or the JSON.
#[track_caller]
fn assert_refused_without_address(
    result: Result<serde_json::Value, CallError>,
    class: &str,
    hidden: &[&str],
) {
    let err = result.expect_err("the request should have been denied");
    assert_eq!(err.code(), "denied", "{err}");
    let told = format!("{err} {}", err.to_json());
    assert!(
        told.contains(&format!("resolves to a restricted address ({class})")),
        "{told}"
    );
    for address in hidden {
        assert!(
            !told.contains(address),
            "the caller was told {address}: {told}"
        );
    }
}

#[tokio::test]
async fn a_named_address_opens_only_its_own_scheme_and_port() {
    let home = tempfile::tempdir().unwrap();
    let runtime = runtime_with_audit(home.path());
    let upstream = Upstream::start().await;
    let other = Upstream::start().await;
    runtime
        .network()
        .pin("inside.test", vec!["127.0.0.1".parse().unwrap()]);
    // The operator named 127.0.0.1 on `upstream`'s port, and allowed inside.test on
    // `other`'s port: that is no consent to 127.0.0.1 on `other`'s port.
    let plugin = probe(
        &runtime,
        &[
            upstream.url(""),
            format!("http://inside.test:{}", other.port()),
            format!("https://inside.test:{}", upstream.port()),
        ],
    );
    let to_other = format!("http://inside.test:{}/hello", other.port());
    assert_refused_without_address(
        get(&runtime, &plugin, &to_other).await,
        "loopback",
        &["127.0.0.1"],
    );
    // Nor to another scheme on the named port.
    let https = format!("https://inside.test:{}/hello", upstream.port());
    assert_refused_without_address(
        get(&runtime, &plugin, &https).await,
        "loopback",
        &["127.0.0.1"],
    );
    assert!(other.seen().is_empty());
    assert!(upstream.seen().is_empty());

    // The record has the address, for the operator.
    let records = runtime.audit().unwrap().read(Filter::default()).unwrap();
    let denied: Vec<_> = records
        .iter()
        .filter(|r| r.kind == "capability.denied")
        .collect();
    assert_eq!(denied.len(), 2, "{records:#?}");
    for record in &denied {
        let reason = record.fields["reason"].as_str().unwrap();
        assert!(
            reason.contains("inside.test resolves to 127.0.0.1 (loopback)"),
            "{reason}"
        );
    }

    // The same name on the named port and scheme is served, and so is the address.
    let entry = format!("http://inside.test:{}", upstream.port());
    let consented = probe(&runtime, &[upstream.url(""), entry.clone()]);
    let answer = get(&runtime, &consented, &format!("{entry}/hello")).await;
    assert_eq!(answer.unwrap()["body"], "hello");
    let answer = get(&runtime, &consented, &upstream.url("/hello")).await;
    assert_eq!(answer.unwrap()["body"], "hello");
}

#[tokio::test]
async fn ipv4_behind_every_translation_prefix_is_judged_as_ipv4() {
    let home = tempfile::tempdir().unwrap();
    let runtime = runtime_with_audit(home.path());
    let upstream = Upstream::start().await;
    let cases = [
        ("nat64-local.test", "64:ff9b:1::a9fe:a9fe", "cloud metadata"),
        ("nat64-local48.test", "64:ff9b:1:a00:1::", "private"),
        ("sixtofour.test", "2002:7f00:1::1", "loopback"),
        (
            "teredo.test",
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
            "private",
        ),
        ("translated.test", "::ffff:0:7f00:1", "loopback"),
    ];
    let mut allow = vec![upstream.url("")];
    for (name, address, _) in cases {
        runtime.network().pin(name, vec![address.parse().unwrap()]);
        allow.push(format!("http://{name}"));
    }
    let plugin = probe(&runtime, &allow);
    for (name, address, class) in cases {
        let result = get(&runtime, &plugin, &format!("http://{name}/")).await;
        assert_refused_without_address(result, class, &[address]);
    }
    let records = runtime.audit().unwrap().read(Filter::default()).unwrap();
    let reasons: Vec<_> = records
        .iter()
        .filter(|r| r.kind == "capability.denied")
        .map(|r| r.fields["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(reasons.len(), cases.len(), "{records:#?}");
    for ((name, address, class), reason) in cases.iter().zip(&reasons) {
        let ip: std::net::Ipv6Addr = address.parse().unwrap();
        assert!(
            reason.contains(&format!("{name} resolves to {ip} ({class})")),
            "{reason}"
        );
    }
    // And the plugin still reaches what it was granted.
    let answer = get(&runtime, &plugin, &upstream.url("/hello")).await;
    assert_eq!(answer.unwrap()["body"], "hello");
}
