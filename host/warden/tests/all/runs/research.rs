//! The bundled example agent `research`: it fetches pages through the `fetch` plugin
//! (granted one host on 127.0.0.1; another URL is refused by the host) and answers from
//! them through a fake model route.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use warden::grant::{Grant, ModelsGrant, NetGrant, ToolsGrant};
use warden::models::{ProviderKind, Router, Strategy};
use warden::runs::store::{RunStore, Status};
use warden::runs::{Plugins, Runner};
use warden::{Plugin, Runtime};
use warden_tests::guests;

use super::operator;
use crate::models::{Fake, Reply, config, provider, route};

#[tokio::test]
async fn research_reads_the_granted_pages_and_answers_from_them() {
    let site = Fake::start(
        vec![],
        Reply::json(
            200,
            json!({ "fact": "Warden keeps every call in a hash-chained audit log." }),
        ),
    )
    .await;
    let model = Fake::start(
        vec![],
        Reply::json(
            200,
            json!({
                "choices": [{"message": {"role": "assistant", "content": "A hash-chained audit log (from the page)."}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 80, "completion_tokens": 9},
            }),
        ),
    )
    .await;
    let runtime = Runtime::new().unwrap();
    let router = Router::new(config(
        vec![("fake", provider(ProviderKind::Openai, model.url()))],
        vec![("smart", route(&["fake/m"], Strategy::Fallback))],
    ))
    .unwrap();
    runtime.set_router(Arc::new(router)).unwrap();
    let agent = Grant {
        tools: Some(ToolsGrant {
            allow: vec!["fetch/get".into()],
        }),
        models: Some(ModelsGrant {
            routes: vec!["smart".into()],
            ..ModelsGrant::default()
        }),
        ..Grant::default()
    };
    let fetch = Grant {
        net: Some(NetGrant {
            allow: vec![site.url()],
            ..NetGrant::default()
        }),
        ..Grant::default()
    };
    let plugins: BTreeMap<String, Arc<Plugin>> = [
        ("research", guests::RESEARCH, agent),
        ("fetch", guests::FETCH, fetch),
    ]
    .into_iter()
    .map(|(name, path, grant)| {
        (
            name.to_string(),
            Arc::new(crate::load_into(&runtime, name, path, grant)),
        )
    })
    .collect();
    let plugins: Arc<dyn Plugins> = Arc::new(plugins);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RunStore::open(&dir.path().join("runs.db")).unwrap());
    let runner = Runner::new(Arc::new(runtime), plugins, store);

    let page = format!("{}/about", site.url());
    let task = json!({
        "question": "How does Warden keep its records?",
        "urls": [page, "http://127.0.0.9:9/elsewhere"],
    });
    let run = runner
        .start(
            "research",
            task,
            &warden::Caller::new(operator(), warden::Via::Library),
        )
        .await
        .unwrap();
    let run = runner.drive(&run.id).await.unwrap();
    assert_eq!(run.status, Status::Finished, "{run:?}");
    let result = run.result.unwrap();
    assert_eq!(
        result["answer"],
        "A hash-chained audit log (from the page)."
    );
    assert_eq!(result["sources"], json!([page]));
    let failed = result["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{result}");
    assert_eq!(failed[0]["call"], "u1");
    // The model read the page.
    let prompt = model.received()[0].body["messages"][1]["content"].clone();
    assert!(
        prompt.as_str().unwrap().contains("hash-chained audit log"),
        "{prompt}"
    );
}
