//! Plugins: each plugin's tools with their schemas and annotations; per capability,
//! what the manifest requests, what the component imports and what the grant gives,
//! side by side (what `warden plugin inspect` prints); the digest pin; and the grant
//! as TOML, checked as it is typed (`check`), shown as a diff against the grant in
//! force (`review`) and saved through the API's `PUT /v1/plugins/{name}/grant`
//! (`manage-grants` through the gate; the change on the record with the old and new
//! grant).

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::diff;
use super::layout::{self, Ctx, pretty};
use crate::api::AppState;
use warden_config::grant::Grant;
use warden_policy::Action;

/// `GET /console/plugins`.
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<Ctx>>,
) -> Response {
    let Json(body) = crate::plugins::list(State(state), Extension(ctx.caller.clone())).await;
    let plugins = body["plugins"].as_array().cloned().unwrap_or_default();
    let body = html! {
        @if plugins.is_empty() {
            p.empty { "No plugin you may see is served." }
        } @else {
            table {
                caption { "Plugins served" }
                thead { tr {
                    th scope="col" { "Plugin" } th scope="col" { "Version" }
                    th scope="col" { "Tools" } th scope="col" { "Digest" } th scope="col" { "About" }
                } }
                tbody {
                    @for p in &plugins {
                        @let name = p["name"].as_str().unwrap_or("");
                        tr {
                            td { a href={ "/console/plugins/" (name) } { (name) } }
                            td { (p["version"].as_str().unwrap_or("-")) }
                            td { (p["tools"].as_array().map_or(0, Vec::len)) }
                            td { code.hash { (short(p["digest"].as_str().unwrap_or(""))) } }
                            td { (p["description"].as_str().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    };
    layout::page(&ctx, "plugins", "Plugins", body)
}

fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// After a change.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Done {
    done: Option<String>,
}

/// `GET /console/plugins/{name}`.
pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path(name): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let shown = crate::plugins::show(
        State(state.clone()),
        Extension(ctx.caller.clone()),
        Path(name.clone()),
    )
    .await;
    let doc = match shown {
        Ok(Json(doc)) => doc,
        Err(err) => return layout::api_error(&ctx, err),
    };
    let Some(served) = state.registry.get(&name) else {
        return layout::error(Some(&ctx), StatusCode::NOT_FOUND, "No such plugin.");
    };
    let plugin = &served.plugin;
    let capabilities = warden_runtime::inspect::capabilities(plugin, served.meta.manifest.as_ref());
    let grant = plugin
        .grant
        .as_ref()
        .map(Grant::to_toml)
        .unwrap_or_default();
    let manages = ctx.caller.may(Action::ManageGrants);
    let pin = match (
        plugin.grant.as_ref().and_then(|g| g.digest.as_deref()),
        &plugin.notice,
    ) {
        (_, Some(notice)) => html! { span.bad { "Pin mismatch: " (notice) } },
        (Some(_), None) => html! { span.good { "Pinned: the grant holds for this digest only." } },
        (None, None) => {
            html! { "Not pinned: the grant holds for any component installed under this name." }
        }
    };
    let provenance = served.meta.provenance.as_ref();
    let signature = match (&plugin.signer, provenance) {
        (Some(signer), _) => {
            let key = provenance
                .and_then(|p| p.signature.as_ref())
                .map(|s| s.key.as_str())
                .unwrap_or("");
            html! { span.good { "Signed by " (signer) } " (key " code.hash { (key) } ")" }
        }
        (None, Some(p)) => html! { "Unsigned: added from " code { (p.reference) } },
        (None, None) => html! {
            "Unsigned: added from a file or an upload (only plugins added from an OCI registry carry signatures)"
        },
    };
    let body = html! {
        (layout::notice(done.done.as_deref()))
        @if let Some(about) = doc["manifest"]["description"].as_str() {
            p { (about) }
        }
        dl.facts {
            dt { "Digest" } dd { code.hash { (plugin.digest) } }
            dt { "Digest pin" } dd { (pin) }
            dt { "Signature" } dd { (signature) }
            @if !plugin.withheld.is_empty() {
                dt { "Withheld tools" } dd {
                    span.bad { "Changed since the grant accepted them: " }
                    @for (i, w) in plugin.withheld.iter().enumerate() {
                        @if i > 0 { ", " }
                        code { (w.tool.name) }
                    }
                    " (warden grant accept-tools " (plugin.name) ")"
                }
            }
            dt { "Source" } dd { (served.meta.source) }
            @if let Some(version) = doc["manifest"]["version"].as_str() {
                dt { "Version" } dd { (version) }
            }
        }
        h2 { "Capabilities" }
        table.capabilities {
            caption { "Requested by the manifest, imported by the component, granted by the operator" }
            thead { tr {
                th scope="col" { "Capability" } th scope="col" { "Requested" }
                th scope="col" { "Imported" } th scope="col" { "Granted" }
            } }
            tbody {
                @for row in &capabilities {
                    tr {
                        th scope="row" { (row.kind) }
                        td { @match &row.requested { Some(reason) => { "yes: " (reason) }, None => "no" } }
                        td { @if row.imported { "yes" } @else { "no" } }
                        td { (row.granted) }
                    }
                }
            }
        }
        details {
            summary { "Imports (" (plugin.imports.len()) ")" }
            ul.imports { @for import in &plugin.imports { li { code { (import) } } } }
        }
        h2 { "Tools" }
        @for tool in doc["tools"].as_array().into_iter().flatten() {
            (tool_section(tool))
        }
        h2 { "Grant" }
        @if manages {
            form.grant method="post" action={ "/console/plugins/" (name) "/grant/review" }
                data-check={ "/console/plugins/" (name) "/grant/check" } {
                (ctx.field())
                label for="grant" { "Grant of " (name) " (TOML)" }
                textarea.code #grant name="grant" rows="16" spellcheck="false"
                    aria-describedby="grant-status" { (grant) }
                p #grant-status .help role="status" aria-live="polite" { "Checked as you type." }
                div #grant-diff {}
                button.primary type="submit" { "Review the changes" }
            }
        } @else {
            pre.code { (grant) }
            p.help { "Changing a grant needs the manage-grants action." }
        }
    };
    layout::page(&ctx, "plugins", &format!("Plugin {name}"), body)
}

fn tool_section(tool: &Value) -> Markup {
    let a = &tool["annotations"];
    let hints = [
        ("read-only", a["read_only"] == true),
        ("destructive", a["destructive"] == true),
        ("idempotent", a["idempotent"] == true),
        ("open world", a["open_world"] == true),
    ];
    html! {
        section.tool aria-label=(tool["id"].as_str().unwrap_or("")) {
            h3 { code { (tool["id"].as_str().unwrap_or("")) } }
            p { code { (tool["signature"].as_str().unwrap_or("")) } }
            ul.badges aria-label="Annotations" {
                @for (label, on) in hints {
                    li class=(if on { "badge on" } else { "badge" }) {
                        @if on { (label) } @else { "not " (label) }
                    }
                }
            }
            @if let Some(description) = tool["description"].as_str().filter(|d| !d.is_empty()) {
                p { (description) }
            }
            details {
                summary { "Input and output schemas" }
                h4 { "Input" }
                pre.json { (pretty(&tool["input_schema"])) }
                h4 { "Output" }
                pre.json { (pretty(&tool["output_schema"])) }
            }
        }
    }
}

/// The grant in force of `name`, as the registry serves it (TOML), and the parsed
/// `text`, normalized the same way.
fn compare(state: &AppState, name: &str, text: &str) -> Result<(String, String), String> {
    let current = state
        .registry
        .get(name)
        .and_then(|s| s.plugin.grant.as_ref().map(Grant::to_toml))
        .unwrap_or_default();
    let grant = Grant::parse(text, name).map_err(warden_runtime::error::chain)?;
    grant.check_paths().map_err(warden_runtime::error::chain)?;
    Ok((current, grant.to_toml()))
}

/// `POST /console/plugins/{name}/grant/check`: the grant as the body; whether it
/// parses and checks, the error if not, and the diff against the grant in force.
pub(crate) async fn check(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(err) = state
        .require(&ctx.caller, Action::ManageGrants, Some(&name))
        .await
    {
        return err.into_response();
    }
    let text = String::from_utf8_lossy(&body);
    Json(match compare(&state, &name, &text) {
        Ok((current, new)) => json!({
            "ok": true,
            "changed": current != new,
            "diff": diff::lines(&current, &new, "The grant against the one in force").into_string(),
        }),
        Err(error) => json!({ "ok": false, "error": error }),
    })
    .into_response()
}

/// `POST /console/plugins/{name}/grant/review`: `grant`; the diff, and the form that
/// saves it.
pub(crate) async fn review(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(err) = state
        .require(&ctx.caller, Action::ManageGrants, Some(&name))
        .await
    {
        return layout::api_error(&ctx, err);
    }
    let text = layout::form(&body).remove("grant").unwrap_or_default();
    let (current, new) = match compare(&state, &name, &text) {
        Ok(pair) => pair,
        Err(error) => {
            let body = html! {
                p.problem role="alert" { "The grant is not valid: " (error) }
                p { a href={ "/console/plugins/" (name) } { "Back to " (name) } }
            };
            let mut response = layout::page(&ctx, "plugins", "Review the grant", body);
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            return response;
        }
    };
    let body = html! {
        p { "What saving changes in the grant of " strong { (name) } " (every limit written out):" }
        (diff::lines(&current, &new, "The grant against the one in force"))
        form method="post" action={ "/console/plugins/" (name) "/grant" } {
            (ctx.field())
            input type="hidden" name="grant" value=(text);
            button.primary type="submit" { "Save the grant" }
        }
        p { a href={ "/console/plugins/" (name) } { "Back to " (name) " without saving" } }
    };
    layout::page(&ctx, "plugins", "Review the grant", body)
}

/// `POST /console/plugins/{name}/grant`: `grant`, saved through the API.
pub(crate) async fn save(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let text = layout::form(&body).remove("grant").unwrap_or_default();
    let request = Request::builder()
        .header(header::CONTENT_TYPE, "application/toml")
        .body(Body::from(text))
        .unwrap_or_default();
    let saved = crate::plugins::set_grant(
        State(state),
        Extension(ctx.caller.clone()),
        Path(name.clone()),
        request,
    )
    .await;
    match saved {
        Ok(_) => Redirect::to(&format!(
            "/console/plugins/{name}?done=The+grant+is+saved+and+in+force."
        ))
        .into_response(),
        Err(err) => layout::api_error(&ctx, err),
    }
}
