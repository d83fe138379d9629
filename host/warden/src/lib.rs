//! Warden: a host that runs AI tools as sandboxed WebAssembly components.
//!
//! This crate is the `warden` command and the library an embedder uses: it re-exports
//! the crates of the trusted core by concern (see ARCHITECTURE.md), under the names
//! the modules had before they were crates.
//!
//! - [`config`] (manifest, grant, limits, the home's `warden.toml`), [`policy`],
//!   [`audit`], [`models`], [`memory`];
//! - the runtime: [`engine`], [`plugin`], [`call`], [`home`] and the rest;
//! - [`runs`] (durable agent runs), [`serve`] (HTTP API, gateway, MCP), [`mcp`];
//! - [`bundled`]: the first-party plugins built into the binary.

pub mod bundled;
pub mod exit;

pub use warden_audit as audit;
pub use warden_config as config;
pub use warden_config::{grant, limits, manifest, wassette};
pub use warden_memory as memory;
pub use warden_models as models;
pub use warden_net as net;
pub use warden_policy as policy;
pub use warden_runs as runs;
pub use warden_runtime::{
    CallError, CallOptions, Caller, LoadError, Plugin, PluginSource, Refusal, Runtime, Via,
    bindings, cache, call, capabilities, changes, compile, convert, denial, docs, engine, error,
    gate, home, inspect, pins, plugin, schema, state, tools, wit,
};
pub use warden_server as serve;
pub use warden_server::mcp;
pub use warden_telemetry as telemetry;
