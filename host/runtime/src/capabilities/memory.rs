//! `warden:host/memory` for guests: every operation checked against the calling
//! plugin's `[memory]` grant, then done in the runtime's store.
//!
//! Bounded per call, so that a guest looping over the interface cannot turn host
//! memory or the audit log into its amplifier: keys, ids and prefixes are at most
//! [`MAX_KEY`] bytes and queries and filters [`MAX_QUERY`], a call makes at most
//! [`MAX_OPS`] operations, and the first [`MAX_RECORDED`] are on the record one by one
//! (the rest are counted in one record).

use std::sync::Arc;

use crate::bindings::warden::host::memory as wit;
use crate::denial::Denial;
use crate::state::CallState;
use warden_config::grant::MemoryGrant;
use warden_models::{ChatRequest, Message, Payer, Reservation, Role, Router, Usage};

use warden_memory::{
    Document, Entry, MemoryError, Store, check_metadata, check_size, now, writable,
};

/// The most bytes of a key, document id or key prefix.
pub const MAX_KEY: usize = 1024;

/// The most bytes of a search query or filter.
pub const MAX_QUERY: usize = 4096;

/// The most memory operations one call may make.
pub const MAX_OPS: u32 = 10_000;

/// The most memory operations of one call recorded one by one.
pub const MAX_RECORDED: usize = 256;

/// A call's memory operations, for its audit records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryUses {
    /// The first [`MAX_RECORDED`], one by one.
    pub uses: Vec<MemoryUse>,
    /// Every operation asked for, refused ones included.
    pub ops: u32,
    /// Operations done past [`MAX_RECORDED`].
    pub unrecorded: u64,
}

/// An embedding held against the budgets: the router to settle it with.
type Held = Option<(Arc<Router>, Reservation)>;

/// One memory operation a guest did, for the call's audit records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryUse {
    /// `get`, `set`, `delete`, `list-keys`, `put-document`, `get-document`,
    /// `delete-document`, `search`.
    pub op: &'static str,
    /// The namespace.
    pub namespace: String,
    /// The key, id, prefix or query.
    pub target: String,
    /// Bytes written or read.
    pub bytes: u64,
}

impl From<MemoryError> for wit::Error {
    fn from(err: MemoryError) -> Self {
        match err {
            MemoryError::Denied(m) => Self::Denied(m),
            MemoryError::TooLarge(m) => Self::TooLarge(m),
            MemoryError::Invalid(m) => Self::Invalid(m),
            MemoryError::Internal(m) => Self::Internal(m),
        }
    }
}

impl CallState {
    /// The grant of `namespace` if it allows `op` (writing when `write`), and the store.
    fn memory_for(
        &mut self,
        op: &'static str,
        namespace: &str,
        write: bool,
    ) -> Result<(MemoryGrant, Arc<dyn Store>), MemoryError> {
        self.memory_uses.ops = self.memory_uses.ops.saturating_add(1);
        if self.memory_uses.ops > MAX_OPS {
            return Err(MemoryError::TooLarge(format!(
                "a call may make at most {MAX_OPS} memory operations; this is one more"
            )));
        }
        let granted = self.grant.memory.get(namespace).cloned();
        let refusal = match &granted {
            None => Some(format!(
                "plugin \"{}\" has no grant for memory namespace {namespace:?}; an operator grants it with [memory] {namespace:?} = \"read\" or \"read-write\"",
                self.plugin
            )),
            Some(g) if write && !writable(g) => Some(format!(
                "plugin \"{}\" may only read memory namespace {namespace:?} ([memory] {namespace:?} = \"read\")",
                self.plugin
            )),
            Some(_) => None,
        };
        if let Some(reason) = refusal {
            let denial = Denial::new("memory", format!("{op} {namespace}"), reason.clone());
            tracing::info!(plugin = %self.plugin, call = self.call_id, %denial, "memory denied");
            self.denials.push(denial);
            return Err(MemoryError::Denied(reason));
        }
        let store = self.memory.clone().ok_or_else(|| {
            MemoryError::Internal("this Warden runs without a memory store".into())
        })?;
        Ok((granted.expect("checked above"), store))
    }

    /// The embedder for a memory operation on `text`, once its embedding is held
    /// against the daily budgets that apply (the embedding route's, the payer's): an
    /// embedding past a budget is not made, and the operation goes on by full text
    /// (the refusal is on the record as the route's model call).
    fn embedder_within_budget(
        &mut self,
        text: &str,
    ) -> (Option<Arc<warden_memory::Embedder>>, Held) {
        let (Some(embedder), Some(router)) = (self.embedder.clone(), self.router.clone()) else {
            return (self.embedder.clone(), None);
        };
        let request = ChatRequest {
            messages: vec![Message::new(Role::User, text)],
            max_tokens: Some(0),
            ..ChatRequest::default()
        };
        let payer = Payer {
            plugin: None,
            principal: self.models.payer.as_deref(),
        };
        match router.reserve(embedder.route(), payer, &request) {
            Ok(reservation) => (Some(embedder), Some((router, reservation))),
            Err(err) => {
                self.models
                    .uses
                    .push(crate::capabilities::models::ModelUse {
                        route: embedder.route().to_string(),
                        target: None,
                        tokens: (0, 0),
                        cost: 0.0,
                        outcome: format!("not embedded: {err}"),
                    });
                (None, None)
            }
        }
    }

    /// Puts the embedding request a memory operation made on the call's record, as a
    /// model call of the embedding route, and settles its budgets with what it used.
    fn embedded(&mut self, used: Option<warden_memory::hybrid::EmbedUse>, held: Held) {
        if let Some((router, reservation)) = held {
            let usage = Usage {
                input: used.as_ref().map_or(0, |u| u.tokens),
                ..Usage::default()
            };
            router.settle(reservation, &usage, 0.0);
        }
        if let Some(used) = used {
            self.models
                .uses
                .push(crate::capabilities::models::ModelUse {
                    route: used.route,
                    target: used.target,
                    tokens: (used.tokens, 0),
                    cost: 0.0,
                    outcome: used.outcome,
                });
        }
    }

    fn used(&mut self, op: &'static str, namespace: &str, target: &str, bytes: usize) {
        if self.memory_uses.uses.len() >= MAX_RECORDED {
            self.memory_uses.unrecorded += 1;
            return;
        }
        self.memory_uses.uses.push(MemoryUse {
            op,
            namespace: namespace.to_string(),
            target: target.to_string(),
            bytes: bytes as u64,
        });
    }
}

fn nonempty(what: &str, value: &str) -> Result<(), MemoryError> {
    if value.is_empty() || value.len() > MAX_KEY {
        return Err(MemoryError::Invalid(format!(
            "{what} must be 1 to {MAX_KEY} bytes"
        )));
    }
    Ok(())
}

/// `value` (a prefix, a query, a filter) is at most `max` bytes.
fn at_most(what: &str, value: &str, max: usize) -> Result<(), MemoryError> {
    if value.len() > max {
        return Err(MemoryError::TooLarge(format!(
            "{what} is {} bytes; at most {max}",
            value.len()
        )));
    }
    Ok(())
}

impl wit::Host for CallState {
    fn get(&mut self, namespace: String, key: String) -> Result<Option<wit::Entry>, wit::Error> {
        let (_, store) = self.memory_for("get", &namespace, false)?;
        nonempty("key", &key)?;
        let entry = store
            .get(&namespace, &key, now())
            .map_err(MemoryError::from)?;
        self.used(
            "get",
            &namespace,
            &key,
            entry.as_ref().map_or(0, |e| e.value.len()),
        );
        Ok(entry.map(|e| wit::Entry {
            value: e.value,
            content_type: e.content_type,
            expires_at: e.expires_at,
        }))
    }

    fn set(
        &mut self,
        namespace: String,
        key: String,
        value: Vec<u8>,
        content_type: String,
        ttl_seconds: Option<u64>,
    ) -> Result<(), wit::Error> {
        let (grant, store) = self.memory_for("set", &namespace, true)?;
        nonempty("key", &key)?;
        check_size(&*store, &namespace, &grant, value.len() + key.len())?;
        let bytes = value.len();
        let entry = Entry {
            value,
            content_type: if content_type.is_empty() {
                "application/octet-stream".into()
            } else {
                content_type
            },
            expires_at: ttl_seconds.map(|ttl| now().saturating_add(ttl)),
        };
        store
            .set(&namespace, &key, &entry)
            .map_err(MemoryError::from)?;
        self.used("set", &namespace, &key, bytes);
        Ok(())
    }

    fn delete(&mut self, namespace: String, key: String) -> Result<bool, wit::Error> {
        let (_, store) = self.memory_for("delete", &namespace, true)?;
        nonempty("key", &key)?;
        let gone = store.delete(&namespace, &key).map_err(MemoryError::from)?;
        self.used("delete", &namespace, &key, 0);
        Ok(gone)
    }

    fn list_keys(
        &mut self,
        namespace: String,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<wit::KeyPage, wit::Error> {
        let (_, store) = self.memory_for("list-keys", &namespace, false)?;
        at_most("the prefix", &prefix, MAX_KEY)?;
        at_most("the cursor", cursor.as_deref().unwrap_or(""), MAX_KEY)?;
        let page = store
            .list_keys(
                &namespace,
                &prefix,
                cursor.as_deref(),
                limit.clamp(1, 1000),
                now(),
            )
            .map_err(MemoryError::from)?;
        self.used("list-keys", &namespace, &prefix, 0);
        Ok(wit::KeyPage {
            keys: page.keys,
            next: page.next,
        })
    }

    async fn put_document(
        &mut self,
        namespace: String,
        doc: wit::Document,
    ) -> Result<(), wit::Error> {
        let (grant, store) = self.memory_for("put-document", &namespace, true)?;
        nonempty("id", &doc.id)?;
        let metadata = check_metadata(&doc.metadata)?;
        let bytes = doc.id.len() + doc.text.len() + metadata.len();
        check_size(&*store, &namespace, &grant, bytes)?;
        let doc = Document {
            id: doc.id,
            text: doc.text,
            metadata,
        };
        let (embedder, held) = self.embedder_within_budget(&doc.text);
        let embedded = warden_memory::hybrid::put_document_recorded(
            &*store,
            embedder.as_deref(),
            &namespace,
            &doc,
        )
        .await;
        let embedded = match embedded {
            Ok(used) => used,
            Err(err) => {
                self.embedded(None, held);
                return Err(MemoryError::from(err).into());
            }
        };
        self.embedded(embedded, held);
        self.used("put-document", &namespace, &doc.id, bytes);
        Ok(())
    }

    fn get_document(
        &mut self,
        namespace: String,
        id: String,
    ) -> Result<Option<wit::Document>, wit::Error> {
        let (_, store) = self.memory_for("get-document", &namespace, false)?;
        nonempty("id", &id)?;
        let doc = store
            .get_document(&namespace, &id)
            .map_err(MemoryError::from)?;
        self.used(
            "get-document",
            &namespace,
            &id,
            doc.as_ref().map_or(0, |d| d.text.len()),
        );
        Ok(doc.map(|d| wit::Document {
            id: d.id,
            text: d.text,
            metadata: d.metadata,
        }))
    }

    fn delete_document(&mut self, namespace: String, id: String) -> Result<bool, wit::Error> {
        let (_, store) = self.memory_for("delete-document", &namespace, true)?;
        nonempty("id", &id)?;
        let gone = store
            .delete_document(&namespace, &id)
            .map_err(MemoryError::from)?;
        self.used("delete-document", &namespace, &id, 0);
        Ok(gone)
    }

    async fn search(
        &mut self,
        namespace: String,
        query: String,
        filter: Option<String>,
        limit: u32,
    ) -> Result<Vec<wit::Hit>, wit::Error> {
        let (_, store) = self.memory_for("search", &namespace, false)?;
        at_most("the query", &query, MAX_QUERY)?;
        at_most("the filter", filter.as_deref().unwrap_or(""), MAX_QUERY)?;
        let filter = warden_memory::parse_filter(filter.as_deref())?;
        let (embedder, held) = self.embedder_within_budget(&query);
        let limit = limit.clamp(1, 100);
        let searched = warden_memory::hybrid::search_recorded(
            &*store,
            embedder.as_deref(),
            &namespace,
            &query,
            &filter,
            limit,
        )
        .await;
        let (hits, embedded) = match searched {
            Ok(found) => found,
            Err(err) => {
                self.embedded(None, held);
                return Err(MemoryError::from(err).into());
            }
        };
        self.embedded(embedded, held);
        self.used("search", &namespace, &query, 0);
        Ok(hits
            .into_iter()
            .map(|h| wit::Hit {
                id: h.id,
                score: h.score,
                snippet: h.snippet,
                metadata: h.metadata,
            })
            .collect())
    }
}
