//! The run store in the cluster's database: `runs`, `run_steps`, `run_calls` and
//! `run_approvals` (made by `warden_postgres::migrate`), written as the SQLite store
//! writes its tables, so both backends answer alike.
//!
//! Two nodes never drive one run: a lease is taken by one `UPDATE` whose condition
//! (free, the taker's own, or run out by the database's clock) PostgreSQL evaluates
//! again on the row as committed when another node changed it meanwhile, so of two
//! nodes claiming at once one gets the row. A decision locks its run's row first, so
//! two approvals of one run decided on two nodes at once still see each other.

use postgres::types::FromSql;
use serde_json::Value;
use warden_postgres::{Pool, Row, SqlError};

use super::approvals::{Approval, Decision, NewApproval};
use super::records::{Call, CallState, Run, Status, Step};
use super::{Lease, StoreError, new_id, now_ms, text};
use crate::action::{Action, Observation, ToolOutcome, ToolUse};

/// The database's clock, in ms since the Unix epoch: what leases are compared with.
const DB_NOW: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

const RUN_COLUMNS: &str = "id, agent, principal, roles, task, status, result, error, steps, tokens, cost, active_ms, created_at, updated_at, finished_at, owner";

const APPROVAL_COLUMNS: &str = "id, run, step, call, agent, principal, tool, arguments, question, schema, policies, status, created_at, decided_by, decided_at, reason, edited, answer";

const STEP_COLUMNS: &str = "n, action, memo, observation, started_at, finished_at";

fn run_sql<R: Send + 'static>(
    pool: &Pool,
    action: &str,
    f: impl FnMut(&mut warden_postgres::Client) -> Result<R, SqlError> + Send + 'static,
) -> Result<R, StoreError> {
    Ok(pool.run(action, f)?)
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, StoreError> {
    row.try_get(index)
        .map_err(|e| StoreError::Corrupt(format!("column {index}: {e}")))
}

fn small(row: &Row, index: usize) -> Result<u32, StoreError> {
    let n: i64 = get(row, index)?;
    u32::try_from(n)
        .map_err(|_| StoreError::Corrupt(format!("column {index}: {n} is out of range")))
}

fn json<T: serde::de::DeserializeOwned>(row: &Row, index: usize) -> Result<T, StoreError> {
    let text: String = get(row, index)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("column {index}: {e}")))
}

fn json_opt<T: serde::de::DeserializeOwned>(
    row: &Row,
    index: usize,
) -> Result<Option<T>, StoreError> {
    let text: Option<String> = get(row, index)?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("column {index}: {e}")))
    })
    .transpose()
}

fn corrupt(err: rusqlite::Error) -> StoreError {
    StoreError::Corrupt(err.to_string())
}

fn run_row(row: &Row) -> Result<Run, StoreError> {
    Ok(Run {
        id: get(row, 0)?,
        agent: get(row, 1)?,
        principal: get(row, 2)?,
        roles: json(row, 3)?,
        task: json(row, 4)?,
        status: Status::parse(&get::<String>(row, 5)?).map_err(corrupt)?,
        result: json_opt(row, 6)?,
        error: get(row, 7)?,
        steps: small(row, 8)?,
        tokens: get::<i64>(row, 9)?.max(0) as u64,
        cost: get(row, 10)?,
        active_ms: get::<i64>(row, 11)?.max(0) as u64,
        created_at: get(row, 12)?,
        updated_at: get(row, 13)?,
        finished_at: get(row, 14)?,
        owner: get(row, 15)?,
    })
}

fn step_row(row: &Row) -> Result<Step, StoreError> {
    Ok(Step {
        n: small(row, 0)?,
        action: json(row, 1)?,
        memo: json(row, 2)?,
        observation: json_opt(row, 3)?,
        started_at: get(row, 4)?,
        finished_at: get(row, 5)?,
    })
}

fn approval_row(row: &Row) -> Result<Approval, StoreError> {
    let call: Option<i64> = get(row, 3)?;
    let call = call
        .map(|c| u32::try_from(c).map_err(|_| StoreError::Corrupt(format!("call {c}"))))
        .transpose()?;
    Ok(Approval {
        id: get(row, 0)?,
        run: get(row, 1)?,
        step: small(row, 2)?,
        call,
        agent: get(row, 4)?,
        principal: get(row, 5)?,
        kind: if call.is_some() { "tool" } else { "question" },
        tool: get(row, 6)?,
        arguments: json_opt(row, 7)?,
        question: get(row, 8)?,
        schema: json_opt(row, 9)?,
        policies: json(row, 10)?,
        status: Decision::parse(&get::<String>(row, 11)?).map_err(corrupt)?,
        created_at: get(row, 12)?,
        decided_by: get(row, 13)?,
        decided_at: get(row, 14)?,
        reason: get(row, 15)?,
        edited: json_opt(row, 16)?,
        answer: json_opt(row, 17)?,
    })
}

pub(super) fn create(pool: &Pool, run: &Run) -> Result<(), StoreError> {
    let (id, agent, principal) = (run.id.clone(), run.agent.clone(), run.principal.clone());
    let (roles, task, at) = (text(&run.roles), text(&run.task), run.created_at);
    run_sql(pool, "recording a new run", move |c| {
        c.execute(
            "INSERT INTO runs (id, agent, principal, roles, task, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'running', $6, $6)",
            &[&id, &agent, &principal, &roles, &task, &at],
        )
        .map(drop)
    })
}

pub(super) fn run(pool: &Pool, id: &str) -> Result<Option<Run>, StoreError> {
    let id = id.to_string();
    run_sql(pool, "reading a run", move |c| {
        c.query_opt(
            &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"),
            &[&id],
        )
    })?
    .as_ref()
    .map(run_row)
    .transpose()
}

pub(super) fn runs(
    pool: &Pool,
    status: Option<Status>,
    limit: usize,
) -> Result<Vec<Run>, StoreError> {
    let status = status.map(|s| s.as_str().to_string());
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    run_sql(pool, "listing runs", move |c| {
        c.query(
            &format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE ($1::text IS NULL OR status = $1)
                 ORDER BY created_at DESC, id LIMIT $2"
            ),
            &[&status, &limit],
        )
    })?
    .iter()
    .map(run_row)
    .collect()
}

pub(super) fn running(pool: &Pool) -> Result<Vec<Lease>, StoreError> {
    let rows = run_sql(pool, "listing runs to resume", |c| {
        c.query(
            &format!(
                "SELECT id, owner, COALESCE(lease_until < {DB_NOW}, true) FROM runs
                 WHERE status = 'running' ORDER BY created_at"
            ),
            &[],
        )
    })?;
    rows.iter()
        .map(|row| {
            Ok(Lease {
                run: get(row, 0)?,
                owner: get(row, 1)?,
                expired: get(row, 2)?,
            })
        })
        .collect()
}

pub(super) fn claim(
    pool: &Pool,
    id: &str,
    owner: &str,
    lease_ms: i64,
    stale: Option<&str>,
) -> Result<bool, StoreError> {
    let (id, owner, stale) = (id.to_string(), owner.to_string(), stale.map(str::to_string));
    let n = run_sql(pool, "claiming a run", move |c| {
        c.execute(
            &format!(
                "UPDATE runs SET owner = $2, lease_until = {DB_NOW} + $3
                 WHERE id = $1 AND status = 'running'
                 AND (owner IS NULL OR owner = $2 OR lease_until < {DB_NOW} OR owner = $4)"
            ),
            &[&id, &owner, &lease_ms, &stale],
        )
    })?;
    Ok(n == 1)
}

pub(super) fn holds(pool: &Pool, id: &str, owner: &str) -> Result<bool, StoreError> {
    let (id, owner) = (id.to_string(), owner.to_string());
    let row = run_sql(pool, "reading a run's holder", move |c| {
        c.query_opt(
            "SELECT 1 FROM runs WHERE id = $1 AND owner = $2 AND status = 'running'",
            &[&id, &owner],
        )
    })?;
    Ok(row.is_some())
}

pub(super) fn release(pool: &Pool, id: &str, owner: &str) -> Result<(), StoreError> {
    let (id, owner) = (id.to_string(), owner.to_string());
    run_sql(pool, "releasing a run", move |c| {
        c.execute(
            "UPDATE runs SET owner = NULL, lease_until = NULL WHERE id = $1 AND owner = $2",
            &[&id, &owner],
        )
        .map(drop)
    })
}

pub(super) fn steps(pool: &Pool, id: &str, last: bool) -> Result<Vec<Step>, StoreError> {
    let id = id.to_string();
    let sql = if last {
        format!("SELECT {STEP_COLUMNS} FROM run_steps WHERE run = $1 ORDER BY n DESC LIMIT 1")
    } else {
        format!("SELECT {STEP_COLUMNS} FROM run_steps WHERE run = $1 ORDER BY n")
    };
    run_sql(pool, "reading steps", move |c| c.query(&sql, &[&id]))?
        .iter()
        .map(step_row)
        .collect()
}

/// The values of [`super::RunStore::begin_step`].
pub(super) struct Begin<'a> {
    pub(super) id: &'a str,
    pub(super) owner: &'a str,
    pub(super) n: u32,
    pub(super) action: &'a Action,
    pub(super) memo: &'a Value,
    pub(super) first_started: bool,
    pub(super) active_ms: u64,
}

pub(super) fn begin_step(pool: &Pool, begin: &Begin<'_>) -> Result<bool, StoreError> {
    let (id, owner) = (begin.id.to_string(), begin.owner.to_string());
    let (n, active) = (i64::from(begin.n), int(begin.active_ms));
    let (action, memo) = (text(begin.action), text(begin.memo));
    let calls: Vec<(i64, String, String, String, &'static str)> = match begin.action {
        Action::CallTools { calls } => calls
            .iter()
            .enumerate()
            .map(|(idx, call)| {
                let state = if idx == 0 && begin.first_started {
                    CallState::Started
                } else {
                    CallState::Pending
                };
                (
                    idx as i64,
                    call.id.clone(),
                    call.tool.clone(),
                    text(&call.arguments),
                    state.as_str(),
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    run_sql(pool, "recording a step", move |c| {
        let mut tx = c.transaction()?;
        let now = now_ms();
        let updated = tx.execute(
            "UPDATE runs SET steps = $3, active_ms = $4, updated_at = $5
             WHERE id = $1 AND owner = $2 AND status = 'running'",
            &[&id, &owner, &n, &active, &now],
        )?;
        if updated == 0 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO run_steps (run, n, action, memo, started_at) VALUES ($1, $2, $3, $4, $5)",
            &[&id, &n, &action, &memo, &now],
        )?;
        for (idx, call, tool, arguments, state) in &calls {
            tx.execute(
                "INSERT INTO run_calls (run, step, idx, id, tool, arguments, state)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&id, &n, idx, call, tool, arguments, state],
            )?;
        }
        tx.commit()?;
        Ok(true)
    })
}

/// The values of [`super::RunStore::end_step`].
pub(super) struct End<'a> {
    pub(super) id: &'a str,
    pub(super) owner: &'a str,
    pub(super) n: u32,
    pub(super) observation: &'a Observation,
    pub(super) done: &'a [(u32, ToolOutcome)],
    pub(super) tokens: u64,
    pub(super) cost: f64,
    pub(super) active_ms: u64,
}

pub(super) fn end_step(pool: &Pool, end: &End<'_>) -> Result<bool, StoreError> {
    let (id, n, observation) = (end.id.to_string(), i64::from(end.n), text(end.observation));
    let owner = end.owner.to_string();
    let done: Vec<(i64, String)> = end
        .done
        .iter()
        .map(|(idx, outcome)| (i64::from(*idx), text(outcome)))
        .collect();
    let (tokens, cost, active) = (int(end.tokens), end.cost, int(end.active_ms));
    run_sql(pool, "recording an observation", move |c| {
        let mut tx = c.transaction()?;
        let now = now_ms();
        // The run's row, locked: a node taking it over waits until this is written.
        let held = tx.query_opt("SELECT owner FROM runs WHERE id = $1 FOR UPDATE", &[&id])?;
        let holder: Option<String> = match &held {
            Some(row) => row.try_get(0)?,
            None => None,
        };
        if holder.as_deref() != Some(owner.as_str()) {
            return Ok(false);
        }
        for (idx, outcome) in &done {
            tx.execute(
                "UPDATE run_calls SET state = 'done', outcome = $4 WHERE run = $1 AND step = $2 AND idx = $3",
                &[&id, &n, idx, outcome],
            )?;
        }
        tx.execute(
            "UPDATE run_steps SET observation = $3, finished_at = $4 WHERE run = $1 AND n = $2",
            &[&id, &n, &observation, &now],
        )?;
        tx.execute(
            "UPDATE runs SET tokens = tokens + $2, cost = cost + $3, active_ms = $4, updated_at = $5
             WHERE id = $1",
            &[&id, &tokens, &cost, &active, &now],
        )?;
        tx.commit()?;
        Ok(true)
    })
}

pub(super) fn add_usage(pool: &Pool, id: &str, tokens: u64, cost: f64) -> Result<(), StoreError> {
    let (id, tokens) = (id.to_string(), int(tokens));
    run_sql(pool, "recording a step's model use", move |c| {
        c.execute(
            "UPDATE runs SET tokens = tokens + $2, cost = cost + $3, updated_at = $4 WHERE id = $1",
            &[&id, &tokens, &cost, &now_ms()],
        )
        .map(drop)
    })
}

pub(super) fn calls(pool: &Pool, id: &str, n: u32) -> Result<Vec<Call>, StoreError> {
    let (id, n) = (id.to_string(), i64::from(n));
    let rows = run_sql(pool, "reading a step's calls", move |c| {
        c.query(
            "SELECT idx, id, tool, arguments, state, outcome FROM run_calls
             WHERE run = $1 AND step = $2 ORDER BY idx",
            &[&id, &n],
        )
    })?;
    rows.iter()
        .map(|row| {
            Ok(Call {
                idx: small(row, 0)?,
                call: ToolUse {
                    id: get(row, 1)?,
                    tool: get(row, 2)?,
                    arguments: json(row, 3)?,
                },
                state: CallState::parse(&get::<String>(row, 4)?).map_err(corrupt)?,
                outcome: json_opt(row, 5)?,
            })
        })
        .collect()
}

pub(super) fn start_call(
    pool: &Pool,
    (id, n, idx): (&str, u32, u32),
    owner: &str,
) -> Result<bool, StoreError> {
    let (id, n, idx, owner) = (
        id.to_string(),
        i64::from(n),
        i64::from(idx),
        owner.to_string(),
    );
    let started = run_sql(pool, "recording a tool call", move |c| {
        c.execute(
            "UPDATE run_calls SET state = 'started', outcome = NULL
             WHERE run = $1 AND step = $2 AND idx = $3
             AND EXISTS (SELECT 1 FROM runs WHERE id = $1 AND owner = $4 AND status = 'running')",
            &[&id, &n, &idx, &owner],
        )
    })?;
    Ok(started == 1)
}

pub(super) fn set_call(
    pool: &Pool,
    (id, n, idx): (&str, u32, u32),
    state: CallState,
    outcome: Option<&ToolOutcome>,
) -> Result<(), StoreError> {
    let (id, n, idx) = (id.to_string(), i64::from(n), i64::from(idx));
    let (state, outcome) = (state.as_str(), outcome.map(text));
    run_sql(pool, "recording a tool call", move |c| {
        c.execute(
            "UPDATE run_calls SET state = $4, outcome = $5 WHERE run = $1 AND step = $2 AND idx = $3",
            &[&id, &n, &idx, &state, &outcome],
        )
        .map(drop)
    })
}

pub(super) fn finish(
    pool: &Pool,
    id: &str,
    owner: Option<&str>,
    status: Status,
    result: Option<&Value>,
    error: Option<&str>,
) -> Result<bool, StoreError> {
    let (id, status, owner) = (id.to_string(), status.as_str(), owner.map(str::to_string));
    let (result, error) = (result.map(text), error.map(str::to_string));
    run_sql(pool, "ending a run", move |c| {
        let mut tx = c.transaction()?;
        let now = now_ms();
        let n = tx.execute(
            "UPDATE runs SET status = $2, result = $3, error = $4, finished_at = $5, updated_at = $5,
                owner = NULL, lease_until = NULL
             WHERE id = $1 AND status IN ('running', 'awaiting-approval')
               AND ($6::text IS NULL OR owner = $6)",
            &[&id, &status, &result, &error, &now, &owner],
        )?;
        if n == 1 {
            tx.execute(
                "UPDATE run_approvals SET status = 'cancelled' WHERE run = $1 AND status = 'pending'",
                &[&id],
            )?;
        }
        tx.commit()?;
        Ok(n == 1)
    })
}

pub(super) fn park(pool: &Pool, id: &str, owner: &str, active_ms: u64) -> Result<(), StoreError> {
    let (id, owner, active) = (id.to_string(), owner.to_string(), int(active_ms));
    run_sql(pool, "parking a run", move |c| {
        c.execute(
            "UPDATE runs SET status = 'awaiting-approval', owner = NULL, lease_until = NULL,
                active_ms = $3, updated_at = $4
             WHERE id = $1 AND owner = $2 AND status = 'running'",
            &[&id, &owner, &active, &now_ms()],
        )
        .map(drop)
    })
}

pub(super) fn prune(pool: &Pool, before: i64) -> Result<usize, StoreError> {
    run_sql(pool, "pruning old runs", move |c| {
        let mut tx = c.transaction()?;
        let old = "SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at < $1";
        for table in ["run_steps", "run_calls", "run_approvals"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE run IN ({old})"),
                &[&before],
            )?;
        }
        let n = tx.execute(
            "DELETE FROM runs WHERE finished_at IS NOT NULL AND finished_at < $1",
            &[&before],
        )?;
        tx.commit()?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    })
}

/// Stores a new pending approval of a run's call or question; returns its id.
pub(super) fn request_approval(pool: &Pool, new: &NewApproval<'_>) -> Result<String, StoreError> {
    let id = new_id("apr");
    let values = (
        id.clone(),
        new.run.id.clone(),
        i64::from(new.step),
        new.call.map(|(idx, _)| i64::from(idx)),
        new.run.agent.clone(),
        new.run.principal.clone(),
        new.call.map(|(_, c)| c.tool.clone()),
        new.call.map(|(_, c)| text(&c.arguments)),
        new.question.map(|(q, _)| q.to_string()),
        new.question.and_then(|(_, s)| s).map(text),
        text(&new.policies),
    );
    run_sql(pool, "recording an approval", move |c| {
        let (id, run, step, call, agent, principal, tool, arguments, question, schema, policies) =
            &values;
        c.execute(
            "INSERT INTO run_approvals (id, run, step, call, agent, principal, tool, arguments,
                question, schema, policies, status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12)",
            &[
                id,
                run,
                step,
                call,
                agent,
                principal,
                tool,
                arguments,
                question,
                schema,
                policies,
                &now_ms(),
            ],
        )
        .map(drop)
    })?;
    Ok(id)
}

/// Stores a new pending approval of a direct call; returns its id.
pub(super) fn hold_call(
    pool: &Pool,
    principal: &str,
    tool: &str,
    arguments: &Value,
    policies: &[String],
) -> Result<String, StoreError> {
    let id = new_id("apr");
    let values = (
        id.clone(),
        principal.to_string(),
        tool.to_string(),
        text(arguments),
        text(&policies),
    );
    run_sql(pool, "recording an approval", move |c| {
        let (id, principal, tool, arguments, policies) = &values;
        c.execute(
            "INSERT INTO run_approvals (id, run, step, call, agent, principal, tool, arguments,
                policies, status, created_at)
             VALUES ($1, '', 0, 0, '', $2, $3, $4, $5, 'pending', $6)",
            &[id, principal, tool, arguments, policies, &now_ms()],
        )
        .map(drop)
    })?;
    Ok(id)
}

pub(super) fn approval_of(
    pool: &Pool,
    run: &str,
    step: u32,
    call: Option<u32>,
) -> Result<Option<Approval>, StoreError> {
    let (run, step, call) = (run.to_string(), i64::from(step), call.map(i64::from));
    run_sql(pool, "reading an approval", move |c| {
        c.query_opt(
            &format!(
                "SELECT {APPROVAL_COLUMNS} FROM run_approvals
                 WHERE run = $1 AND step = $2 AND call IS NOT DISTINCT FROM $3"
            ),
            &[&run, &step, &call],
        )
    })?
    .as_ref()
    .map(approval_row)
    .transpose()
}

pub(super) fn approval(pool: &Pool, id: &str) -> Result<Option<Approval>, StoreError> {
    let id = id.to_string();
    run_sql(pool, "reading an approval", move |c| {
        c.query_opt(
            &format!("SELECT {APPROVAL_COLUMNS} FROM run_approvals WHERE id = $1"),
            &[&id],
        )
    })?
    .as_ref()
    .map(approval_row)
    .transpose()
}

pub(super) fn approvals(
    pool: &Pool,
    all: bool,
    run: Option<&str>,
) -> Result<Vec<Approval>, StoreError> {
    let run = run.map(str::to_string);
    run_sql(pool, "listing approvals", move |c| {
        c.query(
            &format!(
                "SELECT {APPROVAL_COLUMNS} FROM run_approvals
                 WHERE ($1 OR status = 'pending') AND ($2::text IS NULL OR run = $2)
                 ORDER BY created_at, id"
            ),
            &[&all, &run],
        )
    })?
    .iter()
    .map(approval_row)
    .collect()
}

/// Records a decision (`status` and the rest) on pending approval `id`; the run is
/// `running` again once none of its approvals is pending. False if it was not pending.
pub(super) fn decide(
    pool: &Pool,
    id: &str,
    by: &str,
    status: Decision,
    (reason, edited, answer): (Option<String>, Option<String>, Option<String>),
) -> Result<bool, StoreError> {
    let (id, by, status) = (id.to_string(), by.to_string(), status.as_str());
    run_sql(pool, "recording a decision", move |c| {
        let mut tx = c.transaction()?;
        let now = now_ms();
        // The run's row first: a decision on another approval of the run, on another
        // node, waits for this one, and sees it.
        tx.execute(
            "SELECT 1 FROM runs WHERE id = (SELECT run FROM run_approvals WHERE id = $1) FOR UPDATE",
            &[&id],
        )?;
        let n = tx.execute(
            "UPDATE run_approvals SET status = $2, decided_by = $3, decided_at = $4, reason = $5,
                edited = $6, answer = $7
             WHERE id = $1 AND status = 'pending'",
            &[&id, &status, &by, &now, &reason, &edited, &answer],
        )?;
        if n == 0 {
            return Ok(false);
        }
        tx.execute(
            "UPDATE runs SET status = 'running', updated_at = $2
             WHERE id = (SELECT run FROM run_approvals WHERE id = $1)
             AND status = 'awaiting-approval'
             AND NOT EXISTS (SELECT 1 FROM run_approvals a WHERE a.run = runs.id AND a.status = 'pending')",
            &[&id, &now],
        )?;
        tx.commit()?;
        Ok(true)
    })
}
