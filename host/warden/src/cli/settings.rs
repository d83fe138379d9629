//! The home's configuration, read from one file by every command: `--config FILE` (a
//! global flag, given before or after the command name), else `<home>/warden.toml`.
//! `serve`, `up`, `token create`, `policy`, `call`, `run`, `runs`, `approvals`, `mcp`,
//! `audit` and `memory` all read the same file, so what a server enforces is what the
//! operator's own commands enforce.

use std::path::PathBuf;
use std::sync::OnceLock;

use warden::config::home::{Config, FILE_NAME};
use warden::home::Home;

use super::{CliResult, Failure};

static FLAG: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Remembers `--config` for the rest of the process (set once, by `main`).
pub(crate) fn set_flag(flag: Option<PathBuf>) {
    let _ = FLAG.set(flag);
}

/// The config file: `--config`, else `warden.toml` in `home`.
pub(crate) fn path(home: &Home) -> PathBuf {
    FLAG.get()
        .cloned()
        .flatten()
        .unwrap_or_else(|| home.root().join(FILE_NAME))
}

/// The config, parsed and checked; a missing file is the default config.
pub(crate) fn load(home: &Home) -> CliResult<Config> {
    Config::load(&path(home)).map_err(Failure::usage)
}

/// The directory relative paths in the config (`[policy] file`) are read from.
pub(crate) fn dir(home: &Home) -> PathBuf {
    path(home)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
}

static STORAGE: OnceLock<warden_server::storage::Storage> = OnceLock::new();

/// The stores of the config's `[storage]` (the cluster's database, connected and
/// migrated, or the home's files), opened once per process.
pub(crate) fn storage(home: &Home) -> CliResult<warden_server::storage::Storage> {
    if let Some(storage) = STORAGE.get() {
        return Ok(storage.clone());
    }
    let config = load(home)?;
    let storage = warden_server::storage::Storage::open(&config.storage).map_err(Failure::usage)?;
    Ok(STORAGE.get_or_init(|| storage).clone())
}
