//! The audit log: records filtered by plugin, tool, kind, principal, outcome and time,
//! newest first; one record with its hash and the hash it links to; the chain's
//! verification; the filtered records as JSON Lines. Read through the API's own
//! handlers (`GET /v1/audit`, `GET /v1/audit/verify`), so `read-audit` is decided
//! (and a refusal recorded) the same way.

use std::sync::Arc;

use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{self, Ctx, pretty};
use crate::api::{AUDIT_PAGE_MAX, AppState, AuditQuery, audit_query, audit_verify};

/// The filter form, as the browser sends it (empty fields are no filter).
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct AuditForm {
    #[serde(default)]
    plugin: String,
    #[serde(default)]
    tool: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    principal: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    limit: Option<usize>,
}

fn some(text: &str) -> Option<String> {
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

impl AuditForm {
    fn query(&self) -> AuditQuery {
        AuditQuery {
            plugin: some(&self.plugin),
            tool: some(&self.tool),
            kind: some(&self.kind),
            principal: some(&self.principal),
            outcome: some(&self.outcome),
            since: some(&self.since),
            until: some(&self.until),
            ..AuditQuery::default()
        }
    }

    fn query_string(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("plugin", &self.plugin),
            ("tool", &self.tool),
            ("kind", &self.kind),
            ("principal", &self.principal),
            ("outcome", &self.outcome),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !v.trim().is_empty() {
                q.append_pair(k, v.trim());
            }
        }
        q.finish()
    }
}

/// Record kinds offered in the filter (any other can be typed).
const KINDS: [&str; 14] = [
    "tool.call",
    "access.denied",
    "capability.use",
    "capability.denied",
    "limit.hit",
    "grant.set",
    "plugin.load",
    "plugin.remove",
    "model.call",
    "run.start",
    "run.step",
    "approval.request",
    "approval.decide",
    "console.signin",
];

async fn records(
    state: &Arc<AppState>,
    ctx: &Ctx,
    query: AuditQuery,
) -> Result<Vec<Value>, Response> {
    match audit_query(
        State(state.clone()),
        Extension(ctx.caller.clone()),
        Ok(Query(query)),
    )
    .await
    {
        Ok(axum::Json(body)) => Ok(body["records"].as_array().cloned().unwrap_or_default()),
        Err(err) => Err(layout::api_error(ctx, err)),
    }
}

fn text_field(id: &str, label: &str, value: &str, hint: Option<&str>) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            @if let Some(hint) = hint {
                input id=(id) type="text" name=(id) value=(value) aria-describedby={ (id) "-hint" };
                span.hint id={ (id) "-hint" } { (hint) }
            } @else {
                input id=(id) type="text" name=(id) value=(value);
            }
        }
    }
}

/// `GET /console/audit`.
pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Query(form): Query<AuditForm>,
) -> Response {
    let limit = form.limit.unwrap_or(100).clamp(1, AUDIT_PAGE_MAX);
    let query = AuditQuery {
        limit: Some(limit),
        newest: true,
        ..form.query()
    };
    let found = match records(&state, &ctx, query).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let verified = audit_verify(State(state.clone()), Extension(ctx.caller.clone()))
        .await
        .map(|axum::Json(v)| v)
        .ok();
    let export = format!("/console/audit/export?{}", form.query_string());
    let body = html! {
        @if let Some(v) = &verified {
            @if v["ok"] == true {
                p.verified role="status" {
                    "Chain verified: " (v["count"]) " records, each linked to the one before"
                    @if let Some(seq) = v["head"]["seq"].as_u64() {
                        "; head " a href={ "/console/audit/" (seq) } { "#" (seq) }
                        " " code.hash { (v["head"]["hash"].as_str().unwrap_or("")) }
                    }
                    "."
                }
            } @else {
                p.problem role="alert" {
                    "Chain verification failed: " (v["problem"]["message"].as_str().unwrap_or("unknown problem"))
                }
            }
        }
        form.filters method="get" action="/console/audit" aria-label="Filter the records" {
            (text_field("plugin", "Plugin", &form.plugin, None))
            (text_field("tool", "Tool", &form.tool, None))
            div.field {
                label for="kind" { "Kind" }
                input #kind type="text" name="kind" value=(form.kind) list="kinds";
                datalist #kinds { @for k in KINDS { option value=(k) {} } }
            }
            (text_field("principal", "Principal", &form.principal, None))
            div.field {
                label for="outcome" { "Outcome" }
                select #outcome name="outcome" {
                    @for (value, label) in [("", "any"), ("ok", "ok"), ("error", "error"), ("denied", "denied")] {
                        option value=(value) selected[form.outcome == value] { (label) }
                    }
                }
            }
            (text_field("since", "Since", &form.since, Some("e.g. 1h, 2d, or 2026-12-04T10:00:00Z")))
            (text_field("until", "Until", &form.until, None))
            div.field {
                label for="limit" { "At most" }
                input #limit type="number" name="limit" min="1" max=(AUDIT_PAGE_MAX) value=(limit);
            }
            div.field.buttons {
                button type="submit" { "Filter" }
                a href="/console/audit" { "Clear" }
            }
        }
        p { a href=(export) download="warden-audit.jsonl" { "Export the matching records (JSON Lines)" } }
        table.records {
            caption { (found.len()) " records, newest first" }
            thead { tr {
                th scope="col" { "#" } th scope="col" { "Time" } th scope="col" { "Kind" }
                th scope="col" { "Principal" } th scope="col" { "Plugin/tool" } th scope="col" { "Outcome" }
            } }
            tbody {
                @for r in &found {
                    @let seq = r["seq"].as_u64().unwrap_or(0);
                    tr {
                        td { a href={ "/console/audit/" (seq) } aria-label={ "Record " (seq) } { (seq) } }
                        td { (r["time"].as_str().unwrap_or("")) }
                        td { code { (r["kind"].as_str().unwrap_or("")) } }
                        td { (r["principal"].as_str().unwrap_or("")) }
                        td { (tool_of(r)) }
                        td { (outcome(r)) }
                    }
                }
            }
        }
    };
    layout::page(&ctx, "audit", "Audit log", body)
}

fn tool_of(r: &Value) -> String {
    match (r["plugin"].as_str(), r["tool"].as_str()) {
        (Some(p), Some(t)) => format!("{p}/{t}"),
        (Some(p), None) => p.to_string(),
        _ => String::new(),
    }
}

fn outcome(r: &Value) -> Markup {
    let o = r["outcome"].as_str().unwrap_or("");
    html! { span class={ "outcome " (o) } { (o) } }
}

/// `GET /console/audit/{seq}`.
pub(crate) async fn record(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path(seq): Path<u64>,
) -> Response {
    let query = AuditQuery {
        after: Some(seq.saturating_sub(1)),
        limit: Some(1),
        ..AuditQuery::default()
    };
    let found = match records(&state, &ctx, query).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let Some(r) = found.into_iter().find(|r| r["seq"].as_u64() == Some(seq)) else {
        return layout::error(
            Some(&ctx),
            StatusCode::NOT_FOUND,
            &format!("No record #{seq}."),
        );
    };
    let body = html! {
        dl.facts {
            dt { "Time" } dd { (r["time"].as_str().unwrap_or("")) }
            dt { "Kind" } dd { code { (r["kind"].as_str().unwrap_or("")) } }
            dt { "Principal" } dd { (r["principal"].as_str().unwrap_or("")) }
            dt { "Plugin/tool" } dd { (tool_of(&r)) }
            dt { "Outcome" } dd { (outcome(&r)) }
            dt { "Hash" } dd { code.hash { (r["hash"].as_str().unwrap_or("")) } }
            dt { "Links to" } dd {
                @if seq > 1 {
                    a href={ "/console/audit/" (seq - 1) } { "#" (seq - 1) }
                    " "
                }
                code.hash { (r["prev"].as_str().unwrap_or("")) }
            }
        }
        h2 { "Fields" }
        pre.json { (pretty(&r["fields"])) }
        nav.pager aria-label="Records" {
            @if seq > 1 { a href={ "/console/audit/" (seq - 1) } { "Previous record" } " " }
            a href={ "/console/audit/" (seq + 1) } { "Next record" }
            " " a href="/console/audit" { "All records" }
        }
    };
    layout::page(&ctx, "audit", &format!("Record #{seq}"), body)
}

/// `GET /console/audit/export`: every record the filter matches, oldest first, one
/// JSON object a line (what `warden audit export` writes).
pub(crate) async fn export(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Query(form): Query<AuditForm>,
) -> Response {
    let mut out = String::new();
    let mut after = None;
    loop {
        let query = AuditQuery {
            after,
            limit: Some(AUDIT_PAGE_MAX),
            ..form.query()
        };
        let page = match records(&state, &ctx, query).await {
            Ok(page) => page,
            Err(page) => return page,
        };
        for r in &page {
            out.push_str(&r.to_string());
            out.push('\n');
        }
        match page.last().and_then(|r| r["seq"].as_u64()) {
            Some(last) if page.len() == AUDIT_PAGE_MAX => after = Some(last),
            _ => break,
        }
    }
    let mut response = out.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"warden-audit.jsonl\""),
    );
    response
}
