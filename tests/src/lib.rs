//! Workspace-level integration tests of Warden, and the guests they run.
//!
//! `build.rs` builds every test guest (`tests/guests/`) and first-party plugin
//! (`plugins/`) for `wasm32-wasip2`, with its WIT docs in a `package-docs` section.

/// Paths of the built guest components: `TYPES`, `COUNTER`, `HOSTILE`, `LOGGER`,
/// `FOREIGN` (test guests) and `FETCH`, `FILES`, `TEXT` (plugins), and `ALL`.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}
