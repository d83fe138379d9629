//! `warden serve`, `warden up` and `warden token create`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use warden::config::home::{self as config, Config};
use warden::home::{Home, InstalledMeta};
use warden::serve::{ServeOptions, Server};

use super::{CliResult, Failure};

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on [default: [server].listen of the config, else 127.0.0.1:7878].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Create an API token: printed once, only its SHA-256 is stored in the config.
    Create {
        /// A name for the token (e.g. ops, ci, agent-1).
        name: String,
        /// A role (admin, caller, auditor, or one defined under [roles]); repeatable.
        #[arg(long = "role", value_name = "ROLE", required = true)]
        roles: Vec<String>,
        /// Who acts with it in audit records [default: token:NAME].
        #[arg(long)]
        principal: Option<String>,
    },
}

fn config_path(home: &Home) -> PathBuf {
    super::settings::path(home)
}

async fn bind(addr: SocketAddr) -> CliResult<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|err| {
        Failure::usage(anyhow::anyhow!(
            "listening on {addr}: {err} (is another server running? choose another address with --listen)"
        ))
    })
}

async fn start(home: &Home, args: ServeArgs) -> CliResult<(Server, Config)> {
    let path = config_path(home);
    let config = Config::load(&path).map_err(Failure::usage)?;
    let listener = bind(args.listen.unwrap_or(config.server.listen)).await?;
    let options = ServeOptions {
        home: home.clone(),
        config: config.clone(),
        config_path: Some(path),
        watch: true,
    };
    let server = Server::start(options, listener).await?;
    Ok((server, config))
}

pub(crate) async fn serve(home: &Home, args: ServeArgs) -> CliResult {
    let (server, _) = start(home, args).await?;
    let plugins = server.registry().snapshot();
    eprintln!(
        "serving {} plugin(s) from {} on http://{} (Ctrl-C to stop)",
        plugins.len(),
        home.root().display(),
        server.addr()
    );
    server.run_until_signal().await?;
    Ok(())
}

pub(crate) fn token(home: &Home, cmd: TokenCommand) -> CliResult {
    match cmd {
        TokenCommand::Create {
            name,
            roles,
            principal,
        } => {
            let path = config_path(home);
            let token = config::create_token(&path, &name, &roles, principal.as_deref())
                .map_err(Failure::usage)?;
            println!("{token}");
            eprintln!(
                "token {name:?} ({}) added to {}: this is the only time it is shown",
                roles.join(", "),
                path.display()
            );
            Ok(())
        }
    }
}

/// The grants `up` gives the bundled plugins when they have none: `files` reads and
/// writes one directory inside the home, `notes` its memory namespace; the others get
/// nothing.
fn bundled_grant(home: &Home, name: &str) -> CliResult<Option<warden::grant::Grant>> {
    use warden::grant::{Access, FsGrant, Grant, MemoryGrant};
    match name {
        "files" => {
            let dir = std::fs::canonicalize(home.root())?.join("workspace");
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            Ok(Some(Grant {
                plugin: Some(name.to_string()),
                fs: vec![FsGrant {
                    host: dir,
                    guest: "/workspace".into(),
                    access: Access::ReadWrite,
                }],
                ..Default::default()
            }))
        }
        "notes" => Ok(Some(Grant {
            plugin: Some(name.to_string()),
            memory: [("notes".to_string(), MemoryGrant::new(Access::ReadWrite))].into(),
            ..Default::default()
        })),
        _ => Ok(None),
    }
}

/// Installs the bundled plugins that are missing (or older bundled versions), with
/// their bundled grants where none is set. The grants `up` writes are pinned to the
/// bundled component's digest, so a component put in its place by anyone else runs
/// with no capabilities; a newer bundled version moves the pin of a grant that was
/// pinned to the version it replaces.
fn install_bundled(home: &Home) -> CliResult {
    let (runtime, cache) = super::open(home)?;
    for bundled in warden::bundled::PLUGINS {
        let digest = warden::plugin::digest(bundled.wasm);
        let installed = home.meta(bundled.name).ok();
        let current = match &installed {
            Some(meta) => meta.digest == digest || meta.source != "bundled",
            None => false,
        };
        let grant = match home.grant(bundled.name).map_err(Failure::usage)? {
            Some(set) => match &installed {
                // A newer bundled version replaces one this grant is pinned to.
                Some(meta) if !current && set.digest.as_deref() == Some(meta.digest.as_str()) => {
                    Some(warden::grant::Grant {
                        digest: Some(digest.clone()),
                        ..set
                    })
                }
                _ => None,
            },
            None => bundled_grant(home, bundled.name)?.map(|grant| warden::grant::Grant {
                digest: Some(digest.clone()),
                ..grant
            }),
        };
        if current && grant.is_none() {
            continue;
        }
        if current {
            let grant = grant.expect("checked above");
            home.set_grant(bundled.name, &grant)?;
            super::audit::grant_set(&super::audit::open_log(home)?, bundled.name, None, &grant)?;
            continue;
        }
        let meta = InstalledMeta {
            name: bundled.name.to_string(),
            digest,
            added_at: super::plugin::now(),
            source: "bundled".into(),
            manifest: Some(warden::manifest::Manifest::parse(bundled.manifest)?),
            wit_docs: None,
            provenance: None,
        };
        let plugin = super::plugin::install(home, &runtime, &cache, meta, bundled.wasm, grant)?;
        eprintln!("installed {} ({} tools)", plugin.name, plugin.tools.len());
    }
    Ok(())
}

/// Creates an admin token unless the config has a token with the admin role.
fn ensure_admin(path: &Path) -> CliResult<Option<String>> {
    let config = Config::load(path).map_err(Failure::usage)?;
    if config
        .tokens
        .iter()
        .any(|t| t.roles.iter().any(|r| r == "admin"))
    {
        return Ok(None);
    }
    let name = (0..)
        .map(|n| match n {
            0 => "admin".to_string(),
            n => format!("admin-{n}"),
        })
        .find(|n| config.tokens.iter().all(|t| &t.name != n))
        .expect("some name is free");
    let token =
        config::create_token(path, &name, &["admin".to_string()], None).map_err(Failure::usage)?;
    Ok(Some(token))
}

pub(crate) async fn up(home: &Home, args: ServeArgs) -> CliResult {
    install_bundled(home)?;
    let path = config_path(home);
    let token = ensure_admin(&path)?;
    let (server, _) = start(home, args).await?;
    let url = format!("http://{}", server.addr());
    let root = std::fs::canonicalize(home.root())?;
    let shown = token.clone().unwrap_or_else(|| "$WARDEN_TOKEN".into());
    println!(
        "Warden is serving {} plugins at {url}",
        server.registry().snapshot().len()
    );
    println!("  home:   {}", root.display());
    println!("  config: {}", path.display());
    match &token {
        Some(token) => println!("  admin token (shown once; only its hash is stored): {token}"),
        None => println!(
            "  an admin token exists already; set WARDEN_TOKEN to it, or make another with `warden token create NAME --role admin`"
        ),
    }
    println!("\nCall a tool:");
    println!(
        "  curl -s -H 'Authorization: Bearer {shown}' -H 'Content-Type: application/json' \\\n    -d '{{\"text\": \"Nothing is ambient.\"}}' {url}/v1/tools/text/word-count"
    );
    println!("\nList the tools:  curl -s -H 'Authorization: Bearer {shown}' {url}/v1/tools");
    println!("The API:         {url}/v1/openapi.json");
    println!("The console:     {url}/console (sign in with the token)");
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "warden".into());
    let stdio = serde_json::json!({
        "mcpServers": { "warden": {
            "command": exe,
            "args": ["--home", root.display().to_string(), "mcp"],
        }}
    });
    let http = serde_json::json!({
        "mcpServers": { "warden": {
            "type": "http",
            "url": format!("{url}/mcp"),
            "headers": { "Authorization": format!("Bearer {shown}") },
        }}
    });
    println!(
        "\nMCP client configuration (stdio):\n{}",
        serde_json::to_string_pretty(&stdio)?
    );
    println!(
        "MCP client configuration (Streamable HTTP):\n{}",
        serde_json::to_string_pretty(&http)?
    );
    println!("\nCtrl-C stops the server; calls in flight finish first.");
    server.run_until_signal().await?;
    Ok(())
}
