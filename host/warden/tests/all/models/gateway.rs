//! `POST /v1/chat/completions` with `stream: true` on a served home: server-sent
//! `chat.completion.chunk`s passed through as the provider streams them (text, tool
//! calls, the usage chunk), the retry loop until the first byte, an error event after
//! it, and a client that goes away mid-stream (settled and on record all the same).

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use warden::audit::Record;
use warden::config::home::{Config, hash_token};
use warden::home::Home;
use warden::models::Router;
use warden::serve::{ServeOptions, Server};

use super::fake::{End, Fake, Reply, openai_stream};

/// A caller's token: principal `token:ci`.
pub(crate) const CI: &str = "wdn_models-ci-token";
/// Another caller's token: principal `token:other`.
pub(crate) const OTHER: &str = "wdn_models-other-token";

/// `[models.providers.NAME]` of an OpenAI-compatible fake.
pub(crate) fn openai_provider(name: &str, fake: &Fake) -> String {
    format!(
        "[models.providers.{name}]\nkind = \"openai\"\nbase_url = \"{}/v1\"\ntimeout_ms = 2000\n\n",
        fake.url()
    )
}

/// The tokens of [`CI`] and [`OTHER`], both with the built-in `caller` role.
pub(crate) fn tokens() -> String {
    format!(
        "[[tokens]]\nname = \"ci\"\nsha256 = \"{}\"\nroles = [\"caller\"]\n\n[[tokens]]\nname = \"other\"\nsha256 = \"{}\"\nroles = [\"caller\"]\n",
        hash_token(CI),
        hash_token(OTHER)
    )
}

/// A served home with `models` (TOML of `[models…]` tables) and the two tokens.
pub(crate) struct Served {
    _dir: tempfile::TempDir,
    pub(crate) server: Server,
    url: String,
    http: reqwest::Client,
}

impl Served {
    pub(crate) async fn start(models: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = Config::parse(&format!("{models}\n{}", tokens()), "test config").unwrap();
        let options = ServeOptions {
            config,
            watch: false,
            ..ServeOptions::new(home)
        };
        let server = Server::start(options, listener).await.unwrap();
        let url = format!("http://{}", server.addr());
        Self {
            _dir: dir,
            server,
            url,
            http: reqwest::Client::new(),
        }
    }

    pub(crate) fn chat(&self, token: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/v1/chat/completions", self.url))
            .bearer_auth(token)
            .json(body)
    }

    pub(crate) fn router(&self) -> Arc<Router> {
        self.server
            .registry()
            .runtime()
            .router()
            .cloned()
            .expect("a router")
    }

    /// The `model.call` records, once there are `n` of them.
    pub(crate) async fn records(&self, n: usize) -> Vec<Record> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let records = self
                .server
                .registry()
                .runtime()
                .audit()
                .unwrap()
                .read(warden::audit::Filter {
                    kind: Some("model.call".into()),
                    ..Default::default()
                })
                .unwrap();
            if records.len() >= n {
                return records;
            }
            assert!(
                Instant::now() < deadline,
                "{} model.call records, not {n}",
                records.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The events of a server-sent stream: each `data:` as JSON, `[DONE]` as a string.
pub(crate) fn sse_events(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let data = e.strip_prefix("data: ").unwrap_or_else(|| panic!("{e:?}"));
            serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_string()))
        })
        .collect()
}

fn text_of(events: &[Value]) -> String {
    events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_true_answers_with_chunks_tool_call_deltas_and_a_usage_chunk() {
    let fake = Fake::auto("Hello, world").await;
    let served = Served::start(&format!(
        "{}[models.routes.fast]\ntargets = [\"local/m\"]\n",
        openai_provider("local", &fake)
    ))
    .await;
    let ask = json!({
        "model": "fast", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "hi"}],
    });
    let resp = served.chat(CI, &ask).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events = sse_events(&resp.text().await.unwrap());
    let first = &events[0];
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["model"], "fast");
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    assert!(
        events[..events.len() - 1]
            .iter()
            .all(|e| e["id"] == first["id"]),
        "{events:?}"
    );
    assert_eq!(text_of(&events), "Hello, world");
    let n = events.len();
    assert_eq!(events[n - 3]["choices"][0]["finish_reason"], "stop");
    assert_eq!(events[n - 2]["choices"], json!([]));
    assert_eq!(events[n - 2]["usage"]["prompt_tokens"], 10);
    assert_eq!(events[n - 2]["usage"]["completion_tokens"], 3);
    assert_eq!(events[n - 2]["warden"]["target"], "local/m");
    assert_eq!(events[n - 1], "[DONE]");

    // A tool call streams as OpenAI's tool_calls deltas; no usage chunk unless asked.
    let ask = json!({
        "model": "fast", "stream": true,
        "messages": [{"role": "user", "content": "weather in Lyon?"}],
        "tools": [{"type": "function", "function": {
            "name": "weather", "description": "Forecast",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }}],
    });
    let text = served
        .chat(CI, &ask)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_events(&text);
    let calls: Vec<&Value> = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(calls[0]["id"], "call_1");
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "weather");
    assert!(calls.iter().all(|c| c["index"] == 0));
    let args: String = calls
        .iter()
        .map(|c| c["function"]["arguments"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "Lyon"})
    );
    assert_eq!(
        events[events.len() - 2]["choices"][0]["finish_reason"],
        "tool_calls"
    );
    assert!(events.iter().all(|e| e.get("usage").is_none()), "{text}");

    let records = served.records(2).await;
    let fields = &records[0].fields;
    assert_eq!(records[0].principal, "token:ci");
    assert_eq!(fields["stream"], true);
    assert_eq!(fields["ended"], "complete");
    assert_eq!(fields["target"], "local/m");
    assert_eq!(
        (
            fields["input_tokens"].clone(),
            fields["output_tokens"].clone()
        ),
        (json!(10), json!(3))
    );
    assert_eq!(fields["usage_reported"], true);
    served.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_falls_back_before_its_first_byte_and_ends_with_an_error_event_after() {
    let a = Fake::start(
        vec![
            Reply::json(500, json!({"error": {"message": "boom"}})),
            Reply::json(500, json!({"error": {"message": "boom"}})),
        ],
        openai_stream(&["one", "two", "three"]).cut(2, End::Close),
    )
    .await;
    let b = Fake::start(vec![], openai_stream(&["from ", "b"])).await;
    let served = Served::start(&format!(
        "{}{}[models.routes.r]\ntargets = [\"a/m\", \"b/m\"]\n\n[models.routes.solo]\ntargets = [\"a/m\"]\n\n[models.retry]\nbackoff_ms = 1\n",
        openai_provider("a", &a),
        openai_provider("b", &b)
    ))
    .await;
    let ask = |route: &str| json!({"model": route, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    // a fails twice with 500 before anything is sent: b answers.
    let text = served
        .chat(CI, &ask("r"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_events(&text);
    assert_eq!(text_of(&events), "from b");
    assert_eq!(events.last().unwrap(), "[DONE]");
    // a streams "one", then its connection closes: the client has had bytes, so the
    // stream ends with an error event (no [DONE]).
    let resp = served.chat(CI, &ask("solo")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let events = sse_events(&resp.text().await.unwrap());
    assert_eq!(text_of(&events), "one");
    let last = events.last().unwrap();
    assert_eq!(last["error"]["code"], "model-failed", "{events:?}");
    let message = last["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("route \"solo\", target a/m: the stream broke off after 1 deltas"),
        "{message}"
    );
    assert!(!events.iter().any(|e| e == "[DONE]"));

    let records = served.records(2).await;
    let failures = records[0].fields["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(
        failures[0]
            .as_str()
            .unwrap()
            .starts_with("a/m: server-error: HTTP 500: boom")
    );
    assert_eq!(records[0].fields["target"], "b/m");
    assert_eq!(records[1].outcome, Some(warden::audit::Outcome::Error));
    assert_eq!(records[1].fields["ended"], "failed");
    assert!(
        records[1].fields["error"]
            .as_str()
            .unwrap()
            .contains("broke off")
    );
    served.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_mid_stream_is_settled_and_on_record() {
    let parts: Vec<String> = (0..100).map(|i| format!("w{i} ")).collect();
    let fake = Fake::start(
        vec![openai_stream(&parts).gap(Duration::from_millis(30))],
        Reply::Hang,
    )
    .await;
    let served = Served::start(&format!(
        "{}[models.routes.fast]\ntargets = [\"local/m\"]\n\n[models.budgets.principals.\"token:ci\"]\ntokens_per_day = 100000\n",
        openai_provider("local", &fake)
    ))
    .await;
    let ask = json!({"model": "fast", "stream": true, "max_tokens": 2000, "messages": [{"role": "user", "content": "count"}]});
    let mut resp = served.chat(CI, &ask).send().await.unwrap();
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with("data: "));
    let day = warden::models::day_of(warden::memory::now());
    let ledger = |router: &Router| {
        router
            .ledger()
            .used(warden::models::Scope::Principal, "token:ci", day)
            .0
    };
    // While it streams, the estimate (prompt + max_tokens) is held.
    assert!(ledger(&served.router()) >= 2000);
    drop(resp);
    let records = served.records(1).await;
    let fields = &records[0].fields;
    assert_eq!(fields["ended"], "client-disconnected", "{fields:?}");
    assert_eq!(fields["usage_reported"], false);
    let output = fields["output_tokens"].as_u64().unwrap();
    assert!((1..100).contains(&output), "{fields:?}");
    // Settled with what streamed, not the estimate.
    let used = ledger(&served.router());
    assert_eq!(used, fields["input_tokens"].as_u64().unwrap() + output);
    served.server.shutdown().await;
}
