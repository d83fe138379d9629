//! Where records are kept: a small interface, so that a PostgreSQL backend can follow
//! the embedded SQLite one ([`super::sqlite`]).
//!
//! A store only keeps records; the chain is made by the caller. Appends are
//! serialised by the store (a write lock held from reading the head to the commit), so
//! several processes may append to one store. Nothing in this interface edits a record;
//! the only removal is [`Store::prune`], of a prefix, which leaves an anchor.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::checkpoint::Checkpoint;
use super::durability::Durability;
use super::error::AuditError;
use super::journal::JournalMark;
use super::record::{Members, Outcome, Record, hash_is};

/// The last record of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Its sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

/// What is left of a pruned prefix: the last removed record's `seq` and `hash`, which
/// the first remaining record's `prev` must match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    /// The last removed record.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
    /// When the prefix was removed.
    pub time: String,
}

/// Which records to read. Every set field must match; times compare as record times.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only this plugin.
    pub plugin: Option<String>,
    /// Only this tool.
    pub tool: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this principal.
    pub principal: Option<String>,
    /// Only this outcome.
    pub outcome: Option<Outcome>,
    /// At or after this record time.
    pub since: Option<String>,
    /// Before this record time.
    pub until: Option<String>,
    /// Only records after this sequence number.
    pub after_seq: Option<u64>,
    /// At most this many.
    pub limit: Option<usize>,
    /// The newest `limit` records (still returned oldest first).
    pub newest: bool,
}

/// Counts over a period of the log (`warden audit stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Records in the period.
    pub records: u64,
    /// The time of the first of them.
    pub first: Option<String>,
    /// The time of the last of them.
    pub last: Option<String>,
    /// Records by kind.
    pub kinds: BTreeMap<String, u64>,
    /// Records by outcome (`none`: records without one).
    pub outcomes: BTreeMap<String, u64>,
    /// Per plugin and tool (records naming neither are left out), by name.
    pub tools: Vec<ToolStats>,
}

/// The records of one plugin and tool in [`Stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ToolStats {
    /// The plugin.
    pub plugin: Option<String>,
    /// The tool.
    pub tool: Option<String>,
    /// Records naming them.
    pub records: u64,
    /// Calls (`tool.call` records).
    pub calls: u64,
    /// Calls that ended `ok`.
    pub ok: u64,
    /// Calls that ended in an `error`.
    pub errors: u64,
    /// Records with the outcome `denied`: refused calls and capability denials.
    pub denied: u64,
}

/// A record as a store holds it, borrowed (what verification reads): `fields` is the
/// stored JSON text, `outcome` the stored text.
#[derive(Clone, Copy, Debug)]
pub struct StoredRecord<'a> {
    /// See [`Record::seq`].
    pub seq: u64,
    /// See [`Record::time`].
    pub time: &'a str,
    /// See [`Record::kind`].
    pub kind: &'a str,
    /// See [`Record::principal`].
    pub principal: &'a str,
    /// See [`Record::plugin`].
    pub plugin: Option<&'a str>,
    /// See [`Record::tool`].
    pub tool: Option<&'a str>,
    /// See [`Record::outcome`], as text.
    pub outcome: Option<&'a str>,
    /// See [`Record::fields`], as JSON text.
    pub fields: &'a str,
    /// See [`Record::prev`].
    pub prev: &'a str,
    /// See [`Record::hash`].
    pub hash: &'a str,
}

impl StoredRecord<'_> {
    /// Whether the stored hash matches the content taken as stored: the fields text
    /// is hashed as it is (a store writes it canonical), without parsing it. `false`
    /// does not settle it: a non-canonical but equal text is checked by
    /// [`Record::hash_ok`] on [`StoredRecord::to_record`]. `buf` is scratch space.
    pub fn hash_ok_as_stored(&self, buf: &mut Vec<u8>) -> bool {
        let outcome = match self.outcome {
            None => None,
            Some(o @ ("ok" | "error" | "denied")) => Some(o),
            Some(_) => return false,
        };
        buf.clear();
        Members {
            seq: self.seq,
            time: self.time,
            kind: self.kind,
            principal: self.principal,
            plugin: self.plugin,
            tool: self.tool,
            outcome,
            prev: self.prev,
        }
        .write(buf, |out| out.extend_from_slice(self.fields.as_bytes()));
        hash_is(buf, self.hash)
    }

    /// The record, its fields parsed (text that is not JSON is kept as a string, and
    /// an unknown outcome read as none: either way the hash no longer matches).
    pub fn to_record(&self) -> Record {
        Record {
            seq: self.seq,
            time: self.time.to_string(),
            kind: self.kind.to_string(),
            principal: self.principal.to_string(),
            plugin: self.plugin.map(str::to_string),
            tool: self.tool.map(str::to_string),
            outcome: self.outcome.and_then(|o| o.parse().ok()),
            fields: serde_json::from_str(self.fields)
                .unwrap_or_else(|_| Value::String(self.fields.to_string())),
            prev: self.prev.to_string(),
            hash: self.hash.to_string(),
        }
    }
}

/// What one append writes: records, and perhaps a checkpoint of the last of them.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// The records, in order, following the head.
    pub records: Vec<Record>,
    /// A signed checkpoint to store with them.
    pub checkpoint: Option<Checkpoint>,
    /// The last journal line the records were made of (see [`Store::journal_path`]),
    /// to store with them.
    pub journal: Option<JournalMark>,
}

/// Builds the records of one append from the head they follow.
pub type MakeRecords<'a> = dyn FnMut(Option<&Head>) -> Batch + 'a;

/// Builds the anchor record of a prune from the anchor and the head it follows.
pub type MakeAnchorRecord<'a> = dyn FnMut(&Anchor, &Head) -> Record + 'a;

/// A place to keep the audit log.
pub trait Store: Send {
    /// In one durable transaction: reads the head under the store's write lock, asks
    /// `make` for the records that follow it (and a checkpoint), writes them and
    /// commits (returning once the commit is on disk, or, with
    /// [`Durability::Process`], written). Returns what was written.
    fn append(&mut self, make: &mut MakeRecords<'_>) -> Result<Batch, AuditError>;

    /// The last record, if any.
    fn head(&mut self) -> Result<Option<Head>, AuditError>;

    /// Records matching `filter`, in sequence order.
    fn read(&mut self, filter: &Filter) -> Result<Vec<Record>, AuditError>;

    /// Calls `each` on up to `limit` records after `after_seq`, in sequence order, as
    /// stored (no copies); stops early when `each` returns `false`. Returns the seq of
    /// the last record passed, `None` if there was none.
    fn scan(
        &mut self,
        after_seq: u64,
        limit: usize,
        each: &mut dyn FnMut(&StoredRecord<'_>) -> bool,
    ) -> Result<Option<u64>, AuditError>;

    /// Counts of the records written at or after `since` and before `until` (record
    /// times; either may be open).
    fn stats(&mut self, since: Option<&str>, until: Option<&str>) -> Result<Stats, AuditError>;

    /// The anchor of the pruned prefix, if a prefix was pruned.
    fn anchor(&mut self) -> Result<Option<Anchor>, AuditError>;

    /// In one durable transaction: removes the records written before `before` (the
    /// prefix up to the first record at or after it), stores the anchor, and appends
    /// the record `make` builds for it. `None` if no record is that old.
    fn prune(
        &mut self,
        before: &str,
        make: &mut MakeAnchorRecord<'_>,
    ) -> Result<Option<(Anchor, Record)>, AuditError>;

    /// Stores a signed checkpoint.
    fn put_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), AuditError>;

    /// The newest checkpoint, if any.
    fn latest_checkpoint(&mut self) -> Result<Option<Checkpoint>, AuditError>;

    /// Every stored checkpoint, oldest first.
    fn checkpoints(&mut self) -> Result<Vec<Checkpoint>, AuditError>;

    /// How durable a commit is when [`Store::append`] returns: with
    /// [`Durability::Process`] it need only be written (the writer calls
    /// [`Store::sync`] within [`Durability::SYNC_WITHIN`]). A store that cannot do
    /// less than sync keeps syncing (the default).
    fn set_durability(&mut self, durability: Durability) -> Result<(), AuditError> {
        let _ = durability;
        Ok(())
    }

    /// Makes every commit so far durable (a no-op where each commit already is).
    fn sync(&mut self) -> Result<(), AuditError> {
        Ok(())
    }

    /// Records appended but not yet in the indexes that queries use (they are read
    /// and verified like any other); 0 for a store that indexes as it appends.
    fn unindexed(&self) -> u64 {
        0
    }

    /// Puts the records appended since the last call into the query indexes, in one
    /// transaction: the writer calls it off its callers' path (see
    /// [`Store::unindexed`]).
    fn index(&mut self) -> Result<(), AuditError> {
        Ok(())
    }

    /// Where this store's journal is ([`crate::journal`]): with
    /// [`Durability::Process`], callers write their events there and the writer
    /// commits them; `None` (the default) for a store that keeps none, whose appends
    /// all go through the writer. A store with a journal stores [`Batch::journal`].
    fn journal_path(&self) -> Option<std::path::PathBuf> {
        None
    }

    /// The newest [`Batch::journal`] stored, if any.
    fn journal_mark(&mut self) -> Result<Option<JournalMark>, AuditError> {
        Ok(None)
    }
}
