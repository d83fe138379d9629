//! The embedded store: one SQLite file in the home (`<home>/audit.db`), in WAL mode
//! with `synchronous=FULL`, so a committed append survives a crash of the process and
//! of the machine. With [`Durability::Process`] it runs `synchronous=NORMAL`: a commit
//! is in the WAL file (the operating system's cache) when it returns, and
//! [`Store::sync`] fsyncs the WAL file.
//!
//! Tables: `records` (one row a record, `seq` the key, indexes for the query filters),
//! `unindexed` (the newest records, not yet in `records`: see below), `checkpoints`
//! (signed heads), `anchors` (pruned prefixes), `journal` (the last line of the
//! journal, `audit.journal`, committed: see [`crate::journal`]); the view `all_records`
//! is both record tables, and every read goes through it.
//!
//! An append of a few records (a lone caller's, an agent step's) goes into `unindexed`,
//! a table with no index but its key: the commit touches one or two pages instead of
//! six, and skips five B-tree inserts. The writer moves them into `records` and its
//! indexes in one transaction later ([`Store::index`]: once
//! [`INDEX_AFTER`](super::writer::INDEX_AFTER) are waiting, or when it is idle), off
//! every caller's path; a batch of at least
//! [`DIRECT_BATCH`] records, where the indexes' pages are shared, goes straight into
//! `records`. Both tables are in the same file, the hash chain runs across them, and
//! a move changes no row: a record is on the log, read and verified the same wherever
//! it is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};

use super::checkpoint::Checkpoint;
use super::durability::Durability;
use super::error::AuditError;
use super::journal::JournalMark;
use super::record::Record;
use super::store::{
    Anchor, Batch, Filter, Head, MakeAnchorRecord, MakeRecords, Stats, Store, StoredRecord,
    ToolStats,
};

/// The file name of the log in the home.
pub const FILE_NAME: &str = "audit.db";

/// The columns of a record, as both record tables define them.
const RECORD_TABLE: &str = "(
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
)";

fn schema() -> String {
    format!(
        "
CREATE TABLE IF NOT EXISTS records {RECORD_TABLE};
CREATE INDEX IF NOT EXISTS records_time ON records (time);
CREATE INDEX IF NOT EXISTS records_plugin_tool ON records (plugin, tool);
CREATE INDEX IF NOT EXISTS records_kind ON records (kind);
CREATE INDEX IF NOT EXISTS records_principal ON records (principal);
CREATE INDEX IF NOT EXISTS records_outcome ON records (outcome);
CREATE TABLE IF NOT EXISTS unindexed {RECORD_TABLE};
CREATE VIEW IF NOT EXISTS all_records AS
    SELECT {COLUMNS} FROM records UNION ALL SELECT {COLUMNS} FROM unindexed;
CREATE TABLE IF NOT EXISTS checkpoints (
    id         INTEGER PRIMARY KEY,
    seq        INTEGER NOT NULL,
    hash       TEXT NOT NULL,
    time       TEXT NOT NULL,
    signature  TEXT NOT NULL,
    public_key TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation TEXT NOT NULL,
    line       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS anchors (
    seq  INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    time TEXT NOT NULL
);
"
    )
}

const COLUMNS: &str = "seq, time, kind, principal, plugin, tool, outcome, fields, prev, hash";

/// Appends of at least this many records go straight into `records` (with the waiting
/// ones before them, in the same transaction).
pub const DIRECT_BATCH: usize = 16;

/// Moves every record in `unindexed` into `records` (the indexed table).
fn move_unindexed(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.prepare_cached(&format!(
        "INSERT INTO records ({COLUMNS}) SELECT {COLUMNS} FROM unindexed ORDER BY seq"
    ))?
    .execute([])?;
    tx.prepare_cached("DELETE FROM unindexed")?.execute([])?;
    Ok(())
}

mod rows;

use self::rows::{Table, checkpoint_row, head_in, insert, put_checkpoint, row_record, stored};

/// The audit log in a SQLite file.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Whether the directory was synced since this store opened (the WAL file's entry
    /// in it), done once with the first [`Store::sync`].
    dir_synced: bool,
    /// Records this store knows to be in `unindexed` (another process sharing the
    /// file may have moved them: then an index finds none).
    unindexed: u64,
}

impl SqliteStore {
    /// Opens (creating if needed) the log at `path`: WAL, `synchronous=FULL`.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        warden_files::database(path).map_err(|source| AuditError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        let damaged = |source| AuditError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(damaged)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
            .map_err(damaged)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(AuditError::NotWal {
                path: path.to_path_buf(),
                mode,
            });
        }
        conn.execute_batch("PRAGMA synchronous=FULL;")
            .map_err(damaged)?;
        conn.execute_batch(&schema()).map_err(damaged)?;
        conn.set_prepared_statement_cache_capacity(32);
        let unindexed: i64 = conn
            .query_row("SELECT count(*) FROM unindexed", [], |row| row.get(0))
            .map_err(damaged)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            dir_synced: false,
            unindexed: unindexed.unsigned_abs(),
        })
    }

    /// The WAL file beside the log.
    fn wal_path(&self) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push("-wal");
        PathBuf::from(name)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value of a pragma on this store's connection (`synchronous` is `2`, FULL;
    /// `journal_mode` is `wal`).
    pub fn pragma(&self, name: &str) -> Result<String, AuditError> {
        let value: rusqlite::types::Value =
            self.conn
                .query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))?;
        Ok(match value {
            rusqlite::types::Value::Integer(i) => i.to_string(),
            rusqlite::types::Value::Text(t) => t,
            other => format!("{other:?}"),
        })
    }
}

/// Makes a SQLite error an [`AuditError::Storage`] of `action` on the log at `path`.
fn storage<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl Fn(rusqlite::Error) -> AuditError + 'a {
    move |source| AuditError::Storage {
        action,
        path: path.to_path_buf(),
        source,
    }
}

impl Store for SqliteStore {
    fn append(&mut self, make: &mut MakeRecords<'_>) -> Result<Batch, AuditError> {
        let what = storage("appending", &self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&what)?;
        let head = head_in(&tx).map_err(&what)?;
        let batch = make(head.as_ref());
        let direct = batch.records.len() >= DIRECT_BATCH;
        if direct {
            // The waiting records first: `records` takes them in order.
            move_unindexed(&tx).map_err(&what)?;
            insert(&tx, Table::Records, &batch.records).map_err(&what)?;
        } else {
            insert(&tx, Table::Unindexed, &batch.records).map_err(&what)?;
        }
        if let Some(checkpoint) = &batch.checkpoint {
            put_checkpoint(&tx, checkpoint).map_err(&what)?;
        }
        if let Some(mark) = &batch.journal {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO journal (id, generation, line) VALUES (1, ?1, ?2)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    mark.generation,
                    i64::try_from(mark.line).unwrap_or(i64::MAX)
                ])
            })
            .map_err(&what)?;
        }
        tx.commit().map_err(&what)?;
        if direct {
            self.unindexed = 0;
        } else {
            self.unindexed += batch.records.len() as u64;
        }
        Ok(batch)
    }

    fn unindexed(&self) -> u64 {
        self.unindexed
    }

    fn journal_path(&self) -> Option<PathBuf> {
        // `audit.db`: `audit.journal`.
        Some(self.path.with_extension("journal"))
    }

    fn journal_mark(&mut self) -> Result<Option<JournalMark>, AuditError> {
        let what = storage("reading the journal's mark", &self.path);
        self.conn
            .query_row(
                "SELECT generation, line FROM journal WHERE id = 1",
                [],
                |row| {
                    Ok(JournalMark {
                        generation: row.get(0)?,
                        line: row.get::<_, i64>(1)?.unsigned_abs(),
                    })
                },
            )
            .optional()
            .map_err(what)
    }

    fn index(&mut self) -> Result<(), AuditError> {
        let what = storage("indexing records", &self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&what)?;
        move_unindexed(&tx).map_err(&what)?;
        tx.commit().map_err(&what)?;
        self.unindexed = 0;
        Ok(())
    }

    fn head(&mut self) -> Result<Option<Head>, AuditError> {
        let what = storage("reading the head", &self.path);
        head_in(&self.conn).map_err(what)
    }

    fn read(&mut self, filter: &Filter) -> Result<Vec<Record>, AuditError> {
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
        let mut sql = format!("SELECT {COLUMNS} FROM all_records");
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
        let what = storage("reading records", &self.path);
        let mut stmt = self.conn.prepare_cached(&sql).map_err(&what)?;
        let mut records = stmt
            .query_map(rusqlite::params_from_iter(args), row_record)
            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            .map_err(&what)?;
        if filter.newest {
            records.reverse();
        }
        Ok(records)
    }

    fn scan(
        &mut self,
        after_seq: u64,
        limit: usize,
        each: &mut dyn FnMut(&StoredRecord<'_>) -> bool,
    ) -> Result<Option<u64>, AuditError> {
        let what = storage("reading records", &self.path);
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM all_records WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))
            .map_err(&what)?;
        let mut rows = stmt
            .query(params![
                i64::try_from(after_seq).unwrap_or(i64::MAX),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ])
            .map_err(&what)?;
        let mut last = None;
        while let Some(row) = rows.next().map_err(&what)? {
            let going = match stored(row) {
                Some(stored) => {
                    last = Some(stored.seq);
                    each(&stored)
                }
                None => {
                    // A value of another type than written: read it as the other
                    // reads do (and it fails verification).
                    let record = row_record(row).map_err(&what)?;
                    last = Some(record.seq);
                    let text = serde_json::to_string(&record.fields)?;
                    let outcome = record.outcome.map(|o| o.as_str());
                    each(&StoredRecord {
                        seq: record.seq,
                        time: &record.time,
                        kind: &record.kind,
                        principal: &record.principal,
                        plugin: record.plugin.as_deref(),
                        tool: record.tool.as_deref(),
                        outcome,
                        fields: &text,
                        prev: &record.prev,
                        hash: &record.hash,
                    })
                }
            };
            if !going {
                break;
            }
        }
        Ok(last)
    }

    fn stats(&mut self, since: Option<&str>, until: Option<&str>) -> Result<Stats, AuditError> {
        let what = storage("counting records", &self.path);
        let period = "(?1 IS NULL OR time >= ?1) AND (?2 IS NULL OR time < ?2)";
        let conn = &self.conn;
        let (records, first, last) = conn
            .query_row(
                &format!("SELECT count(*), min(time), max(time) FROM all_records WHERE {period}"),
                params![since, until],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?)),
            )
            .map_err(&what)?;
        let counts = |column: &str| -> rusqlite::Result<BTreeMap<String, u64>> {
            let mut stmt = conn.prepare(&format!(
                "SELECT coalesce({column}, 'none'), count(*) FROM all_records WHERE {period} GROUP BY 1"
            ))?;
            stmt.query_map(params![since, until], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })?
            .collect()
        };
        let kinds = counts("kind").map_err(&what)?;
        let outcomes = counts("outcome").map_err(&what)?;
        let mut stmt = conn
            .prepare(&format!(
                "SELECT plugin, tool, count(*),
                    coalesce(sum(kind = 'tool.call'), 0),
                    coalesce(sum(kind = 'tool.call' AND outcome = 'ok'), 0),
                    coalesce(sum(kind = 'tool.call' AND outcome = 'error'), 0),
                    coalesce(sum(outcome = 'denied'), 0)
                 FROM all_records
                 WHERE {period} AND (plugin IS NOT NULL OR tool IS NOT NULL)
                 GROUP BY plugin, tool ORDER BY plugin, tool"
            ))
            .map_err(&what)?;
        let tools = stmt
            .query_map(params![since, until], |r| {
                let n = |i| r.get::<_, i64>(i).map(|n| n as u64);
                Ok(ToolStats {
                    plugin: r.get(0)?,
                    tool: r.get(1)?,
                    records: n(2)?,
                    calls: n(3)?,
                    ok: n(4)?,
                    errors: n(5)?,
                    denied: n(6)?,
                })
            })
            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            .map_err(&what)?;
        Ok(Stats {
            records,
            first,
            last,
            kinds,
            outcomes,
            tools,
        })
    }

    fn anchor(&mut self) -> Result<Option<Anchor>, AuditError> {
        let what = storage("reading the prune anchor", &self.path);
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
            .map_err(what)
    }

    fn prune(
        &mut self,
        before: &str,
        make: &mut MakeAnchorRecord<'_>,
    ) -> Result<Option<(Anchor, Record)>, AuditError> {
        let what = storage("pruning", &self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&what)?;
        // The prefix ends before the first record at or after `before`.
        let first_kept: Option<i64> = tx
            .query_row(
                "SELECT min(seq) FROM all_records WHERE time >= ?1",
                [before],
                |r| r.get(0),
            )
            .map_err(&what)?;
        let last_removed: Option<(i64, String)> = match first_kept {
            Some(kept) => tx.query_row(
                "SELECT seq, hash FROM all_records WHERE seq < ?1 ORDER BY seq DESC LIMIT 1",
                [kept],
                |r| Ok((r.get(0)?, r.get(1)?)),
            ),
            None => tx.query_row(
                "SELECT seq, hash FROM all_records ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            ),
        }
        .optional()
        .map_err(&what)?;
        let Some((seq, hash)) = last_removed else {
            return Ok(None);
        };
        let head = head_in(&tx).map_err(&what)?.ok_or(AuditError::Empty)?;
        let anchor = Anchor {
            seq: seq as u64,
            hash,
            time: super::time::now(),
        };
        let record = make(&anchor, &head);
        tx.execute("DELETE FROM records WHERE seq <= ?1", [seq])
            .map_err(&what)?;
        let removed = tx
            .execute("DELETE FROM unindexed WHERE seq <= ?1", [seq])
            .map_err(&what)?;
        tx.execute(
            "INSERT INTO anchors (seq, hash, time) VALUES (?1, ?2, ?3)",
            params![seq, anchor.hash, anchor.time],
        )
        .map_err(&what)?;
        insert(&tx, Table::Unindexed, std::slice::from_ref(&record)).map_err(&what)?;
        tx.commit().map_err(&what)?;
        self.unindexed = (self.unindexed + 1).saturating_sub(removed as u64);
        Ok(Some((anchor, record)))
    }

    fn put_checkpoint(&mut self, c: &Checkpoint) -> Result<(), AuditError> {
        let what = storage("storing a checkpoint", &self.path);
        put_checkpoint(&self.conn, c).map_err(what)
    }

    fn latest_checkpoint(&mut self) -> Result<Option<Checkpoint>, AuditError> {
        let what = storage("reading the latest checkpoint", &self.path);
        self.conn
            .query_row(
                "SELECT seq, hash, time, signature, public_key FROM checkpoints ORDER BY id DESC LIMIT 1",
                [],
                checkpoint_row,
            )
            .optional()
            .map_err(what)
    }

    fn set_durability(&mut self, durability: Durability) -> Result<(), AuditError> {
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Process => "NORMAL",
        };
        let what = storage("setting the durability", &self.path);
        self.conn
            .execute_batch(&format!("PRAGMA synchronous={synchronous};"))
            .map_err(what)
    }

    fn sync(&mut self) -> Result<(), AuditError> {
        let wal = self.wal_path();
        // No WAL file: nothing was written since the last checkpoint of the WAL into the
        // database, which SQLite syncs itself.
        match std::fs::File::open(&wal) {
            Ok(file) => file.sync_data().map_err(|source| AuditError::Sync {
                path: wal.clone(),
                source,
            })?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(AuditError::OpenForSync { path: wal, source }),
        }
        if !self.dir_synced {
            if let Some(dir) = self.path.parent() {
                let dir = if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                };
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|source| AuditError::SyncDir {
                        path: dir.to_path_buf(),
                        source,
                    })?;
            }
            self.dir_synced = true;
        }
        Ok(())
    }

    fn checkpoints(&mut self) -> Result<Vec<Checkpoint>, AuditError> {
        let what = storage("reading the checkpoints", &self.path);
        let mut statement = self
            .conn
            .prepare("SELECT seq, hash, time, signature, public_key FROM checkpoints ORDER BY id")
            .map_err(&what)?;
        let rows = statement.query_map([], checkpoint_row).map_err(&what)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(what)
    }
}
