//! A test agent. Its task is a script: step N does what entry N says, and the memo
//! keeps every observation, which `finish` returns so tests can see what the agent
//! saw. Entries:
//!
//! - `{"call": [{"id", "tool", "arguments"}, …]}`: call tools;
//! - `{"model": {"route", "prompt"}}`: call a model route;
//! - `{"ask": TEXT, "schema": SCHEMA?}`: ask a person;
//! - `{"finish": VALUE}`: finish with `{"result": VALUE, "observations": […]}`;
//! - `{"fail": TEXT}`: give up;
//! - `{"bad": "memo" | "args" | "trap" | "err" | "big-memo" | "spin"}`: misbehave.
//!
//! Past the end of the script the last entry repeats. A task `{"loop": {"route",
//! "system"?}}` runs the SDK's `ToolLoop` instead.

use serde_json::{Value, json};
use warden_sdk::agent::{self, Action, Guest, Observation, Role, StepInput, StepOutput, ToolUse};
use warden_sdk::agent_loop::ToolLoop;

struct Scripted;

fn seen(observation: &Observation) -> Option<Value> {
    Some(match observation {
        Observation::None => return None,
        Observation::Model(r) => json!({ "model": r.content, "tool_calls": r.tool_calls.len() }),
        Observation::Tools(results) => json!({ "tools": agent::results_json(results) }),
        Observation::Answer(a) => {
            json!({ "answer": serde_json::from_str::<Value>(a).unwrap_or(Value::Null) })
        }
        Observation::Denied(reason) => json!({ "denied": reason }),
        Observation::Failed(reason) => json!({ "failed": reason }),
    })
}

impl Guest for Scripted {
    fn step(input: StepInput) -> Result<StepOutput, String> {
        let task: Value = agent::task(&input)?;
        if let Some(settings) = task.get("loop") {
            let mut tool_loop = ToolLoop::new(settings["route"].as_str().unwrap_or("smart"));
            if let Some(system) = settings["system"].as_str() {
                tool_loop = tool_loop.system(system);
            }
            return tool_loop.step(&input);
        }
        let mut memo: Value = agent::memo(&input)?;
        if memo.is_null() {
            memo = json!({ "observations": [] });
        }
        if let Some(o) = seen(&input.observation) {
            memo["observations"]
                .as_array_mut()
                .ok_or("memo without observations")?
                .push(o);
        }
        let script = task["script"].as_array().ok_or("the task has no script")?;
        let index = (input.step as usize - 1).min(script.len().saturating_sub(1));
        let entry = script.get(index).ok_or("the script is empty")?;
        let action = if let Some(calls) = entry.get("call") {
            let calls = calls
                .as_array()
                .ok_or("call: not a list")?
                .iter()
                .map(|c| ToolUse {
                    id: c["id"].as_str().unwrap_or("c").to_string(),
                    tool: c["tool"].as_str().unwrap_or("").to_string(),
                    arguments: c["arguments"].to_string(),
                })
                .collect();
            Action::CallTools(calls)
        } else if let Some(model) = entry.get("model") {
            agent::call_model(
                model["route"].as_str().unwrap_or("smart"),
                vec![agent::message(
                    Role::User,
                    model["prompt"].as_str().unwrap_or("hello"),
                )],
                Vec::new(),
            )
        } else if let Some(question) = entry.get("ask") {
            agent::ask(question.as_str().unwrap_or("?"), entry.get("schema"))
        } else if let Some(result) = entry.get("finish") {
            agent::finish(&json!({ "result": result, "observations": memo["observations"] }))?
        } else if let Some(reason) = entry.get("fail") {
            agent::fail(reason.as_str().unwrap_or("failed"))
        } else {
            match entry["bad"].as_str().unwrap_or("") {
                "memo" => {
                    return Ok(StepOutput {
                        action: agent::fail("unreachable"),
                        memo: "{not json".into(),
                    });
                }
                "args" => Action::CallTools(vec![ToolUse {
                    id: "x".into(),
                    tool: "tally/bump".into(),
                    arguments: "[1, 2".into(),
                }]),
                "trap" => panic!("the scripted agent was told to trap"),
                "err" => return Err("the scripted agent was told to fail its step".into()),
                "big-memo" => {
                    return agent::reply(agent::fail("unreachable"), &"x".repeat(2 << 20));
                }
                "spin" =>
                {
                    #[allow(clippy::empty_loop, reason = "spinning is the point")]
                    loop {}
                }
                other => return Err(format!("unknown script entry {other:?}")),
            }
        };
        agent::reply(action, &memo)
    }
}

warden_sdk::export_agent!(Scripted);
