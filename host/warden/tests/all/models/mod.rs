//! The model router against fake providers on 127.0.0.1 that speak the real wire
//! formats (OpenAI chat completions, Anthropic Messages; whole and streamed), with
//! scripted failures: the router's reaction to each, streaming through the router and
//! the gateway, budgets of plugins, principals and routes, the `fastest` and
//! `weighted` strategies, connection reuse, and the official `openai` Python package
//! as a client of the gateway.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use tokio::net::TcpListener;
use warden::models::{
    ChatRequest, Message, ModelsConfig, Price, ProviderConfig, ProviderKind, Role, RouteConfig,
    RouteError, Router, Strategy, ToolDef,
};

mod budgets;
pub(crate) mod fake;
pub(crate) mod gateway;
mod openai_py;
mod strategies;
mod streaming;

pub(crate) use self::fake::{Fake, Reply, openai_answer};

pub(crate) fn provider(kind: ProviderKind, url: String) -> ProviderConfig {
    ProviderConfig {
        kind,
        base_url: url,
        api_key_env: None,
        timeout_ms: 5_000,
    }
}

pub(crate) fn route(targets: &[&str], strategy: Strategy) -> RouteConfig {
    RouteConfig {
        targets: targets.iter().map(|t| t.to_string()).collect(),
        strategy,
        weights: Vec::new(),
    }
}

pub(crate) fn config(
    providers: Vec<(&str, ProviderConfig)>,
    routes: Vec<(&str, RouteConfig)>,
) -> ModelsConfig {
    let mut config = ModelsConfig {
        providers: providers
            .into_iter()
            .map(|(n, p)| (n.to_string(), p))
            .collect(),
        routes: routes
            .into_iter()
            .map(|(n, r)| (n.to_string(), r))
            .collect(),
        ..ModelsConfig::default()
    };
    config.retry.backoff_ms = 1;
    config
}

pub(crate) fn hello() -> ChatRequest {
    ChatRequest {
        messages: vec![Message::new(Role::User, "hello")],
        ..ChatRequest::default()
    }
}

#[tokio::test]
async fn openai_wire_format_both_ways_with_tools_usage_and_cost() {
    let fake = Fake::start(
        vec![Reply::json(
            200,
            json!({
                "choices": [{
                    "message": {"role": "assistant", "content": null, "tool_calls": [{
                        "id": "call_1", "type": "function",
                        "function": {"name": "weather", "arguments": "{\"city\": \"Lyon\"}"},
                    }]},
                    "finish_reason": "tool_calls",
                }],
                "usage": {
                    "prompt_tokens": 1000, "completion_tokens": 200,
                    "prompt_tokens_details": {"cached_tokens": 400},
                    "completion_tokens_details": {"reasoning_tokens": 50},
                },
            }),
        )],
        openai_answer("unused"),
    )
    .await;
    let mut cfg = config(
        vec![(
            "local",
            provider(ProviderKind::Openai, format!("{}/v1", fake.url())),
        )],
        vec![("fast", route(&["local/llama3"], Strategy::Fallback))],
    );
    cfg.prices.insert(
        "local/llama3".into(),
        Price {
            input: 1.0,
            output: 4.0,
            cached_input: 0.5,
        },
    );
    let router = Router::new(cfg).unwrap();
    let request = ChatRequest {
        messages: vec![
            Message::new(Role::System, "be brief"),
            Message::new(Role::User, "weather in Lyon?"),
        ],
        tools: vec![ToolDef {
            name: "weather".into(),
            description: "Forecast".into(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        }],
        temperature: Some(0.2),
        max_tokens: Some(64),
        stop: vec!["END".into()],
        response_format: None,
    };
    let answer = router.complete("fast", &request).await.unwrap();
    assert_eq!(answer.target, "local/llama3");
    assert_eq!(answer.finish_reason, "tool_calls");
    assert_eq!(answer.tool_calls[0].name, "weather");
    assert_eq!(answer.tool_calls[0].arguments, json!({"city": "Lyon"}));
    assert_eq!(
        (
            answer.usage.input,
            answer.usage.output,
            answer.usage.cached,
            answer.usage.reasoning
        ),
        (1000, 200, 400, 50)
    );
    // 600 fresh × 1.0 + 400 cached × 0.5 + 200 out × 4.0, per million.
    assert!((answer.cost - 0.0016).abs() < 1e-12, "{}", answer.cost);
    let sent = &fake.received()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.body["model"], "llama3");
    assert_eq!(
        sent.body["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(sent.body["tools"][0]["function"]["name"], "weather");
    assert_eq!(sent.body["max_tokens"], 64);
    assert_eq!(sent.body["stop"], json!(["END"]));
}

#[tokio::test]
async fn anthropic_wire_format_both_ways_with_the_key_from_the_environment() {
    let var = "WARDEN_TEST_ANTHROPIC_KEY";
    #[allow(
        unsafe_code,
        reason = "set_var is unsafe in edition 2024; only this test reads it"
    )]
    unsafe {
        std::env::set_var(var, "sk-test")
    };
    let fake = Fake::start(
        vec![Reply::json(
            200,
            json!({
                "type": "message", "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Lyon"}},
                ],
                "stop_reason": "tool_use",
                "usage": {"input_tokens": 30, "output_tokens": 12, "cache_read_input_tokens": 100},
            }),
        )],
        openai_answer("unused"),
    )
    .await;
    let mut claude = provider(ProviderKind::Anthropic, fake.url());
    claude.api_key_env = Some(var.into());
    let router = Router::new(config(
        vec![("claude", claude)],
        vec![("smart", route(&["claude/claude-haiku"], Strategy::Fallback))],
    ))
    .unwrap();
    let mut asked = Message::new(Role::Assistant, "");
    asked.tool_calls = vec![warden::models::ToolCall {
        id: "toolu_0".into(),
        name: "clock".into(),
        arguments: json!({}),
    }];
    let mut result = Message::new(Role::Tool, "09:40");
    result.tool_call_id = Some("toolu_0".into());
    let request = ChatRequest {
        messages: vec![
            Message::new(Role::System, "be brief"),
            Message::new(Role::User, "time?"),
            asked,
            result,
        ],
        response_format: Some(json!({"type": "object"})),
        ..ChatRequest::default()
    };
    let answer = router.complete("smart", &request).await.unwrap();
    assert_eq!(answer.content, "Checking.");
    assert_eq!(answer.finish_reason, "tool_calls");
    assert_eq!(answer.tool_calls[0].id, "toolu_1");
    assert_eq!((answer.usage.input, answer.usage.cached), (130, 100));
    let sent = &fake.received()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some("sk-test"));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert!(
        sent.body["system"]
            .as_str()
            .unwrap()
            .starts_with("be brief")
    );
    assert!(
        sent.body["system"]
            .as_str()
            .unwrap()
            .contains("JSON Schema")
    );
    assert_eq!(sent.body["max_tokens"], 1024);
    assert_eq!(sent.body["messages"][1]["content"][0]["type"], "tool_use");
    assert_eq!(
        sent.body["messages"][2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "toolu_0", "content": "09:40"})
    );
}

pub(crate) async fn two_targets(first: Vec<Reply>) -> (Fake, Fake, Router) {
    let a = Fake::start(first, openai_answer("from a")).await;
    let b = Fake::start(vec![], openai_answer("from b")).await;
    let router = Router::new(config(
        vec![
            ("a", provider(ProviderKind::Openai, a.url())),
            ("b", provider(ProviderKind::Openai, b.url())),
        ],
        vec![("r", route(&["a/m", "b/m"], Strategy::Fallback))],
    ))
    .unwrap();
    (a, b, router)
}

#[tokio::test]
async fn server_errors_are_retried_then_fall_back() {
    let err = Reply::json(500, json!({"error": {"message": "boom"}}));
    let (a, b, router) = two_targets(vec![err.clone(), err]).await;
    let answer = router.complete("r", &hello()).await.unwrap();
    assert_eq!(answer.target, "b/m");
    assert_eq!(answer.content, "from b");
    assert_eq!(a.received().len(), 2, "retried once on the same target");
    assert_eq!(b.received().len(), 1);
}

#[tokio::test]
async fn a_rate_limit_is_retried_after_retry_after_on_the_same_target() {
    let limited =
        Reply::json(429, json!({"error": {"message": "slow down"}})).header("retry-after: 0");
    let (a, b, router) = two_targets(vec![limited]).await;
    let answer = router.complete("r", &hello()).await.unwrap();
    assert_eq!(answer.target, "a/m");
    assert_eq!(a.received().len(), 2);
    assert!(b.received().is_empty());
}

#[tokio::test]
async fn auth_failures_are_not_retried_and_bad_requests_stop() {
    let (a, _b, router) = two_targets(vec![Reply::json(
        401,
        json!({"error": {"message": "bad key"}}),
    )])
    .await;
    let answer = router.complete("r", &hello()).await.unwrap();
    assert_eq!(answer.target, "b/m");
    assert_eq!(a.received().len(), 1, "auth is not retried");

    let (a, b, router) = two_targets(vec![Reply::json(
        400,
        json!({"error": {"message": "messages: required"}}),
    )])
    .await;
    let err = router.complete("r", &hello()).await.unwrap_err();
    assert!(matches!(err, RouteError::Stopped { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("bad-request: HTTP 400: messages: required"),
        "{err}"
    );
    assert_eq!(a.received().len(), 1);
    assert!(b.received().is_empty(), "no other target would do better");

    let too_long = Reply::json(
        400,
        json!({"error": {"message": "maximum context length is 8192 tokens", "code": "context_length_exceeded"}}),
    );
    let (_a, b, router) = two_targets(vec![too_long]).await;
    assert_eq!(router.complete("r", &hello()).await.unwrap().target, "b/m");
    assert_eq!(b.received().len(), 1);
}

#[tokio::test]
async fn a_failing_target_goes_into_cooldown_even_alone() {
    let fake = Fake::start(
        vec![],
        Reply::json(503, json!({"error": {"message": "down"}})),
    )
    .await;
    let mut cfg = config(
        vec![("a", provider(ProviderKind::Openai, fake.url()))],
        vec![("solo", route(&["a/m"], Strategy::Fallback))],
    );
    cfg.retry.attempts = 3;
    cfg.retry.cooldown_failures = 3;
    cfg.retry.cooldown_s = 60;
    let router = Router::new(cfg).unwrap();
    let err = router.complete("solo", &hello()).await.unwrap_err();
    assert!(
        err.to_string().contains("server-error: HTTP 503: down"),
        "{err}"
    );
    assert_eq!(fake.received().len(), 3);
    // In cooldown now: refused at once, without a request.
    let err = router.complete("solo", &hello()).await.unwrap_err();
    assert!(err.to_string().contains("in cooldown"), "{err}");
    assert_eq!(fake.received().len(), 3);
}

#[tokio::test]
async fn a_refused_connection_falls_back_and_cheapest_goes_first() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let b = Fake::start(vec![], openai_answer("from b")).await;
    let mut cfg = config(
        vec![
            (
                "gone",
                provider(ProviderKind::Openai, format!("http://{closed}")),
            ),
            ("b", provider(ProviderKind::Openai, b.url())),
        ],
        vec![
            ("r", route(&["gone/m", "b/m"], Strategy::Fallback)),
            ("cheap", route(&["gone/m", "b/m"], Strategy::Cheapest)),
        ],
    );
    cfg.prices = BTreeMap::from([
        (
            "gone/m".to_string(),
            Price {
                input: 5.0,
                output: 15.0,
                cached_input: 0.0,
            },
        ),
        (
            "b/m".to_string(),
            Price {
                input: 0.1,
                output: 0.4,
                cached_input: 0.0,
            },
        ),
    ]);
    let router = Router::new(cfg).unwrap();
    assert_eq!(router.complete("r", &hello()).await.unwrap().target, "b/m");
    let before = b.received().len();
    assert_eq!(
        router.complete("cheap", &hello()).await.unwrap().target,
        "b/m"
    );
    assert_eq!(b.received().len(), before + 1);
    let err = router.complete("nope", &hello()).await.unwrap_err();
    assert!(err.to_string().contains("routes: cheap, r"), "{err}");
}

#[test]
fn a_route_must_name_configured_providers() {
    let cfg = config(
        vec![(
            "a",
            provider(ProviderKind::Openai, "http://127.0.0.1:1".into()),
        )],
        vec![("r", route(&["b/m"], Strategy::Fallback))],
    );
    let err = Router::new(cfg).err().unwrap().to_string();
    assert!(err.contains("no provider \"b\" (providers: a)"), "{err}");
}

/// A runtime with this router and an audit log, and the hostile guest granted `grant`.
pub(crate) fn plugin_with_router(
    router: Router,
    grant: warden::grant::ModelsGrant,
) -> (warden::Runtime, warden::Plugin, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let runtime = warden::Runtime::new().unwrap();
    runtime.set_router(Arc::new(router)).unwrap();
    runtime
        .set_audit(
            warden::audit::Audit::open(home.path(), warden::audit::AuditOptions::default())
                .unwrap(),
        )
        .unwrap();
    let wasm = std::fs::read(warden_tests::guests::HOSTILE).unwrap();
    let plugin = runtime
        .load(
            warden::PluginSource {
                name: "hostile",
                wasm: &wasm,
                extra_docs: Default::default(),
                grant: Some(warden::grant::Grant {
                    models: Some(grant),
                    ..warden::grant::Grant::default()
                }),
                signer: None,
            },
            None,
        )
        .unwrap();
    (runtime, plugin, home)
}

#[tokio::test]
async fn plugins_use_granted_routes_within_their_budget() {
    let fake = Fake::start(vec![], openai_answer("hi there")).await;
    let router = Router::new(config(
        vec![("a", provider(ProviderKind::Openai, fake.url()))],
        vec![
            ("fast", route(&["a/m"], Strategy::Fallback)),
            ("smart", route(&["a/m"], Strategy::Fallback)),
        ],
    ))
    .unwrap();
    let (runtime, plugin, _home) = plugin_with_router(
        router,
        warden::grant::ModelsGrant {
            routes: vec!["fast".into()],
            budget: warden::models::Budget {
                tokens_per_day: Some(500),
                cost_per_day: None,
            },
        },
    );
    let ask = |route: &str, max: u32| json!({"route": route, "prompt": "hello", "max-tokens": max});
    let answer = runtime
        .call_as("test", &plugin, "ask", &ask("fast", 100))
        .await
        .unwrap();
    assert_eq!(answer, json!("hi there [a/m]"));
    assert_eq!(fake.received()[0].body["max_tokens"], 100);

    // A route the grant does not list is a denial, and nothing is sent.
    let err = runtime
        .call_as("test", &plugin, "ask", &ask("smart", 100))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "denied", "{err}");
    assert!(
        err.to_string().contains("[models] routes = [\"smart\"]"),
        "{err}"
    );
    assert_eq!(fake.received().len(), 1);

    // More than the day's budget could cover: refused before it goes out.
    let err = runtime
        .call_as("test", &plugin, "ask", &ask("fast", 1000))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("budget.tokens_per_day"), "{err}");
    assert_eq!(fake.received().len(), 1);
    let day = warden::models::day_of(warden::memory::now());
    assert_eq!(
        runtime
            .router()
            .unwrap()
            .ledger()
            .used(warden::models::Scope::Plugin, "hostile", day)
            .0,
        12
    );

    // Each model call is on record.
    let records = runtime
        .audit()
        .unwrap()
        .read(warden::audit::Filter {
            kind: Some("model.call".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].fields["route"], "fast");
    assert_eq!(records[0].fields["target"], "a/m");
    assert_eq!(records[0].fields["input_tokens"], 10);
}

#[tokio::test]
async fn a_hang_times_out_and_broken_json_falls_back() {
    let hang = Reply::Hang;
    let broken = Reply::json(200, json!("this is not a chat completion"));
    let a = Fake::start(vec![hang, broken], openai_answer("from a")).await;
    let b = Fake::start(vec![], openai_answer("from b")).await;
    let mut slow = provider(ProviderKind::Openai, a.url());
    slow.timeout_ms = 200;
    let mut cfg = config(
        vec![("a", slow), ("b", provider(ProviderKind::Openai, b.url()))],
        vec![("r", route(&["a/m", "b/m"], Strategy::Fallback))],
    );
    cfg.retry.attempts = 2;
    let router = Router::new(cfg).unwrap();
    // Attempt 1 hangs (timeout, retried), attempt 2 answers broken JSON (fall back).
    let started = std::time::Instant::now();
    let answer = router.complete("r", &hello()).await.unwrap();
    assert_eq!(answer.target, "b/m");
    assert_eq!(a.received().len(), 2);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warden_toml_configures_the_router_for_the_command_line() {
    let fake = Fake::start(vec![], openai_answer("configured")).await;
    let home = tempfile::tempdir().unwrap();
    let h = home.path().to_path_buf();
    std::fs::write(
        h.join("warden.toml"),
        format!(
            "[models.providers.local]\nkind = \"openai\"\nbase_url = \"{}/v1\"\n\n[models.routes.fast]\ntargets = [\"local/m\"]\n",
            fake.url()
        ),
    )
    .unwrap();
    std::fs::write(h.join("grant.toml"), "[models]\nroutes = [\"fast\"]\n").unwrap();
    let out = tokio::task::spawn_blocking(move || {
        let warden = |args: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
                .arg("--home")
                .arg(&h)
                .args(args)
                .output()
                .unwrap()
        };
        let grant = h.join("grant.toml");
        let add = warden(&[
            "plugin",
            "add",
            warden_tests::guests::HOSTILE,
            "--grant",
            grant.to_str().unwrap(),
        ]);
        assert!(
            add.status.success(),
            "{}",
            String::from_utf8_lossy(&add.stderr)
        );
        warden(&[
            "call",
            "hostile/ask",
            "--input",
            r#"{"route": "fast", "prompt": "hello"}"#,
        ])
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "\"configured [local/m]\""
    );
    assert_eq!(fake.received()[0].body["model"], "m");
}
