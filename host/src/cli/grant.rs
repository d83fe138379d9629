//! `warden grant set|show`: the operator's decision of what a plugin may touch.

use std::path::PathBuf;

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
            if let Some(grant) = &installed.grant {
                home.set_grant(&name, grant)?;
                super::audit::grant_set(&audit, &name, old, grant)?;
            }
            println!("grant of {name} set from {}", file.display());
            print_summary(&plugin);
            Ok(())
        }
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
            println!("  net  none (outbound HTTP is not granted by this version)");
        }
    }
    let l = &plugin.limits;
    println!(
        "  limits: memory {} MiB, timeout {} ms, output {} KiB, {} calls at once",
        l.memory_mb, l.timeout_ms, l.max_output_kb, l.max_concurrency
    );
}
