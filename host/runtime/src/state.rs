//! The per-call store state: what one instance of a plugin may touch.
//!
//! A fresh `CallState` is built for every call and dropped with its store, so nothing
//! written by one call is seen by the next. Its parts are deny-by-default: no
//! environment, no arguments, no preopened directories, no sockets, no name lookups,
//! no stdin; outbound HTTP goes through [`NetPolicy`](crate::capabilities::net::NetPolicy).

use std::sync::Arc;
use std::time::Instant;

use wasmtime::StoreLimitsBuilder;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capabilities::limits::Limiter;
use crate::capabilities::log::LogBudget;
use crate::capabilities::net::{NetPolicy, NetUse};
use crate::denial::Denial;
use crate::error::SetupError;
use crate::plugin::Plugin;
use warden_config::grant::{Access, Grant};

/// How much of the guest's stderr a call keeps (to explain a panic or a trap).
const STDERR_CAPTURE: usize = 64 * 1024;

/// Most handles (open files and directories, streams, pollables, HTTP requests and
/// fields…) one call's guest may hold at once, preopens included. One more traps the
/// call as the `handles` limit; the store and every handle go with the call.
pub const MAX_HANDLES: usize = 10_000;

/// Everything one call's store holds.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    net: NetPolicy,
    pub limits: Limiter,
    pub plugin: Arc<str>,
    pub call_id: u64,
    pub log: LogBudget,
    pub denials: Vec<Denial>,
    pub stderr: MemoryOutputPipe,
    /// The grant this call runs under.
    pub grant: Arc<Grant>,
    /// The runtime's memory store, if it has one.
    pub memory: Option<Arc<dyn warden_memory::Store>>,
    /// Memory operations done, for the audit records.
    pub memory_uses: crate::capabilities::memory::MemoryUses,
    /// The runtime's model router, if it has one.
    pub router: Option<Arc<warden_models::Router>>,
    /// The models capability's state: who pays, who the access policy decides for,
    /// what may still be spent, and the calls made.
    pub models: crate::capabilities::models::ModelCalls,
    /// The runtime's access policy (none: allow all), for host imports that decide.
    pub policy: Option<Arc<dyn warden_policy::Decide>>,
    /// The runtime's audit log, for the refusals those decisions record.
    pub audit: Option<warden_audit::Audit>,
    /// The embedder of hybrid memory search, if an embedding route is configured.
    pub embedder: Option<Arc<warden_memory::Embedder>>,
    /// Files opened and the environment read, for the audit records.
    pub files: crate::capabilities::files::FileUses,
    /// Keeps the epoch advancing while this store lives, so its guest yields and is
    /// stopped at its deadline.
    _ticking: crate::engine::Ticking,
}

impl CallState {
    /// The state for one call of `plugin`, with exactly what its grant gives: its
    /// directories, variables and destinations, nothing else; `deadline` ends the call.
    pub fn new(
        plugin: &Plugin,
        runtime: &crate::Runtime,
        call_id: u64,
        deadline: Instant,
    ) -> Result<Self, SetupError> {
        // First, so the epoch advances before the store's deadline is set.
        let ticking = runtime.ticking();
        let network = runtime.network.clone();
        let grant: &Grant = &plugin.capabilities;
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        let mut wasi = WasiCtx::builder();
        // wasi:random builds the bytes asked for in the host before the guest gets them:
        // never more than the guest's memory could hold (wasmtime-wasi's own cap, 64 MiB,
        // above that), so a small guest cannot make the host allocate 64 MiB a call.
        let random = u64::try_from(plugin.limits.memory_bytes()).unwrap_or(u64::MAX);
        wasi.stderr(stderr.clone())
            .max_random_size(random.min(64 << 20))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for (key, value) in &grant.env.vars {
            wasi.env(key, value);
        }
        for fs in &grant.fs {
            let perms = match fs.access {
                Access::Read => FsPerms::ReadOnly,
                Access::ReadWrite => FsPerms::ReadWrite,
            };
            wasi.preopened_dir(&fs.host, &fs.guest, perms)
                .map_err(|err| SetupError::GrantedDir {
                    path: fs.host.clone(),
                    source: err.into(),
                })?;
        }
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_HANDLES);
        Ok(Self {
            wasi: wasi.build(),
            table,
            http: WasiHttpCtx::new(),
            net: NetPolicy::new(
                plugin.name.clone(),
                call_id,
                plugin.capabilities.clone(),
                plugin.allow.clone(),
                network,
                deadline,
            ),
            limits: Limiter::new(
                StoreLimitsBuilder::new()
                    .memory_size(grant.limits.memory_bytes())
                    .trap_on_grow_failure(true)
                    .build(),
                grant.limits.memory_bytes(),
            ),
            plugin: plugin.name.clone(),
            call_id,
            log: LogBudget::default(),
            denials: Vec::new(),
            stderr,
            grant: plugin.capabilities.clone(),
            memory: runtime.memory.get().cloned(),
            memory_uses: Default::default(),
            router: runtime.router.get().cloned(),
            models: crate::capabilities::models::ModelCalls::default(),
            policy: runtime.policy.get().cloned(),
            audit: runtime.audit.get().cloned(),
            embedder: runtime.embedder.get().cloned(),
            files: crate::capabilities::files::FileUses::default(),
            _ticking: ticking,
        })
    }

    /// What the guest wrote to stderr, lossily decoded, last `max` bytes.
    pub fn stderr_tail(&self, max: usize) -> String {
        let bytes = self.stderr.contents();
        let start = bytes.len().saturating_sub(max);
        String::from_utf8_lossy(&bytes[start..]).trim().to_string()
    }

    /// Denials recorded during the call, by every capability.
    pub fn take_denials(&mut self) -> Vec<Denial> {
        let mut all = std::mem::take(&mut self.denials);
        all.append(&mut self.net.take_denials());
        all
    }

    /// The HTTP requests the call made (and that were allowed).
    pub fn take_net_uses(&mut self) -> Vec<NetUse> {
        self.net.take_uses()
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.net,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}
