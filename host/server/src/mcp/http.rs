//! The Streamable HTTP transport: an axum [`Router`] serving MCP at `/mcp`.
//!
//! `serve` mounts it behind its bearer-token authentication, which puts the caller's
//! [`Principal`] into the request's extensions (`req.extensions_mut().insert(…)`); every
//! call is made on behalf of that principal, and a request without one is refused
//! with 401, so the endpoint fails closed if it is mounted without authentication.
//! The authentication may add an [`Authorizer`] too (the caller's roles): a tool it
//! refuses is not listed, and a call of it is answered as a call of an unknown tool
//! (the refusal on record through the gate), on top of the access policy and
//! [`ToolSource::allowed`](super::ToolSource::allowed).
//!
//! Before that, two checks against DNS rebinding and cross-site requests, as the MCP
//! specification asks of Streamable HTTP servers:
//! - `Origin`: a request that has one (a browser's) must come from a loopback origin
//!   (`http(s)://localhost`, `127.0.0.1` or `[::1]`, any port) or one listed in
//!   [`HttpOptions::allowed_origins`]; otherwise 403. Requests without `Origin`
//!   (programs, desktop agents) pass.
//! - `Host`: must be one of [`HttpOptions::allowed_hosts`] (loopback names by default;
//!   a server reached by another name lists it), else 403 `forbidden-host` naming the
//!   host and the names this endpoint answers to. This is what stops a page whose
//!   name was rebound to 127.0.0.1: its requests are same-origin, so they carry no
//!   `Origin`, but they carry its own name as `Host`. (The SDK checks it again.)
//!
//! Sessions (`Mcp-Session-Id`) are kept in memory; a session's client gets
//! `notifications/tools/list_changed` on its `GET /mcp` stream. A request naming a
//! session the server does not hold (closed, or from before a restart) is answered 404
//! `unknown-session`, and the client starts a new one.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::uri::Authority;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};

use super::{Handler, Mcp};

/// Who a request to `/mcp` is from: put into the request's extensions by the
/// authentication in front of the router (e.g. `token:<name>`, `local:<user>`).
#[derive(Clone, Debug)]
pub struct Principal(pub warden_runtime::Caller);

/// What the caller of one request may call, put into the request's extensions beside
/// its [`Principal`]: `(plugin, tool) -> allowed` for the tool list, and optionally the
/// access policy's decision on each call with its arguments.
#[derive(Clone)]
pub struct Authorizer {
    allow: Arc<Allow>,
}

/// `(plugin, tool) -> allowed`.
type Allow = dyn Fn(&str, &str) -> bool + Send + Sync;

impl Authorizer {
    /// An authorizer that allows `plugin/tool` when `allow(plugin, tool)` is true.
    pub fn new(allow: impl Fn(&str, &str) -> bool + Send + Sync + 'static) -> Self {
        Self {
            allow: Arc::new(allow),
        }
    }

    /// Whether the caller may call `tool` of `plugin`.
    pub fn allows(&self, plugin: &str, tool: &str) -> bool {
        (self.allow)(plugin, tool)
    }
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authorizer")
    }
}

/// Settings of the `/mcp` endpoint.
///
/// ```
/// let options = warden_server::mcp::HttpOptions {
///     allowed_origins: vec!["https://console.example.com".into()],
///     ..Default::default()
/// };
/// ```
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Browser origins allowed besides loopback ones, as `scheme://host[:port]`
    /// (compared without case; `null` allows `Origin: null`). Default: none.
    pub allowed_origins: Vec<String>,
    /// Accepted `Host` names (`name` or `name:port`). Default: `localhost`,
    /// `127.0.0.1`, `::1`. Empty accepts any host (not recommended).
    pub allowed_hosts: Vec<String>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        }
    }
}

impl Mcp {
    /// A router that serves MCP (Streamable HTTP) at `/mcp`; merge or nest it into a
    /// server whose authentication inserts a [`Principal`] into every request.
    pub fn http_router(&self, options: HttpOptions) -> Router {
        let shared = self.shared.clone();
        // A request served without a session (2026-07-28) whose answer is one message
        // gets it as one JSON body, not as an event stream of one message; if anything
        // is sent before the answer (progress, a log message), the stream it is.
        let config = StreamableHttpServerConfig::default()
            .with_allowed_hosts(options.allowed_hosts.clone())
            .with_json_response(true)
            .disable_allowed_origins();
        let service = StreamableHttpService::new(
            move || Ok(Handler::new(shared.clone(), None)),
            Arc::new(LocalSessionManager::default()),
            config,
        );
        let allowed = Arc::new(options);
        let direct = self.shared.clone();
        Router::new()
            .route_service("/mcp", service)
            // A plain 2026-07-28 `tools/call` is answered without rmcp's service.
            .layer(axum::middleware::from_fn(
                move |req: Request, next: Next| {
                    super::direct::answer_plain(direct.clone(), req, next)
                },
            ))
            .layer(axum::middleware::from_fn(
                move |req: Request, next: Next| {
                    let allowed = allowed.clone();
                    async move { check(&allowed, req, next).await }
                },
            ))
    }
}

async fn check(options: &HttpOptions, req: Request, next: Next) -> Response {
    let allowed = &options.allowed_origins;
    if let Some(host) = req.headers().get(header::HOST) {
        let host = String::from_utf8_lossy(host.as_bytes());
        if !host_allowed(&host, &options.allowed_hosts) {
            tracing::warn!(%host, "MCP request for a Host this endpoint does not answer to");
            return refuse(
                StatusCode::FORBIDDEN,
                "forbidden-host",
                format!(
                    "Host {host:?} is not a name this MCP endpoint answers to ({}): a page whose name was pointed at this machine may not use it; reach the server by one of those names",
                    options.allowed_hosts.join(", ")
                ),
            );
        }
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !origin_allowed(origin, allowed) {
            tracing::warn!(
                origin,
                "MCP request from a browser origin that is not allowed"
            );
            return refuse(
                StatusCode::FORBIDDEN,
                "forbidden-origin",
                format!(
                    "origin {origin:?} may not use this MCP endpoint (loopback origins and the server's allowed origins may)"
                ),
            );
        }
    }
    if req.extensions().get::<Principal>().is_none() {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "no principal: send a bearer token (Authorization: Bearer …)".into(),
        );
    }
    let session = req.headers().get("mcp-session-id").cloned();
    let response = next.run(req).await;
    // The SDK's bare 404 for a session it does not hold, named: a client must start a
    // new session then (the specification says so), and a person reading it should
    // learn why.
    match session {
        Some(session) if response.status() == StatusCode::NOT_FOUND => refuse(
            StatusCode::NOT_FOUND,
            "unknown-session",
            format!(
                "no MCP session {:?} on this server (it was closed, or the server restarted): start a new one with initialize",
                String::from_utf8_lossy(session.as_bytes())
            ),
        ),
        _ => response,
    }
}

pub(super) fn refuse(status: StatusCode, code: &str, message: String) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (status, axum::Json(body)).into_response()
}

/// Whether a request with `Host: host` may use the endpoint: `host` is one of
/// `allowed` (compared without case; an entry without a port allows any port), or
/// `allowed` is empty. A `Host` that is not an authority is refused.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let parse = |text: &str| {
        let authority = Authority::try_from(text.trim()).ok()?;
        let name = authority
            .host()
            .trim_matches(['[', ']'])
            .to_ascii_lowercase();
        Some((name, authority.port_u16()))
    };
    let Some((name, port)) = parse(host) else {
        return false;
    };
    allowed.iter().any(|entry| {
        let (entry_name, entry_port) = parse(entry).unwrap_or_else(|| {
            (
                entry.trim().trim_matches(['[', ']']).to_ascii_lowercase(),
                None,
            )
        });
        entry_name == name && entry_port.is_none_or(|p| Some(p) == port)
    })
}

/// Whether a request with `Origin: origin` may use the endpoint: a loopback origin,
/// or one of `allowed`.
pub fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    let origin = origin.trim().trim_end_matches('/');
    if allowed
        .iter()
        .any(|a| a.trim().trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return false;
    }
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map(|(h, _)| h),
        None => rest.split(':').next(),
    };
    let port_ok = |after: &str| {
        after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|p| p.parse::<u16>().is_ok())
    };
    match host {
        Some(h) if h.eq_ignore_ascii_case("localhost") || h == "127.0.0.1" => {
            port_ok(&rest[h.len()..])
        }
        Some("::1") => port_ok(&rest["[::1]".len()..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{host_allowed, origin_allowed};

    #[test]
    fn loopback_hosts_pass_and_others_are_refused() {
        let loopback = super::HttpOptions::default().allowed_hosts;
        for h in [
            "localhost",
            "LOCALHOST:7878",
            "127.0.0.1:1",
            "[::1]:7878",
            "[::1]",
        ] {
            assert!(host_allowed(h, &loopback), "{h}");
        }
        for h in [
            "evil.com",
            "evil.com:7878",
            "localhost.evil.com",
            "127.0.0.1.nip.io",
            "localhost@evil.com",
            "",
            "local host",
        ] {
            assert!(!host_allowed(h, &loopback), "{h}");
        }
        let listed = ["warden.internal:8443".to_string()];
        assert!(host_allowed("Warden.Internal:8443", &listed));
        assert!(!host_allowed("warden.internal:8444", &listed));
        assert!(!host_allowed("warden.internal", &listed));
        assert!(host_allowed("evil.com", &[]));
    }

    #[test]
    fn loopback_origins_pass() {
        for o in [
            "http://localhost",
            "http://localhost:3000",
            "https://127.0.0.1:8443",
            "http://[::1]:7878",
            "HTTP://LOCALHOST:1/",
        ] {
            assert!(origin_allowed(o, &[]), "{o}");
        }
    }

    #[test]
    fn other_origins_are_refused_unless_listed() {
        for o in [
            "https://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.nip.io",
            "http://localhost:notaport",
            "http://localhost@evil.example",
            "file://localhost",
            "null",
            "",
        ] {
            assert!(!origin_allowed(o, &[]), "{o}");
        }
        let allowed = [
            "https://console.example.com".to_string(),
            "null".to_string(),
        ];
        assert!(origin_allowed("https://Console.example.com", &allowed));
        assert!(origin_allowed("null", &allowed));
        assert!(!origin_allowed("https://console.example.com:444", &allowed));
    }
}
