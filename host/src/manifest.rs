//! The plugin manifest: `warden.toml` written by the plugin's author, beside the wasm.
//!
//! It names the plugin, describes it, and *requests* capabilities with a reason for
//! each. A request grants nothing: an operator decides, in the plugin's grant.
//!
//! ```toml
//! name = "files"
//! version = "0.1.0"
//! description = "List, read, write and search files in the directories granted to it."
//!
//! [requests]
//! fs = { reason = "reads and writes the files the user points it at" }
//!
//! [tools]                      # optional: descriptions where the wasm has no WIT docs
//! list = "List the entries of a directory."
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// File name of a manifest.
pub const FILE_NAME: &str = "warden.toml";

/// A plugin's manifest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The plugin's name (the default name it is installed under).
    pub name: Option<String>,
    /// The plugin's version.
    pub version: Option<String>,
    /// What the plugin does.
    pub description: Option<String>,
    /// Capabilities the author asks for, each with a reason.
    #[serde(default)]
    pub requests: Requests,
    /// Tool name → description, used when the component carries no WIT docs.
    #[serde(default)]
    pub tools: BTreeMap<String, String>,
}

/// Capabilities a plugin asks for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requests {
    /// Directories on the host.
    pub fs: Option<Request>,
    /// Outbound HTTP.
    pub net: Option<Request>,
    /// Environment variables.
    pub env: Option<Request>,
    /// Memory namespaces.
    pub memory: Option<Request>,
    /// Model routes.
    pub models: Option<Request>,
    /// Other tools.
    pub tools: Option<Request>,
}

/// One requested capability.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Why the plugin needs it, for the operator who decides.
    pub reason: String,
    /// What exactly (hosts, paths, variable names), when the author knows.
    #[serde(default)]
    pub targets: Vec<String>,
}

impl Manifest {
    /// Reads and checks a manifest file.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading manifest {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("manifest {}", path.display()))
    }

    /// Parses a manifest; unknown keys are errors that name the key and the line.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }

    /// The requests as `(capability, request)` pairs.
    pub fn requested(&self) -> Vec<(&'static str, &Request)> {
        let r = &self.requests;
        [
            ("fs", &r.fs),
            ("net", &r.net),
            ("env", &r.env),
            ("memory", &r.memory),
            ("models", &r.models),
            ("tools", &r.tools),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v.as_ref()?)))
        .collect()
    }
}
