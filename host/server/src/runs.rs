//! Agent runs over HTTP: `POST /v1/runs` starts one (the policy decides `start-run`
//! for the caller), `GET /v1/runs[/{id}]` shows them, `POST /v1/runs/{id}/cancel`
//! cancels one; `GET /v1/approvals` and `POST /v1/approvals/{id}/approve|reject` are the
//! queue people decide on (`decide-approval`, with the run's starter, the held call and
//! the edit as the context: by default a run's starter may not approve its own holds).
//!
//! Runs are driven by background tasks of the server. At start, and every
//! [`RESUME_EVERY`] after ([`RESUME_EVERY_IN_A_CLUSTER`] with a cluster database), the
//! server picks up every run no live process drives: runs left unfinished by a crash
//! or a restart, runs whose lease ran out (a node of the cluster died driving them),
//! and runs whose approvals were decided by another process (`warden approvals
//! approve` on the same home, or another node of the cluster).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::registry::Registry;
use super::storage::Storage;
use warden_policy::{Action, ApprovalContext, Decision, Resource};
use warden_runs::store::{Run, RunStore, Status, StoreError, Verdict};
use warden_runs::{Plugins, RunError, Runner, approval_context};
use warden_runtime::error::Chain;
use warden_runtime::{Plugin, Via};

/// How often the server looks for runs to pick up.
pub const RESUME_EVERY: Duration = Duration::from_secs(2);

/// How often a node of a cluster looks for runs to pick up: a dead node's runs are
/// taken over within a lease and this.
pub const RESUME_EVERY_IN_A_CLUSTER: Duration = Duration::from_secs(1);

/// The plugins the server serves, as the runner sees them.
struct Served(Arc<Registry>);

impl Plugins for Served {
    fn plugin(&self, name: &str) -> Result<Arc<Plugin>, String> {
        self.0
            .get(name)
            .map(|s| s.plugin.clone())
            .ok_or_else(|| format!("no plugin named \"{name}\" is served"))
    }

    fn names(&self) -> Vec<String> {
        self.0.snapshot().keys().cloned().collect()
    }
}

/// The server's runner, and the runs its tasks are driving.
pub struct Runs {
    runner: Arc<Runner>,
    driving: Mutex<HashSet<String>>,
    every: Duration,
}

impl Runs {
    /// The runs of `storage` (the home's `runs.db`, or the cluster's database), with
    /// ended runs older than `config.keep_days` removed and leases of
    /// `config.lease_ms`.
    pub fn open(
        registry: &Arc<Registry>,
        storage: &Storage,
        config: &warden_runs::RunsConfig,
    ) -> Result<Arc<Self>, StoreError> {
        let store: Arc<RunStore> = Arc::new(storage.runs(registry.home().root())?);
        let every = if store.is_shared() {
            RESUME_EVERY_IN_A_CLUSTER
        } else {
            RESUME_EVERY
        };
        let runner = Runner::new(
            registry.runtime().clone(),
            Arc::new(Served(registry.clone())),
            store,
        )
        .with_lease(storage.run_lease(config));
        let pruned = runner.prune(config)?;
        if pruned > 0 {
            tracing::info!(pruned, "removed runs older than [runs] keep_days");
        }
        Ok(Arc::new(Self {
            runner: Arc::new(runner),
            driving: Mutex::default(),
            every,
        }))
    }

    /// The runner.
    pub fn runner(&self) -> &Arc<Runner> {
        &self.runner
    }

    /// Drives run `id` in a task of its own, unless one of this server's tasks does.
    pub fn spawn(self: &Arc<Self>, id: &str) {
        if !self
            .driving
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string())
        {
            return;
        }
        let runs = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            if let Err(err) = runs.runner.drive(&id).await {
                tracing::error!(run = %id, "driving the run: {}", Chain(&err));
            }
            runs.driving
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        });
    }

    /// Picks up every run no live process drives (see [`Runner::resumable`]), now and
    /// every [`RESUME_EVERY`] ([`RESUME_EVERY_IN_A_CLUSTER`]), until the server (which
    /// holds the last strong reference) is gone.
    pub fn resume_in_background(runs: Weak<Self>) {
        tokio::spawn(async move {
            loop {
                let Some(this) = runs.upgrade() else { return };
                match this.runner.resumable() {
                    Ok(ids) => ids.iter().for_each(|id| this.spawn(id)),
                    Err(err) => tracing::warn!("looking for runs to resume: {}", Chain(&err)),
                }
                let every = this.every;
                drop(this);
                tokio::time::sleep(every).await;
            }
        });
    }
}

fn api_error(err: RunError) -> ApiError {
    match &err {
        RunError::NotFound(m) => ApiError::not_found("not-found", m),
        RunError::Invalid(m) => ApiError::new(StatusCode::CONFLICT, "invalid", m),
        RunError::Denied(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
        RunError::Store(_) | RunError::Audit(_) => ApiError::internal(Chain(&err)),
    }
}

/// True when `caller` started `run`, or may read the audit log (which holds every
/// run's steps anyway).
fn may_see(caller: &Caller, run: &Run) -> bool {
    run.principal == caller.principal || caller.may(Action::ReadAudit)
}

fn runs_of(state: &AppState) -> Result<&Arc<Runs>, ApiError> {
    state
        .runs
        .as_ref()
        .ok_or_else(|| ApiError::internal("this server keeps no agent runs"))
}

/// `POST /v1/runs` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StartBody {
    /// The agent.
    agent: String,
    /// The task.
    #[serde(default)]
    task: Value,
    /// Answer once the run ended or parked, not right away.
    #[serde(default)]
    wait: bool,
}

pub(crate) async fn start(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Caller>>,
    body: Result<Json<StartBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|r| ApiError::bad_request(r.body_text()))?;
    let runs = runs_of(&state)?;
    let run = runs
        .runner
        .start(&body.agent, body.task, &caller.gate(Via::Http))
        .await
        .map_err(api_error)?;
    let run = if body.wait {
        runs.runner.drive(&run.id).await.map_err(api_error)?
    } else {
        runs.spawn(&run.id);
        run
    };
    Ok((StatusCode::CREATED, Json(json!({ "run": run }))).into_response())
}

/// `GET /v1/runs` filters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    pub(crate) status: Option<String>,
    pub(crate) limit: Option<usize>,
}

pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Caller>>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = query
        .status
        .map(|s| s.parse::<Status>())
        .transpose()
        .map_err(ApiError::bad_request)?;
    let runs = runs_of(&state)?;
    let limit = query.limit.unwrap_or(100).min(1000);
    let all = runs
        .runner
        .store()
        .runs(status, limit)
        .map_err(|e| ApiError::internal(Chain(&e)))?;
    let visible: Vec<_> = all.into_iter().filter(|r| may_see(&caller, r)).collect();
    Ok(Json(json!({ "runs": visible })))
}

fn visible_run(runs: &Runs, caller: &Caller, id: &str) -> Result<Run, ApiError> {
    let run = runs.runner.run(id).map_err(api_error)?;
    if !may_see(caller, &run) {
        // Not found, rather than forbidden: ids of others' runs are not confirmed.
        return Err(ApiError::not_found("not-found", format!("no run {id:?}")));
    }
    Ok(run)
}

pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Caller>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let runs = runs_of(&state)?;
    let run = visible_run(runs, &caller, &id)?;
    let internal = |e: StoreError| ApiError::internal(Chain(&e));
    let steps = runs.runner.store().steps(&id).map_err(internal)?;
    let approvals = runs
        .runner
        .store()
        .approvals(true, Some(&id))
        .map_err(internal)?;
    Ok(Json(
        json!({ "run": run, "steps": steps, "approvals": approvals }),
    ))
}

pub(crate) async fn cancel(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Caller>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let runs = runs_of(&state)?;
    let run = visible_run(runs, &caller, &id)?;
    if run.principal != caller.principal {
        let resource = Resource::Agent {
            name: run.agent.clone(),
        };
        let context = ApprovalContext {
            kind: "run",
            run: run.id.clone(),
            agent: run.agent.clone(),
            decision: "cancel",
            starter: run.principal.clone(),
            ..ApprovalContext::default()
        };
        state
            .require_with(
                &caller,
                Action::DecideApproval,
                &resource,
                &context.to_json(),
                Some(&run.agent),
            )
            .await?;
    }
    let run = runs
        .runner
        .cancel(&id, &caller.principal)
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "run": run })))
}

/// `GET /v1/approvals` filters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ApprovalsQuery {
    #[serde(default)]
    all: bool,
}

pub(crate) fn resource_of(approval: &warden_runs::store::Approval) -> Resource {
    match approval.tool.as_deref().and_then(|t| t.split_once('/')) {
        Some((plugin, tool)) => Resource::tool(plugin, tool),
        None => Resource::Agent {
            name: approval.agent.clone(),
        },
    }
}

pub(crate) async fn approvals(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Caller>>,
    Query(query): Query<ApprovalsQuery>,
) -> Result<Json<Value>, ApiError> {
    let runs = runs_of(&state)?;
    let queue = runs.runner.approvals(query.all).map_err(api_error)?;
    // The entries the caller may decide on: approve, or reject (the starter of a run
    // may not approve its own holds by default, but sees them, and may reject them).
    let mine: Vec<_> = queue
        .into_iter()
        .filter(|a| may_decide(&caller, a))
        .collect();
    Ok(Json(json!({ "approvals": mine })))
}

/// Whether `caller` may decide on `approval` (approve it, or reject it).
fn may_decide(caller: &Caller, approval: &warden_runs::store::Approval) -> bool {
    ["approve", "reject"].into_iter().any(|decision| {
        let context = approval_context(approval, caller.who(), decision, None);
        !matches!(
            caller.decide(
                Action::DecideApproval,
                &resource_of(approval),
                &context.to_json()
            ),
            Decision::Deny { .. }
        )
    })
}

/// `GET /v1/approvals/{id}`: one entry of the queue (what a held MCP call's client is
/// sent to), for its starter and for those who may decide on it; to others it does
/// not exist.
pub(super) async fn approval(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Caller>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let runs = runs_of(&state)?;
    let unknown = || {
        ApiError::not_found(
            "unknown-approval",
            format!("no approval {id:?} (GET /v1/approvals lists those you may decide)"),
        )
    };
    let approval = runs
        .runner
        .store()
        .approval(&id)
        .map_err(|e| ApiError::internal(Chain(&e)))?
        .ok_or_else(unknown)?;
    if approval.principal != caller.who().id && !may_decide(&caller, &approval) {
        return Err(unknown());
    }
    Ok(Json(json!({
        "approval": approval,
        "approve": format!("POST /v1/approvals/{id}/approve"),
        "reject": format!("POST /v1/approvals/{id}/reject"),
    })))
}

/// `POST /v1/approvals/{id}/approve` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApproveBody {
    /// Arguments to call the tool with instead of the agent's.
    #[serde(default)]
    pub(crate) edit_args: Option<Value>,
    /// The answer to a question.
    #[serde(default)]
    pub(crate) answer: Option<Value>,
}

/// `POST /v1/approvals/{id}/reject` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RejectBody {
    /// Why.
    pub(crate) reason: String,
}

async fn decided(
    state: &AppState,
    caller: &Caller,
    id: &str,
    verdict: Verdict,
) -> Result<Json<Value>, ApiError> {
    let runs = runs_of(state)?;
    let approval = runs
        .runner
        .decide_as(&caller.gate(Via::Http), id, verdict)
        .await
        .map_err(api_error)?;
    // A direct call's hold (over MCP) has no run: its caller is waiting for this.
    if !approval.run.is_empty()
        && runs.runner.run(&approval.run).map_err(api_error)?.status == Status::Running
    {
        runs.spawn(&approval.run);
    }
    Ok(Json(json!({ "approval": approval })))
}

pub(crate) async fn approve(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Caller>>,
    Path(id): Path<String>,
    body: Option<Json<ApproveBody>>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.unwrap_or_default();
    let verdict = Verdict::Approve {
        edited: body.edit_args,
        answer: body.answer,
    };
    decided(&state, &caller, &id, verdict).await
}

pub(crate) async fn reject(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Caller>>,
    Path(id): Path<String>,
    body: Result<Json<RejectBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(|r| {
        ApiError::bad_request(format!("{}; send {{\"reason\": \"…\"}}", r.body_text()))
    })?;
    decided(
        &state,
        &caller,
        &id,
        Verdict::Reject {
            reason: body.reason,
        },
    )
    .await
}
