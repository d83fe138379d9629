//! The on-disk cache of compiled components.
//!
//! Entries are keyed by the component's SHA-256 and by the engine's compatibility hash
//! (wasmtime version, target, settings), so a change of either compiles anew. Each
//! entry carries a keyed SHA-256 of its bytes (the key is created on first use and
//! never leaves the cache directory): an entry that was corrupted, truncated, or copied
//! in from elsewhere fails the check and is recompiled, never deserialized.
//! The cache directory must not be writable by anything but this host.

use std::fs;
use std::hash::{Hash as _, Hasher as _};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::compile::CompileLimits;
use crate::error::CacheError;

const KEY_FILE: &str = "cache.key";
const TAG_LEN: usize = 32;

/// Where a component came from when it was loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Deserialized from a valid cache entry.
    Hit,
    /// Compiled now (no entry, or the entry was rejected) and stored.
    Compiled,
    /// Compiled now; the existing entry failed its check and was replaced.
    Replaced,
}

/// What the cache holds for one component.
pub enum Lookup {
    /// A valid entry, deserialized.
    Hit(Component),
    /// No entry.
    Missing,
    /// An entry that failed its integrity check or did not deserialize.
    Rejected,
}

/// A directory of compiled components for one engine configuration.
pub struct CompileCache {
    dir: PathBuf,
    key: [u8; 32],
}

impl CompileCache {
    /// Opens (creating if needed) the cache under `root` for `engine`.
    pub fn open(root: &Path, engine: &Engine) -> Result<Self, CacheError> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let dir = root.join(format!("{:016x}", hasher.finish()));
        if let Err(source) = fs::create_dir_all(&dir) {
            return Err(CacheError::CreateDir { path: dir, source });
        }
        let key = load_or_create_key(&root.join(KEY_FILE))?;
        Ok(Self { dir, key })
    }

    /// The valid entry for the component whose SHA-256 hex digest is `digest`, if any.
    /// An entry that fails its integrity check or does not deserialize is reported
    /// (and logged), for [`CompileCache::compile`] to replace.
    pub fn lookup(&self, engine: &Engine, digest: &str) -> Lookup {
        let path = self.entry(digest);
        let Ok(bytes) = fs::read(&path) else {
            return Lookup::Missing;
        };
        match self.verified(&bytes) {
            Some(payload) => match deserialize(engine, payload) {
                Ok(component) => return Lookup::Hit(component),
                Err(err) => {
                    tracing::warn!(path = %path.display(), %err, "compile cache entry rejected; recompiling");
                }
            },
            None => {
                tracing::warn!(path = %path.display(), "compile cache entry failed its integrity check; recompiling");
            }
        }
        Lookup::Rejected
    }

    /// The compiled form of `wasm` (whose SHA-256 hex digest is `digest`): what `lookup`
    /// found, else compiled within `limits` now and stored. A caller looks up first and
    /// validates `wasm` only on a miss (see `Runtime::load`).
    pub fn compile(
        &self,
        engine: &Engine,
        digest: &str,
        wasm: &[u8],
        limits: &CompileLimits,
        lookup: Lookup,
    ) -> Result<(Component, CacheOutcome), CacheError> {
        let outcome = match lookup {
            Lookup::Hit(component) => return Ok((component, CacheOutcome::Hit)),
            Lookup::Missing => CacheOutcome::Compiled,
            Lookup::Rejected => CacheOutcome::Replaced,
        };
        let component = crate::compile::compile(engine, wasm, limits)
            .map_err(|err| CacheError::Compile(err.into()))?;
        let path = self.entry(digest);
        if let Err(err) = self.store(&path, &component) {
            tracing::warn!(path = %path.display(), %err, "could not write the compile cache");
        }
        Ok((component, outcome))
    }

    fn entry(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}.cwasm"))
    }

    fn tag(&self, payload: &[u8]) -> [u8; TAG_LEN] {
        let mut hasher = Sha256::new();
        hasher.update(self.key);
        hasher.update(payload);
        hasher.finalize().into()
    }

    fn verified<'a>(&self, bytes: &'a [u8]) -> Option<&'a [u8]> {
        if bytes.len() < TAG_LEN {
            return None;
        }
        let (tag, payload) = bytes.split_at(TAG_LEN);
        (tag == self.tag(payload)).then_some(payload)
    }

    fn store(&self, path: &Path, component: &Component) -> Result<(), CacheError> {
        let payload = component
            .serialize()
            .map_err(|err| CacheError::Compile(err.into()))?;
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        file.write_all(&self.tag(&payload))?;
        file.write_all(&payload)?;
        file.persist(path)?;
        Ok(())
    }
}

#[expect(
    unsafe_code,
    reason = "deserializing compiled code this host produced and tagged"
)]
fn deserialize(engine: &Engine, payload: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `payload` passed the keyed integrity check, so it is bytes this host
    // serialized itself with `Component::serialize`; wasmtime checks the engine
    // compatibility header before using them.
    unsafe { Component::deserialize(engine, payload) }
}

fn load_or_create_key(path: &Path) -> Result<[u8; 32], CacheError> {
    if let Ok(bytes) = fs::read(path)
        && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
    {
        return Ok(key);
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(CacheError::Randomness)?;
    let mut file = tempfile::NamedTempFile::new_in(path.parent().unwrap_or(Path::new(".")))?;
    file.write_all(&key)?;
    file.persist(path).map_err(|source| CacheError::WriteKey {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(key)
}
