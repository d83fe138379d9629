//! A loaded plugin: its compiled component, its tools, and its `InstancePre`.
//!
//! Loading validates the bytes, compiles them (or takes them from the compile cache),
//! links every import (unknown ones trap when called), and derives the tools. Calling
//! instantiates the `InstancePre` in a fresh store each time (see [`crate::call`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use wasmtime::component::InstancePre;
use wasmtime::component::types::ComponentItem;

use crate::cache::{CacheOutcome, CompileCache, Lookup};
use crate::compile;
use crate::docs::PackageDocs;
use crate::engine::Runtime;
use crate::error::{CacheError, Chain, LoadError, chain};
use crate::pins::{self, Withheld};
use crate::state::CallState;
use crate::tools::{self, ExtraDocs, Skipped, Tool};
use warden_config::grant::Grant;
use warden_config::limits::Limits;
use warden_config::manifest::ToolEntry;
use warden_net::AllowList;
use warden_policy::ToolAnnotations;

/// What a plugin is loaded from.
pub struct PluginSource<'a> {
    /// The plugin's name (tool ids are `name/tool`).
    pub name: &'a str,
    /// The component's bytes.
    pub wasm: &'a [u8],
    /// Descriptions from outside the component.
    pub extra_docs: ExtraDocs<'a>,
    /// The operator's grant; `None` gives no capabilities and default limits.
    pub grant: Option<Grant>,
    /// The trusted signer (a `[trust.keys]` or `[trust.identities]` name) whose verified signature covers these
    /// bytes, if any: what a grant's `signer` pin is checked against.
    pub signer: Option<&'a str>,
}

/// A plugin ready to be called.
pub struct Plugin {
    /// The plugin's name.
    pub name: Arc<str>,
    /// `sha256:<hex>` of the component: the plugin's identity.
    pub digest: String,
    /// Its tools, in export order: those the grant's `[tool_definitions]` accepts, or
    /// all without it.
    pub tools: Vec<Tool>,
    /// Tools whose definition the grant does not accept (changed, or new), withheld
    /// until an operator does ([`crate::pins`]).
    pub withheld: Vec<Withheld>,
    /// Exports that are not tools, with the reason.
    pub skipped: Vec<Skipped>,
    /// The interfaces the component imports: the capabilities it could ask for.
    pub imports: Vec<String>,
    /// Per-call limits (from the grant, else the defaults).
    pub limits: Limits,
    /// The operator's grant as set, if any.
    pub grant: Option<Grant>,
    /// The trusted signer whose verified signature covers the component, if any (what
    /// access policies see as `resource.signer`).
    pub signer: Option<String>,
    /// Why the plugin runs with fewer capabilities than its grant names (a digest pin
    /// that does not match), said with every call.
    pub notice: Option<String>,
    /// How the compiled code was obtained.
    pub cache: CacheOutcome,
    /// Time taken to load (compile or deserialize, link, derive tools).
    pub load_time: Duration,
    pub pre: InstancePre<CallState>,
    /// What each call gets: the grant, or nothing when there is none or its pin fails.
    pub capabilities: Arc<Grant>,
    /// The capabilities' `[net] allow`, parsed once.
    pub allow: Arc<AllowList>,
    /// Calls of this plugin running at once (`max_concurrency`).
    pub(crate) slots: Arc<tokio::sync::Semaphore>,
}

impl Plugin {
    /// The tool with this name.
    pub fn tool(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|t| t.name == name)
    }

    /// `tool` as the access policy sees it: with its annotations as the manifest
    /// states them, narrowed by the grant ([`Plugin::annotations`]).
    pub fn resource(&self, tool: &str) -> warden_policy::Resource {
        warden_policy::Resource::Tool {
            plugin: self.name.to_string(),
            tool: tool.to_string(),
            annotations: self.annotations(tool),
            signer: self.signer.clone(),
        }
    }

    /// What `tool` does, as its manifest says (conservative defaults where it says
    /// nothing, and for a tool the plugin does not have), narrowed by what the plugin
    /// may reach: a plugin whose grant allows no network host is never open-world.
    pub fn annotations(&self, tool: &str) -> ToolAnnotations {
        let manifest = self
            .tool(tool)
            .map_or_else(ToolEntry::default_annotations, |t| t.annotations);
        // The operator's grant has the last word over the author's manifest.
        let declared = match self.capabilities.annotations.get(tool) {
            Some(set) => set.apply(manifest),
            None => manifest,
        };
        let networked = self
            .capabilities
            .net
            .as_ref()
            .is_some_and(|net| !net.allow.is_empty());
        ToolAnnotations {
            open_world: declared.open_world && networked,
            ..declared
        }
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Checks that `wasm` is a component, with an error that says what to do if not.
pub fn validate(name: &str, wasm: &[u8]) -> Result<(), LoadError> {
    check_header(name, wasm)?;
    let invalid = |reason: String| LoadError::Invalid {
        name: name.to_string(),
        reason,
    };
    let mut validator = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    validator
        .validate_all(wasm)
        .map_err(|err| invalid(format!("malformed component: {err}")))?;
    Ok(())
}

/// Checks that `wasm` starts as a component does (the cheap part of [`validate`]).
fn check_header(name: &str, wasm: &[u8]) -> Result<(), LoadError> {
    let invalid = |reason: &str| LoadError::Invalid {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(invalid(
            "not a WebAssembly binary (no \\0asm header); give the .wasm file a toolchain built for wasm32-wasip2",
        ));
    }
    if wasmparser::Parser::is_core_wasm(wasm) {
        return Err(invalid(
            "a core WebAssembly module, not a component; build for wasm32-wasip2, or wrap it with `wasm-tools component new`",
        ));
    }
    Ok(())
}

/// Why `grant`'s pins do not hold for a component with `digest` signed by `signer`
/// (a notice said with every call), or `None` when they hold.
fn pin_mismatch(name: &str, grant: &Grant, digest: &str, signer: Option<&str>) -> Option<String> {
    if let Some(pin) = &grant.digest
        && pin != digest
    {
        return Some(format!(
            "plugin \"{name}\" runs with no capabilities: its grant is pinned to {pin}, but the installed component is {digest}; review it and update the pin (`warden grant set {name} FILE`)"
        ));
    }
    if let Some(pin) = &grant.signer
        && signer != Some(pin.as_str())
    {
        let found = match signer {
            Some(other) => format!("is signed by \"{other}\""),
            None => "has no trusted signature".to_string(),
        };
        return Some(format!(
            "plugin \"{name}\" runs with no capabilities: its grant is pinned to signer \"{pin}\", but the installed component ({digest}) {found}; add a version signed by \"{pin}\", or review this one and change the pin (`warden grant set {name} FILE`)"
        ));
    }
    None
}

impl Runtime {
    /// Loads a plugin: validate, compile (through `cache` when given), link, derive tools.
    pub fn load(
        &self,
        source: PluginSource<'_>,
        cache: Option<&CompileCache>,
    ) -> Result<Plugin, LoadError> {
        let started = Instant::now();
        let name = source.name;
        let other = |source: wasmtime::Error| LoadError::Other {
            name: name.to_string(),
            source: source.into(),
        };
        check_header(name, source.wasm)?;
        let digest = digest(source.wasm);
        let hex = digest.trim_start_matches("sha256:");
        // A cache entry is named by the component's digest and made only after these
        // same bytes were validated and compiled: a hit needs no second validation,
        // which was most of a warm start's CPU (BENCHMARKS.md, cold start).
        let lookup = cache.map(|cache| (cache, cache.lookup(&self.engine, hex)));
        if !matches!(lookup, Some((_, Lookup::Hit(_)))) {
            validate(name, source.wasm)?;
        }
        let limits = self.compile_limits();
        compile::check(source.wasm, limits).map_err(|reason| LoadError::Invalid {
            name: name.to_string(),
            reason: format!(
                "refused before compiling: {reason}; Warden bounds what it compiles (a compile bomb stalls the host), so rebuild it smaller (with optimizations, split large functions)"
            ),
        })?;
        if let Some(grant) = &source.grant {
            grant.check(name).map_err(|err| LoadError::Invalid {
                name: name.to_string(),
                reason: format!("its grant is not valid: {}", chain(err)),
            })?;
            self.protected()
                .check(grant)
                .map_err(|reason| LoadError::Invalid {
                    name: name.to_string(),
                    reason: format!("its grant is refused: {reason}"),
                })?;
        }
        let (component, outcome) = match lookup {
            Some((cache, lookup)) => cache.compile(&self.engine, hex, source.wasm, limits, lookup),
            None => compile::compile(&self.engine, source.wasm, limits)
                .map(|c| (c, CacheOutcome::Compiled))
                .map_err(|err| CacheError::Compile(err.into())),
        }
        .map_err(|err| LoadError::Invalid {
            name: name.to_string(),
            reason: format!("does not compile: {}", Chain(&err)),
        })?;
        // Imports Warden does not provide trap when called, so the component's other
        // tools still work. Only a component that needs it gets its own linker:
        // stubbing also re-defines the resource types of partially known instances.
        let pre = match self.linker.instantiate_pre(&component) {
            Ok(pre) => pre,
            Err(_) => {
                let mut linker = (*self.linker).clone();
                linker
                    .define_unknown_imports_as_traps(&component)
                    .map_err(other)?;
                linker.instantiate_pre(&component).map_err(other)?
            }
        };
        let imports = component
            .component_type()
            .imports(&self.engine)
            .filter(|(_, item)| {
                matches!(
                    item.ty,
                    ComponentItem::ComponentInstance(_) | ComponentItem::ComponentFunc(_)
                )
            })
            .map(|(name, _)| name.to_string())
            .collect();
        let embedded = match PackageDocs::from_component(source.wasm) {
            Some(Ok(docs)) => Some(docs),
            Some(Err(err)) => {
                tracing::warn!(plugin = name, %err, "ignoring unreadable package-docs section");
                None
            }
            None => None,
        };
        let (tools, skipped) = tools::discover(
            &self.engine,
            &component,
            embedded.as_ref(),
            &source.extra_docs,
        );
        let (capabilities, notice) = match &source.grant {
            Some(grant) => match pin_mismatch(name, grant, &digest, source.signer) {
                Some(notice) => (
                    Grant {
                        limits: grant.limits.clone(),
                        ..Grant::default()
                    },
                    Some(notice),
                ),
                None => (grant.clone(), None),
            },
            None => (Grant::default(), None),
        };
        if let Some(notice) = &notice {
            tracing::warn!(plugin = name, "{notice}");
        }
        // Pinned definitions apply whatever the digest pin says: a new binary is just
        // what may bring a changed tool.
        let (tools, withheld) = pins::partition(
            tools,
            source
                .grant
                .as_ref()
                .and_then(|g| g.tool_definitions.as_ref()),
        );
        for w in &withheld {
            tracing::warn!(plugin = name, "{}", w.reason(name));
        }
        let all = || tools.iter().chain(withheld.iter().map(|w| &w.tool));
        if let Some(unknown) = capabilities
            .annotations
            .keys()
            .find(|tool| !all().any(|t| &t.name == *tool))
        {
            return Err(LoadError::Invalid {
                name: name.to_string(),
                reason: format!(
                    "its grant sets [annotations.{unknown}], but the plugin has no tool {unknown:?} (its tools: {})",
                    all()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        let allow = match &capabilities.net {
            // Checked above with the whole grant.
            Some(net) => AllowList::parse(&net.allow).unwrap_or_default(),
            None => AllowList::default(),
        };
        Ok(Plugin {
            name: name.into(),
            digest,
            tools,
            withheld,
            skipped,
            imports,
            limits: capabilities.limits.clone(),
            slots: Arc::new(tokio::sync::Semaphore::new(
                capabilities.limits.max_concurrency as usize,
            )),
            capabilities: Arc::new(capabilities),
            allow: Arc::new(allow),
            grant: source.grant,
            signer: source.signer.map(str::to_string),
            notice,
            cache: outcome,
            load_time: started.elapsed(),
            pre,
        })
    }
}
