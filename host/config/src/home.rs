//! The operator's server config, `warden.toml` in the home directory (or `--config`):
//! where to listen, request limits, API tokens (only their SHA-256 is stored) and roles.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:7878"
//! max_body_kb = 1024            # any request body but an upload
//! max_upload_mb = 64            # PUT /v1/plugins/{name}
//! request_timeout_ms = 120000   # a whole request, tool call included
//! max_concurrent_requests = 256 # more wait (within the timeout)
//! idle_poll_us = 0              # poll this long for the next request before sleeping
//!
//! [[tokens]]                    # written by `warden token create NAME --role ROLE`
//! name = "ops"
//! sha256 = "…"                  # of the token; the token itself is never stored
//! roles = ["admin"]
//! principal = "user:ops"        # optional; default "token:<name>"
//!
//! [roles.reader]                # admin, caller and auditor are built in
//! tools = ["text/*", "files/read"]
//! actions = ["call-tool"]
//!
//! [[auth.issuers]]              # OAuth 2.1 access tokens (JWTs) too: see crate::auth
//! issuer = "https://idp.example"
//! audience = "https://warden.example/mcp"
//! jwks_url = "https://idp.example/jwks.json"
//!
//! [trust]                       # who may sign plugins from where: see crate::trust
//! require_signatures = true
//! [trust.keys.acme]
//! public_key = "keys/acme.pub"
//! repositories = ["ghcr.io/acme/*"]
//!
//! [policy]                      # the access policy beyond the roles (Cedar)
//! file = "policy.cedar"         # default: policy.cedar in the home, if it exists
//! [policy.args]                 # arguments policies may read as context.args.NAME
//! amount = "Long"               # Long, String, Bool, Set<Long> or Set<String>
//! ```
//!
//! Strict: an unknown key, an unknown role or action, or a malformed tool pattern is
//! an error that names the file. Roles are Cedar policies too (see
//! [`warden_policy::role_policies`]); the policy file adds permits and forbids.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{ConfigError, PatternError};

pub use warden_policy::{Action, RoleConfig, builtin_roles};
use warden_policy::{ArgType, CedarPolicy, PolicyError, PolicyFile, PolicySource};

/// The config's file name in the home directory.
pub const FILE_NAME: &str = "warden.toml";

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";

/// The whole config file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listening and request limits.
    #[serde(default)]
    pub server: ServerConfig,
    /// API tokens.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Roles beyond (or replacing) the built-in ones.
    #[serde(default)]
    pub roles: BTreeMap<String, RoleConfig>,
    /// The access policy beyond the roles: a Cedar file and the arguments it reads.
    #[serde(default, skip_serializing_if = "PolicyConfig::is_empty")]
    pub policy: PolicyConfig,
    /// Model providers, routes, prices and retries (see [`warden_models`]).
    #[serde(default, skip_serializing_if = "warden_models::ModelsConfig::is_empty")]
    pub models: warden_models::ModelsConfig,
    /// Agent runs: how long ended runs are kept (see [`crate::runs::RunsConfig`]).
    #[serde(default, skip_serializing_if = "crate::runs::RunsConfig::is_default")]
    pub runs: crate::runs::RunsConfig,
    /// Memory: the embedding route of hybrid search (see [`warden_memory::embed`]).
    #[serde(default, skip_serializing_if = "crate::memory::MemoryConfig::is_empty")]
    pub memory: crate::memory::MemoryConfig,
    /// What audit records keep (see [`warden_audit::config`]).
    #[serde(default, skip_serializing_if = "warden_audit::AuditConfig::is_default")]
    pub audit: warden_audit::AuditConfig,
    /// OAuth 2.1 issuers whose access tokens are accepted (see [`crate::auth`]).
    #[serde(default, skip_serializing_if = "crate::auth::AuthConfig::is_empty")]
    pub auth: crate::auth::AuthConfig,
    /// Which keys may sign plugins from where (see [`crate::trust`]).
    #[serde(default, skip_serializing_if = "crate::trust::TrustConfig::is_empty")]
    pub trust: crate::trust::TrustConfig,
    /// The cluster's database, if any (see [`crate::storage`]).
    #[serde(
        default,
        skip_serializing_if = "crate::storage::StorageConfig::is_default"
    )]
    pub storage: crate::storage::StorageConfig,
}

/// `[server]`: where to listen and how much one request may take.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Largest request body but an upload, in KiB.
    pub max_body_kb: u64,
    /// Largest upload (`PUT /v1/plugins/{name}`), in MiB.
    pub max_upload_mb: u64,
    /// Longest a request may take, tool call included, in ms (answered 503 after).
    pub request_timeout_ms: u64,
    /// Requests handled at once; more wait, within their timeout.
    pub max_concurrent_requests: usize,
    /// The URL people and clients reach this server at (`https://warden.example`), for
    /// the links it hands out (where an approver decides a held call). Default:
    /// `http://` and the address it listens on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// How long, in µs, a server thread that runs out of work polls for the next request
    /// before it sleeps (0, the default: it sleeps at once). Read at start. Where a
    /// woken thread is slow to run (a VM whose idle CPUs halt), a window a little longer
    /// than a client takes between an answer and its next request answers that request
    /// sooner, for CPU time spent polling; at most [`MAX_IDLE_POLL_US`].
    #[serde(skip_serializing_if = "is_zero")]
    pub idle_poll_us: u64,
}

/// The longest `[server] idle_poll_us` window: a millisecond.
pub const MAX_IDLE_POLL_US: u64 = 1000;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("a valid default address"),
            max_body_kb: 1024,
            max_upload_mb: 64,
            request_timeout_ms: 120_000,
            max_concurrent_requests: 256,
            public_url: None,
            idle_poll_us: 0,
        }
    }
}

/// `[policy]`: where the Cedar policies beyond the roles are, and which of a call's
/// arguments they may read.
///
/// ```toml
/// [policy]
/// file = "policy.cedar"   # relative to the config file's directory
/// [policy.args]
/// amount = "Long"
/// ```
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// The policy file. Default: `policy.cedar` in the home, when it exists; a file
    /// named here must exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Arguments policies may read (`context.args.NAME`), with their Cedar types; each
    /// is optional (`context.args has NAME`). Others are not given to policies.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, ArgType>,
}

impl PolicyConfig {
    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.file.is_none() && self.args.is_empty()
    }
}

/// The policy file's name in the home directory.
pub const POLICY_FILE: &str = "policy.cedar";

/// One `[[tokens]]` entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// A name for people (`warden token create NAME`).
    pub name: String,
    /// Lowercase hex SHA-256 of the token.
    pub sha256: String,
    /// Its roles.
    pub roles: Vec<String>,
    /// Who acts with it, in audit records; default `token:<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

impl TokenConfig {
    /// The principal the token acts as.
    pub fn principal(&self) -> String {
        self.principal
            .clone()
            .unwrap_or_else(|| format!("token:{}", self.name))
    }
}

/// Checks a tool pattern: `*`, `plugin/*` or `plugin/tool`.
pub fn check_pattern(pattern: &str) -> Result<(), PatternError> {
    if pattern == "*" {
        return Ok(());
    }
    match pattern.split_once('/') {
        Some((plugin, tool))
            if crate::names::check_name(plugin).is_ok()
                && !tool.is_empty()
                && (tool == "*" || !tool.contains('*')) =>
        {
            Ok(())
        }
        _ => Err(PatternError {
            pattern: pattern.to_string(),
        }),
    }
}

/// Lowercase hex SHA-256 of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Config {
    /// The audit log's options: `[audit]`, with [`crate::env::AUDIT_KEEP_PAYLOADS`]
    /// over `keep_content` and [`crate::env::AUDIT_DURABILITY`] over `durability`;
    /// `default` is the command's durability where neither sets one.
    pub fn audit_options(
        &self,
        default: warden_audit::Durability,
    ) -> Result<warden_audit::AuditOptions, ConfigError> {
        Ok(self.audit.options(
            crate::env::keep_payloads()?,
            crate::env::audit_durability()?,
            default,
        ))
    }

    /// Parses and checks config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let invalid = |err: ConfigError| ConfigError::Invalid {
            origin: origin.to_string(),
            source: Box::new(err),
        };
        let config: Config = toml::from_str(text).map_err(|err| invalid(err.into()))?;
        config.check().map_err(invalid)?;
        Ok(config)
    }

    /// Reads the config at `path`; a missing file is the default config (no tokens).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, &path.display().to_string()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// What the access policy is built from: the roles, `[policy.args]`, and the policy
    /// file (`[policy] file`, relative to `config_dir`, else `policy.cedar` in `home`
    /// if it exists).
    pub fn policy_source(
        &self,
        home: &Path,
        config_dir: &Path,
    ) -> Result<PolicySource, PolicyError> {
        let file = match &self.policy.file {
            Some(file) => Some(PolicyFile::read(&config_dir.join(file))?),
            None => {
                let default = home.join(POLICY_FILE);
                if default.exists() {
                    Some(PolicyFile::read(&default)?)
                } else {
                    None
                }
            }
        };
        Ok(PolicySource {
            roles: self.roles(),
            args: self.policy.args.clone(),
            file,
        })
    }

    /// The access policy of this config (see [`Config::policy_source`]).
    pub fn policy(&self, home: &Path, config_dir: &Path) -> Result<CedarPolicy, PolicyError> {
        CedarPolicy::new(&self.policy_source(home, config_dir)?)
    }

    /// The built-in roles with the config's own over them.
    pub fn roles(&self) -> BTreeMap<String, RoleConfig> {
        let mut roles = builtin_roles();
        roles.extend(self.roles.clone());
        roles
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.models
            .check()
            .map_err(|err| ConfigError::Models(err.into()))?;
        let roles = self.roles();
        for (name, role) in &self.roles {
            for pattern in &role.tools {
                check_pattern(pattern).map_err(|source| ConfigError::RoleTools {
                    role: name.clone(),
                    source,
                })?;
            }
        }
        let mut names = BTreeSet::new();
        for token in &self.tokens {
            if !names.insert(&token.name) {
                return Err(ConfigError::DuplicateToken {
                    name: token.name.clone(),
                });
            }
            if token.sha256.len() != 64 || !token.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::TokenHash {
                    name: token.name.clone(),
                });
            }
            for role in &token.roles {
                if !roles.contains_key(role) {
                    return Err(ConfigError::UnknownRole {
                        token: token.name.clone(),
                        role: role.clone(),
                        roles: roles.keys().cloned().collect(),
                    });
                }
            }
        }
        let role_names: BTreeSet<&str> = roles.keys().map(String::as_str).collect();
        self.auth.check(&role_names)?;
        self.trust.check()?;
        // The roles and [policy.args] must make a valid policy (the file is checked
        // where it is read: `warden policy check`, `serve`).
        CedarPolicy::new(&PolicySource {
            roles,
            args: self.policy.args.clone(),
            file: None,
        })
        .map_err(|err| ConfigError::Policy(err.into()))?;
        if self.server.max_body_kb == 0
            || self.server.max_upload_mb == 0
            || self.server.request_timeout_ms == 0
            || self.server.max_concurrent_requests == 0
        {
            return Err(ConfigError::ServerLimits);
        }
        if self.server.idle_poll_us > MAX_IDLE_POLL_US {
            return Err(ConfigError::IdlePoll(self.server.idle_poll_us));
        }
        Ok(())
    }
}

/// Creates a token named `name` with `roles`, appends its hash to the config at `path`
/// (created if missing; the rest of the file is kept as written) and returns the
/// token, which is shown once and never stored.
pub fn create_token(
    path: &Path,
    name: &str,
    roles: &[String],
    principal: Option<&str>,
) -> Result<String, ConfigError> {
    let mut config = Config::load(path)?;
    if config.tokens.iter().any(|t| t.name == name) {
        return Err(ConfigError::TokenExists {
            path: path.to_path_buf(),
            name: name.to_string(),
        });
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| ConfigError::Random { error })?;
    let token = format!("wdn_{}", hex::encode(bytes));
    let entry = TokenConfig {
        name: name.to_string(),
        sha256: hash_token(&token),
        roles: roles.to_vec(),
        principal: principal.map(str::to_string),
    };
    config.tokens.push(entry.clone());
    config.check().map_err(|err| ConfigError::NotAdding {
        path: path.to_path_buf(),
        name: name.to_string(),
        source: Box::new(err),
    })?;
    #[derive(Serialize)]
    struct Tokens<'a> {
        tokens: [&'a TokenConfig; 1],
    }
    let block = toml::to_string(&Tokens { tokens: [&entry] })?;
    let mut text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&block);
    Config::parse(&text, &path.display().to_string())?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    warden_files::create_dir(dir).map_err(|source| ConfigError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    file.persist(path).map_err(|source| ConfigError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_roles_are_errors() {
        let err = Config::parse("[server]\nlisen = \"x\"\n", "w.toml").unwrap_err();
        assert!(format!("{err:#}").contains("lisen"), "{err:#}");
        let text = format!(
            "[[tokens]]\nname = \"a\"\nsha256 = \"{}\"\nroles = [\"boss\"]\n",
            "0".repeat(64)
        );
        let err = Config::parse(&text, "w.toml").unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown role \"boss\""),
            "{err:#}"
        );
        let err = Config::parse("[roles.r]\ntools = [\"a/b*\"]\n", "w.toml").unwrap_err();
        assert!(format!("{err:#}").contains("a/b*"), "{err:#}");
    }

    #[test]
    fn the_policy_section_is_strict() {
        let config = Config::parse(
            "[policy]\nfile = \"p.cedar\"\n[policy.args]\namount = \"Long\"\ntags = \"Set<String>\"\n",
            "w.toml",
        )
        .unwrap();
        assert_eq!(config.policy.args["tags"], ArgType::SetOfString);
        let err = Config::parse("[policy]\nfiles = \"p.cedar\"\n", "w.toml").unwrap_err();
        assert!(format!("{err:#}").contains("files"), "{err:#}");
        let err = Config::parse("[policy.args]\namount = \"Float\"\n", "w.toml").unwrap_err();
        assert!(format!("{err:#}").contains("Float"), "{err:#}");
        let err = Config::parse("[policy.args]\n'a\"b' = \"Long\"\n", "w.toml").unwrap_err();
        assert!(format!("{err:#}").contains("argument name"), "{err:#}");
        // A named file must exist; the default one may not.
        let dir = tempfile::tempdir().unwrap();
        let err = config.policy(dir.path(), dir.path()).unwrap_err();
        assert!(err.to_string().contains("p.cedar"), "{err}");
        let default = Config::default();
        assert!(
            default
                .policy_source(dir.path(), dir.path())
                .unwrap()
                .file
                .is_none()
        );
    }

    #[test]
    fn created_tokens_are_stored_as_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, "# mine\n[server]\nlisten = \"127.0.0.1:9000\"\n").unwrap();
        let token = create_token(&path, "ops", &["admin".into()], None).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# mine\n"), "{text}");
        assert!(!text.contains(&token));
        let config = Config::load(&path).unwrap();
        assert_eq!(config.tokens[0].sha256, hash_token(&token));
        assert_eq!(config.server.listen.port(), 9000);
        assert!(create_token(&path, "ops", &["admin".into()], None).is_err());
    }
}
