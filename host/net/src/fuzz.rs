//! Fuzzing the allow list and the address checks with generated input (proptest):
//! nothing a grant or a guest writes makes them panic, and their answers agree with
//! each other. `PROPTEST_CASES=100000 cargo test -p warden-net fuzz` runs long; CI runs
//! the default 256 cases a target. Cases that once failed are kept in
//! `proptest-regressions/` beside this file and run first.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::{AllowList, Destination, canonical_ip, restricted};

/// Text shaped like a destination (scheme, host in many spellings, port, path), and
/// arbitrary text.
fn destination_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "(https?|ftp|HTTP|)(://|:/|//)?(\\*\\.)?[a-zA-Z0-9.\\-_\\[\\]:%@]{0,40}(:[0-9]{0,7})?(/[ -~]{0,20})?",
        "(https?://)?(0x[0-9a-f]{1,8}|[0-9]{1,10}|0[0-7]{1,11}|[0-9]{1,3}(\\.[0-9]{1,3}){1,3})(:[0-9]{1,5})?",
        "(https?://)?\\[[0-9a-fA-F:.%]{0,45}\\](:[0-9]{1,5})?",
        any::<String>(),
    ]
}

proptest! {
    #[test]
    fn fuzz_destinations_parse_or_refuse_and_name_themselves(text in destination_text()) {
        if let Ok(dest) = Destination::parse(&text) {
            // What a destination calls itself parses back to the same destination.
            let name = dest.to_string();
            let again = Destination::parse(&name);
            prop_assert!(again.is_ok(), "{text:?} → {name:?} does not parse: {again:?}");
            prop_assert_eq!(again.unwrap(), dest);
        }
    }

    #[test]
    fn fuzz_guest_request_uris_give_destinations_that_name_themselves(text in destination_text()) {
        let Ok(uri) = text.parse::<http::Uri>() else {
            return Ok(());
        };
        if let Ok(dest) = Destination::from_uri(&uri) {
            let again = Destination::parse(&dest.to_string());
            prop_assert!(again.is_ok(), "{text:?} → {dest} does not parse: {again:?}");
            prop_assert_eq!(again.unwrap(), dest);
        }
    }

    #[test]
    fn fuzz_allow_lists_match_as_they_permit(
        entries in proptest::collection::vec(destination_text(), 0..5),
        asked in proptest::collection::vec(destination_text(), 1..5),
    ) {
        let Ok(allow) = AllowList::parse(&entries) else {
            return Ok(());
        };
        for text in &asked {
            if let Ok(dest) = Destination::parse(text) {
                prop_assert_eq!(
                    allow.matching(&dest).is_some(),
                    allow.permits_destination(&dest),
                    "{:?} against {:?}", text, entries
                );
            }
        }
    }

    #[test]
    fn fuzz_addresses_are_judged_the_same_in_every_spelling(bits in any::<u32>(), v6 in any::<u128>()) {
        let v4 = Ipv4Addr::from(bits);
        let ip = IpAddr::V4(v4);
        prop_assert_eq!(canonical_ip(canonical_ip(ip)), canonical_ip(ip));
        // The IPv4-mapped spelling of an address is judged as the address.
        let mapped = IpAddr::V6(v4.to_ipv6_mapped());
        prop_assert_eq!(restricted(mapped).is_some(), restricted(ip).is_some(), "{}", v4);
        prop_assert_eq!(canonical_ip(mapped), ip);
        // Any IPv6 address is judged without panicking, and canonical twice is once.
        let any6 = IpAddr::V6(Ipv6Addr::from(v6));
        let _ = restricted(any6);
        prop_assert_eq!(canonical_ip(canonical_ip(any6)), canonical_ip(any6));
    }
}

/// What fuzzing found, kept as plain tests.
#[test]
fn fuzz_findings_stay_fixed() {
    // A guest's request to `http://*.` became a destination with host `*`.
    let uri: http::Uri = "http://*.".parse().unwrap();
    let err = Destination::from_uri(&uri).unwrap_err().to_string();
    assert!(err.contains("not a DNS name"), "{err}");
    // An allow entry `http://.` became a destination with an empty host.
    let err = format!("{:#}", Destination::parse("http://.").unwrap_err());
    assert!(err.contains("not a DNS name"), "{err}");
}

#[test]
fn a_name_that_is_an_address_without_its_trailing_dots_is_the_address() {
    // cargo-fuzz (allow_list): a guest's `http://127.27..` became the name `127.27`,
    // which names itself `http://127.27`, which is 127.0.0.27.
    let address = Destination::parse("http://127.0.0.27").unwrap();
    let uri: http::Uri = "http://127.27../x".parse().unwrap();
    assert_eq!(Destination::from_uri(&uri).unwrap(), address);
    assert_eq!(Destination::parse("http://127.27..").unwrap(), address);
    assert_eq!(Destination::parse("http://0x7f00001b..").unwrap(), address);
    // A name the URL parser would refuse once its dots are gone is refused.
    let uri: http::Uri = "http://foo.1../".parse().unwrap();
    let err = Destination::from_uri(&uri).unwrap_err().to_string();
    assert!(err.contains("not a DNS name"), "{err}");
    // Names stay names, with or without their dots.
    let name = Destination::parse("https://api.example.com..").unwrap();
    assert_eq!(name, Destination::parse("https://api.example.com").unwrap());
}
