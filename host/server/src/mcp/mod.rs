//! Warden's MCP server: every tool of every loaded plugin as an MCP tool, with the
//! official Rust SDK (`rmcp`).
//!
//! - [`names`]: the MCP name of a tool (`<plugin>__<tool>`, `.` as `_`) and back;
//! - [`source`]: [`ToolSource`], where the plugins come from and who may call what
//!   (the registry of `serve` implements it; [`FixedTools`] is what `warden mcp` uses);
//! - `handler`: `tools/list` and `tools/call` over [`Runtime::call_as`];
//! - [`holds`]: calls the access policy holds for a person, asked of the client as
//!   MCP asks for input, completed once approved;
//! - [`tasks`]: long calls as MCP tasks, for clients of the tasks extension;
//! - [`http`]: the Streamable HTTP transport for `/mcp`, with `Origin` checks and the
//!   principal taken from the request;
//! - `direct`: a plain 2026-07-28 `tools/call` over HTTP answered in its request's
//!   own task, without rmcp's per-request service.
//!
//! A tool's failure (its `err` value, a trap, a limit, a denied capability, arguments
//! that do not fit) is a tool result with `isError: true` whose text is the error's
//! JSON (`CallError::to_json`), so the model sees it; an unknown tool is a protocol
//! error (invalid params). Every call goes through [`Runtime::call_as`], so it is on
//! the audit record (when the runtime has a log) before the client sees its result.
//!
//! This module touches the runtime only through `call_as` and the plugins only
//! through [`ToolSource`].

use std::sync::{Arc, Mutex, OnceLock};

use rmcp::service::{Peer, RoleServer, SubscriptionSink};

mod direct;
mod handler;
pub mod holds;
pub mod http;
mod lines;
pub mod names;
mod plain;
pub mod source;
mod stdio;
pub mod tasks;

pub use self::handler::Handler;
pub use self::holds::Holds;
pub use self::http::{Authorizer, HttpOptions, Principal};
pub use self::source::{FixedTools, ToolSource};
use crate::error::ServeError;
use crate::metrics::Metrics;
use serde_json::Value;
use warden_runtime::error::CallError;
use warden_runtime::{CallOptions, Caller, Plugin, Runtime};

/// An MCP server over a runtime and a [`ToolSource`]; cheap to clone, one for all
/// transports and sessions, so [`Mcp::tools_changed`] reaches every connected client.
#[derive(Clone)]
pub struct Mcp {
    shared: Arc<Shared>,
}

struct Shared {
    runtime: Arc<Runtime>,
    source: Arc<dyn ToolSource>,
    /// Where held calls wait for a person; without it they are refused.
    holds: Option<Holds>,
    /// Long calls running as MCP tasks.
    tasks: tasks::Tasks,
    /// Clients that finished `initialize`, told when the tools change.
    peers: Mutex<Vec<Peer<RoleServer>>>,
    /// Open `subscriptions/listen` requests (2026-07-28), told when the tools change,
    /// by a key of their own.
    sinks: Mutex<Vec<(u64, SubscriptionSink)>>,
    /// The tokio runtime the first client connected on.
    tokio: OnceLock<tokio::runtime::Handle>,
    /// The server's metrics, where calls are counted (over HTTP, beside the REST
    /// calls; `warden mcp` has none).
    metrics: OnceLock<Arc<Metrics>>,
}

impl Mcp {
    /// A server that calls tools of `source` in `runtime`.
    pub fn new(runtime: Arc<Runtime>, source: Arc<dyn ToolSource>) -> Self {
        Self::with_holds(runtime, source, None)
    }

    /// A server that calls tools of `source` in `runtime`, and holds a call the
    /// access policy holds for a person in `holds` (see [`holds`]).
    pub fn with_holds(
        runtime: Arc<Runtime>,
        source: Arc<dyn ToolSource>,
        holds: Option<Holds>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                runtime,
                source,
                holds,
                tasks: tasks::Tasks::default(),
                peers: Mutex::default(),
                sinks: Mutex::default(),
                tokio: OnceLock::new(),
                metrics: OnceLock::new(),
            }),
        }
    }

    /// Counts every call from now on in `metrics` (`warden_tool_calls_total` and the
    /// rest, as the REST route counts its calls). Set once; later calls change nothing.
    pub fn count_in(&self, metrics: Arc<Metrics>) {
        let _ = self.shared.metrics.set(metrics);
    }

    /// The handler for one client connection on behalf of `principal` (for a
    /// transport of your own; `serve_stdio` and [`Mcp::http_router`] make theirs).
    pub fn handler(&self, caller: Caller) -> Handler {
        Handler::new(self.shared.clone(), Some(caller))
    }

    /// Serves one client over stdin and stdout on behalf of `principal` until stdin
    /// closes, then waits for its calls in flight (cancelled when it went away) to
    /// end. Nothing else may write to stdout meanwhile.
    pub async fn serve_stdio(&self, caller: Caller) -> Result<(), ServeError> {
        use rmcp::ServiceExt as _;
        let handler = self.handler(caller);
        let service = match stdio::pipes() {
            Some((read, write)) => handler.clone().serve(lines::Lines::new(read, write)).await,
            None => {
                let (read, write) = (tokio::io::stdin(), tokio::io::stdout());
                handler.clone().serve(lines::Lines::new(read, write)).await
            }
        }
        .map_err(|err| ServeError::McpInit(err.into()))?;
        service.waiting().await?;
        // The client went away: its calls in flight were cancelled; let them reach
        // the audit record before the process ends.
        handler.drain().await;
        Ok(())
    }

    /// Sends `notifications/tools/list_changed` to every connected client. Call it
    /// after the set of plugins (or a plugin's tools) changed; it returns at once (the
    /// messages are sent by tasks on the current tokio runtime, or on the runtime the
    /// clients connected on).
    pub fn tools_changed(&self) {
        let peers: Vec<Peer<RoleServer>> = {
            let mut peers = self.shared.peers.lock().unwrap_or_else(|e| e.into_inner());
            peers.retain(|p| !p.is_transport_closed());
            peers.clone()
        };
        let sinks: Vec<SubscriptionSink> = {
            let sinks = self.shared.sinks.lock().unwrap_or_else(|e| e.into_inner());
            sinks.iter().map(|(_, sink)| sink.clone()).collect()
        };
        if peers.is_empty() && sinks.is_empty() {
            return;
        }
        let Some(runtime) = tokio::runtime::Handle::try_current()
            .ok()
            .or_else(|| self.shared.tokio.get().cloned())
        else {
            return;
        };
        for peer in peers {
            runtime.spawn(async move {
                if let Err(err) = peer.notify_tool_list_changed().await {
                    tracing::debug!("could not send tools/list_changed: {err}");
                }
            });
        }
        for sink in sinks {
            runtime.spawn(async move {
                if let Err(err) = sink.notify_tool_list_changed().await {
                    tracing::debug!("could not send tools/list_changed on a subscription: {err}");
                }
            });
        }
    }

    /// Clients connected now (that finished `initialize` and have not gone away).
    pub fn clients(&self) -> usize {
        let mut peers = self.shared.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.retain(|p| !p.is_transport_closed());
        peers.len()
    }
}

impl Shared {
    /// Tells `sink` of tool changes until `cancelled` (its `subscriptions/listen`
    /// request ended).
    async fn listen(&self, sink: SubscriptionSink, cancelled: impl Future<Output = ()>) {
        static KEYS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let key = KEYS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.sinks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key, sink));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let _ = self.tokio.set(runtime);
        }
        cancelled.await;
        self.sinks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(k, _)| *k != key);
    }

    fn register(&self, peer: Peer<RoleServer>) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.retain(|p| !p.is_transport_closed());
        peers.push(peer);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let _ = self.tokio.set(runtime);
        }
    }

    /// `tool` of `plugin` called through the gate, counted in the server's metrics if
    /// there are any ([`Metrics::counting`]).
    async fn call(
        &self,
        caller: &Caller,
        plugin: &Plugin,
        tool: &str,
        arguments: &Value,
        options: CallOptions<'_>,
    ) -> Result<Value, CallError> {
        let counting = self
            .metrics
            .get()
            .map(|metrics| metrics.counting(&plugin.name, tool));
        let result = self
            .runtime
            .call_tool(caller, plugin, tool, arguments, options)
            .await;
        if let Some(counting) = counting {
            counting.ended(&result);
        }
        result
    }
}
