//! The ledger in the cluster's database: `budget_accounts` and `budget_holds`, as the
//! SQLite ledger keeps them. A reservation takes a transaction-scoped advisory lock on
//! each account it touches (in one order, so two never wait on each other), then
//! checks and holds, so two nodes cannot both pass a limit.

use warden_postgres::{PgError, Pool};

use super::{Budget, BudgetExceeded, Estimate, Key, Scope, check, int};

/// The SQL of what an account has used (settled, plus holds made after the cutoff).
const ACCOUNT_SQL: &str = "SELECT
    (SELECT COALESCE(SUM(tokens), 0)::bigint FROM budget_accounts WHERE scope = $1 AND name = $2 AND day = $3)
  + (SELECT COALESCE(SUM(tokens), 0)::bigint FROM budget_holds
     WHERE scope = $1 AND name = $2 AND day = $3 AND created_ms > $4),
    (SELECT COALESCE(SUM(cost), 0)::float8 FROM budget_accounts WHERE scope = $1 AND name = $2 AND day = $3)
  + (SELECT COALESCE(SUM(cost), 0)::float8 FROM budget_holds
     WHERE scope = $1 AND name = $2 AND day = $3 AND created_ms > $4)";

fn account(
    client: &mut impl warden_postgres::GenericClient,
    scope: &str,
    name: &str,
    day: i64,
    cutoff: i64,
) -> Result<(u64, f64), warden_postgres::SqlError> {
    let row = client.query_one(ACCOUNT_SQL, &[&scope, &name, &day, &cutoff])?;
    Ok((
        u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0),
        row.try_get(1)?,
    ))
}

/// Tokens and cost an account used on `day`.
pub(super) fn used(
    pool: &Pool,
    scope: Scope,
    name: &str,
    day: u64,
    cutoff: i64,
) -> Result<(u64, f64), super::LedgerError> {
    let (name, day) = (name.to_string(), int(day));
    Ok(pool.run("reading a budget account", move |c| {
        account(c, scope.name(), &name, day, cutoff)
    })?)
}

/// Checks every budget and holds `estimate` in each, all or none.
pub(super) fn reserve(
    pool: &Pool,
    now_ms: i64,
    cutoff: i64,
    day: u64,
    limited: &[&(Scope, &str, &Budget)],
    estimate: Estimate,
    id: i64,
) -> Result<Result<(), BudgetExceeded>, super::LedgerError> {
    let mut accounts: Vec<(Scope, String, Budget)> = limited
        .iter()
        .map(|(scope, name, budget)| (*scope, name.to_string(), **budget))
        .collect();
    // One order of locks for every node: no two reservations wait on each other.
    accounts.sort_by(|a, b| (a.0.name(), &a.1).cmp(&(b.0.name(), &b.1)));
    let day = int(day);
    let result = pool.run("reserving a budget", move |c| {
        let mut tx = c.transaction()?;
        for (scope, name, _) in &accounts {
            let key = format!("budget/{}/{name}/{day}", scope.name());
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                &[&key],
            )?;
        }
        for (scope, name, budget) in &accounts {
            let (tokens, cost) = account(&mut tx, scope.name(), name, day, cutoff)?;
            if let Some(exceeded) = check(*scope, name, budget, tokens, cost, estimate) {
                return Ok(Err(exceeded));
            }
        }
        for (scope, name, _) in &accounts {
            tx.execute(
                "INSERT INTO budget_holds (scope, name, day, reservation, created_ms, tokens, cost)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &scope.name(),
                    name,
                    &day,
                    &id,
                    &now_ms,
                    &int(estimate.tokens),
                    &estimate.cost,
                ],
            )?;
        }
        tx.commit()?;
        Ok(Ok(()))
    });
    result.map_err(super::LedgerError::from)
}

/// Charges the usage to every account of `keys` and removes reservation `id`'s holds.
pub(super) fn settle(
    pool: &Pool,
    keys: &[Key],
    id: i64,
    tokens: u64,
    cost: f64,
) -> Result<(), super::LedgerError> {
    let keys = keys.to_vec();
    pool.run("settling a budget", move |c| {
        let mut tx = c.transaction()?;
        for (scope, name, day) in &keys {
            let day = int(*day);
            if tokens > 0 || cost > 0.0 {
                tx.execute(
                    "INSERT INTO budget_accounts (scope, name, day, tokens, cost)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (scope, name, day) DO UPDATE SET
                        tokens = budget_accounts.tokens + excluded.tokens,
                        cost = budget_accounts.cost + excluded.cost",
                    &[&scope.name(), name, &day, &int(tokens), &cost],
                )?;
            }
            tx.execute(
                "DELETE FROM budget_holds WHERE scope = $1 AND name = $2 AND day = $3 AND reservation = $4",
                &[&scope.name(), name, &day, &id],
            )?;
        }
        tx.commit()
    })
    .map_err(|err: PgError| err.into())
}
