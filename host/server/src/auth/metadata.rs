//! What a client learns about this server's OAuth: the Protected Resource Metadata
//! (RFC 9728) at `/.well-known/oauth-protected-resource[/mcp]`, and the
//! `WWW-Authenticate` challenges of 401 and 403 answers (RFC 6750, as the MCP
//! authorization specification asks: `resource_metadata`, `scope`, `error`).

use axum::http::HeaderValue;
use serde_json::{Value, json};

use super::oauth::Issuers;

/// The path of the metadata document; the resource's path follows it.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The Protected Resource Metadata of this server, or `None` when no issuer is
/// configured.
pub fn document(issuers: &Issuers) -> Option<Value> {
    let resource = issuers.resource()?;
    Some(json!({
        "resource": resource,
        "authorization_servers": issuers.identifiers(),
        "scopes_supported": issuers.scopes(),
        "bearer_methods_supported": ["header"],
        "resource_name": "Warden",
    }))
}

/// Where the metadata is: from the resource (the first issuer's audience) when it is
/// an http(s) URL, else from the request's `Host`.
pub fn url(issuers: &Issuers, host: Option<&str>) -> Option<String> {
    let resource = issuers.resource()?;
    if let Ok(uri) = http::Uri::try_from(resource)
        && let (Some(scheme @ ("http" | "https")), Some(authority)) =
            (uri.scheme_str(), uri.authority())
    {
        let path = uri.path().trim_end_matches('/');
        return Some(format!("{scheme}://{authority}{WELL_KNOWN}{path}"));
    }
    host.map(|host| format!("http://{host}{WELL_KNOWN}/mcp"))
}

/// An error of a challenge: `invalid_token` (401) or `insufficient_scope` (403), and
/// what to say about it.
pub struct Problem<'a> {
    /// The RFC 6750 error code.
    pub error: &'a str,
    /// Its description (printable ASCII without quotes).
    pub description: &'a str,
}

/// `WWW-Authenticate: Bearer …` with the metadata's URL and `scopes` when there are
/// issuers, and `problem` when there is one.
pub fn challenge(
    issuers: &Issuers,
    host: Option<&str>,
    scopes: &[String],
    problem: Option<Problem<'_>>,
) -> HeaderValue {
    let mut params = Vec::new();
    if let Some(url) = url(issuers, host) {
        params.push(format!("resource_metadata=\"{}\"", quoted(&url)));
    }
    if !scopes.is_empty() {
        params.push(format!("scope=\"{}\"", quoted(&scopes.join(" "))));
    }
    if let Some(problem) = problem {
        params.push(format!("error=\"{}\"", quoted(problem.error)));
        params.push(format!(
            "error_description=\"{}\"",
            quoted(problem.description)
        ));
    }
    let text = if params.is_empty() {
        "Bearer".to_string()
    } else {
        format!("Bearer {}", params.join(", "))
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

/// `text` with what a quoted header parameter may not hold left out.
fn quoted(text: &str) -> String {
    text.chars()
        .filter(|c| (c.is_ascii_graphic() || *c == ' ') && *c != '"' && *c != '\\')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_url_follows_the_resource() {
        let auth: warden_config::auth::AuthConfig = serde_json::from_value(json!({"issuers": [
            {"issuer": "https://idp.example", "audience": "https://w.example/mcp",
             "jwks_url": "https://idp.example/jwks", "scope_roles": {"tools:call": "caller"}}
        ]}))
        .unwrap();
        let issuers = Issuers::from_config(&auth, std::path::Path::new("."), None).unwrap();
        assert_eq!(
            url(&issuers, Some("127.0.0.1:1")).as_deref(),
            Some("https://w.example/.well-known/oauth-protected-resource/mcp")
        );
        let header = challenge(
            &issuers,
            None,
            issuers.scopes(),
            Some(Problem {
                error: "invalid_token",
                description: "the token has expired",
            }),
        );
        assert_eq!(
            header,
            "Bearer resource_metadata=\"https://w.example/.well-known/oauth-protected-resource/mcp\", scope=\"tools:call\", error=\"invalid_token\", error_description=\"the token has expired\""
        );
        assert_eq!(challenge(&Issuers::default(), None, &[], None), "Bearer");
    }
}
