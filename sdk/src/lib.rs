//! Rust SDK for Warden plugins.
//!
//! A Warden plugin is a WebAssembly component (WASI 0.2) whose exported functions are
//! tools. This crate gives a Rust plugin what it needs in one dependency:
//!
//! - [`wit_bindgen`], re-exported, so a plugin writes
//!   `warden_sdk::wit_bindgen::generate!` for its own world without depending on
//!   `wit-bindgen` itself;
//! - [`host`]: the bindings of the `warden:host` interfaces (generated once, here, for
//!   the world `warden:plugin/tool@0.1.0`), for a plugin's `generate!` to reuse with
//!   `with: { "warden:host/log@0.1.0": warden_sdk::host::log }`;
//! - [`log`]: typed helpers over `warden:host/log` (`info`, `warn_with`, the [`log!`]
//!   macro, ...);
//! - [`agent`]: agents (`warden:plugin/agent`): the `step` export, typed helpers for
//!   actions, tasks and memos, and [`export_agent!`]; [`agent_loop`]: the ready-made
//!   "model proposes tool calls, the host runs them" loop.
//!
//! See `sdk/README.md` for a five-minute walk through writing a plugin.
//!
//! On a native target the crate compiles (it is a member of the host's workspace), but
//! calling a host import there panics: the imports exist only inside Warden.

pub use wit_bindgen;

pub mod agent;
pub mod agent_loop;
pub mod log;

/// Exports a type implementing [`agent::Guest`] as the component's agent policy.
pub use agent::bindings::export_agent;

/// The generated bindings of the world `warden:plugin/services@0.1.0`.
///
/// Kept in a module of their own so that the crate's public surface stays [`host`] and
/// [`log`].
mod bindings {
    wit_bindgen::generate!({
        world: "warden:plugin/services@0.1.0",
        path: "../wit",
        generate_all,
    });
}

/// Bindings of the `warden:host` interfaces, one module per interface.
///
/// A plugin's own `generate!` reuses these instead of generating its own copies:
///
/// ```ignore
/// warden_sdk::wit_bindgen::generate!({
///     world: "acme:weather/weather",
///     path: ["../wit", "wit"],
///     runtime_path: "warden_sdk::wit_bindgen::rt",
///     with: { "warden:host/log@0.1.0": warden_sdk::host::log },
/// });
/// ```
pub mod host {
    pub use crate::bindings::warden::host::{log, memory, models};
}
