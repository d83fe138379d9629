//! What no grant may reach, whoever wrote it: Warden's home (the audit log and its
//! signing key, the token hashes in `warden.toml`, the databases of runs, memory and
//! budgets, the installed plugins and their grants) and the server's own secrets (the
//! model providers' API keys, Warden's `WARDEN_*` settings). A role that may set grants
//! (`manage-grants`) could otherwise give a plugin the home as a directory (and write
//! itself an admin token) or send a provider's key to any host as a `[secrets]` header.
//!
//! Nor may a grant reach the kernel's views of the host ([`KERNEL_VIEWS`]): `/proc`
//! holds the server's own environment (those same secrets) and memory
//! (`/proc/self/mem`, which `stat` calls a regular file), `/sys` the kernel's settings.
//!
//! A grant that reaches any of them is refused when the plugin is loaded, with what it
//! reached and what to grant instead.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use warden_config::grant::Grant;

use crate::engine::Runtime;

/// The prefix of Warden's own settings in the environment.
const WARDEN_VARS: &str = "WARDEN_";

/// The home's directories kept for plugins' files (`warden up` grants `files` the
/// first, `warden demo` the second): the only part of the home a grant may reach.
pub const PLUGIN_DIRS: [&str; 2] = ["workspace", "demo-files"];

/// The kernel's views of processes and devices, which no grant may reach (nor a
/// parent of them, `/`), whether or not the runtime has a home.
pub const KERNEL_VIEWS: [&str; 2] = ["/proc", "/sys"];

/// The home and the variables no grant may reach.
#[derive(Debug, Default)]
pub struct Protected {
    /// The home, as the file system resolves it.
    home: Option<PathBuf>,
    /// Environment variables holding the server's secrets.
    vars: BTreeSet<String>,
}

impl Runtime {
    /// What this runtime's grants may not reach: the home of its audit log, and the
    /// variables its model router reads keys from.
    pub fn protected(&self) -> Protected {
        let home = self.audit().map(|audit| resolve(audit.home()));
        let vars = self
            .router()
            .map(|router| {
                router
                    .config()
                    .providers
                    .values()
                    .filter_map(|p| p.api_key_env.clone())
                    .collect()
            })
            .unwrap_or_default();
        Protected { home, vars }
    }
}

impl Protected {
    /// Protects `home` and the variables `vars` (besides every `WARDEN_*` one).
    pub fn new(home: Option<&Path>, vars: impl IntoIterator<Item = String>) -> Self {
        Self {
            home: home.map(resolve),
            vars: vars.into_iter().collect(),
        }
    }

    /// `Err` naming the first part of `grant` that reaches what is protected.
    pub fn check(&self, grant: &Grant) -> Result<(), String> {
        for fs in &grant.fs {
            let host = resolve(&fs.host);
            let view = KERNEL_VIEWS
                .iter()
                .map(Path::new)
                .find(|view| host.starts_with(view) || view.starts_with(&host));
            if let Some(view) = view {
                return Err(format!(
                    "[[fs]] host {} reaches {} (the kernel's view of the host: the server's environment, its memory, the kernel's settings); grant a directory of files instead",
                    fs.host.display(),
                    view.display()
                ));
            }
        }
        if let Some(home) = &self.home {
            for fs in &grant.fs {
                let host = resolve(&fs.host);
                let for_plugins = PLUGIN_DIRS
                    .iter()
                    .any(|dir| host.starts_with(home.join(dir)));
                if home.starts_with(&host) || host.starts_with(home) && !for_plugins {
                    return Err(format!(
                        "[[fs]] host {} reaches Warden's home {} (its audit log and key, tokens, databases and grants); grant a directory outside the home, or inside its {}/ directory",
                        fs.host.display(),
                        home.display(),
                        PLUGIN_DIRS[0]
                    ));
                }
            }
        }
        for (destination, secret) in &grant.secrets {
            if let Some(var) = &secret.from_env
                && (var.starts_with(WARDEN_VARS) || self.vars.contains(var))
            {
                return Err(format!(
                    "[secrets] {destination:?}: from_env = {var:?} is one of Warden's own secrets (a model provider's key or a WARDEN_* setting); give the plugin a variable of its own"
                ));
            }
            if let (Some(home), Some(file)) = (&self.home, &secret.from_file)
                && resolve(file).starts_with(home)
            {
                return Err(format!(
                    "[secrets] {destination:?}: from_file = {} is inside Warden's home {}; keep the plugin's secret in a file of its own outside the home",
                    file.display(),
                    home.display()
                ));
            }
        }
        Ok(())
    }
}

/// `path` as the file system resolves it (symbolic links followed), or, for a path
/// that does not exist yet, with `.` and `..` taken lexically.
fn resolve(path: &Path) -> PathBuf {
    if let Ok(real) = path.canonicalize() {
        return real;
    }
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_config::grant::{Access, FsGrant, SecretGrant};

    fn fs(host: &Path) -> Grant {
        Grant {
            fs: vec![FsGrant {
                host: host.to_path_buf(),
                guest: "/data".into(),
                access: Access::Read,
            }],
            ..Grant::default()
        }
    }

    fn secret(from_env: Option<&str>, from_file: Option<&Path>) -> Grant {
        let mut grant = Grant::default();
        grant.secrets.insert(
            "https://api.example.com".into(),
            SecretGrant {
                header: "Authorization".into(),
                from_env: from_env.map(String::from),
                from_file: from_file.map(Path::to_path_buf),
                prefix: None,
            },
        );
        grant
    }

    #[test]
    fn the_home_its_parents_and_its_insides_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        let data = root.path().join("data");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&data).unwrap();
        let protected = Protected::new(Some(&home), []);
        assert!(protected.check(&fs(&data)).is_ok());
        // The home's directory for plugins' files may be granted.
        assert!(protected.check(&fs(&home.join("workspace"))).is_ok());
        assert!(
            protected
                .check(&fs(&home.join("workspace/reports")))
                .is_ok()
        );
        assert!(
            protected
                .check(&fs(&home.join("workspace/../audit.db")))
                .is_err()
        );
        for reach in [
            home.clone(),
            root.path().to_path_buf(),
            home.join("plugins"),
            data.join("../home"),
        ] {
            let err = protected.check(&fs(&reach)).unwrap_err();
            assert!(err.contains("reaches Warden's home"), "{err}");
        }
        // Through a symbolic link.
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&home, &link).unwrap();
        assert!(protected.check(&fs(&link)).is_err());
    }

    #[test]
    fn the_servers_own_secrets_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let protected = Protected::new(Some(root.path()), ["ANTHROPIC_API_KEY".to_string()]);
        assert!(protected.check(&secret(Some("GITHUB_TOKEN"), None)).is_ok());
        for var in ["ANTHROPIC_API_KEY", "WARDEN_DATABASE_URL"] {
            let err = protected.check(&secret(Some(var), None)).unwrap_err();
            assert!(err.contains("Warden's own secrets"), "{err}");
        }
        let key = root.path().join("audit.key");
        let err = protected.check(&secret(None, Some(&key))).unwrap_err();
        assert!(err.contains("inside Warden's home"), "{err}");
    }
}
