//! Resource limits applied to every call of a plugin.
//!
//! The defaults hold for a plugin that has no grant. They are deliberately modest: a
//! call gets enough memory and time for ordinary tool work and no more.

use serde::{Deserialize, Serialize};

use crate::error::LimitsError;

/// How many instances may be live at once in one runtime (the pooling allocator's
/// size): the ceiling of `max_concurrency`.
pub const MAX_LIVE_INSTANCES: u32 = 256;

/// Per-call limits of a plugin (the `[limits]` table of a grant).
///
/// ```toml
/// [limits]
/// memory_mb = 64
/// timeout_ms = 5000
/// fuel = 0
/// max_output_kb = 1024
/// max_concurrency = 16
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Linear memory of the guest, in MiB, summed over its memories.
    pub memory_mb: u64,
    /// Wall-clock time of one call, in milliseconds (epoch interruption in guest code, a
    /// host-side timeout around everything else).
    pub timeout_ms: u64,
    /// Instructions (wasmtime fuel) one call may execute; 0 means no fuel limit. Unlike
    /// the timeout, the same call runs out of fuel at the same point on every machine.
    pub fuel: u64,
    /// Size of the JSON result of one call, in KiB.
    pub max_output_kb: u64,
    /// Calls of this plugin running at once; more wait up to `timeout_ms`, then fail.
    pub max_concurrency: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mb: 128,
            timeout_ms: 10_000,
            fuel: 0,
            max_output_kb: 1024,
            max_concurrency: 16,
        }
    }
}

impl Limits {
    /// Checks every limit against its range, naming the one that is out.
    pub fn check(&self) -> Result<(), LimitsError> {
        let max_instances = u64::from(MAX_LIVE_INSTANCES);
        let ranges = [
            ("memory_mb", self.memory_mb, 1, 1024),
            ("timeout_ms", self.timeout_ms, 1, 600_000),
            ("max_output_kb", self.max_output_kb, 1, 64 * 1024),
            (
                "max_concurrency",
                u64::from(self.max_concurrency),
                1,
                max_instances,
            ),
        ];
        for (name, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return Err(LimitsError {
                    name,
                    value,
                    min,
                    max,
                });
            }
        }
        Ok(())
    }

    /// Memory limit in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }

    /// Output limit in bytes.
    pub fn output_bytes(&self) -> usize {
        usize::try_from(self.max_output_kb.saturating_mul(1 << 10)).unwrap_or(usize::MAX)
    }
}
