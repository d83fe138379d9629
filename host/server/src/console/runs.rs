//! Agent runs: the list (a person's own runs, or every run with `read-audit`), and
//! one run's steps as a timeline — each action (model call, tool calls, a question,
//! finish, fail), the decisions on its held calls, its observation, the model usage
//! and cost — with cancel. Read and cancelled through the API's own handlers.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{self, Ctx, pretty, time};
use crate::api::AppState;
use crate::runs::ListQuery;

/// `GET /console/runs`.
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<Ctx>>,
) -> Response {
    let query = ListQuery {
        status: None,
        limit: Some(200),
    };
    let listed = crate::runs::list(State(state), Extension(ctx.caller.clone()), Query(query)).await;
    let runs = match listed {
        Ok(Json(body)) => body["runs"].as_array().cloned().unwrap_or_default(),
        Err(err) => return layout::api_error(&ctx, err),
    };
    let body = html! {
        @if runs.is_empty() {
            p.empty { "No runs you may see." }
        } @else {
            table {
                caption { "Runs, newest first" }
                thead { tr {
                    th scope="col" { "Run" } th scope="col" { "Agent" } th scope="col" { "Started by" }
                    th scope="col" { "Status" } th scope="col" { "Steps" } th scope="col" { "Tokens" }
                    th scope="col" { "Cost" } th scope="col" { "Started" }
                } }
                tbody {
                    @for r in &runs {
                        @let id = r["id"].as_str().unwrap_or("");
                        tr {
                            td { a href={ "/console/runs/" (id) } { (id) } }
                            td { (r["agent"].as_str().unwrap_or("")) }
                            td { (r["principal"].as_str().unwrap_or("")) }
                            td { (status(r)) }
                            td { (r["steps"]) }
                            td { (r["tokens"]) }
                            td { (cost(&r["cost"])) }
                            td { (time(r["created_at"].as_i64().unwrap_or(0))) }
                        }
                    }
                }
            }
        }
    };
    layout::page(&ctx, "runs", "Runs", body)
}

fn status(run: &Value) -> Markup {
    let s = run["status"].as_str().unwrap_or("");
    html! { span class={ "status " (s) } { (s) } }
}

fn cost(value: &Value) -> String {
    format!("${:.4}", value.as_f64().unwrap_or(0.0))
}

/// After a change.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Done {
    done: Option<String>,
}

/// `GET /console/runs/{id}`.
pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let shown = crate::runs::show(
        State(state),
        Extension(ctx.caller.clone()),
        Path(id.clone()),
    )
    .await;
    let body = match shown {
        Ok(Json(body)) => body,
        Err(err) => return layout::api_error(&ctx, err),
    };
    let run = &body["run"];
    let steps = body["steps"].as_array().cloned().unwrap_or_default();
    let approvals = body["approvals"].as_array().cloned().unwrap_or_default();
    let ended = matches!(
        run["status"].as_str(),
        Some("finished" | "failed" | "cancelled")
    );
    let page = html! {
        (layout::notice(done.done.as_deref()))
        dl.facts {
            dt { "Agent" } dd { (run["agent"].as_str().unwrap_or("")) }
            dt { "Started by" } dd { (run["principal"].as_str().unwrap_or("")) }
            dt { "Status" } dd #run-status { (status(run)) }
            dt { "Steps" } dd { (run["steps"]) }
            dt { "Model tokens" } dd { (run["tokens"]) }
            dt { "Model cost" } dd { (cost(&run["cost"])) }
            dt { "Active time" } dd { (run["active_ms"]) " ms" }
            dt { "Started" } dd { (time(run["created_at"].as_i64().unwrap_or(0))) }
        }
        @if let Some(error) = run["error"].as_str() {
            p.problem { "Error: " (error) }
        }
        @if !ended {
            form method="post" action={ "/console/runs/" (id) "/cancel" } {
                (ctx.field())
                button.danger type="submit" { "Cancel this run" }
            }
        }
        h2 { "Steps" }
        ol.timeline {
            @for step in &steps {
                (step_item(step, &approvals))
            }
        }
        @if !run["result"].is_null() {
            h2 { "Result" }
            pre.json #run-result { (pretty(&run["result"])) }
        }
        details {
            summary { "Task" }
            pre.json { (pretty(&run["task"])) }
        }
    };
    layout::page(&ctx, "runs", &format!("Run {id}"), page)
}

fn step_item(step: &Value, approvals: &[Value]) -> Markup {
    let n = step["n"].as_u64().unwrap_or(0);
    let action = &step["action"];
    let observation = &step["observation"];
    let decisions: Vec<&Value> = approvals
        .iter()
        .filter(|a| a["step"].as_u64() == Some(n))
        .collect();
    html! {
        li.step {
            h3 { "Step " (n) ": " (action_summary(action)) }
            p.when { (time(step["started_at"].as_i64().unwrap_or(0)))
                @if let Some(end) = step["finished_at"].as_i64() { " → " (time(end)) } }
            (action_detail(action))
            @for a in &decisions {
                p class={ "decision " (a["status"].as_str().unwrap_or("")) } {
                    strong { "Decision: " (a["status"].as_str().unwrap_or("")) }
                    @if let Some(tool) = a["tool"].as_str() { " on " code { (tool) } }
                    @if let Some(by) = a["decided_by"].as_str() { " by " (by) }
                    @if let Some(reason) = a["reason"].as_str() { " — " (reason) }
                    @if !a["edited"].is_null() { " (arguments edited: " code { (a["edited"].to_string()) } ")" }
                    " — held by " (a["policies"].as_array().map(|p| p.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default())
                }
            }
            @if observation.is_null() {
                @if !matches!(action["kind"].as_str(), Some("finish" | "fail")) {
                    p.help { "No observation yet." }
                }
            } @else {
                (observation_detail(observation))
            }
        }
    }
}

fn action_summary(action: &Value) -> String {
    match action["kind"].as_str().unwrap_or("") {
        "call-model" => format!("model route {}", action["route"].as_str().unwrap_or("")),
        "call-tools" => {
            let tools: Vec<&str> = action["calls"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["tool"].as_str())
                .collect();
            format!("call {}", tools.join(", "))
        }
        "ask" => "a question for a person".into(),
        "finish" => "finish".into(),
        "fail" => "give up".into(),
        other => other.to_string(),
    }
}

fn action_detail(action: &Value) -> Markup {
    html! {
        @match action["kind"].as_str().unwrap_or("") {
            "call-tools" => {
                ul.calls {
                    @for call in action["calls"].as_array().into_iter().flatten() {
                        li { code { (call["tool"].as_str().unwrap_or("")) } " " code { (args_text(&call["arguments"])) } }
                    }
                }
            }
            "ask" => { p { "Asks: " (action["question"].as_str().unwrap_or("")) } }
            "fail" => { p { "Reason: " (action["reason"].as_str().unwrap_or("")) } }
            _ => {
                details { summary { "Action" } pre.json { (pretty(action)) } }
            }
        }
    }
}

fn args_text(args: &Value) -> String {
    match args {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn observation_detail(observation: &Value) -> Markup {
    let kind = observation["kind"].as_str().unwrap_or("");
    html! {
        div class={ "observation " (kind) } {
            @match kind {
                "tools" => {
                    p { strong { "Observed:" } " tool results" }
                    ul.results {
                        @for r in observation["results"].as_array().into_iter().flatten() {
                            @let outcome = r["outcome"].as_str().or(r["kind"].as_str()).unwrap_or("");
                            li {
                                "call " code { (r["id"].as_str().unwrap_or("")) } ": "
                                span class={ "outcome " (outcome) } { (outcome) }
                                @if let Some(reason) = r["reason"].as_str() { " — " (reason) }
                            }
                        }
                    }
                    details { summary { "Results" } pre.json { (pretty(&observation["results"])) } }
                }
                "model" => {
                    @let usage = &observation["response"]["usage"];
                    p { strong { "Observed:" } " the model's answer"
                        @if !usage.is_null() { " (usage: " code { (usage.to_string()) } ")" } }
                    details { summary { "Answer" } pre.json { (pretty(&observation["response"])) } }
                }
                "denied" => { p { strong { "Observed: denied" } " — " (observation["reason"].as_str().unwrap_or("")) } }
                "failed" => { p { strong { "Observed: failed" } " — " (observation["reason"].as_str().unwrap_or("")) } }
                "answer" => { p { strong { "Observed:" } " the answer " code { (observation["answer"].to_string()) } } }
                _ => { p { strong { "Observed: " } (kind) } }
            }
        }
    }
}

/// `POST /console/runs/{id}/cancel`.
pub(crate) async fn cancel(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path(id): Path<String>,
) -> Response {
    match crate::runs::cancel(
        State(state),
        Extension(ctx.caller.clone()),
        Path(id.clone()),
    )
    .await
    {
        Ok(_) => Redirect::to(&format!("/console/runs/{id}?done=Cancelled.")).into_response(),
        Err(err) => layout::api_error(&ctx, err),
    }
}
