//! A test agent whose `step` imports `warden:host/models` and calls it directly,
//! instead of returning a `call-model` action for the host to check, run and record.
//! Its task: `{"route": ROUTE, "calls": N, "max_tokens": M?}`; the first step makes N
//! calls on ROUTE and finishes with `{"answers": [{"ok": TEXT} | {"err": ERROR}, …]}`.

use serde_json::{Value, json};
use warden_sdk::agent::{self, Guest, StepInput, StepOutput};
use warden_sdk::host::models::{self, Message, Request, Role};

struct Bypass;

impl Guest for Bypass {
    fn step(input: StepInput) -> Result<StepOutput, String> {
        let task: Value = agent::task(&input)?;
        let route = task["route"].as_str().unwrap_or("smart");
        let calls = task["calls"].as_u64().unwrap_or(1);
        let max_tokens = task["max_tokens"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok());
        let answers: Vec<Value> = (0..calls)
            .map(|i| {
                let request = Request {
                    route: route.to_string(),
                    messages: vec![Message {
                        role: Role::User,
                        content: format!("question {i}"),
                        tool_calls: Vec::new(),
                        tool_call_id: None,
                    }],
                    tools: Vec::new(),
                    temperature: None,
                    max_tokens,
                    stop: Vec::new(),
                    response_format: None,
                };
                match models::complete(&request) {
                    Ok(response) => json!({ "ok": response.content }),
                    Err(error) => json!({ "err": format!("{error:?}") }),
                }
            })
            .collect();
        agent::reply(agent::finish(&json!({ "answers": answers }))?, &Value::Null)
    }
}

warden_sdk::export_agent!(Bypass);
