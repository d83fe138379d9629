//! Runs parked for a person: a tool call a policy holds (approved, rejected, approved
//! with edited arguments), a question asked (answered, declined), a decision the policy
//! refuses, and cancelling a parked run.

use std::sync::Arc;

use serde_json::json;
use warden::policy::{Action, Decide, Decision, Principal, Request, Resource};
use warden::runs::RunError;
use warden::runs::store::{Decision as State, Status, Verdict};

use super::{AgentSpec, Setup, bump, observations, operator, setup};

/// Holds `tally/bump` for a person when its key starts with `big`, refuses the key
/// `forbidden`, and lets no one but the operator decide approvals.
struct Hold;

impl Decide for Hold {
    fn decide(&self, request: &Request<'_>) -> Decision {
        let allow = Decision::Allow {
            policies: vec!["allow-rest".into()],
        };
        match (request.action, request.resource) {
            (Action::CallTool, Resource::Tool { tool, .. }) if tool == "bump" => {
                let key = request.context["key"].as_str().unwrap_or("");
                if key == "forbidden" {
                    Decision::Deny {
                        policies: vec!["forbid-key".into()],
                        reason: "forbidden by policy forbid-key".into(),
                    }
                } else if key.starts_with("big") {
                    Decision::RequireApproval {
                        policies: vec!["hold-big".into()],
                    }
                } else {
                    allow
                }
            }
            (Action::DecideApproval, _) if request.principal.id != "local:tester" => {
                Decision::Deny {
                    policies: vec![],
                    reason: "no policy permits it".into(),
                }
            }
            _ => allow,
        }
    }
}

fn held() -> Setup {
    setup(AgentSpec::default(), None, Some(Arc::new(Hold)))
}

/// Runs `bump big` then finishes; returns the parked run's approval id.
async fn park(s: &Setup) -> (String, String) {
    let run = s.run(json!([bump("a", "big"), { "finish": "ok" }])).await;
    assert_eq!(run.status, Status::AwaitingApproval, "{run:?}");
    let pending = s.runner.approvals(false).unwrap();
    assert_eq!(pending.len(), 1);
    let approval = &pending[0];
    assert_eq!(approval.kind, "tool");
    assert_eq!(approval.tool.as_deref(), Some("tally/bump"));
    assert_eq!(approval.arguments, Some(json!({ "key": "big" })));
    assert_eq!(approval.policies, ["hold-big"]);
    assert_eq!(s.tally("big"), 0, "a held call has not run");
    (run.id, approval.id.clone())
}

#[tokio::test]
async fn a_held_call_parks_the_run_until_approved_then_the_run_completes() {
    let s = held();
    let (run, approval) = park(&s).await;
    // Driving a parked run does nothing.
    assert_eq!(
        s.runner.drive(&run).await.unwrap().status,
        Status::AwaitingApproval
    );
    let decided = s
        .runner
        .decide(
            &approval,
            &operator(),
            Verdict::Approve {
                edited: None,
                answer: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(decided.status, State::Approved);
    assert_eq!(decided.decided_by.as_deref(), Some("local:tester"));
    assert_eq!(s.runner.run(&run).unwrap().status, Status::Running);
    let done = s.runner.drive(&run).await.unwrap();
    assert_eq!(observations(&done), json!([{ "tools": { "a": 1 } }]));
    assert_eq!(s.tally("big"), 1);
    let request = &s.records("approval.request")[0];
    assert_eq!(request.fields["policies"], json!(["hold-big"]));
    let decision = &s.records("approval.decide")[0];
    assert_eq!(decision.principal, "local:tester");
    assert_eq!(decision.fields["verdict"], "approve");
    // Deciding twice is refused.
    let again = s
        .runner
        .decide(
            &approval,
            &operator(),
            Verdict::Approve {
                edited: None,
                answer: None,
            },
        )
        .await
        .unwrap_err();
    assert!(
        again
            .to_string()
            .contains("is not pending: it was approved by local:tester"),
        "{again}"
    );
}

#[tokio::test]
async fn a_rejected_call_is_never_run_and_the_agent_sees_the_reason() {
    let s = held();
    let (run, approval) = park(&s).await;
    s.runner
        .decide(
            &approval,
            &operator(),
            Verdict::Reject {
                reason: "too big".into(),
            },
        )
        .await
        .unwrap();
    let done = s.runner.drive(&run).await.unwrap();
    assert_eq!(
        observations(&done),
        json!([{ "tools": { "a": { "denied": "a person rejected the call (local:tester): too big" } } }])
    );
    assert_eq!(s.tally("big"), 0);
    assert_eq!(s.records("approval.decide")[0].fields["reason"], "too big");
}

#[tokio::test]
async fn an_approval_with_edited_arguments_runs_the_call_with_them() {
    let s = held();
    let (run, approval) = park(&s).await;
    let edited = json!({ "key": "smaller" });
    s.runner
        .decide(
            &approval,
            &operator(),
            Verdict::Approve {
                edited: Some(edited.clone()),
                answer: None,
            },
        )
        .await
        .unwrap();
    let done = s.runner.drive(&run).await.unwrap();
    assert_eq!(observations(&done), json!([{ "tools": { "a": 1 } }]));
    assert_eq!((s.tally("big"), s.tally("smaller")), (0, 1));
    let decision = &s.records("approval.decide")[0];
    assert!(
        decision.fields["edited_arguments"]["sha256"].is_string(),
        "{decision:?}"
    );
    // Edited arguments must be an object.
    let (_, second) = park(&s).await;
    let err = s
        .runner
        .decide(
            &second,
            &operator(),
            Verdict::Approve {
                edited: Some(json!([1])),
                answer: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the edited arguments must be a JSON object keyed by parameter name"
    );
}

#[tokio::test]
async fn a_call_the_policy_forbids_is_denied_with_the_policy_named() {
    let s = held();
    let run = s
        .run(json!([bump("a", "forbidden"), { "finish": 0 }]))
        .await;
    assert_eq!(
        observations(&run),
        json!([{ "tools": { "a": { "denied": "the access policy refuses tally/bump to agent:scripted: forbidden by policy forbid-key (forbid-key)" } } }])
    );
    let decision = &s.records("run.decision")[0];
    assert_eq!(decision.fields["policies"], json!(["forbid-key"]));
    assert_eq!(decision.principal, "agent:scripted");
}

#[tokio::test]
async fn deciding_is_checked_by_the_policy() {
    let s = held();
    let (_, approval) = park(&s).await;
    let mallory = Principal {
        id: "user:mallory".into(),
        roles: vec![],
        on_behalf_of: None,
    };
    let err = s
        .runner
        .decide(
            &approval,
            &mallory,
            Verdict::Approve {
                edited: None,
                answer: None,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RunError::Denied(_)), "{err}");
    assert_eq!(
        err.to_string(),
        format!("user:mallory may not decide approval {approval}: no policy permits it")
    );
    assert_eq!(s.runner.approvals(false).unwrap().len(), 1, "still pending");
}

#[tokio::test]
async fn a_question_waits_for_an_answer_or_a_refusal() {
    let s = setup(AgentSpec::default(), None, None);
    let script = json!([
        { "ask": "Refund it?", "schema": { "type": "object", "required": ["yes"] } },
        { "finish": "asked" },
    ]);
    let run = s.run(script.clone()).await;
    assert_eq!(run.status, Status::AwaitingApproval);
    let question = s.runner.approvals(false).unwrap().remove(0);
    assert_eq!(question.kind, "question");
    assert_eq!(question.question.as_deref(), Some("Refund it?"));
    let err = s
        .runner
        .decide(
            &question.id,
            &operator(),
            Verdict::Approve {
                edited: None,
                answer: Some(json!({})),
            },
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the answer lacks the required key \"yes\""),
        "{err}"
    );
    s.runner
        .decide(
            &question.id,
            &operator(),
            Verdict::Approve {
                edited: None,
                answer: Some(json!({ "yes": true })),
            },
        )
        .await
        .unwrap();
    let done = s.runner.drive(&run.id).await.unwrap();
    assert_eq!(observations(&done), json!([{ "answer": { "yes": true } }]));

    let run = s.run(script).await;
    let question = s.runner.approvals(false).unwrap().remove(0);
    s.runner
        .decide(
            &question.id,
            &operator(),
            Verdict::Reject {
                reason: "not mine".into(),
            },
        )
        .await
        .unwrap();
    let done = s.runner.drive(&run.id).await.unwrap();
    assert_eq!(
        observations(&done),
        json!([{ "denied": "local:tester declined to answer: not mine" }])
    );
}

#[tokio::test]
async fn cancelling_a_parked_run_ends_it_and_its_approvals() {
    let s = held();
    let (run, approval) = park(&s).await;
    let cancelled = s.runner.cancel(&run, "local:tester").await.unwrap();
    assert_eq!(cancelled.status, Status::Cancelled);
    assert_eq!(
        cancelled.error.as_deref(),
        Some("cancelled by local:tester")
    );
    let err = s
        .runner
        .decide(
            &approval,
            &operator(),
            Verdict::Approve {
                edited: None,
                answer: None,
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cancelled with its run"), "{err}");
    assert_eq!(s.tally("big"), 0);
}
