//! The grant: an operator's decision of what one plugin's sandbox may touch.
//!
//! One TOML file per plugin, strict: an unknown key is an error that names the key,
//! the line and the file. No grant means no capabilities at all. Every field here is
//! enforced at the host boundary ([`warden_runtime::state`], [`warden_runtime::call`], [`warden_net`],
//! [`warden_runs`]); a capability kind that this version does not enforce yet is not
//! accepted.
//!
//! ```toml
//! plugin = "files"
//! digest = "sha256:…"           # optional pin: another binary gets no capabilities
//! signer = "acme"               # optional pin: a component not signed by this trusted
//!                               # signer ([trust.keys.acme]) gets no capabilities
//!
//! [[fs]]                        # preopened directories (cap-std underneath)
//! host = "/srv/reports"
//! guest = "/reports"
//! access = "read"               # read | read-write
//!
//! [net]                         # outbound HTTP (wasi:http), checked per request
//! allow = ["https://api.example.com", "https://*.example.org:8443"]
//! max_response_kb = 10240       # response body cap
//!
//! [env]
//! vars = { LANG = "C.UTF-8" }   # exactly these; the host's environment is never inherited
//!
//! [secrets]                     # injected into matching requests; the guest never sees them
//! "https://api.example.com" = { header = "Authorization", from_env = "EXAMPLE_TOKEN", prefix = "Bearer " }
//!
//! [memory]                      # namespaces of the host's memory service
//! "notes" = "read-write"        # or { access = "read", max_value_kb = 256, max_namespace_mb = 16 }
//!
//! [models]                      # model routes (the operator's router) and a daily budget
//! routes = ["fast"]
//! budget = { tokens_per_day = 200000, cost_per_day = 1.0 }
//!
//! [tools]                       # for agents: the tools their actions may call
//! allow = ["notes/*", "refunds/issue"]   # `*`, `plugin/*` or `plugin/tool`
//!
//! [agent]                       # for agents: limits of each run
//! max_steps = 50
//! max_tokens = 200000           # input + output, over every model call of the run
//! max_cost = 1.0                # US dollars, from the operator's prices
//! max_wall_ms = 600000          # time spent running (not waiting for a person)
//! max_memo_kb = 256             # the memo an agent keeps between steps
//!
//! [tool_definitions]            # written by `warden grant set` / `accept-tools`: the
//! "search" = "sha256:…"         # definitions accepted; a changed or new tool is withheld
//!
//! [limits]
//! memory_mb = 64
//! timeout_ms = 5000
//! fuel = 0                      # 0: off; else instructions per call, deterministic
//! max_output_kb = 1024
//! max_concurrency = 16
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::GrantError;
use crate::limits::Limits;

/// Stops a check with [`GrantError::Invalid`], the message formatted as by `format!`.
macro_rules! invalid {
    ($($message:tt)*) => {
        return Err(GrantError::Invalid(format!($($message)*)))
    };
}

mod template;
pub use template::template;

/// A plugin's grant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The plugin this grant is for; when given it must match the name it is set on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// `sha256:<hex>` pin: a component with another digest runs with no capabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Signer pin (a name in the home config's `[trust.keys]` or `[trust.identities]`): a component without a
    /// verified signature by that signer runs with no capabilities. Beside a digest
    /// pin both must hold; alone, a signed update keeps its capabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// Preopened directories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fs: Vec<FsGrant>,
    /// Outbound HTTP destinations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<NetGrant>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "EnvGrant::is_empty")]
    pub env: EnvGrant,
    /// Headers the host injects into requests to a destination (`scheme://host[:port]`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretGrant>,
    /// Memory namespaces: name → `"read"`, `"read-write"`, or a table with sizes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub memory: BTreeMap<String, MemoryGrant>,
    /// Model routes and the daily budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<ModelsGrant>,
    /// Tools an agent's actions may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<ToolsGrant>,
    /// Limits of each run of an agent; the defaults without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentGrant>,
    /// The operator's word on what a tool does, over the author's manifest: tool name
    /// → the hints to set. Access policies (and MCP clients) rely on them, so the one
    /// who grants has the last say.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, AnnotationsGrant>,
    /// The tool definitions the operator accepted (against "rug pulls"): tool name →
    /// `sha256:<hex>` of its definition (name, description, schemas, annotations) as
    /// clients see it. Recorded when a grant without it is set; with it, a tool whose
    /// definition has another digest, or that it does not name, is withheld (not
    /// listed, a call refused and on record) until an operator accepts it (`warden
    /// grant accept-tools`). `None`: no pinning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_definitions: Option<BTreeMap<String, String>>,
    /// Per-call limits; what is not given keeps its default.
    #[serde(default)]
    pub limits: Limits,
}

/// The hints an operator sets on one tool (`[annotations.TOOL]`); what is not given
/// keeps the manifest's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnotationsGrant {
    /// The tool changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// A change it makes may destroy something.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destructive: Option<bool>,
    /// Calling it twice with the same arguments does no more than once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
    /// It reaches beyond the host (still only where `[net]` allows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_world: Option<bool>,
}

impl AnnotationsGrant {
    /// `declared` with these hints over it.
    pub fn apply(
        &self,
        declared: warden_policy::ToolAnnotations,
    ) -> warden_policy::ToolAnnotations {
        warden_policy::ToolAnnotations {
            read_only: self.read_only.unwrap_or(declared.read_only),
            destructive: self.destructive.unwrap_or(declared.destructive),
            idempotent: self.idempotent.unwrap_or(declared.idempotent),
            open_world: self.open_world.unwrap_or(declared.open_world),
        }
    }
}

/// One preopened directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsGrant {
    /// The directory on the host (absolute).
    pub host: PathBuf,
    /// Where the guest sees it (absolute, e.g. `/data`).
    pub guest: String,
    /// `read` or `read-write`.
    pub access: Access,
}

/// What a guest may do in a preopened directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Read files and list directories; no change of any kind.
    Read,
    /// Everything: create, write, rename, remove inside the directory.
    ReadWrite,
}

/// Outbound HTTP: where a guest's `wasi:http` requests may go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetGrant {
    /// Destinations: `scheme://host[:port]`, the host exact or `*.` + a domain (one
    /// label). The port defaults to the scheme's.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Largest response body a guest may receive, in KiB.
    #[serde(default = "NetGrant::default_max_response_kb")]
    pub max_response_kb: u64,
}

impl NetGrant {
    fn default_max_response_kb() -> u64 {
        10 * 1024
    }

    /// The response body cap in bytes.
    pub fn max_response_bytes(&self) -> u64 {
        self.max_response_kb.saturating_mul(1024)
    }
}

impl Default for NetGrant {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            max_response_kb: Self::default_max_response_kb(),
        }
    }
}

/// A secret header: its value comes from the host (an environment variable or a file
/// of Warden's process) and is added by Warden to every request to the destination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretGrant {
    /// The header to set (e.g. `Authorization`); a value the guest set is replaced.
    pub header: String,
    /// Read the value from this environment variable of Warden's process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_env: Option<String>,
    /// Read the value from this file (absolute path; trailing newline removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_file: Option<PathBuf>,
    /// Put before the value (e.g. `"Bearer "`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// Access to one memory namespace. In TOML either `"read-write"` or
/// `{ access = "read-write", max_value_kb = 256, max_namespace_mb = 16 }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemoryGrant {
    /// `read` or `read-write`.
    pub access: Access,
    /// Largest value or document text, in KiB.
    pub max_value_kb: u64,
    /// Largest total of the namespace's values and documents, in MiB.
    pub max_namespace_mb: u64,
}

impl MemoryGrant {
    const DEFAULT_VALUE_KB: u64 = 1024;
    const DEFAULT_NAMESPACE_MB: u64 = 64;

    /// `access` with the default sizes.
    pub fn new(access: Access) -> Self {
        Self {
            access,
            max_value_kb: Self::DEFAULT_VALUE_KB,
            max_namespace_mb: Self::DEFAULT_NAMESPACE_MB,
        }
    }
}

impl<'de> Deserialize<'de> for MemoryGrant {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            access: Access,
            #[serde(default = "default_value_kb")]
            max_value_kb: u64,
            #[serde(default = "default_namespace_mb")]
            max_namespace_mb: u64,
        }
        fn default_value_kb() -> u64 {
            MemoryGrant::DEFAULT_VALUE_KB
        }
        fn default_namespace_mb() -> u64 {
            MemoryGrant::DEFAULT_NAMESPACE_MB
        }
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = MemoryGrant;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"read\", \"read-write\", or { access = …, max_value_kb = …, max_namespace_mb = … }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MemoryGrant, E> {
                let access = Access::deserialize(serde::de::value::StrDeserializer::new(v))?;
                Ok(MemoryGrant::new(access))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<MemoryGrant, A::Error> {
                let t = Table::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(MemoryGrant {
                    access: t.access,
                    max_value_kb: t.max_value_kb,
                    max_namespace_mb: t.max_namespace_mb,
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Model routes a plugin may use, and its budget per day (UTC).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsGrant {
    /// Route names (from the operator's `[models.routes]`).
    #[serde(default)]
    pub routes: Vec<String>,
    /// Limits per day; none means no limit.
    #[serde(default)]
    pub budget: warden_models::Budget,
}

/// Tools an agent may call (`[tools]`), by pattern: `*`, `plugin/*` or `plugin/tool`.
///
/// ```toml
/// [tools]
/// allow = ["notes/*", "refunds/issue"]
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolsGrant {
    /// The patterns; a tool matching none is refused.
    #[serde(default)]
    pub allow: Vec<String>,
}

impl ToolsGrant {
    /// True when a pattern matches `plugin/tool`.
    pub fn allows(&self, plugin: &str, tool: &str) -> bool {
        self.allow
            .iter()
            .any(|pattern| match pattern.split_once('/') {
                _ if pattern == "*" => true,
                Some((p, "*")) => p == plugin,
                Some((p, t)) => p == plugin && t == tool,
                None => false,
            })
    }

    /// True when a pattern may match some tool of `plugin`.
    pub fn allows_plugin(&self, plugin: &str) -> bool {
        self.allow.iter().any(|pattern| {
            pattern == "*" || pattern.split_once('/').is_some_and(|(p, _)| p == plugin)
        })
    }

    fn check(&self) -> Result<(), GrantError> {
        for pattern in &self.allow {
            let ok = pattern == "*"
                || pattern.split_once('/').is_some_and(|(plugin, tool)| {
                    crate::names::check_name(plugin).is_ok()
                        && !tool.is_empty()
                        && (tool == "*" || !tool.contains('*'))
                });
            if !ok {
                invalid!("[tools] allow: {pattern:?} is not `*`, `PLUGIN/*` or `PLUGIN/TOOL`");
            }
        }
        Ok(())
    }
}

/// Limits of each run of an agent (`[agent]`); a run that reaches one fails, saying
/// which.
///
/// ```toml
/// [agent]
/// max_steps = 50
/// max_tokens = 200000
/// max_cost = 1.0
/// max_wall_ms = 600000
/// max_memo_kb = 256
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentGrant {
    /// Steps (calls of the agent's `step`) per run.
    pub max_steps: u32,
    /// Model tokens (input + output) per run.
    pub max_tokens: u64,
    /// US dollars of model use per run (from the operator's prices).
    pub max_cost: f64,
    /// Time the run spends running, in ms; time parked for a person does not count.
    pub max_wall_ms: u64,
    /// Size of the memo the agent returns with each step, in KiB.
    pub max_memo_kb: u64,
}

impl Default for AgentGrant {
    fn default() -> Self {
        Self {
            max_steps: 50,
            max_tokens: 200_000,
            max_cost: 1.0,
            max_wall_ms: 600_000,
            max_memo_kb: 256,
        }
    }
}

impl AgentGrant {
    fn check(&self) -> Result<(), GrantError> {
        if !(1..=100_000).contains(&self.max_steps) {
            invalid!(
                "[agent] max_steps = {} is out of range (1 to 100000)",
                self.max_steps
            );
        }
        if self.max_tokens == 0 || self.max_wall_ms == 0 {
            invalid!("[agent] max_tokens and max_wall_ms must be greater than 0");
        }
        if !(self.max_cost.is_finite() && self.max_cost >= 0.0) {
            invalid!(
                "[agent] max_cost = {} must be a number of dollars, 0 or more",
                self.max_cost
            );
        }
        if !(1..=16 * 1024).contains(&self.max_memo_kb) {
            invalid!(
                "[agent] max_memo_kb = {} is out of range (1 to 16384)",
                self.max_memo_kb
            );
        }
        Ok(())
    }
}

/// Whether `name` can be a memory namespace: 1 to 64 of `a-z 0-9 . _ -`, starting
/// with a letter or digit.
pub fn valid_namespace(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

/// Environment variables a guest sees.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvGrant {
    /// Exactly these variables, with these values.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

impl EnvGrant {
    /// True when no variable is granted.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }
}

impl Grant {
    /// Reads, parses and checks the grant file at `path` for plugin `name`.
    pub fn read(path: &Path, name: &str) -> Result<Self, GrantError> {
        let text = std::fs::read_to_string(path).map_err(|source| GrantError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, name).map_err(|err| GrantError::File {
            path: path.to_path_buf(),
            source: Box::new(err),
        })
    }

    /// Parses and checks a grant for plugin `name`.
    pub fn parse(text: &str, name: &str) -> Result<Self, GrantError> {
        let grant: Grant = toml::from_str(text)?;
        grant.check(name)?;
        Ok(grant)
    }

    /// Checks what the types cannot: names, paths, ranges.
    pub fn check(&self, name: &str) -> Result<(), GrantError> {
        if let Some(plugin) = &self.plugin
            && plugin != name
        {
            return Err(GrantError::WrongPlugin {
                plugin: plugin.clone(),
                name: name.to_string(),
            });
        }
        if let Some(digest) = &self.digest {
            let hex = digest.strip_prefix("sha256:").unwrap_or("");
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                invalid!(
                    "digest = {digest:?} is not of the form sha256:<64 hex digits> (`warden plugin list` shows each plugin's)"
                );
            }
        }
        for (tool, pin) in self.tool_definitions.iter().flatten() {
            let hex = pin.strip_prefix("sha256:").unwrap_or("");
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                invalid!(
                    "[tool_definitions] {tool:?} = {pin:?} is not of the form sha256:<64 hex digits> (`warden grant accept-tools` writes them)"
                );
            }
        }
        if let Some(signer) = &self.signer
            && let Err(problem) = crate::trust::check_signer(signer)
        {
            invalid!(
                "{problem} (the name of a [trust.keys] or [trust.identities] entry of warden.toml)"
            );
        }
        let mut guests = std::collections::BTreeSet::new();
        for (i, fs) in self.fs.iter().enumerate() {
            let at = format!("[[fs]] #{}", i + 1);
            if !fs.host.is_absolute() {
                invalid!("{at}: host = {:?} must be an absolute path", fs.host);
            }
            if !fs.guest.starts_with('/') || fs.guest.split('/').any(|c| c == "..") {
                invalid!(
                    "{at}: guest = {:?} must be an absolute path without `..` (e.g. \"/data\")",
                    fs.guest
                );
            }
            if !guests.insert(fs.guest.trim_end_matches('/').to_string()) {
                invalid!("{at}: guest path {:?} is granted twice", fs.guest);
            }
        }
        let allow = match &self.net {
            Some(net) => {
                if !(1..=1024 * 1024).contains(&net.max_response_kb) {
                    invalid!(
                        "[net] max_response_kb = {} is out of range (1 to 1048576)",
                        net.max_response_kb
                    );
                }
                warden_net::AllowList::parse(&net.allow)
                    .map_err(|err| GrantError::NetAllow(err.into()))?
            }
            None => warden_net::AllowList::default(),
        };
        for (destination, secret) in &self.secrets {
            let at = format!("[secrets] {destination:?}");
            let target = warden_net::Destination::parse(destination).map_err(|err| {
                GrantError::SecretDestination {
                    destination: destination.clone(),
                    source: err.into(),
                }
            })?;
            if !allow.permits_destination(&target) {
                invalid!(
                    "{at}: the destination is not in [net] allow, so the secret would never be sent; add it there or remove the secret"
                );
            }
            if http::HeaderName::from_bytes(secret.header.as_bytes()).is_err() {
                invalid!(
                    "{at}: header = {:?} is not a valid header name",
                    secret.header
                );
            }
            match (&secret.from_env, &secret.from_file) {
                (Some(_), None) => {}
                (None, Some(path)) if path.is_absolute() => {}
                (None, Some(path)) => {
                    invalid!("{at}: from_file = {path:?} must be an absolute path")
                }
                _ => invalid!("{at}: give exactly one of from_env or from_file"),
            }
        }
        for (namespace, memory) in &self.memory {
            let at = format!("[memory] {namespace:?}");
            if !valid_namespace(namespace) {
                invalid!(
                    "{at}: a namespace is 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
                );
            }
            if !(1..=64 * 1024).contains(&memory.max_value_kb) {
                invalid!(
                    "{at}: max_value_kb = {} is out of range (1 to 65536)",
                    memory.max_value_kb
                );
            }
            if !(1..=64 * 1024).contains(&memory.max_namespace_mb) {
                invalid!(
                    "{at}: max_namespace_mb = {} is out of range (1 to 65536)",
                    memory.max_namespace_mb
                );
            }
        }
        for key in self.env.vars.keys() {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                invalid!("[env].vars: {key:?} is not a valid variable name");
            }
        }
        if let Some(tools) = &self.tools {
            tools.check()?;
        }
        if let Some(agent) = &self.agent {
            agent.check()?;
        }
        Ok(self.limits.check()?)
    }

    /// Checks that every granted directory exists now (when the grant is set).
    pub fn check_paths(&self) -> Result<(), GrantError> {
        for fs in &self.fs {
            if !fs.host.is_dir() {
                return Err(GrantError::NotADirectory {
                    path: fs.host.clone(),
                });
            }
        }
        Ok(())
    }

    /// The grant as TOML, with every limit written out.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}
