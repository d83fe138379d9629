//! Just enough URL parsing for an HTTP GET: scheme, authority, path and query.

use std::fmt;

/// The parts of an `http(s)://` URL that an outgoing request needs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Url {
    pub(crate) https: bool,
    /// `host` or `host:port`, as written.
    pub(crate) authority: String,
    /// Path and query, starting with `/`; the fragment is dropped.
    pub(crate) path_and_query: String,
}

/// Why a URL was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BadUrl(&'static str);

impl fmt::Display for BadUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad URL: {}", self.0)
    }
}

impl Url {
    pub(crate) fn parse(input: &str) -> Result<Self, BadUrl> {
        let input = input.trim();
        let (scheme, rest) = input.split_once("://").ok_or(BadUrl(
            "expected an absolute URL such as https://example.com/",
        ))?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return Err(BadUrl("only http:// and https:// URLs can be fetched")),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.is_empty() {
            return Err(BadUrl("the URL has no host"));
        }
        if authority.contains('@') {
            return Err(BadUrl(
                "credentials in URLs are not supported; the host injects credentials",
            ));
        }
        if authority
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(BadUrl("the host contains whitespace"));
        }
        if let Some((_, port)) = authority.rsplit_once(':')
            && !authority.ends_with(']')
            && port.parse::<u16>().is_err()
        {
            return Err(BadUrl("the port is not a number from 0 to 65535"));
        }
        if tail.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(BadUrl("the path contains whitespace; percent-encode it"));
        }
        let path_and_query = if tail.starts_with('/') {
            tail.to_owned()
        } else {
            format!("/{tail}")
        };
        Ok(Self {
            https,
            authority: authority.to_owned(),
            path_and_query,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(https: bool, authority: &str, path: &str) -> Url {
        Url {
            https,
            authority: authority.into(),
            path_and_query: path.into(),
        }
    }

    #[test]
    fn parses_common_urls() {
        assert_eq!(
            Url::parse("https://example.com").unwrap(),
            url(true, "example.com", "/")
        );
        assert_eq!(
            Url::parse("http://localhost:8080/a/b?x=1#frag").unwrap(),
            url(false, "localhost:8080", "/a/b?x=1")
        );
        assert_eq!(
            Url::parse("https://example.com?q=a/b").unwrap(),
            url(true, "example.com", "/?q=a/b")
        );
        assert_eq!(
            Url::parse("HTTPS://[::1]:443/").unwrap(),
            url(true, "[::1]:443", "/")
        );
    }

    #[test]
    fn refuses_bad_urls() {
        for bad in [
            "example.com",
            "ftp://example.com/",
            "https:///path",
            "https://user:pw@example.com/",
            "https://example.com:http/",
            "https://example.com/a b",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }
}
