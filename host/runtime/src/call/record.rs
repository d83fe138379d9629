//! A call's audit records: what it did at the host boundary, and how it ended.
//!
//! One `tool.call` record per call (arguments and result as digests, outcome,
//! duration, fuel, peak memory, log lines), preceded by one record per HTTP request
//! (`capability.use`), per refusal (`capability.denied`) and for a limit hit
//! (`limit.hit`), all carrying the call's id. They are on disk before the caller sees
//! the result.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Ended;
use crate::capabilities::files::FileUses;
use crate::capabilities::memory::MemoryUses;
use crate::capabilities::models::ModelUse;
use crate::capabilities::net::NetUse;
use crate::denial::Denial;
use crate::error::{BoxError, CallError, Chain, RecordError, chain};
use crate::gate::Caller;
use crate::plugin::Plugin;
use warden_audit::{Audit, AuditError, Event, Outcome, Pending};
use warden_policy::Decision;

/// What the call did, gathered while it ran.
#[derive(Default)]
pub(super) struct Report {
    pub(super) call_id: u64,
    pub(super) fuel_used: u64,
    pub(super) memory_peak: usize,
    /// Log lines (written, dropped).
    pub(super) log_lines: (u32, u32),
    pub(super) net: Vec<NetUse>,
    pub(super) memory: MemoryUses,
    pub(super) models: Vec<ModelUse>,
    pub(super) files: FileUses,
    /// Every capability use the host refused, whether or not the call then failed.
    pub(super) denials: Vec<Denial>,
}

/// One finished call, ready to be recorded.
pub(super) struct Record<'a> {
    pub(super) caller: &'a Caller,
    pub(super) plugin: &'a Plugin,
    pub(super) tool: &'a str,
    /// The arguments as the record keeps them (a digest unless payloads are kept).
    pub(super) args: Value,
    pub(super) duration: Duration,
    pub(super) report: Report,
    /// The access policy's decision.
    pub(super) decision: &'a Decision,
    /// Who approved the call, for a held action.
    pub(super) approved_by: Option<&'a str>,
}

/// Writes a `cancelled` `tool.call` record if the call's future is dropped before
/// the call ends (its caller went away): the record is written whatever happens to
/// the caller. It builds the record only then, from the call's [`Record`]: a call
/// that ends pays nothing for it.
pub(super) struct Guard<'a> {
    record: &'a Record<'a>,
    audit: &'a Audit,
    call_id: u64,
    started: Instant,
    armed: bool,
}

impl Guard<'_> {
    /// The call ended: its own records will be written.
    pub(super) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let event = self
            .record
            .tool_call(self.call_id)
            .field("arguments", self.record.args.clone())
            .outcome(Outcome::Error)
            .field("duration_us", duration_us(self.started.elapsed()))
            .field(
                "error",
                json!({
                    "code": "cancelled",
                    "message": "the caller went away before the call ended; the call was stopped",
                }),
            );
        let audit = self.audit.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if let Err(err) = audit.append(event).await {
                        tracing::error!("recording a cancelled call: {}", chain(err));
                    }
                });
            }
            Err(_) => {
                if let Err(err) = audit.append_blocking(event) {
                    tracing::error!("recording a cancelled call: {}", chain(err));
                }
            }
        }
    }
}

impl Record<'_> {
    /// The guard that records this call as cancelled if it is dropped unfinished.
    pub(super) fn guard<'g>(
        &'g self,
        audit: &'g Audit,
        call_id: u64,
        started: Instant,
    ) -> Guard<'g> {
        Guard {
            record: self,
            audit,
            call_id,
            started,
            armed: true,
        }
    }

    /// The `tool.call` event's common part: who (with its roles and the name of the
    /// token it presented), what, through which entry point, and the decision that let
    /// it through.
    fn tool_call(&self, call_id: u64) -> Event {
        let mut event = Event::new("tool.call", self.caller.id())
            .plugin(self.plugin.name.to_string())
            .tool(self.tool)
            .field("call", call_id)
            .field("via", self.caller.via.as_str())
            .field("digest", self.plugin.digest.clone())
            .field("policy", json!(self.decision))
            .field("roles", self.caller.principal.roles.clone());
        if let Some(token) = &self.caller.token {
            event = event.field("token", token.as_str());
        }
        if let Some(on_behalf_of) = &self.caller.principal.on_behalf_of {
            event = event.field("on_behalf_of", on_behalf_of.as_str());
        }
        if let Some(approver) = self.approved_by {
            event = event.field("approved_by", approver);
        }
        event
    }

    /// Appends the call's records and hands back `result` once they are durable, or a
    /// failure naming the audit log if they could not be written.
    pub(super) async fn append(
        self,
        audit: &Audit,
        result: Result<Value, CallError>,
        ended: Option<Ended>,
    ) -> Result<Value, CallError> {
        let events = self.events(audit, &result);
        let written = match audit.submit_all(events) {
            Ok(pending) => {
                if pending.iter().all(Pending::is_written) {
                    // Journaled: the answer goes at once, and the teardown after it.
                    tear_down_later(ended);
                } else {
                    // Torn down while the writer commits the records.
                    drop(ended);
                }
                wait(pending).await
            }
            Err(err) => Err(err),
        };
        match written {
            Ok(()) => result,
            Err(err) => {
                let err: BoxError = err.into();
                tracing::error!(
                    plugin = %self.plugin.name,
                    tool = self.tool,
                    "the call's audit record could not be written: {}",
                    Chain(&*err)
                );
                Err(CallError::Internal {
                    plugin: self.plugin.name.to_string(),
                    tool: self.tool.to_string(),
                    cause: RecordError::Call(err).into(),
                })
            }
        }
    }

    fn event(&self, kind: &str) -> Event {
        Event::new(kind, self.caller.id())
            .plugin(self.plugin.name.to_string())
            .tool(self.tool)
            .field("call", self.report.call_id)
    }

    fn events(&self, audit: &Audit, result: &Result<Value, CallError>) -> Vec<Event> {
        let mut events = Vec::with_capacity(1 + self.report.net.len());
        host_events(&self.report, &|kind| self.event(kind), &mut events);
        let outcome = match result {
            Ok(_) => Outcome::Ok,
            Err(CallError::Denied { .. }) => Outcome::Denied,
            Err(_) => Outcome::Error,
        };
        if let Err(CallError::Limit { limit, detail, .. }) = result {
            events.push(
                self.event("limit.hit")
                    .outcome(Outcome::Error)
                    .field("limit", *limit)
                    .field("detail", detail.clone()),
            );
        }
        let (written, dropped) = self.report.log_lines;
        let call = self
            .tool_call(self.report.call_id)
            .outcome(outcome)
            .field("arguments", self.args.clone())
            .field("duration_us", duration_us(self.duration))
            .field("fuel_used", self.report.fuel_used)
            .field("memory_peak_bytes", self.report.memory_peak)
            .field("log_lines", written)
            .field("log_dropped", dropped);
        let call = match result {
            Ok(value) => call.field("result", audit.payload(value)),
            // The tool's own error is its output: kept as a digest like a result.
            Err(CallError::ToolError { error, .. }) => call.field(
                "error",
                json!({ "code": "tool-error", "payload": audit.payload(error) }),
            ),
            Err(err) => call.field(
                "error",
                json!({ "code": err.code(), "message": err.to_string() }),
            ),
        };
        events.push(call);
        events
    }
}

/// The records of what a guest did at the host boundary during one call (a tool call,
/// an agent's step), in `report`: one `capability.use` per HTTP request, file opened,
/// change to the file system, environment read and memory operation, one `model.call` per model call, one
/// `capability.denied` per refusal (whether or not the call then failed). `base` starts
/// each record of a kind with who, what and which call.
pub(super) fn host_events(report: &Report, base: &dyn Fn(&str) -> Event, events: &mut Vec<Event>) {
    for used in &report.net {
        let mut event = base("capability.use")
            .outcome(Outcome::Ok)
            .field("capability", "net")
            .field("method", used.method.clone())
            .field("url", used.url.clone())
            .field("bytes", used.bytes);
        if let Some(address) = used.address {
            event = event.field("address", address.to_string());
        }
        if let Some(status) = used.status {
            event = event.field("status", status);
        }
        if !used.secrets.is_empty() {
            // The header names only; the values never leave the connector.
            event = event.field("secrets_injected", json!(used.secrets));
        }
        events.push(event);
    }
    file_events(&report.files, base, events);
    for used in &report.memory.uses {
        events.push(
            base("capability.use")
                .outcome(Outcome::Ok)
                .field("capability", "memory")
                .field("op", used.op)
                .field("namespace", used.namespace.clone())
                .field("target", used.target.clone())
                .field("bytes", used.bytes),
        );
    }
    if report.memory.unrecorded > 0 {
        events.push(
            base("capability.use")
                .outcome(Outcome::Ok)
                .field("capability", "memory")
                .field("unrecorded", report.memory.unrecorded),
        );
    }
    for used in &report.models {
        events.push(model_event(base("model.call"), used));
    }
    for denial in &report.denials {
        events.push(
            base("capability.denied")
                .outcome(Outcome::Denied)
                .field("capability", denial.capability)
                .field("target", denial.target.clone())
                .field("reason", denial.reason.clone()),
        );
    }
}

/// `event` (a `model.call` record's start) with what the model call `used`: route,
/// target, tokens, cost, and its outcome.
pub(super) fn model_event(event: Event, used: &ModelUse) -> Event {
    let mut event = event
        .outcome(if used.outcome == "ok" {
            Outcome::Ok
        } else {
            Outcome::Error
        })
        .field("route", used.route.clone())
        .field("input_tokens", used.tokens.0)
        .field("output_tokens", used.tokens.1)
        .field("cost", used.cost);
    if let Some(target) = &used.target {
        event = event.field("target", target.clone());
    }
    if used.outcome != "ok" {
        event = event.field("error", used.outcome.clone());
    }
    event
}

/// One record per file opened or change made to the file system (a denial when the
/// grant refused it), one for a read of the environment (the names only), one counting
/// the opens and changes past the cap.
fn file_events(files: &FileUses, base: &dyn Fn(&str) -> Event, events: &mut Vec<Event>) {
    if let Some(names) = &files.env_read {
        events.push(
            base("capability.use")
                .outcome(Outcome::Ok)
                .field("capability", "env")
                .field("op", "read")
                .field("names", json!(names)),
        );
    }
    for used in &files.uses {
        let mut event = match (used.error, &used.denied) {
            (None, _) => base("capability.use").outcome(Outcome::Ok),
            (Some(error), Some(reason)) => base("capability.denied")
                .outcome(Outcome::Denied)
                .field("target", used.path.clone())
                .field("reason", reason.clone())
                .field("error", error),
            (Some(error), None) => base("capability.use")
                .outcome(Outcome::Error)
                .field("error", error),
        };
        event = event
            .field("capability", "fs")
            .field("op", used.op)
            .field("path", used.path.clone());
        if let Some(to) = &used.to {
            let key = if used.op == "symlink" {
                "points_to"
            } else {
                "to"
            };
            event = event.field(key, to.clone());
        }
        if let Some(mode) = &used.mode {
            event = event.field("mode", mode.clone());
        }
        events.push(event);
    }
    if files.unrecorded > 0 {
        events.push(
            base("capability.use")
                .outcome(Outcome::Ok)
                .field("capability", "fs")
                .field("unrecorded", files.unrecorded),
        );
    }
}

fn duration_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Tears a call's ended instance down off the caller's path, once its records are
/// journaled: in a task that runs after the caller's answer is sent. Its slots are
/// freed with it: a call waiting for one waits that much longer, as for any call still
/// ending. Outside a runtime, at once.
///
/// On a multi-threaded runtime the task spawned from a worker waits in that worker's
/// next-task slot, which runs as soon as the current task (the connection that sends
/// the answer) yields, on the same core. Yielding in it as well would put it on the
/// shared queue and wake the other worker to take it: a cross-core wake per call (an
/// `eventfd` write, 3 % of an HTTP call's server time here). On a current-thread
/// runtime (`warden mcp`) the spawned task is queued behind the tasks already ready,
/// which may not include the one that writes the answer yet, so it yields once first.
fn tear_down_later(ended: Option<Ended>) {
    let Some(ended) = ended else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        drop(ended);
        return;
    };
    match runtime.runtime_flavor() {
        tokio::runtime::RuntimeFlavor::CurrentThread => {
            runtime.spawn(async move {
                tokio::task::yield_now().await;
                drop(ended);
            });
        }
        _ => {
            runtime.spawn(async move { drop(ended) });
        }
    }
}

/// Waits for each of `pending`, in order.
async fn wait(pending: Vec<Pending>) -> Result<(), AuditError> {
    for pending in pending {
        pending.wait().await?;
    }
    Ok(())
}
