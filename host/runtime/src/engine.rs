//! The one wasmtime `Engine` of a Warden process, its `Linker`, and the epoch ticker.
//!
//! Engine settings: the pooling allocator (instances come from preallocated slots,
//! with copy-on-write memory images), epoch interruption (every call has a wall-clock
//! deadline), where a grant asks for it, fuel, and no proposal a component does not
//! need (no threads, shared memory, GC, exceptions or 64-bit memories). The linker holds everything a guest
//! can import: WASI 0.2 (through the per-call [`CallState`], deny by default),
//! `wasi:http` (through [`NetPolicy`](crate::capabilities::net::NetPolicy)) and `warden:host`.
//! Any other import traps when called, so a component that imports more than Warden
//! knows still loads, and its other tools work.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::compile::CompileLimits;
use crate::error::SetupError;
use crate::state::CallState;
use warden_audit::Audit;
use warden_net::Network;

/// How often the epoch advances; a call's deadline is counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The most of a memory slot's written pages restored in place when its instance is
/// dropped, rather than decommitted (see `engine_config`). With every slot busy, at most
/// this much resident memory per slot stays with the pool.
const KEEP_RESIDENT: usize = 1 << 20;

/// The most of a table slot's written pages restored in place (zeroed) when its
/// instance is dropped, rather than decommitted: 8,192 entries, more than the tables of
/// the components measured hold.
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// Slots of the pooling allocator: component instances alive at once.
pub use warden_config::limits::MAX_LIVE_INSTANCES;

/// The engine, the linker and the ticker that drives deadlines.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Arc<Linker<CallState>>,
    pub(crate) network: Arc<Network>,
    pub(crate) audit: OnceLock<Audit>,
    pub(crate) memory: OnceLock<Arc<dyn warden_memory::Store>>,
    pub(crate) router: OnceLock<Arc<warden_models::Router>>,
    pub(crate) policy: OnceLock<Arc<dyn warden_policy::Decide>>,
    pub(crate) embedder: OnceLock<Arc<warden_memory::Embedder>>,
    pub(crate) compile_limits: OnceLock<CompileLimits>,
    /// One permit per slot of the pool: a tool call holds one while its instance
    /// lives (see `call/slots.rs`).
    pub(crate) instances: Arc<tokio::sync::Semaphore>,
    ticker: Ticker,
}

impl Runtime {
    /// A runtime with Warden's engine settings and every host interface linked.
    pub fn new() -> Result<Self, SetupError> {
        let engine = Engine::new(&engine_config()).map_err(|err| SetupError::Engine(err.into()))?;
        let mut linker = Linker::<CallState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link("linking WASI"))?;
        crate::capabilities::files::add_to_linker(&mut linker)
            .map_err(link("recording file opens and changes"))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(link("linking wasi:http"))?;
        crate::bindings::Services::add_to_linker::<CallState, HasSelf<CallState>>(
            &mut linker,
            |s| s,
        )
        .map_err(link("linking warden:host"))?;
        let ticker = Ticker::start(&engine);
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            network: Arc::default(),
            audit: OnceLock::new(),
            memory: OnceLock::new(),
            router: OnceLock::new(),
            policy: OnceLock::new(),
            embedder: OnceLock::new(),
            compile_limits: OnceLock::new(),
            instances: Arc::new(tokio::sync::Semaphore::new(MAX_LIVE_INSTANCES as usize)),
            ticker,
        })
    }

    /// A hold that keeps the epoch advancing while it lives: every store that runs
    /// guest code takes one ([`CallState::new`]).
    pub(crate) fn ticking(&self) -> Ticking {
        self.ticker.ticking()
    }

    /// Whether the epoch ticker sleeps, no store having lived for [`TICKER_IDLE`].
    #[doc(hidden)]
    pub fn ticker_asleep(&self) -> bool {
        self.ticker.shared.asleep.load(Ordering::SeqCst)
    }

    /// Records every call from now on in `audit`, durably before its result is
    /// returned. Set once; a second log is refused.
    pub fn set_audit(&self, audit: Audit) -> Result<(), SetupError> {
        self.audit.set(audit).map_err(|_| SetupError::AlreadySet {
            what: "records to an audit log",
        })
    }

    /// Compiles components within `limits` instead of the defaults (see
    /// [`CompileLimits`]). Set once, before the first load.
    pub fn set_compile_limits(&self, limits: CompileLimits) -> Result<(), SetupError> {
        self.compile_limits
            .set(limits)
            .map_err(|_| SetupError::AlreadySet {
                what: "has compile limits",
            })
    }

    /// The bounds of every compile ([`CompileLimits::default`] unless set).
    pub fn compile_limits(&self) -> &CompileLimits {
        self.compile_limits.get_or_init(CompileLimits::default)
    }

    /// Serves `warden:host/memory` from `store`. Set once.
    pub fn set_memory(&self, store: Arc<dyn warden_memory::Store>) -> Result<(), SetupError> {
        self.memory.set(store).map_err(|_| SetupError::AlreadySet {
            what: "has a memory store",
        })
    }

    /// Serves `warden:host/models` through `router`. Set once.
    pub fn set_router(&self, router: Arc<warden_models::Router>) -> Result<(), SetupError> {
        self.router.set(router).map_err(|_| SetupError::AlreadySet {
            what: "has a model router",
        })
    }

    /// Decides who may do what from now on ([`warden_policy`]). Set once; without
    /// it every request is allowed (the local operator's CLI).
    pub fn set_policy(&self, policy: Arc<dyn warden_policy::Decide>) -> Result<(), SetupError> {
        self.policy.set(policy).map_err(|_| SetupError::AlreadySet {
            what: "has an access policy",
        })
    }

    /// The access policy: the one set, or [`AllowAll`](warden_policy::AllowAll).
    pub fn policy(&self) -> &dyn warden_policy::Decide {
        match self.policy.get() {
            Some(policy) => policy.as_ref(),
            None => &warden_policy::AllowAll,
        }
    }

    /// Embeds memory documents and queries (hybrid search) through `embedder`. Set once.
    pub fn set_embedder(&self, embedder: Arc<warden_memory::Embedder>) -> Result<(), SetupError> {
        self.embedder
            .set(embedder)
            .map_err(|_| SetupError::AlreadySet {
                what: "has an embedder",
            })
    }

    /// The model router, if one is set.
    pub fn router(&self) -> Option<&Arc<warden_models::Router>> {
        self.router.get()
    }

    /// The memory store, if one is set.
    pub fn memory(&self) -> Option<&Arc<dyn warden_memory::Store>> {
        self.memory.get()
    }

    /// The audit log calls are recorded in, if one is set.
    pub fn audit(&self) -> Option<&Audit> {
        self.audit.get()
    }

    /// Name pins and TLS roots of every call's outbound HTTP.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The engine (for compiling and the compile cache).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// The error of linking `what`.
fn link(what: &'static str) -> impl Fn(wasmtime::Error) -> SetupError {
    move |err| SetupError::Link {
        what,
        source: err.into(),
    }
}

fn engine_config() -> Config {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(MAX_LIVE_INSTANCES)
        .total_core_instances(MAX_LIVE_INSTANCES * 4)
        .total_memories(MAX_LIVE_INSTANCES * 2)
        .total_tables(MAX_LIVE_INSTANCES * 4)
        .total_stacks(MAX_LIVE_INSTANCES)
        .max_memories_per_component(4)
        .max_tables_per_component(8)
        .max_memory_size(1 << 30);
    // A slot's memory is reset for its next instance by restoring only the pages the
    // last call wrote (Linux's `PAGEMAP_SCAN`, kernel 6.7 and later), up to
    // `KEEP_RESIDENT` of them, instead of giving every page back to the kernel: the next
    // call then finds them mapped and writable, without page faults. The faults were
    // the larger cost: a guest's first write to a page read earlier in the call is a
    // copy-on-write, and with the host's threads on both cores each one flushed the
    // other core's TLB (an IPI), a third of the CPU of 256 concurrent calls
    // (BENCHMARKS.md). Without the scan wasmtime would reset the first `KEEP_RESIDENT`
    // bytes whether written or not, slower than giving them back: then off.
    // Tables the same way: by default each table's written pages went back to the
    // kernel (`madvise`) at every teardown, and with the host's threads on both cores
    // each of those flushed the other core's TLB too (an IPI): 7 % of `warden serve`'s
    // CPU per HTTP call (BENCHMARKS.md). A table's pages are few; the scan finds them.
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(TABLE_KEEP_RESIDENT);
    }
    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .memory_init_cow(true)
        .epoch_interruption(true)
        .consume_fuel(true)
        .max_wasm_stack(1 << 20)
        .wasm_component_model(true)
        // Wasm 3.0 brings 64-bit memories on by default. No component needs one (the
        // canonical ABI lifts and lowers 32-bit memories only) and their bounds checks
        // are all explicit, a code path the guard regions do not back: off. Threads,
        // GC, exceptions and the async component ABI are off by the crate features
        // Warden builds wasmtime with; stack switching, custom page sizes and wide
        // arithmetic by wasmtime's defaults (see tests/all/proposals.rs).
        .wasm_memory64(false);
    config
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped, while a store that
/// runs guest code lives (each holds a [`Ticking`]) and for [`TICKER_IDLE`] after the
/// last one ended; then it sleeps until the next store, so an idle process does not wake
/// 200 times a second. A store made while it sleeps wakes it before the store's
/// deadline is set, so every guest still yields and is stopped on time.
struct Ticker {
    shared: Arc<TickerShared>,
}

/// How long the ticker goes on with no store made or alive before it sleeps: calls a
/// second apart or closer never wait for it to wake.
pub const TICKER_IDLE: Duration = Duration::from_secs(1);

#[derive(Default)]
struct TickerShared {
    stop: AtomicBool,
    /// Stores made so far: one made and ended between two ticks counts too.
    made: AtomicUsize,
    /// Stores ended so far; those alive are the difference.
    ended: AtomicUsize,
    /// Whether the ticker is (about to be) parked.
    asleep: AtomicBool,
    thread: OnceLock<thread::Thread>,
}

/// Keeps the epoch advancing while it lives: held by every store that runs guest code
/// (in its [`CallState`]).
pub struct Ticking {
    shared: Arc<TickerShared>,
}

impl Drop for Ticking {
    fn drop(&mut self) {
        self.shared.ended.fetch_add(1, Ordering::SeqCst);
    }
}

impl Ticker {
    fn start(engine: &Engine) -> Self {
        let shared = Arc::new(TickerShared::default());
        let weak = engine.weak();
        let ticker = shared.clone();
        let idle_ticks = TICKER_IDLE.as_millis() / EPOCH_TICK.as_millis();
        let handle = thread::Builder::new()
            .name("warden-epoch".into())
            .spawn(move || {
                let (mut idle, mut seen) = (0, 0);
                while !ticker.stop.load(Ordering::Relaxed) {
                    thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                    // A store made since the last tick, or one still alive.
                    let made = ticker.made.load(Ordering::SeqCst);
                    if made != seen || made != ticker.ended.load(Ordering::SeqCst) {
                        (idle, seen) = (0, made);
                        continue;
                    }
                    idle += 1;
                    if idle < idle_ticks {
                        continue;
                    }
                    // Asleep first, then the last look: a store made after it sees
                    // `asleep` and unparks (an unpark before the park is kept).
                    ticker.asleep.store(true, Ordering::SeqCst);
                    if ticker.made.load(Ordering::SeqCst) == seen
                        && !ticker.stop.load(Ordering::Relaxed)
                    {
                        thread::park();
                    }
                    ticker.asleep.store(false, Ordering::SeqCst);
                    idle = 0;
                }
            })
            .expect("spawning the epoch ticker thread");
        let _ = shared.thread.set(handle.thread().clone());
        Self { shared }
    }

    /// A hold that keeps the epoch advancing, waking the ticker if it sleeps.
    fn ticking(&self) -> Ticking {
        self.shared.made.fetch_add(1, Ordering::SeqCst);
        if self.shared.asleep.load(Ordering::SeqCst) {
            self.unpark();
        }
        Ticking {
            shared: self.shared.clone(),
        }
    }

    fn unpark(&self) {
        if let Some(thread) = self.shared.thread.get() {
            thread.unpark();
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.unpark();
    }
}
