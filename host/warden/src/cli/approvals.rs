//! `warden approvals list|approve|reject`: the queue of tool calls held by a policy
//! and questions agents asked. A decision lets the run continue: here, unless
//! `--detach` (then a `warden serve` or `warden runs resume` picks it up).

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::Value;
use warden::home::Home;
use warden::runs::store::{Status, Verdict};

use super::run::{local, open_runner, report};
use super::{CliResult, Failure};

#[derive(Subcommand)]
pub(crate) enum ApprovalsCommand {
    /// List pending approvals (with --all, decided ones too), as JSON.
    List {
        /// Decided approvals too.
        #[arg(long)]
        all: bool,
    },
    /// Approve a held tool call (optionally with other arguments), or answer a question.
    Approve {
        /// The approval's id.
        id: String,
        /// Call the tool with these arguments instead (a JSON object).
        #[arg(long, value_name = "JSON")]
        edit_args: Option<String>,
        /// The answer to an agent's question (a JSON value).
        #[arg(long, value_name = "JSON")]
        answer: Option<String>,
        /// Only record the decision; do not continue the run here.
        #[arg(long)]
        detach: bool,
        /// Print each step of the continued run as it happens.
        #[arg(long)]
        follow: bool,
    },
    /// Reject a held tool call (the agent sees it denied) or decline a question.
    Reject {
        /// The approval's id.
        id: String,
        /// Why, for the agent and the audit log.
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Only record the decision; do not continue the run here.
        #[arg(long)]
        detach: bool,
        /// Print each step of the continued run as it happens.
        #[arg(long)]
        follow: bool,
    },
}

fn json_flag(flag: &str, text: Option<String>) -> CliResult<Option<Value>> {
    text.map(|t| {
        serde_json::from_str(&t)
            .with_context(|| format!("{flag} is not valid JSON"))
            .map_err(Failure::usage)
    })
    .transpose()
}

pub(crate) async fn run(home: &Home, cmd: ApprovalsCommand) -> CliResult {
    let (id, verdict, detach, follow) = match cmd {
        ApprovalsCommand::List { all } => {
            let runner = open_runner(home, false)?;
            let approvals = runner.approvals(all)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&approvals).context("printing approvals")?
            );
            return Ok(());
        }
        ApprovalsCommand::Approve {
            id,
            edit_args,
            answer,
            detach,
            follow,
        } => {
            let verdict = Verdict::Approve {
                edited: json_flag("--edit-args", edit_args)?,
                answer: json_flag("--answer", answer)?,
            };
            (id, verdict, detach, follow)
        }
        ApprovalsCommand::Reject {
            id,
            reason,
            detach,
            follow,
        } => (id, Verdict::Reject { reason }, detach, follow),
    };
    let runner = open_runner(home, follow)?;
    let approval = runner
        .decide_as(
            &warden::Caller::new(local(), warden::Via::Cli),
            &id,
            verdict,
        )
        .await?;
    eprintln!(
        "approval {} {}",
        approval.id,
        match approval.status {
            warden::runs::store::Decision::Approved => "approved",
            _ => "rejected",
        }
    );
    // A direct call's hold (over MCP) has no run: its caller is waiting for this.
    if detach || approval.run.is_empty() {
        return Ok(());
    }
    if runner.run(&approval.run)?.status == Status::Running {
        runner.drive(&approval.run).await?;
    }
    report(&runner, &approval.run)
}
