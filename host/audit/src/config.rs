//! `[audit]` in the operator's `warden.toml`: what records keep.
//!
//! ```toml
//! [audit]
//! keep_content = false     # arguments and results as digests only (the default)
//! checkpoint_every = 1000  # sign the head every this many records (0: at shutdown only)
//! durability = "full"      # or "process"; unset: each command's default
//! ```
//!
//! `WARDEN_AUDIT_KEEP_PAYLOADS`, when set, overrides `keep_content`, and
//! `WARDEN_AUDIT_DURABILITY` overrides `durability` (file < environment). Secrets are
//! never written, whatever the setting. See [`Durability`] for what the two
//! durabilities promise; `warden mcp` (stdio) defaults to `process`, every other
//! command to `full`.

use serde::{Deserialize, Serialize};

use super::{AuditOptions, Durability};

/// The `[audit]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Keep full arguments and results in records (off: SHA-256 digests and sizes).
    pub keep_content: bool,
    /// Sign a checkpoint of the head every this many records (0: only at shutdown).
    pub checkpoint_every: u64,
    /// Synced before each answer (`full`) or within 10 ms of it (`process`); unset:
    /// the command's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub durability: Option<Durability>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        let defaults = AuditOptions::default();
        Self {
            keep_content: defaults.keep_payloads,
            checkpoint_every: defaults.checkpoint_every,
            durability: None,
        }
    }
}

impl AuditConfig {
    /// True when nothing differs from the defaults (the table is left out when saved).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The options this table sets; `keep_payloads` and `durability`, when given,
    /// override `keep_content` and `durability` (the environment's settings, read by
    /// the caller); `default` is the command's durability where neither sets one.
    pub fn options(
        &self,
        keep_payloads: Option<bool>,
        durability: Option<Durability>,
        default: Durability,
    ) -> AuditOptions {
        AuditOptions {
            keep_payloads: keep_payloads.unwrap_or(self.keep_content),
            checkpoint_every: self.checkpoint_every,
            durability: durability.or(self.durability).unwrap_or(default),
        }
    }
}
