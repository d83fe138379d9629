//! `[storage]`: where a node keeps its shared state. Without a URL, everything stays in
//! the home's SQLite files; with one, the audit log, memory and model budgets live in
//! that PostgreSQL database, shared by every node pointed at it (a cluster).

use serde::{Deserialize, Serialize};

/// `[storage]` of `warden.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE`; `WARDEN_DATABASE_URL` overrides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Connections each node keeps to the database.
    pub pool_size: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            url: None,
            pool_size: 16,
        }
    }
}

impl StorageConfig {
    /// Whether this is the default (left out when the config is written).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The database URL: `WARDEN_DATABASE_URL` when set and not empty, else `url`.
    pub fn database_url(&self) -> Option<String> {
        crate::env::database_url().or_else(|| self.url.clone())
    }
}
