//! The one thread that owns the store: it takes append requests from every caller,
//! commits those that arrived together in one transaction (group commit), and only
//! then answers each caller. It also signs checkpoints: every `checkpoint_every`
//! records and when it stops.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::AuditOptions;
use super::checkpoint::{Checkpoint, Signer};
use super::durability::Durability;
use super::error::AuditError;
use super::journal::{self, Journal, JournalMark};
use super::record::{Event, GENESIS, Record};
use super::store::{Batch, Store};

/// The most appends committed in one transaction.
const MAX_BATCH: usize = 4096;

/// When fewer appends are waiting than the last transaction answered (and it answered
/// at least [`LINGER_CALLERS`]), the writer waits for those callers to come back, as
/// long as one arrives within this gap…
const LINGER_GAP: Duration = Duration::from_micros(100);

/// …for at most a quarter of the last commit's time (where an fsync is slow, merging two
/// groups of callers into one commit saves a whole fsync), and never more than this.
const LINGER_MAX: Duration = Duration::from_millis(1);

/// Below this many concurrent appends the writer never waits: a lone caller, or a few,
/// get their commit at once.
const LINGER_CALLERS: usize = 8;

/// Records waiting to be indexed (see [`Store::index`]) at which the writer indexes
/// them, once the commit that reached it is answered: one transaction for many
/// records, where each index's pages are shared.
pub const INDEX_AFTER: u64 = 256;

/// With records waiting to be indexed, the writer indexes them when no request came
/// for this long.
const INDEX_IDLE: Duration = Duration::from_millis(50);

/// After a failed index, the writer tries again no sooner than this.
const INDEX_RETRY: Duration = Duration::from_secs(10);

/// After journaled events failed to commit, the writer tries again this often.
const JOURNAL_RETRY: Duration = Duration::from_secs(1);

/// The journal, locked (a panic while it was held left nothing half done that matters:
/// lines are written whole or not at all).
pub(crate) fn lock(journal: &Mutex<Journal>) -> MutexGuard<'_, Journal> {
    journal.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Signs record `seq` with `hash`, loading the key on first use; `None` (and a warning)
/// if the key cannot be loaded.
fn sign(home: &Path, signer: &mut Option<Signer>, seq: u64, hash: &str) -> Option<Checkpoint> {
    if signer.is_none() {
        match Signer::load_or_create(home) {
            Ok(loaded) => *signer = Some(loaded),
            Err(err) => {
                tracing::warn!("audit: signing a checkpoint: {err:#}");
                return None;
            }
        }
    }
    signer.as_ref().map(|s| s.sign(seq, hash))
}

/// Delivers the result of an append to its caller (async or blocking).
pub(crate) type AppendReply = Box<dyn FnOnce(Result<Record, AuditError>) + Send>;

/// Something to run with the writer's store (see [`Request::Job`]).
pub(crate) type Job = Box<dyn FnOnce(&mut Writer) + Send>;

/// Work for the writer thread.
pub(crate) enum Request {
    /// Append these events, in this order, in one transaction.
    AppendAll(Vec<(Event, AppendReply)>),
    /// Events were journaled: the first since the writer last took them, or one a
    /// caller waits for.
    Journaled,
    /// Run something with the store (reads, prune, checkpoints), in order with appends.
    Job(Job),
}

/// The writer thread's state.
pub struct Writer {
    store: Box<dyn Store>,
    home: PathBuf,
    signer: Option<Signer>,
    options: AuditOptions,
    /// The seq of the newest checkpoint (0: none).
    checkpointed: u64,
    /// The seq of the head as this writer last saw it.
    head: u64,
    /// Whether this writer appended anything (a read-only session signs nothing).
    appended: bool,
    /// With [`Durability::Process`]: when the oldest commit not yet synced was made.
    unsynced: Option<Instant>,
    /// When indexing last failed (none: it did not, or succeeded since).
    index_failed: Option<Instant>,
    /// The journal this process owns, if any (see [`journal`]).
    journal: Option<Arc<Mutex<Journal>>>,
    /// When journaled events last failed to commit (they wait in the journal).
    journal_failed: Option<Instant>,
}

/// One record to make: its event, its time (a journaled event's; by default the
/// commit's) and who waits for it.
struct Append {
    event: Event,
    time: Option<String>,
    reply: Option<AppendReply>,
}

impl Writer {
    pub(crate) fn new(
        mut store: Box<dyn Store>,
        home: PathBuf,
        options: AuditOptions,
    ) -> Result<Self, AuditError> {
        store.set_durability(options.durability)?;
        let checkpointed = store.latest_checkpoint()?.map_or(0, |c| c.seq);
        let head = store.head()?.map_or(0, |h| h.seq);
        let mut writer = Self {
            store,
            home,
            signer: None,
            options,
            checkpointed,
            head,
            appended: false,
            unsynced: None,
            index_failed: None,
            journal: None,
            journal_failed: None,
        };
        writer.journal = writer.open_journal()?.map(|j| Arc::new(Mutex::new(j)));
        Ok(writer)
    }

    /// The journal callers write to, if this writer owns one.
    pub(crate) fn journal(&self) -> Option<Arc<Mutex<Journal>>> {
        self.journal.clone()
    }

    /// Commits what a journal left by a process that stopped holds, and keeps the
    /// journal for this process's callers if its durability is `process`. `None` if the
    /// store keeps no journal, another process owns it, or it is not wanted.
    fn open_journal(&mut self) -> Result<Option<Journal>, AuditError> {
        let Some(path) = self.store.journal_path() else {
            return Ok(None);
        };
        let process = self.options.durability == Durability::Process;
        let Some(mut owned) = journal::take(&path, process)? else {
            return Ok(None);
        };
        let mark = self.store.journal_mark()?;
        let lines = owned.unstored(mark.as_ref());
        if let Some(last) = lines.last().map(|l| l.mark.clone()) {
            let count = lines.len();
            let appends = lines
                .into_iter()
                .map(|line| Append {
                    event: line.event,
                    time: Some(line.time),
                    reply: None,
                })
                .collect();
            self.commit(appends, Some(last))
                .map_err(|error| AuditError::Commit { error })?;
            tracing::warn!(
                "audit: committed {count} records journaled by a process that stopped ({})",
                path.display()
            );
        }
        if process {
            owned.into_journal().map(Some)
        } else {
            owned.release().map(|()| None)
        }
    }

    /// Commits the journaled events waiting, if any. If they cannot be, they stay in
    /// the journal (which is synced) and the writer tries again every
    /// [`JOURNAL_RETRY`].
    fn drain_journal(&mut self) {
        let Some(journal) = self.journal.clone() else {
            return;
        };
        let Some(taken) = lock(&journal).take() else {
            return;
        };
        let (first, last, since) = (taken.first, taken.mark.line, taken.since);
        let appends = taken
            .events
            .into_iter()
            .map(|j| Append {
                event: j.event,
                time: Some(j.time),
                reply: j.reply,
            })
            .collect();
        match self.commit(appends, Some(taken.mark)) {
            Ok(()) => {
                self.journal_failed = None;
                if self.options.durability == Durability::Process {
                    // The window runs from the first line, not the commit.
                    self.unsynced = Some(self.unsynced.map_or(since, |u| u.min(since)));
                }
                lock(&journal).committed();
            }
            Err(err) => {
                tracing::error!(
                    "audit: committing journaled records (they are kept in the journal; trying again every {} s): {err:#}",
                    JOURNAL_RETRY.as_secs()
                );
                self.journal_failed = Some(Instant::now());
                lock(&journal).put_back(first, last, since);
            }
        }
    }

    /// With journaled events waiting and no callers waiting for them, lets more
    /// gather for [`journal::LINGER`]; a request that is not a journal's wake ends
    /// the wait and is taken into `batch` or `jobs`.
    fn linger(
        &self,
        requests: &mpsc::Receiver<Request>,
        batch: &mut Vec<(Event, AppendReply)>,
        jobs: &mut Vec<Job>,
    ) {
        let Some(journal) = &self.journal else {
            return;
        };
        let until = Instant::now() + journal::LINGER;
        loop {
            if lock(journal).urgent() {
                return;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match requests.recv_timeout(left) {
                Ok(Request::Journaled) => continue,
                Ok(Request::AppendAll(appends)) => batch.extend(appends),
                Ok(Request::Job(job)) => jobs.push(job),
                Err(_) => {}
            }
            return;
        }
    }

    /// Syncs the commits not yet synced. A failed sync is logged and the store goes
    /// back to [`Durability::Full`]: the answers already given cannot be taken back,
    /// but the next appends are synced or fail in their callers' hands.
    fn sync(&mut self) {
        if self.unsynced.take().is_none() {
            return;
        }
        if let Err(err) = self.store.sync() {
            tracing::error!(
                "audit: syncing the log failed; records answered in the last {} ms may not survive a power cut; every append is synced from now on: {err:#}",
                Durability::SYNC_WITHIN.as_millis()
            );
            self.options.durability = Durability::Full;
            if let Err(err) = self.store.set_durability(Durability::Full) {
                tracing::error!("audit: switching to full durability: {err:#}");
            }
            // Callers append through the writer from now on; what they journaled
            // before is committed (synced) first.
            if let Some(journal) = self.journal.clone() {
                lock(&journal).close();
                self.drain_journal();
            }
        }
    }

    /// Indexes the records waiting for it. A failure is logged: they stay on the log,
    /// read and verified as before, and the next index takes them.
    fn index(&mut self) {
        match self.store.index() {
            Ok(()) => self.index_failed = None,
            Err(err) => {
                tracing::warn!(
                    "audit: indexing the newest {} records (they are on the log; trying again in {} s): {err:#}",
                    self.store.unindexed(),
                    INDEX_RETRY.as_secs()
                );
                self.index_failed = Some(Instant::now());
            }
        }
    }

    /// Whether records wait to be indexed, this writer appended (a read-only session,
    /// such as `warden audit verify` beside a server, writes nothing), and the last
    /// failure to index, if any, is [`INDEX_RETRY`] ago.
    fn indexing_due(&self) -> bool {
        self.appended
            && self.store.unindexed() > 0
            && self.index_failed.is_none_or(|t| t.elapsed() >= INDEX_RETRY)
    }

    /// The next request. Meanwhile: with commits waiting for their sync, syncs them
    /// when none comes before their window closes; with records waiting to be
    /// indexed, indexes them when none comes for [`INDEX_IDLE`]. `None` once every
    /// sender is gone.
    fn next_request(&mut self, requests: &mpsc::Receiver<Request>) -> Option<Request> {
        let idle = Instant::now();
        loop {
            let sync = self
                .unsynced
                .map(|since| Durability::SYNC_WITHIN.saturating_sub(since.elapsed()));
            let index = self
                .indexing_due()
                .then(|| INDEX_IDLE.saturating_sub(idle.elapsed()));
            let retry = self
                .journal_failed
                .map(|since| JOURNAL_RETRY.saturating_sub(since.elapsed()));
            let Some(left) = sync.into_iter().chain(index).chain(retry).min() else {
                return requests.recv().ok();
            };
            match requests.recv_timeout(left) {
                Ok(request) => return Some(request),
                Err(RecvTimeoutError::Timeout) => {
                    if retry.is_some_and(|r| r <= left) {
                        return Some(Request::Journaled);
                    }
                    if sync.is_some_and(|s| s <= left) {
                        self.sync();
                    }
                    if index.is_some_and(|i| i <= left) {
                        self.index();
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// The store, for jobs.
    pub fn store(&mut self) -> &mut dyn Store {
        &mut *self.store
    }

    /// Signs and stores a checkpoint of the current head, unless the newest checkpoint
    /// is already of it. Returns the newest checkpoint (none for an empty log).
    pub fn checkpoint(&mut self) -> Result<Option<Checkpoint>, AuditError> {
        let latest = self.store.latest_checkpoint()?;
        let Some(head) = self.store.head()? else {
            return Ok(latest);
        };
        if let Some(latest) = latest
            && latest.seq == head.seq
            && latest.hash == head.hash
        {
            return Ok(Some(latest));
        }
        let signer = match &mut self.signer {
            Some(signer) => signer,
            None => self.signer.insert(Signer::load_or_create(&self.home)?),
        };
        let checkpoint = signer.sign(head.seq, &head.hash);
        self.store.put_checkpoint(&checkpoint)?;
        self.checkpointed = head.seq;
        self.head = head.seq;
        Ok(Some(checkpoint))
    }

    /// Commits records of `appends` in one transaction (with `journal`, the mark of
    /// the journal line they end with) and answers those waiting for them.
    fn commit(
        &mut self,
        appends: Vec<Append>,
        journal: Option<JournalMark>,
    ) -> Result<(), Arc<AuditError>> {
        let mut replies = Vec::with_capacity(appends.len());
        let mut events = Vec::with_capacity(appends.len());
        for append in appends {
            events.push((append.event, append.time));
            replies.push(append.reply);
        }
        let mut events = Some(events);
        let mut journal = Some(journal);
        let time = super::time::now();
        let every = self.options.checkpoint_every;
        let checkpointed = self.checkpointed;
        let (home, signer) = (&self.home, &mut self.signer);
        let result = self.store.append(&mut |head| {
            let mut seq = head.map_or(0, |h| h.seq);
            let events = events.take().unwrap_or_default();
            let mut records: Vec<Record> = Vec::with_capacity(events.len());
            for (event, at) in events {
                seq += 1;
                let prev = records
                    .last()
                    .map_or_else(|| head.map_or(GENESIS, |h| &h.hash), |r| &r.hash)
                    .to_string();
                let at = at.unwrap_or_else(|| time.clone());
                records.push(Record::new(seq, at, event, prev));
            }
            // Every `every` records, a checkpoint of the new head goes into the same
            // transaction (no fsync of its own).
            let checkpoint = match records.last() {
                Some(last) if every > 0 && last.seq >= checkpointed + every => {
                    sign(home, signer, last.seq, &last.hash)
                }
                _ => None,
            };
            Batch {
                records,
                checkpoint,
                journal: journal.take().flatten(),
            }
        });
        match result {
            Ok(batch) => {
                if let Some(last) = batch.records.last() {
                    self.head = last.seq;
                    self.appended = true;
                }
                if self.options.durability == Durability::Process {
                    self.unsynced.get_or_insert_with(Instant::now);
                }
                if let Some(checkpoint) = &batch.checkpoint {
                    self.checkpointed = checkpoint.seq;
                }
                for (reply, record) in replies.into_iter().zip(batch.records) {
                    if let Some(reply) = reply {
                        reply(Ok(record));
                    }
                }
                Ok(())
            }
            Err(err) => {
                let error = Arc::new(err);
                for reply in replies.into_iter().flatten() {
                    reply(Err(AuditError::Commit {
                        error: error.clone(),
                    }));
                }
                Err(error)
            }
        }
    }

    /// Notes that a job appended records (a prune's anchor record).
    pub fn appended(&mut self) {
        self.appended = true;
    }

    /// Serves requests until every sender is gone, then signs a final checkpoint if
    /// this writer appended anything.
    pub(crate) fn run(mut self, requests: mpsc::Receiver<Request>) {
        // How many appends the last transaction answered (callers likely to be back),
        // and how long it took.
        let mut answered = 0;
        let mut last_commit = Duration::ZERO;
        while let Some(first) = self.next_request(&requests) {
            let mut batch = Vec::new();
            let mut jobs = Vec::new();
            let mut next = Some(first);
            let mut lingering: Option<Instant> = None;
            let mut journaled = false;
            loop {
                while let Some(request) = next {
                    match request {
                        Request::AppendAll(appends) => batch.extend(appends),
                        Request::Journaled => journaled = true,
                        Request::Job(job) => jobs.push(job),
                    }
                    next = if batch.len() < MAX_BATCH {
                        requests.try_recv().ok()
                    } else {
                        None
                    };
                }
                // Group commit: more appends per fsync when many callers are about.
                let since = *lingering.get_or_insert_with(Instant::now);
                let left = (last_commit / 4)
                    .min(LINGER_MAX)
                    .saturating_sub(since.elapsed());
                if batch.is_empty()
                    || answered < LINGER_CALLERS
                    || batch.len() >= answered
                    || batch.len() >= MAX_BATCH
                    || !jobs.is_empty()
                    || left.is_zero()
                {
                    break;
                }
                match requests.recv_timeout(left.min(LINGER_GAP)) {
                    Ok(request) => next = Some(request),
                    Err(_) => break,
                }
            }
            if journaled && batch.is_empty() && jobs.is_empty() {
                self.linger(&requests, &mut batch, &mut jobs);
            }
            // Journaled events first: they were answered already. (Appends come
            // through the channel only where there is no journal, or from a job.)
            self.drain_journal();
            answered = batch.len();
            if !batch.is_empty() {
                let start = Instant::now();
                let appends = batch
                    .into_iter()
                    .map(|(event, reply)| Append {
                        event,
                        time: None,
                        reply: Some(reply),
                    })
                    .collect();
                let _ = self.commit(appends, None);
                last_commit = start.elapsed();
            }
            if !jobs.is_empty() && self.options.durability == Durability::Process {
                // A job may commit (a prune, a checkpoint): its sync is due too.
                self.unsynced.get_or_insert_with(Instant::now);
            }
            for job in jobs {
                job(&mut self);
            }
            if self.store.unindexed() >= INDEX_AFTER && self.indexing_due() {
                self.index();
            }
            // Under a steady stream of appends no wait times out: sync once the oldest
            // unsynced commit is due.
            if self
                .unsynced
                .is_some_and(|since| since.elapsed() >= Durability::SYNC_WITHIN)
            {
                self.sync();
            }
        }
        self.drain_journal();
        if self.indexing_due() {
            self.index();
        }
        if self.appended
            && let Err(err) = self.checkpoint()
        {
            tracing::warn!("audit: signing the checkpoint at shutdown: {err:#}");
        }
        if self.options.durability == Durability::Process {
            // The shutdown checkpoint too.
            self.unsynced.get_or_insert_with(Instant::now);
        }
        self.sync();
    }
}

#[cfg(test)]
mod tests;
