//! Hybrid memory search: with `[memory] embedding_route` set, documents are embedded on
//! write and search fuses BM25 with vector similarity, through a fake OpenAI-compatible
//! embeddings provider on 127.0.0.1. Its vectors put synonyms on one axis, so a note
//! that shares no word with the query is found only by meaning.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::http::StatusCode;
use serde_json::{Value, json};
use warden::Runtime;
use warden::config::home::Config;
use warden::grant::{Access, Grant, MemoryGrant};
use warden::memory::{Embedder, SqliteMemory};
use warden_tests::guests;

/// Words on the same axis mean the same thing to the fake model.
const CONCEPTS: [&[&str]; 3] = [
    &["car", "automobile", "vehicle", "sedan"],
    &["cat", "kitten", "feline"],
    &["bank", "money", "loan", "mortgage"],
];

fn embed(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; 8];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let word = word.to_lowercase();
        match CONCEPTS.iter().position(|c| c.contains(&word.as_str())) {
            Some(axis) => v[axis] += 1.0,
            None => v[3 + word.len() % 5] += 0.1,
        }
    }
    v
}

/// A fake provider speaking `POST /v1/embeddings`; `fail` makes it answer 500.
struct FakeEmbeddings {
    url: String,
    requests: Arc<AtomicU32>,
}

impl FakeEmbeddings {
    async fn start(fail: bool) -> Self {
        let requests = Arc::new(AtomicU32::new(0));
        let seen = requests.clone();
        let app = axum::Router::new().route(
            "/v1/embeddings",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let seen = seen.clone();
                async move {
                    seen.fetch_add(1, Ordering::SeqCst);
                    if fail {
                        let error = json!({"error": {"message": "overloaded"}});
                        return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(error));
                    }
                    assert_eq!(body["model"], "fake-embed");
                    let data: Vec<Value> = body["input"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .enumerate()
                        .map(|(i, t)| json!({"index": i, "embedding": embed(t.as_str().unwrap())}))
                        .collect();
                    (
                        StatusCode::OK,
                        axum::Json(json!({
                            "object": "list",
                            "data": data,
                            "usage": {"prompt_tokens": 3, "total_tokens": 3},
                        })),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, requests }
    }

    fn config(&self) -> String {
        format!(
            r#"
[memory]
embedding_route = "embed"

[models.providers.local]
kind = "openai"
base_url = "{}"

[models.routes.embed]
targets = ["local/fake-embed"]
"#,
            self.url
        )
    }
}

fn embedder(config: &str) -> Embedder {
    let config = Config::parse(config, "test config").unwrap();
    Embedder::from_config(&config.memory, &config.models)
        .unwrap()
        .expect("an embedding route is set")
}

/// A runtime with a memory store in a temporary home and `fake` as its embedder.
fn with_embedder(fake: &FakeEmbeddings) -> (tempfile::TempDir, Runtime) {
    let home = tempfile::tempdir().unwrap();
    let runtime = Runtime::new().unwrap();
    let store = SqliteMemory::open(&home.path().join("memory.db")).unwrap();
    runtime.set_memory(Arc::new(store)).unwrap();
    runtime
        .set_embedder(Arc::new(embedder(&fake.config())))
        .unwrap();
    (home, runtime)
}

/// The `model.call` records of `audit`, oldest first.
fn model_calls(audit: &warden::audit::Audit) -> Vec<warden::audit::Record> {
    audit
        .read(warden::audit::Filter {
            kind: Some("model.call".into()),
            ..Default::default()
        })
        .unwrap()
}

/// The `notes` plugin, granted its namespace.
fn notes_plugin(runtime: &Runtime) -> warden::Plugin {
    let grant = Grant {
        memory: [("notes".to_string(), MemoryGrant::new(Access::ReadWrite))].into(),
        ..Grant::default()
    };
    crate::load_into(runtime, "notes", guests::NOTES, grant)
}

const NOTES: [(&str, &str); 4] = [
    ("n1", "Booked a sedan for the airport transfer"),
    ("n2", "The kitten needs its vaccination on Friday"),
    ("n3", "Mortgage paperwork is due at the end of the month"),
    ("n4", "Airport lounge access is included with the ticket"),
];

#[tokio::test]
async fn notes_are_found_by_meaning_and_by_words() {
    let fake = FakeEmbeddings::start(false).await;
    let (_home, runtime) = with_embedder(&fake);
    let notes = notes_plugin(&runtime);
    for (id, text) in NOTES {
        let args = json!({"id": id, "text": text});
        runtime.call(&notes, "remember", &args).await.unwrap();
    }
    assert_eq!(
        fake.requests.load(Ordering::SeqCst),
        4,
        "one embedding per note"
    );
    let search = |query: &str| {
        let args = json!({"query": query});
        let runtime = &runtime;
        let notes = &notes;
        async move {
            let found = runtime.call(notes, "search", &args).await.unwrap();
            found
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    // No note says "car": only the vector side finds the sedan.
    assert_eq!(search("car").await.first().map(String::as_str), Some("n1"));
    // "cat" finds the kitten, "loan" the mortgage.
    assert_eq!(search("cat").await.first().map(String::as_str), Some("n2"));
    assert_eq!(search("loan").await.first().map(String::as_str), Some("n3"));
    // Words and meaning agree on n1 for "airport vehicle": it ranks above n4, which
    // only shares the word.
    let both = search("airport vehicle").await;
    assert_eq!(&both[..2], ["n1", "n4"], "{both:?}");

    // Rewriting a note replaces its vector; forgetting it removes it.
    let args = json!({"id": "n1", "text": "Booked a table for dinner"});
    runtime.call(&notes, "remember", &args).await.unwrap();
    assert!(!search("car").await.contains(&"n1".to_string()));
    runtime
        .call(&notes, "forget", &json!({"id": "n2"}))
        .await
        .unwrap();
    assert!(!search("cat").await.contains(&"n2".to_string()));
}

/// Every request a guest's memory operation makes to the embedding route is on the
/// call's record, as a model call of that route, answered or not.
#[tokio::test]
async fn embedding_requests_are_on_the_record_of_the_call_that_made_them() {
    let fake = FakeEmbeddings::start(false).await;
    let (home, runtime) = with_embedder(&fake);
    let audit = warden::audit::Audit::open(home.path(), Default::default()).unwrap();
    runtime.set_audit(audit.clone()).unwrap();
    let notes = notes_plugin(&runtime);
    let args = json!({"id": "n1", "text": "Booked a sedan"});
    runtime.call(&notes, "remember", &args).await.unwrap();
    runtime
        .call(&notes, "search", &json!({"query": "car"}))
        .await
        .unwrap();
    let records = model_calls(&audit);
    assert_eq!(records.len(), 2, "{records:?}");
    for record in &records {
        assert_eq!(record.plugin.as_deref(), Some("notes"));
        assert_eq!(record.fields["route"], "embed");
        assert_eq!(record.fields["target"], "local/fake-embed");
        assert_eq!(record.fields["input_tokens"], 3);
        assert!(record.fields["call"].is_u64(), "{record:?}");
    }
}

/// Embeddings count against the daily budgets like any model call: past the embedding
/// route's budget a document is stored without its embedding (found by its words),
/// and the refusal is on the record.
#[tokio::test]
async fn embeddings_are_held_to_the_routes_daily_budget() {
    let fake = FakeEmbeddings::start(false).await;
    let config = format!(
        "{}\n[models.budgets.routes.embed]\ntokens_per_day = 4\n",
        fake.config()
    );
    let (home, runtime) = with_embedder(&fake);
    let models = Config::parse(&config, "test config").unwrap().models;
    runtime
        .set_router(Arc::new(warden::models::Router::new(models).unwrap()))
        .unwrap();
    let audit = warden::audit::Audit::open(home.path(), Default::default()).unwrap();
    runtime.set_audit(audit.clone()).unwrap();
    let notes = notes_plugin(&runtime);
    for (id, text) in [("n1", "Booked a sedan"), ("n2", "A kitten")] {
        let args = json!({"id": id, "text": text});
        runtime.call(&notes, "remember", &args).await.unwrap();
    }
    // The first used 3 of the 4 tokens; the second (about 2 more) would pass them.
    assert_eq!(fake.requests.load(Ordering::SeqCst), 1);
    let records = model_calls(&audit);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0].fields["input_tokens"], 3);
    let refused = records[1].fields["error"].as_str().unwrap();
    assert!(refused.starts_with("not embedded"), "{refused}");
    assert!(refused.contains("budget"), "{refused}");
    // Stored all the same, and found by its words.
    let found = runtime
        .call(&notes, "search", &json!({"query": "kitten"}))
        .await
        .unwrap();
    assert_eq!(found[0]["id"], "n2", "{found}");
}

#[tokio::test]
async fn a_failing_embedding_route_loses_nothing() {
    let fake = FakeEmbeddings::start(true).await;
    let home = tempfile::tempdir().unwrap();
    let store = SqliteMemory::open(&home.path().join("memory.db")).unwrap();
    let embedder = embedder(&fake.config());
    let doc = warden::memory::Document {
        id: "d1".into(),
        text: "Mortgage paperwork".into(),
        metadata: "{}".into(),
    };
    // The write is kept (found by full text), the search answers by full text.
    warden::memory::hybrid::put_document(&store, Some(&embedder), "ns", &doc)
        .await
        .unwrap();
    let hits = warden::memory::hybrid::search(&store, Some(&embedder), "ns", "mortgage", &[], 5)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, "d1");
    assert_eq!(fake.requests.load(Ordering::SeqCst), 2);
    // Nothing is found by meaning alone without vectors.
    let hits = warden::memory::hybrid::search(&store, Some(&embedder), "ns", "loan", &[], 5)
        .await
        .unwrap();
    assert!(hits.is_empty());
}

#[test]
fn an_embedding_route_must_exist_and_speak_openai() {
    let unknown = Config::parse("[memory]\nembedding_route = \"nope\"\n", "t").unwrap();
    let err = Embedder::from_config(&unknown.memory, &unknown.models)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"nope\"") && err.contains("[models.routes]"),
        "{err}"
    );
    let anthropic = Config::parse(
        r#"
[memory]
embedding_route = "embed"
[models.providers.claude]
kind = "anthropic"
base_url = "http://127.0.0.1:1"
[models.routes.embed]
targets = ["claude/some-model"]
"#,
        "t",
    )
    .unwrap();
    let err = Embedder::from_config(&anthropic.memory, &anthropic.models)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"claude\"") && err.contains("OpenAI-compatible"),
        "{err}"
    );
    let typo = Config::parse("[memory]\nembedding_rout = \"x\"\n", "t");
    let err = format!("{:#}", typo.unwrap_err());
    assert!(err.contains("embedding_rout"), "{err}");
}

#[test]
fn the_cli_searches_by_meaning_with_the_home_config() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = rt.block_on(FakeEmbeddings::start(false));
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("warden.toml"), fake.config()).unwrap();
    let warden = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("--home")
            .arg(home.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    for (id, text) in NOTES {
        warden(&["memory", "put", "kb", id, text, "--document"]);
    }
    let out = warden(&["memory", "search", "kb", "automobile"]);
    let first = out.lines().next().unwrap_or_default();
    assert!(first.contains("n1"), "{out}");
    drop(rt);
}
