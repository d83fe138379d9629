//! Allow lists and destinations (`warden_net`). The input is lines of text: those
//! before the first empty line are the entries of an allow list, the others are
//! destinations asked for, read both as an allow entry and as a guest's request URI.
//! A destination names itself in a form that parses back to it, and the allow list
//! answers the same through [`AllowList::matching`] and
//! [`AllowList::permits_destination`]. A line that is an IP address is also judged by
//! the address checks, in its IPv4-mapped spelling too.

use std::net::IpAddr;

use warden_net::{AllowList, Destination, canonical_ip, restricted};

pub fn allow_list(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (entries, asked) = text.split_once("\n\n").unwrap_or((text, ""));
    let entries: Vec<String> = entries.lines().map(str::to_owned).collect();
    let allow = AllowList::parse(&entries).ok();
    for line in entries.iter().map(String::as_str).chain(asked.lines()) {
        let parsed = Destination::parse(line);
        if let Ok(dest) = &parsed {
            names_itself(line, dest);
        }
        if let Ok(uri) = line.parse::<http::Uri>()
            && let Ok(dest) = Destination::from_uri(&uri)
        {
            names_itself(line, &dest);
        }
        if let (Some(allow), Ok(dest)) = (&allow, &parsed) {
            assert_eq!(
                allow.matching(dest).is_some(),
                allow.permits_destination(dest),
                "{line:?} against {entries:?}"
            );
        }
        if let Ok(ip) = line.parse::<IpAddr>() {
            addresses(ip);
        }
    }
}

/// What `dest` calls itself parses back to `dest`.
fn names_itself(line: &str, dest: &Destination) {
    let name = dest.to_string();
    match Destination::parse(&name) {
        Ok(again) => assert_eq!(&again, dest, "{line:?} → {name:?}"),
        Err(err) => panic!("{line:?} → {name:?}, which does not parse: {err}"),
    }
}

/// An address is judged as its canonical form, and canonical twice is once.
fn addresses(ip: IpAddr) {
    let canonical = canonical_ip(ip);
    assert_eq!(canonical_ip(canonical), canonical, "{ip}");
    assert_eq!(
        restricted(ip).is_some(),
        restricted(canonical).is_some(),
        "{ip}"
    );
    if let IpAddr::V4(v4) = ip {
        let mapped = IpAddr::V6(v4.to_ipv6_mapped());
        assert_eq!(
            restricted(mapped).is_some(),
            restricted(ip).is_some(),
            "{ip}"
        );
        assert_eq!(canonical_ip(mapped), ip);
    }
}
