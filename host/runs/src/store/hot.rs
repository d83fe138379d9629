//! The step path's write transactions, through the connection's statement cache.
//!
//! `rusqlite`'s own transactions run `BEGIN` and `COMMIT` as a batch, parsed afresh
//! each time; a step runs two transactions, and parsing their statements was a few
//! percent of a step's CPU. These run the same statements from the cache. (Not so
//! pragmas: SQLite applies `PRAGMA synchronous = …` when it prepares the statement,
//! so a cached one would set nothing when run again.)

use std::ops::Deref;

use rusqlite::Connection;

/// A transaction begun with `BEGIN IMMEDIATE` (the write lock taken at once), rolled
/// back when dropped uncommitted.
pub(super) struct Immediate<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> Immediate<'c> {
    pub(super) fn begin(conn: &'c Connection) -> rusqlite::Result<Self> {
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        Ok(Self { conn, open: true })
    }

    pub(super) fn commit(mut self) -> rusqlite::Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.open = false;
        Ok(())
    }
}

impl Deref for Immediate<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Immediate<'_> {
    fn drop(&mut self) {
        if self.open {
            // A failed statement inside, or an early return: nothing of it stays (a
            // failed rollback is ignored, as `rusqlite`'s own transactions do).
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}
