//! `warden grant set|init|import|show`: the operator's decision of what a plugin may touch.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use clap::Subcommand;
use warden::Plugin;
use warden::grant::{Access, Grant};
use warden::home::Home;

use super::{CliResult, Failure};

#[derive(Subcommand)]
pub(crate) enum GrantCommand {
    /// Set (or replace) a plugin's grant from a TOML file.
    Set {
        /// The plugin's name.
        name: String,
        /// The grant (TOML; see `warden grant show`).
        file: PathBuf,
    },
    /// Write a grant for review from what the plugin's manifest requests; nothing in it
    /// is granted until a person uncomments it and runs `warden grant set`.
    Init {
        /// The plugin's name.
        name: String,
        /// Write to this file instead of stdout (refuses to overwrite).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Convert a Microsoft Wassette policy (policy.yaml) into a grant for review: what
    /// maps is converted, what does not is listed on stderr and at the end of the grant.
    Import {
        /// The plugin's name.
        name: String,
        /// The Wassette policy (YAML, policy-mcp format).
        policy: PathBuf,
        /// Write to this file instead of stdout (refuses to overwrite).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Set the converted grant on the plugin right away, as `warden grant set` does.
        #[arg(long)]
        set: bool,
        /// Take the values of the variables the policy allows from this process's
        /// environment (Wassette passed them through; Warden stores them in the grant).
        #[arg(long)]
        env_from_host: bool,
    },
    /// Accept a plugin's tools as they are defined now: a tool whose definition changed
    /// since its grant was set (or that is new) is withheld until this is run. Shows
    /// what each accepted tool was and is.
    AcceptTools {
        /// The plugin's name.
        name: String,
        /// Accept only this tool (repeatable); default: every tool, as defined now.
        #[arg(long = "tool", value_name = "TOOL")]
        tools: Vec<String>,
    },
    /// Show a plugin's grant, with every limit written out.
    Show {
        /// The plugin's name.
        name: String,
    },
}

pub(crate) async fn run(home: &Home, cmd: GrantCommand) -> CliResult {
    match cmd {
        GrantCommand::Set { name, file } => {
            let installed = home.read(&name).map_err(Failure::usage)?;
            let old = installed.grant.as_ref().map(Grant::to_toml);
            let grant = Grant::read(&file, &name).map_err(Failure::usage)?;
            grant.check_paths().map_err(Failure::usage)?;
            // Load with the new grant first: a grant is only set once it applies.
            let (runtime, cache) = super::open(home)?;
            let installed = warden::home::Installed {
                grant: Some(grant),
                ..installed
            };
            let plugin = installed.load(&runtime, Some(&cache))?;
            let audit = super::audit::open_log(home)?;
            if let Some(mut grant) = installed.grant {
                // Setting a grant accepts the tools as they are defined now.
                warden::pins::record(&mut grant, &plugin);
                home.set_grant(&name, &grant)?;
                super::audit::grant_set(&audit, &name, old, &grant)?;
            }
            println!("grant of {name} set from {}", file.display());
            print_summary(&plugin);
            Ok(())
        }
        GrantCommand::AcceptTools { name, tools } => accept_tools(home, &name, &tools),
        GrantCommand::Init { name, out } => {
            let meta = home.meta(&name).map_err(Failure::usage)?;
            let text = warden::grant::template(&meta.name, &meta.digest, meta.manifest.as_ref());
            match out {
                None => print!("{text}"),
                Some(path) => {
                    let mut file = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&path)
                        .map_err(|err| {
                            Failure::usage(anyhow::anyhow!(
                                "writing {}: {err} (choose another --out, or remove the file)",
                                path.display()
                            ))
                        })?;
                    std::io::Write::write_all(&mut file, text.as_bytes())?;
                    println!(
                        "wrote {}: review it, then `warden grant set {name} {}`",
                        path.display(),
                        path.display()
                    );
                }
            }
            Ok(())
        }
        GrantCommand::Import {
            name,
            policy,
            out,
            set,
            env_from_host,
        } => import(home, &name, &policy, out, set, env_from_host).await,
        GrantCommand::Show { name } => {
            home.meta(&name).map_err(Failure::usage)?;
            let grant = home.grant(&name).map_err(Failure::usage)?;
            match grant {
                Some(grant) => print!("{}", grant.to_toml()),
                None => {
                    println!("# plugin {name} has no grant: no files, no network, no environment.");
                    println!("# These limits apply:");
                    print!("{}", Grant::default().to_toml());
                }
            }
            Ok(())
        }
    }
}

/// `warden grant accept-tools`: pins `tools` (or every tool) of `name` as they are
/// defined now, through the same path as `grant set`.
fn accept_tools(home: &Home, name: &str, tools: &[String]) -> CliResult {
    let installed = home.read(name).map_err(Failure::usage)?;
    let Some(grant) = installed.grant.clone() else {
        return Err(Failure::usage(anyhow::anyhow!(
            "plugin {name} has no grant, so none of its tools is withheld: set one (`warden grant init {name}`, then `warden grant set {name} FILE`), which accepts its tools as they are"
        )));
    };
    let (runtime, cache) = super::open(home)?;
    let plugin = installed.load(&runtime, Some(&cache))?;
    let (accepted_grant, accepted) = warden::pins::accept(&grant, &plugin, tools)
        .map_err(|e| Failure::usage(anyhow::anyhow!(e)))?;
    if accepted.is_empty() && accepted_grant == grant {
        println!("every tool of {name} is accepted as it is defined now; nothing to change");
        return Ok(());
    }
    let audit = super::audit::open_log(home)?;
    home.set_grant(name, &accepted_grant)?;
    super::audit::grant_set(&audit, name, Some(grant.to_toml()), &accepted_grant)?;
    for a in &accepted {
        match &a.before {
            Some(before) => println!("accepted {name}/{}: changed, {before} -> {}", a.tool, a.now),
            None => println!("accepted {name}/{}: new, {}", a.tool, a.now),
        }
    }
    let after = accepted_grant.tool_definitions.as_ref();
    for dropped in grant
        .tool_definitions
        .iter()
        .flatten()
        .filter(|(tool, _)| after.is_none_or(|a| !a.contains_key(*tool)))
    {
        println!("dropped {name}/{}: the plugin no longer has it", dropped.0);
    }
    let withheld: Vec<&str> = plugin
        .withheld
        .iter()
        .map(|w| w.tool.name.as_str())
        .filter(|t| !accepted.iter().any(|a| a.tool == *t))
        .collect();
    if !withheld.is_empty() {
        println!("still withheld: {}", withheld.join(", "));
    }
    Ok(())
}

/// What a plugin may touch, for `plugin inspect` and `grant set`.
pub(crate) fn print_summary(plugin: &Plugin) {
    if let Some(notice) = &plugin.notice {
        println!("  warning: {notice}");
    }
    match &plugin.grant {
        None => println!(
            "  none: the plugin has no capabilities (no files, no network, no environment)"
        ),
        Some(grant) => {
            if let Some(pin) = &grant.digest {
                println!("  pinned to {pin}");
            }
            if let Some(pins) = &grant.tool_definitions {
                println!(
                    "  tool definitions accepted: {} (a changed or new tool is withheld)",
                    pins.len()
                );
            }
            for w in &plugin.withheld {
                println!("  withheld  {}/{}", plugin.name, w.tool.name);
            }
            for fs in &grant.fs {
                let access = match fs.access {
                    Access::Read => "read",
                    Access::ReadWrite => "read-write",
                };
                println!("  fs   {} -> {} ({access})", fs.host.display(), fs.guest);
            }
            for key in grant.env.vars.keys() {
                println!("  env  {key}");
            }
            if grant.fs.is_empty() && grant.env.vars.is_empty() {
                println!("  no files, no environment");
            }
            match &grant.net {
                Some(net) if !net.allow.is_empty() => {
                    for entry in &net.allow {
                        println!("  net  {entry}");
                    }
                    println!("  net  responses up to {} KiB", net.max_response_kb);
                }
                _ => println!("  net  none (no outbound HTTP)"),
            }
            for (destination, secret) in &grant.secrets {
                let from = match (&secret.from_env, &secret.from_file) {
                    (Some(var), _) => format!("${var}"),
                    (_, Some(path)) => path.display().to_string(),
                    _ => "?".into(),
                };
                println!(
                    "  secret  {} for {destination} (from {from})",
                    secret.header
                );
            }
            if let Some(tools) = &grant.tools {
                println!("  tools  {}", tools.allow.join(", "));
            }
            if let Some(agent) = &grant.agent {
                println!(
                    "  agent  per run: {} steps, {} tokens, ${}, {} ms running, memo {} KiB",
                    agent.max_steps,
                    agent.max_tokens,
                    agent.max_cost,
                    agent.max_wall_ms,
                    agent.max_memo_kb
                );
            }
        }
    }
    let l = &plugin.limits;
    println!(
        "  limits: memory {} MiB, timeout {} ms, fuel {}, output {} KiB, {} calls at once",
        l.memory_mb,
        l.timeout_ms,
        if l.fuel == 0 {
            "off".to_string()
        } else {
            l.fuel.to_string()
        },
        l.max_output_kb,
        l.max_concurrency
    );
}

/// `warden grant import`: converts, reports what did not convert, then writes the grant
/// (stdout or `--out`) and with `--set` sets it through `grant set`.
async fn import(
    home: &Home,
    name: &str,
    policy: &Path,
    out: Option<PathBuf>,
    set: bool,
    env_from_host: bool,
) -> CliResult {
    let meta = home.meta(name).map_err(Failure::usage)?;
    let text = std::fs::read_to_string(policy)
        .with_context(|| format!("reading policy {}", policy.display()))
        .map_err(Failure::usage)?;
    let lookup = |key: &str| std::env::var(key).ok();
    let env: Option<warden::wassette::EnvLookup<'_>> =
        if env_from_host { Some(&lookup) } else { None };
    // The YAML error's snippet names its input `<input>`: name the file instead.
    let conversion = warden::wassette::convert(&text, env).map_err(|err| {
        let message = err
            .to_string()
            .replace("--> <input>:", &format!("--> {}:", policy.display()));
        Failure::usage(anyhow::anyhow!(
            "Wassette policy {}: {message}",
            policy.display()
        ))
    })?;
    let toml = conversion.to_toml(
        &meta.name,
        Some(&meta.digest),
        &policy.display().to_string(),
    );
    Grant::parse(&toml, &meta.name)
        .with_context(|| format!("the grant converted from {}", policy.display()))
        .map_err(Failure::usage)?;
    if let Some(path) = &out {
        write_new(path, &toml)?;
    }
    report_import(&conversion, policy);
    if let Some(path) = &out
        && !set
    {
        println!(
            "wrote {}: review it, then `warden grant set {name} {}`",
            path.display(),
            path.display()
        );
    }
    if !set {
        if out.is_none() {
            print!("{toml}");
        }
        return Ok(());
    }
    // The same path as `grant set`, from the file written (or a temporary one).
    let dir = tempfile::tempdir()?;
    let file = match out {
        Some(path) => path,
        None => {
            let stem = policy.file_stem().unwrap_or_default().to_string_lossy();
            let path = dir.path().join(format!("{name}-from-{stem}.toml"));
            std::fs::write(&path, &toml)?;
            path
        }
    };
    Box::pin(run(
        home,
        GrantCommand::Set {
            name: name.to_string(),
            file,
        },
    ))
    .await
}

/// What the import did not convert (and what it converted differently), on stderr.
fn report_import(c: &warden::wassette::Conversion, policy: &Path) {
    let g = &c.grant;
    let hosts = g.net.as_ref().map_or(0, |n| n.allow.len());
    eprintln!(
        "converted {}: {} directories, {} hosts, {} environment variables ({} to fill in), memory {} MiB",
        policy.display(),
        g.fs.len(),
        hosts,
        g.env.vars.len() + c.env_missing.len(),
        c.env_missing.len(),
        g.limits.memory_mb,
    );
    for fs in g.fs.iter().filter(|f| !f.host.is_dir()) {
        eprintln!(
            "note: [[fs]] host {} is not a directory on this machine; `warden grant set` refuses it until it is",
            fs.host.display()
        );
    }
    for note in &c.notes {
        eprintln!("note: {note}");
    }
    for (key, why) in &c.env_missing {
        eprintln!("to fill in: [env.vars] {key} (written commented out): {why}");
    }
    for skipped in &c.not_converted {
        eprintln!("not converted: {skipped}");
    }
}

/// Writes `text` to a new file at `path`; an existing file is never overwritten.
fn write_new(path: &Path, text: &str) -> CliResult {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|err| {
            Failure::usage(anyhow::anyhow!(
                "writing {}: {err} (choose another --out, or remove the file)",
                path.display()
            ))
        })?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    Ok(())
}
