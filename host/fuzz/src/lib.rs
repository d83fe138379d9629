//! The bodies of Warden's fuzz targets: each takes the bytes a fuzzer made and runs
//! them through the host's own code, and panics only when that code panics or breaks a
//! property (what parses writes back the same, what converts comes back the same).
//!
//! `fuzz/` (cargo-fuzz, its own workspace) calls them from libFuzzer; `tests/replay.rs`
//! runs them on stable over every file of `fuzz/corpus/<target>/` and thousands of
//! mutations of those, which is CI's smoke run.
//!
//! - [`wit::json_to_wit`]: arbitrary WIT worlds (wit-smith) as components, and JSON
//!   for their functions through [`warden_runtime::convert`];
//! - [`text::grant`], [`text::manifest`], [`text::config`]: the parsers of
//!   [`warden_config`];
//! - [`net::allow_list`]: allow lists and destinations of [`warden_net`];
//! - [`audit::audit_verify`]: verification of an export by [`warden_audit`];
//! - [`serve::mcp_decode`], [`serve::http_decode`]: requests to `/mcp` and to
//!   `/v1/tools/{plugin}/{tool}`, answered in process by `warden serve`'s router.

pub mod audit;
mod json;
pub mod net;
pub mod serve;
pub mod text;
pub mod wit;

/// A target's body: it takes any bytes, and panics only on a finding.
pub type Target = fn(&[u8]);

/// Every target, by the name of its binary in `fuzz/` and of its corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("json_to_wit", wit::json_to_wit),
    ("grant", text::grant),
    ("manifest", text::manifest),
    ("config", text::config),
    ("allow_list", net::allow_list),
    ("audit_verify", audit::audit_verify),
    ("mcp_decode", serve::mcp_decode),
    ("http_decode", serve::http_decode),
];
