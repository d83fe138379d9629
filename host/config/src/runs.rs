//! The `[runs]` table of the operator's config.

use serde::{Deserialize, Serialize};

/// `[runs]` of the operator's config.
///
/// ```toml
/// [runs]
/// keep_days = 30     # finished, failed and cancelled runs are removed after this
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunsConfig {
    /// Days an ended run is kept (with its steps and approvals); 0 keeps them forever.
    pub keep_days: u64,
}

impl Default for RunsConfig {
    fn default() -> Self {
        Self { keep_days: 30 }
    }
}

impl RunsConfig {
    /// True when every setting is at its default.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}
