//! Polling before sleep: a worker thread with nothing to do polls the server's sockets
//! for a short window before it sleeps, so that a request coming soon after the last
//! answer finds a thread awake. Off unless the operator sets `[server] idle_poll_us`.
//!
//! On a machine whose idle CPUs halt at once (a VM with halt polling off, as here), a
//! thread woken by a request waits for the hypervisor to wake its CPU, and then runs
//! its code with cold caches: tens of µs a request. A server that polls for a while
//! keeps its thread on the CPU; the price is that CPU time, spent only while idle and
//! at most `idle_poll_us` each time a worker runs out of work. `/metrics` shows both
//! sides (`warden_idle_polls_total` by how each window ended, and
//! `warden_idle_poll_seconds_total`), so an operator can see whether the window catches
//! requests or only burns time.
//!
//! The window is spent in the runtime's `on_thread_park` hook, before the worker parks:
//! it ends at once when one of the watched sockets (the listener and every accepted
//! connection, in an `epoll` set of this module's own) is readable, or when a task was
//! scheduled from outside the runtime (its global queue is not empty), and otherwise
//! when the window is over. Then the worker parks as it always does, and finds the
//! socket ready without sleeping. Between two polls it yields its CPU, so any thread
//! ready to run there (the audit log's writer, whose sync a call may be waiting for)
//! runs first: a bare spin kept the writer off both cores of a small machine and made
//! calls with full durability slower (`BENCHMARKS.md`). While it polls, the worker still counts as looking
//! for work, so a task scheduled from another thread meanwhile is found when it parks,
//! never lost; it waits at most the window. Timers due within the window fire at its
//! end.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::event::{Timespec, epoll};

/// The polling window, the sockets it watches and what it has done.
struct IdlePoll {
    window: Duration,
    epoll: OwnedFd,
    /// Windows ended by a readable socket, by a queued task, by their end.
    ended: [AtomicU64; 3],
    /// Time spent polling, in ns.
    polled_ns: AtomicU64,
}

/// How a window ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    /// A watched socket was readable: a request (or a new connection) came.
    Request = 0,
    /// A task was scheduled from outside the runtime.
    Task = 1,
    /// Nothing came within the window.
    Window = 2,
}

static IDLE_POLL: OnceLock<IdlePoll> = OnceLock::new();

/// What polling before sleep has done in this process, for `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Counts {
    /// The window, in µs.
    pub window_us: u64,
    /// Windows ended by a readable socket.
    pub request: u64,
    /// Windows ended by a task scheduled from outside the runtime.
    pub task: u64,
    /// Windows that ran to their end.
    pub window: u64,
    /// Time spent polling, in seconds.
    pub seconds: f64,
}

/// Turns polling before sleep on for this process, with `window` per idle worker. A
/// window of zero leaves it off. The runtime must call [`before_park`] from its
/// `on_thread_park` hook (`warden`'s commands do). The first window set stays until
/// the process ends; another one asked for later is ignored, with a warning.
pub fn enable(window: Duration) -> std::io::Result<()> {
    if window.is_zero() {
        return Ok(());
    }
    if let Some(poll) = IDLE_POLL.get() {
        if poll.window != window {
            tracing::warn!(
                kept_us = poll.window.as_micros(),
                asked_us = window.as_micros(),
                "idle polling is set once a process: a second server keeps the first's window"
            );
        }
        return Ok(());
    }
    let poll = IdlePoll::new(window)?;
    tracing::info!(
        window_us = window.as_micros(),
        "idle workers poll for the next request before they sleep"
    );
    let _ = IDLE_POLL.set(poll);
    Ok(())
}

/// What polling before sleep has done, if it is on.
pub fn counts() -> Option<Counts> {
    let poll = IDLE_POLL.get()?;
    let ended = |e: Ended| poll.ended[e as usize].load(Ordering::Relaxed);
    Some(Counts {
        window_us: u64::try_from(poll.window.as_micros()).unwrap_or(u64::MAX),
        request: ended(Ended::Request),
        task: ended(Ended::Task),
        window: ended(Ended::Window),
        seconds: poll.polled_ns.load(Ordering::Relaxed) as f64 / 1e9,
    })
}

/// Watches `socket` (a listener or a connection) while idle workers poll: its being
/// readable ends their window. A closed socket leaves the set by itself. Nothing when
/// polling is off.
pub fn watch(socket: &impl AsFd) {
    if let Some(poll) = IDLE_POLL.get() {
        poll.watch(socket);
    }
}

/// Polls the watched sockets until one is readable, a task is queued from outside the
/// runtime, or the window is over. For the runtime's `on_thread_park` hook; nothing
/// when polling is off.
pub fn before_park() {
    let Some(poll) = IDLE_POLL.get() else {
        return;
    };
    let runtime = tokio::runtime::Handle::try_current().ok();
    poll.poll(|| {
        runtime
            .as_ref()
            .is_some_and(|handle| handle.metrics().global_queue_depth() > 0)
    });
}

impl IdlePoll {
    fn new(window: Duration) -> std::io::Result<Self> {
        Ok(Self {
            window,
            epoll: epoll::create(epoll::CreateFlags::CLOEXEC)?,
            ended: Default::default(),
            polled_ns: AtomicU64::new(0),
        })
    }

    fn watch(&self, socket: &impl AsFd) {
        let added = epoll::add(
            &self.epoll,
            socket,
            epoll::EventData::new_u64(0),
            epoll::EventFlags::IN | epoll::EventFlags::RDHUP,
        );
        if let Err(err) = added {
            tracing::debug!(%err, "a socket could not be watched for polling before sleep");
        }
    }

    /// One window: polls until a watched socket is readable, `queued()` is true, or the
    /// window is over, and counts how it ended.
    fn poll(&self, queued: impl Fn() -> bool) -> Ended {
        let started = Instant::now();
        let ended = loop {
            if self.readable() {
                break Ended::Request;
            }
            if queued() {
                break Ended::Task;
            }
            if started.elapsed() >= self.window {
                break Ended::Window;
            }
            // Not a bare spin: any other thread ready to run on this CPU (the audit
            // log's writer, whose sync a call may be waiting for) runs first.
            std::thread::yield_now();
        };
        self.ended[ended as usize].fetch_add(1, Ordering::Relaxed);
        let spent = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.polled_ns.fetch_add(spent, Ordering::Relaxed);
        ended
    }

    /// Whether a watched socket is readable now. An `epoll` set that cannot be polled
    /// counts as readable: the worker then parks as it always does.
    fn readable(&self) -> bool {
        const NOW: Timespec = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let mut events = [MaybeUninit::uninit()];
        match epoll::wait(&self.epoll, &mut events, Some(&NOW)) {
            Ok((ready, _)) => !ready.is_empty(),
            Err(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::os::unix::net::UnixStream;

    use super::*;

    /// A window long enough that only a socket or a task can end it within a test.
    const LONG: Duration = Duration::from_secs(3600);

    #[test]
    fn a_readable_socket_ends_the_window() {
        let poll = IdlePoll::new(LONG).unwrap();
        let (mut client, server) = UnixStream::pair().unwrap();
        poll.watch(&server);
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(poll.poll(|| false), Ended::Request);
    }

    #[test]
    fn a_closed_peer_ends_the_window() {
        let poll = IdlePoll::new(LONG).unwrap();
        let (client, server) = UnixStream::pair().unwrap();
        poll.watch(&server);
        drop(client);
        assert_eq!(poll.poll(|| false), Ended::Request);
    }

    #[test]
    fn a_queued_task_ends_the_window() {
        let poll = IdlePoll::new(LONG).unwrap();
        let (_client, server) = UnixStream::pair().unwrap();
        poll.watch(&server);
        assert_eq!(poll.poll(|| true), Ended::Task);
    }

    #[test]
    fn a_quiet_socket_waits_out_the_window_and_a_closed_one_leaves_the_set() {
        let poll = IdlePoll::new(Duration::from_micros(200)).unwrap();
        let (client, server) = UnixStream::pair().unwrap();
        poll.watch(&server);
        assert_eq!(poll.poll(|| false), Ended::Window);
        // Closed on both ends: out of the set, so it no longer ends a window.
        drop((client, server));
        assert_eq!(poll.poll(|| false), Ended::Window);
        let counted = |e: Ended| poll.ended[e as usize].load(Ordering::Relaxed);
        assert_eq!(
            (
                counted(Ended::Request),
                counted(Ended::Task),
                counted(Ended::Window)
            ),
            (0, 0, 2)
        );
        assert!(poll.polled_ns.load(Ordering::Relaxed) >= 2 * 200_000);
    }
}
