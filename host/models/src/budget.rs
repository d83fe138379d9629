//! The budget ledger: one account per plugin, per principal and per route, per UTC day.
//! A call reserves an estimate against every budget that applies to it, all or none,
//! before it goes out (so concurrent calls cannot all pass a limit), and settles with
//! the real usage when it ends.
//!
//! Only accounts with a limit are kept: a plugin, principal or route without a budget
//! costs the ledger nothing.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use super::config::Budget;

use super::router::{RouteError, Router};
use super::types::{ChatRequest, Usage};

/// Whose budget an account is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A plugin's, from its grant's `[models] budget`.
    Plugin,
    /// A principal's (who called), from `[models.budgets.principals]`.
    Principal,
    /// A route's (every use of it), from `[models.budgets.routes]`.
    Route,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Plugin => "plugin",
            Scope::Principal => "principal",
            Scope::Route => "route",
        }
    }

    /// Where the limit `field` of `name`'s budget is set.
    fn setting(self, name: &str, field: &str) -> String {
        match self {
            Scope::Plugin => format!("budget.{field} in [models] of the plugin's grant"),
            Scope::Principal => {
                format!("[models.budgets.principals.{name:?}] {field} in warden.toml")
            }
            Scope::Route => format!("[models.budgets.routes.{name}] {field} in warden.toml"),
        }
    }
}

/// A call that would pass a budget.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct BudgetExceeded {
    /// The budget: `principal "token:ci"`, `route "smart"`, `plugin "notes"`.
    pub budget: String,
    /// What was used, what the call needed, and where the limit is set.
    pub message: String,
}

/// What a call may use, reserved before it goes out.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Estimate {
    /// Input and output tokens.
    pub tokens: u64,
    /// US dollars.
    pub cost: f64,
}

/// Spent and reserved amounts, today and yesterday.
#[derive(Default)]
pub struct Ledger {
    accounts: Mutex<HashMap<Key, Account>>,
}

type Key = (Scope, String, u64);

#[derive(Clone, Copy, Default)]
struct Account {
    tokens: u64,
    cost: f64,
}

/// An amount held for one call until it settles.
#[must_use = "settle the reservation with the call's real usage"]
pub struct Reservation {
    keys: Vec<Key>,
    held: Estimate,
}

impl fmt::Debug for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("accounts", &self.keys.len())
            .field("held", &self.held)
            .finish()
    }
}

/// The UTC day number of a Unix time.
pub fn day_of(unix_seconds: u64) -> u64 {
    unix_seconds / 86_400
}

impl Ledger {
    /// Holds `estimate` on `day` in the account of every `(scope, name, budget)`
    /// given, unless that would pass one of the budgets: then nothing is held and the
    /// error names the first budget passed.
    pub fn reserve(
        &self,
        day: u64,
        budgets: &[(Scope, &str, &Budget)],
        estimate: Estimate,
    ) -> Result<Reservation, BudgetExceeded> {
        let limited: Vec<_> = budgets
            .iter()
            .filter(|(_, _, b)| b.tokens_per_day.is_some() || b.cost_per_day.is_some())
            .collect();
        if limited.is_empty() {
            return Ok(Reservation {
                keys: Vec::new(),
                held: estimate,
            });
        }
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts.retain(|(_, _, d), _| *d + 1 >= day);
        for (scope, name, budget) in &limited {
            let account = accounts
                .get(&(*scope, name.to_string(), day))
                .copied()
                .unwrap_or_default();
            let exceeded = |field: &str, message: String| BudgetExceeded {
                budget: format!("{} {name:?}", scope.name()),
                message: format!(
                    "budget of {} {name:?} exceeded: {message}; raise {} or wait for the next UTC day",
                    scope.name(),
                    scope.setting(name, field)
                ),
            };
            if let Some(limit) = budget.tokens_per_day
                && account.tokens + estimate.tokens > limit
            {
                return Err(exceeded(
                    "tokens_per_day",
                    format!(
                        "{} of its {limit} tokens used today, and this call may need {} more",
                        account.tokens, estimate.tokens
                    ),
                ));
            }
            if let Some(limit) = budget.cost_per_day
                && (account.cost >= limit || account.cost + estimate.cost > limit)
            {
                return Err(exceeded(
                    "cost_per_day",
                    format!(
                        "${:.4} of its ${limit} spent today, and this call may cost ${:.4} more",
                        account.cost, estimate.cost
                    ),
                ));
            }
        }
        let mut keys = Vec::with_capacity(limited.len());
        for (scope, name, _) in limited {
            let key = (*scope, name.to_string(), day);
            let account = accounts.entry(key.clone()).or_default();
            account.tokens += estimate.tokens;
            account.cost += estimate.cost;
            keys.push(key);
        }
        Ok(Reservation {
            keys,
            held: estimate,
        })
    }

    /// Replaces the reservation with what the call really used (0 if it failed).
    pub fn settle(&self, reservation: Reservation, tokens: u64, cost: f64) {
        if reservation.keys.is_empty() {
            return;
        }
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        for key in reservation.keys {
            let account = accounts.entry(key).or_default();
            account.tokens = account.tokens.saturating_sub(reservation.held.tokens) + tokens;
            account.cost = (account.cost - reservation.held.cost).max(0.0) + cost;
        }
    }

    /// Tokens and cost used on `day` in the account of `scope` `name`, reservations
    /// included (0 for one without a budget).
    pub fn used(&self, scope: Scope, name: &str, day: u64) -> (u64, f64) {
        let accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts
            .get(&(scope, name.to_string(), day))
            .map_or((0, 0.0), |a| (a.tokens, a.cost))
    }
}

/// Who pays for a model call, beside its route.
#[derive(Clone, Copy, Debug, Default)]
pub struct Payer<'a> {
    /// The plugin making it, and its grant's budget.
    pub plugin: Option<(&'a str, &'a Budget)>,
    /// The principal on whose behalf (the API token's).
    pub principal: Option<&'a str>,
}

/// Tokens of `request`'s prompt, estimated at ~4 bytes a token.
pub(crate) fn prompt_tokens(request: &ChatRequest) -> u64 {
    let text: usize = request
        .messages
        .iter()
        .map(|m| {
            m.content.len()
                + m.tool_calls
                    .iter()
                    .map(|c| c.name.len() + c.arguments.to_string().len())
                    .sum::<usize>()
        })
        .sum::<usize>()
        + request
            .tools
            .iter()
            .map(|t| t.name.len() + t.description.len() + t.parameters.to_string().len())
            .sum::<usize>();
    (text as u64).div_ceil(4)
}

/// Tokens an answer may take when the request sets no `max_tokens`.
const DEFAULT_ANSWER_TOKENS: u64 = 1024;

impl Router {
    /// What `request` on `route` may use: its prompt (estimated) plus the answer's
    /// `max_tokens` (1024 when not given), at the dearest price among the route's
    /// targets.
    pub fn estimate(&self, route: &str, request: &ChatRequest) -> Result<Estimate, RouteError> {
        let config = self.route(route)?;
        let input = prompt_tokens(request);
        let output = request.max_tokens.map_or(DEFAULT_ANSWER_TOKENS, u64::from);
        let cost = config
            .targets
            .iter()
            .filter_map(|t| self.config().prices.get(t))
            .map(|p| {
                p.cost(&Usage {
                    input,
                    output,
                    ..Usage::default()
                })
            })
            .fold(0.0, f64::max);
        Ok(Estimate {
            tokens: input + output,
            cost,
        })
    }

    /// Reserves what `request` on `route` may use against every budget that applies:
    /// the payer's plugin's, the payer's principal's and the route's. Settle it with
    /// [`Router::settle`] when the call ends, failed or not.
    pub fn reserve(
        &self,
        route: &str,
        payer: Payer<'_>,
        request: &ChatRequest,
    ) -> Result<Reservation, RouteError> {
        let estimate = self.estimate(route, request)?;
        let budgets = &self.config().budgets;
        let mut charged: Vec<(Scope, &str, &Budget)> = Vec::with_capacity(3);
        if let Some((plugin, budget)) = payer.plugin {
            charged.push((Scope::Plugin, plugin, budget));
        }
        if let Some(principal) = payer.principal
            && let Some(budget) = budgets.principals.get(principal)
        {
            charged.push((Scope::Principal, principal, budget));
        }
        if let Some(budget) = budgets.routes.get(route) {
            charged.push((Scope::Route, route, budget));
        }
        let day = day_of(unix_now());
        Ok(self.ledger.reserve(day, &charged, estimate)?)
    }

    /// Settles `reservation` with what the call used (nothing, if it failed).
    pub fn settle(&self, reservation: Reservation, usage: &Usage, cost: f64) {
        self.ledger
            .settle(reservation, usage.input + usage.output, cost);
    }
}

/// Seconds since the Unix epoch, now.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(n: u64) -> Estimate {
        Estimate {
            tokens: n,
            cost: 0.0,
        }
    }

    #[test]
    fn reserve_then_settle_against_the_daily_limit() {
        let ledger = Ledger::default();
        let budget = Budget {
            tokens_per_day: Some(1000),
            cost_per_day: None,
        };
        let p = [(Scope::Plugin, "p", &budget)];
        let a = ledger.reserve(1, &p, tokens(600)).unwrap();
        // A concurrent call cannot take what is reserved.
        assert!(ledger.reserve(1, &p, tokens(600)).is_err());
        ledger.settle(a, 100, 0.01);
        assert_eq!(ledger.used(Scope::Plugin, "p", 1), (100, 0.01));
        let b = ledger.reserve(1, &p, tokens(600)).unwrap();
        ledger.settle(b, 0, 0.0);
        // Another day, another account; another plugin too.
        assert!(ledger.reserve(2, &p, tokens(1000)).is_ok());
        assert!(
            ledger
                .reserve(1, &[(Scope::Plugin, "q", &budget)], tokens(1000))
                .is_ok()
        );
    }

    #[test]
    fn every_budget_or_none_and_the_error_names_the_one_passed() {
        let ledger = Ledger::default();
        let plenty = Budget {
            tokens_per_day: Some(10_000),
            cost_per_day: None,
        };
        let dear = Budget {
            tokens_per_day: None,
            cost_per_day: Some(0.5),
        };
        let budgets = [
            (Scope::Plugin, "p", &plenty),
            (Scope::Principal, "token:ci", &plenty),
            (Scope::Route, "smart", &dear),
        ];
        let call = Estimate {
            tokens: 100,
            cost: 0.3,
        };
        let held = ledger.reserve(1, &budgets, call).unwrap();
        let err = ledger.reserve(1, &budgets, call).unwrap_err();
        assert_eq!(err.budget, "route \"smart\"");
        assert!(
            err.message
                .contains("[models.budgets.routes.smart] cost_per_day"),
            "{err}"
        );
        // The refused call held nothing anywhere.
        assert_eq!(ledger.used(Scope::Plugin, "p", 1), (100, 0.3));
        assert_eq!(ledger.used(Scope::Principal, "token:ci", 1).0, 100);
        ledger.settle(held, 40, 0.1);
        assert_eq!(ledger.used(Scope::Principal, "token:ci", 1), (40, 0.1));
        let err = ledger
            .reserve(1, &[(Scope::Principal, "token:ci", &plenty)], tokens(9_999))
            .unwrap_err();
        assert!(
            err.message
                .contains("[models.budgets.principals.\"token:ci\"] tokens_per_day"),
            "{err}"
        );
    }
}
