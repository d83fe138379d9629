//! The `warden` command line: parsing, logging setup, and exit codes.
//!
//! Results go to stdout (JSON where asked), logs and errors to stderr. Exit codes:
//! 0 success, 1 the tool failed, 2 bad usage or input, 3 a capability was denied, 4 an
//! agent run waits for a person (`warden approvals`).

mod approvals;
mod audit;
mod call;
mod db;
mod demo;
mod grant;
mod mcp;
mod memory;
mod oci;
mod plugin;
mod plugin_check;
mod policy;
mod run;
mod runs;
mod serve;
mod settings;
mod template;
mod wit;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use warden::exit;

/// Warden runs AI tools as sandboxed WebAssembly components.
#[derive(Parser)]
#[command(name = "warden", version, about, long_about = None)]
struct Cli {
    /// Home directory (installed plugins, compile cache) [default: $WARDEN_HOME, else ./.warden]
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    /// The home's config, read by every command [default: <home>/warden.toml]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Add, list, inspect and remove plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Set and show what a plugin may touch.
    #[command(subcommand)]
    Grant(grant::GrantCommand),
    /// Call a tool: `warden call PLUGIN/TOOL --input JSON`.
    Call(call::CallArgs),
    /// Start an agent run and drive it until it ends or waits for a person.
    Run(run::RunArgs),
    /// List, show, cancel and resume agent runs.
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// Decide on tool calls held for approval and answer agents' questions.
    #[command(subcommand)]
    Approvals(approvals::ApprovalsCommand),
    /// Read, export and verify the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Install the bundled plugins and show them at work.
    Demo,
    /// Look into and edit the memory service (as the operator).
    #[command(subcommand)]
    Memory(memory::MemoryCommand),
    /// Serve the installed plugins as MCP tools over stdio (for desktop agents).
    Mcp(mcp::McpArgs),
    /// Export Warden's WIT packages for plugin toolchains.
    #[command(subcommand)]
    Wit(wit::WitCommand),
    /// Serve the HTTP API over every installed plugin (hot reload on file changes).
    Serve(serve::ServeArgs),
    /// Install the bundled plugins, make an admin token if none exists, and serve.
    Up(serve::ServeArgs),
    /// Create API tokens.
    #[command(subcommand)]
    Token(serve::TokenCommand),
    /// Check the access policy (Cedar) and print its schema.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Migrate and check the cluster's database (`[storage] url`).
    #[command(subcommand)]
    Db(db::DbCommand),
}

/// An error with the exit code it should end the process with.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: i32,
    pub(crate) error: anyhow::Error,
}

impl Failure {
    /// Bad usage or input (exit 2).
    pub(crate) fn usage(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: exit::USAGE,
            error: error.into(),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        let error = error.into();
        let code = if let Some(err) = error.downcast_ref::<warden::CallError>() {
            exit::code(err)
        } else if let Some(err) = error.downcast_ref::<warden::runs::RunError>() {
            run::exit_code(err)
        } else if let Some(warden::LoadError::Invalid { .. }) = error.downcast_ref() {
            exit::USAGE
        } else {
            exit::TOOL_FAILED
        };
        Self { code, error }
    }
}

pub(crate) type CliResult<T = ()> = Result<T, Failure>;

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.only_prints() {
        reset_sigpipe();
    }
    let _telemetry = match warden::telemetry::init() {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::from(2);
        }
    };
    let home = warden::home::Home::resolve(cli.home);
    settings::set_flag(cli.config);
    let runtime = match cli.command.runtime().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Plugin(cmd) => plugin::run(&home, cmd).await,
            Command::Grant(cmd) => grant::run(&home, cmd).await,
            Command::Call(args) => call::run(&home, args).await,
            Command::Run(args) => run::run(&home, args).await,
            Command::Runs(cmd) => runs::run(&home, cmd).await,
            Command::Approvals(cmd) => approvals::run(&home, cmd).await,
            Command::Audit(cmd) => audit::run(&home, cmd).await,
            Command::Memory(cmd) => memory::run(&home, cmd).await,
            Command::Demo => demo::run(&home).await,
            Command::Mcp(args) => mcp::run(&home, args).await,
            Command::Wit(cmd) => wit::run(cmd),
            Command::Serve(args) => serve::serve(&home, args).await,
            Command::Up(args) => serve::up(&home, args).await,
            Command::Token(cmd) => serve::token(&home, cmd),
            Command::Policy(cmd) => policy::run(&home, cmd),
            Command::Db(cmd) => db::run(&home, cmd),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {:#}", failure.error);
            ExitCode::from(u8::try_from(failure.code).unwrap_or(1))
        }
    }
}

/// Opens the runtime, recording every call in the home's audit log (synced before each
/// answer unless the operator chose otherwise), and the home's compile cache.
pub(crate) fn open(
    home: &warden::home::Home,
) -> CliResult<(warden::Runtime, warden::cache::CompileCache)> {
    open_for(home, warden::audit::Durability::Full)
}

/// [`open`], with `durability` as the audit log's default for this command.
pub(crate) fn open_for(
    home: &warden::home::Home,
    durability: warden::audit::Durability,
) -> CliResult<(warden::Runtime, warden::cache::CompileCache)> {
    let runtime = warden::Runtime::new()?;
    runtime.set_audit(audit::open_log_for(home, durability)?)?;
    runtime.set_memory(memory::open_store(home)?)?;
    let config = settings::load(home)?;
    if let Some(router) =
        warden_models::Router::from_config(&config.models).map_err(Failure::usage)?
    {
        let ledger = settings::storage(home)?.ledger(home.root())?;
        runtime.set_router(std::sync::Arc::new(router.with_ledger(ledger)))?;
    }
    if let Some(embedder) = warden_memory::Embedder::from_config(&config.memory, &config.models)
        .map_err(Failure::usage)?
    {
        runtime.set_embedder(std::sync::Arc::new(embedder))?;
    }
    // The same access policy a server of this config enforces: its roles and its
    // policy file. The operator acts as `local:<user>` with the admin role, so the
    // file's forbids hold for the operator too, and a run started over HTTP and
    // resumed here keeps its starter's roles.
    let policy = config
        .policy_source(home.root(), &settings::dir(home))
        .map_err(Failure::usage)?;
    let cedar = warden::policy::CedarPolicy::new(&policy).map_err(Failure::usage)?;
    runtime.set_policy(std::sync::Arc::new(cedar))?;
    let cache = home.cache(runtime.engine())?;
    Ok((runtime, cache))
}

impl Command {
    /// The async runtime the command runs on: one thread for `warden mcp` (one client
    /// over stdio, its messages and calls handed between no threads but the audit
    /// log's writer), the multi-threaded scheduler for everything else, whose idle
    /// workers poll a server's sockets before they sleep when `[server] idle_poll_us`
    /// says so.
    fn runtime(&self) -> tokio::runtime::Builder {
        match self {
            Command::Mcp(_) => tokio::runtime::Builder::new_current_thread(),
            _ => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.on_thread_park(warden::serve::idle_poll::before_park);
                builder
            }
        }
    }

    /// True for the commands that read the home and print, and open no connection:
    /// they end quietly when their output is closed (`warden audit query | head`), as
    /// `cat` does. Every other command keeps SIGPIPE ignored (Rust's default): a peer
    /// that resets a connection while Warden writes to it (a client of `serve`, `mcp`
    /// or `up`, an upstream of a tool or a model call) is an error on that connection,
    /// never the end of the process.
    fn only_prints(&self) -> bool {
        matches!(
            self,
            Command::Plugin(cmd) if !cmd.talks_to_a_registry()
        ) || matches!(
            self,
            Command::Grant(_)
                | Command::Audit(_)
                | Command::Wit(_)
                | Command::Token(_)
                | Command::Policy(_)
                | Command::Db(_)
        )
    }
}

/// Sets SIGPIPE back to its default, so that a closed stdout ends the process quietly
/// instead of failing every later write (Rust ignores SIGPIPE).
#[expect(unsafe_code, reason = "one libc call, before any thread exists")]
fn reset_sigpipe() {
    // SAFETY: setting a signal's disposition to its default has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
