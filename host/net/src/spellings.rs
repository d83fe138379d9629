//! Spellings a guest may give its request's URL to get past an allow list (the
//! adversarial catalog's items 35 and 42–45), through [`Destination::from_uri`], the
//! one parse every guest request goes through before the allow list is asked: IPv4
//! aliases, user info and parser differentials, ports, schemes, and names that only
//! look like an allowed one. Each is one normalized destination the list does not
//! permit, or a refusal.

use std::net::{IpAddr, Ipv4Addr};

use super::{AllowList, Destination, Host};

/// The destination of a guest's request `uri`, or why there is none (the URI does not
/// parse, or `from_uri` refuses it).
fn request(uri: &str) -> Result<Destination, String> {
    let uri: http::Uri = uri
        .parse()
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
    Destination::from_uri(&uri).map_err(|e| e.to_string())
}

fn allow(entries: &[&str]) -> AllowList {
    AllowList::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
}

/// Asserts that no spelling in `uris` reaches a destination `list` permits.
#[track_caller]
fn none_permitted(list: &AllowList, uris: &[&str]) {
    for uri in uris {
        if let Ok(dest) = request(uri) {
            assert!(!list.permits_destination(&dest), "{uri} reached {dest}");
        }
    }
}

#[test]
fn ipv4_aliases_are_one_address_or_refused() {
    let ip = |uri: &str| request(uri).map(|d| d.host);
    let unspecified = Host::Ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(ip("http://0/"), Ok(unspecified.clone()));
    assert_eq!(ip("http://0.0.0.0/"), Ok(unspecified));
    let loopback = Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(ip("http://0x7f.1/"), Ok(loopback.clone()));
    assert_eq!(ip("http://0x7F.0.0.1/"), Ok(loopback.clone()));
    assert_eq!(ip("http://127.0.1/"), Ok(loopback.clone()));
    // Percent-encoded digits: refused, or decoded to the same address.
    for uri in ["http://%31%32%37.0.0.1/", "http://127%2e0%2e0%2e1/"] {
        if let Ok(host) = ip(uri) {
            assert_eq!(host, loopback, "{uri}");
        }
    }
    // An allow entry for a public name is no entry for any of them.
    let list = allow(&["http://api.allowed.com"]);
    none_permitted(
        &list,
        &["http://0/", "http://0x7f.1/", "http://%31%32%37.0.0.1/"],
    );
}

#[test]
fn user_info_and_parser_differentials_reach_no_allowed_name() {
    let list = allow(&["https://api.allowed.com"]);
    for uri in [
        "https://api.allowed.com@evil.com/",
        "https://api.allowed.com:443@evil.com/",
        "https://user:pass@api.allowed.com/",
    ] {
        assert_eq!(
            request(uri).map(|d| d.to_string()),
            Err("user info in the URL is not allowed".into()),
            "{uri}"
        );
    }
    none_permitted(
        &list,
        &[
            "https://evil.com\\@api.allowed.com/",
            "https://evil.com#@api.allowed.com/",
            "https://evil.com?@api.allowed.com/",
            "https://evil.com/api.allowed.com",
            "https://evil.com%2fapi.allowed.com/",
            "https://api.allowed.com%00.evil.com/",
            "https://api.allowed.com .evil.com/",
            "https:// api.allowed.com/",
            "https://api.allowed.com\t/",
        ],
    );
    assert!(list.permits_destination(&request("https://api.allowed.com/v1").unwrap()));
}

#[test]
fn only_the_granted_port_is_reached_and_invalid_ports_are_refused() {
    let list = allow(&["https://api.allowed.com"]);
    none_permitted(
        &list,
        &[
            "https://api.allowed.com:0/",
            "https://api.allowed.com:22/",
            "https://api.allowed.com:80/",
            "https://api.allowed.com:8443/",
            "http://api.allowed.com:443/",
        ],
    );
    for uri in [
        "https://api.allowed.com:65536/",
        "https://api.allowed.com:-1/",
    ] {
        assert!(request(uri).is_err(), "{uri}");
    }
    assert!(list.permits_destination(&request("https://api.allowed.com:443/").unwrap()));
}

#[test]
fn schemes_other_than_http_and_https_are_refused() {
    for uri in [
        "file:///etc/passwd",
        "file://api.allowed.com/etc/passwd",
        "gopher://api.allowed.com/",
        "dict://api.allowed.com:11211/",
        "ftp://api.allowed.com/",
        "ws://api.allowed.com/",
        "wss://api.allowed.com/",
        "data:text/plain,hello",
        "/relative/path",
    ] {
        assert!(request(uri).is_err(), "{uri}: {:?}", request(uri));
    }
    // And an https-only entry is no entry for http.
    none_permitted(
        &allow(&["https://api.allowed.com"]),
        &["http://api.allowed.com/"],
    );
}

#[test]
fn names_that_only_look_allowed_are_not() {
    let list = allow(&["https://*.allowed.com", "https://exact.example.org"]);
    none_permitted(
        &list,
        &[
            "https://allowed.com.evil.net/",
            "https://x.allowed.com.evil.net/",
            "https://evilallowed.com/",
            "https://x.evilallowed.com/",
            "https://allowed.com/",
            "https://a.b.allowed.com/",
            "https://allowed.com%2eevil.net/",
            "https://x.allowed%2ecom/",
            // Cyrillic а and its punycode: another name.
            "https://x.\u{430}llowed.com/",
            "https://x.xn--llowed-2nf.com/",
            "https://exact.example.org.evil.net/",
            "https://exact.example.org%2e/",
        ],
    );
    for uri in [
        "https://X.ALLOWED.COM/",
        "https://x.allowed.com/",
        "https://EXACT.example.ORG/",
    ] {
        assert!(list.permits_destination(&request(uri).unwrap()), "{uri}");
    }
    // A trailing dot names the same host, or is refused: never another one.
    for uri in ["https://x.allowed.com./", "https://exact.example.org./"] {
        if let Ok(dest) = request(uri) {
            let name = dest.host.name();
            assert!(
                name.trim_end_matches('.').ends_with("allowed.com")
                    || name.trim_end_matches('.') == "exact.example.org",
                "{uri}: {name}"
            );
        }
    }
}
