//! Memory: the host service behind `warden:host/memory`.
//!
//! Namespaces of key-value entries (bytes with a content type, optional TTL) and of
//! documents (text + JSON metadata, full-text search ranked by BM25, with snippets and
//! metadata filters). A plugin reaches only the namespaces its grant's `[memory]`
//! names, with the access it names; a name it was not granted is denied the same way
//! whether or not it exists. Sizes are checked per value and per namespace.
//!
//! Where an embedding route is configured ([`embed`]), documents are embedded on write
//! and search is hybrid ([`hybrid`]: BM25 and vector ranks fused).
//!
//! The storage is behind [`Store`]; the embedded default is [`SqliteMemory`]
//! (`<home>/memory.db`).

pub mod embed;
mod error;
pub mod hybrid;
mod postgres;
mod sqlite;

use std::time::{SystemTime, UNIX_EPOCH};

pub use self::embed::Embedder;
pub use self::error::{BoxError, EmbedError, StoreError};
pub use self::postgres::PgMemory;
pub use self::sqlite::SqliteMemory;
use warden_config::grant::{Access, MemoryGrant};
pub use warden_config::memory::MemoryConfig;

/// A stored value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The bytes.
    pub value: Vec<u8>,
    /// Their media type.
    pub content_type: String,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: Option<u64>,
}

/// One page of keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPage {
    /// Keys in order.
    pub keys: Vec<String>,
    /// The cursor of the next page.
    pub next: Option<String>,
}

/// A document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// Unique in its namespace.
    pub id: String,
    /// Searchable text.
    pub text: String,
    /// A JSON object, as text.
    pub metadata: String,
}

/// A search result.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// The document's id.
    pub id: String,
    /// BM25 relevance, higher is better.
    pub score: f64,
    /// An excerpt, matches in `[` `]`.
    pub snippet: String,
    /// The document's metadata.
    pub metadata: String,
}

/// Where memory is kept. Every method is scoped to one namespace; checks of the grant
/// happen above this trait.
pub trait Store: Send + Sync {
    /// The unexpired entry under `key`.
    fn get(&self, namespace: &str, key: &str, now: u64) -> Result<Option<Entry>, StoreError>;
    /// Stores `entry` under `key`.
    fn set(&self, namespace: &str, key: &str, entry: &Entry) -> Result<(), StoreError>;
    /// Removes `key`.
    fn delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError>;
    /// Keys with `prefix` after `after`, at most `limit`.
    fn list_keys(
        &self,
        namespace: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
        now: u64,
    ) -> Result<KeyPage, StoreError>;
    /// Bytes the namespace holds (keys, values, documents).
    fn used_bytes(&self, namespace: &str, now: u64) -> Result<u64, StoreError>;
    /// Stores a document.
    fn put_document(&self, namespace: &str, doc: &Document) -> Result<(), StoreError>;
    /// The document `id`.
    fn get_document(&self, namespace: &str, id: &str) -> Result<Option<Document>, StoreError>;
    /// Removes the document `id`.
    fn delete_document(&self, namespace: &str, id: &str) -> Result<bool, StoreError>;
    /// Full-text search with metadata equality filters.
    fn search(
        &self,
        namespace: &str,
        query: &str,
        filter: &[(String, serde_json::Value)],
        limit: u32,
    ) -> Result<Vec<Hit>, StoreError>;
    /// Stores the embedding of document `id` made by `target` (`provider/model`); it
    /// goes when the document is deleted or rewritten.
    fn put_vector(
        &self,
        namespace: &str,
        id: &str,
        target: &str,
        vector: &[f32],
    ) -> Result<(), StoreError>;
    /// The documents whose `target` embeddings are most similar to `query` (cosine
    /// similarity above 0, best first).
    fn vector_search(
        &self,
        namespace: &str,
        target: &str,
        query: &[f32],
        filter: &[(String, serde_json::Value)],
        limit: u32,
    ) -> Result<Vec<Hit>, StoreError>;
    /// Every namespace that holds something (for operators).
    fn namespaces(&self) -> Result<Vec<String>, StoreError>;
}

/// Why a memory operation failed (the WIT `error` variant).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    /// Not granted.
    #[error("denied: {0}")]
    Denied(String),
    /// Past a size limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// A bad argument.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The store failed.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<StoreError> for MemoryError {
    fn from(err: StoreError) -> Self {
        Self::Internal(format!("{err:#}"))
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Checks a write of `added` bytes against the namespace's limits.
pub fn check_size(
    store: &dyn Store,
    namespace: &str,
    grant: &MemoryGrant,
    added: usize,
) -> Result<(), MemoryError> {
    let max_value = grant.max_value_kb.saturating_mul(1024);
    if added as u64 > max_value {
        return Err(MemoryError::TooLarge(format!(
            "{added} bytes; namespace {namespace:?} takes values up to {} KiB (max_value_kb)",
            grant.max_value_kb
        )));
    }
    let used = store.used_bytes(namespace, now())?;
    let max_total = grant.max_namespace_mb.saturating_mul(1 << 20);
    if used + added as u64 > max_total {
        return Err(MemoryError::TooLarge(format!(
            "namespace {namespace:?} holds {used} bytes; {added} more would pass {} MiB (max_namespace_mb)",
            grant.max_namespace_mb
        )));
    }
    Ok(())
}

/// Whether `grant` lets a plugin write.
pub fn writable(grant: &MemoryGrant) -> bool {
    grant.access == Access::ReadWrite
}

/// Parses a search filter: a JSON object of scalar values.
pub fn parse_filter(filter: Option<&str>) -> Result<Vec<(String, serde_json::Value)>, MemoryError> {
    let Some(text) = filter.filter(|t| !t.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| MemoryError::Invalid(format!("filter is not JSON: {e}")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(MemoryError::Invalid(
            "filter must be a JSON object, e.g. {\"tag\": \"travel\"}".into(),
        ));
    };
    map.into_iter()
        .map(|(k, v)| {
            if v.is_object() || v.is_array() {
                Err(MemoryError::Invalid(format!(
                    "filter {k:?}: only strings, numbers, booleans and null can be matched"
                )))
            } else {
                Ok((k, v))
            }
        })
        .collect()
}

/// Checks that document metadata is a JSON object; returns it normalised.
pub fn check_metadata(metadata: &str) -> Result<String, MemoryError> {
    let text = if metadata.trim().is_empty() {
        "{}"
    } else {
        metadata
    };
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value.to_string()),
        _ => Err(MemoryError::Invalid(
            "metadata must be a JSON object, e.g. {\"tag\": \"travel\"}".into(),
        )),
    }
}
