//! What can go wrong when a grant, a manifest, the home's `warden.toml`, a plugin name
//! or an environment variable is read and checked.
//!
//! Every error here prints its message with `{}`; `{:#}` adds each cause after
//! `": "`, as `anyhow` prints a chain, so a caller that formats one directly prints
//! what it printed when these returned `anyhow` errors.

use std::error::Error;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Another crate's error, held as it is.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// A grant that cannot be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// The grant file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The grant in this file is not valid.
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: Box<GrantError>,
    },
    /// Not TOML, or keys or values a grant does not have (as the TOML parser says it).
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    /// The grant names another plugin than the one it is being set on.
    WrongPlugin {
        /// The plugin the grant names.
        plugin: String,
        /// The plugin it is being set on.
        name: String,
    },
    /// `[net] allow` is not a valid allow list.
    NetAllow(#[source] BoxError),
    /// A `[secrets]` key that is not a destination.
    SecretDestination {
        /// The key as written.
        destination: String,
        /// What is wrong with it.
        #[source]
        source: BoxError,
    },
    /// A granted directory that does not exist (when the grant is set).
    NotADirectory {
        /// The `[[fs]] host` path.
        path: PathBuf,
    },
    /// A `[limits]` value out of its range.
    #[error(transparent)]
    Limits(#[from] LimitsError),
    /// Anything else the types allow but a grant does not (a path, a range, a name);
    /// the message names the key and what to write.
    Invalid(String),
}

impl fmt::Display for GrantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, .. } => write!(f, "reading grant {}", path.display()),
            Self::File { path, .. } => write!(f, "grant {}", path.display()),
            Self::Toml(err) => write!(f, "{err}"),
            Self::WrongPlugin { plugin, name } => write!(
                f,
                "plugin = {plugin:?}, but the grant is being set on plugin {name:?}"
            ),
            Self::NetAllow(_) => f.write_str("[net] allow"),
            Self::SecretDestination { destination, .. } => {
                write!(f, "[secrets] {destination:?}")
            }
            Self::NotADirectory { path } => write!(
                f,
                "[[fs]] host = {path:?} is not a directory on this machine"
            ),
            Self::Limits(err) => write!(f, "{err}"),
            Self::Invalid(message) => f.write_str(message),
        }?;
        causes(self, f)
    }
}

/// A `[limits]` value out of its range.
#[derive(Debug, thiserror::Error)]
#[error("[limits] {name} = {value} is out of range ({min} to {max})")]
pub struct LimitsError {
    /// The limit.
    pub name: &'static str,
    /// Its value.
    pub value: u64,
    /// The smallest it may be.
    pub min: u64,
    /// The largest it may be.
    pub max: u64,
}

/// A manifest that cannot be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifest file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The manifest in this file is not valid.
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: Box<ManifestError>,
    },
    /// Not TOML, or keys or values a manifest does not have (as the TOML parser says
    /// it).
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    /// A tool said to be both read-only and destructive.
    Contradiction {
        /// The tool.
        tool: String,
    },
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, .. } => write!(f, "reading manifest {}", path.display()),
            Self::File { path, .. } => write!(f, "manifest {}", path.display()),
            Self::Toml(err) => write!(f, "{err}"),
            Self::Contradiction { tool } => write!(
                f,
                "[tools.{tool:?}]: read_only = true and destructive = true contradict each other (a read-only tool changes nothing); drop one"
            ),
        }?;
        causes(self, f)
    }
}

/// The home's `warden.toml` that cannot be read, written or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config named `origin` is not valid.
    Invalid {
        /// The file (or what the text came from).
        origin: String,
        /// What is wrong with it.
        #[source]
        source: Box<ConfigError>,
    },
    /// Not TOML, or keys or values the config does not have (as the TOML parser says
    /// it).
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    /// `[models]` is not valid (as `warden-models` says it).
    #[error(transparent)]
    Models(BoxError),
    /// A role's tool pattern is not valid.
    RoleTools {
        /// The role.
        role: String,
        /// The pattern's problem.
        #[source]
        source: PatternError,
    },
    /// Two tokens with one name.
    DuplicateToken {
        /// The name.
        name: String,
    },
    /// A token whose `sha256` is not 64 hex digits.
    TokenHash {
        /// The token's name.
        name: String,
    },
    /// A token with a role that is not defined.
    UnknownRole {
        /// The token's name.
        token: String,
        /// The role.
        role: String,
        /// The roles there are.
        roles: Vec<String>,
    },
    /// The roles and `[policy.args]` do not make a valid policy (as `warden-policy`
    /// says it).
    #[error(transparent)]
    Policy(BoxError),
    /// A `[[auth.issuers]]` entry that is not valid.
    Issuer {
        /// Its `issuer`.
        issuer: String,
        /// What is wrong, and what to do.
        problem: String,
    },
    /// A `[trust.keys.NAME]` entry that is not valid.
    TrustKey {
        /// The signer's name.
        name: String,
        /// What is wrong, and what to do.
        problem: String,
    },
    /// A `[trust.identities.NAME]` entry that is not valid.
    TrustIdentity {
        /// The signer's name.
        name: String,
        /// What is wrong, and what to do.
        problem: String,
    },
    /// A `[server]` limit of 0.
    ServerLimits,
    /// `[server] idle_poll_us` past [`crate::home::MAX_IDLE_POLL_US`].
    IdlePoll(u64),
    /// An environment variable that overrides the config is not valid.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A token of that name exists already.
    TokenExists {
        /// The config file.
        path: PathBuf,
        /// The name.
        name: String,
    },
    /// The config with the new token would not be valid.
    NotAdding {
        /// The config file.
        path: PathBuf,
        /// The token's name.
        name: String,
        /// Why.
        #[source]
        source: Box<ConfigError>,
    },
    /// No random bytes for a new token.
    Random {
        /// What the system said (part of the message).
        error: getrandom::Error,
    },
    /// The new token could not be written as TOML (as the TOML writer says it).
    #[error(transparent)]
    TomlWrite(#[from] toml::ser::Error),
    /// The config's directory could not be created.
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A write without more to say (as the system says it).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The new config could not be put in place of the old.
    Write {
        /// The config file.
        path: PathBuf,
        /// Why.
        #[source]
        source: tempfile::PersistError,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { origin, .. } => write!(f, "{origin}: invalid"),
            Self::Toml(err) => write!(f, "{err}"),
            Self::Models(err) | Self::Policy(err) => write!(f, "{err}"),
            Self::RoleTools { role, .. } => write!(f, "[roles.{role}] tools"),
            Self::DuplicateToken { name } => write!(f, "two [[tokens]] are named {name:?}"),
            Self::TokenHash { name } => write!(
                f,
                "token {name:?}: sha256 must be 64 hex digits (create tokens with `warden token create`)"
            ),
            Self::UnknownRole { token, role, roles } => write!(
                f,
                "token {token:?}: unknown role {role:?} (roles: {})",
                roles.join(", ")
            ),
            Self::Issuer { issuer, problem } => {
                write!(f, "[[auth.issuers]] {issuer:?}: {problem}")
            }
            Self::TrustKey { name, problem } => write!(f, "[trust.keys.{name}]: {problem}"),
            Self::TrustIdentity { name, problem } => {
                write!(f, "[trust.identities.{name}]: {problem}")
            }
            Self::ServerLimits => f.write_str("[server] limits must be greater than 0"),
            Self::IdlePoll(us) => write!(
                f,
                "[server] idle_poll_us = {us}: at most {} (a millisecond); 0 turns polling off",
                crate::home::MAX_IDLE_POLL_US
            ),
            Self::Env(err) => write!(f, "{err}"),
            Self::Read { path, .. } => write!(f, "reading {}", path.display()),
            Self::TokenExists { path, name } => write!(
                f,
                "{}: a token named {name:?} exists; choose another name, or remove its [[tokens]] entry first",
                path.display()
            ),
            Self::NotAdding { path, name, .. } => {
                write!(f, "{}: not adding token {name:?}", path.display())
            }
            Self::Random { error } => write!(f, "getting random bytes: {error}"),
            Self::TomlWrite(err) => write!(f, "{err}"),
            Self::CreateDir { path, .. } => write!(f, "creating {}", path.display()),
            Self::Io(err) => write!(f, "{err}"),
            Self::Write { path, .. } => write!(f, "writing {}", path.display()),
        }?;
        causes(self, f)
    }
}

/// An environment variable Warden reads that holds no value it accepts.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// A yes/no flag that is neither.
    #[error(
        "{name}={value:?}: use 1 to keep full arguments and results in audit records, 0 for digests only"
    )]
    Flag {
        /// The variable.
        name: String,
        /// Its value (`(not UTF-8)` when it is not text).
        value: String,
    },
    /// `WARDEN_AUDIT_DURABILITY` names no durability.
    #[error("{}: {error}", crate::env::AUDIT_DURABILITY)]
    Durability {
        /// What `warden-audit` said (part of the message).
        error: BoxError,
    },
    /// `WARDEN_AUDIT_DURABILITY` is not text.
    #[error(
        "{} is not UTF-8: use `full` or `process`",
        crate::env::AUDIT_DURABILITY
    )]
    DurabilityNotUtf8,
}

/// A plugin name that is not one.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid plugin name {name:?}: use lowercase letters, digits, '-' and '_' (at most 64), e.g. --name my-tool"
)]
pub struct NameError {
    /// The name as given.
    pub name: String,
}

/// A tool pattern that is not `*`, `PLUGIN/*` or `PLUGIN/TOOL`.
#[derive(Debug, thiserror::Error)]
#[error("tool pattern {pattern:?} is not `*`, `PLUGIN/*` or `PLUGIN/TOOL`")]
pub struct PatternError {
    /// The pattern as given.
    pub pattern: String,
}

/// With `{:#}`, each cause of `err` after `": "`, as `anyhow` prints a chain.
fn causes(err: &dyn Error, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if f.alternate() {
        let mut cause = err.source();
        while let Some(err) = cause {
            write!(f, ": {err}")?;
            cause = err.source();
        }
    }
    Ok(())
}
