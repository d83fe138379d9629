//! The `notes` plugin: notes kept in the host's memory service, namespace `notes`.
#![cfg_attr(
    not(target_arch = "wasm32"),
    allow(
        dead_code,
        reason = "tools are exported only to wasm; natively only unit tests run"
    )
)]
#![allow(
    clippy::too_many_arguments,
    reason = "the generated export glue passes lowered record fields one by one"
)]

use warden_sdk::host::memory::{self, Document};

warden_sdk::wit_bindgen::generate!({
    world: "warden:notes/notes",
    path: ["../../wit", "wit"],
    runtime_path: "warden_sdk::wit_bindgen::rt",
    with: {
        "warden:host/log@0.1.0": warden_sdk::host::log,
        "warden:host/memory@0.1.0": warden_sdk::host::memory,
    },
});

/// The memory namespace the notes live in.
const NAMESPACE: &str = "notes";
/// The key of the counter that numbers new notes.
const COUNTER: &str = "next-id";

struct Notes;

/// The host's error as the tool's error text.
fn describe(err: memory::Error) -> String {
    match err {
        memory::Error::Denied(m) => format!("denied: {m}"),
        memory::Error::TooLarge(m) => format!("too large: {m}"),
        memory::Error::Invalid(m) => format!("invalid: {m}"),
        memory::Error::Internal(m) => format!("the host's memory failed: {m}"),
    }
}

fn tags_of(metadata: &str) -> Vec<String> {
    serde_json::from_str::<serde_json::Value>(metadata)
        .ok()
        .and_then(|m| m.get("tags").cloned())
        .and_then(|t| serde_json::from_value(t).ok())
        .unwrap_or_default()
}

/// A fresh id: `n<number>`, from a counter kept in the namespace.
fn next_id() -> Result<String, String> {
    let current = memory::get(NAMESPACE, COUNTER)
        .map_err(describe)?
        .and_then(|e| String::from_utf8(e.value).ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let next = current + 1;
    memory::set(
        NAMESPACE,
        COUNTER,
        next.to_string().as_bytes(),
        "text/plain",
        None,
    )
    .map_err(describe)?;
    Ok(format!("n{next}"))
}

impl Guest for Notes {
    fn remember(
        text: String,
        tags: Option<Vec<String>>,
        id: Option<String>,
    ) -> Result<String, String> {
        if text.trim().is_empty() {
            return Err("a note needs some text".into());
        }
        let id = match id {
            Some(id) => id,
            None => next_id()?,
        };
        let tags = tags.unwrap_or_default();
        // Each tag is also a metadata key, so search can filter on it exactly.
        let mut metadata = serde_json::json!({ "tags": tags });
        for tag in &tags {
            metadata[format!("tag:{tag}")] = serde_json::Value::Bool(true);
        }
        memory::put_document(
            NAMESPACE,
            &Document {
                id: id.clone(),
                text,
                metadata: metadata.to_string(),
            },
        )
        .map_err(describe)?;
        Ok(id)
    }

    fn recall(id: String) -> Result<Option<Note>, String> {
        let doc = memory::get_document(NAMESPACE, &id).map_err(describe)?;
        Ok(doc.map(|d| Note {
            tags: tags_of(&d.metadata),
            id: d.id,
            text: d.text,
        }))
    }

    fn search(
        query: String,
        tag: Option<String>,
        limit: Option<u32>,
    ) -> Result<Vec<Found>, String> {
        let filter = tag.map(|t| serde_json::json!({ format!("tag:{t}"): true }).to_string());
        let hits = memory::search(NAMESPACE, &query, filter.as_deref(), limit.unwrap_or(10))
            .map_err(describe)?;
        Ok(hits
            .into_iter()
            .map(|h| Found {
                tags: tags_of(&h.metadata),
                id: h.id,
                score: h.score,
                snippet: h.snippet,
            })
            .collect())
    }

    fn forget(id: String) -> Result<bool, String> {
        memory::delete_document(NAMESPACE, &id).map_err(describe)
    }
}

export!(Notes);
