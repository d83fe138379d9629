//! The web console at `/console`: server-rendered pages for the people who decide held
//! calls, grant capabilities, audit the log and watch runs, on the same server as the
//! API and under the same roles and policy.
//!
//! - [`session`]: signing in with a token (a static `[[tokens]]` one or an OAuth access
//!   token), the session cookie, signing out; every request re-checks the token;
//! - [`csrf`]: the synchronizer token every change must carry;
//! - [`layout`]: the page shell, navigation by what the principal may do, error pages;
//! - pages: [`overview`] (metrics and spend), [`approvals`] (the inbox), [`plugins`]
//!   (tools, capabilities, the grant editor), [`audit`] (the log, a record, export),
//!   [`runs`] (a run's steps as a timeline); [`diff`] shows what an edit changes;
//! - [`assets`]: the stylesheet and the script, embedded in the binary.
//!
//! Every read and every change goes through the API's own handlers (and so through
//! the gate): a change lands on the audit record under the person's principal, and a
//! refusal is the API's refusal. Pages carry a strict Content-Security-Policy (no
//! inline script or style) and are never cached.

mod approvals;
mod assets;
mod audit;
mod csrf;
mod diff;
mod layout;
mod overview;
mod plugins;
mod runs;
mod session;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post};

use crate::api::AppState;

pub use self::overview::sample_in_background;

/// What the console keeps: its sessions and the samples its charts draw.
#[derive(Default)]
pub struct Console {
    sessions: session::Sessions,
    samples: overview::Samples,
}

/// The `Content-Security-Policy` of every console answer: nothing but this origin's
/// own files, no inline script or style, no framing, forms only to this origin.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// The console's routes, with their layers.
pub(crate) fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let signed_in = Router::new()
        .route("/console", get(overview::page))
        .route("/console/approvals", get(approvals::page))
        .route("/console/approvals/live", get(approvals::live))
        .route("/console/approvals/{id}/approve", post(approvals::approve))
        .route("/console/approvals/{id}/review", post(approvals::review))
        .route("/console/approvals/{id}/reject", post(approvals::reject))
        .route("/console/plugins", get(plugins::list))
        .route("/console/plugins/{name}", get(plugins::page))
        .route("/console/plugins/{name}/grant", post(plugins::save))
        .route("/console/plugins/{name}/grant/check", post(plugins::check))
        .route(
            "/console/plugins/{name}/grant/review",
            post(plugins::review),
        )
        .route("/console/audit", get(audit::page))
        .route("/console/audit/export", get(audit::export))
        .route("/console/audit/{seq}", get(audit::record))
        .route("/console/runs", get(runs::list))
        .route("/console/runs/{id}", get(runs::page))
        .route("/console/runs/{id}/cancel", post(runs::cancel))
        .route("/console/signout", post(session::sign_out))
        .layer(middleware::from_fn_with_state(state, session::signed_in));
    Router::new()
        .route(
            "/console/signin",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/console/assets/{file}", get(assets::serve))
        .merge(signed_in)
        .layer(middleware::map_response(secure_headers))
}

async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
