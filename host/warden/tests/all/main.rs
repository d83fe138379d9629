//! Integration tests of the Warden host: one binary, one module per concern. The
//! guests are built from source by the `warden-tests` build script.

mod amplification;
mod audit;
mod audit_calls;
mod audit_crash;
mod audit_torn;
mod audited;
mod authoring;
mod boundary;
mod cache;
mod capacity;
mod cli;
mod cli_snapshots;
mod cluster;
mod compile_bomb;
mod console;
mod docs;
mod engine;
mod env_mutation;
mod foreign;
mod fs_changes;
mod gate;
mod grant_import;
mod grants;
mod handles;
mod hostile;
mod isolation;
mod log_injection;
mod mapping;
mod mcp;
mod mcp_cancel;
mod mcp_conformance;
mod mcp_python;
mod mcp_surface;
mod memories;
mod memory;
mod memory_hybrid;
mod miscompile;
mod models;
mod net;
mod net_drip;
mod net_fields;
mod net_guard;
mod net_slow_upstream;
mod oci;
mod path_spellings;
mod policy;
mod polyglot;
mod proposals;
mod residue;
mod runs;
mod schemas;
mod serve;
mod smoke;
mod special_files;
mod swap_race;
mod tables;
mod templates;
mod terminal;
mod tool_pins;
mod upstream;

use std::sync::OnceLock;

use serde_json::Value;
use warden::grant::{Access, FsGrant, Grant};
use warden::limits::Limits;
use warden::{CallError, LoadError, Plugin, PluginSource, Runtime};

/// One runtime for the whole test binary, as a server has.
pub(crate) fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new().expect("creating the runtime"))
}

/// Loads the guest at `path` as plugin `name` with default limits.
pub(crate) fn load(name: &str, path: &str) -> Plugin {
    load_with(name, path, Limits::default())
}

pub(crate) fn load_with(name: &str, path: &str, limits: Limits) -> Plugin {
    load_granted(
        name,
        path,
        Grant {
            limits,
            ..Grant::default()
        },
    )
}

/// Loads the guest at `path` as plugin `name` with `grant`.
pub(crate) fn load_granted(name: &str, path: &str, grant: Grant) -> Plugin {
    load_into(runtime(), name, path, grant)
}

/// Loads the guest at `path` as plugin `name` with `grant` into `runtime` (a test's own,
/// when it needs an audit log, memory or a router of its own).
pub(crate) fn load_into(runtime: &Runtime, name: &str, path: &str, grant: Grant) -> Plugin {
    let wasm = std::fs::read(path).expect("reading a built guest");
    load_wasm(runtime, name, &wasm, grant).expect("loading a built guest")
}

/// Loads the component `wasm` as plugin `name` with `grant` into `runtime`, unsigned.
pub(crate) fn load_wasm(
    runtime: &Runtime,
    name: &str,
    wasm: &[u8],
    grant: Grant,
) -> Result<Plugin, LoadError> {
    runtime.load(
        PluginSource {
            name,
            wasm,
            extra_docs: Default::default(),
            grant: Some(grant),
            signer: None,
        },
        None,
    )
}

/// A grant of `dir` as `/data` with `access`, and nothing else.
pub(crate) fn fs_grant(dir: &std::path::Path, access: Access) -> Grant {
    Grant {
        fs: vec![FsGrant {
            host: dir.to_path_buf(),
            guest: "/data".into(),
            access,
        }],
        ..Grant::default()
    }
}

pub(crate) async fn call(plugin: &Plugin, tool: &str, args: Value) -> Result<Value, CallError> {
    runtime().call(plugin, tool, &args).await
}
