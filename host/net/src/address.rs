//! Addresses a guest may not reach unless an operator names them: loopback, private,
//! link-local, unspecified, multicast, cloud metadata and the like.
//!
//! The check runs on the address Warden is about to connect to, after it resolved the
//! name itself, so a public name that resolves to `127.0.0.1` is caught as well as the
//! literal. IPv4 embedded in IPv6 (mapped, translated, compatible, NAT64 with the
//! well-known and the local-use prefix, 6to4, Teredo) is checked as IPv4.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why `ip` is refused by default, or `None` for an ordinary public address.
pub fn restricted(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => restricted_v4(v4),
        IpAddr::V6(v6) => restricted_v6(v6),
    }
}

/// Cloud metadata services outside the link-local and private ranges.
const METADATA_V4: [Ipv4Addr; 2] = [
    // Azure's wire server (also reachable from guests of other hosts' VMs).
    Ipv4Addr::new(168, 63, 129, 16),
    // Oracle Cloud's legacy metadata address.
    Ipv4Addr::new(192, 0, 0, 192),
];

fn restricted_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || METADATA_V4.contains(&ip) {
        Some("cloud metadata")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared address space (carrier-grade NAT)")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast() || a >= 240 {
        Some("reserved")
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        Some("IETF protocol assignment")
    } else if (a == 198 && (b == 18 || b == 19)) || ip.is_documentation() {
        Some("reserved for testing")
    } else {
        None
    }
}

fn restricted_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let embedded = embedded_v4(ip);
    if !embedded.is_empty() {
        // Judged by the IPv4 address the translation or tunnel reaches; where the
        // layout is ambiguous, by the worst of its readings.
        return embedded.into_iter().find_map(restricted_v4);
    }
    let first = ip.segments()[0];
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        Some("cloud metadata")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if first & 0xfe00 == 0xfc00 {
        Some("private (unique local)")
    } else if first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if first == 0x2001 && ip.segments()[1] == 0x0db8 {
        Some("reserved for documentation")
    } else if first == 0x0100 && ip.segments()[1..4] == [0, 0, 0] {
        Some("discard prefix")
    } else {
        None
    }
}

/// The IPv4 addresses an IPv6 address stands for, empty for none:
/// - IPv4-mapped `::ffff:0:0/96` and IPv4-translated `::ffff:0:0:0/96` (SIIT);
/// - IPv4-compatible `::/96` (deprecated, still routed by some stacks);
/// - NAT64 with the well-known prefix `64:ff9b::/96` (the last 32 bits);
/// - NAT64 with the local-use prefix `64:ff9b:1::/48` (RFC 8215), whose translator
///   may use any of the RFC 6052 layouts (prefix lengths 48, 56, 64 and 96): every
///   reading outside `0.0.0.0/8` (which a layout's zero padding gives) is returned, so
///   that the address is refused if any of them is restricted; `0.0.0.0` when none is;
/// - 6to4 `2002::/16` (the 32 bits after the prefix);
/// - Teredo `2001::/32`: the client's address, the last 32 bits inverted.
fn embedded_v4(ip: Ipv6Addr) -> Vec<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return vec![v4];
    }
    let s = ip.segments();
    let o = ip.octets();
    let at = |i: usize| Ipv4Addr::new(o[i], o[i + 1], o[i + 2], o[i + 3]);
    let last = at(12);
    if s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return vec![last];
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified() {
        return vec![last];
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return vec![last];
    }
    if s[..3] == [0x64, 0xff9b, 1] {
        let readings: Vec<Ipv4Addr> = [
            Ipv4Addr::new(o[6], o[7], o[9], o[10]),
            Ipv4Addr::new(o[7], o[9], o[10], o[11]),
            at(9),
            last,
        ]
        .into_iter()
        .filter(|v4| v4.octets()[0] != 0)
        .collect();
        return if readings.is_empty() {
            vec![Ipv4Addr::UNSPECIFIED]
        } else {
            readings
        };
    }
    if s[0] == 0x2002 {
        return vec![at(2)];
    }
    if s[..2] == [0x2001, 0] {
        return vec![Ipv4Addr::from(!u32::from(last))];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(ip: &str) -> Option<&'static str> {
        restricted(ip.parse().unwrap())
    }

    #[test]
    fn the_usual_suspects_are_restricted() {
        assert_eq!(class("127.0.0.1"), Some("loopback"));
        assert_eq!(class("127.255.0.9"), Some("loopback"));
        assert_eq!(class("10.1.2.3"), Some("private"));
        assert_eq!(class("172.16.0.1"), Some("private"));
        assert_eq!(class("192.168.1.1"), Some("private"));
        assert_eq!(class("169.254.1.1"), Some("link-local"));
        assert_eq!(class("169.254.169.254"), Some("cloud metadata"));
        assert_eq!(class("0.0.0.0"), Some("unspecified"));
        assert_eq!(class("224.0.0.1"), Some("multicast"));
        assert_eq!(
            class("100.100.100.200"),
            Some("shared address space (carrier-grade NAT)")
        );
        assert_eq!(class("::1"), Some("loopback"));
        assert_eq!(class("::"), Some("unspecified"));
        assert_eq!(class("fd00:ec2::254"), Some("cloud metadata"));
        assert_eq!(class("fd12::1"), Some("private (unique local)"));
        assert_eq!(class("fe80::1"), Some("link-local"));
        assert_eq!(class("ff02::1"), Some("multicast"));
    }

    #[test]
    fn ipv4_inside_ipv6_is_checked_as_ipv4() {
        assert_eq!(class("::ffff:127.0.0.1"), Some("loopback"));
        assert_eq!(class("::ffff:169.254.169.254"), Some("cloud metadata"));
        assert_eq!(class("::10.0.0.1"), Some("private"));
        assert_eq!(class("64:ff9b::a00:1"), Some("private"));
        assert_eq!(class("2002:7f00:1::"), Some("loopback"));
    }

    #[test]
    fn every_translation_prefix_is_decoded() {
        // IPv4-translated (SIIT), ::ffff:0:0:0/96.
        assert_eq!(class("::ffff:0:7f00:1"), Some("loopback"));
        assert_eq!(class("::ffff:0:a9fe:a9fe"), Some("cloud metadata"));
        assert_eq!(class("::ffff:0:808:808"), None);
        // NAT64, well-known prefix.
        assert_eq!(class("64:ff9b::a9fe:a9fe"), Some("cloud metadata"));
        assert_eq!(class("64:ff9b::808:808"), None);
        // NAT64, local-use prefix, in each RFC 6052 layout.
        assert_eq!(class("64:ff9b:1::7f00:1"), Some("loopback")); // /96
        assert_eq!(class("64:ff9b:1::a00:1"), Some("private")); // /96
        assert_eq!(class("64:ff9b:1:a00:1::"), Some("private")); // /48: 10.0 | u | 0.1
        assert_eq!(class("64:ff9b:1:a:0:1::"), Some("private")); // /56: 10 | u | 0.0.1
        assert_eq!(class("64:ff9b:1:0:a:0:100::"), Some("private")); // /64: u | 10.0.0.1
        assert_eq!(class("64:ff9b:1::808:808"), None);
        assert_eq!(class("64:ff9b:1:808:8:800::"), None); // /48: 8.8.8.8
        // A reading that looks public does not hide another that is not.
        assert_eq!(class("64:ff9b:1:a00:1::808:808"), Some("private"));
        assert_eq!(class("64:ff9b:1::"), Some("unspecified"));
        // 6to4.
        assert_eq!(class("2002:a9fe:a9fe::1"), Some("cloud metadata"));
        assert_eq!(class("2002:c0a8:101::"), Some("private"));
        assert_eq!(class("2002:808:808::1"), None);
        // Teredo: the client's address is the last 32 bits, inverted.
        assert_eq!(
            class("2001:0:4136:e378:8000:63bf:80ff:fffe"),
            Some("loopback")
        );
        assert_eq!(
            class("2001:0:4136:e378:8000:63bf:f5ff:fffe"),
            Some("private")
        );
        assert_eq!(class("2001:0:4136:e378:8000:63bf:f7f7:f7f7"), None);
        // Not Teredo: documentation, and other 2001: space.
        assert_eq!(class("2001:db8::1"), Some("reserved for documentation"));
        assert_eq!(class("2001:4860::8888"), None);
    }

    #[test]
    fn public_addresses_pass() {
        assert_eq!(class("93.184.215.14"), None);
        assert_eq!(class("2606:4700::1111"), None);
        assert_eq!(class("::ffff:8.8.8.8"), None);
    }
}
