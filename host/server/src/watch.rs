//! Hot reload: watches the home's `plugins/` and `grants/` directories (and the config
//! file and the access policy's file) and, once changes have settled for [`DEBOUNCE`],
//! brings the served set in line ([`Registry::sync`]) or reloads the tokens and policy. The CLI (`warden plugin add`,
//! `warden grant set`) and plain file copies are both seen this way.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecursiveMode, Watcher as _};

use super::error::WatchError;
use super::registry::Registry;
use warden_runtime::error::Chain;

/// Quiet time after the last file event before the home is read again.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// The principal of changes the server makes on its own after a file change.
pub const WATCH_PRINCIPAL: &str = "system:watch";

/// Watching; stops when dropped.
pub struct Watch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum What {
    Plugins,
    Config,
}

fn mutates(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Create(_)
            | EventKind::Modify(_)
            | EventKind::Remove(_)
            | EventKind::Any
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
    )
}

/// Starts watching `registry`'s home, and `config` if given; `on_config` runs after the
/// config file changed.
pub fn start(
    registry: Arc<Registry>,
    config: Option<PathBuf>,
    on_config: impl Fn() + Send + Sync + 'static,
) -> Result<Watch, WatchError> {
    start_with(registry, config.into_iter().collect(), on_config)
}

/// As [`start`], with several config files (the server config, the access policy's
/// file): `on_config` runs after any of them changed.
pub fn start_with(
    registry: Arc<Registry>,
    configs: Vec<PathBuf>,
    on_config: impl Fn() + Send + Sync + 'static,
) -> Result<Watch, WatchError> {
    let root = registry.home().root().to_path_buf();
    let plugins = root.join("plugins");
    let grants = root.join("grants");
    for dir in [&plugins, &grants] {
        std::fs::create_dir_all(dir).map_err(|source| WatchError::CreateDir {
            path: dir.clone(),
            source,
        })?;
    }
    let plugins = plugins.canonicalize()?;
    let grants = grants.canonicalize()?;
    let configs: Vec<(PathBuf, PathBuf)> = configs
        .iter()
        .map(|c| {
            let dir = c
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
            let file = c.file_name().map(|f| dir.join(f)).unwrap_or_default();
            (dir, file)
        })
        .collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let config_files: Vec<PathBuf> = configs.iter().map(|(_, f)| f.clone()).collect();
    let (plugins_in, grants_in) = (plugins.clone(), grants.clone());
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if !mutates(&event.kind) {
            return;
        }
        for path in &event.paths {
            let what = if path.starts_with(&plugins_in) || path.starts_with(&grants_in) {
                What::Plugins
            } else if config_files.contains(path) {
                What::Config
            } else {
                continue;
            };
            let _ = tx.send(what);
        }
    })
    .map_err(WatchError::Start)?;
    watcher.watch(&plugins, RecursiveMode::Recursive)?;
    watcher.watch(&grants, RecursiveMode::NonRecursive)?;
    let mut dirs: Vec<&PathBuf> = configs.iter().map(|(dir, _)| dir).collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|source| WatchError::ConfigDir {
                path: dir.to_path_buf(),
                source,
            })?;
    }
    let task = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let (mut plugins, mut config) = (first == What::Plugins, first == What::Config);
            // Wait until the events stop for a while: a copy or an install is many.
            while let Ok(Some(more)) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                plugins |= more == What::Plugins;
                config |= more == What::Config;
            }
            if config {
                on_config();
            }
            if plugins {
                match registry.sync(WATCH_PRINCIPAL, "watch").await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(changed = n, "plugins reloaded after a file change"),
                    Err(err) => tracing::warn!("reloading plugins: {}", Chain(&err)),
                }
            }
        }
    });
    Ok(Watch {
        _watcher: watcher,
        task,
    })
}
