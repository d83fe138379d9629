//! The `[runs]` table of the operator's config.

use serde::{Deserialize, Serialize};

/// `[runs]` of the operator's config.
///
/// ```toml
/// [runs]
/// keep_days = 30     # finished, failed and cancelled runs are removed after this
/// lease_ms = 10000   # how long a node holds a run without renewing its lease
/// ```
///
/// A run is driven by one process at a time, the holder of its lease, which renews it
/// every third of `lease_ms` while it drives the run. When the process dies another
/// takes the run over once the lease ran out. The default is 300000 (5 minutes) on one
/// machine, where a process that is gone is seen at once, and 10000 (10 s) with a
/// cluster database (`[storage] url`), whose nodes see each other only through it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunsConfig {
    /// Days an ended run is kept (with its steps and approvals); 0 keeps them forever.
    pub keep_days: u64,
    /// How long a lease on a run lasts without being renewed, in ms (at least 1000);
    /// none: the default for one machine or for a cluster (see above).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<u64>,
}

impl Default for RunsConfig {
    fn default() -> Self {
        Self {
            keep_days: 30,
            lease_ms: None,
        }
    }
}

impl RunsConfig {
    /// True when every setting is at its default.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}
