//! Cross-site request forgery: every change (a `POST` under `/console`) must carry the
//! session's synchronizer token, as the form field `csrf` or, from the page's script,
//! the header `X-CSRF-Token`; and when the browser names the page it came from
//! (`Origin`), it must be this server. The session cookie is `SameSite=Strict` too,
//! so a page of another site cannot even send it.

use axum::http::{HeaderMap, header};
use maud::{Markup, html};
use sha2::{Digest as _, Sha256};

/// The form field that carries the token.
pub(crate) const FIELD: &str = "csrf";

/// The header that carries the token on the script's requests.
pub(crate) const HEADER: &str = "x-csrf-token";

/// A new random token (256 bits, hex).
pub(crate) fn token() -> String {
    let mut bytes = [0u8; 32];
    // The operating system's generator; without one no session can be made safely.
    getrandom::fill(&mut bytes).expect("the operating system's random number generator");
    hex::encode(bytes)
}

/// True when `sent` is `expected`, compared in time that does not depend on where
/// they differ.
pub(crate) fn matches(sent: Option<&str>, expected: &str) -> bool {
    let Some(sent) = sent else {
        return false;
    };
    let (a, b) = (Sha256::digest(sent), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The token a request carries: its header, else the form field of its body.
pub(crate) fn sent(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    if let Some(value) = headers.get(HEADER).and_then(|v| v.to_str().ok()) {
        return Some(value.to_string());
    }
    let form = headers.get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes()
            .starts_with(b"application/x-www-form-urlencoded")
    });
    if !form {
        return None;
    }
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == FIELD)
        .map(|(_, v)| v.into_owned())
}

/// True when the request's `Origin`, if it has one, is the server it was sent to.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// The hidden field of a form.
pub(crate) fn field(token: &str) -> Markup {
    html! { input type="hidden" name=(FIELD) value=(token); }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_matches_itself_only() {
        let t = token();
        assert_eq!(t.len(), 64);
        assert!(matches(Some(&t), &t));
        assert!(!matches(Some(&token()), &t));
        assert!(!matches(Some(""), &t));
        assert!(!matches(None, &t));
    }

    #[test]
    fn the_token_is_read_from_the_header_or_the_form() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        assert_eq!(sent(&headers, b"a=1&csrf=abc").as_deref(), Some("abc"));
        assert_eq!(sent(&headers, b"a=1").as_deref(), None);
        headers.insert(HEADER, "def".parse().unwrap());
        assert_eq!(sent(&headers, b"csrf=abc").as_deref(), Some("def"));
    }

    #[test]
    fn another_origin_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(!same_origin(&headers));
        headers.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(!same_origin(&headers));
    }
}
