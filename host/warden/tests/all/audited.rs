//! A runtime of its own that records every call to an audit log, and components written
//! in WAT loaded into it: for attacks a Rust guest cannot make (bad canonical-ABI
//! values, forged handles, odd instructions).

use serde_json::Value;
use warden::audit::{Audit, AuditOptions, Filter, Record};
use warden::grant::Grant;
use warden::{CallError, LoadError, Plugin, Runtime};

/// Core module `$libc`: one page of memory and a `realloc` that bumps a pointer from
/// 4096 (8-byte aligned, never frees), for the canonical ABI to lower into.
const BUMP_LIBC: &str = r#"  (core module $libc
    (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 4096))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (global.get $next)
      (global.set $next (i32.add (global.get $next)
        (i32.and (i32.add (local.get 3) (i32.const 7)) (i32.const -8))))))
"#;

pub(crate) struct Audited {
    pub(crate) runtime: Runtime,
    _home: tempfile::TempDir,
}

impl Audited {
    pub(crate) fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        let runtime = Runtime::new().unwrap();
        runtime
            .set_audit(Audit::open(home.path(), AuditOptions::default()).unwrap())
            .unwrap();
        Self {
            runtime,
            _home: home,
        }
    }

    /// As [`Audited::new`], with a memory store (`warden:host/memory`).
    pub(crate) fn with_memory() -> Self {
        let host = Self::new();
        let store = warden::memory::SqliteMemory::open(&host._home.path().join("memory.db"));
        host.runtime
            .set_memory(std::sync::Arc::new(store.unwrap()))
            .unwrap();
        host
    }

    /// Loads the built guest at `path` as plugin `name` with `grant`.
    pub(crate) fn load_guest(&self, name: &str, path: &str, grant: Grant) -> Plugin {
        crate::load_into(&self.runtime, name, path, grant)
    }

    /// Loads the component written in `wat` as plugin `name` with `grant`. A line
    /// `;; BUMP_LIBC` in it stands for [`BUMP_LIBC`].
    pub(crate) fn load(&self, name: &str, wat: &str, grant: Grant) -> Result<Plugin, LoadError> {
        let wasm = wat::parse_str(wat.replace("  ;; BUMP_LIBC\n", BUMP_LIBC)).unwrap();
        crate::load_wasm(&self.runtime, name, &wasm, grant)
    }

    pub(crate) async fn call(
        &self,
        plugin: &Plugin,
        tool: &str,
        args: Value,
    ) -> Result<Value, CallError> {
        self.runtime.call(plugin, tool, &args).await
    }

    pub(crate) fn records(&self) -> Vec<Record> {
        self.runtime
            .audit()
            .unwrap()
            .read(Filter::default())
            .unwrap()
    }

    /// The `tool.call` record of the latest call.
    pub(crate) fn last_call(&self) -> Record {
        self.records()
            .into_iter()
            .rev()
            .find(|r| r.kind == "tool.call")
            .expect("a tool.call record")
    }

    /// The latest call's `tool.call` record, asserted to be a failure of `tool` with
    /// `code`; its error message.
    pub(crate) fn last_failure(&self, tool: &str, code: &str) -> String {
        let record = self.last_call();
        assert_eq!(record.tool.as_deref(), Some(tool), "{record:#?}");
        assert_eq!(
            record.outcome,
            Some(warden::audit::Outcome::Error),
            "{record:#?}"
        );
        assert_eq!(record.fields["error"]["code"], code, "{record:#?}");
        record.fields["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}
