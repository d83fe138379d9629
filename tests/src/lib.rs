//! Workspace-level integration tests of Warden, and the guests they run.
//!
//! `build.rs` builds every test guest (`tests/guests/`) and first-party plugin
//! (`plugins/`) for `wasm32-wasip2`, with its WIT docs in a `package-docs` section.

/// Paths of the built guest components: `TYPES`, `COUNTER`, `HOSTILE`, `LOGGER`,
/// `FOREIGN` (test guests) and `FETCH`, `FILES`, `TEXT` (plugins), and `ALL`.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

/// A child process (a `warden serve` or `warden up` a test started), killed and reaped
/// when dropped: a failing assertion leaves no server running behind the test.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
