//! One tool call: a fresh store and instance, JSON in, JSON out, limits enforced.
//!
//! Every call gets a new [`CallState`] and a new instance from the plugin's
//! `InstancePre`, so nothing one call leaves in the guest's memory or tables is seen
//! by the next. The deadline is enforced twice: by epoch interruption inside guest
//! code (which also yields to the executor every few ticks, so a busy guest never
//! holds a worker thread), and by a host-side timeout around everything (host calls
//! that block).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use wasmtime::component::{ResourceTableError, Val};
use wasmtime::{Store, UpdateDeadline};

mod record;
mod slots;

pub use self::slots::InstancePermit;

use self::record::{Record, Report};
use self::slots::Slots;
use crate::convert;
use crate::engine::{EPOCH_TICK, Runtime};
use crate::error::{CallError, RecordError};
use crate::gate::{CallOptions, Caller, Via};
use crate::plugin::Plugin;
use crate::state::{CallState, MAX_HANDLES};
use crate::tools::Tool;
use warden_policy::{Decision, Principal};

static NEXT_CALL: AtomicU64 = AtomicU64::new(1);

/// A new call id, unique in this process (tool calls and agent steps share them).
pub fn next_call_id() -> u64 {
    NEXT_CALL.fetch_add(1, Ordering::Relaxed)
}

/// Epoch ticks of guest code between two yields to the async executor.
const YIELD_EVERY_TICKS: u64 = 2;

/// How much of the guest's stderr a trap message shows.
const STDERR_IN_ERRORS: usize = 2048;

impl Runtime {
    /// Calls `tool` of `plugin` with JSON `args` (an object keyed by parameter name), on
    /// behalf of the local operator, through the gate ([`Runtime::call_tool`]).
    pub async fn call(
        &self,
        plugin: &Plugin,
        tool: &str,
        args: &Value,
    ) -> Result<Value, CallError> {
        self.call_tool(
            &Caller::local(Via::Library),
            plugin,
            tool,
            args,
            CallOptions::default(),
        )
        .await
    }

    /// Calls `tool` of `plugin` on behalf of `principal` (with no roles), through the
    /// gate. With an audit log set ([`Runtime::set_audit`]), the call's records are on
    /// disk before this returns; if they cannot be written, the result is withheld and
    /// the call fails.
    pub async fn call_as(
        &self,
        principal: &str,
        plugin: &Plugin,
        tool: &str,
        args: &Value,
    ) -> Result<Value, CallError> {
        let caller = Caller::new(Principal::new(principal, Vec::new()), Via::Library);
        self.call_tool(&caller, plugin, tool, args, CallOptions::default())
            .await
    }

    /// Runs an admitted call and records it (see [`crate::gate`]): the records are
    /// written when the call ends, or, if the caller goes away first, as `cancelled`.
    pub(crate) async fn call_recorded(
        &self,
        caller: &Caller,
        plugin: &Plugin,
        tool: &str,
        args: &Value,
        decision: &Decision,
        options: CallOptions<'_>,
    ) -> Result<Value, CallError> {
        let started = Instant::now();
        let mut report = Report {
            call_id: next_call_id(),
            ..Report::default()
        };
        // Whose budgets the call's model calls are charged to: an agent run's tool
        // calls to the person (or token) that started the run.
        let payer = caller
            .principal
            .on_behalf_of
            .as_deref()
            .unwrap_or(caller.id());
        let audit = self.audit.get();
        let record = audit.map(|audit| Record {
            caller,
            plugin,
            tool,
            args: audit.payload(args),
            duration: Duration::ZERO,
            report: Report::default(),
            decision,
            approved_by: options.approved_by,
        });
        // Written if this future is dropped before the call ends.
        let guard = audit
            .zip(record.as_ref())
            .map(|(audit, record)| record.guard(audit, report.call_id, started));
        let mut ended = None;
        let result = self
            .run(
                payer,
                plugin,
                tool,
                args,
                options.cancel,
                &mut report,
                &mut ended,
            )
            .await;
        // The call ended: its own records will be written.
        guard.into_iter().for_each(|guard| guard.disarm());
        let (Some(audit), Some(record)) = (audit, record) else {
            return result;
        };
        let record = Record {
            duration: started.elapsed(),
            report,
            ..record
        };
        record.append(audit, result, ended).await
    }

    /// Runs the call; its ended instance (the store and the slots it holds) is left in
    /// `ended`, to be torn down while its record is written.
    #[expect(clippy::too_many_arguments, reason = "one call's whole context")]
    async fn run(
        &self,
        principal: &str,
        plugin: &Plugin,
        tool: &str,
        args: &Value,
        cancel: Option<&CancellationToken>,
        report: &mut Report,
        ended: &mut Option<Ended>,
    ) -> Result<Value, CallError> {
        let Some(def) = plugin.tool(tool) else {
            if let Some(withheld) = plugin.withheld(tool) {
                return Err(CallError::Withheld {
                    plugin: plugin.name.to_string(),
                    tool: tool.to_string(),
                    reason: withheld.reason(&plugin.name),
                });
            }
            return Err(CallError::UnknownTool {
                plugin: plugin.name.to_string(),
                tool: tool.to_string(),
                available: plugin.tools.iter().map(|t| t.name.clone()).collect(),
            });
        };
        // A plugin is compiled for the engine of the runtime that loaded it; wasmtime
        // refuses it in another's store, which would read as the guest's trap.
        if !wasmtime::Engine::same(plugin.pre.engine(), &self.engine) {
            return Err(CallError::Internal {
                plugin: plugin.name.to_string(),
                tool: tool.to_string(),
                cause: "the plugin was loaded by another runtime; call it on the runtime that loaded it".into(),
            });
        }
        let params = convert::args_from_json(args, &def.params).map_err(|source| {
            CallError::InvalidArguments {
                plugin: plugin.name.to_string(),
                tool: tool.to_string(),
                source,
            }
        })?;
        let call_id = report.call_id;
        let span = warden_telemetry::tool_span(&plugin.name, tool, call_id);
        let timeout = Duration::from_millis(plugin.limits.timeout_ms);
        let slots = self.acquire_slot(plugin, tool, timeout).await?;
        let deadline = Instant::now() + timeout;
        let mut state =
            CallState::new(plugin, self, call_id, deadline).map_err(|err| CallError::Internal {
                plugin: plugin.name.to_string(),
                tool: tool.to_string(),
                cause: err.into(),
            })?;
        state.models.payer = Some(principal.into());
        let mut store = Store::new(&self.engine, state);
        let run = invoke(plugin, def, &mut store, &params, deadline).instrument(span.clone());
        // The epoch deadline stops guest code; this stops host calls that block, with
        // a little slack so the guest-side deadline reports first.
        let limited = tokio::time::timeout(timeout + EPOCH_TICK * 4, run);
        // Cancelling drops the running call (wasmtime unwinds the guest's stack); the
        // store stays, so the report below is whole.
        let outcome = match cancel {
            None => Some(limited.await),
            Some(cancel) => cancel.run_until_cancelled(limited).await,
        };
        let failed = |limit, detail| CallError::Limit {
            plugin: plugin.name.to_string(),
            tool: tool.to_string(),
            limit,
            detail,
        };
        let result = match outcome {
            None => Err(CallError::Cancelled {
                plugin: plugin.name.to_string(),
                tool: tool.to_string(),
                elapsed_ms: u64::try_from(
                    timeout
                        .saturating_sub(deadline.saturating_duration_since(Instant::now()))
                        .as_millis(),
                )
                .unwrap_or(u64::MAX),
            }),
            Some(Err(_)) => Err(failed(
                "timeout",
                format!("the call ran past {} ms", plugin.limits.timeout_ms),
            )),
            Some(Ok(Err(err))) => Err(classify(plugin, tool, &store, err)),
            Some(Ok(Ok(val))) => Ok(val),
        };
        warden_telemetry::record_error(&span, result.as_ref().err().map(CallError::code));
        report.gather(plugin, &mut store);
        *ended = Some(Ended {
            _store: store,
            _slots: slots,
        });
        let log = report.log_lines;
        if log.1 > 0 {
            tracing::warn!(
                plugin = %plugin.name,
                tool,
                call = call_id,
                written = log.0,
                dropped = log.1,
                "the call wrote more log lines than a call may; the rest were dropped"
            );
        }
        // Every refusal at the host boundary is on the record, whether or not the tool
        // then fails.
        let denials = report.denials.clone();
        for used in &report.net {
            tracing::info!(
                plugin = %plugin.name,
                tool,
                call = call_id,
                method = used.method,
                url = used.url,
                address = ?used.address,
                status = ?used.status,
                bytes = used.bytes,
                secrets = ?used.secrets,
                "outbound request"
            );
        }
        // A result (or a tool's error) too large to keep is refused before its JSON is
        // built, which takes several times the memory of the lifted value.
        let limit = plugin.limits.output_bytes();
        let too_large = |what: &str| {
            failed(
                "output",
                format!(
                    "{what} is more than {limit} bytes, the limit is {} KiB (max_output_kb)",
                    plugin.limits.max_output_kb
                ),
            )
        };
        if let Ok(Some(val)) = &result
            && convert::json_size_at_most(val, limit).is_none()
        {
            return Err(match val {
                Val::Result(Err(_)) if def.is_fallible() => too_large("the tool's error"),
                _ => too_large("the result"),
            });
        }
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
        let size = json_size(&value);
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

/// A call's instance once the call has ended: dropping it tears the instance down
/// (the pool's slot reset), then frees its slots, in this order.
pub(super) struct Ended {
    _store: Store<CallState>,
    _slots: Slots,
}

impl Report {
    /// Takes what the call did from its `store` once it has ended: fuel, peak memory,
    /// log lines, and every use and refusal at the host boundary.
    fn gather(&mut self, plugin: &Plugin, store: &mut Store<CallState>) {
        self.fuel_used = match plugin.limits.fuel {
            0 => u64::MAX - store.get_fuel().unwrap_or(u64::MAX),
            fuel => fuel - store.get_fuel().unwrap_or(fuel).min(fuel),
        };
        let state = store.data_mut();
        self.memory_peak = state.limits.peak_memory;
        self.log_lines = (state.log.written, state.log.dropped);
        self.denials = state.take_denials();
        self.net = state.take_net_uses();
        self.memory = std::mem::take(&mut state.memory_uses);
        self.models = std::mem::take(&mut state.models.uses);
        self.files = std::mem::take(&mut state.files);
    }
}

/// Puts what a guest did at the host boundary during a call that is not a tool call
/// (an agent's `step`) on the audit record, once the call has ended, whatever its
/// outcome: one `model.call` per model call, one `capability.use` per other use, one
/// `capability.denied` per refusal, as a tool call's are written
/// ([`record::host_events`]). Each record names `caller`, `plugin`, `export` (as its
/// tool), the call's id and carries `fields` (a run's id and step). The uses are taken
/// from `store`; the records are durable when this returns. Without an audit log
/// nothing is written.
pub async fn record_host_uses(
    runtime: &Runtime,
    caller: &Caller,
    plugin: &Plugin,
    export: &str,
    store: &mut Store<CallState>,
    fields: &[(&str, Value)],
) -> Result<(), RecordError> {
    let mut report = Report {
        call_id: store.data().call_id,
        ..Report::default()
    };
    report.gather(plugin, store);
    let Some(audit) = runtime.audit() else {
        return Ok(());
    };
    let base = |kind: &str| {
        let mut event = warden_audit::Event::new(kind, caller.id())
            .plugin(plugin.name.to_string())
            .tool(export)
            .field("call", report.call_id)
            .field("via", caller.via.as_str());
        if let Some(on_behalf_of) = &caller.principal.on_behalf_of {
            event = event.field("on_behalf_of", on_behalf_of.as_str());
        }
        for (name, value) in fields {
            event = event.field(*name, value.clone());
        }
        event
    };
    let mut events = Vec::new();
    record::host_events(&report, &base, &mut events);
    if events.is_empty() {
        return Ok(());
    }
    audit
        .append_all(events)
        .await
        .map(drop)
        .map_err(|err| RecordError::Append(err.into()))
}

async fn invoke(
    plugin: &Plugin,
    tool: &Tool,
    store: &mut Store<CallState>,
    params: &[Val],
    deadline: Instant,
) -> wasmtime::Result<Option<Val>> {
    arm(store, plugin, deadline)?;
    let instance = plugin.pre.instantiate_async(&mut *store).await?;
    let func = instance.get_func(&mut *store, tool.export).ok_or_else(|| {
        wasmtime::format_err!("export {} is missing from the instance", tool.function)
    })?;
    let mut results = vec![Val::Bool(false); usize::from(tool.result.is_some())];
    func.call_async(&mut *store, params, &mut results).await?;
    Ok(results.pop())
}

/// Applies `plugin`'s per-call limits to a fresh `store`: memory (the limiter), fuel,
/// and the wall-clock `deadline`.
pub fn arm(
    store: &mut Store<CallState>,
    plugin: &Plugin,
    deadline: Instant,
) -> wasmtime::Result<()> {
    store.limiter(|s| &mut s.limits);
    store.set_hostcall_fuel(hostcall_data(plugin));
    // Fuel is always metered (the engine is configured once); without a `fuel` limit
    // a call gets more than it could burn before its deadline.
    store.set_fuel(match plugin.limits.fuel {
        0 => u64::MAX,
        fuel => fuel,
    })?;
    // Guest code yields to the executor every few epoch ticks, so a long call never
    // holds a worker thread, and traps once its wall-clock deadline has passed.
    store.set_epoch_deadline(YIELD_EVERY_TICKS);
    store.epoch_deadline_callback(move |_| {
        Ok(if Instant::now() >= deadline {
            UpdateDeadline::Interrupt
        } else {
            // tokio's own yield lets timers and I/O run before this task continues.
            UpdateDeadline::YieldCustom(YIELD_EVERY_TICKS, Box::pin(tokio::task::yield_now()))
        })
    });
    Ok(())
}

/// The least data a guest may hand the host at once, whatever `max_output_kb` says:
/// room for a host import's largest arguments (a memory value, a chunk of a body).
const HOST_DATA_FLOOR: usize = 16 << 20;

/// wasmtime's own bound, which Warden never raises.
const HOST_DATA_CEILING: usize = 128 << 20;

/// The most data (in bytes of host memory) a guest may hand the host at once: its
/// result, or the arguments of one call to a host import, counted as wasmtime lifts
/// them (`Store::set_hostcall_fuel`; a value of a list lifted dynamically, as a
/// result is, costs a whole `Val`). Enough for any result whose JSON fits
/// `max_output_kb`, so a result far past it is refused while it is lifted, before
/// the host holds it, rather than after.
fn hostcall_data(plugin: &Plugin) -> usize {
    plugin
        .limits
        .output_bytes()
        .saturating_mul(size_of::<Val>())
        .clamp(HOST_DATA_FLOOR, HOST_DATA_CEILING)
}

/// The [`CallError`] of a call (or an agent's step) that ended in `err`: a limit by
/// name, else the trap with the guest's stderr.
pub fn classify(
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
    if err.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::OutOfFuel) {
        return limit(
            "fuel",
            format!(
                "the call used all of its {} units of fuel (fuel)",
                plugin.limits.fuel
            ),
        );
    }
    if table_full(&err) {
        return limit(
            "handles",
            format!(
                "the guest held more than {MAX_HANDLES} handles at once (open files, streams, pollables, HTTP fields…); a tool must drop each handle it is done with"
            ),
        );
    }
    if let Some(pool) = err
        .chain()
        .find_map(|e| e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>())
    {
        return limit(
            "concurrency",
            format!(
                "the host's pool of instances is full ({pool}): too many calls of plugins with several memories or instances at once; retry when fewer run"
            ),
        );
    }
    if let Some(fields) = fields_too_large(&err) {
        return limit(
            "http-fields",
            format!(
                "the guest's HTTP fields went past wasi:http's limit ({fields}: 128 KiB of names and values in one request or response); send fewer or smaller headers"
            ),
        );
    }
    let message = format!("{err:#}");
    // wasmtime's words when a guest's data to the host went past `hostcall_data`.
    if message.contains("fuel allocated for hostcalls has been exhausted") {
        return limit(
            "host-data",
            format!(
                "the guest handed the host more than {} MiB at once (its result, or the arguments of one call to a host import); the bound follows max_output_kb ({} KiB): return less, or in parts",
                hostcall_data(plugin) >> 20,
                plugin.limits.max_output_kb
            ),
        );
    }
    if message.contains("forcing trap when growing memory") {
        return limit(
            "memory",
            format!(
                "the guest asked for more than {} MiB of memory, all its memories together (memory_mb)",
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

/// Whether `err` is the resource table refusing one handle more ([`MAX_HANDLES`]).
fn table_full(err: &wasmtime::Error) -> bool {
    // The chain starts with `err` itself.
    err.chain()
        .any(|e| matches!(e.downcast_ref(), Some(ResourceTableError::Full)))
}

/// wasi:http's words when `err` is a guest's fields going past its size limit (which
/// it traps on rather than answer `size-exceeded`).
fn fields_too_large(err: &wasmtime::Error) -> Option<String> {
    use wasmtime_wasi_http::FieldMapError;
    let too_large = |e: &FieldMapError| {
        matches!(
            e,
            FieldMapError::TotalSizeTooBig | FieldMapError::TooManyFields
        )
        .then(|| e.to_string())
    };
    err.chain()
        .find_map(|e| e.downcast_ref::<FieldMapError>().and_then(too_large))
}

/// The size of `value` as compact JSON, counted without building the text.
fn json_size(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` into a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}
