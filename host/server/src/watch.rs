//! Hot reload: watches the home's `plugins/` and `grants/` directories, looks at the
//! config file and the access policy's file every [`CONFIG_POLL`], and, once changes
//! have settled for [`DEBOUNCE`], brings the served set in line ([`Registry::sync`]) or
//! reloads the tokens and policy. The CLI (`warden plugin add`, `warden grant set`) and
//! plain file copies are both seen this way.
//!
//! The config files are looked at rather than watched: they sit in the home's root
//! beside the audit log, the run store and the memory, and a watch on that directory
//! would wake its thread on every write to those (each journaled audit record before a
//! call's answer, a cross-core wake on the call's path). `notify`'s own poller was not
//! used: it compares modification times in whole seconds (an edit in the same second
//! as the last look is missed) and cannot watch a file that does not exist yet.

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

/// How often the config files are looked at.
pub const CONFIG_POLL: Duration = Duration::from_millis(500);

/// The principal of changes the server makes on its own after a file change.
pub const WATCH_PRINCIPAL: &str = "system:watch";

/// Watching; stops when dropped.
pub struct Watch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
    poll: tokio::task::JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
        self.poll.abort();
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
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let to_reload = tx.clone();
    // Only `plugins/` and `grants/` are watched: every change there is the plugins'.
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|event| mutates(&event.kind)) {
            let _ = to_reload.send(What::Plugins);
        }
    })
    .map_err(WatchError::Start)?;
    watcher.watch(&plugins, RecursiveMode::Recursive)?;
    watcher.watch(&grants, RecursiveMode::NonRecursive)?;
    let poll = tokio::spawn(look_at(configs, tx));
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
        poll,
    })
}

/// Looks at `files` every [`CONFIG_POLL`] and sends [`What::Config`] when one of them
/// was created, changed or removed since the last look.
async fn look_at(files: Vec<PathBuf>, changed: tokio::sync::mpsc::UnboundedSender<What>) {
    let files: Arc<[PathBuf]> = files.into();
    // `None` only if the runtime is shutting down.
    let fingerprints = || {
        let files = files.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                files.iter().map(|f| fingerprint(f)).collect::<Vec<_>>()
            })
            .await
            .ok()
        }
    };
    let Some(mut seen) = fingerprints().await else {
        return;
    };
    let mut every = tokio::time::interval(CONFIG_POLL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        let Some(now) = fingerprints().await else {
            return;
        };
        if now != seen {
            seen = now;
            if changed.send(What::Config).is_err() {
                return;
            }
        }
    }
}

/// A hash of `file`'s contents, or `None` if it cannot be read (not there yet, or
/// removed): contents rather than a modification time, which file systems keep only
/// to a clock tick, so two saves within one are still told apart. Config files are
/// small.
fn fingerprint(file: &Path) -> Option<u64> {
    use std::hash::{Hash as _, Hasher as _};
    let bytes = std::fs::read(file).ok()?;
    let mut hasher = std::hash::DefaultHasher::new();
    bytes.hash(&mut hasher);
    Some(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The next report of `look_at`, within a few looks.
    async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<What>) -> Option<What> {
        tokio::time::timeout(CONFIG_POLL * 6, rx.recv())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test]
    async fn a_config_file_created_rewritten_in_place_and_removed_is_seen_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.cedar");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(look_at(vec![file.clone()], tx));
        tokio::time::sleep(CONFIG_POLL / 5).await;
        // Not there at the start, then created.
        std::fs::write(&file, "permit(principal, action, resource);").unwrap();
        assert!(
            next(&mut rx).await == Some(What::Config),
            "creation not seen"
        );
        // The same length, written at once after: a modification time kept to a
        // clock tick could be the same.
        std::fs::write(&file, "forbid(principal, action, resource);").unwrap();
        assert!(
            next(&mut rx).await == Some(What::Config),
            "a rewrite not seen"
        );
        std::fs::remove_file(&file).unwrap();
        assert!(
            next(&mut rx).await == Some(What::Config),
            "removal not seen"
        );
        // Nothing changed since: nothing is reported.
        assert!(
            tokio::time::timeout(CONFIG_POLL * 3, rx.recv())
                .await
                .is_err()
        );
        task.abort();
    }
}
