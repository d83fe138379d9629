//! Records and checkpoints to and from the store's rows: the inserts (many rows a
//! statement), the reads as stored or as records, the head.

use rusqlite::{Connection, OptionalExtension as _, params};
use serde_json::Value;

use super::COLUMNS;
use crate::checkpoint::Checkpoint;
use crate::record::Record;
use crate::store::{Head, StoredRecord};

/// Rows a multi-row INSERT carries (10 parameters each, far below SQLite's limit).
const ROWS_PER_INSERT: usize = 32;

/// Which record table an insert goes into.
#[derive(Clone, Copy)]
pub(super) enum Table {
    Records,
    Unindexed,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Records => "records",
            Table::Unindexed => "unindexed",
        }
    }
}

pub(super) fn insert(
    tx: &rusqlite::Transaction<'_>,
    table: Table,
    records: &[Record],
) -> rusqlite::Result<()> {
    let mut fields = Vec::with_capacity(256);
    let mut chunks = records.chunks_exact(ROWS_PER_INSERT);
    if chunks.len() > 0 {
        let mut stmt = tx.prepare_cached(&insert_sql(table, ROWS_PER_INSERT))?;
        for chunk in &mut chunks {
            for (i, r) in chunk.iter().enumerate() {
                bind(&mut stmt, i * 10, r, &mut fields)?;
            }
            stmt.raw_execute()?;
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut stmt = tx.prepare_cached(&insert_sql(table, 1))?;
        for r in rest {
            bind(&mut stmt, 0, r, &mut fields)?;
            stmt.raw_execute()?;
        }
    }
    Ok(())
}

pub(super) fn insert_sql(table: Table, rows: usize) -> String {
    let mut sql = format!("INSERT INTO {} ({COLUMNS}) VALUES ", table.name());
    for row in 0..rows {
        if row > 0 {
            sql.push(',');
        }
        sql.push('(');
        for column in 0..10 {
            if column > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("?{}", row * 10 + column + 1));
        }
        sql.push(')');
    }
    sql
}

/// Binds record `r` to parameters `at + 1 ..= at + 10`; `fields` is scratch space.
pub(super) fn bind(
    stmt: &mut rusqlite::CachedStatement<'_>,
    at: usize,
    r: &Record,
    fields: &mut Vec<u8>,
) -> rusqlite::Result<()> {
    fields.clear();
    crate::canonical::write(fields, &r.fields);
    // Canonical JSON of a `Value` is UTF-8.
    let fields = std::str::from_utf8(fields).unwrap_or_default();
    stmt.raw_bind_parameter(at + 1, r.seq as i64)?;
    stmt.raw_bind_parameter(at + 2, &r.time)?;
    stmt.raw_bind_parameter(at + 3, &r.kind)?;
    stmt.raw_bind_parameter(at + 4, &r.principal)?;
    stmt.raw_bind_parameter(at + 5, &r.plugin)?;
    stmt.raw_bind_parameter(at + 6, &r.tool)?;
    stmt.raw_bind_parameter(at + 7, r.outcome.map(|o| o.as_str()))?;
    stmt.raw_bind_parameter(at + 8, fields)?;
    stmt.raw_bind_parameter(at + 9, &r.prev)?;
    stmt.raw_bind_parameter(at + 10, &r.hash)?;
    Ok(())
}

pub(super) fn checkpoint_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Checkpoint> {
    Ok(Checkpoint {
        seq: row.get::<_, i64>(0)? as u64,
        hash: row.get(1)?,
        time: row.get(2)?,
        signature: row.get(3)?,
        public_key: row.get(4)?,
    })
}

pub(super) fn put_checkpoint(conn: &Connection, c: &Checkpoint) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO checkpoints (seq, hash, time, signature, public_key) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![c.seq as i64, c.hash, c.time, c.signature, c.public_key])?;
    Ok(())
}

pub(super) fn head_in(conn: &Connection) -> rusqlite::Result<Option<Head>> {
    conn.prepare_cached("SELECT seq, hash FROM all_records ORDER BY seq DESC LIMIT 1")?
        .query_row([], |row| {
            Ok(Head {
                seq: row.get::<_, i64>(0)? as u64,
                hash: row.get(1)?,
            })
        })
        .optional()
}

/// A row as stored, borrowed; `None` if a column does not hold the type written.
pub(super) fn stored<'a>(row: &'a rusqlite::Row<'_>) -> Option<StoredRecord<'a>> {
    use rusqlite::types::ValueRef;
    let text = |i: usize| match row.get_ref(i).ok()? {
        ValueRef::Text(t) => std::str::from_utf8(t).ok(),
        _ => None,
    };
    let optional = |i: usize| match row.get_ref(i).ok()? {
        ValueRef::Null => Some(None),
        ValueRef::Text(t) => std::str::from_utf8(t).ok().map(Some),
        _ => None,
    };
    let seq = match row.get_ref(0).ok()? {
        ValueRef::Integer(i) => i as u64,
        _ => return None,
    };
    Some(StoredRecord {
        seq,
        time: text(1)?,
        kind: text(2)?,
        principal: text(3)?,
        plugin: optional(4)?,
        tool: optional(5)?,
        outcome: optional(6)?,
        fields: text(7)?,
        prev: text(8)?,
        hash: text(9)?,
    })
}

/// A row as a record. Values are taken as they are stored, so that a changed row is
/// read (and fails verification) rather than refused.
pub(super) fn row_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
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
