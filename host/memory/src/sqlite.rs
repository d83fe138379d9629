//! The embedded memory store: one SQLite file (`<home>/memory.db`, WAL), key-value
//! entries in one table, documents in another with an FTS5 index (BM25 ranking,
//! snippets) kept in step by triggers, and their embeddings (little-endian f32) in a
//! third, searched by brute-force cosine similarity over the namespace (fine for the
//! thousands of documents an embedded store holds; PostgreSQL with pgvector is the way
//! past that).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension as _, params};

use super::error::StoreError;
use super::{Document, Entry, Hit, KeyPage, Store};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    content_type TEXT NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS docs (
    rowid INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    id TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    UNIQUE (namespace, id)
);
CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5(
    text, content = 'docs', content_rowid = 'rowid', tokenize = 'porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS docs_ai AFTER INSERT ON docs BEGIN
    INSERT INTO docs_fts (rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER IF NOT EXISTS docs_ad AFTER DELETE ON docs BEGIN
    INSERT INTO docs_fts (docs_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
CREATE TRIGGER IF NOT EXISTS docs_au AFTER UPDATE ON docs BEGIN
    INSERT INTO docs_fts (docs_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO docs_fts (rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TABLE IF NOT EXISTS doc_vectors (
    doc_rowid INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE TRIGGER IF NOT EXISTS docs_vectors_ad AFTER DELETE ON docs BEGIN
    DELETE FROM doc_vectors WHERE doc_rowid = old.rowid;
END;
CREATE TRIGGER IF NOT EXISTS docs_vectors_au AFTER UPDATE ON docs BEGIN
    DELETE FROM doc_vectors WHERE doc_rowid = old.rowid;
END;
"#;

/// Memory in a SQLite file.
pub struct SqliteMemory {
    conn: Mutex<Connection>,
}

impl SqliteMemory {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        warden_files::database(path).map_err(|source| StoreError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)
            .map_err(|source| StoreError::Schema {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection, with its statements stopped once they have run for
    /// [`SEARCH_BUDGET`]: a search holds the store's lock, so no query may hold it
    /// for long. The bound is lifted when the guard is dropped.
    fn bounded(&self) -> Bounded<'_> {
        let conn = self.conn();
        let started = std::time::Instant::now();
        conn.progress_handler(
            PROGRESS_STEPS,
            Some(move || started.elapsed() > SEARCH_BUDGET),
        );
        Bounded(conn)
    }
}

/// How long one search may run.
pub(crate) const SEARCH_BUDGET: std::time::Duration = std::time::Duration::from_secs(1);

/// SQLite virtual-machine steps between two looks at the clock.
const PROGRESS_STEPS: std::ffi::c_int = 10_000;

/// A connection whose statements are bounded in time ([`SqliteMemory::bounded`]).
struct Bounded<'a>(std::sync::MutexGuard<'a, Connection>);

impl std::ops::Deref for Bounded<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0
    }
}

impl Drop for Bounded<'_> {
    fn drop(&mut self) {
        self.0.progress_handler(0, None::<fn() -> bool>);
    }
}

/// Names a search stopped for running too long.
fn interrupted(err: rusqlite::Error, action: &'static str) -> StoreError {
    if err.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) {
        StoreError::TooLong { action }
    } else {
        query(action)(err)
    }
}

/// Makes a SQLite error a [`StoreError::Query`] of `action`.
fn query(action: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |source| StoreError::Query { action, source }
}

/// FTS5 query from free text: each word a quoted term, so user input is never FTS5
/// syntax (no column filters, no `NEAR`, no parse errors).
fn fts_query(text: &str) -> String {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\""))
        .collect::<Vec<_>>()
        .join(" OR ")
}

impl Store for SqliteMemory {
    fn get(&self, namespace: &str, key: &str, now: u64) -> Result<Option<Entry>, StoreError> {
        let conn = self.conn();
        conn.query_row(
            "SELECT value, content_type, expires_at FROM kv
             WHERE namespace = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
            params![namespace, key, now],
            |row| {
                Ok(Entry {
                    value: row.get(0)?,
                    content_type: row.get(1)?,
                    expires_at: row.get(2)?,
                })
            },
        )
        .optional()
        .map_err(query("reading a memory entry"))
    }

    fn set(&self, namespace: &str, key: &str, entry: &Entry) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO kv (namespace, key, value, content_type, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (namespace, key) DO UPDATE SET
                    value = excluded.value, content_type = excluded.content_type,
                    expires_at = excluded.expires_at",
                params![
                    namespace,
                    key,
                    entry.value,
                    entry.content_type,
                    entry.expires_at
                ],
            )
            .map_err(query("writing a memory entry"))?;
        Ok(())
    }

    fn delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute(
                "DELETE FROM kv WHERE namespace = ?1 AND key = ?2",
                params![namespace, key],
            )
            .map_err(query("deleting a memory entry"))?;
        Ok(n > 0)
    }

    fn list_keys(
        &self,
        namespace: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
        now: u64,
    ) -> Result<KeyPage, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT key FROM kv
             WHERE namespace = ?1 AND substr(key, 1, length(?2)) = ?2 AND key > ?3
               AND (expires_at IS NULL OR expires_at > ?4)
             ORDER BY key LIMIT ?5",
        )?;
        let mut keys = stmt
            .query_map(
                params![namespace, prefix, after.unwrap_or(""), now, limit + 1],
                |row| row.get::<_, String>(0),
            )?
            .collect::<Result<Vec<_>, _>>()
            .map_err(query("listing memory keys"))?;
        let next = if keys.len() > limit as usize {
            keys.truncate(limit as usize);
            keys.last().cloned()
        } else {
            None
        };
        Ok(KeyPage { keys, next })
    }

    fn used_bytes(&self, namespace: &str, now: u64) -> Result<u64, StoreError> {
        let conn = self.conn();
        let kv: i64 = conn.query_row(
            "SELECT COALESCE(SUM(length(key) + length(value)), 0) FROM kv
             WHERE namespace = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
            params![namespace, now],
            |row| row.get(0),
        )?;
        let docs: i64 = conn.query_row(
            "SELECT COALESCE(SUM(length(id) + length(text) + length(metadata)), 0) FROM docs
             WHERE namespace = ?1",
            params![namespace],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(kv + docs).unwrap_or(0))
    }

    fn put_document(&self, namespace: &str, doc: &Document) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO docs (namespace, id, text, metadata) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (namespace, id) DO UPDATE SET
                    text = excluded.text, metadata = excluded.metadata",
                params![namespace, doc.id, doc.text, doc.metadata],
            )
            .map_err(query("writing a memory document"))?;
        Ok(())
    }

    fn get_document(&self, namespace: &str, id: &str) -> Result<Option<Document>, StoreError> {
        self.conn()
            .query_row(
                "SELECT id, text, metadata FROM docs WHERE namespace = ?1 AND id = ?2",
                params![namespace, id],
                |row| {
                    Ok(Document {
                        id: row.get(0)?,
                        text: row.get(1)?,
                        metadata: row.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(query("reading a memory document"))
    }

    fn delete_document(&self, namespace: &str, id: &str) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute(
                "DELETE FROM docs WHERE namespace = ?1 AND id = ?2",
                params![namespace, id],
            )
            .map_err(query("deleting a memory document"))?;
        Ok(n > 0)
    }

    fn search(
        &self,
        namespace: &str,
        query: &str,
        filter: &[(String, serde_json::Value)],
        limit: u32,
    ) -> Result<Vec<Hit>, StoreError> {
        let fts = fts_query(query);
        if fts.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = String::from(
            "SELECT d.id, -bm25(docs_fts) AS score,
                    snippet(docs_fts, 0, '[', ']', '…', 12), d.metadata
             FROM docs_fts JOIN docs d ON d.rowid = docs_fts.rowid
             WHERE docs_fts MATCH ?1 AND d.namespace = ?2",
        );
        let mut values: Vec<rusqlite::types::Value> =
            vec![fts.into(), namespace.to_string().into()];
        push_filter(&mut sql, &mut values, filter);
        values.push(i64::from(limit).into());
        sql.push_str(&format!(" ORDER BY score DESC LIMIT ?{}", values.len()));
        let conn = self.bounded();
        let mut stmt = conn.prepare_cached(&sql)?;
        let hits = stmt
            .query_map(rusqlite::params_from_iter(values), |row| {
                Ok(Hit {
                    id: row.get(0)?,
                    score: row.get(1)?,
                    snippet: row.get(2)?,
                    metadata: row.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| interrupted(e, "searching memory documents"))?;
        Ok(hits)
    }

    fn put_vector(
        &self,
        namespace: &str,
        id: &str,
        target: &str,
        vector: &[f32],
    ) -> Result<(), StoreError> {
        let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO doc_vectors (doc_rowid, target, vector)
                 SELECT rowid, ?3, ?4 FROM docs WHERE namespace = ?1 AND id = ?2",
                params![namespace, id, target, bytes],
            )
            .map_err(query("writing a document's embedding"))?;
        Ok(())
    }

    fn vector_search(
        &self,
        namespace: &str,
        target: &str,
        query: &[f32],
        filter: &[(String, serde_json::Value)],
        limit: u32,
    ) -> Result<Vec<Hit>, StoreError> {
        let mut sql = String::from(
            "SELECT d.id, substr(d.text, 1, 160), d.metadata, v.vector
             FROM doc_vectors v JOIN docs d ON d.rowid = v.doc_rowid
             WHERE d.namespace = ?1 AND v.target = ?2",
        );
        let mut values: Vec<rusqlite::types::Value> =
            vec![namespace.to_string().into(), target.to_string().into()];
        push_filter(&mut sql, &mut values, filter);
        let conn = self.bounded();
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut hits = stmt
            .query_map(rusqlite::params_from_iter(values), |row| {
                let bytes: Vec<u8> = row.get(3)?;
                let vector: Vec<f32> = bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                Ok(Hit {
                    id: row.get(0)?,
                    score: f64::from(super::embed::cosine(query, &vector)),
                    snippet: row.get(1)?,
                    metadata: row.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| interrupted(e, "searching memory embeddings"))?;
        // Orthogonal or opposite is unrelated: not a hit.
        hits.retain(|h| h.score > 0.0);
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(limit as usize);
        Ok(hits)
    }

    fn namespaces(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT namespace FROM kv UNION SELECT namespace FROM docs ORDER BY 1")?;
        let names = stmt
            .query_map([], |row| row.get(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(names)
    }
}

/// Appends `filter`'s metadata equalities to `sql` (documents aliased `d`), binding
/// keys as JSON paths and values as values: nothing a caller sends is spliced in.
fn push_filter(
    sql: &mut String,
    values: &mut Vec<rusqlite::types::Value>,
    filter: &[(String, serde_json::Value)],
) {
    for (key, value) in filter {
        values.push(format!("$.\"{}\"", key.replace('"', "")).into());
        sql.push_str(&format!(
            " AND json_extract(d.metadata, ?{}) IS ?{}",
            values.len(),
            values.len() + 1
        ));
        values.push(match value {
            serde_json::Value::String(s) => s.clone().into(),
            serde_json::Value::Bool(b) => i64::from(*b).into(),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => i.into(),
                None => n.as_f64().unwrap_or(0.0).into(),
            },
            serde_json::Value::Null => rusqlite::types::Value::Null,
            other => other.to_string().into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteMemory) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteMemory::open(&dir.path().join("memory.db")).unwrap();
        (dir, store)
    }

    fn entry(value: &str, expires_at: Option<u64>) -> Entry {
        Entry {
            value: value.as_bytes().to_vec(),
            content_type: "text/plain".into(),
            expires_at,
        }
    }

    #[test]
    fn entries_expire_and_namespaces_are_apart() {
        let (_dir, s) = store();
        s.set("a", "k", &entry("one", Some(100))).unwrap();
        s.set("b", "k", &entry("two", None)).unwrap();
        assert_eq!(s.get("a", "k", 99).unwrap().unwrap().value, b"one");
        assert_eq!(s.get("a", "k", 100).unwrap(), None);
        assert_eq!(s.get("b", "k", 1_000).unwrap().unwrap().value, b"two");
        assert!(s.list_keys("a", "", None, 10, 100).unwrap().keys.is_empty());
        assert_eq!(s.namespaces().unwrap(), ["a", "b"]);
    }

    #[test]
    fn keys_page_in_order_by_prefix() {
        let (_dir, s) = store();
        for k in ["user:3", "user:1", "user:2", "other"] {
            s.set("n", k, &entry("v", None)).unwrap();
        }
        let first = s.list_keys("n", "user:", None, 2, 0).unwrap();
        assert_eq!(first.keys, ["user:1", "user:2"]);
        let rest = s
            .list_keys("n", "user:", first.next.as_deref(), 2, 0)
            .unwrap();
        assert_eq!(rest.keys, ["user:3"]);
        assert_eq!(rest.next, None);
        assert_eq!(s.used_bytes("n", 0).unwrap(), (6 * 3 + 5 + 4) as u64);
    }

    #[test]
    fn search_input_is_never_fts_syntax() {
        let (_dir, s) = store();
        let doc = |id: &str, text: &str, metadata: &str| Document {
            id: id.into(),
            text: text.into(),
            metadata: metadata.into(),
        };
        s.put_document("n", &doc("a", "alpha beta", r#"{"k": 1}"#))
            .unwrap();
        s.put_document("n", &doc("b", "beta gamma", r#"{"k": 2}"#))
            .unwrap();
        // Quotes, column filters and operators are plain words here.
        for query in ["\"", "text:alpha", "NEAR(alpha beta)", "beta*", ""] {
            s.search("n", query, &[], 10).unwrap();
        }
        let hits = s
            .search("n", "beta", &[("k".into(), serde_json::json!(2))], 10)
            .unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].id, "b");
        // Replacing a document re-indexes it.
        s.put_document("n", &doc("b", "delta", "{}")).unwrap();
        assert!(s.search("n", "gamma", &[], 10).unwrap().is_empty());
        assert_eq!(s.search("n", "delta", &[], 10).unwrap()[0].id, "b");
        assert!(s.delete_document("n", "b").unwrap());
        assert!(s.search("n", "delta", &[], 10).unwrap().is_empty());
    }
}
