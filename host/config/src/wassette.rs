//! Importing a Microsoft Wassette policy (`policy.yaml`, the policy-mcp format) as a
//! Warden grant: what maps is converted, what does not is named, nothing is dropped
//! silently.
//!
//! ```yaml
//! version: "1.0"
//! description: "Weather tool"
//! permissions:
//!   storage:
//!     allow:
//!       - uri: "fs:///srv/reports/**"     # -> [[fs]] host = guest = "/srv/reports"
//!         access: ["read", "write"]       #    access = "read-write"
//!   network:
//!     allow:
//!       - host: "api.open-meteo.com"      # -> [net] allow = ["https://api.open-meteo.com"]
//!       - cidr: "10.0.0.0/8"              # not converted: Warden allows hosts, not ranges
//!   environment:
//!     allow:
//!       - key: "API_KEY"                  # -> [env.vars] API_KEY, value given by the operator
//!   resources:
//!     limits:
//!       memory: "512Mi"                   # -> [limits] memory_mb = 512
//!       cpu: "500m"                       # not converted: Warden limits time, not CPU share
//! ```
//!
//! [`convert`] is pure: YAML text in, a [`Conversion`] out. It touches no file, and reads
//! environment values only through the lookup it is given (`--env-from-host`).

use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::grant::{Access, FsGrant, Grant, NetGrant};

mod policy;

use policy::{Keys, NetEntry, Policy, Size};

/// A policy that could not be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// Not YAML, or not the shape of a policy (the message names line and column).
    #[error("{0}")]
    Yaml(String),
    /// A policy-mcp version this importer does not know.
    #[error("version {0:?}: this importer reads Wassette policies of version 1.x (policy-mcp v1)")]
    Version(String),
}

/// Something in the policy that has no place in the grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotConverted {
    /// Where in the policy, e.g. `permissions.network.allow[2]`.
    pub at: String,
    /// What it says, e.g. `cidr 10.0.0.0/8`.
    pub what: String,
    /// Why Warden cannot express it, and what to do instead.
    pub why: String,
}

impl fmt::Display for NotConverted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.what.is_empty() {
            write!(f, "{} — {}", self.at, self.why)
        } else {
            write!(f, "{} {} — {}", self.at, self.what, self.why)
        }
    }
}

/// Something converted, but not exactly as Wassette meant it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Where in the policy.
    pub at: String,
    /// What differs.
    pub text: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.text)
    }
}

/// The result of converting a policy.
#[derive(Clone, Debug, Default)]
pub struct Conversion {
    /// The grant (without `plugin` and `digest`: those come from the installed plugin).
    pub grant: Grant,
    /// Environment variables the policy allowed whose values nobody gave: written
    /// commented out, for a person to fill in.
    pub env_missing: Vec<(String, String)>,
    /// Converted, with a difference worth reading.
    pub notes: Vec<Note>,
    /// Not converted.
    pub not_converted: Vec<NotConverted>,
    /// The policy's `description`.
    pub description: Option<String>,
}

/// Gives the value of an environment variable, or `None` when it is not set.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Converts a Wassette policy. `env` gives the value of an environment variable the
/// policy allows (the importer's own, with `--env-from-host`); `None` reads none.
pub fn convert(text: &str, env: Option<EnvLookup<'_>>) -> Result<Conversion, ImportError> {
    let policy: Policy = serde_saphyr::from_str(text).map_err(|e| {
        let message = e.to_string();
        ImportError::Yaml(
            message
                .strip_prefix("error: ")
                .unwrap_or(&message)
                .to_string(),
        )
    })?;
    if !(policy.version == "1" || policy.version.starts_with("1.")) {
        return Err(ImportError::Version(policy.version));
    }
    let mut out = Conversion {
        description: policy.description,
        ..Conversion::default()
    };
    out.unknown("", &policy.other);
    let Some(p) = policy.permissions else {
        return Ok(out);
    };
    out.unknown("permissions.", &p.other);
    if let Some(storage) = p.storage {
        out.unknown("permissions.storage.", &storage.other);
        for (i, entry) in storage.allow.unwrap_or_default().into_iter().enumerate() {
            let at = format!("permissions.storage.allow[{i}]");
            out.unknown(&format!("{at}."), &entry.other);
            out.storage(&at, &entry.uri, &entry.access);
        }
        for (i, entry) in storage.deny.unwrap_or_default().into_iter().enumerate() {
            out.skip(
                format!("permissions.storage.deny[{i}]"),
                entry.uri,
                "Warden has no deny lists: what is not granted is denied; to keep a part of a granted directory out, grant narrower directories",
            );
        }
    }
    if let Some(network) = p.network {
        out.unknown("permissions.network.", &network.other);
        for (i, entry) in network.allow.unwrap_or_default().into_iter().enumerate() {
            out.network(&format!("permissions.network.allow[{i}]"), entry);
        }
        for (i, entry) in network.deny.unwrap_or_default().into_iter().enumerate() {
            out.skip(
                format!("permissions.network.deny[{i}]"),
                entry.describe(),
                "Warden has no deny lists: hosts not in [net] allow are refused, and so are private, loopback and metadata addresses unless an entry names them",
            );
        }
        if out.grant.net.as_ref().is_some_and(|n| !n.allow.is_empty()) {
            out.note(
                "permissions.network.allow",
                "Wassette hosts have no scheme or port; each is imported as https://HOST (port 443). Add http:// or :PORT entries by hand if the plugin needs them",
            );
        }
    }
    if let Some(environment) = p.environment {
        out.unknown("permissions.environment.", &environment.other);
        for (i, entry) in environment
            .allow
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let at = format!("permissions.environment.allow[{i}]");
            out.unknown(&format!("{at}."), &entry.other);
            out.environment(&at, entry.key, env);
        }
        for (i, entry) in environment.deny.unwrap_or_default().into_iter().enumerate() {
            out.skip(
                format!("permissions.environment.deny[{i}]"),
                entry.key,
                "Warden has no deny lists: the guest sees only the variables in [env] vars",
            );
        }
    }
    if let Some(resources) = p.resources {
        out.resources(resources);
    }
    if let Some(runtime) = p.runtime {
        out.runtime(runtime);
    }
    if let Some(ipc) = p.ipc {
        for key in ipc.keys() {
            out.skip(
                format!("permissions.ipc.{key}"),
                String::new(),
                "Warden has no IPC capability",
            );
        }
    }
    Ok(out)
}

impl Conversion {
    fn skip(&mut self, at: String, what: impl Into<String>, why: impl Into<String>) {
        self.not_converted.push(NotConverted {
            at,
            what: what.into(),
            why: why.into(),
        });
    }

    fn note(&mut self, at: impl Into<String>, text: impl Into<String>) {
        self.notes.push(Note {
            at: at.into(),
            text: text.into(),
        });
    }

    /// Names every key of `keys` (found at `prefix`) that the format does not have.
    fn unknown(&mut self, prefix: &str, keys: &Keys) {
        for key in keys.keys() {
            self.skip(
                format!("{prefix}{key}"),
                String::new(),
                "unknown key: not part of Wassette's policy format (a typo?)",
            );
        }
    }

    fn storage(&mut self, at: &str, uri: &str, access: &[String]) {
        let Some(path) = uri.strip_prefix("fs://") else {
            return self.skip(
                at.into(),
                uri,
                "only fs:// storage can be granted (as a directory)",
            );
        };
        let (path, subtree) = match path.strip_suffix("/**") {
            Some(dir) => (dir, true),
            None => (path.trim_end_matches('/'), false),
        };
        let path = if path.is_empty() { "/" } else { path };
        if path.contains('*') {
            return self.skip(
                at.into(),
                uri,
                "Warden grants whole directories, not patterns; grant the directory you mean in [[fs]] by hand",
            );
        }
        let host = PathBuf::from(path);
        if !host.is_absolute() {
            return self.skip(
                at.into(),
                uri,
                format!(
                    "relative path: Wassette resolved it against the component's directory; write an [[fs]] entry with the absolute path on this machine (host = \"/…/{path}\")"
                ),
            );
        }
        if host.components().any(|c| c == Component::ParentDir) {
            return self.skip(at.into(), uri, "a path with `..` cannot be granted");
        }
        let read = access.iter().any(|a| a == "read");
        let write = access.iter().any(|a| a == "write");
        for other in access.iter().filter(|a| *a != "read" && *a != "write") {
            self.skip(
                format!("{at}.access"),
                other.clone(),
                "unknown access (Wassette knows read and write)",
            );
        }
        let access = match (read, write) {
            (_, true) => Access::ReadWrite,
            (true, false) => Access::Read,
            (false, false) => {
                return self.skip(at.into(), uri, "no access given (read, write)");
            }
        };
        if write && !read {
            self.note(
                at,
                "write without read: Warden has no write-only access, so it is read-write (the guest can also read the files)",
            );
        }
        if subtree {
            self.note(
                at,
                format!("`/**` dropped: [[fs]] grants {path} with everything under it"),
            );
        }
        self.add_fs(host, path.to_string(), access);
    }

    /// Adds a preopen; the same guest path twice is one entry with the wider access.
    fn add_fs(&mut self, host: PathBuf, guest: String, access: Access) {
        if let Some(existing) = self.grant.fs.iter_mut().find(|f| f.guest == guest) {
            if access == Access::ReadWrite {
                existing.access = Access::ReadWrite;
            }
            return;
        }
        self.grant.fs.push(FsGrant {
            host,
            guest,
            access,
        });
    }

    fn network(&mut self, at: &str, entry: NetEntry) {
        self.unknown(&format!("{at}."), &entry.other);
        let host = match (entry.host, entry.cidr, entry.defaults) {
            (Some(host), None, None) => host,
            (None, Some(cidr), None) => {
                return self.skip(
                    at.into(),
                    format!("cidr {cidr}"),
                    "Warden allows hosts, not address ranges; list the hosts (or addresses) the plugin needs",
                );
            }
            (None, None, Some(_)) => {
                return self.skip(
                    at.into(),
                    "defaults",
                    "Warden has no predefined set of hosts; list the hosts the plugin needs",
                );
            }
            _ => {
                return self.skip(
                    at.into(),
                    String::new(),
                    "an entry is one of host, cidr or defaults",
                );
            }
        };
        if host == "*" {
            return self.skip(
                at.into(),
                "host *",
                "Warden has no allow-all; list the hosts the plugin needs",
            );
        }
        let entry = format!("https://{}", host.trim().trim_end_matches('.'));
        if let Err(err) = warden_net::AllowList::parse(std::slice::from_ref(&entry)) {
            return self.skip(at.into(), format!("host {host}"), format!("{err:#}"));
        }
        if let Some(domain) = host.strip_prefix("*.") {
            self.note(
                at,
                format!(
                    "{host}: Warden's wildcard stands for exactly one label (a.{domain}, not a.b.{domain} nor {domain} itself)"
                ),
            );
        }
        let net = self.grant.net.get_or_insert_with(NetGrant::default);
        if !net.allow.contains(&entry) {
            net.allow.push(entry);
        }
    }

    fn environment(&mut self, at: &str, key: String, env: Option<EnvLookup<'_>>) {
        if key.is_empty() || key.contains(['=', '\0', '*']) {
            return self.skip(at.into(), key, "not a variable name Warden can grant");
        }
        if self.grant.env.vars.contains_key(&key) || self.env_missing.iter().any(|(k, _)| *k == key)
        {
            return;
        }
        match env.map(|lookup| lookup(&key)) {
            Some(Some(value)) => {
                self.grant.env.vars.insert(key, value);
            }
            Some(None) => self.env_missing.push((
                key,
                "not set in the importing environment; write its value here".into(),
            )),
            None => self.env_missing.push((
                key,
                "Wassette passed the host's value through; Warden needs the value here (or import with --env-from-host)".into(),
            )),
        }
    }

    fn resources(&mut self, r: policy::Resources) {
        self.unknown("permissions.resources.", &r.other);
        let mut memory = None;
        if let Some(limits) = r.limits {
            self.unknown("permissions.resources.limits.", &limits.other);
            if let Some(size) = limits.memory {
                memory = Some(("permissions.resources.limits.memory", size));
            }
            if let Some(cpu) = limits.cpu {
                self.skip(
                    "permissions.resources.limits.cpu".into(),
                    cpu.to_string(),
                    "Warden limits wall-clock time ([limits] timeout_ms) and instructions ([limits] fuel), not CPU share",
                );
            }
            if let Some(fuel) = limits.fuel {
                self.grant.limits.fuel = fuel;
            }
            if let Some(time) = limits.execution_time {
                match policy::millis(&time) {
                    Some(ms) if (1..=600_000).contains(&ms) => self.grant.limits.timeout_ms = ms,
                    _ => self.skip(
                        "permissions.resources.limits.execution_time".into(),
                        time,
                        "not a duration from 1ms to 10m (e.g. 30s, 5m, 1000ms) for [limits] timeout_ms",
                    ),
                }
            }
        }
        if let Some(mb) = r.memory {
            let size = Size::Number(mb);
            if memory.is_some() {
                self.skip(
                    "permissions.resources.memory".into(),
                    size.to_string(),
                    "resources.limits.memory is given too and wins, as in Wassette",
                );
            } else {
                memory = Some(("permissions.resources.memory", size));
            }
        }
        if let Some((at, size)) = memory {
            match size.mebibytes() {
                Some((mb, exact)) if (1..=1024).contains(&mb) => {
                    self.grant.limits.memory_mb = mb;
                    if !exact {
                        self.note(at, format!("{size} rounded up to {mb} MiB"));
                    }
                }
                Some((mb, _)) => self.skip(
                    at.into(),
                    size.to_string(),
                    format!(
                        "{mb} MiB is outside Warden's [limits] memory_mb range (1 to 1024); the default stays"
                    ),
                ),
                None => self.skip(
                    at.into(),
                    size.to_string(),
                    "not a memory size (e.g. 512Mi, 1Gi, or a number of MB)",
                ),
            }
        }
        if let Some(cpu) = r.cpu {
            self.skip(
                "permissions.resources.cpu".into(),
                cpu.to_string(),
                "Warden limits wall-clock time ([limits] timeout_ms) and instructions ([limits] fuel), not CPU share",
            );
        }
        if let Some(io) = r.io {
            self.skip(
                "permissions.resources.io".into(),
                io.to_string(),
                "Warden has no I/O rate limit",
            );
        }
    }

    fn runtime(&mut self, runtime: policy::Runtime) {
        for key in runtime.other.keys() {
            self.skip(
                format!("permissions.runtime.{key}"),
                String::new(),
                "every Warden plugin runs in its own wasmtime sandbox; runtime settings have no equivalent",
            );
        }
        let Some(wasm) = runtime.wasm else { return };
        for key in wasm.other.keys() {
            self.skip(
                format!("permissions.runtime.wasm.{key}"),
                String::new(),
                "Warden chooses the engine (wasmtime) and loads the installed component",
            );
        }
        let Some(wasi) = wasm.wasi else { return };
        self.unknown("permissions.runtime.wasm.wasi.", &wasi.other);
        if wasi.inherit_env == Some(true) {
            self.skip(
                "permissions.runtime.wasm.wasi.inherit_env".into(),
                "true",
                "Warden never passes the host's environment; list the variables in [env] vars",
            );
        }
        if let Some(args) = wasi.args.filter(|a| !a.is_empty()) {
            self.skip(
                "permissions.runtime.wasm.wasi.args".into(),
                args.join(" "),
                "a Warden plugin's argv is always empty",
            );
        }
        for (i, p) in wasi.preopens.unwrap_or_default().into_iter().enumerate() {
            let at = format!("permissions.runtime.wasm.wasi.preopens[{i}]");
            self.unknown(&format!("{at}."), &p.other);
            let host = p.host_path.strip_prefix("fs://").unwrap_or(&p.host_path);
            let guest_ok =
                p.guest_path.starts_with('/') && !p.guest_path.split('/').any(|c| c == "..");
            let host_ok = Path::new(host).is_absolute()
                && !Path::new(host)
                    .components()
                    .any(|c| c == Component::ParentDir);
            if !host_ok || !guest_ok {
                self.skip(
                    at,
                    format!("{} -> {}", p.host_path, p.guest_path),
                    "host_path and guest_path must be absolute, without `..`; write the [[fs]] entry by hand",
                );
                continue;
            }
            let write = p.access.iter().any(|a| a == "write");
            let access = if write {
                Access::ReadWrite
            } else {
                Access::Read
            };
            self.add_fs(PathBuf::from(host), p.guest_path.clone(), access);
        }
    }

    /// The grant as a commented TOML file for plugin `name`, pinned to `digest`.
    pub fn to_toml(&self, name: &str, digest: Option<&str>, source: &str) -> String {
        render(self, name, digest, source)
    }
}

/// TOML for a string (quoted and escaped).
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn render(c: &Conversion, name: &str, digest: Option<&str>, source: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Grant for plugin {name:?}, converted from the Wassette policy {source}."
    );
    if let Some(desc) = &c.description {
        let _ = writeln!(
            out,
            "# The policy's description: {}",
            desc.replace('\n', " ")
        );
    }
    let _ = writeln!(
        out,
        "# A grant is the operator's decision: review every line, then run"
    );
    let _ = writeln!(out, "#   warden grant set {name} THIS_FILE\n");
    let _ = writeln!(out, "plugin = {}", quote(name));
    if let Some(digest) = digest {
        let _ = writeln!(
            out,
            "# The pin: a changed component gets no capabilities until this is updated."
        );
        let _ = writeln!(out, "digest = {}", quote(digest));
    }
    for fs in &c.grant.fs {
        let access = match fs.access {
            Access::Read => "read",
            Access::ReadWrite => "read-write",
        };
        let _ = writeln!(out, "\n[[fs]]");
        let _ = writeln!(out, "host = {}", quote(&fs.host.to_string_lossy()));
        let _ = writeln!(out, "guest = {}", quote(&fs.guest));
        let _ = writeln!(out, "access = {}", quote(access));
    }
    if let Some(net) = &c.grant.net {
        let _ = writeln!(out, "\n[net]");
        let _ = writeln!(
            out,
            "# Wassette hosts have no scheme or port: each is https, port 443."
        );
        let allow: Vec<String> = net.allow.iter().map(|a| quote(a)).collect();
        let _ = writeln!(out, "allow = [{}]", allow.join(", "));
    }
    if !c.grant.env.vars.is_empty() || !c.env_missing.is_empty() {
        let _ = writeln!(out, "\n[env.vars]");
        if !c.grant.env.vars.is_empty() {
            let _ = writeln!(
                out,
                "# Values read from the importing environment: they are stored in this file."
            );
        }
        for (key, value) in &c.grant.env.vars {
            let _ = writeln!(out, "{} = {}", quote(key), quote(value));
        }
        for (key, why) in &c.env_missing {
            let _ = writeln!(out, "# {} = \"\"    # {why}", quote(key));
        }
    }
    let _ = writeln!(
        out,
        "\n# Per-call limits (the policy's where it gave one, else the defaults)."
    );
    let limits = Grant {
        limits: c.grant.limits.clone(),
        ..Grant::default()
    };
    out.push_str(&limits.to_toml());
    if !c.notes.is_empty() {
        let _ = writeln!(out, "\n# Converted, with a difference:");
        for note in &c.notes {
            let _ = writeln!(out, "#   {note}");
        }
    }
    if !c.not_converted.is_empty() {
        let _ = writeln!(out, "\n# Not converted:");
        for skipped in &c.not_converted {
            let _ = writeln!(out, "#   {skipped}");
        }
    }
    out
}

#[cfg(test)]
mod tests;
