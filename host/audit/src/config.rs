//! `[audit]` in the operator's `warden.toml`: what records keep.
//!
//! ```toml
//! [audit]
//! keep_content = false     # arguments and results as digests only (the default)
//! checkpoint_every = 1000  # sign the head every this many records (0: at shutdown only)
//! ```
//!
//! [`KEEP_PAYLOADS_ENV`](super::KEEP_PAYLOADS_ENV), when set, overrides `keep_content`
//! (file < environment). Secrets are never written, whatever the setting.

use serde::{Deserialize, Serialize};

use super::AuditOptions;

/// The `[audit]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Keep full arguments and results in records (off: SHA-256 digests and sizes).
    pub keep_content: bool,
    /// Sign a checkpoint of the head every this many records (0: only at shutdown).
    pub checkpoint_every: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        let defaults = AuditOptions::default();
        Self {
            keep_content: defaults.keep_payloads,
            checkpoint_every: defaults.checkpoint_every,
        }
    }
}

impl AuditConfig {
    /// True when nothing differs from the defaults (the table is left out when saved).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The options this table sets; `keep_payloads`, when given, overrides
    /// `keep_content` (the environment's setting, read by the caller).
    pub fn options(&self, keep_payloads: Option<bool>) -> AuditOptions {
        AuditOptions {
            keep_payloads: keep_payloads.unwrap_or(self.keep_content),
            checkpoint_every: self.checkpoint_every,
        }
    }
}
