//! The plugins a server serves: every installed plugin of a home, loaded into one
//! [`Runtime`], looked up by name.
//!
//! The set is a snapshot swapped whole on every change, so a call holds the
//! `Arc<Plugin>` it started with and finishes on that version while new calls get
//! the new one. [`Registry::sync`] brings the set in line with the home (after a file
//! change, see [`super::watch`]); [`Registry::install`], [`Registry::remove`] and
//! [`Registry::set_grant`] change the home and the set together (the HTTP API). A
//! version that does not load is refused and the old one keeps serving. Every change is
//! logged and audited ([`warden_runtime::changes`]).
//!
//! This module may touch the home's `plugins/` and `grants/`, and the audit log.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use sha2::{Digest as _, Sha256};

use warden_audit::Event;
use warden_config::grant::Grant;
use warden_runtime::cache::CompileCache;
use warden_runtime::changes;
use warden_runtime::error::{CacheError, Chain, HomeError, chain};
use warden_runtime::home::{Home, Installed, InstalledMeta};
use warden_runtime::{Plugin, Runtime};

/// One served plugin.
pub struct Served {
    /// The loaded plugin.
    pub plugin: Arc<Plugin>,
    /// What the home records about it.
    pub meta: InstalledMeta,
    /// Digest of the component, its record and its grant: what a reload compares.
    key: String,
}

/// Everything served, by name.
pub type Snapshot = Arc<BTreeMap<String, Arc<Served>>>;

pub use crate::error::ChangeError;

/// The plugins of one home, served from one runtime.
pub struct Registry {
    runtime: Arc<Runtime>,
    home: Home,
    cache: Arc<CompileCache>,
    current: RwLock<Snapshot>,
    /// Versions that failed to load, by name: not retried until they change.
    refused: Mutex<HashMap<String, String>>,
    /// One change at a time.
    changing: tokio::sync::Mutex<()>,
    generation: tokio::sync::watch::Sender<u64>,
}

fn key_of(installed: &Installed) -> String {
    let mut hasher = Sha256::new();
    hasher.update(Sha256::digest(&installed.wasm));
    hasher.update(serde_json::to_vec(&installed.meta).unwrap_or_default());
    if let Some(grant) = &installed.grant {
        hasher.update(grant.to_toml().as_bytes());
    }
    hex::encode(hasher.finalize())
}

impl Registry {
    /// An empty registry of `home`'s plugins; [`Registry::sync`] loads them.
    pub fn new(runtime: Arc<Runtime>, home: Home) -> Result<Self, CacheError> {
        let cache = Arc::new(home.cache(runtime.engine())?);
        Ok(Self {
            runtime,
            home,
            cache,
            current: RwLock::default(),
            refused: Mutex::default(),
            changing: tokio::sync::Mutex::new(()),
            generation: tokio::sync::watch::channel(0).0,
        })
    }

    /// The runtime plugins are loaded into.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The home.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// Everything served now.
    pub fn snapshot(&self) -> Snapshot {
        self.current.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// The plugin served under `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Served>> {
        self.snapshot().get(name).cloned()
    }

    /// A receiver that sees a new number after every change of what is served (for
    /// `tools/list_changed` notifications).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    fn swap(&self, change: impl FnOnce(&mut BTreeMap<String, Arc<Served>>)) {
        let mut map = (*self.snapshot()).clone();
        change(&mut map);
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(map);
        }
        self.generation.send_modify(|g| *g += 1);
    }

    async fn record(&self, event: Event) {
        if let Some(audit) = self.runtime.audit() {
            let kind = event.kind.clone();
            if let Err(err) = changes::write(audit, event).await {
                tracing::error!(kind, "{}", Chain(&err));
            }
        }
    }

    async fn load(&self, installed: Installed) -> Result<(Plugin, Installed), String> {
        let runtime = self.runtime.clone();
        let cache = self.cache.clone();
        tokio::task::spawn_blocking(move || {
            installed
                .load(&runtime, Some(&cache))
                .map(|plugin| (plugin, installed))
                .map_err(|err| Chain(&err).to_string())
        })
        .await
        .unwrap_or_else(|err| Err(format!("loading panicked: {err}")))
    }

    /// Brings what is served in line with the home: loads new and changed plugins,
    /// drops removed ones; `principal` and `trigger` go into the audit records.
    /// Returns how many plugins changed.
    pub async fn sync(&self, principal: &str, trigger: &str) -> Result<usize, HomeError> {
        let _one = self.changing.lock().await;
        let names = self.home.names()?;
        let current = self.snapshot();
        let mut changed = 0;
        for name in &names {
            let serving = current.get(name);
            let installed = match self.home.read(name) {
                Ok(installed) => installed,
                Err(err) => {
                    let error = Chain(&err).to_string();
                    self.refuse(principal, name, serving, error.clone(), error, trigger)
                        .await;
                    continue;
                }
            };
            let key = key_of(&installed);
            if serving.is_some_and(|s| s.key == key) {
                self.refused.lock().map(|mut r| r.remove(name)).ok();
                continue;
            }
            match self.load(installed).await {
                Ok((plugin, installed)) => {
                    self.serve(principal, plugin, installed.meta, key, trigger)
                        .await;
                    changed += 1;
                }
                Err(error) => {
                    self.refuse(principal, name, serving, key, error, trigger)
                        .await
                }
            }
        }
        for (name, served) in current.iter() {
            if !names.contains(name) {
                self.unserve(principal, name, &served.plugin.digest, trigger)
                    .await;
                changed += 1;
            }
        }
        Ok(changed)
    }

    async fn serve(
        &self,
        principal: &str,
        plugin: Plugin,
        meta: InstalledMeta,
        key: String,
        trigger: &str,
    ) -> Arc<Served> {
        let name = plugin.name.to_string();
        let old = self.get(&name).map(|s| s.plugin.digest.clone());
        let event = changes::plugin_loaded(
            principal,
            &name,
            old.as_deref(),
            &plugin.digest,
            plugin.grant.as_ref(),
            trigger,
        );
        tracing::info!(plugin = %name, digest = %plugin.digest, old = ?old, trigger, tools = plugin.tools.len(), "serving plugin");
        let served = Arc::new(Served {
            plugin: Arc::new(plugin),
            meta,
            key,
        });
        let entry = served.clone();
        self.swap(|map| {
            map.insert(name.clone(), entry);
        });
        self.refused.lock().map(|mut r| r.remove(&name)).ok();
        self.record(event).await;
        served
    }

    async fn refuse(
        &self,
        principal: &str,
        name: &str,
        serving: Option<&Arc<Served>>,
        key: String,
        error: String,
        trigger: &str,
    ) {
        let first = self
            .refused
            .lock()
            .map(|mut r| r.insert(name.to_string(), key.clone()) != Some(key))
            .unwrap_or(true);
        if !first {
            return;
        }
        let serving = serving.map(|s| s.plugin.digest.as_str());
        tracing::warn!(plugin = name, serving = ?serving, trigger, "refusing a new version: {error}");
        self.record(changes::load_refused(
            principal, name, serving, &error, trigger,
        ))
        .await;
    }

    async fn unserve(&self, principal: &str, name: &str, digest: &str, trigger: &str) {
        tracing::info!(plugin = name, digest, trigger, "no longer serving plugin");
        self.swap(|map| {
            map.remove(name);
        });
        self.refused.lock().map(|mut r| r.remove(name)).ok();
        self.record(changes::plugin_unloaded(principal, name, digest, trigger))
            .await;
    }

    /// Installs `wasm` as `meta.name` (with `grant`, else the grant already set) and
    /// serves it, after loading it once: a component that does not load is refused
    /// and the installed one, if any, keeps serving. Returns the served plugin and
    /// whether it replaced one.
    pub async fn install(
        &self,
        principal: &str,
        meta: InstalledMeta,
        wasm: Vec<u8>,
        grant: Option<Grant>,
    ) -> Result<(Arc<Served>, bool), ChangeError> {
        let _one = self.changing.lock().await;
        let name = meta.name.clone();
        warden_runtime::home::check_name(&name).map_err(|e| ChangeError::Invalid(chain(e)))?;
        if let Some(grant) = &grant {
            grant
                .check_paths()
                .map_err(|e| ChangeError::Invalid(chain(e)))?;
        }
        let old_digest = self.home.meta(&name).ok().map(|m| m.digest);
        let installed = Installed {
            grant: match &grant {
                Some(g) => Some(g.clone()),
                None => self
                    .home
                    .grant(&name)
                    .map_err(|e| ChangeError::Invalid(chain(e)))?,
            },
            meta,
            wasm,
        };
        let key = key_of(&installed);
        let digest = warden_runtime::plugin::digest(&installed.wasm);
        let (plugin, installed) = match self.load(installed).await {
            Ok(loaded) => loaded,
            Err(error) => {
                self.record(changes::plugin_refused(
                    principal,
                    &name,
                    old_digest.as_deref(),
                    &digest,
                    &error,
                ))
                .await;
                return Err(ChangeError::Invalid(error));
            }
        };
        // A grant set with the plugin accepts its tools as they are defined now.
        let mut plugin = plugin;
        let grant = grant.map(|mut grant| {
            warden_runtime::pins::record(&mut grant, &plugin);
            plugin.grant = Some(grant.clone());
            grant
        });
        self.home.install(&installed.meta, &installed.wasm)?;
        if let Some(grant) = &grant {
            self.home.set_grant(&name, grant)?;
        }
        let meta = &installed.meta;
        let event = changes::plugin_added(principal, old_digest.as_deref(), meta, grant.as_ref());
        changes::write(self.audit()?, event).await?;
        let served = self
            .serve(principal, plugin, installed.meta, key, "api")
            .await;
        Ok((served, old_digest.is_some()))
    }

    fn audit(&self) -> Result<&warden_audit::Audit, ChangeError> {
        self.runtime.audit().ok_or(ChangeError::NoAudit)
    }

    /// Removes the plugin `name` from the home and stops serving it; calls in flight
    /// finish. Returns the removed component's digest.
    pub async fn remove(&self, principal: &str, name: &str) -> Result<String, ChangeError> {
        let _one = self.changing.lock().await;
        let meta = self
            .home
            .meta(name)
            .map_err(|_| ChangeError::NotFound(name.to_string()))?;
        self.home.remove(name)?;
        changes::write(
            self.audit()?,
            changes::plugin_removed(principal, name, &meta.digest),
        )
        .await?;
        if let Some(served) = self.get(name) {
            self.unserve(principal, name, &served.plugin.digest, "api")
                .await;
        }
        Ok(meta.digest)
    }

    /// Sets the grant of `name`, once the plugin loads with it, and serves it so.
    pub async fn set_grant(
        &self,
        principal: &str,
        name: &str,
        grant: Grant,
    ) -> Result<Arc<Served>, ChangeError> {
        let _one = self.changing.lock().await;
        let installed = self
            .home
            .read(name)
            .map_err(|_| ChangeError::NotFound(name.to_string()))?;
        grant
            .check_paths()
            .map_err(|e| ChangeError::Invalid(chain(e)))?;
        let old = installed.grant.as_ref().map(Grant::to_toml);
        let installed = Installed {
            grant: Some(grant.clone()),
            ..installed
        };
        let key = key_of(&installed);
        let (plugin, installed) = self.load(installed).await.map_err(ChangeError::Invalid)?;
        // Setting a grant accepts the tools as they are defined now.
        let (mut plugin, mut grant) = (plugin, grant);
        warden_runtime::pins::record(&mut grant, &plugin);
        plugin.grant = Some(grant.clone());
        self.home.set_grant(name, &grant)?;
        changes::write(
            self.audit()?,
            changes::grant_set(principal, name, old, &grant),
        )
        .await?;
        Ok(self
            .serve(principal, plugin, installed.meta, key, "api")
            .await)
    }
}
