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
        "not_tools": plugin.skipped,
    })
}
