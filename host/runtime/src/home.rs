//! The home directory: installed plugins and the compile cache.
//!
//! ```text
//! <home>/plugins/<name>/component.wasm   the installed copy of the component
//! <home>/plugins/<name>/plugin.json      digest, time added, manifest, WIT docs,
//!                                        provenance (registry reference, signer)
//! <home>/grants/<name>.toml              the operator's grant (see warden_config::grant)
//! <home>/cache/                          compiled components (see crate::cache)
//! ```
//!
//! The home is `--home DIR`, else `$WARDEN_HOME`, else `./.warden`.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cache::CompileCache;
use crate::error::{CacheError, HomeError};
use warden_config::grant::Grant;
use warden_config::manifest::Manifest;
use warden_config::trust::Provenance;

pub use warden_config::env::HOME as ENV_HOME;
/// The home used when neither `--home` nor `$WARDEN_HOME` is given.
pub const DEFAULT_HOME: &str = ".warden";

const COMPONENT_FILE: &str = "component.wasm";
const META_FILE: &str = "plugin.json";

/// What Warden records about an installed plugin.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstalledMeta {
    /// The plugin's name.
    pub name: String,
    /// `sha256:<hex>` of the component.
    pub digest: String,
    /// When it was added, seconds since the Unix epoch.
    pub added_at: u64,
    /// Where it was added from.
    pub source: String,
    /// The author's manifest, if one was found.
    #[serde(default)]
    pub manifest: Option<Manifest>,
    /// `package-docs` JSON from WIT source given at add time.
    #[serde(default)]
    pub wit_docs: Option<String>,
    /// Where it came from when it came from a registry, and who signed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

/// An installed plugin: its record, its component's bytes and its grant.
pub struct Installed {
    /// What Warden recorded.
    pub meta: InstalledMeta,
    /// The component.
    pub wasm: Vec<u8>,
    /// The operator's grant, if one is set.
    pub grant: Option<Grant>,
}

/// A Warden home directory.
#[derive(Clone, Debug)]
pub struct Home {
    root: PathBuf,
}

pub use warden_config::names::check_name;

impl Home {
    /// The home named by the flag, else `$WARDEN_HOME`, else `./.warden`.
    pub fn resolve(flag: Option<PathBuf>) -> Self {
        let root = flag
            .or_else(warden_config::env::home)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_HOME));
        Self { root }
    }

    /// A home at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The home's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn plugins_dir(&self) -> PathBuf {
        self.root.join("plugins")
    }

    fn plugin_dir(&self, name: &str) -> PathBuf {
        self.plugins_dir().join(name)
    }

    /// The compile cache of this home for `engine`.
    pub fn cache(&self, engine: &wasmtime::Engine) -> Result<CompileCache, CacheError> {
        CompileCache::open(&self.root.join("cache"), engine)
    }

    /// Installs (or replaces) a plugin. The new copy is written beside the old one and
    /// swapped in by a rename, so a failure leaves the old plugin as it was.
    pub fn install(&self, meta: &InstalledMeta, wasm: &[u8]) -> Result<(), HomeError> {
        valid_name(&meta.name)?;
        let plugins = self.plugins_dir();
        warden_files::create_dir(&plugins).map_err(|e| file("creating", &plugins, e))?;
        let staging = tempfile::Builder::new()
            .prefix(".incoming-")
            .tempdir_in(&plugins)?;
        fs::write(staging.path().join(COMPONENT_FILE), wasm)?;
        fs::write(
            staging.path().join(META_FILE),
            serde_json::to_vec_pretty(meta)?,
        )?;
        let target = self.plugin_dir(&meta.name);
        let old = plugins.join(format!(".old-{}", meta.name));
        let _ = fs::remove_dir_all(&old);
        if target.exists() {
            fs::rename(&target, &old).map_err(|e| file("moving aside", &target, e))?;
        }
        let staged = staging.keep();
        if let Err(err) = fs::rename(&staged, &target) {
            if old.exists() {
                let _ = fs::rename(&old, &target);
            }
            let _ = fs::remove_dir_all(&staged);
            return Err(file("installing into", &target, err));
        }
        let _ = fs::remove_dir_all(&old);
        Ok(())
    }

    /// Reads an installed plugin.
    pub fn read(&self, name: &str) -> Result<Installed, HomeError> {
        let meta = self.meta(name)?;
        let path = self.plugin_dir(name).join(COMPONENT_FILE);
        let wasm = fs::read(&path).map_err(|e| file("reading", &path, e))?;
        let grant = self.grant(name)?;
        Ok(Installed { meta, wasm, grant })
    }

    /// What Warden recorded about an installed plugin, without reading its component.
    pub fn meta(&self, name: &str) -> Result<InstalledMeta, HomeError> {
        valid_name(name)?;
        let dir = self.plugin_dir(name);
        if !dir.is_dir() {
            return Err(self.not_installed(name, true));
        }
        let path = dir.join(META_FILE);
        let bytes = fs::read(&path).map_err(|e| file("reading", &path, e))?;
        serde_json::from_slice(&bytes).map_err(|source| HomeError::Parse { path, source })
    }

    /// Names of the installed plugins, sorted.
    pub fn names(&self) -> Result<Vec<String>, HomeError> {
        let dir = self.plugins_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(file("reading", &dir, err)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if check_name(&name).is_ok() && entry.path().join(META_FILE).is_file() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn grant_path(&self, name: &str) -> PathBuf {
        self.root.join("grants").join(format!("{name}.toml"))
    }

    /// The grant set on plugin `name`, if any.
    pub fn grant(&self, name: &str) -> Result<Option<Grant>, HomeError> {
        valid_name(name)?;
        let path = self.grant_path(name);
        if !path.is_file() {
            return Ok(None);
        }
        Grant::read(&path, name)
            .map(Some)
            .map_err(|e| HomeError::Grant(e.into()))
    }

    /// Sets (or replaces) the grant of plugin `name`; the file is written whole or not
    /// at all.
    pub fn set_grant(&self, name: &str, grant: &Grant) -> Result<(), HomeError> {
        valid_name(name)?;
        grant.check(name).map_err(|e| HomeError::Grant(e.into()))?;
        let path = self.grant_path(name);
        let dir = path.parent().unwrap_or(&self.root);
        warden_files::create_dir(dir).map_err(|e| file("creating", dir, e))?;
        let mut staged = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut staged, grant.to_toml().as_bytes())?;
        staged
            .persist(&path)
            .map_err(|source| HomeError::Persist { path, source })?;
        Ok(())
    }

    /// Removes an installed plugin.
    pub fn remove(&self, name: &str) -> Result<(), HomeError> {
        valid_name(name)?;
        let dir = self.plugin_dir(name);
        if !dir.is_dir() {
            return Err(self.not_installed(name, false));
        }
        fs::remove_dir_all(&dir).map_err(|e| file("removing", &dir, e))?;
        // A grant is the operator's decision about this plugin; a later plugin of the
        // same name must not inherit it.
        match fs::remove_file(self.grant_path(name)) {
            Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
                Err(HomeError::RemoveGrant {
                    name: name.to_string(),
                    source,
                })
            }
            _ => Ok(()),
        }
    }

    fn not_installed(&self, name: &str, hint: bool) -> HomeError {
        HomeError::NotInstalled {
            name: name.to_string(),
            root: self.root.clone(),
            hint,
        }
    }
}

/// `name`, checked as a plugin name.
fn valid_name(name: &str) -> Result<(), HomeError> {
    check_name(name).map_err(|e| HomeError::InvalidName(e.into()))
}

/// The failure of `action` on `path`.
fn file(action: &'static str, path: &Path, source: std::io::Error) -> HomeError {
    HomeError::File {
        action,
        path: path.to_path_buf(),
        source,
    }
}

impl Installed {
    /// Loads this installed plugin into `runtime`, with its WIT docs and manifest.
    pub fn load(
        &self,
        runtime: &crate::Runtime,
        cache: Option<&CompileCache>,
    ) -> Result<crate::Plugin, crate::LoadError> {
        let wit = match self
            .meta
            .wit_docs
            .as_deref()
            .map(crate::docs::PackageDocs::from_json)
        {
            Some(Ok(docs)) => Some(docs),
            Some(Err(err)) => {
                tracing::warn!(plugin = %self.meta.name, %err, "ignoring stored WIT docs");
                None
            }
            None => None,
        };
        let extra = crate::tools::ExtraDocs {
            wit: wit.as_ref(),
            manifest: self.meta.manifest.as_ref(),
        };
        let digest = crate::plugin::digest(&self.wasm);
        runtime.load(
            crate::PluginSource {
                name: &self.meta.name,
                wasm: &self.wasm,
                extra_docs: extra,
                grant: self.grant.clone(),
                signer: self
                    .meta
                    .provenance
                    .as_ref()
                    .and_then(|p| p.signer_of(&digest)),
            },
            cache,
        )
    }
}
