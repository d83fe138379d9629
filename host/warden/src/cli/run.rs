//! `warden run AGENT --task JSON [--follow]`: starts an agent run and drives it here
//! until it ends or parks for a person; and what `warden runs` and `warden approvals`
//! share with it (opening the runner, printing steps, the exit code of a run).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use serde_json::{Value, json};
use warden::exit;
use warden::home::Home;
use warden::policy::Principal;
use warden::runs::action::{Observation, ToolOutcome};
use warden::runs::store::{RunStore, Status};
use warden::runs::{HomePlugins, Progress, RunError, Runner};

use super::{CliResult, Failure};

#[derive(Args)]
pub(crate) struct RunArgs {
    /// The agent (an installed plugin exporting warden:plugin/agent).
    agent: String,
    /// The task, a JSON value (e.g. '{"ticket": "…"}' or '"a question"').
    #[arg(long, value_name = "JSON", conflicts_with = "task_file")]
    task: Option<String>,
    /// Read the task from a file ("-" for stdin).
    #[arg(long, value_name = "FILE")]
    task_file: Option<PathBuf>,
    /// Print each step as it happens.
    #[arg(long)]
    follow: bool,
    /// Only record the run; a `warden serve` or `warden runs resume` drives it.
    #[arg(long, conflicts_with = "follow")]
    detach: bool,
}

/// The exit code of a run error: 2 not found or invalid, 3 refused by the policy.
pub(crate) fn exit_code(error: &RunError) -> i32 {
    match error {
        RunError::NotFound(_) | RunError::Invalid(_) => exit::USAGE,
        RunError::Denied(_) => exit::DENIED,
        RunError::Store(_) | RunError::Audit(_) => exit::TOOL_FAILED,
    }
}

/// Who acts at this machine's command line: `local:<user>`, with the admin role.
pub(crate) fn local() -> Principal {
    Principal {
        id: warden::config::env::local_principal(),
        roles: vec!["admin".into()],
        on_behalf_of: None,
    }
}

/// The runner over the home's plugins and run store (the cluster's, with `[storage]
/// url`), with old runs pruned
/// (`[runs] keep_days`); with `follow`, each step is printed as it happens.
pub(crate) fn open_runner(home: &Home, follow: bool) -> CliResult<Runner> {
    let (runtime, _cache) = super::open(home)?;
    let runtime = Arc::new(runtime);
    let config = super::settings::load(home)?;
    let plugins = Arc::new(HomePlugins::new(home.clone(), runtime.clone())?);
    // The home's runs.db, or the cluster's database ([storage] url).
    let storage = super::settings::storage(home)?;
    let store: Arc<RunStore> = Arc::new(storage.runs(home.root())?);
    let mut runner =
        Runner::new(runtime, plugins, store).with_lease(storage.run_lease(&config.runs));
    if follow {
        runner = runner.with_observer(Arc::new(|p: &Progress| println!("{}", line(p))));
    }
    let pruned = runner.prune(&config.runs)?;
    if pruned > 0 {
        tracing::info!(pruned, "removed runs older than [runs] keep_days");
    }
    Ok(runner)
}

fn short(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match text.char_indices().nth(100) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// One step on one line: `step 2 call-tools notes/search: n1 ok {…}`.
pub(crate) fn line(progress: &Progress) -> String {
    let head = format!("step {} {}", progress.step, progress.action.summary());
    let tail = match &progress.observation {
        None => return head,
        Some(Observation::None) => String::new(),
        Some(Observation::Model { response }) if response.tool_calls.is_empty() => {
            format!("answer {}", short(&Value::String(response.content.clone())))
        }
        Some(Observation::Model { response }) => format!(
            "asks for {}",
            response
                .tool_calls
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(Observation::Tools { results }) => results
            .iter()
            .map(|r| match &r.outcome {
                ToolOutcome::Ok { result } => format!("{} ok {}", r.id, short(result)),
                ToolOutcome::Error { error } => format!("{} error {}", r.id, short(error)),
                ToolOutcome::Denied { reason } => format!("{} denied: {reason}", r.id),
                ToolOutcome::Interrupted => format!("{} interrupted", r.id),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Some(Observation::Answer { answer }) => format!("answered {}", short(answer)),
        Some(Observation::Denied { reason }) => format!("denied: {reason}"),
        Some(Observation::Failed { reason }) => format!("failed: {reason}"),
    };
    format!("{head}: {tail}")
}

/// Prints the run as JSON (with its pending approvals) and returns its exit code:
/// 0 finished, 4 waiting for a person, 1 failed or cancelled.
pub(crate) fn report(runner: &Runner, id: &str) -> CliResult {
    let run = runner.run(id)?;
    let approvals = runner.store().approvals(false, Some(id))?;
    let mut out = json!({
        "id": run.id,
        "agent": run.agent,
        "status": run.status,
        "steps": run.steps,
        "tokens": run.tokens,
        "cost": run.cost,
    });
    if let Some(result) = &run.result {
        out["result"] = result.clone();
    }
    if let Some(error) = &run.error {
        out["error"] = Value::String(error.clone());
    }
    if !approvals.is_empty() {
        out["approvals"] = serde_json::to_value(&approvals).context("showing approvals")?;
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&out).context("printing the run")?
    );
    match run.status {
        Status::Finished => Ok(()),
        Status::AwaitingApproval | Status::Running => {
            for approval in &approvals {
                eprintln!(
                    "run {} waits for approval {}: `warden approvals approve {}` or `warden approvals reject {} --reason TEXT`",
                    run.id, approval.id, approval.id, approval.id
                );
            }
            Err(Failure {
                code: exit::PARKED,
                error: anyhow::anyhow!("run {} is {}", run.id, run.status.as_str()),
            })
        }
        Status::Failed | Status::Cancelled => Err(Failure {
            code: exit::TOOL_FAILED,
            error: anyhow::anyhow!(
                "run {} {}: {}",
                run.id,
                run.status.as_str(),
                run.error.as_deref().unwrap_or("no reason recorded")
            ),
        }),
    }
}

fn read_task(args: &RunArgs) -> CliResult<Value> {
    let (text, origin) = match (&args.task, &args.task_file) {
        (Some(text), _) => (text.clone(), "--task".to_string()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("reading the task from stdin")
                .map_err(Failure::usage)?;
            (text, "stdin".to_string())
        }
        (None, Some(path)) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("reading --task-file {}", path.display()))
                .map_err(Failure::usage)?,
            path.display().to_string(),
        ),
        (None, None) => {
            return Err(Failure::usage(anyhow::anyhow!(
                "give the run's task: --task JSON or --task-file FILE"
            )));
        }
    };
    serde_json::from_str(&text)
        .with_context(|| format!("{origin} is not valid JSON (a string task is quoted: '\"…\"')"))
        .map_err(Failure::usage)
}

pub(crate) async fn run(home: &Home, args: RunArgs) -> CliResult {
    let task = read_task(&args)?;
    let runner = open_runner(home, args.follow)?;
    let caller = warden::Caller::new(local(), warden::Via::Cli);
    let run = runner.start(&args.agent, task, &caller).await?;
    eprintln!("run {} started", run.id);
    if !args.detach {
        runner.drive(&run.id).await?;
    }
    report(&runner, &run.id)
}
