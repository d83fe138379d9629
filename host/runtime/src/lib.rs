//! The Warden runtime: plugins as sandboxed WebAssembly components, called with exactly
//! the capabilities their grants give.
//!
//! - [`engine`]: the wasmtime engine, linker and epoch ticker ([`Runtime`]);
//! - [`cache`]: compiled components on disk, integrity-checked;
//! - [`plugin`]: loading a component, [`tools`] derived from its exports, [`docs`], [`wit`];
//! - [`gate`]: the one path every call takes (policy, grant, run, record);
//! - [`call`]: one call in a fresh store; [`convert`] and [`schema`] for JSON;
//! - [`state`]: a call's store, made of the [`capabilities`] its grant gives;
//! - [`error`], [`denial`]: failures and refusals;
//! - [`home`]: the home directory (installed plugins, grants, compile cache);
//! - [`changes`]: grant changes on the audit record; [`inspect`]: requested vs
//!   imported vs granted.

pub mod bindings;
pub mod cache;
pub mod call;
pub mod capabilities;
pub mod changes;
pub mod compile;
pub mod convert;
pub mod denial;
pub mod docs;
pub mod engine;
pub mod error;
pub mod gate;
pub mod home;
pub mod inspect;
pub mod pins;
pub mod plugin;
pub mod protect;
pub mod schema;
pub mod state;
pub mod tools;
pub mod wit;

pub use engine::Runtime;
pub use error::{CallError, LoadError};
pub use gate::{CallOptions, Caller, Refusal, Via};
pub use plugin::{Plugin, PluginSource};
