//! Streamed answers through the router: both wire formats mapped to deltas (text and
//! tool-call pieces, finish, usage and cost), the retry loop until the first delta is
//! in, and failures after it ending the stream.

use serde_json::json;
use warden::models::{
    ChatRequest, Delta, FailureKind, Message, Price, ProviderKind, Role, Router, Strategy,
    Streaming, ToolDef,
};

use super::fake::{End, Fake, Reply, anthropic_stream, openai_stream, openai_tool_stream};
use super::{config, hello, provider, route};

/// Reads `stream` to its end: the deltas, and the error that ended it, if one did.
pub(crate) async fn drain(stream: &mut Streaming) -> (Vec<Delta>, Option<warden::models::Failure>) {
    let mut deltas = Vec::new();
    while let Some(next) = stream.next().await {
        match next {
            Ok(delta) => deltas.push(delta),
            Err(failure) => return (deltas, Some(failure)),
        }
    }
    (deltas, None)
}

fn text_of(deltas: &[Delta]) -> String {
    deltas
        .iter()
        .filter_map(|d| match d {
            Delta::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// The arguments of tool call 0, put together from its pieces, with its id and name.
fn tool_call_of(deltas: &[Delta]) -> (String, String, serde_json::Value) {
    let (mut id, mut name, mut args) = (String::new(), String::new(), String::new());
    for d in deltas {
        if let Delta::ToolCall {
            index: 0,
            id: i,
            name: n,
            arguments,
        } = d
        {
            id.extend(i.clone());
            name.extend(n.clone());
            args.push_str(arguments);
        }
    }
    (id, name, serde_json::from_str(&args).unwrap())
}

fn weather() -> ChatRequest {
    ChatRequest {
        messages: vec![Message::new(Role::User, "weather in Lyon?")],
        tools: vec![ToolDef {
            name: "weather".into(),
            description: "Forecast".into(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        }],
        ..ChatRequest::default()
    }
}

#[tokio::test]
async fn an_openai_stream_maps_to_deltas_with_tool_calls_usage_and_cost() {
    let fake = Fake::start(
        vec![
            openai_stream(&["Hel", "lo", "!"]),
            openai_tool_stream("weather"),
        ],
        Reply::Hang,
    )
    .await;
    let mut cfg = config(
        vec![(
            "a",
            provider(ProviderKind::Openai, format!("{}/v1", fake.url())),
        )],
        vec![("r", route(&["a/m"], Strategy::Fallback))],
    );
    cfg.prices.insert(
        "a/m".into(),
        Price {
            input: 1.0,
            output: 2.0,
            cached_input: 0.0,
        },
    );
    let router = Router::new(cfg).unwrap();
    let mut stream = router.stream("r", &hello()).await.unwrap();
    assert_eq!(stream.target(), "a/m");
    let (deltas, failure) = drain(&mut stream).await;
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!(text_of(&deltas), "Hello!");
    assert_eq!(deltas.last(), Some(&Delta::Finish("stop".into())));
    assert!(stream.usage_reported());
    assert_eq!((stream.usage().input, stream.usage().output), (10, 3));
    assert!((stream.cost() - 16e-6).abs() < 1e-12, "{}", stream.cost());
    let sent = &fake.received()[0];
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.body["stream_options"], json!({"include_usage": true}));

    let mut stream = router.stream("r", &weather()).await.unwrap();
    let (deltas, failure) = drain(&mut stream).await;
    assert!(failure.is_none(), "{failure:?}");
    let (id, name, args) = tool_call_of(&deltas);
    assert_eq!((id.as_str(), name.as_str()), ("call_1", "weather"));
    assert_eq!(args, json!({"city": "Lyon"}));
    assert_eq!(stream.finish_reason(), Some("tool_calls"));
    assert_eq!(stream.usage().input, 30);
}

#[tokio::test]
async fn an_anthropic_stream_maps_text_tool_use_and_usage() {
    let fake = Fake::start(
        vec![anthropic_stream(&["Let me ", "check."], Some("weather"))],
        Reply::Hang,
    )
    .await;
    let router = Router::new(config(
        vec![("claude", provider(ProviderKind::Anthropic, fake.url()))],
        vec![("smart", route(&["claude/haiku"], Strategy::Fallback))],
    ))
    .unwrap();
    let mut stream = router.stream("smart", &weather()).await.unwrap();
    let (deltas, failure) = drain(&mut stream).await;
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!(text_of(&deltas), "Let me check.");
    let (id, name, args) = tool_call_of(&deltas);
    assert_eq!((id.as_str(), name.as_str()), ("toolu_1", "weather"));
    assert_eq!(args, json!({"city": "Lyon"}));
    assert_eq!(stream.finish_reason(), Some("tool_calls"));
    let usage = stream.usage();
    assert_eq!((usage.input, usage.cached, usage.output), (25, 5, 15));
    let sent = &fake.received()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.body["stream"], true);
}

#[tokio::test]
async fn failures_before_the_first_delta_are_retried_and_fallen_back_from() {
    // a: the connection closes before any event (retried), then the first event is
    // broken JSON (fall back); b answers.
    let a = Fake::start(
        vec![
            openai_stream(&["x"]).cut(0, End::Close),
            openai_stream(&["x"]).replace(0, "data: {broken"),
        ],
        openai_stream(&["from a"]),
    )
    .await;
    let b = Fake::start(vec![], openai_stream(&["from b"])).await;
    let router = Router::new(config(
        vec![
            ("a", provider(ProviderKind::Openai, a.url())),
            ("b", provider(ProviderKind::Openai, b.url())),
        ],
        vec![("r", route(&["a/m", "b/m"], Strategy::Fallback))],
    ))
    .unwrap();
    let mut stream = router.stream("r", &hello()).await.unwrap();
    assert_eq!(stream.target(), "b/m");
    let failures = stream.failures().to_vec();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(
        failures[0].starts_with("a/m: connection-failed"),
        "{failures:?}"
    );
    assert!(
        failures[1].starts_with("a/m: malformed-response"),
        "{failures:?}"
    );
    let (deltas, failure) = drain(&mut stream).await;
    assert!(failure.is_none());
    assert_eq!(text_of(&deltas), "from b");
    assert_eq!(a.received().len(), 2);

    // An error status before the stream is classified as for a whole answer.
    let a = Fake::start(
        vec![Reply::json(429, json!({"error": {"message": "slow down"}})).header("retry-after: 0")],
        openai_stream(&["ok"]),
    )
    .await;
    let router = Router::new(config(
        vec![("a", provider(ProviderKind::Openai, a.url()))],
        vec![("r", route(&["a/m"], Strategy::Fallback))],
    ))
    .unwrap();
    let mut stream = router.stream("r", &hello()).await.unwrap();
    assert!(stream.failures()[0].contains("rate-limited"));
    assert_eq!(text_of(&drain(&mut stream).await.0), "ok");
}

#[tokio::test]
async fn failures_after_the_first_delta_end_the_stream_and_count_against_the_target() {
    let full = openai_stream(&["one", "two", "three"]);
    let a = Fake::start(
        vec![
            // role + "one", then the connection closes.
            full.clone().cut(2, End::Close),
            // role + "one", then silence past the timeout.
            full.clone().cut(2, End::Hang),
            // role + "one", then broken JSON.
            full.clone().replace(2, "data: {\"choices\": [{\"delta\": "),
            // role + "one", then the provider's error event.
            full.clone().replace(
                2,
                r#"data: {"error": {"message": "overloaded", "type": "server_error"}}"#,
            ),
        ],
        full,
    )
    .await;
    let mut quick = provider(ProviderKind::Openai, a.url());
    quick.timeout_ms = 300;
    let mut cfg = config(
        vec![("a", quick)],
        vec![("r", route(&["a/m"], Strategy::Fallback))],
    );
    cfg.retry.cooldown_failures = 4;
    cfg.retry.cooldown_s = 60;
    let router = Router::new(cfg).unwrap();
    let expected = [
        (FailureKind::Connect, "broke off"),
        (FailureKind::Timeout, "sent nothing for 300 ms"),
        (FailureKind::MalformedResponse, "not JSON"),
        (FailureKind::Server, "overloaded"),
    ];
    for (kind, words) in expected {
        let mut stream = router.stream("r", &hello()).await.unwrap();
        let (deltas, failure) = drain(&mut stream).await;
        assert_eq!(text_of(&deltas), "one");
        let failure = failure.expect("the stream ends with an error");
        assert_eq!(failure.kind, kind, "{failure}");
        assert!(failure.to_string().contains(words), "{failure}");
        // No usage came: an estimate from what streamed.
        assert!(!stream.usage_reported());
        assert_eq!(stream.usage().output, 1);
        router.stream_ended(&stream, Some(&failure));
    }
    // Four failures in the window: the target is in cooldown now.
    let err = router.stream("r", &hello()).await.unwrap_err();
    assert!(err.to_string().contains("in cooldown"), "{err}");
    assert_eq!(a.received().len(), 4);
}
