//! The embedded store: one SQLite file in the home (`<home>/audit.db`), in WAL mode
//! with `synchronous=FULL`, so a committed append survives a crash of the process and
//! of the machine.
//!
//! Tables: `records` (one row a record, `seq` the key, indexes for the query filters),
//! `checkpoints` (signed heads), `anchors` (pruned prefixes).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};
use serde_json::Value;

use super::checkpoint::Checkpoint;
use super::record::Record;
use super::store::{Anchor, Filter, Head, MakeAnchorRecord, MakeRecords, Store};

/// The file name of the log in the home.
pub const FILE_NAME: &str = "audit.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    seq       INTEGER PRIMARY KEY,
    time      TEXT NOT NULL,
    kind      TEXT NOT NULL,
    principal TEXT NOT NULL,
    plugin    TEXT,
    tool      TEXT,
    outcome   TEXT,
    fields    TEXT NOT NULL,
    prev      TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_time ON records (time);
CREATE INDEX IF NOT EXISTS records_plugin_tool ON records (plugin, tool);
CREATE INDEX IF NOT EXISTS records_kind ON records (kind);
CREATE INDEX IF NOT EXISTS records_principal ON records (principal);
CREATE INDEX IF NOT EXISTS records_outcome ON records (outcome);
CREATE TABLE IF NOT EXISTS checkpoints (
    id         INTEGER PRIMARY KEY,
    seq        INTEGER NOT NULL,
    hash       TEXT NOT NULL,
    time       TEXT NOT NULL,
    signature  TEXT NOT NULL,
    public_key TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS anchors (
    seq  INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    time TEXT NOT NULL
);
";

const COLUMNS: &str = "seq, time, kind, principal, plugin, tool, outcome, fields, prev, hash";

/// The audit log in a SQLite file.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) the log at `path`: WAL, `synchronous=FULL`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let damaged = || {
            format!(
                "opening the audit log {} (if the file is damaged, move it aside, keep it for investigation, and start a new log)",
                path.display()
            )
        };
        let conn = Connection::open(path).with_context(damaged)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
            .with_context(damaged)?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!(
                "{}: could not switch to WAL mode (got {mode})",
                path.display()
            );
        }
        conn.execute_batch("PRAGMA synchronous=FULL;")
            .with_context(damaged)?;
        conn.execute_batch(SCHEMA).with_context(damaged)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value of a pragma on this store's connection (`synchronous` is `2`, FULL;
    /// `journal_mode` is `wal`).
    pub fn pragma(&self, name: &str) -> anyhow::Result<String> {
        let value: rusqlite::types::Value =
            self.conn
                .query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))?;
        Ok(match value {
            rusqlite::types::Value::Integer(i) => i.to_string(),
            rusqlite::types::Value::Text(t) => t,
            other => format!("{other:?}"),
        })
    }

    fn context(&self, what: &str) -> String {
        format!("{what} in the audit log {}", self.path.display())
    }
}

fn insert(tx: &rusqlite::Transaction<'_>, records: &[Record]) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(&format!(
        "INSERT INTO records ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?;
    for r in records {
        stmt.execute(params![
            r.seq as i64,
            r.time,
            r.kind,
            r.principal,
            r.plugin,
            r.tool,
            r.outcome.map(|o| o.as_str()),
            String::from_utf8_lossy(&super::canonical::to_vec(&r.fields)),
            r.prev,
            r.hash,
        ])?;
    }
    Ok(())
}

fn head_in(conn: &Connection) -> rusqlite::Result<Option<Head>> {
    conn.query_row(
        "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1",
        [],
        |row| {
            Ok(Head {
                seq: row.get::<_, i64>(0)? as u64,
                hash: row.get(1)?,
            })
        },
    )
    .optional()
}

/// A row as a record. Values are taken as they are stored, so that a changed row is
/// read (and fails verification) rather than refused.
fn row_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let fields: String = row.get(7)?;
    let outcome: Option<String> = row.get(6)?;
    Ok(Record {
        seq: row.get::<_, i64>(0)? as u64,
        time: row.get(1)?,
        kind: row.get(2)?,
        principal: row.get(3)?,
        plugin: row.get(4)?,
        tool: row.get(5)?,
        // An unknown outcome is read as none: the hash then no longer matches.
        outcome: outcome.and_then(|o| o.parse().ok()),
        fields: serde_json::from_str(&fields).unwrap_or(Value::String(fields)),
        prev: row.get(8)?,
        hash: row.get(9)?,
    })
}

impl Store for SqliteStore {
    fn append(&mut self, make: &mut MakeRecords<'_>) -> anyhow::Result<Vec<Record>> {
        let what = self.context("appending");
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .with_context(|| what.clone())?;
        let head = head_in(&tx).with_context(|| what.clone())?;
        let records = make(head.as_ref());
        insert(&tx, &records).with_context(|| what.clone())?;
        tx.commit().with_context(|| what.clone())?;
        Ok(records)
    }

    fn head(&mut self) -> anyhow::Result<Option<Head>> {
        let what = self.context("reading the head");
        head_in(&self.conn).with_context(|| what)
    }

    fn read(&mut self, filter: &Filter) -> anyhow::Result<Vec<Record>> {
        let mut clauses = Vec::new();
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut add = |clause: &str, value: rusqlite::types::Value| {
            args.push(value);
            clauses.push(format!("{clause} ?{}", args.len()));
        };
        for (column, value) in [
            ("plugin =", &filter.plugin),
            ("tool =", &filter.tool),
            ("kind =", &filter.kind),
            ("principal =", &filter.principal),
            ("time >=", &filter.since),
            ("time <", &filter.until),
        ] {
            if let Some(v) = value {
                add(column, v.clone().into());
            }
        }
        if let Some(o) = filter.outcome {
            add("outcome =", o.as_str().to_string().into());
        }
        if let Some(seq) = filter.after_seq {
            add("seq >", (seq as i64).into());
        }
        let mut sql = format!("SELECT {COLUMNS} FROM records");
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
        let what = self.context("reading records");
        let mut stmt = self.conn.prepare(&sql).with_context(|| what.clone())?;
        let mut records = stmt
            .query_map(rusqlite::params_from_iter(args), row_record)
            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            .with_context(|| what.clone())?;
        if filter.newest {
            records.reverse();
        }
        Ok(records)
    }

    fn anchor(&mut self) -> anyhow::Result<Option<Anchor>> {
        let what = self.context("reading the prune anchor");
        self.conn
            .query_row(
                "SELECT seq, hash, time FROM anchors ORDER BY seq DESC LIMIT 1",
                [],
                |row| {
                    Ok(Anchor {
                        seq: row.get::<_, i64>(0)? as u64,
                        hash: row.get(1)?,
                        time: row.get(2)?,
                    })
                },
            )
            .optional()
            .with_context(|| what)
    }

    fn prune(
        &mut self,
        before: &str,
        make: &mut MakeAnchorRecord<'_>,
    ) -> anyhow::Result<Option<(Anchor, Record)>> {
        let what = self.context("pruning");
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .with_context(|| what.clone())?;
        // The prefix ends before the first record at or after `before`.
        let first_kept: Option<i64> = tx
            .query_row(
                "SELECT min(seq) FROM records WHERE time >= ?1",
                [before],
                |r| r.get(0),
            )
            .with_context(|| what.clone())?;
        let last_removed: Option<(i64, String)> = match first_kept {
            Some(kept) => tx.query_row(
                "SELECT seq, hash FROM records WHERE seq < ?1 ORDER BY seq DESC LIMIT 1",
                [kept],
                |r| Ok((r.get(0)?, r.get(1)?)),
            ),
            None => tx.query_row(
                "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            ),
        }
        .optional()
        .with_context(|| what.clone())?;
        let Some((seq, hash)) = last_removed else {
            return Ok(None);
        };
        let head = head_in(&tx)
            .with_context(|| what.clone())?
            .context("the log is empty")?;
        let anchor = Anchor {
            seq: seq as u64,
            hash,
            time: super::time::now(),
        };
        let record = make(&anchor, &head);
        tx.execute("DELETE FROM records WHERE seq <= ?1", [seq])
            .with_context(|| what.clone())?;
        tx.execute(
            "INSERT INTO anchors (seq, hash, time) VALUES (?1, ?2, ?3)",
            params![seq, anchor.hash, anchor.time],
        )
        .with_context(|| what.clone())?;
        insert(&tx, std::slice::from_ref(&record)).with_context(|| what.clone())?;
        tx.commit().with_context(|| what.clone())?;
        Ok(Some((anchor, record)))
    }

    fn put_checkpoint(&mut self, c: &Checkpoint) -> anyhow::Result<()> {
        let what = self.context("storing a checkpoint");
        self.conn
            .execute(
                "INSERT INTO checkpoints (seq, hash, time, signature, public_key) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![c.seq as i64, c.hash, c.time, c.signature, c.public_key],
            )
            .with_context(|| what)?;
        Ok(())
    }

    fn latest_checkpoint(&mut self) -> anyhow::Result<Option<Checkpoint>> {
        let what = self.context("reading the latest checkpoint");
        self.conn
            .query_row(
                "SELECT seq, hash, time, signature, public_key FROM checkpoints ORDER BY id DESC LIMIT 1",
                [],
                |row| {
                    Ok(Checkpoint {
                        seq: row.get::<_, i64>(0)? as u64,
                        hash: row.get(1)?,
                        time: row.get(2)?,
                        signature: row.get(3)?,
                        public_key: row.get(4)?,
                    })
                },
            )
            .optional()
            .with_context(|| what)
    }
}
