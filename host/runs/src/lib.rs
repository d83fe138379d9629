//! Agent runs: an agent policy (a component exporting `warden:plugin/agent`) decides
//! one action a step; the host checks each action against the agent's grant and the
//! access policy, executes it or holds it for a person, and records it durably before
//! the next step.
//!
//! - [`action`]: actions and observations as recorded, and their WIT forms;
//! - [`store`]: the run store (`<home>/runs.db`): runs, steps, calls, approvals;
//! - [`step`]: one call of the agent's `step`, in a fresh instance;
//! - the [`Runner`] (here) starts, drives (`drive`), cancels and resumes runs; `exec`
//!   executes actions; [`approvals`] records people's decisions.
//!
//! Durability: a step's action (with the memo) is on disk before it is executed, each
//! tool call is marked started before the tool runs and done with its outcome after,
//! and the observation is on disk before the agent is called again. A host that stops
//! anywhere resumes the run from there ([`Runner::resume_all`]): a step without an
//! observation is executed again, except that a tool call marked started but not done
//! is run again only when its tool is idempotent; otherwise the agent observes it as
//! `interrupted`. A run is driven by one process at a time, the holder of its lease
//! (kept in the store, so a `warden run` and a `warden serve` on one home share runs).
//!
//! This module may touch the home's `runs.db`, and reaches tools, models and the audit
//! log only through the [`Runtime`].

pub mod action;
pub mod approvals;
mod drive;
pub mod error;
mod exec;
pub mod step;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use self::action::{Action, Observation};
use self::store::{Run, RunStore, Status, StoreError};
use warden_audit::{Event, Outcome, Pending};
use warden_policy::{self, Decision, Principal, Resource};
use warden_runtime::engine::Runtime;
use warden_runtime::error::{CacheError, Chain};
use warden_runtime::gate::Caller;
use warden_runtime::home::Home;
use warden_runtime::plugin::Plugin;

/// How long a lease on a run lasts without being renewed, on one machine (the default
/// of `[runs] lease_ms` without a cluster database). A process on another machine may
/// take over a run whose lease ran out; on this machine a run whose process is gone
/// is taken over at once.
pub const LEASE: Duration = Duration::from_secs(300);

/// The lease's default in a cluster (`[storage] url`): a dead node's runs are taken
/// over by another node within this (and the resumer's next look).
pub const CLUSTER_LEASE: Duration = Duration::from_secs(10);

pub use approvals::approval_context;
pub use error::RunError;
pub use warden_config::runs::RunsConfig;

/// Where the runner finds agents and tools by plugin name.
pub trait Plugins: Send + Sync {
    /// The loaded plugin `name`.
    fn plugin(&self, name: &str) -> Result<Arc<Plugin>, String>;
    /// The names of every plugin there is.
    fn names(&self) -> Vec<String>;
}

impl Plugins for std::collections::BTreeMap<String, Arc<Plugin>> {
    fn plugin(&self, name: &str) -> Result<Arc<Plugin>, String> {
        self.get(name)
            .cloned()
            .ok_or_else(|| format!("no plugin named \"{name}\""))
    }

    fn names(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
}

/// The installed plugins of a home, loaded when first asked for (the CLI's view).
pub struct HomePlugins {
    home: Home,
    runtime: Arc<Runtime>,
    cache: warden_runtime::cache::CompileCache,
    loaded: Mutex<HashMap<String, Arc<Plugin>>>,
}

impl HomePlugins {
    /// The plugins of `home`, loaded into `runtime` through the home's compile cache.
    pub fn new(home: Home, runtime: Arc<Runtime>) -> Result<Self, CacheError> {
        let cache = home.cache(runtime.engine())?;
        Ok(Self {
            home,
            runtime,
            cache,
            loaded: Mutex::default(),
        })
    }
}

impl Plugins for HomePlugins {
    fn plugin(&self, name: &str) -> Result<Arc<Plugin>, String> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(plugin) = loaded.get(name) {
            return Ok(plugin.clone());
        }
        let installed = self.home.read(name).map_err(|e| Chain(&e).to_string())?;
        let plugin = Arc::new(
            installed
                .load(&self.runtime, Some(&self.cache))
                .map_err(|e| Chain(&e).to_string())?,
        );
        loaded.insert(name.to_string(), plugin.clone());
        Ok(plugin)
    }

    fn names(&self) -> Vec<String> {
        self.home.names().unwrap_or_default()
    }
}

/// One step as it happens, for a caller following a run.
#[derive(Clone, Debug, Serialize)]
pub struct Progress {
    /// The run.
    pub run: String,
    /// The step.
    pub step: u32,
    /// What the agent asked for.
    pub action: Action,
    /// What came of it (none for `finish` and `fail`, and when the run parked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observation: Option<Observation>,
}

/// Something that wants to see each step as it happens.
pub type Observer = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Drives agent runs: starts them, steps them, parks them for approvals, resumes them.
pub struct Runner {
    runtime: Arc<Runtime>,
    plugins: Arc<dyn Plugins>,
    store: Arc<RunStore>,
    owner: String,
    lease: Duration,
    observer: Option<Observer>,
    /// The runs this runner's tasks are driving: one lease owner, so a second task
    /// of this process would pass the lease's check.
    driving: Arc<Mutex<std::collections::HashSet<String>>>,
}

/// The agent principal of a run: `agent:<name>`, for who started it, with their roles.
pub fn agent_principal(run: &Run) -> Principal {
    Principal {
        id: format!("agent:{}", run.agent),
        roles: run.roles.clone(),
        on_behalf_of: Some(run.principal.clone()),
    }
}

/// This process, as a lease owner: `host:pid:nonce`.
fn owner_id() -> String {
    format!(
        "{}:{}:{}",
        hostname(),
        std::process::id(),
        store::new_id("p").trim_start_matches("p_")
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty() && !h.contains(':'))
        .unwrap_or_else(|| "localhost".into())
}

/// True when `owner` is a process of this machine that no longer exists.
fn is_gone(owner: &str) -> bool {
    let mut parts = owner.split(':');
    let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    host == hostname()
        && pid.parse::<u32>().is_ok_and(|pid| {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        })
}

impl Runner {
    /// A runner over `store`, finding plugins in `plugins` and running them in
    /// `runtime` (whose audit log, router and access policy it uses).
    pub fn new(runtime: Arc<Runtime>, plugins: Arc<dyn Plugins>, store: Arc<RunStore>) -> Self {
        Self {
            runtime,
            plugins,
            lease: if store.is_shared() {
                CLUSTER_LEASE
            } else {
                LEASE
            },
            store,
            owner: owner_id(),
            observer: None,
            driving: Arc::default(),
        }
    }

    /// Holds runs with leases of `lease` (at least a second), renewed by a heartbeat
    /// at a third of it while a run is driven.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_secs(1));
        self
    }

    /// The term of a lease.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// This process, as the owner of the leases it takes.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Calls `observer` with every step as it happens.
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<RunStore> {
        &self.store
    }

    /// The runtime.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Removes runs that ended more than `config.keep_days` ago; returns how many.
    pub fn prune(&self, config: &RunsConfig) -> Result<usize, StoreError> {
        if config.keep_days == 0 {
            return Ok(0);
        }
        let days = i64::try_from(config.keep_days).unwrap_or(i64::MAX / 2);
        let before = store::now_ms().saturating_sub(days.saturating_mul(86_400_000));
        self.store.prune(before)
    }

    async fn record(&self, event: Event) -> Result<(), RunError> {
        if let Some(audit) = self.runtime.audit() {
            audit
                .append(event)
                .await
                .map_err(|err| RunError::Audit(err.into()))?;
        }
        Ok(())
    }

    /// Hands `event` to the audit log without waiting for it to be on disk (see
    /// [`warden_audit::Audit::submit`]); [`recorded`] waits for it. A step's own
    /// records are written while the step goes on, and waited for before its action
    /// runs or its observation is recorded.
    fn record_soon(&self, event: Event) -> Result<Option<Pending>, RunError> {
        match self.runtime.audit() {
            Some(audit) => audit
                .submit(event)
                .map(Some)
                .map_err(|err| RunError::Audit(err.into())),
            None => Ok(None),
        }
    }

    /// [`Runner::record_soon`] of `event` after `held` (if any), in one transaction.
    fn record_soon_after(
        &self,
        held: &mut Option<Event>,
        event: Event,
    ) -> Result<Option<Pending>, RunError> {
        let Some(audit) = self.runtime.audit() else {
            return Ok(None);
        };
        let events: Vec<Event> = held.take().into_iter().chain([event]).collect();
        let pending = audit
            .submit_all(events)
            .map_err(|err| RunError::Audit(err.into()))?;
        Ok(pending.into_iter().last())
    }

    /// Records `event` after `held` (if any), in one transaction, and waits for both.
    async fn record_after(&self, held: &mut Option<Event>, event: Event) -> Result<(), RunError> {
        recorded(self.record_soon_after(held, event)?).await
    }

    fn payload(&self, value: &Value) -> Value {
        match self.runtime.audit() {
            Some(audit) => audit.payload(value),
            None => Value::Null,
        }
    }

    /// Starts a run of `agent` on `task` for `principal`, after the access policy
    /// (`start-run` on the agent). The run is recorded, not yet driven: see
    /// [`Runner::drive`].
    pub async fn start(&self, agent: &str, task: Value, caller: &Caller) -> Result<Run, RunError> {
        let principal = &caller.principal;
        let plugin = self.plugins.plugin(agent).map_err(RunError::NotFound)?;
        if !step::is_agent(&plugin) {
            return Err(RunError::Invalid(format!(
                "plugin \"{agent}\" is not an agent: it does not export {} (see `warden plugin inspect {agent}`)",
                step::EXPORT
            )));
        }
        let resource = Resource::Agent {
            name: agent.to_string(),
        };
        // The gate decides (a refusal is on record as access.denied).
        let decision = self
            .runtime
            .admit(caller, warden_policy::Action::StartRun, &resource, &task)
            .await
            .map_err(|refusal| RunError::Denied(refusal.message))?;
        let now = store::now_ms();
        let run = Run {
            id: store::new_id("run"),
            agent: agent.to_string(),
            principal: principal.id.clone(),
            roles: principal.roles.clone(),
            task,
            status: Status::Running,
            result: None,
            error: None,
            steps: 0,
            tokens: 0,
            cost: 0.0,
            active_ms: 0,
            created_at: now,
            updated_at: now,
            finished_at: None,
            owner: None,
        };
        let event = Event::new("run.start", principal.id.clone())
            .plugin(agent)
            .field("run", run.id.clone())
            .field("task", self.payload(&run.task))
            .field("decision", decision_name(&decision))
            .field("policies", json!(decision.policies()));
        self.store.create(&run)?;
        self.record(event.outcome(Outcome::Ok)).await?;
        Ok(run)
    }

    /// The run with `id`.
    pub fn run(&self, id: &str) -> Result<Run, RunError> {
        self.store
            .run(id)?
            .ok_or_else(|| RunError::NotFound(format!("no run {id:?} (see `warden runs list`)")))
    }

    /// Drives run `id` until it ends or parks, unless another live process holds it
    /// (then it is left alone). Returns the run as it is then.
    pub async fn drive(&self, id: &str) -> Result<Run, RunError> {
        let run = self.run(id)?;
        if run.status != Status::Running {
            return Ok(run);
        }
        // One task of this process at a time (they share one lease owner).
        let Some(_driving) = Driving::enter(&self.driving, id) else {
            return Ok(run);
        };
        let stale = run.owner.as_deref().filter(|o| self.is_gone(o));
        if !self.store.claim(id, &self.owner, self.lease, stale)? {
            return Ok(run);
        }
        let heartbeat = drive::heartbeat(self.store.clone(), id, &self.owner, self.lease);
        let span = warden_telemetry::agent_span(&run.agent, id);
        let result = tracing::Instrument::instrument(self.drive_claimed(run), span.clone()).await;
        heartbeat.abort();
        if result.is_err() {
            warden_telemetry::record_error(&span, Some("run-error"));
        }
        let released = self.store.release(id, &self.owner);
        result?;
        released?;
        self.run(id)
    }

    /// True when `owner` is known gone: its lease ran out, or (on one machine, not in
    /// a cluster, whose nodes may share a host name but not their processes) it is a
    /// process of this machine that no longer exists.
    fn is_gone(&self, owner: &str) -> bool {
        !self.store.is_shared() && is_gone(owner)
    }

    /// The runs a process may pick up now: running, and held by no one, by a process
    /// known gone, or by a lease that ran out.
    fn pickable(&self) -> Result<Vec<String>, RunError> {
        Ok(self
            .store
            .running()?
            .into_iter()
            .filter(|lease| lease.expired || lease.owner.as_deref().is_none_or(|o| self.is_gone(o)))
            .map(|lease| lease.run)
            .collect())
    }

    /// Drives every run that is `running` and not held by a live process, one after
    /// another; returns them as they are then.
    pub async fn resume_all(&self) -> Result<Vec<Run>, RunError> {
        let mut runs = Vec::new();
        for id in self.pickable()? {
            runs.push(self.drive(&id).await?);
        }
        Ok(runs)
    }

    /// The ids of runs a process may pick up now (running, not held by a live
    /// process: no one's, a gone process's, or one whose lease ran out).
    pub fn resumable(&self) -> Result<Vec<String>, RunError> {
        self.pickable()
    }

    /// Cancels run `id` for `by`: it ends `cancelled`, its pending approvals with it.
    /// A process driving it stops at its next step.
    pub async fn cancel(&self, id: &str, by: &str) -> Result<Run, RunError> {
        let run = self.run(id)?;
        if run.status.is_terminal() {
            return Err(RunError::Invalid(format!(
                "run {id} has ended already ({})",
                run.status.as_str()
            )));
        }
        let reason = format!("cancelled by {by}");
        if self
            .store
            .finish(id, None, Status::Cancelled, None, Some(&reason))?
        {
            self.record(
                Event::new("run.end", by)
                    .plugin(run.agent.clone())
                    .outcome(Outcome::Error)
                    .field("run", id)
                    .field("status", Status::Cancelled.as_str())
                    .field("steps", run.steps)
                    .field("tokens", run.tokens)
                    .field("cost", run.cost)
                    .field("error", reason),
            )
            .await?;
        }
        self.run(id)
    }
}

/// A run one of this runner's tasks drives, until dropped.
struct Driving {
    set: Arc<Mutex<std::collections::HashSet<String>>>,
    id: String,
}

impl Driving {
    fn enter(set: &Arc<Mutex<std::collections::HashSet<String>>>, id: &str) -> Option<Self> {
        let fresh = set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string());
        fresh.then(|| Self {
            set: set.clone(),
            id: id.to_string(),
        })
    }
}

impl Drop for Driving {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// `allow`, `require-approval` or `deny`.
pub fn decision_name(decision: &Decision) -> &'static str {
    match decision {
        Decision::Allow { .. } => "allow",
        Decision::RequireApproval { .. } => "require-approval",
        Decision::Deny { .. } => "deny",
    }
}

/// Waits until a record handed over by [`Runner::record_soon`] is on disk.
async fn recorded(pending: Option<Pending>) -> Result<(), RunError> {
    if let Some(pending) = pending {
        pending
            .wait()
            .await
            .map_err(|err| RunError::Audit(err.into()))?;
    }
    Ok(())
}
