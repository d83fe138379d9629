//! The cluster's store: the log in PostgreSQL (`[storage] url`), one hash chain that
//! every node appends to.
//!
//! An append reads the head and writes the records that follow it in one transaction
//! holding a transaction-scoped advisory lock, so two nodes never build on the same
//! head (the primary key on `seq` would refuse a fork anyway). Each node's writer
//! thread already gathers its concurrent callers into one append (group commit), so
//! the lock is taken once per group, not per call. A commit returns once the server
//! has flushed it (`synchronous_commit = on`); with [`Durability::Process`] the session
//! runs `synchronous_commit = off`: the commit is in the server's memory, which
//! survives this process, and the server flushes it within `wal_writer_delay`.
//!
//! Tables (made by `warden_postgres::migrate`): `audit_records`, `audit_checkpoints`,
//! `audit_anchors`.

use std::collections::BTreeMap;

use postgres::types::ToSql;
use serde_json::Value;
use warden_postgres::{Client, DatabaseUrl, GenericClient, PgError, Row, SqlError};

use super::checkpoint::Checkpoint;
use super::durability::Durability;
use super::error::AuditError;
use super::record::Record;
use super::store::{
    Anchor, Batch, Filter, Head, MakeAnchorRecord, MakeRecords, Stats, Store, StoredRecord,
    ToolStats,
};

/// The advisory lock appends and prunes hold (any fixed number no other lock uses).
const APPEND_LOCK: i64 = 0x5741_5244_454e_0002;

const COLUMNS: &str = "seq, time, kind, principal, plugin, tool, outcome, fields, prev, hash";

/// Rows a multi-row INSERT carries.
const ROWS_PER_INSERT: usize = 64;

/// The audit log in PostgreSQL. It keeps one connection of its own (the writer thread
/// is its only user) and makes a new one after the server was lost.
pub struct PgStore {
    url: DatabaseUrl,
    client: Option<Client>,
    durability: Durability,
}

impl PgStore {
    /// Connects to the database at `url` (already migrated).
    pub fn open(url: &DatabaseUrl) -> Result<Self, AuditError> {
        let mut store = Self {
            url: url.clone(),
            client: None,
            durability: Durability::Full,
        };
        store.client()?;
        Ok(store)
    }

    /// The connection, made anew if there is none or it closed.
    fn client(&mut self) -> Result<&mut Client, AuditError> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            let mut client = self.url.connect().map_err(other)?;
            if self.durability == Durability::Process {
                client
                    .batch_execute("SET synchronous_commit = off")
                    .map_err(|e| sql(&self.url, "setting the durability", e))?;
            }
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("a connection was just made"))
    }

    /// Runs `f` on the connection; drops the connection if it broke, so the next
    /// operation reconnects.
    /// Runs off any runtime: the writer calls a few methods from the thread that
    /// opens the log, which may be a task's.
    fn with<R: Send>(
        &mut self,
        action: &str,
        f: impl FnOnce(&mut Client) -> Result<R, SqlError> + Send,
    ) -> Result<R, AuditError> {
        warden_postgres::off_runtime(|| self.here(action, f))
    }
}

impl PgStore {
    /// As [`PgStore::with`], on this thread: for appends and prunes, which only the
    /// writer thread makes (with closures that stay on it).
    fn here<R>(
        &mut self,
        action: &str,
        f: impl FnOnce(&mut Client) -> Result<R, SqlError>,
    ) -> Result<R, AuditError> {
        let result = f(self.client()?);
        result.map_err(|err| {
            if err.is_closed() || err.as_db_error().is_none() {
                self.client = None;
            }
            sql(&self.url, action, err)
        })
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            warden_postgres::off_runtime(|| drop(client));
        }
    }
}

fn other(err: PgError) -> AuditError {
    AuditError::Other(Box::new(err))
}

fn sql(url: &DatabaseUrl, action: &str, error: SqlError) -> AuditError {
    other(PgError::Sql {
        url: url.redacted().to_string(),
        action: format!("{action} in the audit log"),
        error,
    })
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The canonical JSON text of each record's fields (what the hash covers).
fn fields_text(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            let mut out = Vec::with_capacity(256);
            super::canonical::write(&mut out, &r.fields);
            String::from_utf8(out).unwrap_or_default()
        })
        .collect()
}

fn insert(client: &mut impl GenericClient, records: &[Record]) -> Result<(), SqlError> {
    let fields = fields_text(records);
    let seqs: Vec<i64> = records.iter().map(|r| int(r.seq)).collect();
    let outcomes: Vec<Option<&str>> = records
        .iter()
        .map(|r| r.outcome.map(|o| o.as_str()))
        .collect();
    for (start, chunk) in (0..records.len())
        .step_by(ROWS_PER_INSERT)
        .map(|s| (s, &records[s..(s + ROWS_PER_INSERT).min(records.len())]))
    {
        let mut sql = format!("INSERT INTO audit_records ({COLUMNS}) VALUES ");
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(chunk.len() * 10);
        for (i, r) in chunk.iter().enumerate() {
            let at = start + i;
            if i > 0 {
                sql.push(',');
            }
            let n = i * 10;
            sql.push_str(&format!(
                "(${},${},${},${},${},${},${},${},${},${})",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5,
                n + 6,
                n + 7,
                n + 8,
                n + 9,
                n + 10
            ));
            params.extend_from_slice(&[
                &seqs[at],
                &r.time,
                &r.kind,
                &r.principal,
                &r.plugin,
                &r.tool,
                &outcomes[at],
                &fields[at],
                &r.prev,
                &r.hash,
            ]);
        }
        client.execute(sql.as_str(), &params)?;
    }
    Ok(())
}

fn put_checkpoint(client: &mut impl GenericClient, c: &Checkpoint) -> Result<(), SqlError> {
    client.execute(
        "INSERT INTO audit_checkpoints (seq, hash, time, signature, public_key) VALUES ($1, $2, $3, $4, $5)",
        &[&int(c.seq), &c.hash, &c.time, &c.signature, &c.public_key],
    )?;
    Ok(())
}

fn checkpoint_row(row: &Row) -> Result<Checkpoint, SqlError> {
    Ok(Checkpoint {
        seq: row.try_get::<_, i64>(0)? as u64,
        hash: row.try_get(1)?,
        time: row.try_get(2)?,
        signature: row.try_get(3)?,
        public_key: row.try_get(4)?,
    })
}

fn head_in(client: &mut impl GenericClient) -> Result<Option<Head>, SqlError> {
    client
        .query_opt(
            "SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1",
            &[],
        )?
        .map(|row| {
            Ok(Head {
                seq: row.try_get::<_, i64>(0)? as u64,
                hash: row.try_get(1)?,
            })
        })
        .transpose()
}

/// A row as a record, values as stored (a changed row fails verification).
fn row_record(row: &Row) -> Result<Record, SqlError> {
    let fields: String = row.try_get(7)?;
    let outcome: Option<String> = row.try_get(6)?;
    Ok(Record {
        seq: row.try_get::<_, i64>(0)? as u64,
        time: row.try_get(1)?,
        kind: row.try_get(2)?,
        principal: row.try_get(3)?,
        plugin: row.try_get(4)?,
        tool: row.try_get(5)?,
        outcome: outcome.and_then(|o| o.parse().ok()),
        fields: serde_json::from_str(&fields).unwrap_or(Value::String(fields)),
        prev: row.try_get(8)?,
        hash: row.try_get(9)?,
    })
}

impl Store for PgStore {
    fn append(&mut self, make: &mut MakeRecords<'_>) -> Result<Batch, AuditError> {
        self.here("appending", |client| {
            let mut tx = client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK])?;
            let head = head_in(&mut tx)?;
            let batch = make(head.as_ref());
            insert(&mut tx, &batch.records)?;
            if let Some(checkpoint) = &batch.checkpoint {
                put_checkpoint(&mut tx, checkpoint)?;
            }
            tx.commit()?;
            Ok(batch)
        })
    }

    fn head(&mut self) -> Result<Option<Head>, AuditError> {
        self.with("reading the head", head_in)
    }

    fn read(&mut self, filter: &Filter) -> Result<Vec<Record>, AuditError> {
        let mut clauses = Vec::new();
        let mut args: Vec<Box<dyn ToSql + Send + Sync>> = Vec::new();
        for (column, value) in [
            ("plugin =", &filter.plugin),
            ("tool =", &filter.tool),
            ("kind =", &filter.kind),
            ("principal =", &filter.principal),
            ("time >=", &filter.since),
            ("time <", &filter.until),
        ] {
            if let Some(v) = value {
                args.push(Box::new(v.clone()));
                clauses.push(format!("{column} ${}", args.len()));
            }
        }
        if let Some(o) = filter.outcome {
            args.push(Box::new(o.as_str().to_string()));
            clauses.push(format!("outcome = ${}", args.len()));
        }
        if let Some(seq) = filter.after_seq {
            args.push(Box::new(int(seq)));
            clauses.push(format!("seq > ${}", args.len()));
        }
        let mut sql = format!("SELECT {COLUMNS} FROM audit_records");
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql.push_str(if filter.newest {
            " ORDER BY seq DESC"
        } else {
            " ORDER BY seq"
        });
        if let Some(limit) = filter.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        let newest = filter.newest;
        self.with("reading records", move |client| {
            let params: Vec<&(dyn ToSql + Sync)> = args
                .iter()
                .map(|a| a.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let mut records = client
                .query(sql.as_str(), &params)?
                .iter()
                .map(row_record)
                .collect::<Result<Vec<_>, _>>()?;
            if newest {
                records.reverse();
            }
            Ok(records)
        })
    }

    fn scan(
        &mut self,
        after_seq: u64,
        limit: usize,
        each: &mut dyn FnMut(&StoredRecord<'_>) -> bool,
    ) -> Result<Option<u64>, AuditError> {
        let rows = self.with("reading records", |client| {
            client.query(
                &format!(
                    "SELECT {COLUMNS} FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT $2"
                ),
                &[&int(after_seq), &int(limit as u64)],
            )
        })?;
        let mut last = None;
        for row in &rows {
            let record = row_record(row).map_err(|e| sql(&self.url, "reading records", e))?;
            let fields: String = row.try_get(7).unwrap_or_default();
            let outcome: Option<String> = row.try_get(6).unwrap_or_default();
            last = Some(record.seq);
            let going = each(&StoredRecord {
                seq: record.seq,
                time: &record.time,
                kind: &record.kind,
                principal: &record.principal,
                plugin: record.plugin.as_deref(),
                tool: record.tool.as_deref(),
                outcome: outcome.as_deref(),
                fields: &fields,
                prev: &record.prev,
                hash: &record.hash,
            });
            if !going {
                break;
            }
        }
        Ok(last)
    }

    fn stats(&mut self, since: Option<&str>, until: Option<&str>) -> Result<Stats, AuditError> {
        let (since, until) = (since.map(str::to_string), until.map(str::to_string));
        self.with("counting records", move |client| {
            let period = "($1::text IS NULL OR time >= $1) AND ($2::text IS NULL OR time < $2)";
            let row = client.query_one(
                &format!("SELECT count(*), min(time), max(time) FROM audit_records WHERE {period}"),
                &[&since, &until],
            )?;
            let (records, first, last) = (row.try_get::<_, i64>(0)? as u64, row.try_get(1)?, row.try_get(2)?);
            let mut counts = |column: &str| -> Result<BTreeMap<String, u64>, SqlError> {
                client
                    .query(
                        &format!(
                            "SELECT coalesce({column}, 'none'), count(*) FROM audit_records WHERE {period} GROUP BY 1"
                        ),
                        &[&since, &until],
                    )?
                    .iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get::<_, i64>(1)? as u64)))
                    .collect()
            };
            let kinds = counts("kind")?;
            let outcomes = counts("outcome")?;
            let tools = client
                .query(
                    &format!(
                        "SELECT plugin, tool, count(*),
                            coalesce(sum((kind = 'tool.call')::int), 0),
                            coalesce(sum((kind = 'tool.call' AND outcome = 'ok')::int), 0),
                            coalesce(sum((kind = 'tool.call' AND outcome = 'error')::int), 0),
                            coalesce(sum((outcome = 'denied')::int), 0)
                         FROM audit_records
                         WHERE {period} AND (plugin IS NOT NULL OR tool IS NOT NULL)
                         GROUP BY plugin, tool ORDER BY plugin, tool"
                    ),
                    &[&since, &until],
                )?
                .iter()
                .map(|r| {
                    let n = |i| r.try_get::<_, i64>(i).map(|n| n as u64);
                    Ok(ToolStats {
                        plugin: r.try_get(0)?,
                        tool: r.try_get(1)?,
                        records: n(2)?,
                        calls: n(3)?,
                        ok: n(4)?,
                        errors: n(5)?,
                        denied: n(6)?,
                    })
                })
                .collect::<Result<Vec<_>, SqlError>>()?;
            Ok(Stats {
                records,
                first,
                last,
                kinds,
                outcomes,
                tools,
            })
        })
    }

    fn anchor(&mut self) -> Result<Option<Anchor>, AuditError> {
        self.with("reading the prune anchor", |client| {
            client
                .query_opt(
                    "SELECT seq, hash, time FROM audit_anchors ORDER BY seq DESC LIMIT 1",
                    &[],
                )?
                .map(|row| {
                    Ok(Anchor {
                        seq: row.try_get::<_, i64>(0)? as u64,
                        hash: row.try_get(1)?,
                        time: row.try_get(2)?,
                    })
                })
                .transpose()
        })
    }

    fn prune(
        &mut self,
        before: &str,
        make: &mut MakeAnchorRecord<'_>,
    ) -> Result<Option<(Anchor, Record)>, AuditError> {
        let before = before.to_string();
        let mut empty = false;
        let pruned = self.here("pruning", |client| {
            let mut tx = client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK])?;
            let first_kept: Option<i64> = tx
                .query_one(
                    "SELECT min(seq) FROM audit_records WHERE time >= $1",
                    &[&before],
                )?
                .try_get(0)?;
            let last_removed = match first_kept {
                Some(kept) => tx.query_opt(
                    "SELECT seq, hash FROM audit_records WHERE seq < $1 ORDER BY seq DESC LIMIT 1",
                    &[&kept],
                )?,
                None => tx.query_opt(
                    "SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1",
                    &[],
                )?,
            };
            let Some(row) = last_removed else {
                return Ok(None);
            };
            let (seq, hash): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
            let Some(head) = head_in(&mut tx)? else {
                empty = true;
                return Ok(None);
            };
            let anchor = Anchor {
                seq: seq as u64,
                hash,
                time: super::time::now(),
            };
            let record = make(&anchor, &head);
            tx.execute("DELETE FROM audit_records WHERE seq <= $1", &[&seq])?;
            tx.execute(
                "INSERT INTO audit_anchors (seq, hash, time) VALUES ($1, $2, $3)",
                &[&seq, &anchor.hash, &anchor.time],
            )?;
            insert(&mut tx, std::slice::from_ref(&record))?;
            tx.commit()?;
            Ok(Some((anchor, record)))
        })?;
        if empty {
            return Err(AuditError::Empty);
        }
        Ok(pruned)
    }

    fn put_checkpoint(&mut self, c: &Checkpoint) -> Result<(), AuditError> {
        self.with("storing a checkpoint", |client| put_checkpoint(client, c))
    }

    fn latest_checkpoint(&mut self) -> Result<Option<Checkpoint>, AuditError> {
        self.with("reading the latest checkpoint", |client| {
            client
                .query_opt(
                    "SELECT seq, hash, time, signature, public_key FROM audit_checkpoints ORDER BY id DESC LIMIT 1",
                    &[],
                )?
                .as_ref()
                .map(checkpoint_row)
                .transpose()
        })
    }

    fn checkpoints(&mut self) -> Result<Vec<Checkpoint>, AuditError> {
        self.with("reading the checkpoints", |client| {
            client
                .query(
                    "SELECT seq, hash, time, signature, public_key FROM audit_checkpoints ORDER BY id",
                    &[],
                )?
                .iter()
                .map(checkpoint_row)
                .collect()
        })
    }

    fn set_durability(&mut self, durability: Durability) -> Result<(), AuditError> {
        self.durability = durability;
        let setting = match durability {
            Durability::Full => "on",
            Durability::Process => "off",
        };
        self.with("setting the durability", |client| {
            client.batch_execute(&format!("SET synchronous_commit = {setting}"))
        })
    }

    fn sync(&mut self) -> Result<(), AuditError> {
        // A synchronous commit of a transaction with an id waits until the WAL is
        // flushed up to its commit record, so every earlier commit is on disk too.
        if self.durability == Durability::Process {
            self.with("syncing", |client| {
                client.batch_execute(
                    "BEGIN; SET LOCAL synchronous_commit = on; SELECT txid_current(); COMMIT",
                )
            })?;
        }
        Ok(())
    }
}
