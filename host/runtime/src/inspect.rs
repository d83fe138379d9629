//! The JSON description of a served or installed plugin: its tools with their JSON
//! Schemas, where it came from and who signed it, what its manifest requests, what it imports, its grant and limits. This is
//! what `warden plugin inspect --json` prints and `GET /v1/plugins/{name}` answers.

use serde_json::{Value, json};

use crate::Plugin;
use crate::home::InstalledMeta;

/// The JSON form of a plugin, as `inspect --json` prints it.
pub fn describe(plugin: &Plugin, meta: &InstalledMeta) -> Value {
    let tools: Vec<Value> = plugin
        .tools
        .iter()
        .map(|t| {
            json!({
                "id": format!("{}/{}", plugin.name, t.name),
                "name": t.name,
                "description": t.description,
                "description_source": t.description_source,
                "signature": t.signature,
                "fallible": t.is_fallible(),
                "annotations": plugin.annotations(&t.name),
                "input_schema": t.input_schema,
                "output_schema": t.output_schema,
            })
        })
        .collect();
    // Withheld tools, with what an operator reviews before accepting them.
    let withheld: Vec<Value> = plugin
        .withheld
        .iter()
        .map(|w| {
            json!({
                "id": format!("{}/{}", plugin.name, w.tool.name),
                "name": w.tool.name,
                "accepted": w.pinned,
                "definition": w.digest,
                "reason": w.reason(&plugin.name),
                "description": w.tool.description,
                "annotations": w.tool.annotations,
                "input_schema": w.tool.input_schema,
                "output_schema": w.tool.output_schema,
            })
        })
        .collect();
    let requests: serde_json::Map<String, Value> = meta
        .manifest
        .as_ref()
        .map(|m| {
            m.requested()
                .into_iter()
                .map(|(k, r)| {
                    (
                        k.to_string(),
                        json!({"reason": r.reason, "targets": r.targets}),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "name": plugin.name.as_ref(),
        "digest": plugin.digest,
        "source": meta.source,
        "provenance": meta.provenance.as_ref().map(|p| json!({
            "reference": p.reference,
            "manifest_digest": p.manifest_digest,
            "signature": p.signature.as_ref().map(|s| json!({
                "signer": s.signer,
                "key": s.key,
                "identity": s.identity,
                "issuer": s.issuer,
                "digest": s.digest,
                "covers_installed": s.digest == plugin.digest,
            })),
        })),
        "manifest": meta.manifest.as_ref().map(|m| json!({
            "name": m.name, "version": m.version, "description": m.description,
        })),
        "requests": requests,
        "imports": plugin.imports,
        "grant": plugin.grant,
        "notice": plugin.notice,
        "limits": plugin.limits,
        "tools": tools,
        "withheld_tools": withheld,
        "not_tools": plugin.skipped,
    })
}

/// One capability kind of a plugin, side by side: what its manifest requests (with
/// the author's reason), whether the component imports what uses it, and what the
/// operator granted. What `warden plugin inspect` prints and the console shows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CapabilityRow {
    /// `fs`, `net`, `env`, `memory` or `models`.
    pub kind: &'static str,
    /// The author's reason, when the manifest requests it.
    pub requested: Option<String>,
    /// True when the component imports an interface that gives it.
    pub imported: bool,
    /// What the grant gives, in a few words (`no` when nothing, `no (pin mismatch)`
    /// when the grant is pinned to another digest).
    pub granted: String,
}

/// The imports that give a component each capability kind.
pub const CAPABILITY_IMPORTS: [(&str, &[&str]); 5] = [
    ("fs", &["wasi:filesystem/"]),
    ("net", &["wasi:http/", "wasi:sockets/"]),
    ("env", &["wasi:cli/environment"]),
    ("memory", &["warden:host/memory"]),
    ("models", &["warden:host/models"]),
];

/// Every capability kind of `plugin`, as [`CapabilityRow`]s, in the order of
/// [`CAPABILITY_IMPORTS`].
pub fn capabilities(
    plugin: &Plugin,
    manifest: Option<&warden_config::manifest::Manifest>,
) -> Vec<CapabilityRow> {
    let requested = manifest
        .map(warden_config::manifest::Manifest::requested)
        .unwrap_or_default();
    CAPABILITY_IMPORTS
        .iter()
        .map(|(kind, prefixes)| CapabilityRow {
            kind,
            requested: requested
                .iter()
                .find(|(c, _)| c == kind)
                .map(|(_, r)| r.reason.clone()),
            imported: plugin
                .imports
                .iter()
                .any(|i| prefixes.iter().any(|p| i.starts_with(p))),
            granted: granted(plugin, kind),
        })
        .collect()
}

fn granted(plugin: &Plugin, kind: &str) -> String {
    let Some(grant) = &plugin.grant else {
        return "no".into();
    };
    if plugin.notice.is_some() {
        return "no (pin mismatch)".into();
    }
    let list: Vec<String> = match kind {
        "fs" => grant
            .fs
            .iter()
            .map(|f| format!("{} -> {}", f.host.display(), f.guest))
            .collect(),
        "net" => grant
            .net
            .iter()
            .flat_map(|n| n.allow.iter().cloned())
            .collect(),
        "env" => grant.env.vars.keys().cloned().collect(),
        "memory" => grant
            .memory
            .iter()
            .map(|(ns, m)| {
                format!(
                    "{ns} ({})",
                    match m.access {
                        warden_config::grant::Access::Read => "read",
                        warden_config::grant::Access::ReadWrite => "read-write",
                    }
                )
            })
            .collect(),
        "models" => grant
            .models
            .iter()
            .flat_map(|m| m.routes.iter().cloned())
            .collect(),
        _ => Vec::new(),
    };
    if list.is_empty() {
        "no".into()
    } else {
        list.join(", ")
    }
}
