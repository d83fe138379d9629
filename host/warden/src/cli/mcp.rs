//! `warden mcp`: the installed plugins as an MCP server over stdio, for desktop agents.
//!
//! stdout is the protocol; logs go to stderr. Every call is made on behalf of
//! `local:<user>` and recorded in the home's audit log before its result is sent.
//!
//! The log's durability defaults to `process` here: a stdio server is one agent's
//! child, its calls come one at a time, and each would otherwise wait for its own
//! fsync. A killed `warden mcp` still loses no answered call (each record is written
//! before its answer); a power cut can lose the last 10 ms. `[audit] durability =
//! "full"` or `WARDEN_AUDIT_DURABILITY=full` syncs each record before its answer.

use std::sync::Arc;

use clap::Args;
use warden::mcp::{FixedTools, Mcp};

use super::CliResult;

#[derive(Args)]
pub(crate) struct McpArgs {}

pub(crate) async fn run(home: &warden::home::Home, _args: McpArgs) -> CliResult {
    // The same runtime as `warden call`: the home's audit log, memory and model router.
    let (runtime, _cache) = super::open_for(home, warden::audit::Durability::Process)?;
    let source = FixedTools::load_home(home, &runtime)?;
    let offered: usize = source.plugin_count();
    let principal = warden::config::env::local_principal();
    tracing::info!(
        home = %home.root().display(),
        plugins = offered,
        principal,
        "serving MCP over stdio"
    );
    let mcp = Mcp::new(Arc::new(runtime), Arc::new(source));
    mcp.serve_stdio(warden::Caller::local(warden::Via::McpStdio))
        .await?;
    Ok(())
}
