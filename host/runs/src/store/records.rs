//! Runs, their steps and the tool calls of each step, as stored.

use std::time::Duration;

use rusqlite::{OptionalExtension as _, Row, params};
use serde::Serialize;
use serde_json::Value;

use super::hot::Immediate;
use super::postgres::{self as pg, Begin, End};
use super::{Lease, RunStore, StoreError, bad_value, json_column, json_opt, now_ms, text};
use crate::action::{Action, Observation, ToolOutcome, ToolUse};

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

    pub(super) fn parse(text: &str) -> rusqlite::Result<Self> {
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
    pub(super) fn as_str(self) -> &'static str {
        match self {
            CallState::Pending => "pending",
            CallState::AwaitingApproval => "awaiting-approval",
            CallState::Started => "started",
            CallState::Done => "done",
        }
    }

    pub(super) fn parse(text: &str) -> rusqlite::Result<Self> {
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

impl RunStore {
    /// Records a new run, `running`, owned by no one.
    pub fn create(&self, run: &Run) -> Result<(), StoreError> {
        if let Some(pool) = self.pg() {
            return pg::create(pool, run);
        }
        self.conn()
            .execute(
                "INSERT INTO runs (id, agent, principal, roles, task, status, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?6)",
                params![run.id, run.agent, run.principal, text(&run.roles), text(&run.task), run.created_at],
            )
            .map_err(self.failed("recording a new run"))?;
        Ok(())
    }

    /// The run with `id`.
    pub fn run(&self, id: &str) -> Result<Option<Run>, StoreError> {
        if let Some(pool) = self.pg() {
            return pg::run(pool, id);
        }
        self.conn()
            .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))
            .and_then(|mut statement| statement.query_row([id], run_row))
            .optional()
            .map_err(self.failed("reading a run"))
    }

    /// Runs, newest first, optionally only those with `status`.
    pub fn runs(&self, status: Option<Status>, limit: usize) -> Result<Vec<Run>, StoreError> {
        if let Some(pool) = self.pg() {
            return pg::runs(pool, status, limit);
        }
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
            .map_err(self.failed("listing runs"))?;
        Ok(rows)
    }

    /// The runs that are `running`, with the process holding each (if any) and whether
    /// its lease ran out: those a process may pick up unless their owner is alive.
    pub fn running(&self) -> Result<Vec<Lease>, StoreError> {
        if let Some(pool) = self.pg() {
            return pg::running(pool);
        }
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, owner, COALESCE(lease_until < ?1, 1) FROM runs
             WHERE status = 'running' ORDER BY created_at",
        )?;
        let rows = stmt
            .query_map([now_ms()], |row| {
                Ok(Lease {
                    run: row.get(0)?,
                    owner: row.get(1)?,
                    expired: row.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.failed("listing runs to resume"))?;
        Ok(rows)
    }

    /// Takes the lease of run `id` for `owner` for `lease` from now (by the store's
    /// clock: the database's, in a cluster), if the run is `running` and its lease is
    /// free, expired, `owner`'s own or held by `stale` (a process known to be gone).
    /// True if taken. Of two processes claiming at once, one gets it.
    pub fn claim(
        &self,
        id: &str,
        owner: &str,
        lease: Duration,
        stale: Option<&str>,
    ) -> Result<bool, StoreError> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        if let Some(pool) = self.pg() {
            return pg::claim(pool, id, owner, lease_ms, stale);
        }
        let now = now_ms();
        let n = self
            .conn()
            .execute(
                "UPDATE runs SET owner = ?2, lease_until = ?3
                 WHERE id = ?1 AND status = 'running'
                 AND (owner IS NULL OR owner = ?2 OR lease_until < ?4 OR owner = ?5)",
                params![id, owner, now.saturating_add(lease_ms), now, stale],
            )
            .map_err(self.failed("claiming a run"))?;
        Ok(n == 1)
    }

    /// Gives up `owner`'s lease of run `id`.
    pub fn release(&self, id: &str, owner: &str) -> Result<(), StoreError> {
        if let Some(pool) = self.pg() {
            return pg::release(pool, id, owner);
        }
        self.conn()
            .execute(
                "UPDATE runs SET owner = NULL, lease_until = NULL WHERE id = ?1 AND owner = ?2",
                params![id, owner],
            )
            .map_err(self.failed("releasing a run"))?;
        Ok(())
    }

    /// The steps of run `id`, in order.
    pub fn steps(&self, id: &str) -> Result<Vec<Step>, StoreError> {
        if let Some(pool) = self.pg() {
            return pg::steps(pool, id, false);
        }
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT n, action, memo, observation, started_at, finished_at FROM steps
             WHERE run = ?1 ORDER BY n",
        )?;
        let rows = stmt
            .query_map([id], step_row)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.failed("reading steps"))?;
        Ok(rows)
    }

    /// True when run `id` is `running` and `owner` holds its lease: what a process
    /// driving the run checks before each step (a person may have cancelled it, or
    /// another process taken it over).
    pub fn holds(&self, id: &str, owner: &str) -> Result<bool, StoreError> {
        if let Some(pool) = self.pg() {
            return pg::holds(pool, id, owner);
        }
        held(&self.conn(), id, owner).map_err(self.failed("reading a run's holder"))
    }

    /// The last step of run `id`.
    pub fn last_step(&self, id: &str) -> Result<Option<Step>, StoreError> {
        if let Some(pool) = self.pg() {
            return Ok(pg::steps(pool, id, true)?.pop());
        }
        self.conn()
            .prepare_cached(
                "SELECT n, action, memo, observation, started_at, finished_at FROM steps
                 WHERE run = ?1 ORDER BY n DESC LIMIT 1",
            )?
            .query_row([id], step_row)
            .optional()
            .map_err(self.failed("reading the last step"))
    }

    /// Records step `n` of a run `owner` holds: the action, the memo, and (for
    /// `call-tools`) each call, pending (the first one started if `first_started`: its
    /// checks were made and it runs next); with the run's running time. False if the
    /// run is no longer `running` under `owner` (cancelled meanwhile).
    #[expect(clippy::too_many_arguments, reason = "one step's whole beginning")]
    pub fn begin_step(
        &self,
        id: &str,
        owner: &str,
        n: u32,
        action: &Action,
        memo: &Value,
        first_started: bool,
        active_ms: u64,
    ) -> Result<bool, StoreError> {
        if let Some(pool) = self.pg() {
            let begin = Begin {
                id,
                owner,
                n,
                action,
                memo,
                first_started,
                active_ms,
            };
            return pg::begin_step(pool, &begin);
        }
        let conn = self.conn();
        let tx = Immediate::begin(&conn)?;
        let now = now_ms();
        let updated = exec(
            &tx,
            "UPDATE runs SET steps = ?3, active_ms = ?4, updated_at = ?5
             WHERE id = ?1 AND owner = ?2 AND status = 'running'",
            params![id, owner, n, active_ms as i64, now],
        )?;
        if updated == 0 {
            return Ok(false);
        }
        exec(
            &tx,
            "INSERT INTO steps (run, n, action, memo, started_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, n, text(action), text(memo), now],
        )?;
        if let Action::CallTools { calls } = action {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO calls (run, step, idx, id, tool, arguments, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (idx, call) in calls.iter().enumerate() {
                let state = if idx == 0 && first_started {
                    CallState::Started
                } else {
                    CallState::Pending
                };
                stmt.execute(params![
                    id,
                    n,
                    idx,
                    call.id,
                    call.tool,
                    text(&call.arguments),
                    state.as_str()
                ])?;
            }
        }
        tx.commit().map_err(self.failed("recording a step"))?;
        Ok(true)
    }

    /// Records the observation of step `n` of a run `owner` holds, and what the step's
    /// model use added; in the same transaction, marks `done` calls of the step done
    /// with their outcomes (the step's last call: one commit instead of two). False
    /// (nothing written) if `owner` no longer holds the run: another process took it
    /// over after the lease ran out. In SQLite the transaction is written, not synced:
    /// the next commit syncs it.
    #[expect(clippy::too_many_arguments, reason = "one step's whole ending")]
    pub fn end_step(
        &self,
        id: &str,
        owner: &str,
        n: u32,
        observation: &Observation,
        done: &[(u32, ToolOutcome)],
        tokens: u64,
        cost: f64,
        active_ms: u64,
    ) -> Result<bool, StoreError> {
        if let Some(pool) = self.pg() {
            let end = End {
                id,
                owner,
                n,
                observation,
                done,
                tokens,
                cost,
                active_ms,
            };
            return pg::end_step(pool, &end);
        }
        let conn = self.conn();
        // Written before the answer, synced with the next commit: the next step's, or
        // the run's end or parking, always follows before anything acts on the
        // observation, and syncs the WAL with its own. A step makes one fsync fewer.
        // A power cut in between loses the observation: the call is then found
        // started and not done, as a cut during the call leaves it (not run again,
        // `run.interrupted`); the audit log keeps the call's record either way.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let ended = end_step_written(
            &conn,
            id,
            owner,
            n,
            observation,
            done,
            (tokens, cost, active_ms),
        );
        conn.pragma_update(None, "synchronous", "FULL")?;
        ended.map_err(self.failed("recording an observation"))
    }

    /// Adds what an agent's step used itself (its own model calls) to run `id`'s
    /// totals.
    pub fn add_usage(&self, id: &str, tokens: u64, cost: f64) -> Result<(), StoreError> {
        if let Some(pool) = self.pg() {
            return pg::add_usage(pool, id, tokens, cost);
        }
        self.conn()
            .execute(
                "UPDATE runs SET tokens = tokens + ?2, cost = cost + ?3, updated_at = ?4
                 WHERE id = ?1",
                params![id, tokens as i64, cost, now_ms()],
            )
            .map_err(self.failed("recording a step's model use"))?;
        Ok(())
    }

    /// The calls of step `n`.
    pub fn calls(&self, id: &str, n: u32) -> Result<Vec<Call>, StoreError> {
        if let Some(pool) = self.pg() {
            return pg::calls(pool, id, n);
        }
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
            .map_err(self.failed("reading a step's calls"))?;
        Ok(rows)
    }

    /// Marks call `idx` of step `n` started, just before it runs, if `owner` still
    /// holds the run (false: another process took it over, and the call must not run
    /// here).
    pub fn start_call(&self, id: &str, owner: &str, n: u32, idx: u32) -> Result<bool, StoreError> {
        if let Some(pool) = self.pg() {
            return pg::start_call(pool, (id, n, idx), owner);
        }
        let n = self
            .conn()
            .prepare_cached(
                "UPDATE calls SET state = 'started', outcome = NULL
                 WHERE run = ?1 AND step = ?2 AND idx = ?3
                 AND EXISTS (SELECT 1 FROM runs WHERE id = ?1 AND owner = ?4 AND status = 'running')")
            .and_then(|mut statement| statement.execute(params![id, n, idx, owner]))
            .map_err(self.failed("recording a tool call"))?;
        Ok(n == 1)
    }

    /// Moves call `idx` of step `n` to `state`, with its outcome once done.
    pub fn set_call(
        &self,
        id: &str,
        n: u32,
        idx: u32,
        state: CallState,
        outcome: Option<&ToolOutcome>,
    ) -> Result<(), StoreError> {
        if let Some(pool) = self.pg() {
            return pg::set_call(pool, (id, n, idx), state, outcome);
        }
        self.conn()
            .prepare_cached(
                "UPDATE calls SET state = ?4, outcome = ?5 WHERE run = ?1 AND step = ?2 AND idx = ?3")
            .and_then(|mut statement| statement.execute(params![id, n, idx, state.as_str(), outcome.map(text)]))
            .map_err(self.failed("recording a tool call"))?;
        Ok(())
    }

    /// Ends run `id`: `status` with its result or error. False if it had ended already.
    pub fn finish(
        &self,
        id: &str,
        owner: Option<&str>,
        status: Status,
        result: Option<&Value>,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        if let Some(pool) = self.pg() {
            return pg::finish(pool, id, owner, status, result, error);
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = now_ms();
        let n = exec(&tx,
            "UPDATE runs SET status = ?2, result = ?3, error = ?4, finished_at = ?5, updated_at = ?5,
                owner = NULL, lease_until = NULL
             WHERE id = ?1 AND status IN ('running', 'awaiting-approval')
               AND (?6 IS NULL OR owner = ?6)",
            params![id, status.as_str(), result.map(text), error, now, owner],
        )?;
        if n == 1 {
            exec(
                &tx,
                "UPDATE approvals SET status = 'cancelled' WHERE run = ?1 AND status = 'pending'",
                [id],
            )?;
        }
        tx.commit().map_err(self.failed("ending a run"))?;
        Ok(n == 1)
    }

    /// Parks run `id` until a person decides: `awaiting-approval`, lease given up.
    pub fn park(&self, id: &str, owner: &str, active_ms: u64) -> Result<(), StoreError> {
        if let Some(pool) = self.pg() {
            return pg::park(pool, id, owner, active_ms);
        }
        self.conn()
            .execute(
                "UPDATE runs SET status = 'awaiting-approval', owner = NULL, lease_until = NULL,
                    active_ms = ?3, updated_at = ?4
                 WHERE id = ?1 AND owner = ?2 AND status = 'running'",
                params![id, owner, active_ms as i64, now_ms()],
            )
            .map_err(self.failed("parking a run"))?;
        Ok(())
    }
}

/// [`RunStore::end_step`]'s transaction, on a connection set to write without syncing.
fn end_step_written(
    conn: &rusqlite::Connection,
    id: &str,
    owner: &str,
    n: u32,
    observation: &Observation,
    done: &[(u32, ToolOutcome)],
    (tokens, cost, active_ms): (u64, f64, u64),
) -> rusqlite::Result<bool> {
    let tx = Immediate::begin(conn)?;
    let now = now_ms();
    if !held(&tx, id, owner)? {
        return Ok(false);
    }
    for (idx, outcome) in done {
        exec(
            &tx,
            "UPDATE calls SET state = 'done', outcome = ?4 WHERE run = ?1 AND step = ?2 AND idx = ?3",
            params![id, n, idx, text(outcome)],
        )?;
    }
    exec(
        &tx,
        "UPDATE steps SET observation = ?3, finished_at = ?4 WHERE run = ?1 AND n = ?2",
        params![id, n, text(observation), now],
    )?;
    exec(
        &tx,
        "UPDATE runs SET tokens = tokens + ?2, cost = cost + ?3, active_ms = ?4, updated_at = ?5
         WHERE id = ?1",
        params![id, tokens as i64, cost, active_ms as i64, now],
    )?;
    tx.commit()?;
    Ok(true)
}

/// True when run `id` is `running` and `owner` holds its lease (a run that ends or
/// parks has no holder).
fn held(conn: &rusqlite::Connection, id: &str, owner: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM runs WHERE id = ?1 AND owner = ?2 AND status = 'running'")?
        .exists(params![id, owner])
}

/// Runs `sql` through the connection's statement cache: a step's statements are the
/// same every time, and preparing them afresh was a tenth of a step's CPU.
fn exec(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}
