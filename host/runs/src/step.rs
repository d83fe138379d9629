//! One step of an agent: its `step` export called in a fresh instance, under the
//! agent's per-call limits (memory, fuel, `timeout_ms`) like any tool call.

use std::time::{Duration, Instant};

use wasmtime::Store;

use warden_runtime::bindings::agent::{Agent, policy};
use warden_runtime::engine::{EPOCH_TICK, Runtime};
use warden_runtime::error::CallError;
use warden_runtime::plugin::Plugin;
use warden_runtime::state::CallState;

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

/// Calls `agent`'s `step` with `input` in a fresh instance.
pub async fn call(
    runtime: &Runtime,
    agent: &Plugin,
    input: &policy::StepInput,
) -> Result<policy::StepOutput, StepError> {
    let timeout = Duration::from_millis(agent.limits.timeout_ms);
    let deadline = Instant::now() + timeout;
    let call_id = warden_runtime::call::next_call_id();
    let internal = |source| {
        StepError::Call(CallError::Internal {
            plugin: agent.name.to_string(),
            tool: "step".into(),
            source,
        })
    };
    let state = CallState::new(agent, runtime, call_id, deadline).map_err(internal)?;
    let mut store = Store::new(runtime.engine(), state);
    let outcome = tokio::time::timeout(
        timeout + EPOCH_TICK * 4,
        invoke(&mut store, agent, input, deadline),
    )
    .await;
    match outcome {
        Err(_) => Err(StepError::Call(CallError::Limit {
            plugin: agent.name.to_string(),
            tool: "step".into(),
            limit: "timeout",
            detail: format!("the step ran past {} ms", agent.limits.timeout_ms),
        })),
        Ok(Err(err)) => Err(StepError::Call(warden_runtime::call::classify(
            agent, "step", &store, err,
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
