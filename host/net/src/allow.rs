//! Destinations and the allow list of a `[net]` grant.
//!
//! Every host name and IP literal goes through the WHATWG URL host parser (the `url`
//! crate) before it is compared, on both sides: the operator's entries and the guest's
//! requests. So `0x7f000001`, `2130706433`, `0177.0.0.1` and `127.1` are all
//! `127.0.0.1`, `[::ffff:7f00:1]` is the IPv4-mapped `127.0.0.1`, names are lowercased
//! and international names are in their ASCII (punycode) form.

use std::fmt;
use std::net::IpAddr;

use crate::error::{AllowListError, DestinationError, NotDnsName};

/// Where a request goes: scheme, host and port, normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// The host, normalised.
    pub host: Host,
    /// The port (the scheme's default when none was given).
    pub port: u16,
}

/// The two schemes a guest may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "http" => Some(Self::Http),
            "https" => Some(Self::Https),
            _ => None,
        }
    }

    /// The scheme's default port.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// A normalised host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// A DNS name, lowercase ASCII.
    Domain(String),
    /// An IP literal; an IPv4-mapped IPv6 address is stored as the IPv4 address.
    Ip(IpAddr),
}

impl Host {
    fn from_url(host: url::Host<&str>) -> Self {
        match host {
            // The URL parser keeps a name's trailing dots, and reads `127.27.` as an
            // IPv4 address but `127.27..` as a name: without its dots, that name is
            // 127.0.0.27 to the URL parser and to the resolver (found by fuzzing).
            url::Host::Domain(d) => {
                let name = d.trim_end_matches('.');
                match url::Host::parse(name) {
                    Ok(url::Host::Ipv4(ip)) => Self::Ip(IpAddr::V4(ip)),
                    _ => Self::Domain(name.to_string()),
                }
            }
            url::Host::Ipv4(ip) => Self::Ip(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Self::Ip(canonical_ip(IpAddr::V6(ip))),
        }
    }

    /// `Err` for a name no DNS name has, which the URL parser lets through (`*`, an
    /// empty name once its trailing dot is gone, `foo.1` from `foo.1..`, which the URL
    /// parser refuses as a name that ends in a number): found by fuzzing.
    fn check(&self) -> Result<(), NotDnsName> {
        if let Self::Domain(name) = self
            && (name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
                || !matches!(url::Host::parse(name), Ok(url::Host::Domain(_))))
        {
            return Err(NotDnsName { name: name.clone() });
        }
        Ok(())
    }

    /// The name as a TLS server name and for resolution.
    pub fn name(&self) -> String {
        match self {
            Self::Domain(d) => d.clone(),
            Self::Ip(ip) => ip.to_string(),
        }
    }
}

/// An IPv4-mapped IPv6 address as its IPv4 address; anything else unchanged.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Domain(d) => f.write_str(d),
            Self::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Self::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.host)?;
        if self.port != self.scheme.default_port() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

impl Destination {
    /// Parses an operator's `scheme://host[:port]` (no path, query or user info).
    pub fn parse(text: &str) -> Result<Self, DestinationError> {
        let (dest, _) = parse_entry(text, false)?;
        Ok(dest)
    }

    /// The destination of a guest's request URI (which carries scheme and authority).
    pub fn from_uri(uri: &http::Uri) -> Result<Self, DestinationError> {
        let scheme = uri.scheme_str().unwrap_or("");
        let Some(scheme) = Scheme::parse(scheme) else {
            return Err(DestinationError::RequestScheme {
                scheme: scheme.to_string(),
            });
        };
        let Some(authority) = uri.authority() else {
            return Err(DestinationError::RequestNoHost);
        };
        if authority.as_str().contains('@') {
            return Err(DestinationError::RequestUserInfo);
        }
        let url =
            url::Url::parse(&format!("{}://{authority}/", scheme.as_str())).map_err(|source| {
                DestinationError::RequestHost {
                    host: authority.as_str().to_string(),
                    source,
                }
            })?;
        let host = url.host().ok_or(DestinationError::RequestNoHost)?;
        let host = Host::from_url(host);
        host.check()?;
        Ok(Self {
            scheme,
            host,
            port: url.port_or_known_default().unwrap_or(scheme.default_port()),
        })
    }
}

/// Parses `scheme://[*.]host[:port]`; returns the destination and whether it was a
/// wildcard (`*.` stripped from the host).
fn parse_entry(text: &str, wildcard_ok: bool) -> Result<(Destination, bool), DestinationError> {
    let text_ = || text.to_string();
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(DestinationError::NoScheme { text: text_() });
    };
    let Some(scheme) = Scheme::parse(&scheme.to_ascii_lowercase()) else {
        return Err(DestinationError::Scheme { text: text_() });
    };
    let (rest, wildcard) = match rest.strip_prefix("*.") {
        Some(rest) if wildcard_ok => (rest, true),
        Some(_) => return Err(DestinationError::WildcardNotAllowed { text: text_() }),
        None => (rest, false),
    };
    let url = url::Url::parse(&format!("{}://{rest}", scheme.as_str())).map_err(|source| {
        DestinationError::Invalid {
            text: text_(),
            source,
        }
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DestinationError::UserInfo { text: text_() });
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(DestinationError::Path { text: text_() });
    }
    let host = url
        .host()
        .ok_or_else(|| DestinationError::NoHost { text: text_() })?;
    let host = Host::from_url(host);
    if wildcard {
        match &host {
            Host::Domain(d) if d.contains('.') => {}
            _ => return Err(DestinationError::WildcardDomain { text: text_() }),
        }
    }
    if rest.contains('*') {
        return Err(DestinationError::WildcardPlace { text: text_() });
    }
    host.check().map_err(|source| DestinationError::Host {
        text: text_(),
        source,
    })?;
    let port = url.port_or_known_default().unwrap_or(scheme.default_port());
    Ok((Destination { scheme, host, port }, wildcard))
}

/// One allow entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    /// The entry as written (for messages).
    text: String,
    dest: Destination,
    /// `*.` + `dest.host`: any host with exactly one more label.
    wildcard: bool,
}

impl Entry {
    fn matches(&self, dest: &Destination) -> bool {
        if self.dest.scheme != dest.scheme || self.dest.port != dest.port {
            return false;
        }
        if !self.wildcard {
            return self.dest.host == dest.host;
        }
        match (&self.dest.host, &dest.host) {
            (Host::Domain(suffix), Host::Domain(name)) => name
                .strip_suffix(suffix.as_str())
                .and_then(|label| label.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty() && !label.contains('.')),
            _ => false,
        }
    }
}

/// The parsed `[net] allow` list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Entry>,
}

impl AllowList {
    /// Parses every entry, naming the first bad one.
    pub fn parse(entries: &[String]) -> Result<Self, AllowListError> {
        let entries = entries
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let (dest, wildcard) =
                    parse_entry(text, true).map_err(|source| AllowListError {
                        number: i + 1,
                        source,
                    })?;
                Ok(Entry {
                    text: text.clone(),
                    dest,
                    wildcard,
                })
            })
            .collect::<Result<_, AllowListError>>()?;
        Ok(Self { entries })
    }

    /// True when no destination is allowed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry that allows `dest`, as written.
    pub fn matching(&self, dest: &Destination) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.matches(dest))
            .map(|e| e.text.as_str())
    }

    /// True when some entry allows `dest`.
    pub fn permits_destination(&self, dest: &Destination) -> bool {
        self.matching(dest).is_some()
    }

    /// True when an entry names `ip` itself as its host, with `dest`'s scheme and port
    /// (an operator's explicit consent to a loopback, private or metadata address, for
    /// that service only: `http://127.0.0.1:8080` does not open `127.0.0.1:22` to a
    /// name that resolves there).
    pub fn names_address(&self, ip: IpAddr, dest: &Destination) -> bool {
        let ip = canonical_ip(ip);
        self.entries.iter().any(|e| {
            !e.wildcard
                && e.dest.host == Host::Ip(ip)
                && e.dest.scheme == dest.scheme
                && e.dest.port == dest.port
        })
    }

    /// True when an entry names `localhost` exactly (for `dest`'s scheme and port).
    pub fn names_localhost(&self, dest: &Destination) -> bool {
        dest.host == Host::Domain("localhost".into())
            && self.entries.iter().any(|e| !e.wildcard && e.matches(dest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(uri: &str) -> Destination {
        Destination::from_uri(&uri.parse().unwrap()).unwrap()
    }

    #[test]
    fn ip_literals_in_every_spelling_are_one_address() {
        for spelling in [
            "http://127.0.0.1/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
        ] {
            assert_eq!(
                dest(spelling).host,
                Host::Ip("127.0.0.1".parse().unwrap()),
                "{spelling}"
            );
        }
    }

    #[test]
    fn ports_default_by_scheme() {
        assert_eq!(dest("https://example.com/x").port, 443);
        assert_eq!(dest("http://example.com/x").port, 80);
        assert_eq!(dest("http://example.com:8080/").port, 8080);
    }

    #[test]
    fn exact_and_wildcard_entries() {
        let allow = AllowList::parse(&[
            "https://api.example.com".into(),
            "https://*.example.org:8443".into(),
        ])
        .unwrap();
        assert!(allow.permits_destination(&dest("https://API.example.com/v1")));
        assert!(allow.permits_destination(&dest("https://api.example.com:443/")));
        assert!(!allow.permits_destination(&dest("http://api.example.com/")));
        assert!(!allow.permits_destination(&dest("https://api.example.com:8443/")));
        assert!(!allow.permits_destination(&dest("https://x.api.example.com/")));
        assert!(allow.permits_destination(&dest("https://a.example.org:8443/")));
        assert!(!allow.permits_destination(&dest("https://a.b.example.org:8443/")));
        assert!(!allow.permits_destination(&dest("https://example.org:8443/")));
        assert!(!allow.permits_destination(&dest("https://evilexample.org:8443/")));
    }

    #[test]
    fn bad_entries_say_what_to_write() {
        let err = |e: &str| format!("{:#}", AllowList::parse(&[e.to_string()]).unwrap_err());
        assert!(err("api.example.com").contains("needs a scheme"));
        assert!(err("ftp://x.com").contains("http or https"));
        assert!(err("https://x.com/path").contains("paths are not part"));
        assert!(err("https://u:p@x.com").contains("user info"));
        assert!(err("https://a.*.com").contains("first label"));
        assert!(err("https://*.com").contains("one label"));
    }

    #[test]
    fn a_named_address_is_consent_for_its_scheme_and_port_only() {
        let allow = AllowList::parse(&["http://127.0.0.1:8080".into(), "https://[fd00::1]".into()])
            .unwrap();
        let loopback = "127.0.0.1".parse().unwrap();
        assert!(allow.names_address(loopback, &dest("http://a.test:8080/")));
        assert!(!allow.names_address(loopback, &dest("http://a.test:22/")));
        assert!(!allow.names_address(loopback, &dest("http://a.test/")));
        assert!(!allow.names_address(loopback, &dest("https://a.test:8080/")));
        let ula = "fd00::1".parse().unwrap();
        assert!(allow.names_address(ula, &dest("https://b.test/")));
        assert!(!allow.names_address(ula, &dest("http://b.test:443/")));
        assert!(!allow.names_address(ula, &dest("https://b.test:8443/")));
    }

    #[test]
    fn explicit_addresses_and_localhost() {
        let allow = AllowList::parse(&[
            "http://0x7f000001:8080".into(),
            "http://localhost:9000".into(),
        ])
        .unwrap();
        let via = dest("http://rebind.test:8080/");
        assert!(allow.names_address("127.0.0.1".parse().unwrap(), &via));
        assert!(allow.names_address("::ffff:127.0.0.1".parse().unwrap(), &via));
        assert!(!allow.names_address("::1".parse().unwrap(), &via));
        assert!(allow.names_localhost(&dest("http://localhost:9000/")));
        assert!(!allow.names_localhost(&dest("http://localhost:9001/")));
    }
}
