//! The one thread that owns the store: it takes append requests from every caller,
//! commits those that arrived together in one transaction (group commit), and only
//! then answers each caller. It also signs checkpoints: every `checkpoint_every`
//! records and when it stops.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::AuditOptions;
use super::checkpoint::{Checkpoint, Signer};
use super::durability::Durability;
use super::error::AuditError;
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

/// Work for the writer thread.
pub(crate) enum Request {
    /// Append one event.
    Append(Event, AppendReply),
    /// Append these events, in this order, in one transaction.
    AppendAll(Vec<(Event, AppendReply)>),
    /// Run something with the store (reads, prune, checkpoints), in order with appends.
    Job(Box<dyn FnOnce(&mut Writer) + Send>),
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
        Ok(Self {
            store,
            home,
            signer: None,
            options,
            checkpointed,
            head,
            appended: false,
            unsynced: None,
            index_failed: None,
        })
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
            let Some(left) = sync.into_iter().chain(index).min() else {
                return requests.recv().ok();
            };
            match requests.recv_timeout(left) {
                Ok(request) => return Some(request),
                Err(RecvTimeoutError::Timeout) => {
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

    fn commit(&mut self, batch: Vec<(Event, AppendReply)>) {
        let (events, replies): (Vec<Event>, Vec<AppendReply>) = batch.into_iter().unzip();
        let mut events = Some(events);
        let time = super::time::now();
        let every = self.options.checkpoint_every;
        let checkpointed = self.checkpointed;
        let (home, signer) = (&self.home, &mut self.signer);
        let result = self.store.append(&mut |head| {
            let mut seq = head.map_or(0, |h| h.seq);
            let events = events.take().unwrap_or_default();
            let mut records: Vec<Record> = Vec::with_capacity(events.len());
            for event in events {
                seq += 1;
                let prev = records
                    .last()
                    .map_or_else(|| head.map_or(GENESIS, |h| &h.hash), |r| &r.hash)
                    .to_string();
                records.push(Record::new(seq, time.clone(), event, prev));
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
                    reply(Ok(record));
                }
            }
            Err(err) => {
                let error = std::sync::Arc::new(err);
                for reply in replies {
                    reply(Err(AuditError::Commit {
                        error: error.clone(),
                    }));
                }
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
            loop {
                while let Some(request) = next {
                    match request {
                        Request::Append(event, reply) => batch.push((event, reply)),
                        Request::AppendAll(appends) => batch.extend(appends),
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
            answered = batch.len();
            if !batch.is_empty() {
                let start = Instant::now();
                self.commit(batch);
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
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::super::sqlite::SqliteStore;
    use super::super::store::{Anchor, Filter, Head, MakeAnchorRecord, MakeRecords, Stats};
    use super::super::{Audit, AuditOptions, Event, StoredRecord};
    use super::*;

    /// The SQLite store, counting its syncs and noting the durability it was set to;
    /// while `eio` is set, its commits and syncs fail as a disk failing with EIO does.
    struct Counting {
        inner: SqliteStore,
        syncs: Arc<AtomicUsize>,
        normal: Arc<AtomicUsize>,
        eio: Arc<AtomicBool>,
    }

    impl Counting {
        fn failing(&self) -> Result<(), AuditError> {
            if self.eio.load(Ordering::SeqCst) {
                return Err(AuditError::Io(std::io::Error::from_raw_os_error(5)));
            }
            Ok(())
        }
    }

    impl Store for Counting {
        fn append(&mut self, make: &mut MakeRecords<'_>) -> Result<Batch, AuditError> {
            self.failing()?;
            self.inner.append(make)
        }
        fn head(&mut self) -> Result<Option<Head>, AuditError> {
            self.inner.head()
        }
        fn read(&mut self, filter: &Filter) -> Result<Vec<Record>, AuditError> {
            self.inner.read(filter)
        }
        fn scan(
            &mut self,
            after_seq: u64,
            limit: usize,
            each: &mut dyn FnMut(&StoredRecord<'_>) -> bool,
        ) -> Result<Option<u64>, AuditError> {
            self.inner.scan(after_seq, limit, each)
        }
        fn stats(&mut self, since: Option<&str>, until: Option<&str>) -> Result<Stats, AuditError> {
            self.inner.stats(since, until)
        }
        fn anchor(&mut self) -> Result<Option<Anchor>, AuditError> {
            self.inner.anchor()
        }
        fn prune(
            &mut self,
            before: &str,
            make: &mut MakeAnchorRecord<'_>,
        ) -> Result<Option<(Anchor, Record)>, AuditError> {
            self.inner.prune(before, make)
        }
        fn put_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), AuditError> {
            self.inner.put_checkpoint(checkpoint)
        }
        fn latest_checkpoint(&mut self) -> Result<Option<Checkpoint>, AuditError> {
            self.inner.latest_checkpoint()
        }
        fn checkpoints(&mut self) -> Result<Vec<Checkpoint>, AuditError> {
            self.inner.checkpoints()
        }
        fn set_durability(&mut self, durability: Durability) -> Result<(), AuditError> {
            self.inner.set_durability(durability)?;
            let synchronous = self.inner.pragma("synchronous")?;
            self.normal
                .store(usize::from(synchronous == "1"), Ordering::SeqCst);
            Ok(())
        }
        fn sync(&mut self) -> Result<(), AuditError> {
            self.syncs.fetch_add(1, Ordering::SeqCst);
            self.failing()?;
            self.inner.sync()
        }
        fn unindexed(&self) -> u64 {
            self.inner.unindexed()
        }
        fn index(&mut self) -> Result<(), AuditError> {
            self.failing()?;
            self.inner.index()
        }
    }

    fn open(home: &Path, durability: Durability) -> (Audit, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let (audit, syncs, normal, _) = open_failing(home, durability);
        (audit, syncs, normal)
    }

    /// [`open`], and the switch that makes the disk fail.
    fn open_failing(
        home: &Path,
        durability: Durability,
    ) -> (Audit, Arc<AtomicUsize>, Arc<AtomicUsize>, Arc<AtomicBool>) {
        let syncs = Arc::new(AtomicUsize::new(0));
        let normal = Arc::new(AtomicUsize::new(0));
        let eio = Arc::new(AtomicBool::new(false));
        let store = Counting {
            inner: SqliteStore::open(&home.join("audit.db")).unwrap(),
            syncs: syncs.clone(),
            normal: normal.clone(),
            eio: eio.clone(),
        };
        let options = AuditOptions {
            durability,
            ..AuditOptions::default()
        };
        let audit = Audit::with_store(Box::new(store), home, options).unwrap();
        (audit, syncs, normal, eio)
    }

    fn event(n: u64) -> Event {
        Event::new("test.event", "local:test").field("n", n)
    }

    #[test]
    fn process_durability_writes_at_once_and_syncs_within_its_window() {
        let home = tempfile::tempdir().unwrap();
        let (audit, syncs, normal) = open(home.path(), Durability::Process);
        assert_eq!(normal.load(Ordering::SeqCst), 1, "synchronous=NORMAL");
        for n in 0..5 {
            audit.append_blocking(event(n)).unwrap();
        }
        // Written: another connection sees every answered record before any sync.
        let mut other = SqliteStore::open(&home.path().join("audit.db")).unwrap();
        assert_eq!(other.head().unwrap().map(|h| h.seq), Some(5));
        // Synced within the window: one sync for the burst, then none while idle.
        let deadline = Instant::now() + Duration::from_secs(10);
        while syncs.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "no sync within 10 s");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Durability::SYNC_WITHIN * 5);
        assert_eq!(syncs.load(Ordering::SeqCst), 1);
        // At shutdown, the final checkpoint is synced too.
        drop(audit);
        assert_eq!(syncs.load(Ordering::SeqCst), 2);
        assert_eq!(other.latest_checkpoint().unwrap().map(|c| c.seq), Some(5));
    }

    #[test]
    fn full_durability_never_needs_a_sync() {
        let home = tempfile::tempdir().unwrap();
        let (audit, syncs, normal) = open(home.path(), Durability::Full);
        assert_eq!(normal.load(Ordering::SeqCst), 0, "synchronous=FULL");
        for n in 0..5 {
            audit.append_blocking(event(n)).unwrap();
        }
        std::thread::sleep(Durability::SYNC_WITHIN * 3);
        drop(audit);
        assert_eq!(syncs.load(Ordering::SeqCst), 0);
    }

    /// Catalog item 73 (fsync EIO), at the store's boundary: SQLite's own handling of
    /// EIO is SQLite's; what Warden does with a failed commit or sync is this.
    #[test]
    fn a_sync_failing_with_eio_turns_every_later_append_synced_and_loses_no_sequence() {
        let home = tempfile::tempdir().unwrap();
        let (audit, syncs, normal, eio) = open_failing(home.path(), Durability::Process);
        assert_eq!(normal.load(Ordering::SeqCst), 1, "synchronous=NORMAL");
        for n in 0..3 {
            audit.append_blocking(event(n)).unwrap();
        }
        // The disk fails while the burst waits for its sync.
        eio.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        while syncs.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "no sync within 10 s");
            std::thread::sleep(Duration::from_millis(2));
        }
        // The answers given stand; from now on each append is synced before its answer.
        let deadline = Instant::now() + Duration::from_secs(10);
        while normal.load(Ordering::SeqCst) != 0 {
            assert!(
                Instant::now() < deadline,
                "still synchronous=NORMAL after EIO"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        eio.store(false, Ordering::SeqCst);
        for n in 3..5 {
            audit.append_blocking(event(n)).unwrap();
        }
        drop(audit);
        let mut other = SqliteStore::open(&home.path().join("audit.db")).unwrap();
        let seqs: Vec<u64> = other
            .read(&Filter::default())
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_commit_failing_with_eio_fails_its_callers_and_the_next_one_continues_the_chain() {
        let home = tempfile::tempdir().unwrap();
        let (audit, _, _, eio) = open_failing(home.path(), Durability::Full);
        audit.append_blocking(event(0)).unwrap();
        eio.store(true, Ordering::SeqCst);
        let failed = audit.append_blocking(event(1)).unwrap_err();
        assert!(
            format!("{failed:#}").contains("Input/output error"),
            "{failed:#}"
        );
        // Nothing of the failed commit is in the log: the next record follows the last
        // one answered, with no gap and no orphan.
        eio.store(false, Ordering::SeqCst);
        let next = audit.append_blocking(event(2)).unwrap();
        assert_eq!(next.seq, 2);
        drop(audit);
        let mut other = SqliteStore::open(&home.path().join("audit.db")).unwrap();
        let records = other.read(&Filter::default()).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].prev, records[0].hash);
    }

    /// Rows in each record table of the log in `home`: (`records`, `unindexed`).
    fn rows(home: &Path) -> (i64, i64) {
        let conn = rusqlite::Connection::open(home.join("audit.db")).unwrap();
        let count = |table: &str| -> i64 {
            conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .unwrap()
        };
        (count("records"), count("unindexed"))
    }

    #[test]
    fn a_lone_callers_records_wait_unindexed_are_read_and_verified_and_indexed_when_idle() {
        let home = tempfile::tempdir().unwrap();
        let (audit, _, _) = open(home.path(), Durability::Full);
        for n in 0..5 {
            audit.append_blocking(event(n)).unwrap();
        }
        let query = Filter {
            kind: Some("test.event".into()),
            newest: true,
            limit: Some(3),
            ..Filter::default()
        };
        let seqs = |records: Vec<Record>| records.iter().map(|r| r.seq).collect::<Vec<_>>();
        // Waiting or indexed, a record is read, counted and verified the same.
        let check = |audit: &Audit| {
            assert_eq!(seqs(audit.read(query.clone()).unwrap()), [3, 4, 5]);
            assert_eq!(audit.stats(None, None).unwrap().records, 5);
            let report = audit.verify().unwrap();
            assert!(report.problem.is_none(), "{:?}", report.problem);
            assert_eq!(report.count, 5);
        };
        check(&audit);
        // Committed without touching an index (unless the machine stalled for longer
        // than the idle time since the last append, the first look finds them waiting),
        // then indexed once the writer is idle.
        let (records, unindexed) = rows(home.path());
        assert_eq!(records + unindexed, 5);
        let deadline = Instant::now() + Duration::from_secs(10);
        while rows(home.path()) != (5, 0) {
            assert!(
                Instant::now() < deadline,
                "not indexed within 10 s of idling"
            );
            std::thread::sleep(INDEX_IDLE / 5);
        }
        check(&audit);
        // The next one follows the chain across the two tables.
        let next = audit.append_blocking(event(5)).unwrap();
        assert_eq!(next.seq, 6);
        drop(audit);
        assert_eq!(rows(home.path()), (6, 0), "indexed at shutdown");
        let report = verify_home(home.path());
        assert!(report.problem.is_none(), "{:?}", report.problem);
    }

    fn verify_home(home: &Path) -> super::super::Report {
        Audit::open(home, AuditOptions::default())
            .unwrap()
            .verify()
            .unwrap()
    }

    #[test]
    fn a_big_batch_goes_into_the_indexed_table_after_the_waiting_records() {
        let home = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&home.path().join("audit.db")).unwrap();
        let mut append = |events: Vec<Event>| {
            let time = super::super::time::now();
            store
                .append(&mut |head| {
                    let mut seq = head.map_or(0, |h| h.seq);
                    let mut prev = head.map_or(GENESIS.to_string(), |h| h.hash.clone());
                    let records = events
                        .iter()
                        .map(|e| {
                            seq += 1;
                            let record = Record::new(seq, time.clone(), e.clone(), prev.clone());
                            prev = record.hash.clone();
                            record
                        })
                        .collect();
                    Batch {
                        records,
                        checkpoint: None,
                    }
                })
                .unwrap()
        };
        append(vec![event(1)]);
        append(vec![event(2), event(3)]);
        assert_eq!(rows(home.path()), (0, 3));
        let big = super::super::sqlite::DIRECT_BATCH as u64;
        append((0..big).map(event).collect());
        assert_eq!(rows(home.path()), (3 + big as i64, 0));
        drop(store);
        // A record changed while it waits unindexed is found as any other.
        let mut store = SqliteStore::open(&home.path().join("audit.db")).unwrap();
        store
            .append(&mut |head| {
                let head = head.unwrap();
                let record = Record::new(
                    head.seq + 1,
                    super::super::time::now(),
                    event(99),
                    head.hash.clone(),
                );
                Batch {
                    records: vec![record],
                    checkpoint: None,
                }
            })
            .unwrap();
        drop(store);
        let conn = rusqlite::Connection::open(home.path().join("audit.db")).unwrap();
        let changed = conn
            .execute(
                "UPDATE unindexed SET principal = 'local:mallory' WHERE seq = ?1",
                [4 + big as i64],
            )
            .unwrap();
        assert_eq!(changed, 1, "the newest record waits unindexed");
        let report = verify_home(home.path());
        let problem = report.problem.expect("the changed record is found");
        assert_eq!(problem.seq, Some(4 + big));
        // A session that only read moved nothing.
        assert_eq!(rows(home.path()), (3 + big as i64, 1));
    }

    #[test]
    fn a_prune_reaches_the_records_waiting_unindexed() {
        let home = tempfile::tempdir().unwrap();
        let (audit, _, _) = open(home.path(), Durability::Full);
        for n in 0..3 {
            audit.append_blocking(event(n)).unwrap();
        }
        // Every record is older than the cut: the prune removes them where they wait.
        let (anchor, record) = audit
            .prune("9999-01-01T00:00:00Z", "local:test")
            .unwrap()
            .expect("records to prune");
        assert_eq!((anchor.seq, record.seq), (3, 4));
        let (records, unindexed) = rows(home.path());
        assert_eq!(records + unindexed, 1, "only the anchor record is left");
        let report = audit.verify().unwrap();
        assert!(report.problem.is_none(), "{:?}", report.problem);
        let next = audit.append_blocking(event(4)).unwrap();
        assert_eq!((next.seq, next.prev), (5, record.hash));
        drop(audit);
        assert_eq!(rows(home.path()), (2, 0));
    }

    #[test]
    fn a_steady_lone_caller_has_its_records_indexed_every_index_after() {
        let home = tempfile::tempdir().unwrap();
        let (audit, _, _) = open(home.path(), Durability::Process);
        // Back to back, never idle for long: the writer indexes once INDEX_AFTER wait.
        let appends = INDEX_AFTER + INDEX_AFTER / 4;
        for n in 0..appends {
            audit.append_blocking(event(n)).unwrap();
        }
        let (records, unindexed) = rows(home.path());
        assert_eq!((records + unindexed) as u64, appends);
        assert!(
            records as u64 >= INDEX_AFTER,
            "{records} indexed, {unindexed} waiting after {appends} appends"
        );
    }
}
