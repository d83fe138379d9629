//! Model calls that escape the run's limits, the daily budget or the audit record: an
//! agent's `step` that calls `warden:host/models` itself (the `bypass` test agent), and
//! a daily budget that each `warden call` process starts from zero.

use serde_json::{Value, json};
use warden_tests::guests;

use super::{add, expect, records, stderr, stdout, warden};
use crate::models::fake::{Fake, Reply, openai_answer};
use crate::models::gateway::openai_provider;

/// A home whose `warden.toml` has route `route` on the fake provider.
fn home_with_route(fake: &Fake, route: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("warden.toml"),
        format!(
            "{}[models.routes.{route}]\ntargets = [\"local/m\"]\n",
            openai_provider("local", fake)
        ),
    )
    .unwrap();
    home
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_direct_model_calls_are_held_to_the_run_limits_and_on_record() {
    // Every answer uses 12 tokens.
    let fake = Fake::start(vec![], openai_answer("pong")).await;
    let home = home_with_route(&fake, "smart");
    let h = home.path();
    add(
        h,
        "bypass",
        guests::BYPASS,
        Some("[models]\nroutes = [\"smart\"]\n\n[agent]\nmax_tokens = 30\n"),
    )
    .await;

    // One step, five direct calls of up to 10 tokens each: 60 tokens, twice the run's 30.
    let task = json!({"route": "smart", "calls": 5, "max_tokens": 8});
    let out = warden(h, &["run", "bypass", "--task", &task.to_string()]).await;
    let run: Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: the run's report\n{}\n{}", stdout(&out), stderr(&out)));
    let sent = fake.received().len();
    assert!(sent >= 1, "{run}");

    let calls = records(h, "model.call").await;
    assert_eq!(
        calls.len(),
        sent,
        "the provider answered {sent} model calls the agent's step made through warden:host/models; the audit log has {} model.call records: {calls:?}",
        calls.len()
    );
    for call in &calls {
        assert_eq!(call["plugin"], "bypass", "{call}");
        assert_eq!(call["fields"]["route"], "smart", "{call}");
    }
    assert!(
        sent < 5,
        "all 5 direct model calls of the step went out ({sent} × 12 tokens): the run's [agent] max_tokens = 30 did not hold them; the run: {run}"
    );
    assert_eq!(
        run["tokens"],
        json!(12 * sent),
        "the run is charged for its step's model calls: {run}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbid_of_use_model_refuses_an_agents_direct_model_call_and_records_it() {
    let fake = Fake::start(vec![], openai_answer("pong")).await;
    let home = home_with_route(&fake, "smart");
    let h = home.path();
    add(
        h,
        "bypass",
        guests::BYPASS,
        Some("[models]\nroutes = [\"smart\"]\n"),
    )
    .await;
    std::fs::write(
        h.join("policy.cedar"),
        "@id(\"no-smart\")\nforbid(principal, action == Warden::Action::\"use-model\", resource == Warden::Route::\"smart\");\n",
    )
    .unwrap();

    let task = json!({"route": "smart", "calls": 1});
    let out = warden(h, &["run", "bypass", "--task", &task.to_string()]).await;
    let run: Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: the run's report\n{}\n{}", stdout(&out), stderr(&out)));
    assert!(
        fake.received().is_empty(),
        "the step's direct call on a forbidden route reached the provider: {run}"
    );
    assert!(
        run.to_string().contains("Denied"),
        "the step saw its call refused: {run}"
    );
    assert_eq!(run["tokens"], 0, "{run}");
    assert!(records(h, "model.call").await.is_empty());

    // The gate's refusal, for the run's agent on behalf of its starter …
    let refused = records(h, "access.denied").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    let refused = &refused[0];
    assert_eq!(refused["principal"], "agent:bypass", "{refused}");
    assert_eq!(refused["plugin"], "bypass", "{refused}");
    assert_eq!(refused["fields"]["action"], "use-model", "{refused}");
    assert_eq!(refused["fields"]["via"], "run", "{refused}");
    assert!(
        refused["fields"]["on_behalf_of"]
            .as_str()
            .is_some_and(|p| p.starts_with("local:")),
        "{refused}"
    );
    assert!(
        refused["fields"].to_string().contains("no-smart"),
        "{refused}"
    );
    // … and the step's refused use, with the run and the step.
    let denied = records(h, "capability.denied").await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    let denied = &denied[0];
    assert_eq!(denied["plugin"], "bypass", "{denied}");
    assert_eq!(denied["fields"]["capability"], "models", "{denied}");
    assert_eq!(denied["fields"]["target"], "smart", "{denied}");
    assert_eq!(denied["fields"]["run"], run["id"], "{denied}");
    assert_eq!(denied["fields"]["step"], 1, "{denied}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_budget_spent_by_one_process_holds_in_the_next() {
    // The first answer uses 450 tokens; any later one 12.
    let spent = Reply::json(
        200,
        json!({
            "choices": [{"message": {"role": "assistant", "content": "spent"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 300, "completion_tokens": 150},
        }),
    );
    let fake = Fake::start(vec![spent], openai_answer("again")).await;
    let home = home_with_route(&fake, "fast");
    let h = home.path();
    add(
        h,
        "hostile",
        guests::HOSTILE,
        Some("[models]\nroutes = [\"fast\"]\nbudget = { tokens_per_day = 500 }\n"),
    )
    .await;
    let ask = |max: u32| json!({"route": "fast", "prompt": "hello", "max-tokens": max}).to_string();

    // One process spends 450 of the plugin's 500 tokens of today …
    let out = warden(h, &["call", "hostile/ask", "--input", &ask(40)]).await;
    assert_eq!(expect(&out, 0).trim(), "\"spent [local/m]\"");
    // … so the next, which may need 102 more, is refused before it goes out.
    let out = warden(h, &["call", "hostile/ask", "--input", &ask(100)]).await;
    assert_ne!(
        out.status.code(),
        Some(0),
        "a second `warden call` started the plugin's daily budget from zero: the first spent 450 of its 500 tokens, and the second called the provider again: {}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("450 of its 500 tokens used today"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fake.received().len(), 1);
}
