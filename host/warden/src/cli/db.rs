//! `warden db`: the cluster's database (`[storage] url`, `WARDEN_DATABASE_URL`).
//! Every node migrates it on start; `db migrate` does it ahead of a rollout, and
//! `db status` shows where the database and this binary stand.

use clap::Subcommand;
use warden::home::Home;
use warden_postgres::{DatabaseUrl, Pool, migrate};

use super::{CliResult, Failure};

#[derive(Subcommand)]
pub(crate) enum DbCommand {
    /// Apply the schema migrations this warden knows to the cluster's database.
    Migrate,
    /// Show the database, its schema version and this warden's.
    Status,
}

pub(crate) fn run(home: &Home, cmd: DbCommand) -> CliResult {
    let config = super::settings::load(home)?;
    let Some(url) = config.storage.database_url() else {
        return Err(Failure::usage(anyhow::anyhow!(
            "no database is configured: set [storage] url in {} or WARDEN_DATABASE_URL (the embedded SQLite files need no migration)",
            super::settings::path(home).display()
        )));
    };
    let url = DatabaseUrl::parse(&url).map_err(Failure::usage)?;
    let pool = Pool::connect(&url, 1).map_err(Failure::usage)?;
    match cmd {
        DbCommand::Migrate => {
            let applied = migrate::migrate(&pool).map_err(Failure::usage)?;
            if applied.is_empty() {
                println!("{url}: schema version {}, up to date", migrate::latest());
            }
            for (version, name) in applied {
                println!("{url}: applied migration {version} ({name})");
            }
        }
        DbCommand::Status => {
            let found = migrate::version(&pool).map_err(Failure::usage)?;
            println!("database: {url}");
            println!(
                "schema version: {found} (this warden: {})",
                migrate::latest()
            );
            migrate::check(&pool).map_err(Failure::usage)?;
        }
    }
    Ok(())
}
