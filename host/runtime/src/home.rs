//! The home directory: installed plugins and the compile cache.
//!
//! ```text
//! <home>/plugins/<name>/component.wasm   the installed copy of the component
//! <home>/plugins/<name>/plugin.json      digest, time added, manifest, WIT docs
//! <home>/grants/<name>.toml              the operator's grant (see warden_config::grant)
//! <home>/cache/                          compiled components (see crate::cache)
//! ```
//!
//! The home is `--home DIR`, else `$WARDEN_HOME`, else `./.warden`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::cache::CompileCache;
use warden_config::grant::Grant;
use warden_config::manifest::Manifest;

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
    pub fn cache(&self, engine: &wasmtime::Engine) -> anyhow::Result<CompileCache> {
        CompileCache::open(&self.root.join("cache"), engine)
    }

    /// Installs (or replaces) a plugin. The new copy is written beside the old one and
    /// swapped in by a rename, so a failure leaves the old plugin as it was.
    pub fn install(&self, meta: &InstalledMeta, wasm: &[u8]) -> anyhow::Result<()> {
        check_name(&meta.name)?;
        let plugins = self.plugins_dir();
        warden_files::create_dir(&plugins)
            .with_context(|| format!("creating {}", plugins.display()))?;
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
            fs::rename(&target, &old)
                .with_context(|| format!("moving aside {}", target.display()))?;
        }
        let staged = staging.keep();
        if let Err(err) = fs::rename(&staged, &target) {
            if old.exists() {
                let _ = fs::rename(&old, &target);
            }
            let _ = fs::remove_dir_all(&staged);
            return Err(err).with_context(|| format!("installing into {}", target.display()));
        }
        let _ = fs::remove_dir_all(&old);
        Ok(())
    }

    /// Reads an installed plugin.
    pub fn read(&self, name: &str) -> anyhow::Result<Installed> {
        let meta = self.meta(name)?;
        let path = self.plugin_dir(name).join(COMPONENT_FILE);
        let wasm = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let grant = self.grant(name)?;
        Ok(Installed { meta, wasm, grant })
    }

    /// What Warden recorded about an installed plugin, without reading its component.
    pub fn meta(&self, name: &str) -> anyhow::Result<InstalledMeta> {
        check_name(name)?;
        let dir = self.plugin_dir(name);
        if !dir.is_dir() {
            bail!(
                "no plugin named \"{name}\" in {} (see `warden plugin list`; add one with `warden plugin add PATH.wasm`)",
                self.root.display()
            );
        }
        let path = dir.join(META_FILE);
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    /// Names of the installed plugins, sorted.
    pub fn names(&self) -> anyhow::Result<Vec<String>> {
        let dir = self.plugins_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err).with_context(|| format!("reading {}", dir.display())),
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
    pub fn grant(&self, name: &str) -> anyhow::Result<Option<Grant>> {
        check_name(name)?;
        let path = self.grant_path(name);
        if !path.is_file() {
            return Ok(None);
        }
        Ok(Some(Grant::read(&path, name)?))
    }

    /// Sets (or replaces) the grant of plugin `name`; the file is written whole or not
    /// at all.
    pub fn set_grant(&self, name: &str, grant: &Grant) -> anyhow::Result<()> {
        check_name(name)?;
        grant.check(name)?;
        let path = self.grant_path(name);
        let dir = path.parent().unwrap_or(&self.root);
        warden_files::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut file, grant.to_toml().as_bytes())?;
        file.persist(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// Removes an installed plugin.
    pub fn remove(&self, name: &str) -> anyhow::Result<()> {
        check_name(name)?;
        let dir = self.plugin_dir(name);
        if !dir.is_dir() {
            bail!("no plugin named \"{name}\" in {}", self.root.display());
        }
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        // A grant is the operator's decision about this plugin; a later plugin of the
        // same name must not inherit it.
        match fs::remove_file(self.grant_path(name)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(err).with_context(|| format!("removing the grant of {name}"))
            }
            _ => Ok(()),
        }
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
        runtime.load(
            crate::PluginSource {
                name: &self.meta.name,
                wasm: &self.wasm,
                extra_docs: extra,
                grant: self.grant.clone(),
            },
            cache,
        )
    }
}
