//! The cluster's memory store, in PostgreSQL (`[storage] url`): key-value entries with
//! an expiry, documents with PostgreSQL's own full-text search (the `english`
//! configuration, `ts_rank_cd` ranking, `ts_headline` excerpts), and their embeddings
//! as `real[]`, searched by an exact cosine scan over the namespace. Every node reads
//! and writes the same tables, so a document written through one node is found by a
//! search on another.
//!
//! Tables (made by `warden_postgres::migrate`): `memory_kv`, `memory_docs`,
//! `memory_vectors`.

use postgres::types::ToSql;
use warden_postgres::{PgError, Pool, SqlError};

use super::error::StoreError;
use super::sqlite::SEARCH_BUDGET;
use super::{Document, Entry, Hit, KeyPage, Store};

/// Memory in the cluster's database.
pub struct PgMemory {
    pool: Pool,
}

impl PgMemory {
    /// Memory kept through `pool` (its database migrated).
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    fn run<R: Send + 'static>(
        &self,
        action: &'static str,
        f: impl FnMut(&mut postgres::Client) -> Result<R, SqlError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.pool.run(action, f).map_err(|err| match &err {
            PgError::Sql { error, .. }
                if error.code() == Some(&postgres::error::SqlState::QUERY_CANCELED) =>
            {
                StoreError::TooLong { action }
            }
            _ => StoreError::Other(Box::new(err)),
        })
    }
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A `tsquery` text from free text: each word a quoted lexeme, joined by OR, so input
/// is never query syntax.
fn ts_query(text: &str) -> String {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Appends `filter`'s metadata equalities (documents aliased `d`), keys and values
/// bound as parameters.
fn push_filter(
    sql: &mut String,
    values: &mut Vec<Box<dyn ToSql + Send + Sync>>,
    filter: &[(String, serde_json::Value)],
) {
    for (key, value) in filter {
        values.push(Box::new(key.clone()));
        let k = values.len();
        if value.is_null() {
            sql.push_str(&format!(
                " AND (d.metadata::jsonb -> ${k} IS NULL OR d.metadata::jsonb -> ${k} = 'null'::jsonb)"
            ));
        } else {
            values.push(Box::new(value.to_string()));
            sql.push_str(&format!(
                " AND d.metadata::jsonb -> ${k} = ${}::text::jsonb",
                values.len()
            ));
        }
    }
}

fn refs(values: &[Box<dyn ToSql + Send + Sync>]) -> Vec<&(dyn ToSql + Sync)> {
    values
        .iter()
        .map(|v| v.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

impl Store for PgMemory {
    fn get(&self, namespace: &str, key: &str, now: u64) -> Result<Option<Entry>, StoreError> {
        let (namespace, key, now) = (namespace.to_string(), key.to_string(), int(now));
        self.run("reading a memory entry", move |c| {
            c.query_opt(
                "SELECT value, content_type, expires_at FROM memory_kv
                 WHERE namespace = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3)",
                &[&namespace, &key, &now],
            )?
            .map(|row| {
                Ok(Entry {
                    value: row.try_get(0)?,
                    content_type: row.try_get(1)?,
                    expires_at: row.try_get::<_, Option<i64>>(2)?.map(|e| e as u64),
                })
            })
            .transpose()
        })
    }

    fn set(&self, namespace: &str, key: &str, entry: &Entry) -> Result<(), StoreError> {
        let (namespace, key, entry) = (namespace.to_string(), key.to_string(), entry.clone());
        self.run("writing a memory entry", move |c| {
            c.execute(
                "INSERT INTO memory_kv (namespace, key, value, content_type, expires_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (namespace, key) DO UPDATE SET
                    value = excluded.value, content_type = excluded.content_type,
                    expires_at = excluded.expires_at",
                &[
                    &namespace,
                    &key,
                    &entry.value,
                    &entry.content_type,
                    &entry.expires_at.map(int),
                ],
            )
            .map(drop)
        })
    }

    fn delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        let (namespace, key) = (namespace.to_string(), key.to_string());
        self.run("deleting a memory entry", move |c| {
            c.execute(
                "DELETE FROM memory_kv WHERE namespace = $1 AND key = $2",
                &[&namespace, &key],
            )
            .map(|n| n > 0)
        })
    }

    fn list_keys(
        &self,
        namespace: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
        now: u64,
    ) -> Result<KeyPage, StoreError> {
        let (namespace, prefix) = (namespace.to_string(), prefix.to_string());
        let after = after.unwrap_or("").to_string();
        let (now, fetch) = (int(now), i64::from(limit) + 1);
        let mut keys = self.run("listing memory keys", move |c| {
            c.query(
                "SELECT key FROM memory_kv
                 WHERE namespace = $1 AND left(key, length($2)) = $2 AND key > $3
                   AND (expires_at IS NULL OR expires_at > $4)
                 ORDER BY key COLLATE \"C\" LIMIT $5",
                &[&namespace, &prefix, &after, &now, &fetch],
            )?
            .iter()
            .map(|row| row.try_get::<_, String>(0))
            .collect::<Result<Vec<_>, _>>()
        })?;
        let next = if keys.len() > limit as usize {
            keys.truncate(limit as usize);
            keys.last().cloned()
        } else {
            None
        };
        Ok(KeyPage { keys, next })
    }

    fn used_bytes(&self, namespace: &str, now: u64) -> Result<u64, StoreError> {
        let (namespace, now) = (namespace.to_string(), int(now));
        self.run("counting a namespace's bytes", move |c| {
            let row = c.query_one(
                "SELECT
                    (SELECT COALESCE(SUM(octet_length(key) + octet_length(value)), 0)::bigint
                     FROM memory_kv WHERE namespace = $1 AND (expires_at IS NULL OR expires_at > $2))
                  + (SELECT COALESCE(SUM(octet_length(id) + octet_length(text) + octet_length(metadata)), 0)::bigint
                     FROM memory_docs WHERE namespace = $1)",
                &[&namespace, &now],
            )?;
            Ok(u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0))
        })
    }

    fn put_document(&self, namespace: &str, doc: &Document) -> Result<(), StoreError> {
        let (namespace, doc) = (namespace.to_string(), doc.clone());
        self.run("writing a memory document", move |c| {
            let mut tx = c.transaction()?;
            // A rewritten document's embedding no longer describes it.
            tx.execute(
                "DELETE FROM memory_vectors WHERE namespace = $1 AND id = $2",
                &[&namespace, &doc.id],
            )?;
            tx.execute(
                "INSERT INTO memory_docs (namespace, id, text, metadata) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (namespace, id) DO UPDATE SET
                    text = excluded.text, metadata = excluded.metadata",
                &[&namespace, &doc.id, &doc.text, &doc.metadata],
            )?;
            tx.commit()
        })
    }

    fn get_document(&self, namespace: &str, id: &str) -> Result<Option<Document>, StoreError> {
        let (namespace, id) = (namespace.to_string(), id.to_string());
        self.run("reading a memory document", move |c| {
            c.query_opt(
                "SELECT id, text, metadata FROM memory_docs WHERE namespace = $1 AND id = $2",
                &[&namespace, &id],
            )?
            .map(|row| {
                Ok(Document {
                    id: row.try_get(0)?,
                    text: row.try_get(1)?,
                    metadata: row.try_get(2)?,
                })
            })
            .transpose()
        })
    }

    fn delete_document(&self, namespace: &str, id: &str) -> Result<bool, StoreError> {
        let (namespace, id) = (namespace.to_string(), id.to_string());
        self.run("deleting a memory document", move |c| {
            c.execute(
                "DELETE FROM memory_docs WHERE namespace = $1 AND id = $2",
                &[&namespace, &id],
            )
            .map(|n| n > 0)
        })
    }

    fn search(
        &self,
        namespace: &str,
        query: &str,
        filter: &[(String, serde_json::Value)],
        limit: u32,
    ) -> Result<Vec<Hit>, StoreError> {
        let ts = ts_query(query);
        if ts.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = String::from(
            "SELECT d.id, ts_rank_cd(d.tsv, q)::float8 AS score,
                    ts_headline('english', d.text, q,
                        'StartSel=[, StopSel=], MaxWords=12, MinWords=4, ShortWord=2'),
                    d.metadata
             FROM memory_docs d, to_tsquery('english', $1) q
             WHERE d.namespace = $2 AND d.tsv @@ q",
        );
        let mut values: Vec<Box<dyn ToSql + Send + Sync>> =
            vec![Box::new(ts), Box::new(namespace.to_string())];
        push_filter(&mut sql, &mut values, filter);
        values.push(Box::new(i64::from(limit)));
        sql.push_str(&format!(
            " ORDER BY score DESC, d.id LIMIT ${}",
            values.len()
        ));
        let budget = SEARCH_BUDGET.as_millis();
        self.run("searching memory documents", move |c| {
            let mut tx = c.transaction()?;
            tx.batch_execute(&format!("SET LOCAL statement_timeout = {budget}"))?;
            let hits = tx
                .query(sql.as_str(), &refs(&values))?
                .iter()
                .map(|row| {
                    Ok(Hit {
                        id: row.try_get(0)?,
                        score: row.try_get(1)?,
                        snippet: row.try_get(2)?,
                        metadata: row.try_get(3)?,
                    })
                })
                .collect::<Result<Vec<_>, SqlError>>()?;
            tx.commit()?;
            Ok(hits)
        })
    }

    fn put_vector(
        &self,
        namespace: &str,
        id: &str,
        target: &str,
        vector: &[f32],
    ) -> Result<(), StoreError> {
        let (namespace, id, target) = (namespace.to_string(), id.to_string(), target.to_string());
        let vector = vector.to_vec();
        self.run("writing a document's embedding", move |c| {
            c.execute(
                "INSERT INTO memory_vectors (namespace, id, target, vector)
                 SELECT namespace, id, $3, $4 FROM memory_docs WHERE namespace = $1 AND id = $2
                 ON CONFLICT (namespace, id) DO UPDATE SET
                    target = excluded.target, vector = excluded.vector",
                &[&namespace, &id, &target, &vector],
            )
            .map(drop)
        })
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
            "SELECT d.id, left(d.text, 160), d.metadata, v.vector
             FROM memory_vectors v JOIN memory_docs d ON d.namespace = v.namespace AND d.id = v.id
             WHERE d.namespace = $1 AND v.target = $2",
        );
        let mut values: Vec<Box<dyn ToSql + Send + Sync>> = vec![
            Box::new(namespace.to_string()),
            Box::new(target.to_string()),
        ];
        push_filter(&mut sql, &mut values, filter);
        let budget = SEARCH_BUDGET.as_millis();
        let query = query.to_vec();
        let mut hits = self.run("searching memory embeddings", move |c| {
            let mut tx = c.transaction()?;
            tx.batch_execute(&format!("SET LOCAL statement_timeout = {budget}"))?;
            let hits = tx
                .query(sql.as_str(), &refs(&values))?
                .iter()
                .map(|row| {
                    let vector: Vec<f32> = row.try_get(3)?;
                    Ok(Hit {
                        id: row.try_get(0)?,
                        score: f64::from(super::embed::cosine(&query, &vector)),
                        snippet: row.try_get(1)?,
                        metadata: row.try_get(2)?,
                    })
                })
                .collect::<Result<Vec<_>, SqlError>>()?;
            tx.commit()?;
            Ok(hits)
        })?;
        hits.retain(|h| h.score > 0.0);
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(limit as usize);
        Ok(hits)
    }

    fn namespaces(&self) -> Result<Vec<String>, StoreError> {
        self.run("listing memory namespaces", |c| {
            c.query(
                "SELECT namespace FROM memory_kv UNION SELECT namespace FROM memory_docs ORDER BY 1",
                &[],
            )?
            .iter()
            .map(|row| row.try_get(0))
            .collect()
        })
    }
}
