//! The approvals queue as stored: tool calls a policy holds, agents' questions, and
//! people's decisions on them.

use rusqlite::{OptionalExtension as _, Row, params};
use serde::Serialize;
use serde_json::Value;

use super::postgres as pg;
use super::records::Run;
use super::{RunStore, StoreError, bad_value, json_column, json_opt, new_id, now_ms, text};
use crate::action::ToolUse;

/// Where an approval is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Waiting for a person.
    Pending,
    /// Approved (perhaps with edited arguments, or answered).
    Approved,
    /// Rejected, with a reason.
    Rejected,
    /// Its run was cancelled.
    Cancelled,
}

impl Decision {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Decision::Pending => "pending",
            Decision::Approved => "approved",
            Decision::Rejected => "rejected",
            Decision::Cancelled => "cancelled",
        }
    }

    pub(super) fn parse(text: &str) -> rusqlite::Result<Self> {
        Ok(match text {
            "pending" => Decision::Pending,
            "approved" => Decision::Approved,
            "rejected" => Decision::Rejected,
            "cancelled" => Decision::Cancelled,
            other => return Err(bad_value("approval status", other)),
        })
    }
}

/// One entry of the approvals queue: a tool call a policy holds, or an agent's
/// question.
#[derive(Clone, Debug, Serialize)]
pub struct Approval {
    /// `apr_<hex>`.
    pub id: String,
    /// The run it holds.
    pub run: String,
    /// The step.
    pub step: u32,
    /// The call of the step (none for a question).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<u32>,
    /// The agent.
    pub agent: String,
    /// Who started the run.
    pub principal: String,
    /// `tool` or `question`.
    pub kind: &'static str,
    /// The tool, for a call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Its arguments as the agent gave them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Value>,
    /// The question.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    /// The schema of the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    /// The policies that asked for approval.
    pub policies: Vec<String>,
    /// Where it is.
    pub status: Decision,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Who decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// When.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<i64>,
    /// Why (a rejection's reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Arguments a person put in place of the agent's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited: Option<Value>,
    /// A person's answer to the question.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<Value>,
}

const APPROVAL_COLUMNS: &str = "id, run, step, call, agent, principal, tool, arguments, question, schema, policies, status, created_at, decided_by, decided_at, reason, edited, answer";

fn approval_row(row: &Row<'_>) -> rusqlite::Result<Approval> {
    let call: Option<u32> = row.get(3)?;
    Ok(Approval {
        id: row.get(0)?,
        run: row.get(1)?,
        step: row.get(2)?,
        call,
        agent: row.get(4)?,
        principal: row.get(5)?,
        kind: if call.is_some() { "tool" } else { "question" },
        tool: row.get(6)?,
        arguments: json_opt(row, 7)?,
        question: row.get(8)?,
        schema: json_opt(row, 9)?,
        policies: json_column(row, 10)?,
        status: Decision::parse(&row.get::<_, String>(11)?)?,
        created_at: row.get(12)?,
        decided_by: row.get(13)?,
        decided_at: row.get(14)?,
        reason: row.get(15)?,
        edited: json_opt(row, 16)?,
        answer: json_opt(row, 17)?,
    })
}

/// A new approval, before it is stored.
pub struct NewApproval<'a> {
    pub run: &'a Run,
    pub step: u32,
    pub call: Option<(u32, &'a ToolUse)>,
    pub question: Option<(&'a str, Option<&'a Value>)>,
    pub policies: &'a [String],
}

/// A person's decision on an approval.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// Go ahead; for a call, perhaps with other arguments; for a question, the answer.
    Approve {
        edited: Option<Value>,
        answer: Option<Value>,
    },
    /// Do not; why.
    Reject { reason: String },
}

impl RunStore {
    /// Stores a new approval (pending) and returns it; the same call or question of
    /// the same step gets the one already stored.
    pub fn request_approval(&self, new: &NewApproval<'_>) -> Result<Approval, StoreError> {
        let call = new.call.map(|(idx, _)| idx);
        if let Some(existing) = self.approval_of(&new.run.id, new.step, call)? {
            return Ok(existing);
        }
        if let Some(pool) = self.pg() {
            let id = pg::request_approval(pool, new)?;
            return self.approval(&id)?.ok_or(StoreError::ApprovalMissing);
        }
        let id = new_id("apr");
        self.conn()
            .execute(
                "INSERT INTO approvals (id, run, step, call, agent, principal, tool, arguments,
                    question, schema, policies, status, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'pending', ?12)",
                params![
                    id,
                    new.run.id,
                    new.step,
                    call,
                    new.run.agent,
                    new.run.principal,
                    new.call.map(|(_, c)| c.tool.clone()),
                    new.call.map(|(_, c)| text(&c.arguments)),
                    new.question.map(|(q, _)| q.to_string()),
                    new.question.and_then(|(_, s)| s).map(text),
                    text(&new.policies),
                    now_ms()
                ],
            )
            .map_err(self.failed("recording an approval"))?;
        self.approval(&id)?.ok_or(StoreError::ApprovalMissing)
    }

    /// Stores a new approval (pending) for a direct call a policy holds: a call over
    /// MCP, not an agent run's action. It has no run: its `run` and `agent` are empty,
    /// its step and call 0; `principal` is the caller, `tool` is `plugin/tool`.
    pub fn hold_call(
        &self,
        principal: &str,
        tool: &str,
        arguments: &Value,
        policies: &[String],
    ) -> Result<Approval, StoreError> {
        if let Some(pool) = self.pg() {
            let id = pg::hold_call(pool, principal, tool, arguments, policies)?;
            return self.approval(&id)?.ok_or(StoreError::ApprovalMissing);
        }
        let id = new_id("apr");
        self.conn()
            .execute(
                "INSERT INTO approvals (id, run, step, call, agent, principal, tool, arguments,
                    policies, status, created_at)
                 VALUES (?1, '', 0, 0, '', ?2, ?3, ?4, ?5, 'pending', ?6)",
                params![
                    id,
                    principal,
                    tool,
                    text(arguments),
                    text(&policies),
                    now_ms()
                ],
            )
            .map_err(self.failed("recording an approval"))?;
        self.approval(&id)?.ok_or(StoreError::ApprovalMissing)
    }

    /// The approval of call `call` (none: the question) of step `step` of run `run`.
    pub fn approval_of(
        &self,
        run: &str,
        step: u32,
        call: Option<u32>,
    ) -> Result<Option<Approval>, StoreError> {
        if let Some(pool) = self.pg() {
            return pg::approval_of(pool, run, step, call);
        }
        self.conn()
            .prepare_cached(&format!(
                "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE run = ?1 AND step = ?2 AND call IS ?3"
            ))?
            .query_row(params![run, step, call], approval_row)
            .optional()
            .map_err(self.failed("reading an approval"))
    }

    /// The approval with `id`.
    pub fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        if let Some(pool) = self.pg() {
            return pg::approval(pool, id);
        }
        self.conn()
            .query_row(
                &format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?1"),
                [id],
                approval_row,
            )
            .optional()
            .map_err(self.failed("reading an approval"))
    }

    /// Approvals, oldest first; only pending ones unless `all`.
    pub fn approvals(&self, all: bool, run: Option<&str>) -> Result<Vec<Approval>, StoreError> {
        if let Some(pool) = self.pg() {
            return pg::approvals(pool, all, run);
        }
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals
             WHERE (?1 OR status = 'pending') AND (?2 IS NULL OR run = ?2)
             ORDER BY created_at, id"
        ))?;
        let rows = stmt
            .query_map(params![all, run], approval_row)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.failed("listing approvals"))?;
        Ok(rows)
    }

    /// Records `by`'s verdict on pending approval `id`; once no approval of its run is
    /// pending, the run is `running` again (for any process to pick up). Returns the
    /// approval as decided, or `None` if it was not pending.
    pub fn decide(
        &self,
        id: &str,
        by: &str,
        verdict: &Verdict,
    ) -> Result<Option<Approval>, StoreError> {
        let (status, reason, edited, answer) = match verdict {
            Verdict::Approve { edited, answer } => (
                Decision::Approved,
                None,
                edited.as_ref().map(text),
                answer.as_ref().map(text),
            ),
            Verdict::Reject { reason } => (Decision::Rejected, Some(reason.clone()), None, None),
        };
        if let Some(pool) = self.pg() {
            if !pg::decide(pool, id, by, status, (reason, edited, answer))? {
                return Ok(None);
            }
            return self.approval(id);
        }
        {
            let mut conn = self.conn();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let now = now_ms();
            let n = tx.execute(
                "UPDATE approvals SET status = ?2, decided_by = ?3, decided_at = ?4, reason = ?5,
                    edited = ?6, answer = ?7
                 WHERE id = ?1 AND status = 'pending'",
                params![id, status.as_str(), by, now, reason, edited, answer],
            )?;
            if n == 0 {
                return Ok(None);
            }
            tx.execute(
                "UPDATE runs SET status = 'running', updated_at = ?2
                 WHERE id = (SELECT run FROM approvals WHERE id = ?1)
                 AND status = 'awaiting-approval'
                 AND NOT EXISTS (SELECT 1 FROM approvals a WHERE a.run = runs.id AND a.status = 'pending')",
                params![id, now],
            )?;
            tx.commit().map_err(self.failed("recording a decision"))?;
        }
        self.approval(id)
    }
}
