//! Resource limits applied to every call of a plugin.
//!
//! The defaults hold for a plugin that has no grant. They are deliberately modest: a
//! call gets enough memory and time for ordinary tool work and no more.

use serde::{Deserialize, Serialize};

/// Per-call limits of a plugin (the `[limits]` table of a grant).
///
/// ```toml
/// [limits]
/// memory_mb = 64
/// timeout_ms = 5000
/// max_output_kb = 1024
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Linear memory of the guest, in MiB, summed over its memories.
    pub memory_mb: u64,
    /// Wall-clock time of one call, in milliseconds (epoch interruption in guest code, a
    /// host-side timeout around everything else).
    pub timeout_ms: u64,
    /// Size of the JSON result of one call, in KiB.
    pub max_output_kb: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mb: 128,
            timeout_ms: 10_000,
            max_output_kb: 1024,
        }
    }
}

impl Limits {
    /// Memory limit in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }

    /// Output limit in bytes.
    pub fn output_bytes(&self) -> usize {
        usize::try_from(self.max_output_kb.saturating_mul(1 << 10)).unwrap_or(usize::MAX)
    }
}
