//! Agent runs end to end: the `scripted` test agent (its task is a script of actions)
//! and the `tally` tool (each execution adds one to a counter in memory) in a runtime
//! of the test's own, with an audit log, a memory store, and where a test needs them a
//! model router over a fake provider and an access policy.
//!
//! - [`finish`]: runs that finish; denied tools; malformed actions; the tool loop;
//! - [`approvals`]: runs parked for a person: approved, rejected, edited, answered;
//! - [`limits`]: steps, tokens and time per run;
//! - [`crash`]: a `warden run` killed mid-run, resumed, no side effect twice;
//! - [`http`]: runs and approvals over HTTP under `warden serve`, with a Cedar policy;
//! - [`triage`]: the bundled `triage` agent with `notes`, `refunds` and its policy;
//! - [`research`]: the bundled `research` agent with `fetch` and a model route.

mod approvals;
mod crash;
mod finish;
pub(crate) mod http;
mod limits;
mod research;
mod triage;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use warden::audit::{Audit, AuditOptions, Filter, Record};
use warden::grant::{AgentGrant, Grant, MemoryGrant, ModelsGrant, ToolsGrant};
use warden::memory::{SqliteMemory, Store as _};
use warden::policy::{Decide, Principal};
use warden::runs::store::{Run, RunStore, Status};
use warden::runs::{Plugins, Runner};
use warden::{Plugin, Runtime};
use warden_tests::guests;

/// A runner of its own, and what a test looks at.
pub(crate) struct Setup {
    pub(crate) runner: Runner,
    pub(crate) memory: Arc<SqliteMemory>,
    pub(crate) audit: Audit,
    _dir: tempfile::TempDir,
}

/// What the test agent's grant says.
pub(crate) struct AgentSpec {
    pub(crate) tools: Vec<&'static str>,
    pub(crate) routes: Vec<&'static str>,
    pub(crate) limits: AgentGrant,
}

impl Default for AgentSpec {
    fn default() -> Self {
        Self {
            tools: vec!["tally/*"],
            routes: Vec::new(),
            limits: AgentGrant::default(),
        }
    }
}

/// A runtime with an audit log, memory, and optionally a router and a policy; the
/// `scripted` agent with `spec`'s grant and the `tally` tool with its namespace.
pub(crate) fn setup(
    spec: AgentSpec,
    router: Option<warden::models::Router>,
    policy: Option<Arc<dyn Decide>>,
) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new().unwrap();
    let audit = Audit::open(dir.path(), AuditOptions::default()).unwrap();
    runtime.set_audit(audit.clone()).unwrap();
    let memory = Arc::new(SqliteMemory::open(&dir.path().join("memory.db")).unwrap());
    runtime.set_memory(memory.clone()).unwrap();
    if let Some(router) = router {
        runtime.set_router(Arc::new(router)).unwrap();
    }
    if let Some(policy) = policy {
        runtime.set_policy(policy).unwrap();
    }
    let agent = Grant {
        tools: Some(ToolsGrant {
            allow: spec.tools.iter().map(|t| t.to_string()).collect(),
        }),
        models: Some(ModelsGrant {
            routes: spec.routes.iter().map(|r| r.to_string()).collect(),
            ..ModelsGrant::default()
        }),
        agent: Some(spec.limits),
        ..Grant::default()
    };
    let tally = Grant {
        memory: BTreeMap::from([(
            "tally".to_string(),
            MemoryGrant::new(warden::grant::Access::ReadWrite),
        )]),
        ..Grant::default()
    };
    let plugins: BTreeMap<String, Arc<Plugin>> = BTreeMap::from([
        (
            "scripted".to_string(),
            Arc::new(crate::load_into(
                &runtime,
                "scripted",
                guests::SCRIPTED,
                agent,
            )),
        ),
        (
            "tally".to_string(),
            Arc::new(crate::load_into(&runtime, "tally", guests::TALLY, tally)),
        ),
    ]);
    let plugins: Arc<dyn Plugins> = Arc::new(plugins);
    let store = Arc::new(RunStore::open(&dir.path().join("runs.db")).unwrap());
    Setup {
        runner: Runner::new(Arc::new(runtime), plugins, store),
        memory,
        audit,
        _dir: dir,
    }
}

/// The operator at the command line.
pub(crate) fn operator() -> Principal {
    Principal {
        id: "local:tester".into(),
        roles: vec!["admin".into()],
        on_behalf_of: None,
    }
}

impl Setup {
    /// Starts the scripted agent on `script` and drives it until it ends or parks.
    pub(crate) async fn run(&self, script: Value) -> Run {
        let run = self
            .runner
            .start(
                "scripted",
                json!({ "script": script }),
                &warden::Caller::new(operator(), warden::Via::Library),
            )
            .await
            .unwrap();
        self.runner.drive(&run.id).await.unwrap()
    }

    /// How many times `tally/bump` ran for `key`.
    pub(crate) fn tally(&self, key: &str) -> u64 {
        self.memory
            .get("tally", key, warden::memory::now())
            .unwrap()
            .map_or(0, |e| String::from_utf8(e.value).unwrap().parse().unwrap())
    }

    /// Every audit record of `kind`.
    pub(crate) fn records(&self, kind: &str) -> Vec<Record> {
        self.audit
            .read(Filter {
                kind: Some(kind.to_string()),
                ..Filter::default()
            })
            .unwrap()
    }
}

/// A script step calling `tally/bump` for `key`.
pub(crate) fn bump(id: &str, key: &str) -> Value {
    json!({ "call": [{ "id": id, "tool": "tally/bump", "arguments": { "key": key } }] })
}

/// The observations the scripted agent saw, from its result.
pub(crate) fn observations(run: &Run) -> Value {
    assert_eq!(run.status, Status::Finished, "{run:?}");
    run.result.as_ref().unwrap()["observations"].clone()
}
