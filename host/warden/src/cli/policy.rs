//! `warden policy check [FILE]` and `warden policy schema`: the access policy (Cedar)
//! against its schema, before a server loads it.
//!
//! `check` validates the roles of the config and the policy file (FILE, else the
//! config's `[policy] file`, else `policy.cedar` in the home): every problem on its own
//! line as `FILE:LINE:COLUMN: what is wrong`, exit 2 if there is one. `schema` prints
//! the schema policies are checked against (with the config's `[policy.args]`).

use std::path::PathBuf;

use clap::Subcommand;
use warden::config::home::Config;
use warden::home::Home;
use warden::policy::{CedarPolicy, PolicyFile, schema_text};

use super::{CliResult, Failure};

#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    /// Validate the access policy against the schema (exit 2 on a problem).
    Check {
        /// The Cedar policy file [default: [policy] file of the config, else
        /// <home>/policy.cedar if it exists].
        file: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the Cedar schema policies are validated against.
    Schema,
}

pub(crate) fn run(home: &Home, cmd: PolicyCommand) -> CliResult {
    match cmd {
        PolicyCommand::Check { file, json } => check(home, file, json),
        PolicyCommand::Schema => {
            let (config, _) = load_config(home)?;
            print!("{}", schema_text(&config.policy.args));
            Ok(())
        }
    }
}

fn load_config(home: &Home) -> CliResult<(Config, PathBuf)> {
    let path = super::settings::path(home);
    let config = Config::load(&path).map_err(Failure::usage)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    Ok((config, dir))
}

fn check(home: &Home, file: Option<PathBuf>, json: bool) -> CliResult {
    let (config, dir) = load_config(home)?;
    let mut source = config
        .policy_source(home.root(), &dir)
        .map_err(Failure::usage)?;
    if let Some(file) = file {
        source.file = Some(PolicyFile::read(&file).map_err(Failure::usage)?);
    }
    let file = source.file.as_ref().map(|f| f.path.clone());
    match CedarPolicy::new(&source) {
        Ok(policy) => {
            if json {
                let out = serde_json::json!({
                    "ok": true,
                    "file": file,
                    "policies": policy.policy_ids(),
                    "warnings": policy.warnings(),
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                for warning in policy.warnings() {
                    eprintln!("warning: {warning}");
                }
                let ids = policy.policy_ids();
                println!(
                    "{}: ok, {} polic{} ({})",
                    file.as_deref().unwrap_or("no policy file, the roles only"),
                    ids.len(),
                    if ids.len() == 1 { "y" } else { "ies" },
                    ids.join(", ")
                );
            }
            Ok(())
        }
        Err(warden::policy::PolicyError::Invalid { problems }) if json => {
            let out = serde_json::json!({ "ok": false, "file": file, "problems": problems });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Err(Failure::usage(anyhow::anyhow!(
                "the access policy is invalid ({} problem{})",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            )))
        }
        Err(err) => Err(Failure::usage(err)),
    }
}
