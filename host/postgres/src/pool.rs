//! Connections to the database, each on a thread of its own.
//!
//! The `postgres` client blocks on a runtime of its own, which cannot run inside a
//! task of the server's runtime; the pool's threads can. A caller hands a closure to
//! [`Pool::run`] and waits for its result (as it waits for a SQLite statement in the
//! embedded default). A broken connection is dropped after the statement that found it
//! broken and made anew for the next one, so a database that comes back is used again
//! without a restart.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use postgres::Client;

use crate::{DatabaseUrl, PgError};

type Job = Box<dyn FnOnce(&mut Option<Client>, &DatabaseUrl) + Send>;

/// A fixed set of connections, cheap to clone, usable from any thread or task.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    url: DatabaseUrl,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    size: usize,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    busy: AtomicUsize,
    waiting: AtomicUsize,
    connected: AtomicUsize,
    statements: AtomicU64,
    errors: AtomicU64,
    connects: AtomicU64,
}

/// The pool's figures, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections the pool may hold.
    pub size: usize,
    /// Connections open now.
    pub connected: usize,
    /// Connections running a statement now.
    pub busy: usize,
    /// Callers waiting for a connection now.
    pub waiting: usize,
    /// Closures run since start.
    pub statements: u64,
    /// Of those, failed.
    pub errors: u64,
    /// Connections made since start (more than `size`: some were remade).
    pub connects: u64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the threads, which close their connections.
        drop(self.jobs.lock().map(|mut jobs| jobs.take()));
    }
}

impl Pool {
    /// A pool of `size` connections to `url`. The first is made before this returns,
    /// so an unreachable database or a wrong password is an error here, not on the
    /// first call.
    pub fn connect(url: &DatabaseUrl, size: usize) -> Result<Self, PgError> {
        let size = size.max(1);
        let first = url.connect()?;
        let counters = Arc::new(Counters::default());
        counters.connects.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut first = Some(first);
        for n in 0..size {
            let rx = rx.clone();
            let url = url.clone();
            let client = first.take();
            if client.is_some() {
                counters.connected.fetch_add(1, Ordering::Relaxed);
            }
            std::thread::Builder::new()
                .name(format!("warden-pg-{n}"))
                .spawn(move || worker(&rx, &url, client))
                .map_err(PgError::Thread)?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                url: url.clone(),
                jobs: Mutex::new(Some(tx)),
                size,
                counters,
            }),
        })
    }

    /// The database's URL.
    pub fn url(&self) -> &DatabaseUrl {
        &self.inner.url
    }

    /// Runs `f` on a connection of the pool and returns what it returned; `action`
    /// names what it does in an error ("reading the ledger"…). If the connection turns
    /// out to have closed before `f`'s first statement was sent (the server restarted
    /// since its last use), `f` runs again on a new connection: nothing of the first
    /// try reached the server.
    pub fn run<R: Send + 'static>(
        &self,
        action: &str,
        mut f: impl FnMut(&mut Client) -> Result<R, postgres::Error> + Send + 'static,
    ) -> Result<R, PgError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let action = action.to_string();
        let counters = self.inner.counters.clone();
        let job: Job = Box::new(move |slot, url| {
            counters.waiting.fetch_sub(1, Ordering::Relaxed);
            let result = match ensure(slot, url, &counters) {
                Ok(client) => {
                    counters.busy.fetch_add(1, Ordering::Relaxed);
                    let mut result = f(client);
                    if result.as_ref().is_err_and(postgres::Error::is_closed) {
                        *slot = None;
                        counters.connected.fetch_sub(1, Ordering::Relaxed);
                        result = match ensure(slot, url, &counters) {
                            Ok(client) => f(client),
                            Err(_) => result,
                        };
                    }
                    counters.busy.fetch_sub(1, Ordering::Relaxed);
                    counters.statements.fetch_add(1, Ordering::Relaxed);
                    result.map_err(|error| PgError::Sql {
                        url: url.redacted().to_string(),
                        action,
                        error,
                    })
                }
                Err(err) => Err(err),
            };
            if let Err(err) = &result {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                if err.is_connection() {
                    if slot.take().is_some() {
                        counters.connected.fetch_sub(1, Ordering::Relaxed);
                    }
                    tracing::warn!("{err}");
                }
            }
            let _ = tx.send(result);
        });
        let stopped = || PgError::Stopped {
            url: self.inner.url.redacted().to_string(),
        };
        self.inner.counters.waiting.fetch_add(1, Ordering::Relaxed);
        let sent = match &*self.inner.jobs.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(jobs) => jobs.send(job).is_ok(),
            None => false,
        };
        if !sent {
            self.inner.counters.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(stopped());
        }
        rx.recv().unwrap_or_else(|_| Err(stopped()))
    }

    /// Whether the database answers now (`SELECT 1`).
    pub fn ping(&self) -> Result<(), PgError> {
        self.run("checking the connection", |client| {
            client.simple_query("SELECT 1").map(drop)
        })
    }

    /// The pool's figures now.
    pub fn stats(&self) -> PoolStats {
        let c = &self.inner.counters;
        PoolStats {
            size: self.inner.size,
            connected: c.connected.load(Ordering::Relaxed),
            busy: c.busy.load(Ordering::Relaxed),
            waiting: c.waiting.load(Ordering::Relaxed),
            statements: c.statements.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            connects: c.connects.load(Ordering::Relaxed),
        }
    }
}

/// The slot's connection, made anew if there is none or it closed.
fn ensure<'a>(
    slot: &'a mut Option<Client>,
    url: &DatabaseUrl,
    counters: &Counters,
) -> Result<&'a mut Client, PgError> {
    if slot.as_ref().is_some_and(Client::is_closed) {
        *slot = None;
        counters.connected.fetch_sub(1, Ordering::Relaxed);
    }
    if slot.is_none() {
        let client = url.connect()?;
        counters.connects.fetch_add(1, Ordering::Relaxed);
        counters.connected.fetch_add(1, Ordering::Relaxed);
        *slot = Some(client);
    }
    Ok(slot.as_mut().expect("a connection was just made"))
}

/// A pool thread: runs jobs until the pool is dropped.
fn worker(jobs: &Mutex<mpsc::Receiver<Job>>, url: &DatabaseUrl, mut client: Option<Client>) {
    loop {
        let job = match jobs.lock() {
            Ok(jobs) => jobs.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(&mut client, url),
            Err(_) => return,
        }
    }
}
