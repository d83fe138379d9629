//! `warden runs list|show|cancel|resume`: the agent runs of the home.

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::json;
use warden::home::Home;
use warden::runs::store::Status;

use super::run::{local, open_runner, report};
use super::{CliResult, Failure};

#[derive(Subcommand)]
pub(crate) enum RunsCommand {
    /// List runs, newest first.
    List {
        /// Only runs with this status (running, awaiting-approval, finished, failed, cancelled).
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show a run with every step and approval, as JSON.
    Show {
        /// The run's id.
        id: String,
    },
    /// Cancel a run: it ends at once, its pending approvals with it.
    Cancel {
        /// The run's id.
        id: String,
    },
    /// Continue a run left unfinished (after a crash or an approval decided elsewhere),
    /// or every such run.
    Resume {
        /// The run's id [default: every run no live process is driving].
        id: Option<String>,
        /// Print each step as it happens.
        #[arg(long)]
        follow: bool,
    },
}

pub(crate) async fn run(home: &Home, cmd: RunsCommand) -> CliResult {
    match cmd {
        RunsCommand::List { status, limit } => {
            let status = status
                .map(|s| s.parse::<Status>())
                .transpose()
                .map_err(|e| Failure::usage(anyhow::anyhow!(e)))?;
            let runner = open_runner(home, false)?;
            for run in runner.store().runs(status, limit)? {
                println!(
                    "{}  {:<17}  {:<12}  {:>3} steps  {}",
                    run.id,
                    run.status.as_str(),
                    run.agent,
                    run.steps,
                    warden::audit::time::format_millis(run.created_at)
                );
            }
            Ok(())
        }
        RunsCommand::Show { id } => {
            let runner = open_runner(home, false)?;
            let run = runner.run(&id)?;
            let steps = runner.store().steps(&id)?;
            let approvals = runner.store().approvals(true, Some(&id))?;
            let out = json!({ "run": run, "steps": steps, "approvals": approvals });
            println!(
                "{}",
                serde_json::to_string_pretty(&out).context("printing the run")?
            );
            Ok(())
        }
        RunsCommand::Cancel { id } => {
            let runner = open_runner(home, false)?;
            let run = runner.cancel(&id, &local().id).await?;
            eprintln!("run {} cancelled", run.id);
            Ok(())
        }
        RunsCommand::Resume { id, follow } => {
            let runner = open_runner(home, follow)?;
            match id {
                Some(id) => {
                    runner.drive(&id).await?;
                    report(&runner, &id)
                }
                None => {
                    for run in runner.resume_all().await? {
                        println!("{}  {}", run.id, run.status.as_str());
                    }
                    Ok(())
                }
            }
        }
    }
}
