//! Where records are kept: a small interface, so that a PostgreSQL backend can follow
//! the embedded SQLite one ([`super::sqlite`]).
//!
//! A store only keeps records; the chain is made by the caller. Appends are
//! serialised by the store (a write lock held from reading the head to the commit), so
//! several processes may append to one store. Nothing in this interface edits a record;
//! the only removal is [`Store::prune`], of a prefix, which leaves an anchor.

use super::checkpoint::Checkpoint;
use super::record::{Outcome, Record};

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

/// Builds the records of one append from the head they follow.
pub type MakeRecords<'a> = dyn FnMut(Option<&Head>) -> Vec<Record> + 'a;

/// Builds the anchor record of a prune from the anchor and the head it follows.
pub type MakeAnchorRecord<'a> = dyn FnMut(&Anchor, &Head) -> Record + 'a;

/// A place to keep the audit log.
pub trait Store: Send {
    /// In one durable transaction: reads the head under the store's write lock, asks
    /// `make` for the records that follow it, writes them and commits (returning once
    /// the commit is on disk). Returns the records written.
    fn append(&mut self, make: &mut MakeRecords<'_>) -> anyhow::Result<Vec<Record>>;

    /// The last record, if any.
    fn head(&mut self) -> anyhow::Result<Option<Head>>;

    /// Records matching `filter`, in sequence order.
    fn read(&mut self, filter: &Filter) -> anyhow::Result<Vec<Record>>;

    /// The anchor of the pruned prefix, if a prefix was pruned.
    fn anchor(&mut self) -> anyhow::Result<Option<Anchor>>;

    /// In one durable transaction: removes the records written before `before` (the
    /// prefix up to the first record at or after it), stores the anchor, and appends
    /// the record `make` builds for it. `None` if no record is that old.
    fn prune(
        &mut self,
        before: &str,
        make: &mut MakeAnchorRecord<'_>,
    ) -> anyhow::Result<Option<(Anchor, Record)>>;

    /// Stores a signed checkpoint.
    fn put_checkpoint(&mut self, checkpoint: &Checkpoint) -> anyhow::Result<()>;

    /// The newest checkpoint, if any.
    fn latest_checkpoint(&mut self) -> anyhow::Result<Option<Checkpoint>>;
}
