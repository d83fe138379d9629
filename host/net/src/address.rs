//! Addresses a guest may not reach unless an operator names them: loopback, private,
//! link-local, unspecified, multicast, cloud metadata and the like.
//!
//! The check runs on the address Warden is about to connect to, after it resolved the
//! name itself, so a public name that resolves to `127.0.0.1` is caught as well as the
//! literal. IPv4 embedded in IPv6 (mapped, compatible, NAT64, 6to4) is checked as IPv4.

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
    if let Some(v4) = embedded_v4(ip) {
        return restricted_v4(v4);
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

/// The IPv4 address inside an IPv4-mapped, IPv4-compatible, NAT64 (64:ff9b::/96) or
/// 6to4 (2002::/16) IPv6 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let low = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if s[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified() {
        return Some(low(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(low(s[1], s[2]));
    }
    None
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
    fn public_addresses_pass() {
        assert_eq!(class("93.184.215.14"), None);
        assert_eq!(class("2606:4700::1111"), None);
        assert_eq!(class("::ffff:8.8.8.8"), None);
    }
}
