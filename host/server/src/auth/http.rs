//! The HTTP API's authentication layer: the bearer token of every request but the
//! open routes becomes the [`Caller`] handlers see (a static token, or an OAuth access
//! token); a missing or refused one is a 401 with its `WWW-Authenticate` challenge,
//! on the record (a few a second, [`crate::refusals`]) without the token itself; a
//! 403 to an OAuth caller names the scopes it lacks. And the Protected Resource
//! Metadata route.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::metadata::{self, Problem};
use super::{Access, Caller, Unknown};
use crate::api::AppState;
use crate::error::{ApiError, Forbidden};
use warden_audit::{Event, Outcome};

pub(crate) async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = header
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let access = state.access();
    let refused = match token {
        Some(token) => match access.authenticate_bearer(token).await {
            Ok(caller) => {
                request.extensions_mut().insert(caller.clone());
                let mut response = next.run(request).await;
                if response.extensions().get::<Forbidden>().is_some() {
                    insufficient_scope(&access, host.as_deref(), &caller, &mut response);
                }
                return response;
            }
            Err(unknown) => Some(unknown),
        },
        None => None,
    };
    let (reason, description) = match (header, &refused) {
        (None, _) => ("no Authorization header".to_string(), None),
        (Some(_), None) => (
            "the Authorization header is not `Bearer TOKEN`".to_string(),
            None,
        ),
        (Some(_), Some(Unknown::Token)) => (
            "unknown token".to_string(),
            Some("unknown token".to_string()),
        ),
        (Some(_), Some(Unknown::Access(refused))) => {
            let description = refused.rejection.describe();
            (
                format!("access token refused: {description}"),
                Some(description),
            )
        }
    };
    // On the record, a few a second: a flood of them is counted, not written. The
    // token itself never is.
    if let Some(suppressed) = state.refusals.admit() {
        let (path, clipped) = crate::refusals::clip(request.uri().path());
        let mut event = Event::new("access.denied", "anonymous")
            .outcome(Outcome::Denied)
            .field("reason", reason.as_str())
            .field("method", request.method().as_str())
            .field("path", path);
        if let Some(Unknown::Access(refused)) = &refused {
            event = event
                .field("auth", "oauth")
                .field("rejection", refused.rejection.code());
            if let Some(issuer) = &refused.issuer {
                event = event.field("issuer", issuer.as_str());
            }
        }
        if clipped {
            event = event.field("path_clipped", true);
        }
        if suppressed > 0 {
            event = event.field("suppressed", suppressed);
        }
        state.record(event).await;
    }
    let how = if access.issuers().is_empty() {
        "send `Authorization: Bearer TOKEN` (create one with `warden token create NAME --role ROLE`)"
    } else {
        "send `Authorization: Bearer TOKEN`: a token of `warden token create`, or an access token of an issuer this server trusts (see WWW-Authenticate)"
    };
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        format!("{reason}: {how}"),
    )
    .into_response();
    let problem = description.as_deref().map(|description| Problem {
        error: "invalid_token",
        description,
    });
    let issuers = access.issuers();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        metadata::challenge(issuers, host.as_deref(), issuers.scopes(), problem),
    );
    response
}

/// A 403 of the access policy to a caller with an OAuth access token names the
/// scopes it lacks (those that would give it another role), as `insufficient_scope`.
fn insufficient_scope(
    access: &Access,
    host: Option<&str>,
    caller: &Caller,
    response: &mut Response,
) {
    let Some(held) = &caller.scopes else {
        return;
    };
    let issuers = access.issuers();
    let lacking: Vec<String> = issuers
        .scopes()
        .iter()
        .filter(|scope| !held.contains(scope))
        .cloned()
        .collect();
    if lacking.is_empty() {
        return;
    }
    let problem = Problem {
        error: "insufficient_scope",
        description: "the token's scopes do not allow this request",
    };
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        metadata::challenge(issuers, host, &lacking, Some(problem)),
    );
}

/// `GET /.well-known/oauth-protected-resource[/mcp]`: the Protected Resource Metadata
/// (RFC 9728), for clients to find the authorization servers. Unauthenticated.
pub(crate) async fn resource_metadata(State(state): State<Arc<AppState>>) -> Response {
    match metadata::document(state.access().issuers()) {
        // Public by design: browser-based MCP clients read it from another origin.
        Some(document) => (
            [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
            axum::Json(document),
        )
            .into_response(),
        None => ApiError::not_found(
            "no-oauth",
            "this server accepts no OAuth access tokens (add [[auth.issuers]] to warden.toml)",
        )
        .into_response(),
    }
}
