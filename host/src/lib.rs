//! Warden: a host that runs AI tools as sandboxed WebAssembly components.
//!
//! Every tool is a function exported by a WASI 0.2 component. The host gives each
//! plugin exactly the capabilities granted to it (none by default), runs every call in
//! a fresh instance under limits, and maps JSON arguments and results to component
//! values by the tool's WIT types.
//!
//! The modules, from the outside in:
//! - [`home`]: the home directory (installed plugins, grants, compile cache),
//!   [`manifest`] (what an author requests) and [`grant`] (what an operator allows);
//!   [`wassette`] imports a Wassette `policy.yaml` as a grant;
//! - [`engine`]: the wasmtime engine, linker and epoch ticker ([`Runtime`]);
//! - [`cache`]: compiled components on disk, integrity-checked;
//! - [`plugin`]: loading a component, [`tools`] derived from its exports, [`docs`];
//! - [`call`]: one call in a fresh store; [`convert`] and [`schema`] for JSON;
//! - [`state`], [`log`], [`net`]: what a call's sandbox can reach;
//! - [`error`], [`denial`], [`limits`]: failures, refusals and limits;
//! - [`audit`]: the audit log (durable, hash-chained, signed checkpoints);
//! - [`mcp`]: the MCP server (stdio and Streamable HTTP) over every loaded plugin;
//! - [`runs`]: durable agent runs, step by step, and the approvals queue.

pub mod audit;
pub mod bindings;
pub mod boundary;
pub mod bundled;
pub mod cache;
pub mod call;
pub mod changes;
pub mod convert;
pub mod denial;
pub mod docs;
pub mod engine;
pub mod error;
pub mod grant;
pub mod home;
pub mod inspect;
mod limiter;
pub mod limits;
pub mod log;
pub mod manifest;
pub mod mcp;
pub mod memory;
pub mod models;
pub mod net;
pub mod plugin;
pub mod policy;
pub mod runs;
pub mod schema;
pub mod serve;
pub mod state;
pub mod telemetry;
pub mod tools;
pub mod wassette;
pub mod wit;

pub use engine::Runtime;
pub use error::{CallError, LoadError};
pub use plugin::{Plugin, PluginSource};
