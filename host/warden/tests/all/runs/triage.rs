//! The bundled example agent `triage` with the `notes` and `refunds` plugins, a fake
//! model that classifies the ticket and drafts the reply, and the access policy that
//! ships with `refunds` (`plugins/refunds/policy.cedar`): a refund of 150 parks the run
//! until a person other than its starter approves it, then the refund is issued once.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use warden::audit::{Audit, AuditOptions};
use warden::grant::{Access, Grant, MemoryGrant, ModelsGrant, ToolsGrant};
use warden::memory::{Document, SqliteMemory, Store as _};
use warden::models::{ProviderKind, Router, Strategy};
use warden::policy::{ArgType, CedarPolicy, PolicyFile, PolicySource};
use warden::runs::store::{RunStore, Status, Verdict};
use warden::runs::{Plugins, Runner};
use warden::{Plugin, Runtime};
use warden_tests::guests;

use super::operator;
use crate::models::{Fake, Reply, config, provider, route};

const REFUNDS_POLICY: &str = include_str!("../../../../../plugins/refunds/policy.cedar");

fn answer(text: &str) -> Reply {
    Reply::json(
        200,
        json!({
            "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 10},
        }),
    )
}

fn memory_grant(namespace: &str) -> Grant {
    Grant {
        memory: BTreeMap::from([(namespace.to_string(), MemoryGrant::new(Access::ReadWrite))]),
        ..Grant::default()
    }
}

#[tokio::test]
async fn triage_classifies_searches_drafts_and_refunds_once_a_person_approves() {
    let fake = Fake::start(
        vec![
            answer("{\"category\": \"refund\", \"amount\": 150}"),
            answer("Sorry about the broken kettle: your refund is on its way."),
        ],
        answer("unexpected"),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new().unwrap();
    runtime
        .set_audit(Audit::open(dir.path(), AuditOptions::default()).unwrap())
        .unwrap();
    let memory = Arc::new(SqliteMemory::open(&dir.path().join("memory.db")).unwrap());
    memory
        .put_document(
            "notes",
            &Document {
                id: "n1".into(),
                text: "Broken kettle: refund the order in full, no need to send it back.".into(),
                metadata: "{}".into(),
            },
        )
        .unwrap();
    runtime.set_memory(memory.clone()).unwrap();
    let router = Router::new(config(
        vec![("fake", provider(ProviderKind::Openai, fake.url()))],
        vec![("smart", route(&["fake/m"], Strategy::Fallback))],
    ))
    .unwrap();
    runtime.set_router(Arc::new(router)).unwrap();
    let policy = CedarPolicy::new(&PolicySource {
        roles: warden::config::home::builtin_roles(),
        args: BTreeMap::from([("amount".to_string(), ArgType::Long)]),
        file: Some(PolicyFile {
            path: "policy.cedar".into(),
            text: REFUNDS_POLICY.into(),
        }),
    })
    .unwrap();
    runtime.set_policy(Arc::new(policy)).unwrap();
    let agent = Grant {
        tools: Some(ToolsGrant {
            allow: vec!["notes/search".into(), "refunds/issue".into()],
        }),
        models: Some(ModelsGrant {
            routes: vec!["smart".into()],
            ..ModelsGrant::default()
        }),
        ..Grant::default()
    };
    let plugins: BTreeMap<String, Arc<Plugin>> = [
        ("triage", guests::TRIAGE, agent),
        ("notes", guests::NOTES, memory_grant("notes")),
        ("refunds", guests::REFUNDS, memory_grant("refunds")),
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
    let store = Arc::new(RunStore::open(&dir.path().join("runs.db")).unwrap());
    let runner = Runner::new(Arc::new(runtime), plugins, store);

    let task =
        json!({ "ticket": "My kettle arrived broken, I want my 150 back.", "order": "A-17" });
    let run = runner
        .start(
            "triage",
            task,
            &warden::Caller::new(operator(), warden::Via::Library),
        )
        .await
        .unwrap();
    let run = runner.drive(&run.id).await.unwrap();
    assert_eq!(run.status, Status::AwaitingApproval, "{run:?}");
    let approval = runner.approvals(false).unwrap().remove(0);
    assert_eq!(approval.tool.as_deref(), Some("refunds/issue"));
    assert_eq!(approval.arguments.as_ref().unwrap()["amount"], 150);
    assert!(
        approval
            .policies
            .contains(&"refunds-above-100-need-approval".to_string()),
        "{:?}",
        approval.policies
    );
    let refunds = |key: &str| memory.get("refunds", key, warden::memory::now()).unwrap();
    assert!(
        refunds("next-id").is_none(),
        "no refund before the approval"
    );

    // Approved by a second person: the operator started the run, and by default the
    // starter of a run may not approve its own holds.
    let reviewer = warden::policy::Principal::new("user:reviewer", vec!["admin".into()]);
    let refused = runner
        .decide(
            &approval.id,
            &operator(),
            Verdict::Approve {
                edited: None,
                answer: None,
            },
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("four eyes"), "{refused}");
    runner
        .decide(
            &approval.id,
            &reviewer,
            Verdict::Approve {
                edited: None,
                answer: None,
            },
        )
        .await
        .unwrap();
    let run = runner.drive(&run.id).await.unwrap();
    assert_eq!(run.status, Status::Finished, "{run:?}");
    let result = run.result.unwrap();
    assert_eq!(result["category"], "refund");
    assert_eq!(result["notes"], json!(["n1"]));
    assert_eq!(
        result["reply"],
        "Sorry about the broken kettle: your refund is on its way."
    );
    assert_eq!(
        result["refund"],
        json!({ "id": "r1", "order": "A-17", "amount": 150, "reason": "My kettle arrived broken, I want my 150 back." })
    );
    assert_eq!(
        String::from_utf8(refunds("next-id").unwrap().value).unwrap(),
        "1"
    );
    // The draft was written with the note the search found.
    let draft: Value = fake.received()[1].body.clone();
    assert!(
        draft["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("[Broken] [kettle]"),
        "{draft}"
    );
}
