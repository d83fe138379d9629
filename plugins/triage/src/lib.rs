//! The `triage` agent: a support ticket in, a category, a drafted reply and (for a
//! refund) a refund out.
//!
//! Task: `{"ticket": TEXT, "order": ID?, "route": ROUTE?}` (route default `smart`).
//! Steps: classify the ticket through the model route (`{"category": "refund" |
//! "question" | "other", "amount": N?}`), search the notes (`notes/search`), draft a
//! reply through the route with the notes found, and for a refund with an order and an
//! amount call `refunds/issue` — which the refunds policy holds for a person above
//! 100. Result: `{"category", "amount", "notes", "reply", "refund"}`.
#![cfg_attr(
    not(target_arch = "wasm32"),
    allow(
        dead_code,
        reason = "the agent is exported only to wasm; natively only unit tests run"
    )
)]

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use warden_sdk::agent::{self, Action, Guest, Observation, Role, StepInput, StepOutput};

const CLASSIFY: &str = "You triage customer support tickets. Answer with one JSON object and nothing else: {\"category\": \"refund\" | \"question\" | \"other\", \"amount\": number or null} — amount is the sum the customer asks back, if any.";

/// Where the agent is, kept in the memo between steps.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Memo {
    stage: Stage,
    category: String,
    amount: Option<u64>,
    notes: Vec<Value>,
    reply: String,
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Stage {
    #[default]
    Start,
    Classify,
    Search,
    Draft,
    Refund,
}

#[derive(Debug, Deserialize)]
struct Task {
    ticket: String,
    #[serde(default)]
    order: Option<String>,
    #[serde(default)]
    route: Option<String>,
}

/// The first JSON object in `text` (models wrap JSON in prose or code fences).
fn json_in(text: &str) -> Option<Value> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    serde_json::from_str(text.get(start..=end)?).ok()
}

fn classify(content: &str) -> (String, Option<u64>) {
    let Some(value) = json_in(content) else {
        return ("other".into(), None);
    };
    let category = match value["category"].as_str() {
        Some(c @ ("refund" | "question" | "other")) => c.to_string(),
        _ => "other".into(),
    };
    let amount = value["amount"]
        .as_u64()
        .or_else(|| value["amount"].as_f64().map(|a| a.ceil() as u64));
    (category, amount)
}

struct Triage;

impl Triage {
    fn next(task: &Task, memo: &mut Memo, observation: &Observation) -> Result<Action, String> {
        let route = task.route.clone().unwrap_or_else(|| "smart".into());
        let ask = |system: String| {
            agent::call_model(
                route.clone(),
                vec![
                    agent::message(Role::System, system),
                    agent::message(Role::User, task.ticket.clone()),
                ],
                Vec::new(),
            )
        };
        match (&memo.stage, observation) {
            (Stage::Start, _) => {
                memo.stage = Stage::Classify;
                Ok(ask(CLASSIFY.into()))
            }
            (_, Observation::Denied(reason) | Observation::Failed(reason)) => Ok(agent::fail(
                format!("the model route could not be used: {reason}"),
            )),
            (Stage::Classify, Observation::Model(response)) => {
                (memo.category, memo.amount) = classify(&response.content);
                memo.stage = Stage::Search;
                let query = json!({ "query": task.ticket, "limit": 3 });
                Ok(agent::call_tool("search", "notes/search", &query)?.into())
            }
            (Stage::Search, Observation::Tools(results)) => {
                memo.notes = results
                    .iter()
                    .filter_map(|r| match agent::outcome_json(&r.outcome) {
                        Value::Array(hits) => Some(hits),
                        _ => None,
                    })
                    .flatten()
                    .collect();
                memo.stage = Stage::Draft;
                let notes: Vec<&str> = memo
                    .notes
                    .iter()
                    .filter_map(|n| n["snippet"].as_str())
                    .collect();
                Ok(ask(format!(
                    "You answer customer support tickets. Draft a short, friendly reply to the ticket. Notes that may help: {}",
                    if notes.is_empty() {
                        "none".to_string()
                    } else {
                        notes.join(" | ")
                    }
                )))
            }
            (Stage::Draft, Observation::Model(response)) => {
                memo.reply = response.content.clone();
                match (&task.order, memo.amount) {
                    (Some(order), Some(amount)) if memo.category == "refund" && amount > 0 => {
                        memo.stage = Stage::Refund;
                        let reason: String = task.ticket.chars().take(120).collect();
                        let args = json!({ "order": order, "amount": amount, "reason": reason });
                        Ok(agent::call_tool("refund", "refunds/issue", &args)?.into())
                    }
                    _ => Self::done(memo, Value::Null),
                }
            }
            (Stage::Refund, Observation::Tools(results)) => {
                let refund = results
                    .first()
                    .map_or(Value::Null, |r| agent::outcome_json(&r.outcome));
                Self::done(memo, refund)
            }
            (stage, _) => Err(format!("unexpected observation at stage {stage:?}")),
        }
    }

    fn done(memo: &Memo, refund: Value) -> Result<Action, String> {
        agent::finish(&json!({
            "category": memo.category,
            "amount": memo.amount,
            "notes": memo.notes.iter().map(|n| n["id"].clone()).collect::<Vec<_>>(),
            "reply": memo.reply,
            "refund": refund,
        }))
    }
}

impl Guest for Triage {
    fn step(input: StepInput) -> Result<StepOutput, String> {
        let task: Task = agent::task(&input)?;
        let mut memo: Memo = agent::memo(&input)?;
        let action = Triage::next(&task, &mut memo, &input.observation)?;
        agent::reply(action, &memo)
    }
}

warden_sdk::export_agent!(Triage);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_reads_json_wrapped_in_prose() {
        assert_eq!(
            classify("Sure: ```{\"category\": \"refund\", \"amount\": 150}```"),
            ("refund".to_string(), Some(150))
        );
        assert_eq!(classify("no idea"), ("other".to_string(), None));
        assert_eq!(
            classify("{\"category\": \"spam\"}"),
            ("other".to_string(), None)
        );
    }
}
