//! The approvals inbox: the held tool calls and agents' questions, newest first, with
//! the run, the agent, who started it, the tool, its arguments and the policies that
//! held it; approve, edit and approve (after a look at the diff), reject with a
//! reason, answer a question. The decisions are the API's (`POST
//! /v1/approvals/{id}/approve|reject`): `decide-approval` through the gate, on the
//! record under the person's principal. The page's script asks `live` every few
//! seconds and brings in holds that arrive.
//!
//! A person sees the entries they may decide on, and, with `read-audit` (the log
//! holds them anyway), the others too, without the buttons.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::diff;
use super::layout::{self, Ctx, pretty, time};
use crate::api::AppState;
use crate::auth::Caller;
use crate::runs::{ApproveBody, RejectBody, resource_of};
use warden_policy::{Action, Decision};
use warden_runs::approval_context;
use warden_runs::store::Approval;

/// What the caller may do with one entry.
struct Entry {
    approval: Approval,
    approve: bool,
    reject: bool,
}

fn may(caller: &Caller, approval: &Approval, decision: &'static str) -> bool {
    let context = approval_context(approval, caller.who(), decision, None);
    !matches!(
        caller.decide(
            Action::DecideApproval,
            &resource_of(approval),
            &context.to_json()
        ),
        Decision::Deny { .. }
    )
}

/// The pending entries `caller` sees, newest first.
fn inbox(state: &AppState, caller: &Caller) -> Result<Vec<Entry>, String> {
    let runs = state
        .runs
        .as_ref()
        .ok_or("this server keeps no agent runs")?;
    let queue = runs
        .runner()
        .approvals(false)
        .map_err(warden_runtime::error::chain)?;
    let auditor = caller.may(Action::ReadAudit);
    let mut entries: Vec<Entry> = queue
        .into_iter()
        .map(|approval| Entry {
            approve: may(caller, &approval, "approve"),
            reject: may(caller, &approval, "reject"),
            approval,
        })
        .filter(|e| e.approve || e.reject || auditor)
        .collect();
    entries.sort_by_key(|e| std::cmp::Reverse(e.approval.created_at));
    Ok(entries)
}

/// After a decision, where the inbox says what was done.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Done {
    done: Option<String>,
    run: Option<String>,
}

/// `GET /console/approvals`.
pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Query(done): Query<Done>,
) -> Response {
    let entries = match inbox(&state, &ctx.caller) {
        Ok(entries) => entries,
        Err(err) => return layout::error(Some(&ctx), StatusCode::INTERNAL_SERVER_ERROR, &err),
    };
    let ids: Vec<&str> = entries.iter().map(|e| e.approval.id.as_str()).collect();
    let body = html! {
        @if let Some(what) = &done.done {
            p.notice role="status" {
                (what)
                @if let Some(run) = done.run.as_ref().filter(|r| !r.is_empty()) {
                    " " a href={ "/console/runs/" (run) } { "See run " (run) }
                }
            }
        }
        p #inbox-live .help role="status" aria-live="polite" {}
        section #inbox data-ids=(ids.join(" ")) aria-label="Held calls" {
            @if entries.is_empty() {
                p.empty { "Nothing is waiting for a decision." }
            }
            @for entry in &entries {
                (item(&ctx, entry))
            }
        }
    };
    layout::page(&ctx, "approvals", "Approvals", body)
}

fn item(ctx: &Ctx, entry: &Entry) -> Markup {
    let a = &entry.approval;
    let heading = match (&a.tool, &a.question) {
        (Some(tool), _) => format!("{tool} held for approval"),
        (None, Some(_)) => format!("{} asks a question", a.agent),
        (None, None) => format!("{} waits for a decision", a.agent),
    };
    let args = a.arguments.as_ref().map(pretty).unwrap_or_default();
    let id = &a.id;
    html! {
        article.hold id=(id) aria-labelledby={ "h-" (id) } {
            h2 id={ "h-" (id) } { (heading) }
            dl.facts {
                dt { "Run" } dd {
                    @if a.run.is_empty() {
                        "none: a direct call, its caller waits for the decision"
                    } @else {
                        a href={ "/console/runs/" (a.run) } { (a.run) } " (step " (a.step) ")"
                    }
                }
                dt { "Agent" } dd { (a.agent) }
                dt { "Started by" } dd { (a.principal) }
                dt { "Held at" } dd { (time(a.created_at)) }
                dt { "Held by policies" } dd {
                    @if a.policies.is_empty() { "none named" }
                    @for (i, p) in a.policies.iter().enumerate() {
                        @if i > 0 { ", " } code { (p) }
                    }
                }
            }
            @if let Some(question) = &a.question {
                h3 { "Question" }
                p.question { (question) }
            }
            @if a.arguments.is_some() {
                h3 { "Arguments" }
                pre.json { (args) }
            }
            @if entry.approve {
                div.actions {
                    @if a.question.is_some() {
                        form method="post" action={ "/console/approvals/" (id) "/approve" } {
                            (ctx.field())
                            label for={ "answer-" (id) } { "Answer (JSON, or plain text)" }
                            textarea id={ "answer-" (id) } name="answer" rows="3" required {}
                            button type="submit" { "Answer" }
                        }
                    } @else {
                        form.inline method="post" action={ "/console/approvals/" (id) "/approve" } {
                            (ctx.field())
                            button.primary type="submit" { "Approve" }
                        }
                        details.edit {
                            summary { "Edit and approve" }
                            form method="post" action={ "/console/approvals/" (id) "/review" } {
                                (ctx.field())
                                label for={ "args-" (id) } { "Arguments to approve with (JSON)" }
                                textarea.code id={ "args-" (id) } name="args" rows="6" spellcheck="false" { (args) }
                                button type="submit" { "Review the edit" }
                            }
                        }
                    }
                }
            }
            @if entry.reject {
                form.reject method="post" action={ "/console/approvals/" (id) "/reject" } {
                    (ctx.field())
                    label for={ "reason-" (id) } { "Reason for rejecting" }
                    input id={ "reason-" (id) } type="text" name="reason" required;
                    button.danger type="submit" { "Reject" }
                }
            }
            @if !entry.approve && !entry.reject {
                p.help { "You may see this hold but not decide on it." }
            }
        }
    }
}

/// `GET /console/approvals/live`: the ids in the inbox now, for the page's script.
pub(crate) async fn live(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<Ctx>>,
) -> Response {
    match inbox(&state, &ctx.caller) {
        Ok(entries) => Json(json!({
            "ids": entries.iter().map(|e| e.approval.id.as_str()).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err).into_response(),
    }
}

fn parse_json(field: &str, text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("The {field} are not JSON: {e}."))
}

/// `POST /console/approvals/{id}/approve`: `args` (edited arguments, JSON) or `answer`.
pub(crate) async fn approve(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = layout::form(&body);
    let edit_args = match form.get("args").map(|a| parse_json("arguments", a)) {
        Some(Err(err)) => return layout::error(Some(&ctx), StatusCode::BAD_REQUEST, &err),
        Some(Ok(args)) => Some(args),
        None => None,
    };
    let answer = form.get("answer").map(|text| {
        serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.trim().to_string()))
    });
    let body = ApproveBody { edit_args, answer };
    let answered = crate::runs::approve(
        State(state),
        Extension(ctx.caller.clone()),
        Path(id),
        Some(Json(body)),
    )
    .await;
    decided(&ctx, answered, "Approved.")
}

fn decided(
    ctx: &Ctx,
    answered: Result<Json<Value>, crate::error::ApiError>,
    what: &str,
) -> Response {
    match answered {
        Ok(Json(body)) => {
            let run = body["approval"]["run"].as_str().unwrap_or_default();
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("done", what)
                .append_pair("run", run)
                .finish();
            Redirect::to(&format!("/console/approvals?{query}")).into_response()
        }
        Err(err) => layout::api_error(ctx, err),
    }
}

/// `POST /console/approvals/{id}/reject`: `reason`.
pub(crate) async fn reject(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let reason = layout::form(&body)
        .remove("reason")
        .map(|r| r.trim().to_string())
        .unwrap_or_default();
    if reason.is_empty() {
        return layout::error(
            Some(&ctx),
            StatusCode::BAD_REQUEST,
            "Say why you reject it: the agent receives the reason.",
        );
    }
    let answered = crate::runs::reject(
        State(state),
        Extension(ctx.caller.clone()),
        Path(id),
        Ok(Json(RejectBody { reason })),
    )
    .await;
    decided(&ctx, answered, "Rejected.")
}

/// `POST /console/approvals/{id}/review`: `args`; the edit as a diff against the
/// agent's arguments, and the form that approves with it.
pub(crate) async fn review(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = layout::form(&body);
    let edited = match parse_json("arguments", form.get("args").map_or("", String::as_str)) {
        Ok(edited) => edited,
        Err(err) => return layout::error(Some(&ctx), StatusCode::BAD_REQUEST, &err),
    };
    let Some(entry) = inbox(&state, &ctx.caller)
        .unwrap_or_default()
        .into_iter()
        .find(|e| e.approval.id == id && e.approve)
    else {
        return layout::error(
            Some(&ctx),
            StatusCode::NOT_FOUND,
            &format!("No held call {id} waits for your approval."),
        );
    };
    let a = &entry.approval;
    let held = a.arguments.as_ref().map(pretty).unwrap_or_default();
    let body = html! {
        p {
            "The call " code { (a.tool.as_deref().unwrap_or("-")) }
            @if !a.run.is_empty() {
                " of run " a href={ "/console/runs/" (a.run) } { (a.run) }
            }
            ", with the arguments as you edited them. The access policy decides the edited call again."
        }
        h2 { "What the edit changes" }
        (diff::lines(&format!("{held}\n"), &format!("{}\n", pretty(&edited)), "Edited arguments against the agent's"))
        form method="post" action={ "/console/approvals/" (id) "/approve" } {
            (ctx.field())
            input type="hidden" name="args" value=(edited.to_string());
            button.primary type="submit" { "Approve with these arguments" }
        }
        p { a href="/console/approvals" { "Back to the inbox" } }
    };
    layout::page(&ctx, "approvals", "Review the edit", body)
}
