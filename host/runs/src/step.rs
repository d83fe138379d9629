//! One step of an agent: its `step` export called in a fresh instance, under the
//! agent's per-call limits (memory, fuel, `timeout_ms`) like any tool call. What the
//! step does at the host boundary takes the gate's path: its model calls (the one
//! `warden:host/models` capability, as a tool's) are decided by the access policy for
//! the run's agent on behalf of its starter, charged to the starter's budget and the
//! agent's, held to what is left of the run's tokens and cost, and on the audit record
//! with the run and the step, whether or not the step then fails.

use std::time::{Duration, Instant};

use serde_json::Value;
use wasmtime::Store;

use warden_runtime::bindings::agent::{Agent, policy};
use warden_runtime::capabilities::models::Allowance;
use warden_runtime::engine::{EPOCH_TICK, Runtime};
use warden_runtime::error::{BoxError, CallError, Chain, RecordError};
use warden_runtime::plugin::Plugin;
use warden_runtime::state::CallState;
use warden_runtime::{Caller, Via};

use super::agent_principal;
use super::store::Run;

/// The export an agent policy has.
pub const EXPORT: &str = "warden:plugin/agent-policy@0.1.0";

/// True when `plugin` exports `warden:plugin/agent-policy` (the tool discovery set the
/// export aside as an entry point).
pub fn is_agent(plugin: &Plugin) -> bool {
    plugin.skipped.iter().any(|s| s.name == EXPORT)
}

/// Why a step gave no output.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The agent answered `err`.
    #[error("the agent's step failed: {0}")]
    Failed(String),
    /// It trapped, hit a limit, or could not be instantiated.
    #[error("{0}")]
    Call(CallError),
}

/// What a step's own model calls used: tokens (input + output) and US dollars.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// Tokens, input and output.
    pub tokens: u64,
    /// US dollars.
    pub cost: f64,
}

/// Calls `agent`'s `step` of `run` with `input` in a fresh instance; its model calls
/// may spend at most `allowance` (what is left of the run's limits). Returns the
/// step's output and what its model calls used, which is on the audit record (as is
/// every other use and refusal at the host boundary) before this returns, whatever
/// the outcome; if the record cannot be written, the step fails.
pub async fn call(
    runtime: &Runtime,
    agent: &Plugin,
    run: &Run,
    input: &policy::StepInput,
    allowance: Allowance,
) -> (Result<policy::StepOutput, StepError>, Usage) {
    let timeout = Duration::from_millis(agent.limits.timeout_ms);
    let deadline = Instant::now() + timeout;
    let call_id = warden_runtime::call::next_call_id();
    let internal = |cause: BoxError| {
        StepError::Call(CallError::Internal {
            plugin: agent.name.to_string(),
            tool: "step".into(),
            cause,
        })
    };
    // One of the runtime's instances, as a tool call takes one.
    let _instance = match runtime.instance_permit(agent, "step", deadline).await {
        Ok(permit) => permit,
        Err(err) => return (Err(StepError::Call(err)), Usage::default()),
    };
    let mut state = match CallState::new(agent, runtime, call_id, deadline) {
        Ok(state) => state,
        Err(err) => return (Err(internal(err.into())), Usage::default()),
    };
    let caller = Caller::new(agent_principal(run), Via::Run);
    state.models.payer = Some(run.principal.as_str().into());
    state.models.decide_as = Some(caller.clone());
    state.models.allowance = Some(allowance);
    let mut store = Store::new(runtime.engine(), state);
    let outcome = tokio::time::timeout(
        timeout + EPOCH_TICK * 4,
        invoke(&mut store, agent, input, deadline),
    )
    .await;
    let result = finish(agent, &store, outcome);
    let (tokens, cost) = store.data().models.usage();
    let usage = Usage { tokens, cost };
    let fields = [
        ("run", Value::from(run.id.as_str())),
        ("step", Value::from(input.step)),
    ];
    let recorded = warden_runtime::call::record_host_uses(
        runtime, &caller, agent, "step", &mut store, &fields,
    )
    .await;
    match recorded {
        Ok(()) => (result, usage),
        Err(err) => {
            tracing::error!(run = %run.id, step = input.step, "the step's audit records could not be written: {}", Chain(&err));
            (Err(internal(RecordError::Step(err.into()).into())), usage)
        }
    }
}

type Outcome =
    Result<wasmtime::Result<Result<policy::StepOutput, String>>, tokio::time::error::Elapsed>;

#[expect(
    clippy::result_large_err,
    reason = "the step's error is the public `StepError` its caller returns as is"
)]
fn finish(
    agent: &Plugin,
    store: &Store<CallState>,
    outcome: Outcome,
) -> Result<policy::StepOutput, StepError> {
    match outcome {
        Err(_) => Err(StepError::Call(CallError::Limit {
            plugin: agent.name.to_string(),
            tool: "step".into(),
            limit: "timeout",
            detail: format!("the step ran past {} ms", agent.limits.timeout_ms),
        })),
        Ok(Err(err)) => Err(StepError::Call(warden_runtime::call::classify(
            agent, "step", store, err,
        ))),
        Ok(Ok(Err(message))) => Err(StepError::Failed(message)),
        Ok(Ok(Ok(output))) => Ok(output),
    }
}

async fn invoke(
    store: &mut Store<CallState>,
    agent: &Plugin,
    input: &policy::StepInput,
    deadline: Instant,
) -> wasmtime::Result<Result<policy::StepOutput, String>> {
    warden_runtime::call::arm(store, agent, deadline)?;
    let instance = agent.pre.instantiate_async(&mut *store).await?;
    let bindings = Agent::new(&mut *store, &instance)?;
    bindings
        .warden_plugin_agent_policy()
        .call_step(&mut *store, input)
        .await
}
