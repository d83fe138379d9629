//! People's decisions on the approvals queue: a tool call a policy holds (approve,
//! approve with edited arguments, reject with a reason) or an agent's question
//! (answer, or decline). Deciding is itself an action the access policy rules on
//! (`decide-approval`, on the held tool or on the asking agent, with the run's starter,
//! the held arguments and the edit as its context: [`approval_context`]), and every
//! decision is an audit record naming who made it and any edit. By default (the roles'
//! permits) the starter of a run does not approve its own held calls; a policy file may
//! permit it. An approved call is decided again as a call, with the edited arguments
//! (`exec.rs`): a forbid still wins.

use serde_json::{Value, json};

use super::store::{Approval, Decision as Status, Verdict};
use super::{RunError, Runner, decision_name};
use warden_audit::{Event, Outcome};
use warden_policy::{self, ApprovalContext, Decision, Principal, Resource};
use warden_runtime::{Caller, Via};

/// Checks `answer` against the top of `schema`: its `type` and `required` keys (the
/// rest of a schema is for the person answering to follow).
fn check_answer(answer: &Value, schema: &Value) -> Result<(), String> {
    if let Some(kind) = schema.get("type").and_then(Value::as_str) {
        let fits = match kind {
            "object" => answer.is_object(),
            "array" => answer.is_array(),
            "string" => answer.is_string(),
            "number" => answer.is_number(),
            "integer" => answer.is_i64() || answer.is_u64(),
            "boolean" => answer.is_boolean(),
            "null" => answer.is_null(),
            _ => true,
        };
        if !fits {
            return Err(format!("the answer must be of type {kind}"));
        }
    }
    if let (Some(required), Some(object)) = (
        schema.get("required").and_then(Value::as_array),
        answer.as_object(),
    ) {
        for key in required.iter().filter_map(Value::as_str) {
            if !object.contains_key(key) {
                return Err(format!("the answer lacks the required key {key:?}"));
            }
        }
    }
    Ok(())
}

/// What `decide-approval` sees when `by` decides `decision` (`approve`, `reject`) on
/// `approval`, with `edited` arguments if any.
pub fn approval_context(
    approval: &Approval,
    by: &Principal,
    decision: &'static str,
    edited: Option<&Value>,
) -> ApprovalContext {
    let held = approval.arguments.clone().unwrap_or(Value::Null);
    ApprovalContext {
        kind: approval.kind,
        approval: approval.id.clone(),
        run: approval.run.clone(),
        agent: approval.agent.clone(),
        decision,
        starter: approval.principal.clone(),
        by_starter: is_starter(by, &approval.principal),
        tool: approval.tool.clone().unwrap_or_default(),
        arguments: edited.cloned().unwrap_or_else(|| held.clone()),
        held,
        edited: edited.is_some(),
    }
}

/// True when `by` is `starter`, or an agent acting for it.
fn is_starter(by: &Principal, starter: &str) -> bool {
    by.id == starter || by.on_behalf_of.as_deref() == Some(starter)
}

/// Why the starter of a run may not approve its hold, and what to do about it.
fn four_eyes_hint(approval: &Approval, by: &Principal) -> String {
    format!(
        " ({} started run {}, and by default the starter of a run may not approve its own held calls: \
         four eyes. Have another principal approve it, or let starters approve their own in the access \
         policy, policy.cedar: permit(principal == {}, action == Warden::Action::\"decide-approval\", \
         resource) when {{ context.by_starter }};)",
        approval.principal,
        approval.run,
        warden_policy::principal_entity(&by.id),
    )
}

impl Runner {
    /// The approvals queue: pending entries, or every entry with `all`.
    pub fn approvals(&self, all: bool) -> Result<Vec<Approval>, RunError> {
        Ok(self.store.approvals(all, None)?)
    }

    /// Records `by`'s `verdict` on approval `id`, after the access policy
    /// (`decide-approval`). Once no approval of its run is pending the run is
    /// `running` again; [`Runner::drive`] continues it (any process may).
    pub async fn decide(
        &self,
        id: &str,
        by: &Principal,
        verdict: Verdict,
    ) -> Result<Approval, RunError> {
        self.decide_as(&Caller::new(by.clone(), Via::Library), id, verdict)
            .await
    }

    /// As [`Runner::decide`], for `caller` asking through its entry point (the CLI,
    /// the HTTP API), which a refusal's `access.denied` record names.
    pub async fn decide_as(
        &self,
        caller: &Caller,
        id: &str,
        verdict: Verdict,
    ) -> Result<Approval, RunError> {
        let by = &caller.principal;
        let approval = self.store.approval(id)?.ok_or_else(|| {
            RunError::NotFound(format!("no approval {id:?} (see `warden approvals list`)"))
        })?;
        if approval.status != Status::Pending {
            return Err(RunError::Invalid(format!(
                "approval {id} is not pending: it was {} by {}",
                match approval.status {
                    Status::Approved => "approved",
                    Status::Rejected => "rejected",
                    _ => "cancelled with its run",
                },
                approval.decided_by.as_deref().unwrap_or("the host")
            )));
        }
        let question = approval.call.is_none();
        match &verdict {
            Verdict::Approve {
                edited: Some(_), ..
            } if question => {
                return Err(RunError::Invalid(format!(
                    "approval {id} is a question, not a tool call: answer it (--answer JSON) instead of editing arguments"
                )));
            }
            Verdict::Approve {
                edited: Some(edited),
                ..
            } if !edited.is_object() => {
                return Err(RunError::Invalid(
                    "the edited arguments must be a JSON object keyed by parameter name".into(),
                ));
            }
            Verdict::Approve { answer: None, .. } if question => {
                return Err(RunError::Invalid(format!(
                    "approval {id} is a question ({:?}): give the answer (--answer JSON)",
                    approval.question.as_deref().unwrap_or("")
                )));
            }
            Verdict::Approve {
                answer: Some(_), ..
            } if !question => {
                return Err(RunError::Invalid(format!(
                    "approval {id} is a tool call, not a question: approve it (optionally with --edit-args JSON) or reject it"
                )));
            }
            Verdict::Approve {
                answer: Some(answer),
                ..
            } => {
                if let Some(schema) = &approval.schema {
                    check_answer(answer, schema).map_err(|e| {
                        RunError::Invalid(format!("approval {id}: {e} (schema: {schema})"))
                    })?;
                }
            }
            Verdict::Reject { reason } if reason.trim().is_empty() => {
                return Err(RunError::Invalid(
                    "a rejection needs a reason (--reason TEXT)".into(),
                ));
            }
            _ => {}
        }
        let resource = match approval.tool.as_deref().and_then(|t| t.split_once('/')) {
            Some((plugin, tool)) => Resource::Tool {
                plugin: plugin.to_string(),
                tool: tool.to_string(),
                annotations: self
                    .plugins
                    .plugin(plugin)
                    .map(|p| p.annotations(tool))
                    .unwrap_or_default(),
                signer: self
                    .plugins
                    .plugin(plugin)
                    .ok()
                    .and_then(|p| p.signer.clone()),
            },
            None => Resource::Agent {
                name: approval.agent.clone(),
            },
        };
        let (verdict_name, edited, answer, reason) = match &verdict {
            Verdict::Approve { edited, answer } => {
                ("approve", edited.clone(), answer.clone(), None)
            }
            Verdict::Reject { reason } => ("reject", None, None, Some(reason.clone())),
        };
        let context = approval_context(&approval, by, verdict_name, edited.as_ref());
        // Through the gate: a refusal (a deny, or a hold, which a decision cannot wait
        // for) is on the record as `access.denied`, and as a denied `approval.decide`.
        let decision = self
            .runtime
            .admit(
                caller,
                warden_policy::Action::DecideApproval,
                &resource,
                &context.to_json(),
            )
            .await
            .unwrap_or_else(|refusal| refusal.decision);
        let mut event = Event::new("approval.decide", by.id.clone())
            .plugin(approval.agent.clone())
            .field("approval", approval.id.clone())
            .field("run", approval.run.clone())
            .field("step", approval.step)
            .field("verdict", verdict_name)
            .field("starter", approval.principal.clone())
            .field("by_starter", context.by_starter)
            .field("decision", decision_name(&decision))
            .field("policies", json!(decision.policies()));
        if let Some(tool) = &approval.tool {
            event = event.field("tool", tool.clone());
        }
        let refused = match &decision {
            Decision::Allow { .. } => None,
            Decision::Deny { reason, .. } => Some(reason.clone()),
            Decision::RequireApproval { .. } => Some(
                "the policy asks for approval of this decision, and a decision cannot wait for another".into(),
            ),
        };
        if let Some(why) = refused {
            self.record(event.outcome(Outcome::Denied).field("reason", why.clone()))
                .await?;
            let mut message = format!("{} may not decide approval {id}: {why}", by.id);
            // Refused for want of a permit (not by a forbid): say what four eyes asks.
            if context.by_starter
                && context.kind == "tool"
                && verdict_name == "approve"
                && decision.policies().is_empty()
            {
                message.push_str(&four_eyes_hint(&approval, by));
            }
            return Err(RunError::Denied(message));
        }
        let decided = self
            .store
            .decide(id, &by.id, &verdict)?
            .ok_or_else(|| RunError::Invalid(format!("approval {id} was decided meanwhile")))?;
        if let Some(edited) = &edited {
            event = event.field("edited_arguments", self.payload(edited));
        }
        if let Some(answer) = &answer {
            event = event.field("answer", self.payload(answer));
        }
        if let Some(reason) = reason {
            event = event.field("reason", reason);
        }
        self.record(event.outcome(Outcome::Ok)).await?;
        Ok(decided)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked_against_the_top_of_the_schema() {
        let schema = json!({"type": "object", "required": ["ok"]});
        assert!(check_answer(&json!({"ok": true}), &schema).is_ok());
        assert_eq!(
            check_answer(&json!({}), &schema).unwrap_err(),
            "the answer lacks the required key \"ok\""
        );
        assert_eq!(
            check_answer(&json!("yes"), &schema).unwrap_err(),
            "the answer must be of type object"
        );
    }
}
