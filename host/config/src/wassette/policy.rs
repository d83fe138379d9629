//! The shape of a Wassette policy (policy-mcp v1, and the fields Wassette added:
//! k8s-style `resources.limits`, `runtime.wasm.wasi.preopens`).
//!
//! Not `deny_unknown_fields`: an unknown key is not an error here but something the
//! import names as not converted, so every struct keeps the keys it does not know.
//!
//! YAML is read with `serde-saphyr`: maintained, pure safe Rust (no libyaml), built
//! to parse untrusted input without panics and with budgets, and its errors name the
//! line and column with a snippet. `serde_yaml` is archived and unmaintained,
//! `serde_yml` is flagged unsound and unmaintained (RUSTSEC-2025-0068), and
//! `serde_norway` still wraps the unsafe C-to-Rust port of libyaml.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::IgnoredAny;

/// The keys of a map that a struct did not name.
pub(super) type Keys = BTreeMap<String, IgnoredAny>;

#[derive(Deserialize)]
pub(super) struct Policy {
    pub(super) version: String,
    pub(super) description: Option<String>,
    pub(super) permissions: Option<Permissions>,
    #[serde(flatten)]
    pub(super) other: Keys,
}

#[derive(Deserialize)]
pub(super) struct Permissions {
    pub(super) storage: Option<Lists<Storage>>,
    pub(super) network: Option<Lists<NetEntry>>,
    pub(super) environment: Option<Lists<EnvEntry>>,
    pub(super) runtime: Option<Runtime>,
    pub(super) resources: Option<Resources>,
    /// Every key under `ipc` is named as not converted.
    pub(super) ipc: Option<Keys>,
    #[serde(flatten)]
    pub(super) other: Keys,
}

/// `allow` and `deny` lists.
#[derive(Deserialize)]
#[serde(bound = "T: Deserialize<'de>")]
pub(super) struct Lists<T> {
    pub(super) allow: Option<Vec<T>>,
    pub(super) deny: Option<Vec<T>>,
    #[serde(flatten)]
    pub(super) other: Keys,
}

#[derive(Deserialize)]
pub(super) struct Storage {
    pub(super) uri: String,
    #[serde(default)]
    pub(super) access: Vec<String>,
    #[serde(flatten)]
    pub(super) other: Keys,
}

/// One of `{host}`, `{cidr}`, `{defaults: true}`.
#[derive(Deserialize)]
pub(super) struct NetEntry {
    pub(super) host: Option<String>,
    pub(super) cidr: Option<String>,
    pub(super) defaults: Option<bool>,
    #[serde(flatten)]
    pub(super) other: Keys,
}

impl NetEntry {
    pub(super) fn describe(&self) -> String {
        match (&self.host, &self.cidr) {
            (Some(host), _) => format!("host {host}"),
            (None, Some(cidr)) => format!("cidr {cidr}"),
            (None, None) => String::new(),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct EnvEntry {
    pub(super) key: String,
    #[serde(flatten)]
    pub(super) other: Keys,
}

#[derive(Deserialize)]
pub(super) struct Resources {
    pub(super) limits: Option<ResourceLimits>,
    /// Legacy: CPU percent.
    pub(super) cpu: Option<Number>,
    /// Legacy: memory in MB.
    pub(super) memory: Option<u64>,
    /// Legacy: IOPS.
    pub(super) io: Option<Number>,
    #[serde(flatten)]
    pub(super) other: Keys,
}

#[derive(Deserialize)]
pub(super) struct ResourceLimits {
    pub(super) cpu: Option<Size>,
    pub(super) memory: Option<Size>,
    pub(super) fuel: Option<u64>,
    pub(super) execution_time: Option<String>,
    #[serde(flatten)]
    pub(super) other: Keys,
}

#[derive(Deserialize)]
pub(super) struct Runtime {
    pub(super) wasm: Option<WasmRuntime>,
    /// `docker`, `hyperlight`, …: named as not converted.
    #[serde(flatten)]
    pub(super) other: Keys,
}

#[derive(Deserialize)]
pub(super) struct WasmRuntime {
    pub(super) wasi: Option<Wasi>,
    /// `engine`, `module`: named as not converted.
    #[serde(flatten)]
    pub(super) other: Keys,
}

#[derive(Deserialize)]
pub(super) struct Wasi {
    pub(super) inherit_env: Option<bool>,
    pub(super) args: Option<Vec<String>>,
    pub(super) preopens: Option<Vec<Preopen>>,
    #[serde(flatten)]
    pub(super) other: Keys,
}

#[derive(Deserialize)]
pub(super) struct Preopen {
    pub(super) host_path: String,
    pub(super) guest_path: String,
    #[serde(default)]
    pub(super) access: Vec<String>,
    #[serde(flatten)]
    pub(super) other: Keys,
}

/// A number as YAML gives it.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Number {
    Int(u64),
    Float(f64),
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(n) => write!(f, "{n}"),
            Self::Float(n) => write!(f, "{n}"),
        }
    }
}

/// A k8s-style quantity (`"512Mi"`, `"500m"`) or a plain number.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Size {
    Number(u64),
    Float(f64),
    Text(String),
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Float(n) => write!(f, "{n}"),
            Self::Text(s) => write!(f, "{s}"),
        }
    }
}

impl Size {
    /// A memory size as Wassette reads it (a number is MB; a string is bytes with an
    /// optional `Ki`, `Mi`, `Gi` or `Ti` suffix), in MiB rounded up, and whether it
    /// was exact.
    pub(super) fn mebibytes(&self) -> Option<(u64, bool)> {
        const MIB: u64 = 1 << 20;
        let bytes = match self {
            Self::Number(mb) => mb.checked_mul(MIB)?,
            Self::Float(_) => return None,
            Self::Text(s) => {
                let s = s.trim();
                let (digits, unit) = [
                    ("Ki", 1u64 << 10),
                    ("Mi", MIB),
                    ("Gi", 1 << 30),
                    ("Ti", 1 << 40),
                ]
                .into_iter()
                .find_map(|(suffix, unit)| Some((s.strip_suffix(suffix)?, unit)))
                .unwrap_or((s, 1));
                digits.parse::<u64>().ok()?.checked_mul(unit)?
            }
        };
        if bytes == 0 {
            return None;
        }
        Some((bytes.div_ceil(MIB), bytes % MIB == 0))
    }
}

/// `"30s"`, `"5m"`, `"1000ms"` in milliseconds.
pub(super) fn millis(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = [("ms", 1u64), ("s", 1000), ("m", 60_000)]
        .into_iter()
        .find_map(|(suffix, unit)| Some((text.strip_suffix(suffix)?, unit)))?;
    digits.parse::<u64>().ok()?.checked_mul(unit)
}
