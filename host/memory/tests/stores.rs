//! The same checks against both memory stores: the embedded SQLite file and
//! PostgreSQL (skipped, with a message, where PostgreSQL is not installed, unless
//! WARDEN_REQUIRE_POSTGRES=1). A second store on the same database stands for a
//! second node.

use std::sync::Arc;

use serde_json::json;
use warden_memory::{Document, Entry, PgMemory, SqliteMemory, Store};
use warden_postgres::testing::TestCluster;
use warden_postgres::{Pool, migrate};

fn entry(value: &str, expires_at: Option<u64>) -> Entry {
    Entry {
        value: value.as_bytes().to_vec(),
        content_type: "text/plain".into(),
        expires_at,
    }
}

fn doc(id: &str, text: &str, metadata: serde_json::Value) -> Document {
    Document {
        id: id.into(),
        text: text.into(),
        metadata: metadata.to_string(),
    }
}

/// `a` writes, `b` reads (the same store, or another node's on the same database).
fn memory_works(a: &dyn Store, b: &dyn Store) {
    // Key-value, with expiry, namespaces apart.
    a.set("ns", "k1", &entry("v1", None)).unwrap();
    a.set("ns", "k2", &entry("old", Some(100))).unwrap();
    a.set("other", "k1", &entry("elsewhere", None)).unwrap();
    assert_eq!(b.get("ns", "k1", 50).unwrap().unwrap().value, b"v1");
    assert_eq!(b.get("ns", "k2", 50).unwrap().unwrap().value, b"old");
    assert!(b.get("ns", "k2", 100).unwrap().is_none(), "expired");
    assert_eq!(
        b.get("other", "k1", 50).unwrap().unwrap().value,
        b"elsewhere"
    );
    for n in 0..5 {
        a.set("ns", &format!("page/{n}"), &entry("x", None))
            .unwrap();
    }
    let page = b.list_keys("ns", "page/", None, 3, 50).unwrap();
    assert_eq!(page.keys, ["page/0", "page/1", "page/2"]);
    let rest = b
        .list_keys("ns", "page/", page.next.as_deref(), 3, 50)
        .unwrap();
    assert_eq!(rest.keys, ["page/3", "page/4"]);
    assert!(rest.next.is_none());
    assert!(b.delete("ns", "k1").unwrap());
    assert!(!a.delete("ns", "k1").unwrap());
    assert!(b.used_bytes("ns", 50).unwrap() > 0);

    // Documents: full-text ranking, excerpts, metadata filters.
    a.put_document(
        "docs",
        &doc(
            "d1",
            "The quick brown fox jumps over the lazy dog",
            json!({"lang": "en", "n": 1}),
        ),
    )
    .unwrap();
    a.put_document(
        "docs",
        &doc(
            "d2",
            "Foxes are quick; foxes are clever; a fox hunts at night",
            json!({"lang": "en", "n": 2}),
        ),
    )
    .unwrap();
    a.put_document(
        "docs",
        &doc("d3", "Der schnelle braune Fuchs", json!({"lang": "de"})),
    )
    .unwrap();
    let hits = b.search("docs", "fox", &[], 10).unwrap();
    let ids: Vec<_> = hits.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{hits:?}");
    assert_eq!(ids[0], "d2", "more matches rank first: {hits:?}");
    assert!(hits[0].snippet.contains('['), "{hits:?}");
    assert!(hits[0].score >= hits[1].score);
    let filtered = b
        .search("docs", "fox", &[("n".into(), json!(1))], 10)
        .unwrap();
    assert_eq!(
        filtered.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
        ["d1"]
    );
    assert!(
        b.search("docs", "\"unbalanced ( OR * NEAR", &[], 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        b.search("docs", "fox", &[], 10)
            .unwrap()
            .iter()
            .all(|h| h.id != "d3")
    );

    // Embeddings: cosine ranking; a rewrite or a delete drops the document's vector.
    a.put_vector("docs", "d1", "p/embed", &[1.0, 0.0, 0.0])
        .unwrap();
    a.put_vector("docs", "d2", "p/embed", &[0.7, 0.7, 0.0])
        .unwrap();
    a.put_vector("docs", "d3", "p/embed", &[-1.0, 0.0, 0.0])
        .unwrap();
    let near = b
        .vector_search("docs", "p/embed", &[1.0, 0.1, 0.0], &[], 10)
        .unwrap();
    assert_eq!(
        near.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
        ["d1", "d2"]
    );
    assert!(
        b.vector_search("docs", "q/other", &[1.0, 0.0, 0.0], &[], 10)
            .unwrap()
            .is_empty()
    );
    a.put_document("docs", &doc("d1", "rewritten", json!({})))
        .unwrap();
    let near = b
        .vector_search("docs", "p/embed", &[1.0, 0.1, 0.0], &[], 10)
        .unwrap();
    assert_eq!(
        near.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
        ["d2"]
    );
    assert!(b.delete_document("docs", "d2").unwrap());
    assert!(
        b.vector_search("docs", "p/embed", &[1.0, 0.1, 0.0], &[], 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        b.get_document("docs", "d1").unwrap().unwrap().text,
        "rewritten"
    );
    assert_eq!(b.namespaces().unwrap(), ["docs", "ns", "other"]);
}

#[test]
fn sqlite_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteMemory::open(&dir.path().join("memory.db")).unwrap();
    memory_works(&store, &store);
}

#[test]
fn postgres_memory_shared_by_two_nodes() {
    let Some(cluster) = TestCluster::start() else {
        return;
    };
    let url = cluster.database();
    let pool = |n| Pool::connect(&url, n).unwrap();
    migrate::migrate(&pool(1)).unwrap();
    let a: Arc<dyn Store> = Arc::new(PgMemory::new(pool(2)));
    let b: Arc<dyn Store> = Arc::new(PgMemory::new(pool(2)));
    memory_works(a.as_ref(), b.as_ref());
}
