//! Writing and searching documents with an embedder beside the full-text index:
//! documents are embedded on write, and a search ranks by BM25 and by vector
//! similarity and fuses the two lists by reciprocal rank (RRF, k = 60). Without an
//! embedder both are the store's own full-text operations.
//!
//! An embedding that fails never loses a write or a search: the document is stored
//! (found by full text until it is written again) and the search answers by BM25,
//! each with a warning in the log.

use std::collections::HashMap;

use super::embed::Embedder;
use super::error::{EmbedError, StoreError};
use super::{Document, Hit, Store};

/// The RRF constant: a hit at rank r in one list scores 1 / (K + r).
pub const RRF_K: f64 = 60.0;

/// One request to the embedding route, for the audit record of the call that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbedUse {
    /// The route.
    pub route: String,
    /// The target that answered, if one did.
    pub target: Option<String>,
    /// Input tokens.
    pub tokens: u64,
    /// `ok`, or why no target answered.
    pub outcome: String,
}

impl EmbedUse {
    fn of(embedder: &Embedder, result: &Result<super::embed::Embedded, EmbedError>) -> Self {
        Self {
            route: embedder.route().to_string(),
            target: result.as_ref().ok().map(|e| e.target.clone()),
            tokens: result.as_ref().map_or(0, |e| e.tokens),
            outcome: match result {
                Ok(_) => "ok".into(),
                Err(err) => format!("{err:#}"),
            },
        }
    }
}

/// Stores `doc` in `namespace`, and its embedding when there is an embedder.
pub async fn put_document(
    store: &dyn Store,
    embedder: Option<&Embedder>,
    namespace: &str,
    doc: &Document,
) -> Result<(), StoreError> {
    put_document_recorded(store, embedder, namespace, doc)
        .await
        .map(drop)
}

/// As [`put_document`], with the embedding request it made, if any.
pub async fn put_document_recorded(
    store: &dyn Store,
    embedder: Option<&Embedder>,
    namespace: &str,
    doc: &Document,
) -> Result<Option<EmbedUse>, StoreError> {
    store.put_document(namespace, doc)?;
    let Some(embedder) = embedder else {
        return Ok(None);
    };
    let result = embedder.embed(&[&doc.text]).await;
    let used = EmbedUse::of(embedder, &result);
    match result {
        Ok(mut embedded) => {
            let vector = embedded.vectors.swap_remove(0);
            store.put_vector(namespace, &doc.id, &embedded.target, &vector)?;
        }
        Err(err) => tracing::warn!(
            namespace,
            id = %doc.id,
            "memory: the document is stored without its embedding, found by full text only: {err:#}"
        ),
    }
    Ok(Some(used))
}

/// The best `limit` documents of `namespace` for `query`: BM25 alone, or BM25 and
/// vector similarity fused when there is an embedder.
pub async fn search(
    store: &dyn Store,
    embedder: Option<&Embedder>,
    namespace: &str,
    query: &str,
    filter: &[(String, serde_json::Value)],
    limit: u32,
) -> Result<Vec<Hit>, StoreError> {
    search_recorded(store, embedder, namespace, query, filter, limit)
        .await
        .map(|(hits, _)| hits)
}

/// As [`search`], with the embedding request it made, if any.
pub async fn search_recorded(
    store: &dyn Store,
    embedder: Option<&Embedder>,
    namespace: &str,
    query: &str,
    filter: &[(String, serde_json::Value)],
    limit: u32,
) -> Result<(Vec<Hit>, Option<EmbedUse>), StoreError> {
    let Some(embedder) = embedder else {
        return Ok((store.search(namespace, query, filter, limit)?, None));
    };
    let depth = limit.saturating_mul(4).clamp(20, 200);
    let mut text = store.search(namespace, query, filter, depth)?;
    let result = embedder.embed(&[query]).await;
    let used = EmbedUse::of(embedder, &result);
    let vector = match result {
        Ok(mut embedded) => {
            let query = embedded.vectors.swap_remove(0);
            store.vector_search(namespace, &embedded.target, &query, filter, depth)?
        }
        Err(err) => {
            tracing::warn!(namespace, "memory: searching by full text only: {err:#}");
            text.truncate(limit as usize);
            return Ok((text, Some(used)));
        }
    };
    Ok((fuse(text, vector, limit), Some(used)))
}

/// Reciprocal-rank fusion of two ranked lists; a document in both keeps the full-text
/// snippet (it shows the matched words). The score is the fused one.
pub fn fuse(text: Vec<Hit>, vector: Vec<Hit>, limit: u32) -> Vec<Hit> {
    let mut fused: HashMap<String, Hit> = HashMap::new();
    for list in [text, vector] {
        for (rank, hit) in list.into_iter().enumerate() {
            let score = 1.0 / (RRF_K + rank as f64 + 1.0);
            fused
                .entry(hit.id.clone())
                .and_modify(|h| h.score += score)
                .or_insert(Hit { score, ..hit });
        }
    }
    let mut hits: Vec<Hit> = fused.into_values().collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    hits.truncate(limit as usize);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: &str) -> Hit {
        Hit {
            id: id.into(),
            score: 0.0,
            snippet: format!("snippet of {id}"),
            metadata: "{}".into(),
        }
    }

    #[test]
    fn a_document_in_both_lists_ranks_first() {
        let text = vec![hit("a"), hit("b")];
        let vector = vec![hit("c"), hit("b")];
        let fused = fuse(text, vector, 10);
        let ids: Vec<_> = fused.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(ids, ["b", "a", "c"]);
        assert!((fused[0].score - (1.0 / 62.0 + 1.0 / 62.0)).abs() < 1e-12);
        assert_eq!(fuse(vec![hit("a"), hit("b")], vec![], 1).len(), 1);
    }
}
