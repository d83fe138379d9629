//! One tool call: a fresh store and instance, JSON in, JSON out, limits enforced.
//!
//! Every call gets a new [`CallState`] and a new instance from the plugin's
//! `InstancePre`, so nothing one call leaves in the guest's memory or tables is seen
//! by the next. The deadline is enforced twice: by epoch interruption inside guest
//! code, and by a host-side timeout around everything (host calls that block).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tracing::Instrument as _;
use wasmtime::Store;
use wasmtime::component::Val;

use crate::convert;
use crate::engine::{EPOCH_TICK, Runtime};
use crate::error::CallError;
use crate::plugin::Plugin;
use crate::state::CallState;
use crate::tools::Tool;

static NEXT_CALL: AtomicU64 = AtomicU64::new(1);

/// How much of the guest's stderr a trap message shows.
const STDERR_IN_ERRORS: usize = 2048;

impl Runtime {
    /// Calls `tool` of `plugin` with JSON `args` (an object keyed by parameter name).
    pub async fn call(
        &self,
        plugin: &Plugin,
        tool: &str,
        args: &Value,
    ) -> Result<Value, CallError> {
        let Some(def) = plugin.tool(tool) else {
            return Err(CallError::UnknownTool {
                plugin: plugin.name.to_string(),
                tool: tool.to_string(),
                available: plugin.tools.iter().map(|t| t.name.clone()).collect(),
            });
        };
        let params = convert::args_from_json(args, &def.params).map_err(|source| {
            CallError::InvalidArguments {
                plugin: plugin.name.to_string(),
                tool: tool.to_string(),
                source,
            }
        })?;
        let call_id = NEXT_CALL.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!(
            "execute_tool",
            gen_ai.tool.name = %format_args!("{}/{}", plugin.name, tool),
            call = call_id
        );
        let timeout = Duration::from_millis(plugin.limits.timeout_ms);
        let mut store = Store::new(
            &self.engine,
            CallState::new(plugin.name.clone(), call_id, &plugin.limits),
        );
        let run = invoke(plugin, def, &mut store, &params).instrument(span);
        // The epoch deadline stops guest code; this stops host calls that block, with
        // a little slack so the guest-side deadline reports first.
        let outcome = tokio::time::timeout(timeout + EPOCH_TICK * 4, run).await;
        let failed = |limit, detail| CallError::Limit {
            plugin: plugin.name.to_string(),
            tool: tool.to_string(),
            limit,
            detail,
        };
        let result = match outcome {
            Err(_) => Err(failed(
                "timeout",
                format!("the call ran past {} ms", plugin.limits.timeout_ms),
            )),
            Ok(Err(err)) => Err(classify(plugin, tool, &store, err)),
            Ok(Ok(val)) => Ok(val),
        };
        let denials = store.data_mut().take_denials();
        let value = match result {
            Ok(Some(Val::Result(Err(payload)))) if def.is_fallible() => {
                let error = payload.map_or(Value::Null, |v| convert::val_to_json(&v));
                return Err(if denials.is_empty() {
                    CallError::ToolError {
                        plugin: plugin.name.to_string(),
                        tool: tool.to_string(),
                        error,
                    }
                } else {
                    CallError::Denied {
                        plugin: plugin.name.to_string(),
                        tool: tool.to_string(),
                        denials,
                        tool_error: Some(error),
                    }
                });
            }
            Ok(Some(Val::Result(Ok(payload)))) if def.is_fallible() => {
                payload.map_or(Value::Null, |v| convert::val_to_json(&v))
            }
            Ok(Some(val)) => convert::val_to_json(&val),
            Ok(None) => Value::Null,
            Err(err) if !denials.is_empty() && matches!(err, CallError::Trap { .. }) => {
                return Err(CallError::Denied {
                    plugin: plugin.name.to_string(),
                    tool: tool.to_string(),
                    denials,
                    tool_error: None,
                });
            }
            Err(err) => return Err(err),
        };
        let size = serde_json::to_vec(&value).map_or(0, |v| v.len());
        if size > plugin.limits.output_bytes() {
            return Err(failed(
                "output",
                format!(
                    "the result is {size} bytes, the limit is {} KiB (max_output_kb)",
                    plugin.limits.max_output_kb
                ),
            ));
        }
        Ok(value)
    }
}

async fn invoke(
    plugin: &Plugin,
    tool: &Tool,
    store: &mut Store<CallState>,
    params: &[Val],
) -> wasmtime::Result<Option<Val>> {
    store.limiter(|s| &mut s.limits);
    let ticks = plugin
        .limits
        .timeout_ms
        .div_ceil(EPOCH_TICK.as_millis() as u64)
        .max(1);
    store.set_epoch_deadline(ticks);
    store.epoch_deadline_trap();
    let instance = plugin.pre.instantiate_async(&mut *store).await?;
    let func = instance.get_func(&mut *store, tool.export).ok_or_else(|| {
        wasmtime::format_err!("export {} is missing from the instance", tool.function)
    })?;
    let mut results = vec![Val::Bool(false); usize::from(tool.result.is_some())];
    func.call_async(&mut *store, params, &mut results).await?;
    Ok(results.pop())
}

fn classify(
    plugin: &Plugin,
    tool: &str,
    store: &Store<CallState>,
    err: wasmtime::Error,
) -> CallError {
    let limit = |limit, detail| CallError::Limit {
        plugin: plugin.name.to_string(),
        tool: tool.to_string(),
        limit,
        detail,
    };
    if err.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
        return limit(
            "timeout",
            format!(
                "the call ran past {} ms (timeout_ms)",
                plugin.limits.timeout_ms
            ),
        );
    }
    let message = format!("{err:#}");
    if message.contains("forcing trap when growing memory") {
        return limit(
            "memory",
            format!(
                "the guest asked for more than {} MiB (memory_mb)",
                plugin.limits.memory_mb
            ),
        );
    }
    let message = match err.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => err.root_cause().to_string(),
    };
    CallError::Trap {
        plugin: plugin.name.to_string(),
        tool: tool.to_string(),
        message,
        stderr: store.data().stderr_tail(STDERR_IN_ERRORS),
    }
}
