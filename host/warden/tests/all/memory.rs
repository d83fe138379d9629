//! `warden:host/memory`: namespaces granted read or read-write, nothing else; the
//! `notes` plugin end to end; size limits; each use on record.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use warden::audit::Filter;
use warden::grant::{Access, Grant, MemoryGrant};
use warden::{CallError, Plugin};
use warden_tests::guests;

use crate::audited::Audited;

/// A runtime of its own with a memory store and an audit log in a temporary home.
struct WithMemory(Audited);

impl std::ops::Deref for WithMemory {
    type Target = Audited;

    fn deref(&self) -> &Audited {
        &self.0
    }
}

impl WithMemory {
    fn new() -> Self {
        Self(Audited::with_memory())
    }

    fn load(&self, name: &str, path: &str, memory: &[(&str, MemoryGrant)]) -> Plugin {
        let grant = Grant {
            memory: memory
                .iter()
                .map(|(n, g)| (n.to_string(), g.clone()))
                .collect::<BTreeMap<_, _>>(),
            ..Grant::default()
        };
        crate::load_into(&self.runtime, name, path, grant)
    }

    async fn call(&self, plugin: &Plugin, tool: &str, args: Value) -> Result<Value, CallError> {
        self.runtime.call_as("test", plugin, tool, &args).await
    }
}

fn rw() -> MemoryGrant {
    MemoryGrant::new(Access::ReadWrite)
}

#[tokio::test]
async fn notes_remember_recall_search_and_forget() {
    let m = WithMemory::new();
    let notes = m.load("notes", guests::NOTES, &[("notes", rw())]);
    let id = m
        .call(
            &notes,
            "remember",
            json!({"text": "The train to Lyon leaves at 9:40 from platform 3", "tags": ["travel"]}),
        )
        .await
        .unwrap();
    assert_eq!(id, json!("n1"));
    m.call(
        &notes,
        "remember",
        json!({"text": "Buy coffee beans and oat milk", "tags": ["shopping"]}),
    )
    .await
    .unwrap();
    m.call(
        &notes,
        "remember",
        json!({"text": "Lyon hotel: check-in after 3 pm", "tags": ["travel", "hotel"]}),
    )
    .await
    .unwrap();

    let note = m.call(&notes, "recall", json!({"id": "n1"})).await.unwrap();
    assert_eq!(note["tags"], json!(["travel"]));
    assert!(note["text"].as_str().unwrap().contains("platform 3"));

    let found = m
        .call(&notes, "search", json!({"query": "lyon train"}))
        .await
        .unwrap();
    let ids: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    // BM25: the note with both words ranks first; the coffee note does not match.
    assert_eq!(ids, ["n1", "n3"]);
    assert!(found[0]["snippet"].as_str().unwrap().contains("[Lyon]"));
    assert!(found[0]["score"].as_f64().unwrap() > found[1]["score"].as_f64().unwrap());

    let hotel = m
        .call(&notes, "search", json!({"query": "lyon", "tag": "hotel"}))
        .await
        .unwrap();
    assert_eq!(hotel.as_array().unwrap().len(), 1);
    assert_eq!(hotel[0]["id"], "n3");

    assert_eq!(
        m.call(&notes, "forget", json!({"id": "n1"})).await.unwrap(),
        json!(true)
    );
    assert_eq!(
        m.call(&notes, "recall", json!({"id": "n1"})).await.unwrap(),
        Value::Null
    );
    // Memory outlives the call (unlike the instance): a fresh runtime's view of the
    // same store would see n3; here the next call does.
    let again = m
        .call(&notes, "search", json!({"query": "hotel"}))
        .await
        .unwrap();
    assert_eq!(again[0]["id"], "n3");

    // Each operation is on record, with namespace and target.
    let uses = m
        .runtime
        .audit()
        .unwrap()
        .read(Filter {
            kind: Some("capability.use".into()),
            ..Filter::default()
        })
        .unwrap();
    assert!(uses.iter().any(|r| r.fields["op"] == "put-document"
        && r.fields["namespace"] == "notes"
        && r.fields["target"] == "n1"));
}

#[tokio::test]
async fn without_a_grant_memory_is_denied() {
    let m = WithMemory::new();
    let notes = m.load("notes", guests::NOTES, &[]);
    let err = m
        .call(&notes, "remember", json!({"text": "hello"}))
        .await
        .unwrap_err();
    let CallError::Denied { denials, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(denials[0].capability, "memory");
    assert_eq!(denials[0].target, "get notes");
    assert!(
        denials[0]
            .reason
            .contains("[memory] \"notes\" = \"read\" or \"read-write\""),
        "{denials:?}"
    );
    assert_eq!(warden::exit::code(&err), 3);
}

#[tokio::test]
async fn a_read_grant_reads_and_never_writes() {
    let m = WithMemory::new();
    let writer = m.load("notes", guests::NOTES, &[("notes", rw())]);
    m.call(&writer, "remember", json!({"text": "kept for readers"}))
        .await
        .unwrap();
    let reader = m.load(
        "notes",
        guests::NOTES,
        &[("notes", MemoryGrant::new(Access::Read))],
    );
    let found = m
        .call(&reader, "search", json!({"query": "readers"}))
        .await
        .unwrap();
    assert_eq!(found[0]["id"], "n1");
    let err = m
        .call(&reader, "forget", json!({"id": "n1"}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "denied", "{err}");
    assert!(err.to_string().contains("may only read"), "{err}");
    // Still there.
    let note = m
        .call(&reader, "recall", json!({"id": "n1"}))
        .await
        .unwrap();
    assert_eq!(note["text"], "kept for readers");
}

#[tokio::test]
async fn another_namespace_cannot_be_named_listed_or_guessed() {
    let m = WithMemory::new();
    let notes = m.load("notes", guests::NOTES, &[("notes", rw())]);
    m.call(&notes, "remember", json!({"text": "secret plans"}))
        .await
        .unwrap();
    // A plugin granted only "scratch" tries the notes namespace, and one that does not
    // exist: the same denial, so existence does not leak.
    let hostile = m.load("hostile", guests::HOSTILE, &[("scratch", rw())]);
    for namespace in ["notes", "no-such-namespace"] {
        let err = m
            .call(
                &hostile,
                "memory-read",
                json!({"namespace": namespace, "key": "next-id"}),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "denied", "{err}");
        assert!(
            err.to_string()
                .contains(&format!("no grant for memory namespace \"{namespace}\"")),
            "{err}"
        );
        let err = m
            .call(&hostile, "memory-list", json!({"namespace": namespace}))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "denied", "{err}");
    }
    // Its own namespace is empty: nothing of "notes" shows through.
    let keys = m
        .call(&hostile, "memory-list", json!({"namespace": "scratch"}))
        .await
        .unwrap();
    assert_eq!(keys, json!([]));
}

/// Keys and namespaces spelled like paths, with NUL bytes, case or a trailing slash
/// reach no other namespace (item 49): a namespace is a column of its own, and a
/// namespace name must be granted exactly.
#[tokio::test]
async fn keys_and_namespaces_spelled_to_reach_another_namespace_reach_nothing() {
    use warden::memory::Entry;
    let m = WithMemory::new();
    let store = m.runtime.memory().unwrap();
    let entry = |text: &str| Entry {
        value: text.as_bytes().to_vec(),
        content_type: "text/plain".into(),
        expires_at: None,
    };
    store.set("other", "secret", &entry("s3cret")).unwrap();
    store.set("scratch", "a", &entry("mine")).unwrap();
    let hostile = m.load("hostile", guests::HOSTILE, &[("scratch", rw())]);
    let read = |namespace: &str, key: &str| {
        m.call(
            &hostile,
            "memory-read",
            json!({"namespace": namespace, "key": key}),
        )
    };
    assert_eq!(read("scratch", "a").await.unwrap(), json!("mine"));
    for key in [
        "../other/secret",
        "other/secret",
        "/other/secret",
        "other\0secret",
        "secret",
        "scratch\0other",
        "a/",
        "A",
        "a\0",
    ] {
        assert_eq!(read("scratch", key).await.unwrap(), Value::Null, "{key:?}");
    }
    for namespace in [
        "scratch/../other",
        "../other",
        "other\0scratch",
        "scratch\0",
        "Scratch",
        "scratch ",
        "scratch/",
    ] {
        let err = read(namespace, "secret").await.unwrap_err();
        assert_eq!(err.code(), "denied", "{namespace:?}: {err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
        let records = m.runtime.audit().unwrap().read(Filter::default()).unwrap();
        let denied = records
            .iter()
            .rfind(|r| r.kind == "capability.denied")
            .unwrap();
        assert_eq!(denied.fields["target"], json!(format!("get {namespace}")));
    }
    let keys = m.call(&hostile, "memory-list", json!({"namespace": "scratch"}));
    assert_eq!(keys.await.unwrap(), json!(["a"]));
}

/// A guest looping over the interface cannot turn host memory or the audit log into
/// its amplifier: a huge key is refused before it is copied anywhere, a call makes at
/// most so many operations, and only the first are recorded one by one.
#[tokio::test]
async fn a_flood_of_memory_operations_is_bounded_per_call() {
    let m = WithMemory::new();
    let hostile = m.load("hostile", guests::HOSTILE, &[("scratch", rw())]);
    let err = m
        .call(
            &hostile,
            "memory-flood",
            json!({"namespace": "scratch", "key-bytes": 8 << 20, "count": 3}),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("after 0 reads") && err.to_string().contains("1 to 1024 bytes"),
        "{err}"
    );
    let max = warden::capabilities::memory::MAX_OPS;
    let err = m
        .call(
            &hostile,
            "memory-flood",
            json!({"namespace": "scratch", "key-bytes": 8, "count": max + 5}),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&format!("after {max} reads"))
            && err.to_string().contains("at most"),
        "{err}"
    );
    // On the record: the first operations one by one, the rest counted.
    let audit = m.runtime.audit().unwrap();
    let uses = audit
        .read(Filter {
            kind: Some("capability.use".into()),
            limit: Some(100_000),
            ..Filter::default()
        })
        .unwrap();
    let memory: Vec<_> = uses
        .iter()
        .filter(|r| r.fields.get("capability") == Some(&json!("memory")))
        .collect();
    let one_by_one = memory
        .iter()
        .filter(|r| r.fields.get("op").is_some())
        .count();
    let counted: u64 = memory
        .iter()
        .filter_map(|r| r.fields.get("unrecorded").and_then(Value::as_u64))
        .sum();
    let recorded = warden::capabilities::memory::MAX_RECORDED;
    assert_eq!(one_by_one, recorded);
    assert_eq!(counted, u64::from(max) - recorded as u64);
    // The host serves the next call as ever.
    let keys = m
        .call(&hostile, "memory-list", json!({"namespace": "scratch"}))
        .await
        .unwrap();
    assert_eq!(keys, json!([]));
}

#[tokio::test]
async fn sizes_are_limited_per_value_and_per_namespace() {
    let m = WithMemory::new();
    let small = MemoryGrant {
        access: Access::ReadWrite,
        max_value_kb: 1,
        max_namespace_mb: 1,
    };
    let notes = m.load("notes", guests::NOTES, &[("notes", small)]);
    m.call(&notes, "remember", json!({"text": "x".repeat(500)}))
        .await
        .unwrap();
    let err = m
        .call(&notes, "remember", json!({"text": "x".repeat(2000)}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "tool-error", "{err}");
    assert!(err.to_string().contains("max_value_kb"), "{err}");
}

#[test]
fn memory_grants_parse_short_and_long_and_refuse_bad_names() {
    let grant = Grant::parse(
        "[memory]\nnotes = \"read-write\"\n\"cache.v1\" = { access = \"read\", max_value_kb = 8 }\n",
        "p",
    )
    .unwrap();
    assert_eq!(grant.memory["notes"], MemoryGrant::new(Access::ReadWrite));
    assert_eq!(grant.memory["cache.v1"].access, Access::Read);
    assert_eq!(grant.memory["cache.v1"].max_value_kb, 8);
    let err = |t: &str| format!("{:#}", Grant::parse(t, "p").unwrap_err());
    assert!(err("[memory]\n\"Bad Name\" = \"read\"\n").contains("a namespace is 1 to 64"));
    assert!(err("[memory]\nnotes = \"write\"\n").contains("unknown variant"));
    assert!(err("[memory]\nnotes = { access = \"read\", size = 3 }\n").contains("size"));
}
