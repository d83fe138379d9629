//! The audit log: every action on record, durable before the caller sees its result,
//! tamper-evident.
//!
//! - [`record`]: a [`Record`] and the [`Event`] a caller reports; the hash chain;
//! - [`canonical`]: the canonical JSON (RFC 8785) hashes and signatures cover;
//! - [`store`]: the storage interface; [`sqlite`]: the embedded default
//!   (`<home>/audit.db`, WAL, `synchronous=FULL`); [`durability`]: synced before the
//!   answer (`full`) or within 10 ms of it (`process`);
//! - [`writer`]: the one thread that owns the store and commits appends in groups;
//!   [`journal`]: where callers write their records themselves with `process`
//!   durability on the embedded store;
//! - [`verify`]: recomputing the chain; [`checkpoint`]: signed heads (`<home>/audit.key`);
//! - [`time`]: record times.
//!
//! ```no_run
//! # async fn example() -> Result<(), warden_audit::AuditError> {
//! use warden_audit::{Audit, AuditOptions, Event, Outcome};
//! let audit = Audit::open(std::path::Path::new(".warden"), AuditOptions::default())?;
//! let record = audit
//!     .append(Event::new("tool.call", "local:alice").plugin("text").tool("word-count").outcome(Outcome::Ok))
//!     .await?; // on disk (fsync) when this returns
//! # Ok(()) }
//! ```
//!
//! This module may touch the home's `audit.db`, `audit.journal` and `audit.key`,
//! nothing else.

pub mod canonical;
pub mod checkpoint;
pub mod config;
pub mod durability;
mod error;
pub mod journal;
pub mod postgres;
pub mod record;
pub mod sqlite;
pub mod store;
pub mod time;
pub mod verify;
pub mod writer;

#[cfg(test)]
mod fuzz;

use std::io::{BufRead as _, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use serde_json::{Value, json};

pub use checkpoint::Checkpoint;
pub use config::AuditConfig;
pub use durability::Durability;
pub use error::{AuditError, SignatureError};
pub use record::{Event, GENESIS, Outcome, Record, digest};
pub use store::{Anchor, Batch, Filter, Head, Stats, Store, StoredRecord, ToolStats};
pub use verify::{CLOCK_TOLERANCE_MS, Problem, ProblemKind, Report, Start, TimeWarning};

use writer::{Request, Writer};

/// How many records are read at a time when streaming the log.
const CHUNK: usize = 4096;

/// How many records are verified at a time (appends wait meanwhile: a few ms).
const VERIFY_CHUNK: usize = 8192;

/// Settings of the audit log.
///
/// ```
/// let options = warden_audit::AuditOptions { keep_payloads: true, ..Default::default() };
/// assert_eq!(options.checkpoint_every, 1000);
/// ```
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// Keep full arguments and results in records (off by default: digests only).
    /// See [`Audit::payload`].
    pub keep_payloads: bool,
    /// Sign a checkpoint of the head every this many records (0: only at shutdown).
    pub checkpoint_every: u64,
    /// Synced before each answer, or written before it and synced soon after.
    pub durability: Durability,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            keep_payloads: false,
            checkpoint_every: 1000,
            durability: Durability::Full,
        }
    }
}

/// A handle on the audit log; cheap to clone, usable from any thread or task.
/// When the last clone is dropped the writer thread signs a checkpoint and stops.
#[derive(Clone)]
pub struct Audit {
    inner: Arc<Inner>,
}

struct Inner {
    requests: Option<mpsc::Sender<Request>>,
    /// The journal callers write to, if the writer owns one (see [`journal`]).
    journal: Option<Arc<Mutex<journal::Journal>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    options: AuditOptions,
    home: PathBuf,
}

impl Drop for Inner {
    fn drop(&mut self) {
        drop(self.requests.take());
        if let Some(thread) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = thread.join();
        }
    }
}

impl Audit {
    /// Opens the log of the home at `home` (`<home>/audit.db`, created if needed).
    pub fn open(home: &Path, options: AuditOptions) -> Result<Self, AuditError> {
        let store = sqlite::SqliteStore::open(&home.join(sqlite::FILE_NAME))?;
        Self::with_store(Box::new(store), home, options)
    }

    /// A log kept in `store`; checkpoints are signed with `<home>/audit.key`.
    pub fn with_store(
        store: Box<dyn Store>,
        home: &Path,
        options: AuditOptions,
    ) -> Result<Self, AuditError> {
        let writer = Writer::new(store, home.to_path_buf(), options.clone())?;
        let journal = writer.journal();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("warden-audit".into())
            .spawn(move || writer.run(rx))
            .map_err(AuditError::Thread)?;
        Ok(Self {
            inner: Arc::new(Inner {
                requests: Some(tx),
                journal,
                thread: Mutex::new(Some(thread)),
                options,
                home: home.to_path_buf(),
            }),
        })
    }

    /// The settings.
    pub fn options(&self) -> &AuditOptions {
        &self.inner.options
    }

    fn send(&self, request: Request) -> Result<(), AuditError> {
        self.inner
            .requests
            .as_ref()
            .and_then(|tx| tx.send(request).ok())
            .ok_or(AuditError::Stopped)
    }

    /// The journal this process owns (see [`journal`]), locked, if it is open.
    fn open_journal(&self) -> Option<std::sync::MutexGuard<'_, journal::Journal>> {
        let journal = writer::lock(self.inner.journal.as_ref()?);
        journal.is_open().then_some(journal)
    }

    /// Writes `appends` to the open `journal` and wakes the writer if it must.
    fn journal(
        &self,
        mut journal: std::sync::MutexGuard<'_, journal::Journal>,
        appends: Vec<(Event, Option<writer::AppendReply>)>,
    ) -> Result<(), AuditError> {
        let wake = journal.write(appends)?;
        drop(journal);
        match wake {
            journal::Wake::Writer => self.send(Request::Journaled),
            journal::Wake::No => Ok(()),
        }
    }

    /// Hands `appends` to the journal, or else to the writer, in this order and for
    /// one transaction (of the writer's: a journal's lines are committed in order, with
    /// those around them). The replies get the records, once they are on disk.
    fn hand_over(&self, appends: Vec<(Event, writer::AppendReply)>) -> Result<(), AuditError> {
        match self.open_journal() {
            Some(journal) => self.journal(
                journal,
                appends.into_iter().map(|(e, r)| (e, Some(r))).collect(),
            ),
            None if appends.is_empty() => Ok(()),
            None => self.send(Request::AppendAll(appends)),
        }
    }

    /// Appends a record of `event`; returns it once its transaction is on disk.
    pub async fn append(&self, event: Event) -> Result<Record, AuditError> {
        let mut records = self.append_all(vec![event]).await?;
        records.pop().ok_or(AuditError::Stopped)
    }

    /// Hands a record of `event` to the writer now and returns at once; the record is
    /// on disk when [`Pending::wait`] returns. The writer takes appends in the order
    /// they are handed to it, so once a later append of the same caller is on disk,
    /// this one is too: a caller can go on with its work while the record is written,
    /// and wait for it before it answers (an agent step's own records, before the
    /// step's observation is recorded). With a journal (`process` durability on the
    /// embedded store) the record is written, to that durability, when this returns.
    pub fn submit(&self, event: Event) -> Result<Pending, AuditError> {
        let mut pending = self.submit_all(vec![event])?;
        Ok(pending.pop().unwrap_or(Pending(None)))
    }

    /// Appends records of `events`, in this order and in one transaction; returns them
    /// once they are on disk.
    pub async fn append_all(&self, events: Vec<Event>) -> Result<Vec<Record>, AuditError> {
        let (appends, answers) = with_replies(events);
        self.hand_over(appends)?;
        let mut records = Vec::with_capacity(answers.len());
        for answer in answers {
            records.push(answer.await.map_err(no_answer)??);
        }
        Ok(records)
    }

    /// [`Audit::submit`] for several events: handed over together, written in this
    /// order in one transaction.
    pub fn submit_all(&self, events: Vec<Event>) -> Result<Vec<Pending>, AuditError> {
        if let Some(journal) = self.open_journal() {
            let count = events.len();
            self.journal(journal, events.into_iter().map(|e| (e, None)).collect())?;
            return Ok((0..count).map(|_| Pending(None)).collect());
        }
        let (appends, answers) = with_replies(events);
        if !appends.is_empty() {
            self.send(Request::AppendAll(appends))?;
        }
        Ok(answers.into_iter().map(|a| Pending(Some(a))).collect())
    }

    /// [`Audit::append`] for code that is not async (it blocks the thread).
    pub fn append_blocking(&self, event: Event) -> Result<Record, AuditError> {
        let (tx, rx) = mpsc::channel();
        self.hand_over(vec![(
            event,
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        )])?;
        rx.recv().map_err(no_answer)?
    }

    /// Runs `job` on the writer thread, in order with appends, and waits for it.
    fn job<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Writer) -> Result<T, AuditError> + Send + 'static,
    ) -> Result<T, AuditError> {
        let (tx, rx) = mpsc::channel();
        self.send(Request::Job(Box::new(move |writer| {
            let _ = tx.send(job(writer));
        })))?;
        rx.recv().map_err(no_answer)?
    }

    /// What a record keeps of an argument or result: its SHA-256 (of its canonical
    /// JSON) and size, and the value itself if [`AuditOptions::keep_payloads`] is set.
    /// Secrets must never be passed here.
    pub fn payload(&self, value: &Value) -> Value {
        let bytes = canonical::to_vec(value);
        let mut out = json!({ "sha256": digest(&bytes), "bytes": bytes.len() });
        if self.inner.options.keep_payloads {
            out["value"] = value.clone();
        }
        out
    }

    /// Records matching `filter`, oldest first.
    pub fn read(&self, filter: Filter) -> Result<Vec<Record>, AuditError> {
        self.job(move |w| w.store().read(&filter))
    }

    /// Counts of the records written at or after `since` and before `until` (record
    /// times, as [`time::parse_bound`] makes them; either may be open).
    pub fn stats(&self, since: Option<String>, until: Option<String>) -> Result<Stats, AuditError> {
        self.job(move |w| w.store().stats(since.as_deref(), until.as_deref()))
    }

    /// The last record, if any.
    pub fn head(&self) -> Result<Option<Head>, AuditError> {
        self.job(|w| w.store().head())
    }

    /// Calls `each` on every record from the first, in order, a chunk at a time (appends
    /// go on in between); stops early when `each` returns `false`.
    pub fn scan<E: From<AuditError>>(
        &self,
        mut each: impl FnMut(Record) -> Result<bool, E>,
    ) -> Result<(), E> {
        let mut after = 0;
        loop {
            let chunk = self.read(Filter {
                after_seq: Some(after),
                limit: Some(CHUNK),
                ..Filter::default()
            })?;
            let Some(last) = chunk.last() else {
                return Ok(());
            };
            after = last.seq;
            for record in chunk {
                if !each(record)? {
                    return Ok(());
                }
            }
        }
    }

    /// Writes every record as JSON Lines (one record a line, with its hashes).
    pub fn export(&self, out: &mut dyn Write) -> Result<u64, AuditError> {
        let mut count = 0;
        self.scan(|record| -> Result<bool, AuditError> {
            serde_json::to_writer(&mut *out, &record)?;
            out.write_all(b"\n")?;
            count += 1;
            Ok(true)
        })?;
        out.flush()?;
        Ok(count)
    }

    /// Recomputes the chain of the stored log, from its start or its prune anchor.
    pub fn verify(&self) -> Result<Report, AuditError> {
        let start = match self.job(|w| w.store().anchor())? {
            Some(anchor) => Start::Anchor(anchor),
            None => Start::Genesis,
        };
        // Each chunk is read and checked on the writer thread, from the rows as they
        // are (no copies), and appends go on between chunks.
        let mut verifier = verify::Verifier::new(start);
        let mut after = 0;
        loop {
            let (back, last, going) = self.job(move |w| {
                let mut going = true;
                let last = w.store().scan(after, VERIFY_CHUNK, &mut |stored| {
                    going = verifier.push_stored(stored);
                    going
                })?;
                Ok((verifier, last, going))
            })?;
            verifier = back;
            match last {
                Some(last) if going => after = last,
                _ => break,
            }
        }
        let mut report = verifier.finish();
        if report.problem.is_none() {
            report.problem = self.check_stored_checkpoints()?;
        }
        Ok(report)
    }

    /// Checks `checkpoint` against the stored log: its signature, and that the log
    /// still holds its record with its hash. `Ok(Err(problem))` names what is wrong.
    pub fn check_checkpoint(
        &self,
        checkpoint: &Checkpoint,
    ) -> Result<Result<String, Problem>, AuditError> {
        let seq = checkpoint.seq;
        let found = self.read(Filter {
            after_seq: Some(seq.saturating_sub(1)),
            limit: Some(1),
            ..Filter::default()
        })?;
        let found = found.into_iter().find(|r| r.seq == seq);
        let head = self.head()?;
        let anchor = self.job(|w| w.store().anchor())?;
        let key = self.public_key()?;
        Ok(check_checkpoint(
            checkpoint,
            key.as_deref(),
            found.as_ref(),
            head.as_ref(),
            anchor.map(|a| (a.seq, a.hash)).as_ref(),
        ))
    }

    /// The public key (hex) checkpoints of this log are signed with: the home's
    /// `audit.key`, `None` if it has none yet.
    pub fn public_key(&self) -> Result<Option<String>, AuditError> {
        checkpoint::home_public_key(&self.inner.home)
    }

    /// Checks every checkpoint the log holds (see [`Audit::check_checkpoint`]): each
    /// must be signed by the home's key and match the record it names, so deleting
    /// the newest records (which the chain alone cannot show) is caught while the
    /// log still holds a checkpoint past them. The first that fails is the problem.
    fn check_stored_checkpoints(&self) -> Result<Option<Problem>, AuditError> {
        let checkpoints = self.job(|w| w.store().checkpoints())?;
        let Some(first) = checkpoints.first() else {
            return Ok(None);
        };
        let Some(key) = self.public_key()? else {
            return Ok(Some(Problem {
                seq: Some(first.seq),
                kind: ProblemKind::Changed,
                detail: format!(
                    "the log holds {} signed checkpoints but the home has no {} to check them against: restore the key from a backup",
                    checkpoints.len(),
                    checkpoint::KEY_FILE
                ),
            }));
        };
        let head = self.head()?;
        let anchor = self.job(|w| w.store().anchor())?.map(|a| (a.seq, a.hash));
        for checkpoint in &checkpoints {
            let seq = checkpoint.seq;
            let found = self
                .read(Filter {
                    after_seq: Some(seq.saturating_sub(1)),
                    limit: Some(1),
                    ..Filter::default()
                })?
                .into_iter()
                .find(|r| r.seq == seq);
            if let Err(problem) = check_checkpoint(
                checkpoint,
                Some(&key),
                found.as_ref(),
                head.as_ref(),
                anchor.as_ref(),
            ) {
                return Ok(Some(problem));
            }
        }
        Ok(None)
    }

    /// The newest checkpoint, after signing one of the head if the newest is older.
    pub fn checkpoint(&self) -> Result<Option<Checkpoint>, AuditError> {
        self.job(Writer::checkpoint)
    }

    /// The newest stored checkpoint, as it is.
    pub fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, AuditError> {
        self.job(|w| w.store().latest_checkpoint())
    }

    /// Removes the records written before `before` (a record time) and appends an
    /// `audit.anchor` record, on behalf of `principal`, stating the seq and hash of the
    /// last removed one. `None` if no record is that old.
    pub fn prune(
        &self,
        before: &str,
        principal: &str,
    ) -> Result<Option<(Anchor, Record)>, AuditError> {
        let before = before.to_string();
        let principal = principal.to_string();
        self.job(move |w| {
            w.appended();
            w.store().prune(&before, &mut |anchor, head| {
                let event = Event::new("audit.anchor", principal.clone())
                    .outcome(Outcome::Ok)
                    .field("seq", anchor.seq)
                    .field("hash", anchor.hash.clone())
                    .field("before", before.clone());
                Record::new(head.seq + 1, anchor.time.clone(), event, head.hash.clone())
            })
        })
    }

    /// The home directory the log belongs to.
    pub fn home(&self) -> &Path {
        &self.inner.home
    }
}

/// What answers a record's caller.
type Answer = tokio::sync::oneshot::Receiver<Result<Record, AuditError>>;

/// `events`, each with a reply that answers the receiver at the same place.
fn with_replies(events: Vec<Event>) -> (Vec<(Event, writer::AppendReply)>, Vec<Answer>) {
    events
        .into_iter()
        .map(|event| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let reply: writer::AppendReply = Box::new(move |result| {
                let _ = tx.send(result);
            });
            ((event, reply), rx)
        })
        .unzip()
}

/// [`AuditError::NoAnswer`], of a channel the writer dropped.
/// A record handed over by [`Audit::submit`], not yet known to be on disk (`None`: it
/// was written to the journal, which is the durability asked for).
#[must_use = "a submitted record is only known to be on disk once waited for"]
pub struct Pending(Option<Answer>);

impl Pending {
    /// Whether the record is already as durable as the setting asks (written to the
    /// journal): [`Pending::wait`] then returns at once.
    pub fn is_written(&self) -> bool {
        self.0.is_none()
    }

    /// Waits until the record is on disk (as the log's durability setting defines it).
    pub async fn wait(self) -> Result<(), AuditError> {
        match self.0 {
            Some(answer) => answer.await.map_err(no_answer)?.map(|_| ()),
            None => Ok(()),
        }
    }
}

fn no_answer(err: impl std::error::Error + Send + Sync + 'static) -> AuditError {
    AuditError::NoAnswer(Box::new(err))
}

/// Checks a checkpoint against what a log holds: `found` (the record with the
/// checkpoint's seq, if present), the log's `head` and its prune `anchor`.
pub fn check_checkpoint(
    checkpoint: &Checkpoint,
    trusted: Option<&str>,
    found: Option<&Record>,
    head: Option<&Head>,
    anchor: Option<&(u64, String)>,
) -> Result<String, Problem> {
    let seq = checkpoint.seq;
    let bad = |kind, detail: String| Problem {
        seq: Some(seq),
        kind,
        detail,
    };
    if let Err(err) = checkpoint.verify_signature_by(trusted) {
        return Err(bad(ProblemKind::Changed, format!("{err:#}")));
    }
    let key = checkpoint::short(&checkpoint.public_key);
    match (found, anchor) {
        (Some(record), _) if record.hash == checkpoint.hash => Ok(format!(
            "checkpoint of record {seq} (signed {}, key {key}…) holds",
            checkpoint.time
        )),
        (Some(record), _) => Err(bad(
            ProblemKind::Changed,
            format!(
                "the checkpoint signed hash {}, the log holds {}",
                checkpoint.hash, record.hash
            ),
        )),
        (None, Some((aseq, ahash))) if *aseq == seq && *ahash == checkpoint.hash => Ok(format!(
            "checkpoint of record {seq} holds: it is the prune anchor"
        )),
        (None, Some((aseq, _))) if seq < *aseq => Ok(format!(
            "checkpoint of record {seq} predates the prune anchor (record {aseq}): records up to {aseq} were pruned"
        )),
        (None, _) => Err(bad(
            ProblemKind::Removed,
            format!(
                "the checkpoint proves the log held record {seq}, but it ends at {}: the tail was truncated",
                head.map_or_else(
                    || "nothing (it is empty)".to_string(),
                    |h| format!("record {}", h.seq)
                )
            ),
        )),
    }
}

/// Verifies an export (JSON Lines) and, if given, a checkpoint against it (signed by
/// the key inside it: see [`verify_file_trusting`] to require a known key).
pub fn verify_file(
    path: &Path,
    checkpoint: Option<&Checkpoint>,
) -> Result<(Report, Option<Result<String, Problem>>), AuditError> {
    verify_file_trusting(path, checkpoint, None)
}

/// As [`verify_file`], with the checkpoint required to be signed by `trusted` (a
/// public key, hex: the home's, or the one its operator published).
pub fn verify_file_trusting(
    path: &Path,
    checkpoint: Option<&Checkpoint>,
    trusted: Option<&str>,
) -> Result<(Report, Option<Result<String, Problem>>), AuditError> {
    let file = std::fs::File::open(path).map_err(|source| AuditError::OpenExport {
        path: path.to_path_buf(),
        source,
    })?;
    let mut verifier = verify::Verifier::new(Start::AsFound);
    let mut at_checkpoint = None;
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| AuditError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(&line) {
            Ok(record) => {
                if checkpoint.is_some_and(|c| c.seq == record.seq) && at_checkpoint.is_none() {
                    at_checkpoint = Some(record.clone());
                }
                if !verifier.push(record) {
                    break;
                }
            }
            Err(err) => {
                verifier.malformed(
                    format!("{} line {}", path.display(), n + 1),
                    format!("not an audit record: {err}"),
                );
                break;
            }
        }
    }
    let report = verifier.finish();
    let checked = checkpoint.map(|c| {
        check_checkpoint(
            c,
            trusted,
            at_checkpoint.as_ref(),
            report.head.as_ref(),
            report.anchor.as_ref(),
        )
    });
    Ok((report, checked))
}
