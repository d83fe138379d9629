//! The writer's durability, failure and indexing behaviour, against the SQLite store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::*;
use crate::sqlite::SqliteStore;
use crate::store::{Anchor, Filter, Head, MakeAnchorRecord, MakeRecords, Stats};
use crate::{Audit, AuditOptions, Event, StoredRecord};

/// The SQLite store, counting its syncs and noting the durability it was set to;
/// while `eio` is set, its commits and syncs fail as a disk failing with EIO does.
struct Counting {
    inner: SqliteStore,
    syncs: Arc<AtomicUsize>,
    normal: Arc<AtomicUsize>,
    eio: Arc<AtomicBool>,
    /// How many of the next calls of `index` fail (each failed one counts down).
    failing_indexes: Arc<AtomicUsize>,
    /// Whether it keeps the SQLite store's journal (off: every append goes through
    /// the writer, as with a store that keeps none).
    journaled: bool,
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
    fn journal_path(&self) -> Option<PathBuf> {
        self.journaled.then(|| self.inner.journal_path()).flatten()
    }
    fn journal_mark(&mut self) -> Result<Option<JournalMark>, AuditError> {
        self.inner.journal_mark()
    }
    fn index(&mut self) -> Result<(), AuditError> {
        let fail = self
            .failing_indexes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            return Err(AuditError::Io(std::io::Error::from_raw_os_error(5)));
        }
        self.failing()?;
        self.inner.index()
    }
}

fn open(home: &Path, durability: Durability) -> (Audit, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let (audit, syncs, normal, _, _) = open_failing(home, durability);
    (audit, syncs, normal)
}

/// What [`open_failing`] gives: the log, its syncs, whether it is NORMAL, the switch
/// that makes the disk fail, and how many of the next indexes fail.
type Failing = (
    Audit,
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
    Arc<AtomicBool>,
    Arc<AtomicUsize>,
);

/// [`open`], the switch that makes the disk fail, and how many of the next indexes fail.
fn open_failing(home: &Path, durability: Durability) -> Failing {
    open_store(home, durability, false)
}

/// [`open_failing`], with the store's journal if `journaled`.
fn open_store(home: &Path, durability: Durability, journaled: bool) -> Failing {
    let syncs = Arc::new(AtomicUsize::new(0));
    let normal = Arc::new(AtomicUsize::new(0));
    let eio = Arc::new(AtomicBool::new(false));
    let failing_indexes = Arc::new(AtomicUsize::new(0));
    let store = Counting {
        failing_indexes: failing_indexes.clone(),
        inner: SqliteStore::open(&home.join("audit.db")).unwrap(),
        syncs: syncs.clone(),
        normal: normal.clone(),
        eio: eio.clone(),
        journaled,
    };
    let options = AuditOptions {
        durability,
        ..AuditOptions::default()
    };
    let audit = Audit::with_store(Box::new(store), home, options).unwrap();
    (audit, syncs, normal, eio, failing_indexes)
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
    let (audit, syncs, normal, eio, _) = open_failing(home.path(), Durability::Process);
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
    let (audit, _, _, eio, _) = open_failing(home.path(), Durability::Full);
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

fn verify_home(home: &Path) -> crate::Report {
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
        let time = crate::time::now();
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
                    journal: None,
                }
            })
            .unwrap()
    };
    append(vec![event(1)]);
    append(vec![event(2), event(3)]);
    assert_eq!(rows(home.path()), (0, 3));
    let big = crate::sqlite::DIRECT_BATCH as u64;
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
                crate::time::now(),
                event(99),
                head.hash.clone(),
            );
            Batch {
                records: vec![record],
                checkpoint: None,
                journal: None,
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

#[test]
fn a_failed_index_leaves_the_records_waiting_on_the_log_and_is_not_retried_at_once() {
    let home = tempfile::tempdir().unwrap();
    let (audit, _, _, _, failing_indexes) = open_failing(home.path(), Durability::Full);
    // The next index fails (as on a disk failing with EIO); appends go on.
    failing_indexes.store(1, Ordering::SeqCst);
    for n in 0..3 {
        audit.append_blocking(event(n)).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while failing_indexes.load(Ordering::SeqCst) > 0 {
        assert!(Instant::now() < deadline, "no index within 10 s of idling");
        std::thread::sleep(INDEX_IDLE / 5);
    }
    assert_eq!(rows(home.path()), (0, 3));
    // Still on the log: read and verified.
    assert_eq!(audit.read(Filter::default()).unwrap().len(), 3);
    let report = audit.verify().unwrap();
    assert!(report.problem.is_none(), "{:?}", report.problem);
    // Not tried again within INDEX_RETRY, not even at shutdown; the next writer does.
    drop(audit);
    assert_eq!(rows(home.path()), (0, 3));
    let (audit, _, _) = open(home.path(), Durability::Full);
    audit.append_blocking(event(3)).unwrap();
    drop(audit);
    assert_eq!(rows(home.path()), (4, 0));
    assert!(verify_home(home.path()).problem.is_none());
}

#[test]
fn journaled_records_are_synced_within_the_window_of_their_first_line() {
    let home = tempfile::tempdir().unwrap();
    let (audit, syncs, _, _, _) = open_store(home.path(), Durability::Process, true);
    assert!(audit.inner.journal.is_some());
    for n in 0..5 {
        let _ = audit.submit(event(n)).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while syncs.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "no sync within 10 s");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Committed and synced together: another connection sees all of them.
    let mut other = SqliteStore::open(&home.path().join("audit.db")).unwrap();
    assert_eq!(other.head().unwrap().map(|h| h.seq), Some(5));
    std::thread::sleep(Durability::SYNC_WITHIN * 5);
    assert_eq!(syncs.load(Ordering::SeqCst), 1, "one sync for the burst");
}

#[test]
fn journaled_records_whose_commit_fails_wait_in_the_journal_and_are_committed_in_order() {
    let home = tempfile::tempdir().unwrap();
    let (audit, _, _, eio, _) = open_store(home.path(), Durability::Process, true);
    audit.append_blocking(event(0)).unwrap();
    eio.store(true, Ordering::SeqCst);
    // The callers are answered: their lines are in the journal.
    for n in 1..3 {
        let _ = audit.submit(event(n)).unwrap();
    }
    // The writer's commit of them fails; a caller waiting for its record is told.
    let failed = audit.append_blocking(event(3)).unwrap_err();
    assert!(
        format!("{failed:#}").contains("Input/output error"),
        "{failed:#}"
    );
    let journal = std::fs::read_to_string(home.path().join("audit.journal")).unwrap();
    // (Line 1 may still be there: the file is emptied only when no line waits.)
    let journaled: Vec<u64> = journal
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["fields"]["n"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(journaled.ends_with(&[1, 2, 3]), "{journal}");
    // Once the disk is back, the next commit takes them first, in their order.
    eio.store(false, Ordering::SeqCst);
    let _ = audit.submit(event(4)).unwrap();
    let ns: Vec<u64> = audit
        .read(Filter::default())
        .unwrap()
        .iter()
        .map(|r| r.fields["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, [0, 1, 2, 3, 4]);
    assert!(audit.verify().unwrap().problem.is_none());
    drop(audit);
    assert_eq!(
        std::fs::metadata(home.path().join("audit.journal"))
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn after_a_failed_sync_callers_stop_journaling_and_every_append_is_synced() {
    let home = tempfile::tempdir().unwrap();
    let (audit, syncs, normal, eio, _) = open_store(home.path(), Durability::Process, true);
    for n in 0..3 {
        let pending = audit.submit(event(n)).unwrap();
        assert!(pending.0.is_none(), "journaled");
    }
    // Committed (a read takes the journal first), not yet synced: then the disk fails.
    assert_eq!(audit.read(Filter::default()).unwrap().len(), 3);
    eio.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    while syncs.load(Ordering::SeqCst) == 0 || normal.load(Ordering::SeqCst) != 0 {
        assert!(Instant::now() < deadline, "no failed sync within 10 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    eio.store(false, Ordering::SeqCst);
    let journal = audit.inner.journal.clone().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while lock(&journal).is_open() {
        assert!(Instant::now() < deadline, "the journal is still open");
        std::thread::sleep(Duration::from_millis(2));
    }
    // Now through the writer, synced before the answer.
    let pending = audit.submit(event(3)).unwrap();
    assert!(pending.0.is_some(), "handed to the writer");
    let record = audit.append_blocking(event(4)).unwrap();
    assert_eq!(record.seq, 5);
    drop(audit);
    let ns: Vec<u64> = SqliteStore::open(&home.path().join("audit.db"))
        .unwrap()
        .read(&Filter::default())
        .unwrap()
        .iter()
        .map(|r| r.fields["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, [0, 1, 2, 3, 4]);
}
