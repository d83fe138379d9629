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
//!
//! [tools.write]                # or a table: a description and what the tool does
//! description = "Write a file."
//! read_only = false            # it changes something
//! destructive = true           # it may overwrite or delete
//! idempotent = true            # the same call twice has the effect of one
//! open_world = false           # it touches only what it is granted, not the internet
//! ```
//!
//! The four behaviour hints become the tool's MCP annotations and what the access
//! policy sees ([`warden_policy::ToolAnnotations`]). What is not said keeps the
//! conservative default of the MCP specification: not read-only, destructive, not
//! idempotent, open world; except that a read-only tool is neither destructive nor
//! anything but idempotent unless the table says otherwise.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use warden_policy::ToolAnnotations;

use crate::error::ManifestError;

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
    /// Tool name → its description (used when the component carries no WIT docs)
    /// and behaviour hints.
    #[serde(default, deserialize_with = "tool_entries")]
    pub tools: BTreeMap<String, ToolEntry>,
}

/// What the manifest says about one tool: `name = "description"`, or a table
/// `[tools.NAME]` with an optional description and behaviour hints.
///
/// ```toml
/// [tools.forget]
/// description = "Deletes a note."
/// read_only = false
/// destructive = true
/// idempotent = true
/// open_world = false
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolEntry {
    /// What the tool does, for a component without WIT docs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The tool changes nothing (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// The tool may overwrite or delete (default: true unless `read_only`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destructive: Option<bool>,
    /// Calling it again with the same arguments has no further effect (default:
    /// false unless `read_only`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
    /// The tool may reach an open world of outside entities, such as the web
    /// (default true; a plugin whose grant reaches no network never does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_world: Option<bool>,
}

impl ToolEntry {
    /// The hints with the defaults filled in, as the manifest states them (the grant
    /// can narrow `open_world`: see [`warden_runtime::Plugin::annotations`]).
    pub fn annotations(&self) -> ToolAnnotations {
        let read_only = self.read_only.unwrap_or(false);
        ToolAnnotations {
            read_only,
            destructive: self.destructive.unwrap_or(!read_only),
            idempotent: self.idempotent.unwrap_or(read_only),
            open_world: self.open_world.unwrap_or(true),
        }
    }

    /// What a tool the manifest does not describe is taken to do: anything (not
    /// read-only, destructive, not idempotent, open world).
    pub fn default_annotations() -> ToolAnnotations {
        Self::default().annotations()
    }
}

/// `name = "text"` (a description alone) or a table (unknown fields refused).
struct EntryOrText(ToolEntry);

impl<'de> Deserialize<'de> for EntryOrText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = EntryOrText;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a description (a string) or a table of `description`, `read_only`, `destructive`, `idempotent`, `open_world`",
                )
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(EntryOrText(ToolEntry {
                    description: Some(text.to_string()),
                    ..ToolEntry::default()
                }))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                ToolEntry::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(EntryOrText)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

fn tool_entries<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, ToolEntry>, D::Error> {
    let entries = BTreeMap::<String, EntryOrText>::deserialize(deserializer)?;
    Ok(entries.into_iter().map(|(k, v)| (k, v.0)).collect())
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
    pub fn read(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|err| ManifestError::File {
            path: path.to_path_buf(),
            source: Box::new(err),
        })
    }

    /// Parses a manifest; unknown keys are errors that name the key and the line, and
    /// so are hints that contradict each other.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let manifest: Self = toml::from_str(text)?;
        for (name, entry) in &manifest.tools {
            if entry.read_only == Some(true) && entry.destructive == Some(true) {
                return Err(ManifestError::Contradiction { tool: name.clone() });
            }
        }
        Ok(manifest)
    }

    /// The description the manifest gives `tool`, if any.
    pub fn tool_description(&self, tool: &str) -> Option<&str> {
        self.tools.get(tool)?.description.as_deref()
    }

    /// The behaviour hints of `tool`, the conservative defaults where the manifest
    /// says nothing.
    pub fn annotations(&self, tool: &str) -> ToolAnnotations {
        self.tools
            .get(tool)
            .map(ToolEntry::annotations)
            .unwrap_or_else(ToolEntry::default_annotations)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hints(
        read_only: bool,
        destructive: bool,
        idempotent: bool,
        open_world: bool,
    ) -> ToolAnnotations {
        ToolAnnotations {
            read_only,
            destructive,
            idempotent,
            open_world,
        }
    }

    #[test]
    fn tools_are_descriptions_or_tables_with_hints() {
        let m = Manifest::parse(
            r#"
[tools]
plain = "Just a description."

[tools.write]
description = "Writes."
idempotent = true
open_world = false

[tools."transform.split"]
read_only = true
"#,
        )
        .unwrap();
        assert_eq!(m.tool_description("plain"), Some("Just a description."));
        assert_eq!(m.tool_description("write"), Some("Writes."));
        assert_eq!(m.tool_description("transform.split"), None);
        // Unsaid: the MCP specification's conservative defaults.
        assert_eq!(m.annotations("plain"), hints(false, true, false, true));
        assert_eq!(
            m.annotations("not-in-the-manifest"),
            hints(false, true, false, true)
        );
        assert_eq!(m.annotations("write"), hints(false, true, true, false));
        // A read-only tool changes nothing, so it is neither destructive nor not idempotent.
        assert_eq!(
            m.annotations("transform.split"),
            hints(true, false, true, true)
        );
    }

    #[test]
    fn unknown_or_contradicting_hints_are_refused() {
        let err = Manifest::parse("[tools.x]\nread_onyl = true\n").unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("read_onyl"), "{message}");
        let err = Manifest::parse("[tools.x]\nread_only = \"yes\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("bool"), "{err:#}");
        let err = Manifest::parse("[tools]\nx = 3\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("a description (a string) or a table"),
            "{err:#}"
        );
        let err = Manifest::parse("[tools.x]\nread_only = true\ndestructive = true\n").unwrap_err();
        assert!(format!("{err:#}").contains("contradict"), "{err:#}");
    }

    #[test]
    fn a_manifest_round_trips_through_json_as_stored_in_plugin_json() {
        let m = Manifest::parse(
            "[tools]\nplain = \"Text.\"\n[tools.w]\nread_only = false\nopen_world = false\n",
        )
        .unwrap();
        let json = serde_json::to_string(&m).unwrap();
        let back: Manifest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        // plugin.json written before the hints existed: strings.
        let old: Manifest =
            serde_json::from_str(r#"{"name":"p","tools":{"a":"Does a."}}"#).unwrap();
        assert_eq!(old.tool_description("a"), Some("Does a."));
    }
}
