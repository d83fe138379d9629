//! The `research` agent: fetch pages, answer a question from them.
//!
//! Task: `{"question": TEXT, "urls": [URL, …], "route": ROUTE?}` (route default
//! `smart`, at most 8 URLs). Step 1 fetches every URL in one `call-tools` action
//! (`fetch/get`, so only the hosts the fetch plugin is granted); step 2 sends the
//! question and the pages' text to the model route; step 3 finishes with `{"answer",
//! "sources", "failed"}`: the model's answer, the URLs it read, and those that could
//! not be fetched (with why).
#![cfg_attr(
    not(target_arch = "wasm32"),
    allow(
        dead_code,
        reason = "the agent is exported only to wasm; natively only unit tests run"
    )
)]

use serde_json::{Value, json};
use warden_sdk::agent::{
    self, Action, Guest, Observation, Role, StepInput, StepOutput, ToolOutcome,
};

/// Most pages one run reads.
const MAX_URLS: usize = 8;
/// Most characters of a page given to the model.
const PAGE_CHARS: usize = 6000;

struct Research;

fn cut(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

impl Research {
    fn next(task: &Value, memo: &mut Value, observation: &Observation) -> Result<Action, String> {
        let question = task["question"]
            .as_str()
            .ok_or("the task needs a \"question\"")?;
        let route = task["route"].as_str().unwrap_or("smart");
        match observation {
            Observation::None => {
                let urls: Vec<&str> = task["urls"]
                    .as_array()
                    .ok_or("the task needs \"urls\", a list of pages to read")?
                    .iter()
                    .filter_map(Value::as_str)
                    .take(MAX_URLS)
                    .collect();
                if urls.is_empty() {
                    return Ok(agent::fail("no URL to read"));
                }
                let calls = urls
                    .iter()
                    .enumerate()
                    .map(|(i, url)| {
                        agent::call_tool(
                            format!("u{i}"),
                            "fetch/get",
                            &json!({ "url": url, "max-bytes": 65536 }),
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(agent::call_tools(calls))
            }
            Observation::Tools(results) => {
                let mut pages = Vec::new();
                let mut sources = Vec::new();
                let mut failed = Vec::new();
                for result in results {
                    match &result.outcome {
                        ToolOutcome::Ok(text) => {
                            let page: Value = agent::parse("a fetched page", text)?;
                            let url = page["url"].as_str().unwrap_or("").to_string();
                            let body = page["body"].as_str().unwrap_or("");
                            pages.push(format!(
                                "## {url} (status {})\n{}",
                                page["status"],
                                cut(body, PAGE_CHARS)
                            ));
                            sources.push(url);
                        }
                        other => failed
                            .push(json!({ "call": result.id, "why": agent::outcome_json(other) })),
                    }
                }
                *memo = json!({ "sources": sources, "failed": failed });
                if pages.is_empty() {
                    return Ok(agent::fail(format!("no page could be fetched: {failed:?}")));
                }
                Ok(agent::call_model(
                    route,
                    vec![
                        agent::message(
                            Role::System,
                            "Answer the question from the pages below only, briefly, naming the URLs you used. Say so when the pages do not answer it.",
                        ),
                        agent::message(
                            Role::User,
                            format!("Question: {question}\n\n{}", pages.join("\n\n")),
                        ),
                    ],
                    Vec::new(),
                ))
            }
            Observation::Model(response) => agent::finish(&json!({
                "answer": response.content,
                "sources": memo["sources"],
                "failed": memo["failed"],
            })),
            Observation::Denied(reason) | Observation::Failed(reason) => Ok(agent::fail(format!(
                "the model route could not be used: {reason}"
            ))),
            Observation::Answer(_) => Err("research asks no questions".into()),
        }
    }
}

impl Guest for Research {
    fn step(input: StepInput) -> Result<StepOutput, String> {
        let task: Value = agent::task(&input)?;
        let mut memo: Value = agent::memo(&input)?;
        let action = Research::next(&task, &mut memo, &input.observation)?;
        agent::reply(action, &memo)
    }
}

warden_sdk::export_agent!(Research);
