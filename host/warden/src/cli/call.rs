//! `warden call PLUGIN/TOOL [--input JSON | --input-file FILE]`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::{CliResult, Failure};

#[derive(Args)]
pub(crate) struct CallArgs {
    /// The tool, as PLUGIN/TOOL (e.g. text/word-count).
    tool: String,
    /// The arguments, a JSON object keyed by parameter name.
    #[arg(long, value_name = "JSON", conflicts_with = "input_file")]
    input: Option<String>,
    /// Read the arguments from a file ("-" for stdin).
    #[arg(long, value_name = "FILE")]
    input_file: Option<PathBuf>,
}

/// Splits `plugin/tool` at the first `/`.
pub(crate) fn split_tool_id(id: &str) -> Result<(&str, &str), Failure> {
    match id.split_once('/') {
        Some((plugin, tool)) if !plugin.is_empty() && !tool.is_empty() => Ok((plugin, tool)),
        _ => Err(Failure::usage(anyhow::anyhow!(
            "tool {id:?} is not of the form PLUGIN/TOOL (e.g. text/word-count; `warden plugin inspect PLUGIN` lists a plugin's tools)"
        ))),
    }
}

fn read_input(args: &CallArgs) -> Result<serde_json::Value, Failure> {
    let (text, origin) = match (&args.input, &args.input_file) {
        (Some(text), _) => (text.clone(), "--input".to_string()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("reading arguments from stdin")
                .map_err(Failure::usage)?;
            (text, "stdin".to_string())
        }
        (None, Some(path)) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("reading --input-file {}", path.display()))
                .map_err(Failure::usage)?,
            path.display().to_string(),
        ),
        (None, None) => return Ok(serde_json::json!({})),
    };
    serde_json::from_str(&text)
        .with_context(|| format!("{origin} is not valid JSON"))
        .map_err(Failure::usage)
}

pub(crate) async fn run(home: &warden::home::Home, args: CallArgs) -> CliResult {
    let (plugin_name, tool) = split_tool_id(&args.tool)?;
    let input = read_input(&args)?;
    let installed = home.read(plugin_name).map_err(Failure::usage)?;
    let (runtime, cache) = super::open(home)?;
    let plugin = installed.load(&runtime, Some(&cache))?;
    if let Some(notice) = &plugin.notice {
        eprintln!("warning: {notice}");
    }
    // The operator acts as `local:<user>` with the admin role: allowed unless the
    // home's policy file forbids it (see `super::open`); a refusal exits 3, on record.
    let caller = warden::Caller::local(warden::Via::Cli);
    let value = runtime
        .call_tool(
            &caller,
            &plugin,
            tool,
            &input,
            warden::CallOptions::default(),
        )
        .await?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}
