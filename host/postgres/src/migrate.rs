//! The database's schema, versioned: each migration is applied once, in order, in a
//! transaction of its own, under an advisory lock (nodes starting together take turns).
//! A database whose version is newer than this binary's is refused: an older node must
//! not write to tables it does not know.

use postgres::Client;

use crate::{DatabaseUrl, PgError, Pool};

/// The migrations, oldest first; a migration's version is its place (from 1).
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "audit, budgets and memory",
        include_str!("migrations/0001_audit_budgets_memory.sql"),
    ),
    (
        "the cluster's plugins, grants and policy",
        include_str!("migrations/0002_cluster_home.sql"),
    ),
    (
        "agent runs and approvals",
        include_str!("migrations/0003_runs.sql"),
    ),
];

/// The advisory lock migrations take (any fixed number that no other lock uses).
const LOCK: i64 = 0x5741_5244_454e_0001;

/// The newest schema version this binary knows.
pub fn latest() -> i32 {
    MIGRATIONS.len() as i32
}

/// The database's schema version (0 for an empty database).
pub fn version(pool: &Pool) -> Result<i32, PgError> {
    pool.run("reading the schema version", version_in)
}

fn version_in(client: &mut Client) -> Result<i32, postgres::Error> {
    client.batch_execute(
        "CREATE TABLE IF NOT EXISTS warden_schema (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )?;
    let row = client.query_one("SELECT COALESCE(MAX(version), 0) FROM warden_schema", &[])?;
    row.try_get(0)
}

/// Migrations applied: (version, name).
pub type Applied = Vec<(i32, &'static str)>;

/// Brings the database to [`latest`]; returns the migrations applied (version, name).
/// Refuses a database newer than this binary.
pub fn migrate(pool: &Pool) -> Result<Applied, PgError> {
    let url = pool.url().clone();
    pool.run("migrating the schema", move |client| {
        client.execute("SELECT pg_advisory_lock($1)", &[&LOCK])?;
        let applied = apply(client);
        let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK]);
        let applied = applied?;
        unlocked?;
        Ok(applied)
    })?
    .map_err(|found| too_new(&url, found))
}

/// Applies what is missing; `Err(found)` if the database is newer than this binary.
fn apply(client: &mut Client) -> Result<Result<Applied, i32>, postgres::Error> {
    let found = version_in(client)?;
    if found > latest() {
        return Ok(Err(found));
    }
    let mut applied = Vec::new();
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as i32 + 1;
        let mut tx = client.transaction()?;
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO warden_schema (version, name) VALUES ($1, $2)",
            &[&version, name],
        )?;
        tx.commit()?;
        tracing::info!(version, name, "database migrated");
        applied.push((version, *name));
    }
    Ok(Ok(applied))
}

/// Checks that the database is at [`latest`], without changing it.
pub fn check(pool: &Pool) -> Result<(), PgError> {
    let found = version(pool)?;
    match found.cmp(&latest()) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(too_new(pool.url(), found)),
        std::cmp::Ordering::Less => Err(PgError::TooOld {
            url: pool.url().redacted().to_string(),
            found,
            known: latest(),
        }),
    }
}

fn too_new(url: &DatabaseUrl, found: i32) -> PgError {
    PgError::TooNew {
        url: url.redacted().to_string(),
        found,
        known: latest(),
    }
}
