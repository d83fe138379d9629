//! Every environment variable Warden reads, in one place. Precedence, written once:
//! the file (`warden.toml`) < the environment < command-line flags.
//!
//! Besides these, a grant's `[secrets] from_env` and a provider's `api_key_env` name
//! variables of the operator's choosing, read when a request needs them; and the
//! OpenTelemetry variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `…_TRACES_ENDPOINT`,
//! `…_PROTOCOL`, `OTEL_SERVICE_NAME`) are read where the exporter is set up
//! (`warden-telemetry`), as the OpenTelemetry specification names them.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::EnvError;

/// The home directory when `--home` is not given (else `./.warden`).
pub const HOME: &str = "WARDEN_HOME";

/// `1` keeps full arguments and results in audit records, `0` digests only; overrides
/// `[audit] keep_content` of `warden.toml`.
pub const AUDIT_KEEP_PAYLOADS: &str = "WARDEN_AUDIT_KEEP_PAYLOADS";

/// `full` or `process`: how durable an audit record is when its caller gets the answer;
/// overrides `[audit] durability` of `warden.toml`.
pub const AUDIT_DURABILITY: &str = "WARDEN_AUDIT_DURABILITY";

/// The user name for every OCI registry Warden pulls plugins from or pushes them to
/// (with [`REGISTRY_PASSWORD`]); without both, Docker's config file is read.
pub const REGISTRY_USERNAME: &str = "WARDEN_REGISTRY_USERNAME";

/// The password (or token) that goes with [`REGISTRY_USERNAME`].
pub const REGISTRY_PASSWORD: &str = "WARDEN_REGISTRY_PASSWORD";

/// Where Docker's `config.json` is (registry logins, credential helpers); else
/// `~/.docker`. Docker's own variable, read as Docker reads it.
pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";

/// The cluster's database (`postgres://…`); overrides `[storage] url` of `warden.toml`.
pub const DATABASE_URL: &str = "WARDEN_DATABASE_URL";

/// [`DATABASE_URL`]'s value, when set and not empty.
pub fn database_url() -> Option<String> {
    std::env::var(DATABASE_URL).ok().filter(|v| !v.is_empty())
}

/// The user at this machine's command line, for the principal `local:<user>`.
pub const USER: &str = "USER";

/// `$WARDEN_HOME`, when set and not empty.
pub fn home() -> Option<PathBuf> {
    std::env::var_os(HOME)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// [`AUDIT_KEEP_PAYLOADS`]'s setting: `None` when unset; `1`, `true`, `yes`, `on`;
/// `0`, `false`, `no`, `off` or empty; anything else is an error naming the variable.
pub fn keep_payloads() -> Result<Option<bool>, EnvError> {
    parse_flag(AUDIT_KEEP_PAYLOADS, std::env::var_os(AUDIT_KEEP_PAYLOADS))
}

/// [`AUDIT_DURABILITY`]'s setting: `None` when unset or empty; an unknown value is an
/// error naming the variable.
pub fn audit_durability() -> Result<Option<warden_audit::Durability>, EnvError> {
    match std::env::var_os(AUDIT_DURABILITY) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => match v.to_str() {
            Some(text) => text
                .parse::<warden_audit::Durability>()
                .map(Some)
                .map_err(|err| EnvError::Durability { error: err.into() }),
            None => Err(EnvError::DurabilityNotUtf8),
        },
    }
}

fn parse_flag(name: &str, value: Option<OsString>) -> Result<Option<bool>, EnvError> {
    let is_one_of = |v: &str, words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(v));
    Ok(match value.as_ref().map(|v| v.to_str()) {
        None => None,
        Some(Some(v)) if is_one_of(v, &["", "0", "false", "no", "off"]) => Some(false),
        Some(Some(v)) if is_one_of(v, &["1", "true", "yes", "on"]) => Some(true),
        Some(v) => {
            return Err(EnvError::Flag {
                name: name.to_string(),
                value: v.unwrap_or("(not UTF-8)").to_string(),
            });
        }
    })
}

/// The principal of a person at this machine's command line: `local:<user>` (`$USER`,
/// else the uid).
pub fn local_principal() -> String {
    static PRINCIPAL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PRINCIPAL
        .get_or_init(|| {
            let user = std::env::var(USER)
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| format!("uid-{}", current_uid()));
            format!("local:{user}")
        })
        .clone()
}

fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    // The owner of a file this process creates is its uid; no unsafe call needed.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_is_one_of_the_words_or_an_error_naming_the_variable() {
        let parse = |v: &str| parse_flag("X", Some(v.into()));
        assert_eq!(parse("1").unwrap(), Some(true));
        assert_eq!(parse("off").unwrap(), Some(false));
        assert_eq!(parse("").unwrap(), Some(false));
        assert_eq!(parse_flag("X", None).unwrap(), None);
        let err = parse("maybe").unwrap_err().to_string();
        assert!(err.starts_with("X=\"maybe\""), "{err}");
    }
}
