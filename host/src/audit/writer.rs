//! The one thread that owns the store: it takes append requests from every caller,
//! commits those that arrived together in one transaction (group commit), and only
//! then answers each caller. It also signs checkpoints: every `checkpoint_every`
//! records and when it stops.

use std::path::PathBuf;
use std::sync::mpsc;

use super::AuditOptions;
use super::checkpoint::{Checkpoint, Signer};
use super::record::{Event, GENESIS, Record};
use super::store::Store;

/// The most appends committed in one transaction.
const MAX_BATCH: usize = 4096;

/// Delivers the result of an append to its caller (async or blocking).
pub(crate) type AppendReply = Box<dyn FnOnce(anyhow::Result<Record>) + Send>;

/// Work for the writer thread.
pub(crate) enum Request {
    /// Append one event.
    Append(Event, AppendReply),
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
}

impl Writer {
    pub(crate) fn new(
        mut store: Box<dyn Store>,
        home: PathBuf,
        options: AuditOptions,
    ) -> anyhow::Result<Self> {
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
        })
    }

    /// The store, for jobs.
    pub fn store(&mut self) -> &mut dyn Store {
        &mut *self.store
    }

    /// Signs and stores a checkpoint of the current head, unless the newest checkpoint
    /// is already of it. Returns the newest checkpoint (none for an empty log).
    pub fn checkpoint(&mut self) -> anyhow::Result<Option<Checkpoint>> {
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
        if self.signer.is_none() {
            self.signer = Some(Signer::load_or_create(&self.home)?);
        }
        let signer = self.signer.as_ref().expect("set above");
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
        let result = self.store.append(&mut |head| {
            let mut seq = head.map_or(0, |h| h.seq);
            let mut prev = head.map_or_else(|| GENESIS.to_string(), |h| h.hash.clone());
            events
                .take()
                .unwrap_or_default()
                .into_iter()
                .map(|event| {
                    seq += 1;
                    let record = Record::new(seq, time.clone(), event, prev.clone());
                    prev.clone_from(&record.hash);
                    record
                })
                .collect()
        });
        match result {
            Ok(records) => {
                if let Some(last) = records.last() {
                    self.head = last.seq;
                    self.appended = true;
                }
                for (reply, record) in replies.into_iter().zip(records) {
                    reply(Ok(record));
                }
                let every = self.options.checkpoint_every;
                if every > 0
                    && self.head >= self.checkpointed + every
                    && let Err(err) = self.checkpoint()
                {
                    tracing::warn!("audit: signing a checkpoint: {err:#}");
                }
            }
            Err(err) => {
                let message = format!("{err:#}");
                for reply in replies {
                    reply(Err(anyhow::anyhow!("{message}")));
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
        while let Ok(first) = requests.recv() {
            let mut batch = Vec::new();
            let mut jobs = Vec::new();
            let mut next = Some(first);
            while let Some(request) = next {
                match request {
                    Request::Append(event, reply) => batch.push((event, reply)),
                    Request::Job(job) => jobs.push(job),
                }
                next = if batch.len() < MAX_BATCH {
                    requests.try_recv().ok()
                } else {
                    None
                };
            }
            if !batch.is_empty() {
                self.commit(batch);
            }
            for job in jobs {
                job(&mut self);
            }
        }
        if self.appended
            && let Err(err) = self.checkpoint()
        {
            tracing::warn!("audit: signing the checkpoint at shutdown: {err:#}");
        }
    }
}
