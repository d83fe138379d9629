//! The cluster's plugins, grants and access policy, kept in its database
//! (`cluster_home`) and copied into each node's home, where the node's watcher serves
//! them as it serves a local change ([`super::watch`]): a plugin added, replaced or
//! removed, or a grant or policy changed, through one node is served by every node,
//! and calls in flight finish on the version they started on. The compile cache stays
//! each node's own.
//!
//! A thread per node: it `LISTEN`s for the others' changes (and looks every
//! [`TICK`] in any case), copies newer rows into the home, and writes to the table what
//! changed in the home since it last looked (an API upload, `warden plugin add` on the
//! node's home, a grant edit). The cluster's copy wins over a node's stale one: a node
//! that starts copies the cluster's plugins first, then adds what only it has.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use warden_postgres::{Client, DatabaseUrl, FallibleIterator as _, PgError, SqlError};
use warden_runtime::home::{Home, InstalledMeta};

/// How often the home is compared with the table when nothing was notified.
pub const TICK: Duration = Duration::from_millis(500);

/// The channel changes are notified on.
const CHANNEL: &str = "cluster_home";

const COMPONENT_FILE: &str = "component.wasm";
const META_FILE: &str = "plugin.json";

/// One thing a home holds that the cluster shares.
type Key = (&'static str, String);

/// Copying the cluster's plugins, grants and policy; stops when dropped.
pub struct HomeSync {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for HomeSync {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl HomeSync {
    /// Brings `home` in line with the cluster (then the cluster with what only this
    /// home has) before returning, then keeps both in line on a thread.
    pub fn start(url: &DatabaseUrl, home: Home, policy_file: &str) -> Result<Self, PgError> {
        let node = node_name();
        let mut sync = Sync {
            url: url.clone(),
            home,
            policy_file: policy_file.to_string(),
            node,
            seen: BTreeMap::new(),
            last_version: 0,
        };
        let url = url.clone();
        let (mut client, sync) = warden_postgres::off_runtime(move || {
            let mut client = url.connect()?;
            client
                .batch_execute(&format!("LISTEN {CHANNEL}"))
                .map_err(|e| sql(&url, "listening for the cluster's changes", e))?;
            sync.tick(&mut client)?;
            Ok::<_, PgError>((client, sync))
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("warden-cluster-home".into())
            .spawn(move || {
                let mut sync = sync;
                while !stopping.load(Ordering::Relaxed) {
                    if client.is_closed() {
                        match sync.url.connect().and_then(|mut c| {
                            c.batch_execute(&format!("LISTEN {CHANNEL}"))
                                .map_err(|e| sql(&sync.url, "listening", e))?;
                            Ok(c)
                        }) {
                            Ok(c) => client = c,
                            Err(err) => {
                                tracing::warn!("cluster home sync: {err}");
                                std::thread::sleep(TICK * 2);
                                continue;
                            }
                        }
                    }
                    // Wake on a notification or after a tick, whichever comes first.
                    let notified = client.notifications().timeout_iter(TICK).next();
                    if let Err(err) = notified {
                        tracing::warn!("cluster home sync: {err}");
                        continue;
                    }
                    let _ = client.notifications().iter().count();
                    if let Err(err) = sync.tick(&mut client) {
                        tracing::warn!("cluster home sync: {err}");
                    }
                }
            })
            .map_err(PgError::Thread)?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

/// This node, in the table's `node` column: host name and process id.
fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}:{}", host.trim(), std::process::id())
}

fn sql(url: &DatabaseUrl, action: &str, error: SqlError) -> PgError {
    PgError::Sql {
        url: url.redacted().to_string(),
        action: action.to_string(),
        error,
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

struct Sync {
    url: DatabaseUrl,
    home: Home,
    policy_file: String,
    node: String,
    /// What the home and the cluster agree on: a digest per item.
    seen: BTreeMap<Key, String>,
    /// The newest row copied.
    last_version: i64,
}

/// A row of `cluster_home` without its content.
struct Row {
    kind: String,
    name: String,
    digest: String,
    removed: bool,
    version: i64,
}

impl Sync {
    fn root(&self) -> &Path {
        self.home.root()
    }

    fn grant_path(&self, name: &str) -> PathBuf {
        self.root().join("grants").join(format!("{name}.toml"))
    }

    /// The home's shared items and their digests now.
    fn local(&self) -> BTreeMap<Key, String> {
        let mut items = BTreeMap::new();
        for name in self.home.names().unwrap_or_default() {
            let meta = self.root().join("plugins").join(&name).join(META_FILE);
            if let Ok(bytes) = std::fs::read(&meta) {
                items.insert(("plugin", name), sha256(&bytes));
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.root().join("grants")) {
            for entry in entries.flatten() {
                let file = entry.file_name().to_string_lossy().into_owned();
                if let Some(name) = file.strip_suffix(".toml")
                    && !name.starts_with('.')
                    && let Ok(bytes) = std::fs::read(entry.path())
                {
                    items.insert(("grant", name.to_string()), sha256(&bytes));
                }
            }
        }
        if let Ok(bytes) = std::fs::read(self.root().join(&self.policy_file)) {
            items.insert(("policy", self.policy_file.clone()), sha256(&bytes));
        }
        items
    }

    /// Copies the cluster's newer rows into the home, then writes the home's changes.
    fn tick(&mut self, client: &mut Client) -> Result<(), PgError> {
        self.pull(client)?;
        self.push(client)
    }

    fn pull(&mut self, client: &mut Client) -> Result<(), PgError> {
        let rows = client
            .query(
                "SELECT kind, name, digest, removed, version FROM cluster_home
                 WHERE version > $1 ORDER BY version",
                &[&self.last_version],
            )
            .map_err(|e| sql(&self.url, "reading the cluster's changes", e))?;
        let rows: Vec<Row> = rows
            .iter()
            .map(|r| {
                Ok(Row {
                    kind: r.try_get(0)?,
                    name: r.try_get(1)?,
                    digest: r.try_get(2)?,
                    removed: r.try_get(3)?,
                    version: r.try_get(4)?,
                })
            })
            .collect::<Result<_, SqlError>>()
            .map_err(|e| sql(&self.url, "reading the cluster's changes", e))?;
        if rows.is_empty() {
            return Ok(());
        }
        let local = self.local();
        for row in rows {
            self.last_version = self.last_version.max(row.version);
            let kind = match row.kind.as_str() {
                "plugin" => "plugin",
                "grant" => "grant",
                "policy" => "policy",
                _ => continue,
            };
            let key = (kind, row.name.clone());
            let here = local.get(&key);
            if row.removed {
                if here.is_some() {
                    self.remove(kind, &row.name);
                }
                self.seen.remove(&key);
                continue;
            }
            if here == Some(&row.digest) {
                self.seen.insert(key, row.digest);
                continue;
            }
            if let Err(err) = self.apply(client, kind, &row.name) {
                tracing::warn!(kind, name = %row.name, "cluster home sync: copying: {err}");
                continue;
            }
            // What the home holds now (as written here) is what the cluster has.
            if let Some(digest) = self.local().get(&key) {
                self.seen.insert(key, digest.clone());
            }
            tracing::info!(kind, name = %row.name, "copied from the cluster");
        }
        Ok(())
    }

    /// Writes the cluster's copy of an item into the home.
    fn apply(&self, client: &mut Client, kind: &str, name: &str) -> Result<(), String> {
        let row = client
            .query_one(
                "SELECT meta, content FROM cluster_home WHERE kind = $1 AND name = $2",
                &[&kind, &name],
            )
            .map_err(|e| e.to_string())?;
        let meta: Option<String> = row.try_get(0).map_err(|e| e.to_string())?;
        let content: Option<Vec<u8>> = row.try_get(1).map_err(|e| e.to_string())?;
        let content = content.unwrap_or_default();
        match kind {
            "plugin" => {
                let meta: InstalledMeta = serde_json::from_str(meta.as_deref().unwrap_or(""))
                    .map_err(|e| e.to_string())?;
                if meta.name != name {
                    return Err(format!("a plugin row named {name:?} holds {:?}", meta.name));
                }
                self.home
                    .install(&meta, &content)
                    .map_err(|e| e.to_string())
            }
            "grant" => write_atomic(&self.grant_path(name), &content),
            _ => write_atomic(&self.root().join(&self.policy_file), &content),
        }
    }

    fn remove(&self, kind: &str, name: &str) {
        let result = match kind {
            "plugin" => self.home.remove(name).map_err(|e| e.to_string()),
            "grant" => std::fs::remove_file(self.grant_path(name)).map_err(|e| e.to_string()),
            _ => {
                std::fs::remove_file(self.root().join(&self.policy_file)).map_err(|e| e.to_string())
            }
        };
        match result {
            Ok(()) => tracing::info!(kind, name, "removed, as in the cluster"),
            Err(err) => tracing::warn!(kind, name, "cluster home sync: removing: {err}"),
        }
    }

    /// Writes to the table what changed in the home since it was last seen.
    fn push(&mut self, client: &mut Client) -> Result<(), PgError> {
        let local = self.local();
        let mut changed = false;
        for (key, digest) in &local {
            if self.seen.get(key) == Some(digest) {
                continue;
            }
            let Some((meta, content)) = self.read(key) else {
                continue;
            };
            self.write_row(client, key, Some(&meta), Some(&content), digest, false)?;
            self.seen.insert(key.clone(), digest.clone());
            changed = true;
        }
        let gone: Vec<Key> = self
            .seen
            .keys()
            .filter(|key| !local.contains_key(*key))
            .cloned()
            .collect();
        for key in gone {
            self.write_row(client, &key, None, None, "", true)?;
            self.seen.remove(&key);
            changed = true;
        }
        if changed {
            client
                .batch_execute(&format!("NOTIFY {CHANNEL}"))
                .map_err(|e| sql(&self.url, "notifying the cluster", e))?;
        }
        Ok(())
    }

    /// An item's meta text and content, `None` if it is changing under us (read again
    /// on the next tick).
    fn read(&self, (kind, name): &Key) -> Option<(String, Vec<u8>)> {
        match *kind {
            "plugin" => {
                let dir = self.root().join("plugins").join(name);
                let meta = std::fs::read_to_string(dir.join(META_FILE)).ok()?;
                let wasm = std::fs::read(dir.join(COMPONENT_FILE)).ok()?;
                let parsed: InstalledMeta = serde_json::from_str(&meta).ok()?;
                (parsed.digest == format!("sha256:{}", sha256(&wasm))).then_some((meta, wasm))
            }
            "grant" => Some((String::new(), std::fs::read(self.grant_path(name)).ok()?)),
            _ => Some((
                String::new(),
                std::fs::read(self.root().join(&self.policy_file)).ok()?,
            )),
        }
    }

    fn write_row(
        &self,
        client: &mut Client,
        (kind, name): &Key,
        meta: Option<&str>,
        content: Option<&[u8]>,
        digest: &str,
        removed: bool,
    ) -> Result<(), PgError> {
        let meta = meta.filter(|m| !m.is_empty());
        client
            .execute(
                "INSERT INTO cluster_home (kind, name, meta, content, digest, removed, version, node)
                 VALUES ($1, $2, $3, $4, $5, $6, nextval('cluster_home_version'), $7)
                 ON CONFLICT (kind, name) DO UPDATE SET
                    meta = excluded.meta, content = excluded.content, digest = excluded.digest,
                    removed = excluded.removed, version = excluded.version, node = excluded.node",
                &[kind, name, &meta, &content, &digest, &removed, &self.node],
            )
            .map_err(|e| sql(&self.url, "writing a change for the cluster", e))?;
        tracing::info!(kind, name, removed, "written for the cluster");
        Ok(())
    }
}

/// Writes `bytes` to `path` whole or not at all (owner-only, as the home's files are).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path.parent().ok_or("no directory")?;
    warden_files::create_dir(dir).map_err(|e| e.to_string())?;
    let mut staged = tempfile::NamedTempFile::new_in(dir).map_err(|e| e.to_string())?;
    std::io::Write::write_all(&mut staged, bytes).map_err(|e| e.to_string())?;
    staged.persist(path).map_err(|e| e.to_string())?;
    Ok(())
}
