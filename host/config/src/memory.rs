//! The `[memory]` table of the operator's config.

use serde::{Deserialize, Serialize};

/// The `[memory]` table of the operator's config.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// The route documents and queries are embedded through; none: full text only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_route: Option<String>,
}

impl MemoryConfig {
    /// True when nothing is set (the table is left out when saved).
    pub fn is_empty(&self) -> bool {
        self.embedding_route.is_none()
    }
}
