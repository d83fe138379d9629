//! What a guest can reach through the host, one module per capability. Each has the
//! same shape: the part of the grant it reads, its per-call state, its host
//! implementation (or the wrapper over wasmtime-wasi's), and what it records.
//!
//! - [`files`]: `wasi:filesystem` preopens (opens and changes recorded) and `wasi:cli`
//!   environment;
//! - [`net`]: `wasi:http` through the allow-list, address checks and secrets;
//! - [`memory`]: `warden:host/memory`, by namespace;
//! - [`models`]: `warden:host/models`, by route, within budgets;
//! - [`log`]: `warden:host/log`, bounded;
//! - [`limits`]: memory growth and instance limits of the store.

pub mod files;
pub mod limits;
pub mod log;
pub mod memory;
pub mod models;
pub mod net;
