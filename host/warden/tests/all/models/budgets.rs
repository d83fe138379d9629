//! Budgets of principals and routes beside the plugins' (one ledger): refused before
//! the call goes out, with an error naming the budget — 429 with an OpenAI-style body
//! on the gateway, `budget-exceeded` for a plugin — and strict config.

use reqwest::StatusCode;
use serde_json::{Value, json};
use warden::models::Budget;
use warden::models::{
    ChatRequest, Message, Payer, Price, ProviderKind, Role, RouteError, Router, Scope, Strategy,
    day_of,
};

use super::fake::Fake;
use super::gateway::{CI, OTHER, Served, openai_provider};
use super::{config, plugin_with_router, provider, route};

fn ask(route: &str, max_tokens: u32) -> Value {
    json!({"model": route, "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hello"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn principal_and_route_budgets_answer_429_naming_the_budget() {
    let fake = Fake::auto("pong").await;
    let served = Served::start(&format!(
        r#"{}[models.routes.fast]
targets = ["local/m"]

[models.routes.tight]
targets = ["local/m"]

[models.budgets]
principals."token:ci" = {{ tokens_per_day = 3000 }}
routes.tight = {{ tokens_per_day = 40 }}
"#,
        openai_provider("local", &fake)
    ))
    .await;
    let resp = served.chat(CI, &ask("fast", 100)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let day = day_of(warden::memory::now());
    let router = served.router();
    assert_eq!(
        router.ledger().used(Scope::Principal, "token:ci", day),
        (12, 0.0),
        "settled with the real usage"
    );

    // More than token:ci has left today: refused before it goes out, streamed or not.
    for stream in [false, true] {
        let mut body = ask("fast", 5000);
        body["stream"] = json!(stream);
        let resp = served.chat(CI, &body).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()["x-should-retry"], "false");
        let body: Value = resp.json().await.unwrap();
        let error = &body["error"];
        assert_eq!(error["code"], "budget-exceeded", "{body}");
        assert_eq!(error["type"], "budget_exceeded");
        assert_eq!(error["budget"], "principal \"token:ci\"");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.starts_with("budget of principal \"token:ci\" exceeded: 12 of its 3000 tokens used today, and this call may need 5002 more"),
            "{message}"
        );
        assert!(
            message.contains(
                "raise [models.budgets.principals.\"token:ci\"] tokens_per_day in warden.toml"
            ),
            "{message}"
        );
    }
    assert_eq!(fake.received().len(), 1);

    // Another principal has no budget of its own; the route "tight" has one for all.
    let resp = served.chat(OTHER, &ask("fast", 5000)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = served.chat(OTHER, &ask("tight", 50)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["budget"], "route \"tight\"", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("[models.budgets.routes.tight] tokens_per_day"),
        "{body}"
    );

    // Refusals are on record as denied, naming the budget.
    let records = served.records(5).await;
    let denied: Vec<&str> = records
        .iter()
        .filter(|r| r.outcome == Some(warden::audit::Outcome::Denied))
        .map(|r| r.fields["budget"].as_str().unwrap())
        .collect();
    assert_eq!(
        denied,
        [
            "principal \"token:ci\"",
            "principal \"token:ci\"",
            "route \"tight\""
        ]
    );
    served.server.shutdown().await;
}

const TOKENS_500: Budget = Budget {
    tokens_per_day: Some(500),
    cost_per_day: None,
};

/// The `hostile` plugin granted route `fast` (one target on `fake`), with `budgets`.
fn fast_route_plugin(
    fake: &Fake,
    budgets: impl FnOnce(&mut warden::models::Budgets),
) -> (warden::Runtime, warden::Plugin, tempfile::TempDir) {
    let mut cfg = config(
        vec![("a", provider(ProviderKind::Openai, fake.url()))],
        vec![("fast", route(&["a/m"], Strategy::Fallback))],
    );
    budgets(&mut cfg.budgets);
    plugin_with_router(
        Router::new(cfg).unwrap(),
        warden::grant::ModelsGrant {
            routes: vec!["fast".into()],
            budget: Budget::default(),
        },
    )
}

/// The arguments of `hostile/ask` on route `fast`.
fn plugin_ask(max: u32) -> Value {
    json!({"route": "fast", "prompt": "hello", "max-tokens": max})
}

#[tokio::test]
async fn a_route_budget_applies_to_plugins_beside_their_own() {
    let fake = Fake::auto("hi there").await;
    let (runtime, plugin, _home) = fast_route_plugin(&fake, |budgets| {
        budgets.routes.insert("fast".into(), TOKENS_500);
    });
    let answer = runtime
        .call_as("test", &plugin, "ask", &plugin_ask(100))
        .await
        .unwrap();
    assert_eq!(answer, json!("hi there [a/m]"));
    let err = runtime
        .call_as("test", &plugin, "ask", &plugin_ask(1000))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("exceeded: 12 of its 500 tokens used today"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("[models.budgets.routes.fast] tokens_per_day"),
        "{err}"
    );
    assert_eq!(fake.received().len(), 1);
}

#[tokio::test]
async fn a_plugins_model_calls_are_charged_to_the_principal_it_acts_for() {
    let fake = Fake::auto("hi there").await;
    let (runtime, plugin, _home) = fast_route_plugin(&fake, |budgets| {
        budgets.principals.insert("token:ci".into(), TOKENS_500);
    });
    // Within token:ci's budget; past it for token:ci, and still fine for another caller.
    runtime
        .call_as("token:ci", &plugin, "ask", &plugin_ask(100))
        .await
        .unwrap();
    let err = runtime
        .call_as("token:ci", &plugin, "ask", &plugin_ask(1000))
        .await
        .unwrap_err();
    let err = err.to_string();
    assert!(
        err.contains("budget of principal") && err.contains("token:ci"),
        "{err}"
    );
    runtime
        .call_as("token:other", &plugin, "ask", &plugin_ask(1000))
        .await
        .unwrap();
    assert_eq!(fake.received().len(), 2);
}

#[test]
fn a_cost_budget_holds_the_estimate_at_the_dearest_target() {
    let mut cfg = config(
        vec![
            (
                "a",
                provider(ProviderKind::Openai, "http://127.0.0.1:1".into()),
            ),
            (
                "b",
                provider(ProviderKind::Openai, "http://127.0.0.1:2".into()),
            ),
        ],
        vec![("r", route(&["a/m", "b/m"], Strategy::Cheapest))],
    );
    cfg.prices.insert(
        "a/m".into(),
        Price {
            input: 1.0,
            output: 1.0,
            cached_input: 0.0,
        },
    );
    cfg.prices.insert(
        "b/m".into(),
        Price {
            input: 10.0,
            output: 30.0,
            cached_input: 0.0,
        },
    );
    cfg.budgets.principals.insert(
        "token:ci".into(),
        Budget {
            tokens_per_day: None,
            cost_per_day: Some(0.05),
        },
    );
    let router = Router::new(cfg).unwrap();
    let request = ChatRequest {
        messages: vec![Message::new(Role::User, "x".repeat(400))],
        max_tokens: Some(1000),
        ..ChatRequest::default()
    };
    // 100 tokens in, 1000 out, at b's price: $0.001 + $0.03.
    let estimate = router.estimate("r", &request).unwrap();
    assert_eq!(estimate.tokens, 1100);
    assert!((estimate.cost - 0.031).abs() < 1e-9, "{estimate:?}");
    let payer = Payer {
        plugin: None,
        principal: Some("token:ci"),
    };
    let held = router.reserve("r", payer, &request).unwrap();
    let err = router.reserve("r", payer, &request).unwrap_err();
    let RouteError::Budget(exceeded) = &err else {
        panic!("{err}")
    };
    assert_eq!(exceeded.budget, "principal \"token:ci\"");
    assert!(
        err.to_string()
            .contains("$0.0310 of its $0.05 spent today, and this call may cost $0.0310 more; raise [models.budgets.principals.\"token:ci\"] cost_per_day"),
        "{err}"
    );
    // Settled for less, the next call fits; a principal without a budget is not held.
    router.settle(held, &Default::default(), 0.002);
    assert!(router.reserve("r", payer, &request).is_ok());
    let other = Payer {
        plugin: None,
        principal: Some("token:other"),
    };
    assert!(router.reserve("r", other, &request).is_ok());
    let err = router.reserve("nope", payer, &request).unwrap_err();
    assert!(matches!(err, RouteError::UnknownRoute { .. }), "{err}");
}

#[test]
fn budgets_config_is_strict() {
    let parse = |extra: &str| {
        warden::config::home::Config::parse(
            &format!(
                "[models.providers.a]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1\"\n\n[models.routes.fast]\ntargets = [\"a/m\"]\n\n{extra}"
            ),
            "warden.toml",
        )
        .map_err(|e| format!("{e:#}"))
    };
    let ok = parse("[models.budgets]\nprincipals.\"token:ci\" = { tokens_per_day = 10, cost_per_day = 1.5 }\nroutes.fast = { cost_per_day = 2.0 }\n").unwrap();
    assert_eq!(
        ok.models.budgets.principals["token:ci"].tokens_per_day,
        Some(10)
    );
    let err = parse("[models.budgets.routes.slow]\ntokens_per_day = 1\n").unwrap_err();
    assert!(
        err.contains("[models.budgets.routes.slow]: no route \"slow\" (routes: fast)"),
        "{err}"
    );
    let err = parse("[models.budgets.principal.\"token:ci\"]\ntokens_per_day = 1\n").unwrap_err();
    assert!(err.contains("unknown field `principal`"), "{err}");
    let err = parse("[models.budgets.routes.fast]\ntokens_a_day = 1\n").unwrap_err();
    assert!(err.contains("unknown field `tokens_a_day`"), "{err}");
    let err = parse("[models.budgets.routes.fast]\ncost_per_day = -1\n").unwrap_err();
    assert!(err.contains("cost_per_day must be"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_budget_spent_by_one_warden_call_counts_in_the_next() {
    let fake = Fake::auto("hi there").await;
    let home = tempfile::tempdir().unwrap();
    let h = home.path().to_path_buf();
    // Each call may need 102 tokens (2 of prompt, 100 of answer) and uses 12: the
    // first fits in 110, the second only if the first's 12 were forgotten.
    std::fs::write(
        h.join("warden.toml"),
        format!(
            "[models.providers.local]\nkind = \"openai\"\nbase_url = \"{}/v1\"\n\n[models.routes.fast]\ntargets = [\"local/m\"]\n\n[models.budgets.routes.fast]\ntokens_per_day = 110\n",
            fake.url()
        ),
    )
    .unwrap();
    std::fs::write(h.join("grant.toml"), "[models]\nroutes = [\"fast\"]\n").unwrap();
    let (first, second) = tokio::task::spawn_blocking(move || {
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
        let input = plugin_ask(100).to_string();
        let call = || warden(&["call", "hostile/ask", "--input", &input]);
        (call(), call())
    })
    .await
    .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&first.stdout).trim(),
        "\"hi there [local/m]\""
    );
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("BudgetExceeded")
            && stderr.contains("fast")
            && stderr.contains("12 of its 110 tokens used today"),
        "{stderr}"
    );
    assert_eq!(fake.received().len(), 1, "the second never went out");
    // The spending is in the home's ledger.
    let ledger = warden::models::Ledger::open_home(home.path()).unwrap();
    let day = day_of(warden::memory::now());
    assert_eq!(ledger.used(Scope::Route, "fast", day), (12, 0.0));
}
