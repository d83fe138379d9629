//! Tool definitions pinned by the grant, against "rug pulls": a plugin update that
//! quietly changes what a tool says it does (its description, its schemas, its
//! annotations) to steer a model.
//!
//! A tool's definition digest is `sha256:<hex>` of the canonical JSON (RFC 8785) of
//! what an MCP client is told of it, from the component and its manifest: name,
//! description, input and output schemas, and the manifest's annotations (the grant's
//! own `[annotations]` are the operator's word and not part of it). A grant with
//! `[tool_definitions]` serves the tools whose digest it names and withholds the
//! others, changed or new, until an operator accepts them: a withheld tool is not
//! listed anywhere, and a call of it is refused with [`CallError::Withheld`] and a
//! `tool.withheld` record (see [`Runtime::call_tool`]).
//!
//! [`CallError::Withheld`]: crate::error::CallError::Withheld
//! [`Runtime::call_tool`]: crate::Runtime::call_tool

use std::collections::BTreeMap;

use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::plugin::Plugin;
use crate::tools::Tool;
use warden_config::grant::Grant;

/// A tool the grant does not (or no longer) accept.
#[derive(Clone, Debug)]
pub struct Withheld {
    /// The tool as the component now defines it.
    pub tool: Tool,
    /// The digest the grant accepted for it; `None` for a tool it does not name.
    pub pinned: Option<String>,
    /// The digest of its definition now.
    pub digest: String,
}

impl Withheld {
    /// Why `plugin`'s tool is withheld, and what to do about it.
    pub fn reason(&self, plugin: &str) -> String {
        let name = &self.tool.name;
        match &self.pinned {
            Some(pinned) => format!(
                "tool {plugin}/{name} is withheld: its definition changed since an operator accepted it (accepted {pinned}, now {}); review it (`warden plugin inspect {plugin}`) and accept it with `warden grant accept-tools {plugin} --tool {name}`",
                self.digest
            ),
            None => format!(
                "tool {plugin}/{name} is withheld: it is new since an operator accepted the plugin's tools (its definition is {}); review it (`warden plugin inspect {plugin}`) and accept it with `warden grant accept-tools {plugin} --tool {name}`",
                self.digest
            ),
        }
    }
}

/// `sha256:<hex>` of `tool`'s definition as clients see it.
pub fn definition_digest(tool: &Tool) -> String {
    let a = tool.annotations;
    let definition = json!({
        "name": tool.name,
        "description": tool.description,
        "inputSchema": tool.input_schema,
        "outputSchema": tool.output_schema,
        "annotations": {
            "readOnlyHint": a.read_only,
            "destructiveHint": a.destructive,
            "idempotentHint": a.idempotent,
            "openWorldHint": a.open_world,
        },
    });
    let bytes = warden_audit::canonical::to_vec(&definition);
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// `tools` split into those `pins` accepts and those withheld; every tool is served
/// when there are no pins.
pub(crate) fn partition(
    tools: Vec<Tool>,
    pins: Option<&BTreeMap<String, String>>,
) -> (Vec<Tool>, Vec<Withheld>) {
    let Some(pins) = pins else {
        return (tools, Vec::new());
    };
    let mut served = Vec::with_capacity(tools.len());
    let mut withheld = Vec::new();
    for tool in tools {
        let digest = definition_digest(&tool);
        match pins.get(&tool.name) {
            Some(pin) if *pin == digest => served.push(tool),
            pinned => withheld.push(Withheld {
                pinned: pinned.cloned(),
                digest,
                tool,
            }),
        }
    }
    (served, withheld)
}

impl Plugin {
    /// Whether the component has a tool of this name, served or withheld.
    pub fn has_tool(&self, tool: &str) -> bool {
        self.tool(tool).is_some() || self.withheld(tool).is_some()
    }

    /// The withheld tool of this name, if it is one.
    pub fn withheld(&self, tool: &str) -> Option<&Withheld> {
        self.withheld.iter().find(|w| w.tool.name == tool)
    }

    /// The definition digest of every tool the component has now, served or withheld:
    /// what `[tool_definitions]` says once an operator accepts them all.
    pub fn tool_definitions(&self) -> BTreeMap<String, String> {
        self.tools
            .iter()
            .map(|t| (t.name.clone(), definition_digest(t)))
            .chain(
                self.withheld
                    .iter()
                    .map(|w| (w.tool.name.clone(), w.digest.clone())),
            )
            .collect()
    }
}

/// One tool an operator accepts as it is defined now.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Accepted {
    /// The tool.
    pub tool: String,
    /// The digest accepted before; `None` for a tool not accepted before.
    pub before: Option<String>,
    /// The digest accepted now.
    pub now: String,
}

/// Records the definitions of `plugin`'s tools in `grant` when it names none: what
/// setting a grant does, so that a later change of a tool is withheld.
pub fn record(grant: &mut Grant, plugin: &Plugin) {
    if grant.tool_definitions.is_none() {
        grant.tool_definitions = Some(plugin.tool_definitions());
    }
}

/// `grant` with `tools` of `plugin` accepted as they are defined now (every tool, and
/// no entry for a tool the plugin no longer has, when `tools` is empty), and which
/// tools that changes; an error names a tool the plugin does not have.
pub fn accept(
    grant: &Grant,
    plugin: &Plugin,
    tools: &[String],
) -> Result<(Grant, Vec<Accepted>), String> {
    let current = plugin.tool_definitions();
    let before = grant.tool_definitions.clone().unwrap_or_default();
    let mut after = if tools.is_empty() {
        current.clone()
    } else {
        before.clone()
    };
    for tool in tools {
        let Some(digest) = current.get(tool) else {
            return Err(format!(
                "plugin \"{}\" has no tool {tool:?} (its tools: {})",
                plugin.name,
                current.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        };
        after.insert(tool.clone(), digest.clone());
    }
    let accepted = after
        .iter()
        .filter(|(tool, now)| before.get(*tool) != Some(*now))
        .map(|(tool, now)| Accepted {
            tool: tool.clone(),
            before: before.get(tool).cloned(),
            now: now.clone(),
        })
        .collect();
    let grant = Grant {
        tool_definitions: Some(after),
        ..grant.clone()
    };
    Ok((grant, accepted))
}
