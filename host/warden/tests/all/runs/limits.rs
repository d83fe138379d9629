//! The per-run limits of an agent's grant (`[agent]`): steps, tokens, wall time. Each
//! ends the run failed, saying which limit and where it is set.

use serde_json::json;
use warden::grant::AgentGrant;
use warden::runs::store::Status;

use super::{AgentSpec, bump, setup};
use crate::models::{Fake, Reply, config, provider, route};

#[tokio::test]
async fn a_run_stops_at_its_step_limit() {
    let s = setup(
        AgentSpec {
            limits: AgentGrant {
                max_steps: 3,
                ..AgentGrant::default()
            },
            ..AgentSpec::default()
        },
        None,
        None,
    );
    // The last entry repeats: the agent would bump forever.
    let run = s.run(json!([bump("a", "k")])).await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.error.as_deref(),
        Some("the run reached its step limit: 3 steps ([agent] max_steps)")
    );
    assert_eq!(s.tally("k"), 3);
    assert_eq!(s.records("run.end")[0].fields["status"], "failed");
}

#[tokio::test]
async fn a_run_stops_at_its_token_limit() {
    let answer = Reply::json(
        200,
        json!({
            "choices": [{"message": {"role": "assistant", "content": "more"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 20},
        }),
    );
    let fake = Fake::start(vec![], answer).await;
    let router = warden::models::Router::new(config(
        vec![(
            "fake",
            provider(warden::models::ProviderKind::Openai, fake.url()),
        )],
        vec![(
            "smart",
            route(&["fake/m"], warden::models::Strategy::Fallback),
        )],
    ))
    .unwrap();
    let s = setup(
        AgentSpec {
            routes: vec!["smart"],
            limits: AgentGrant {
                max_tokens: 100,
                ..AgentGrant::default()
            },
            ..AgentSpec::default()
        },
        Some(router),
        None,
    );
    let run = s
        .run(json!([{ "model": { "route": "smart", "prompt": "go on" } }]))
        .await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.error.as_deref(),
        Some(
            "the run reached its token limit: it used 120 tokens, the limit is 100 ([agent] max_tokens)"
        )
    );
    assert_eq!(run.tokens, 120);
    assert_eq!(fake.received().len(), 2);
    // The second call was asked for no more than what was left.
    assert_eq!(fake.received()[1].body["max_tokens"], 40);
}

#[tokio::test]
async fn a_run_stops_at_its_time_limit() {
    let s = setup(
        AgentSpec {
            limits: AgentGrant {
                max_wall_ms: 300,
                ..AgentGrant::default()
            },
            ..AgentSpec::default()
        },
        None,
        None,
    );
    let slow = json!({ "call": [{ "id": "a", "tool": "tally/bump", "arguments": { "key": "k", "sleep-ms": 200 } }] });
    let run = s.run(json!([slow])).await;
    assert_eq!(run.status, Status::Failed);
    let error = run.error.unwrap();
    assert!(
        error.starts_with("the run reached its time limit")
            && error.contains("[agent] max_wall_ms"),
        "{error}"
    );
}
