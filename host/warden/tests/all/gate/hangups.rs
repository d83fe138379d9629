//! Calls whose caller goes away before the answer: an HTTP caller that hangs up
//! mid-call, a request that reaches `request_timeout_ms`, and a gateway caller that
//! hangs up while the provider stalls. The call is recorded when it ends (cancelled, or
//! with its real outcome) and a model call's budget reservation is settled; today the
//! record is written only by the request's future, which is dropped with it.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use warden::grant::Grant;
use warden::limits::Limits;
use warden::models::{Scope, day_of};
use warden_tests::guests;

use crate::models::fake::{Fake, openai_answer};
use crate::models::gateway::{CI, Served, openai_provider};
use crate::serve::{ADMIN, Test};

/// How long `hostile/loop-forever` runs: its time limit.
const LIMIT_MS: u64 = 3_000;

/// A served home with `hostile`, its calls limited to [`LIMIT_MS`], and `config`.
async fn served(config: &str) -> Test {
    let grant = Grant {
        limits: Limits {
            timeout_ms: LIMIT_MS,
            ..Limits::default()
        },
        ..Grant::default()
    };
    Test::start_granted(
        &[("hostile", guests::HOSTILE)],
        &[("hostile", grant)],
        config,
    )
    .await
}

/// The `tool.call` records of `hostile`, once there is one (or 15 s passed: five times
/// the call's time limit).
async fn calls(t: &Test) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = t
            .get(Some(ADMIN), "/v1/audit?kind=tool.call&plugin=hostile")
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let records = body["records"].as_array().unwrap().clone();
        if !records.is_empty() || Instant::now() > deadline {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The record of a `loop-forever` call its caller did not wait for: cancelled, or its
/// real outcome (it ran into its time limit).
#[track_caller]
fn assert_ended(record: &Value) {
    assert_eq!(record["kind"], "tool.call", "{record}");
    assert_eq!(record["tool"], "loop-forever", "{record}");
    assert_eq!(record["principal"], "user:root", "{record}");
    let outcome = record["outcome"].as_str().unwrap_or_default();
    assert!(
        ["cancelled", "error"].contains(&outcome),
        "cancelled, or stopped at its limit: {record}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_caller_that_hangs_up_mid_call_still_leaves_a_tool_call_record() {
    let t = served("").await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let err = impatient
        .post(format!("{}/v1/tools/hostile/loop-forever", t.url))
        .bearer_auth(ADMIN)
        .json(&json!({}))
        .send()
        .await
        .expect_err("the call runs until its time limit");
    assert!(err.is_timeout(), "{err}");

    let calls = calls(&t).await;
    assert_eq!(
        calls.len(),
        1,
        "a call whose HTTP caller hung up after 0.5 s left no tool.call record 15 s later (its time limit is {LIMIT_MS} ms)"
    );
    assert_ended(&calls[0]);
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_request_timeout_ms_still_leaves_a_tool_call_record() {
    let t = served("[server]\nrequest_timeout_ms = 1000\n").await;
    let response = t
        .req(
            reqwest::Method::POST,
            "/v1/tools/hostile/loop-forever",
            Some(ADMIN),
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("request_timeout_ms")),
        "{body}"
    );

    let calls = calls(&t).await;
    assert_eq!(
        calls.len(),
        1,
        "a call cut off by request_timeout_ms (1 s) left no tool.call record 15 s later (its time limit is {LIMIT_MS} ms)"
    );
    assert_ended(&calls[0]);
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_caller_that_hangs_up_leaves_a_model_call_record_and_a_settled_budget() {
    // The provider answers the first request after 1.5 s (12 tokens), the rest at once.
    let fake = Fake::start(
        vec![openai_answer("late").after(Duration::from_millis(1_500))],
        openai_answer("pong"),
    )
    .await;
    let served = Served::start(&format!(
        "{}[models.routes.fast]\ntargets = [\"local/m\"]\n\n[models.budgets]\nprincipals.\"token:ci\" = {{ tokens_per_day = 1500 }}\n",
        openai_provider("local", &fake)
    ))
    .await;
    // 2 tokens of prompt and up to 1000 of answer: 1002 held until the call settles.
    let ask = json!({"model": "fast", "max_tokens": 1000,
                     "messages": [{"role": "user", "content": "hello"}]});
    let err = served
        .chat(CI, &ask)
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .expect_err("the provider answers after 1.5 s");
    assert!(err.is_timeout(), "{err}");
    // Past the provider's answer.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert_eq!(fake.received().len(), 1);

    // On record (waits up to 10 s for it) …
    let records = served.records(1).await;
    let record = &records[0];
    assert_eq!(record.principal, "token:ci", "{record:?}");
    assert_eq!(record.fields["route"], "fast", "{record:?}");
    let outcome = serde_json::to_value(record.outcome).unwrap();
    assert!(
        outcome == "ok" || outcome == "cancelled",
        "answered (its real outcome) or cancelled: {record:?}"
    );
    // … and the 1002 tokens held for it are settled: its real usage (12) or nothing.
    let day = day_of(warden::memory::now());
    let (used, _) = served
        .router()
        .ledger()
        .used(Scope::Principal, "token:ci", day);
    assert!(
        used <= 12,
        "the gateway call whose caller hung up still holds {used} tokens of token:ci's budget"
    );
    // So the same call fits in token:ci's 1500 tokens again.
    let response = served.chat(CI, &ask).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    served.server.shutdown().await;
}
