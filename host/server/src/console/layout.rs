//! The page shell: the document head (the stylesheet and the script, both files of
//! this origin), the navigation — only the areas the principal's roles open — who is
//! signed in and the sign-out form; error pages; small helpers the pages share.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::csrf;
use crate::auth::Caller;
use crate::error::ApiError;
use warden_policy::Action;

/// Who a page is for: the signed-in caller and the session's CSRF token.
pub(crate) struct Ctx {
    /// The principal and roles, as the API sees them.
    pub(crate) caller: Arc<Caller>,
    /// The token every form of the page carries.
    pub(crate) csrf: String,
}

impl Ctx {
    /// The hidden CSRF field of a form.
    pub(crate) fn field(&self) -> Markup {
        csrf::field(&self.csrf)
    }
}

/// The areas of the console, and who sees each in the navigation.
const AREAS: [(&str, &str, Option<Action>); 5] = [
    ("overview", "Overview", Some(Action::ReadMetrics)),
    ("approvals", "Approvals", None),
    ("runs", "Runs", None),
    ("plugins", "Plugins", None),
    ("audit", "Audit log", Some(Action::ReadAudit)),
];

fn href(area: &str) -> String {
    if area == "overview" {
        "/console".into()
    } else {
        format!("/console/{area}")
    }
}

fn head(title: &str, csrf: Option<&str>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            @if let Some(csrf) = csrf {
                meta name="csrf-token" content=(csrf);
            }
            title { (title) " · Warden console" }
            link rel="stylesheet" href=(super::assets::CSS_PATH.as_str());
            script src=(super::assets::JS_PATH.as_str()) defer {}
        }
    }
}

/// A page of area `area` for `ctx`.
pub(crate) fn page(ctx: &Ctx, area: &str, title: &str, body: Markup) -> Response {
    let caller = &ctx.caller;
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, Some(&ctx.csrf)))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/console" { "Warden" }
                    nav aria-label="Console" {
                        ul {
                            @for (name, label, needs) in AREAS {
                                @if needs.is_none_or(|action| caller.may(action)) {
                                    li {
                                        @if name == area {
                                            a href=(href(name)) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href(name)) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    div.who {
                        span { "Signed in as " strong { (caller.principal) } }
                        @if !caller.roles.is_empty() {
                            span.roles { " (" (caller.roles.join(", ")) ")" }
                        }
                        form.inline method="post" action="/console/signout" {
                            (ctx.field())
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

/// A page without navigation (signing in).
pub(crate) fn bare(title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, None))
            body {
                main #main .narrow {
                    h1 { "Warden console" }
                    h2 { (title) }
                    (body)
                }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

/// An error page with `status`.
pub(crate) fn error(ctx: Option<&Ctx>, status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = html! {
        p.problem role="alert" { (message) }
        p { a href="/console" { "Back to the console" } }
    };
    let mut response = match ctx {
        Some(ctx) => page(ctx, "", title, body),
        None => bare(title, body),
    };
    *response.status_mut() = status;
    response
}

/// The API's error answer as a page: its status, its message, and the policies that
/// refused, if it names them.
pub(crate) fn api_error(ctx: &Ctx, err: ApiError) -> Response {
    let message = err.body["message"].as_str().unwrap_or("error").to_string();
    let policies: Vec<String> = err.body["policies"]
        .as_array()
        .map(|p| {
            p.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let message = if policies.is_empty() {
        message
    } else {
        format!("{message} (policies: {})", policies.join(", "))
    };
    error(Some(ctx), err.status, &message)
}

/// Milliseconds since the Unix epoch as a record time.
pub(crate) fn time(ms: i64) -> String {
    warden_audit::time::format_millis(ms)
}

/// `value` as indented JSON.
pub(crate) fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// A message line from a query's `done`, after a change (Post/Redirect/Get).
pub(crate) fn notice(text: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = text {
            p.notice role="status" { (text) }
        }
    }
}

/// The fields of a form body (`application/x-www-form-urlencoded`).
pub(crate) fn form(body: &[u8]) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}
