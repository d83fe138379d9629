//! `warden wit export DIR`: Warden's WIT packages, for other toolchains.

use std::path::PathBuf;

use clap::Subcommand;

use super::CliResult;

#[derive(Subcommand)]
pub(crate) enum WitCommand {
    /// Write Warden's WIT packages (warden:plugin, warden:host and the WASI 0.2 packages
    /// Warden provides), one directory per package: use DIR as a project's `wit/deps`.
    Export {
        /// Where to write them (created if missing), e.g. `wit/deps`.
        dir: PathBuf,
    },
}

pub(crate) fn run(cmd: WitCommand) -> CliResult {
    match cmd {
        WitCommand::Export { dir } => {
            for package in warden::wit::export(&dir)? {
                println!("{}", dir.join(package).display());
            }
            Ok(())
        }
    }
}
