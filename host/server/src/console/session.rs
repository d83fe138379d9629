//! Signing in and out, and the session every other console page needs.
//!
//! A person signs in with a token the API accepts (a static `[[tokens]]` one, or an
//! access token of a configured OAuth issuer). The server keeps the session — the
//! token, a CSRF token, when it was made and last used — under a random id, and the
//! browser keeps only that id, in a cookie that scripts cannot read (`HttpOnly`), that
//! is sent only over a secure connection (`Secure`; browsers count `http://127.0.0.1`
//! and `http://localhost` as secure) and never with a request another site starts
//! (`SameSite=Strict`). Every request checks the token again, so a token removed from
//! `warden.toml` or an access token past its expiry ends the session. Sign-ins and
//! sign-outs are on the audit record; so are refused sign-ins and refused forms (a few
//! a second, as the API's unauthenticated requests).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use sha2::{Digest as _, Sha256};

use super::csrf;
use super::layout::{self, Ctx};
use crate::api::AppState;
use crate::auth::Caller;
use warden_audit::{Event, Outcome};

/// The cookie that holds the session id.
pub(crate) const COOKIE: &str = "warden_session";

/// The cookie that holds the sign-in form's token (before there is a session).
const SIGNIN_COOKIE: &str = "warden_signin";

/// A session unused this long ends.
pub(crate) const IDLE: Duration = Duration::from_secs(60 * 60);

/// A session ends this long after sign-in, used or not.
pub(crate) const LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);

/// The most sessions kept; past it the least recently used ends.
const MAX_SESSIONS: usize = 10_000;

/// The largest form body the console reads.
const MAX_FORM: usize = 2 << 20;

struct Entry {
    token: String,
    csrf: String,
    created: Instant,
    seen: Instant,
}

/// The sessions of a server, by the SHA-256 of their id.
#[derive(Default)]
pub(crate) struct Sessions {
    by_hash: Mutex<HashMap<String, Entry>>,
}

fn key(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

impl Sessions {
    /// A new session for `token`: its id (for the cookie) and its CSRF token.
    fn create(&self, token: &str) -> (String, String) {
        let (id, csrf) = (csrf::token(), csrf::token());
        let now = Instant::now();
        let mut map = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, e| live(e, now));
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.seen)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            key(&id),
            Entry {
                token: token.to_string(),
                csrf: csrf.clone(),
                created: now,
                seen: now,
            },
        );
        (id, csrf)
    }

    /// The token and CSRF token of session `id`, if it is live (and now used).
    fn touch(&self, id: &str) -> Option<(String, String)> {
        let now = Instant::now();
        let mut map = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        let k = key(id);
        match map.get_mut(&k) {
            Some(entry) if live(entry, now) => {
                entry.seen = now;
                Some((entry.token.clone(), entry.csrf.clone()))
            }
            Some(_) => {
                map.remove(&k);
                None
            }
            None => None,
        }
    }

    fn end(&self, id: &str) {
        self.by_hash
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key(id));
    }
}

fn live(entry: &Entry, now: Instant) -> bool {
    now.duration_since(entry.seen) < IDLE && now.duration_since(entry.created) < LIFETIME
}

/// The value of cookie `name` of a request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(name: &str, value: &str, path: &str, max_age: Duration) -> HeaderValue {
    let text = format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
        max_age.as_secs()
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The layer of every page but sign-in: the session's caller (and, for a change, its
/// CSRF token checked), or off to the sign-in page.
pub(crate) async fn signed_in(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let id = cookie(request.headers(), COOKIE).map(str::to_string);
    let session = id
        .as_deref()
        .and_then(|id| state.console.sessions.touch(id));
    let Some((token, csrf_token)) = session else {
        return signed_out(request.method());
    };
    let caller = match state.access().authenticate_bearer(&token).await {
        Ok(caller) => Arc::new(caller.in_console()),
        Err(_) => {
            // The token was removed, or has expired: so has the session.
            if let Some(id) = &id {
                state.console.sessions.end(id);
            }
            return signed_out(request.method());
        }
    };
    let ctx = Arc::new(Ctx {
        caller: caller.clone(),
        csrf: csrf_token.clone(),
    });
    let (parts, body) = request.into_parts();
    let body = if matches!(parts.method, Method::GET | Method::HEAD) {
        body
    } else {
        let bytes = match axum::body::to_bytes(body, MAX_FORM).await {
            Ok(bytes) => bytes,
            Err(_) => {
                return layout::error(
                    Some(&ctx),
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The form is larger than the console accepts (2 MiB).",
                );
            }
        };
        let sent = csrf::sent(&parts.headers, &bytes);
        let why = if !csrf::same_origin(&parts.headers) {
            Some("the request came from another origin")
        } else if !csrf::matches(sent.as_deref(), &csrf_token) {
            Some("the form's CSRF token is missing or wrong")
        } else {
            None
        };
        if let Some(why) = why {
            refused(
                &state,
                &caller,
                why,
                parts.method.as_str(),
                parts.uri.path(),
            )
            .await;
            return layout::error(
                Some(&ctx),
                StatusCode::FORBIDDEN,
                &format!("Refused: {why}. Reload the page and send the form again."),
            );
        }
        Body::from(bytes)
    };
    let mut request = Request::from_parts(parts, body);
    request.extensions_mut().insert(caller);
    request.extensions_mut().insert(ctx);
    next.run(request).await
}

/// A refused form, on the record (a few a second).
async fn refused(state: &AppState, caller: &Caller, why: &str, method: &str, path: &str) {
    if let Some(suppressed) = state.refusals.admit() {
        let (path, _) = crate::refusals::clip(path);
        let mut event = Event::new("access.denied", caller.principal.as_str())
            .outcome(Outcome::Denied)
            .field("reason", format!("console: {why}"))
            .field("via", "console")
            .field("token", caller.token.as_str())
            .field("method", method)
            .field("path", path);
        if suppressed > 0 {
            event = event.field("suppressed", suppressed);
        }
        state.record(event).await;
    }
}

fn signed_out(method: &Method) -> Response {
    if method == Method::GET || method == Method::HEAD {
        Redirect::to("/console/signin").into_response()
    } else {
        layout::error(
            None,
            StatusCode::UNAUTHORIZED,
            "You are not signed in (or your session ended). Sign in and send the form again.",
        )
    }
}

/// `GET /console/signin`.
pub(crate) async fn sign_in_page() -> Response {
    sign_in_form(StatusCode::OK, None)
}

fn sign_in_form(status: StatusCode, problem: Option<&str>) -> Response {
    let nonce = csrf::token();
    let body = html! {
        @if let Some(problem) = problem {
            p.problem role="alert" { (problem) }
        }
        form.signin method="post" action="/console/signin" {
            (csrf::field(&nonce))
            label for="token" { "Token" }
            input #token type="password" name="token" autocomplete="off" required
                aria-describedby="token-help";
            p #token-help .help {
                "An API token of this server (" code { "warden token create NAME --role ROLE" }
                ") or an access token of an OAuth issuer it trusts. The browser keeps only a session cookie, never the token."
            }
            button type="submit" { "Sign in" }
        }
    };
    let mut response = layout::bare("Sign in", body);
    *response.status_mut() = status;
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SIGNIN_COOKIE, &nonce, "/console/signin", IDLE),
    );
    response
}

/// `POST /console/signin`: `token` and the form's own `csrf` (the sign-in cookie).
pub(crate) async fn sign_in(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let field = |name: &str| {
        url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
    };
    let nonce = cookie(&headers, SIGNIN_COOKIE);
    if !csrf::same_origin(&headers)
        || nonce.is_none_or(|nonce| !csrf::matches(field(csrf::FIELD).as_deref(), nonce))
    {
        return sign_in_form(
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired or came from elsewhere: sign in again."),
        );
    }
    let token = field("token").unwrap_or_default();
    let caller = match state.access().authenticate_bearer(&token).await {
        Ok(caller) if !token.is_empty() => caller,
        _ => {
            if let Some(suppressed) = state.refusals.admit() {
                let mut event = Event::new("access.denied", "anonymous")
                    .outcome(Outcome::Denied)
                    .field("reason", "console sign-in: unknown token")
                    .field("via", "console")
                    .field("method", "POST")
                    .field("path", "/console/signin");
                if suppressed > 0 {
                    event = event.field("suppressed", suppressed);
                }
                state.record(event).await;
            }
            return sign_in_form(
                StatusCode::UNAUTHORIZED,
                Some("This server does not accept that token."),
            );
        }
    };
    let (id, _) = state.console.sessions.create(&token);
    state
        .record(
            Event::new("console.signin", caller.principal.as_str())
                .outcome(Outcome::Ok)
                .field("token", caller.token.as_str())
                .field("roles", caller.roles.clone()),
        )
        .await;
    let home = if caller.may(warden_policy::Action::ReadMetrics) {
        "/console"
    } else {
        "/console/approvals"
    };
    let mut response = Redirect::to(home).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(COOKIE, &id, "/console", LIFETIME),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(SIGNIN_COOKIE, "", "/console/signin", Duration::ZERO),
    );
    response
}

/// `POST /console/signout`.
pub(crate) async fn sign_out(
    State(state): State<Arc<AppState>>,
    axum::Extension(ctx): axum::Extension<Arc<Ctx>>,
    headers: HeaderMap,
) -> Response {
    if let Some(id) = cookie(&headers, COOKIE) {
        state.console.sessions.end(id);
    }
    state
        .record(
            Event::new("console.signout", ctx.caller.principal.as_str())
                .outcome(Outcome::Ok)
                .field("token", ctx.caller.token.as_str()),
        )
        .await;
    let mut response = Redirect::to("/console/signin").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(COOKIE, "", "/console", Duration::ZERO),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_holds_its_token_until_it_ends() {
        let sessions = Sessions::default();
        let (id, csrf) = sessions.create("wdn_t");
        assert_eq!(
            sessions.touch(&id),
            Some(("wdn_t".to_string(), csrf.clone()))
        );
        assert_eq!(sessions.touch("not-an-id"), None);
        sessions.end(&id);
        assert_eq!(sessions.touch(&id), None);
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; warden_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
        let set = set_cookie(COOKIE, "x", "/console", LIFETIME);
        assert_eq!(
            set.to_str().unwrap(),
            "warden_session=x; Path=/console; Max-Age=28800; HttpOnly; Secure; SameSite=Strict"
        );
    }
}
