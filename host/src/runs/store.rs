//! The run store: one SQLite file in the home (`<home>/runs.db`), WAL with
//! `synchronous=FULL`, so what a write recorded survives a crash of the process or the
//! machine. Several processes may share it (a `warden run` and a `warden serve` on the
//! same home); a run is driven by one at a time, the one holding its lease.
//!
//! Tables: `runs` (one row a run: status, usage, lease), `steps` (each action with the
//! memo returned with it, and its observation once recorded), `calls` (each tool call
//! of a `call-tools` step: pending, awaiting approval, started, done) and `approvals`
//! (the queue people decide on).

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, bail};
use rusqlite::{Connection, OptionalExtension as _, Row, params};
use serde::Serialize;
use serde_json::Value;

use super::action::{Action, Observation, ToolOutcome, ToolUse};

/// The store's file name in the home.
pub const FILE_NAME: &str = "runs.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id          TEXT PRIMARY KEY,
    agent       TEXT NOT NULL,
    principal   TEXT NOT NULL,
    roles       TEXT NOT NULL,
    task        TEXT NOT NULL,
    status      TEXT NOT NULL,
    result      TEXT,
    error       TEXT,
    steps       INTEGER NOT NULL DEFAULT 0,
    tokens      INTEGER NOT NULL DEFAULT 0,
    cost        REAL NOT NULL DEFAULT 0,
    active_ms   INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    finished_at INTEGER,
    owner       TEXT,
    lease_until INTEGER
);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
CREATE TABLE IF NOT EXISTS steps (
    run         TEXT NOT NULL,
    n           INTEGER NOT NULL,
    action      TEXT NOT NULL,
    memo        TEXT NOT NULL,
    observation TEXT,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    PRIMARY KEY (run, n)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS calls (
    run       TEXT NOT NULL,
    step      INTEGER NOT NULL,
    idx       INTEGER NOT NULL,
    id        TEXT NOT NULL,
    tool      TEXT NOT NULL,
    arguments TEXT NOT NULL,
    state     TEXT NOT NULL,
    outcome   TEXT,
    PRIMARY KEY (run, step, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS approvals (
    id         TEXT PRIMARY KEY,
    run        TEXT NOT NULL,
    step       INTEGER NOT NULL,
    call       INTEGER,
    agent      TEXT NOT NULL,
    principal  TEXT NOT NULL,
    tool       TEXT,
    arguments  TEXT,
    question   TEXT,
    schema     TEXT,
    policies   TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    decided_by TEXT,
    decided_at INTEGER,
    reason     TEXT,
    edited     TEXT,
    answer     TEXT
);
CREATE INDEX IF NOT EXISTS approvals_status ON approvals (status);
CREATE INDEX IF NOT EXISTS approvals_run ON approvals (run, step, call);
";

/// Where a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Being driven, or waiting for a process to pick it up.
    Running,
    /// Parked until a person decides an approval.
    AwaitingApproval,
    /// Done, with a result.
    Finished,
    /// Ended without a result.
    Failed,
    /// Stopped by a person.
    Cancelled,
}

impl Status {
    /// The status as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::AwaitingApproval => "awaiting-approval",
            Status::Finished => "finished",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    /// True once the run cannot continue.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Finished | Status::Failed | Status::Cancelled)
    }

    fn parse(text: &str) -> rusqlite::Result<Self> {
        Ok(match text {
            "running" => Status::Running,
            "awaiting-approval" => Status::AwaitingApproval,
            "finished" => Status::Finished,
            "failed" => Status::Failed,
            "cancelled" => Status::Cancelled,
            other => return Err(bad_value("status", other)),
        })
    }
}

impl std::str::FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Status::parse(s).map_err(|_| {
            format!(
                "unknown status {s:?} (running, awaiting-approval, finished, failed, cancelled)"
            )
        })
    }
}

fn bad_value(column: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("unknown {column} {value:?}").into(),
    )
}

fn json_column<T: serde::de::DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, e.into())
    })
}

fn json_opt<T: serde::de::DeserializeOwned>(
    row: &Row<'_>,
    index: usize,
) -> rusqlite::Result<Option<T>> {
    let text: Option<String> = row.get(index)?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, e.into())
        })
    })
    .transpose()
}

fn text(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// One run as stored.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// `run_<hex>`.
    pub id: String,
    /// The agent (plugin name).
    pub agent: String,
    /// Who started it.
    pub principal: String,
    /// The roles of who started it (the agent acts with them).
    pub roles: Vec<String>,
    /// The task.
    pub task: Value,
    /// Where it is.
    pub status: Status,
    /// The result, once finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Why it failed or was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Steps recorded.
    pub steps: u32,
    /// Model tokens used (input + output).
    pub tokens: u64,
    /// US dollars of model use.
    pub cost: f64,
    /// Time spent running, in ms.
    pub active_ms: u64,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// When it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    /// The process driving it, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

const RUN_COLUMNS: &str = "id, agent, principal, roles, task, status, result, error, steps, tokens, cost, active_ms, created_at, updated_at, finished_at, owner";

fn run_row(row: &Row<'_>) -> rusqlite::Result<Run> {
    Ok(Run {
        id: row.get(0)?,
        agent: row.get(1)?,
        principal: row.get(2)?,
        roles: json_column(row, 3)?,
        task: json_column(row, 4)?,
        status: Status::parse(&row.get::<_, String>(5)?)?,
        result: json_opt(row, 6)?,
        error: row.get(7)?,
        steps: row.get(8)?,
        tokens: row.get::<_, i64>(9)?.max(0) as u64,
        cost: row.get(10)?,
        active_ms: row.get::<_, i64>(11)?.max(0) as u64,
        created_at: row.get(12)?,
        updated_at: row.get(13)?,
        finished_at: row.get(14)?,
        owner: row.get(15)?,
    })
}

/// One step as stored.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// From 1.
    pub n: u32,
    /// What the agent asked for.
    pub action: Action,
    /// The memo it returned with the action.
    pub memo: Value,
    /// What came of it; none while it is being executed (or was, when the host
    /// stopped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observation: Option<Observation>,
    /// Milliseconds since the Unix epoch.
    pub started_at: i64,
    /// When the observation was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
}

fn step_row(row: &Row<'_>) -> rusqlite::Result<Step> {
    Ok(Step {
        n: row.get(0)?,
        action: json_column(row, 1)?,
        memo: json_column(row, 2)?,
        observation: json_opt(row, 3)?,
        started_at: row.get(4)?,
        finished_at: row.get(5)?,
    })
}

/// Where one tool call of a step is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallState {
    /// Not looked at yet.
    Pending,
    /// Waiting for a person.
    AwaitingApproval,
    /// Handed to the tool; its result not recorded yet.
    Started,
    /// Its outcome recorded.
    Done,
}

impl CallState {
    fn as_str(self) -> &'static str {
        match self {
            CallState::Pending => "pending",
            CallState::AwaitingApproval => "awaiting-approval",
            CallState::Started => "started",
            CallState::Done => "done",
        }
    }

    fn parse(text: &str) -> rusqlite::Result<Self> {
        Ok(match text {
            "pending" => CallState::Pending,
            "awaiting-approval" => CallState::AwaitingApproval,
            "started" => CallState::Started,
            "done" => CallState::Done,
            other => return Err(bad_value("call state", other)),
        })
    }
}

/// One tool call of a step.
#[derive(Clone, Debug, Serialize)]
pub struct Call {
    /// Its place in the action, from 0.
    pub idx: u32,
    /// The call as asked.
    #[serde(flatten)]
    pub call: ToolUse,
    /// Where it is.
    pub state: CallState,
    /// How it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<ToolOutcome>,
}

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
    fn as_str(self) -> &'static str {
        match self {
            Decision::Pending => "pending",
            Decision::Approved => "approved",
            Decision::Rejected => "rejected",
            Decision::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> rusqlite::Result<Self> {
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

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A fresh id: `prefix` and 16 hex digits.
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        bytes = now_ms().to_le_bytes();
    }
    format!("{prefix}_{}", hex::encode(bytes))
}

/// The run store.
pub struct RunStore {
    conn: Mutex<Connection>,
    path: std::path::PathBuf,
}

impl RunStore {
    /// Opens (creating if needed) the store at `path`: WAL, `synchronous=FULL`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let context = || format!("opening the run store {}", path.display());
        let conn = Connection::open(path).with_context(context)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
            .with_context(context)?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!(
                "{}: could not switch to WAL mode (got {mode})",
                path.display()
            );
        }
        conn.execute_batch("PRAGMA synchronous=FULL;")
            .with_context(context)?;
        conn.execute_batch(SCHEMA).with_context(context)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(Self {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn context(&self, what: &str) -> String {
        format!("{what} in the run store {}", self.path.display())
    }

    /// Records a new run, `running`, owned by no one.
    pub fn create(&self, run: &Run) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "INSERT INTO runs (id, agent, principal, roles, task, status, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?6)",
                params![run.id, run.agent, run.principal, text(&run.roles), text(&run.task), run.created_at],
            )
            .with_context(|| self.context("recording a new run"))?;
        Ok(())
    }

    /// The run with `id`.
    pub fn run(&self, id: &str) -> anyhow::Result<Option<Run>> {
        self.conn()
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                [id],
                run_row,
            )
            .optional()
            .with_context(|| self.context("reading a run"))
    }

    /// Runs, newest first, optionally only those with `status`.
    pub fn runs(&self, status: Option<Status>, limit: usize) -> anyhow::Result<Vec<Run>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE (?1 IS NULL OR status = ?1)
             ORDER BY created_at DESC, id LIMIT ?2"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    status.map(Status::as_str),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                run_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()
            .with_context(|| self.context("listing runs"))?;
        Ok(rows)
    }

    /// The runs that are `running`, with the process holding each (if any): those a
    /// process may pick up unless their owner is alive.
    pub fn running(&self) -> anyhow::Result<Vec<(String, Option<String>)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, owner FROM runs WHERE status = 'running' ORDER BY created_at",
        )?;
        let rows = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .with_context(|| self.context("listing runs to resume"))?;
        Ok(rows)
    }

    /// Takes the lease of run `id` for `owner` until `until`, if the run is `running`
    /// and its lease is free, expired, `owner`'s own or held by `stale` (a process
    /// known to be gone). True if taken.
    pub fn claim(
        &self,
        id: &str,
        owner: &str,
        until: i64,
        stale: Option<&str>,
    ) -> anyhow::Result<bool> {
        let n = self
            .conn()
            .execute(
                "UPDATE runs SET owner = ?2, lease_until = ?3
                 WHERE id = ?1 AND status = 'running'
                 AND (owner IS NULL OR owner = ?2 OR lease_until < ?4 OR owner = ?5)",
                params![id, owner, until, now_ms(), stale],
            )
            .with_context(|| self.context("claiming a run"))?;
        Ok(n == 1)
    }

    /// Gives up `owner`'s lease of run `id`.
    pub fn release(&self, id: &str, owner: &str) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "UPDATE runs SET owner = NULL, lease_until = NULL WHERE id = ?1 AND owner = ?2",
                params![id, owner],
            )
            .with_context(|| self.context("releasing a run"))?;
        Ok(())
    }

    /// The steps of run `id`, in order.
    pub fn steps(&self, id: &str) -> anyhow::Result<Vec<Step>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT n, action, memo, observation, started_at, finished_at FROM steps
             WHERE run = ?1 ORDER BY n",
        )?;
        let rows = stmt
            .query_map([id], step_row)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .with_context(|| self.context("reading steps"))?;
        Ok(rows)
    }

    /// The last step of run `id`.
    pub fn last_step(&self, id: &str) -> anyhow::Result<Option<Step>> {
        self.conn()
            .prepare_cached(
                "SELECT n, action, memo, observation, started_at, finished_at FROM steps
                 WHERE run = ?1 ORDER BY n DESC LIMIT 1",
            )?
            .query_row([id], step_row)
            .optional()
            .with_context(|| self.context("reading the last step"))
    }

    /// Records step `n` of a run `owner` holds: the action, the memo, and (for
    /// `call-tools`) each call, pending; with the run's running time. False if the run
    /// is no longer `running` under `owner` (cancelled meanwhile).
    pub fn begin_step(
        &self,
        id: &str,
        owner: &str,
        n: u32,
        action: &Action,
        memo: &Value,
        active_ms: u64,
    ) -> anyhow::Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = now_ms();
        let updated = tx.execute(
            "UPDATE runs SET steps = ?3, active_ms = ?4, updated_at = ?5
             WHERE id = ?1 AND owner = ?2 AND status = 'running'",
            params![id, owner, n, active_ms as i64, now],
        )?;
        if updated == 0 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO steps (run, n, action, memo, started_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, n, text(action), text(memo), now],
        )?;
        if let Action::CallTools { calls } = action {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO calls (run, step, idx, id, tool, arguments, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending')",
            )?;
            for (idx, call) in calls.iter().enumerate() {
                stmt.execute(params![
                    id,
                    n,
                    idx,
                    call.id,
                    call.tool,
                    text(&call.arguments)
                ])?;
            }
        }
        tx.commit()
            .with_context(|| self.context("recording a step"))?;
        Ok(true)
    }

    /// Records the observation of step `n`, and what the step's model use added.
    pub fn end_step(
        &self,
        id: &str,
        n: u32,
        observation: &Observation,
        tokens: u64,
        cost: f64,
        active_ms: u64,
    ) -> anyhow::Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = now_ms();
        tx.execute(
            "UPDATE steps SET observation = ?3, finished_at = ?4 WHERE run = ?1 AND n = ?2",
            params![id, n, text(observation), now],
        )?;
        tx.execute(
            "UPDATE runs SET tokens = tokens + ?2, cost = cost + ?3, active_ms = ?4, updated_at = ?5
             WHERE id = ?1",
            params![id, tokens as i64, cost, active_ms as i64, now],
        )?;
        tx.commit()
            .with_context(|| self.context("recording an observation"))?;
        Ok(())
    }

    /// The calls of step `n`.
    pub fn calls(&self, id: &str, n: u32) -> anyhow::Result<Vec<Call>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT idx, id, tool, arguments, state, outcome FROM calls
             WHERE run = ?1 AND step = ?2 ORDER BY idx",
        )?;
        let rows = stmt
            .query_map(params![id, n], |row| {
                Ok(Call {
                    idx: row.get(0)?,
                    call: ToolUse {
                        id: row.get(1)?,
                        tool: row.get(2)?,
                        arguments: json_column(row, 3)?,
                    },
                    state: CallState::parse(&row.get::<_, String>(4)?)?,
                    outcome: json_opt(row, 5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
            .with_context(|| self.context("reading a step's calls"))?;
        Ok(rows)
    }

    /// Moves call `idx` of step `n` to `state`, with its outcome once done.
    pub fn set_call(
        &self,
        id: &str,
        n: u32,
        idx: u32,
        state: CallState,
        outcome: Option<&ToolOutcome>,
    ) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "UPDATE calls SET state = ?4, outcome = ?5 WHERE run = ?1 AND step = ?2 AND idx = ?3",
                params![id, n, idx, state.as_str(), outcome.map(text)],
            )
            .with_context(|| self.context("recording a tool call"))?;
        Ok(())
    }

    /// Ends run `id`: `status` with its result or error. False if it had ended already.
    pub fn finish(
        &self,
        id: &str,
        status: Status,
        result: Option<&Value>,
        error: Option<&str>,
    ) -> anyhow::Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = now_ms();
        let n = tx.execute(
            "UPDATE runs SET status = ?2, result = ?3, error = ?4, finished_at = ?5, updated_at = ?5,
                owner = NULL, lease_until = NULL
             WHERE id = ?1 AND status IN ('running', 'awaiting-approval')",
            params![id, status.as_str(), result.map(text), error, now],
        )?;
        tx.execute(
            "UPDATE approvals SET status = 'cancelled' WHERE run = ?1 AND status = 'pending'",
            [id],
        )?;
        tx.commit().with_context(|| self.context("ending a run"))?;
        Ok(n == 1)
    }

    /// Parks run `id` until a person decides: `awaiting-approval`, lease given up.
    pub fn park(&self, id: &str, owner: &str, active_ms: u64) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "UPDATE runs SET status = 'awaiting-approval', owner = NULL, lease_until = NULL,
                    active_ms = ?3, updated_at = ?4
                 WHERE id = ?1 AND owner = ?2 AND status = 'running'",
                params![id, owner, active_ms as i64, now_ms()],
            )
            .with_context(|| self.context("parking a run"))?;
        Ok(())
    }

    /// Stores a new approval (pending) and returns it; the same call or question of
    /// the same step gets the one already stored.
    pub fn request_approval(&self, new: &NewApproval<'_>) -> anyhow::Result<Approval> {
        let call = new.call.map(|(idx, _)| idx);
        if let Some(existing) = self.approval_of(&new.run.id, new.step, call)? {
            return Ok(existing);
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
            .with_context(|| self.context("recording an approval"))?;
        self.approval(&id)?
            .context("the approval just recorded is missing")
    }

    /// The approval of call `call` (none: the question) of step `step` of run `run`.
    pub fn approval_of(
        &self,
        run: &str,
        step: u32,
        call: Option<u32>,
    ) -> anyhow::Result<Option<Approval>> {
        self.conn()
            .prepare_cached(&format!(
                "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE run = ?1 AND step = ?2 AND call IS ?3"
            ))?
            .query_row(params![run, step, call], approval_row)
            .optional()
            .with_context(|| self.context("reading an approval"))
    }

    /// The approval with `id`.
    pub fn approval(&self, id: &str) -> anyhow::Result<Option<Approval>> {
        self.conn()
            .query_row(
                &format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?1"),
                [id],
                approval_row,
            )
            .optional()
            .with_context(|| self.context("reading an approval"))
    }

    /// Approvals, oldest first; only pending ones unless `all`.
    pub fn approvals(&self, all: bool, run: Option<&str>) -> anyhow::Result<Vec<Approval>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals
             WHERE (?1 OR status = 'pending') AND (?2 IS NULL OR run = ?2)
             ORDER BY created_at, id"
        ))?;
        let rows = stmt
            .query_map(params![all, run], approval_row)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .with_context(|| self.context("listing approvals"))?;
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
    ) -> anyhow::Result<Option<Approval>> {
        {
            let mut conn = self.conn();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let now = now_ms();
            let (status, reason, edited, answer) = match verdict {
                Verdict::Approve { edited, answer } => (
                    Decision::Approved,
                    None,
                    edited.as_ref().map(text),
                    answer.as_ref().map(text),
                ),
                Verdict::Reject { reason } => {
                    (Decision::Rejected, Some(reason.clone()), None, None)
                }
            };
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
            tx.commit()
                .with_context(|| self.context("recording a decision"))?;
        }
        self.approval(id)
    }

    /// Removes runs that ended before `before` (ms since the epoch), with their steps,
    /// calls and approvals; returns how many.
    pub fn prune(&self, before: i64) -> anyhow::Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let old = "SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at < ?1";
        for table in ["steps", "calls", "approvals"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE run IN ({old})"),
                [before],
            )?;
        }
        let n = tx.execute(
            "DELETE FROM runs WHERE finished_at IS NOT NULL AND finished_at < ?1",
            [before],
        )?;
        tx.commit()
            .with_context(|| self.context("pruning old runs"))?;
        Ok(n)
    }
}
