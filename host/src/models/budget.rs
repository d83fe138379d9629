//! The budget ledger: one account per plugin per UTC day. A call reserves an estimate
//! before it goes out (so concurrent calls cannot all pass the limit) and settles with
//! the real usage when it returns.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::grant::Budget;

/// Spent and reserved amounts of every plugin, today and recent days.
#[derive(Default)]
pub struct Ledger {
    accounts: Mutex<HashMap<(String, u64), Account>>,
}

#[derive(Clone, Copy, Default)]
struct Account {
    tokens: u64,
    cost: f64,
}

/// An amount held for one call until it settles.
#[must_use = "settle the reservation with the call's real usage"]
pub struct Reservation {
    plugin: String,
    day: u64,
    tokens: u64,
}

/// The UTC day number of a Unix time.
pub fn day_of(unix_seconds: u64) -> u64 {
    unix_seconds / 86_400
}

impl Ledger {
    /// Holds `tokens` for `plugin` today, unless that would pass `budget`.
    pub fn reserve(
        &self,
        plugin: &str,
        day: u64,
        tokens: u64,
        budget: &Budget,
    ) -> Result<Reservation, String> {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts.retain(|(_, d), _| *d + 1 >= day);
        let account = accounts.entry((plugin.to_string(), day)).or_default();
        if let Some(limit) = budget.tokens_per_day
            && account.tokens + tokens > limit
        {
            return Err(format!(
                "plugin \"{plugin}\" has used {} of its {limit} tokens today; this call may need {tokens} more (budget.tokens_per_day)",
                account.tokens
            ));
        }
        if let Some(limit) = budget.cost_per_day
            && account.cost >= limit
        {
            return Err(format!(
                "plugin \"{plugin}\" has spent ${:.4} of its ${limit} today (budget.cost_per_day)",
                account.cost
            ));
        }
        account.tokens += tokens;
        Ok(Reservation {
            plugin: plugin.to_string(),
            day,
            tokens,
        })
    }

    /// Replaces the reservation with what the call really used (0 if it failed).
    pub fn settle(&self, reservation: Reservation, tokens: u64, cost: f64) {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let account = accounts
            .entry((reservation.plugin, reservation.day))
            .or_default();
        account.tokens = account.tokens.saturating_sub(reservation.tokens) + tokens;
        account.cost += cost;
    }

    /// Tokens and cost `plugin` has used on `day`, reservations included.
    pub fn used(&self, plugin: &str, day: u64) -> (u64, f64) {
        let accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts
            .get(&(plugin.to_string(), day))
            .map_or((0, 0.0), |a| (a.tokens, a.cost))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_then_settle_against_the_daily_limit() {
        let ledger = Ledger::default();
        let budget = Budget {
            tokens_per_day: Some(1000),
            cost_per_day: None,
        };
        let a = ledger.reserve("p", 1, 600, &budget).unwrap();
        // A concurrent call cannot take what is reserved.
        assert!(ledger.reserve("p", 1, 600, &budget).is_err());
        ledger.settle(a, 100, 0.01);
        assert_eq!(ledger.used("p", 1), (100, 0.01));
        let b = ledger.reserve("p", 1, 600, &budget).unwrap();
        ledger.settle(b, 0, 0.0);
        // Another day, another account; another plugin too.
        assert!(ledger.reserve("p", 2, 1000, &budget).is_ok());
        assert!(ledger.reserve("q", 1, 1000, &budget).is_ok());
    }
}
