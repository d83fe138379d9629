//! Runs that finish, tools the agent is not granted, and agents that misbehave.

use serde_json::json;
use warden::runs::store::{CallState, Status};

use super::{AgentSpec, bump, observations, setup};
use crate::models::{Fake, Reply, config, provider, route};

#[tokio::test]
async fn a_run_calls_tools_step_by_step_and_finishes() {
    let s = setup(AgentSpec::default(), None, None);
    let run = s
        .run(json!([
            bump("a", "k"),
            { "call": [
                { "id": "b", "tool": "tally/bump", "arguments": { "key": "k" } },
                { "id": "c", "tool": "tally/count", "arguments": { "key": "k" } },
            ] },
            { "finish": "done" },
        ]))
        .await;
    assert_eq!(
        observations(&run),
        json!([{ "tools": { "a": 1 } }, { "tools": { "b": 2, "c": 2 } }])
    );
    assert_eq!(run.result.as_ref().unwrap()["result"], "done");
    assert_eq!(run.steps, 3);
    assert_eq!(s.tally("k"), 2);
    // Every step is on record, each action with its observation.
    let steps = s.runner.store().steps(&run.id).unwrap();
    assert_eq!(steps.len(), 3);
    assert!(steps[..2].iter().all(|step| step.observation.is_some()));
    // And in the audit log: start, steps, decisions, the tool calls as the agent, end.
    assert_eq!(s.records("run.start").len(), 1);
    assert_eq!(s.records("run.step").len(), 3);
    assert_eq!(s.records("run.decision").len(), 3);
    let calls = s.records("tool.call");
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|r| r.principal == "agent:scripted"));
    let end = &s.records("run.end")[0];
    assert_eq!(end.fields["status"], "finished");
    assert_eq!(end.fields["run"], json!(run.id));
    // A step's own record, then each call's decision before the call: in this order in
    // the log, though a step hands its record over with its first call's decision.
    let mut order: Vec<_> = ["run.step", "run.decision", "tool.call"]
        .into_iter()
        .flat_map(|kind| s.records(kind))
        .map(|r| (r.seq, r.kind))
        .collect();
    order.sort();
    let kinds: Vec<_> = order.into_iter().map(|(_, kind)| kind).collect();
    assert_eq!(
        kinds,
        [
            "run.step",
            "run.decision",
            "tool.call",
            "run.step",
            "run.decision",
            "tool.call",
            "run.decision",
            "tool.call",
            "run.step",
        ]
    );
    // Each call is done with its outcome in the run store (the last one of a step
    // recorded with the observation).
    for n in [1, 2] {
        let calls = s.runner.store().calls(&run.id, n).unwrap();
        assert!(
            calls
                .iter()
                .all(|c| c.state == CallState::Done && c.outcome.is_some()),
            "step {n}: {calls:?}"
        );
    }
}

#[tokio::test]
async fn a_tool_the_agent_is_not_granted_is_denied_and_the_agent_sees_why() {
    let s = setup(
        AgentSpec {
            tools: vec!["tally/count"],
            ..AgentSpec::default()
        },
        None,
        None,
    );
    let run = s.run(json!([bump("a", "k"), { "finish": null }])).await;
    assert_eq!(
        observations(&run),
        json!([{ "tools": { "a": { "denied": "agent \"scripted\" may not call tally/bump (its grant's [tools] allow: tally/count); an operator adds it to the agent's grant" } } }])
    );
    assert_eq!(s.tally("k"), 0, "a denied tool never runs");
    let denial = &s.records("run.decision")[0];
    assert_eq!(denial.fields["decision"], "deny");
    assert_eq!(denial.fields["by"], "grant");
    assert!(s.records("tool.call").is_empty());
}

#[tokio::test]
async fn malformed_actions_fail_the_run_clearly_and_the_host_goes_on() {
    let s = setup(AgentSpec::default(), None, None);
    for (bad, expected) in [
        (
            "memo",
            "agent \"scripted\" returned a malformed action at step 1: the memo is not JSON",
        ),
        (
            "args",
            "agent \"scripted\" returned a malformed action at step 1: the arguments of call \"x\" is not JSON",
        ),
        (
            "big-memo",
            "agent \"scripted\" returned a malformed action at step 1: the memo is 2097154 bytes, the limit is 256 KiB ([agent] max_memo_kb)",
        ),
        (
            "err",
            "agent \"scripted\" failed at step 1: the agent's step failed: the scripted agent was told to fail its step",
        ),
        ("trap", "agent \"scripted\" failed at step 1: "),
    ] {
        let run = s.run(json!([{ "bad": bad }])).await;
        assert_eq!(run.status, Status::Failed, "{bad}");
        let error = run.error.unwrap();
        assert!(error.starts_with(expected), "{bad}: {error}");
    }
    // The host is fine: the next run works.
    let run = s.run(json!([bump("a", "k"), { "finish": 1 }])).await;
    assert_eq!(observations(&run), json!([{ "tools": { "a": 1 } }]));
}

#[tokio::test]
async fn a_trapping_agent_names_the_trap() {
    let s = setup(AgentSpec::default(), None, None);
    let run = s.run(json!([{ "bad": "trap" }])).await;
    let error = run.error.unwrap();
    assert!(
        error.contains("the scripted agent was told to trap"),
        "{error}"
    );
}

#[tokio::test]
async fn the_sdk_tool_loop_runs_the_tools_a_model_asks_for_then_finishes_with_its_answer() {
    let tool_call = Reply::json(
        200,
        json!({
            "choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": "tally__bump", "arguments": "{\"key\": \"loop\"}"},
            }]}, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5},
        }),
    );
    let answer = Reply::json(
        200,
        json!({
            "choices": [{"message": {"role": "assistant", "content": "bumped once"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 3},
        }),
    );
    let fake = Fake::start(vec![tool_call, answer.clone()], answer).await;
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
            ..AgentSpec::default()
        },
        Some(router),
        None,
    );
    let run = s
        .runner
        .start(
            "scripted",
            json!({ "loop": { "route": "smart", "system": "Count things." } }),
            &warden::Caller::new(super::operator(), warden::Via::Library),
        )
        .await
        .unwrap();
    let run = s.runner.drive(&run.id).await.unwrap();
    assert_eq!(run.status, Status::Finished, "{run:?}");
    assert_eq!(run.result.unwrap(), json!({ "answer": "bumped once" }));
    assert_eq!(s.tally("loop"), 1);
    assert_eq!(run.tokens, 58);
    // The model was offered the granted tools, and saw the tool's result.
    let received = fake.received();
    let tools = &received[0].body["tools"];
    let names: Vec<_> = tools
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tally__bump", "tally__count"]);
    let last = received[1].body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["role"], "tool");
    assert_eq!(last["content"], "1");
    assert_eq!(s.records("model.call").len(), 2);
}

#[tokio::test]
async fn a_model_route_the_agent_is_not_granted_is_denied() {
    let s = setup(AgentSpec::default(), None, None);
    let run = s
        .run(json!([{ "model": { "route": "smart", "prompt": "hi" } }, { "finish": 0 }]))
        .await;
    assert_eq!(
        observations(&run),
        json!([{ "denied": "agent \"scripted\" may not use model route \"smart\"; an operator grants it with [models] routes = [\"smart\"] in its grant" }])
    );
}
