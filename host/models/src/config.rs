//! Providers, routes and prices (the `[models]` part of `warden.toml`).
//!
//! ```toml
//! [models.providers.local]
//! kind = "openai"                       # any OpenAI-compatible chat completions endpoint
//! base_url = "http://127.0.0.1:11434/v1"
//!
//! [models.providers.claude]
//! kind = "anthropic"
//! base_url = "https://api.anthropic.com"
//! api_key_env = "ANTHROPIC_API_KEY"
//!
//! [models.routes.fast]
//! targets = ["local/llama3.2", "claude/claude-haiku-4-5"]
//! strategy = "fallback"                 # fallback | cheapest | fastest | weighted
//!
//! [models.prices."claude/claude-haiku-4-5"]
//! input = 1.0                           # US dollars per million tokens
//! output = 5.0
//! cached_input = 0.1
//!
//! [models.budgets.principals."token:ci"]  # a caller of the gateway (its token's principal)
//! tokens_per_day = 200000               # input + output tokens, per UTC day
//! cost_per_day = 5.0                    # US dollars, from the prices above
//!
//! [models.budgets.routes.fast]          # every use of a route, whoever calls it
//! cost_per_day = 50.0
//! ```
//!
//! Budgets are one ledger ([`Ledger`](super::Ledger)): a call reserves an estimate
//! against every budget that applies to it — the plugin's (from its grant's
//! `[models] budget`), the principal's and the route's (from `[models.budgets]` here) —
//! and settles with the real usage when it ends. A call that would pass any of them is
//! refused before it goes out, with an error naming the budget. A principal or route
//! without an entry has no limit of its own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ModelsConfigError;

/// Everything the router needs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    /// Providers by name.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Routes by name.
    #[serde(default)]
    pub routes: BTreeMap<String, RouteConfig>,
    /// Prices by `provider/model`.
    #[serde(default)]
    pub prices: BTreeMap<String, Price>,
    /// Retries and cooldown.
    #[serde(default)]
    pub retry: RetryConfig,
    /// Daily budgets of principals and routes.
    #[serde(default, skip_serializing_if = "Budgets::is_empty")]
    pub budgets: Budgets,
}

/// `[models.budgets]`: daily budgets beside the plugins' (which their grants give).
///
/// ```toml
/// [models.budgets]
/// principals."token:ci" = { tokens_per_day = 200000, cost_per_day = 5.0 }
/// routes.smart = { cost_per_day = 50.0 }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budgets {
    /// By principal, as the API tokens name them (`token:NAME`, or a token's
    /// `principal`).
    #[serde(default)]
    pub principals: BTreeMap<String, Budget>,
    /// By route name; the route must be configured.
    #[serde(default)]
    pub routes: BTreeMap<String, Budget>,
}

impl Budgets {
    /// True when no budget is set.
    pub fn is_empty(&self) -> bool {
        self.principals.is_empty() && self.routes.is_empty()
    }
}

/// The wire format a provider speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI-compatible `POST {base_url}/chat/completions`.
    Openai,
    /// Anthropic `POST {base_url}/v1/messages`.
    Anthropic,
}

/// One provider.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Its wire format.
    pub kind: ProviderKind,
    /// Where it is.
    pub base_url: String,
    /// The environment variable of Warden's process holding its API key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Longest one request may take, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    60_000
}

/// How a route picks among its targets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// In the order given.
    #[default]
    Fallback,
    /// Lowest price first (per the configured prices).
    Cheapest,
    /// Lowest moving-average latency first.
    Fastest,
    /// At random, by weight; the others follow as fallbacks.
    Weighted,
}

/// One route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// `provider/model`, in order of preference.
    pub targets: Vec<String>,
    /// How to pick.
    #[serde(default)]
    pub strategy: Strategy,
    /// Weights of the targets, for `weighted`.
    #[serde(default)]
    pub weights: Vec<u32>,
}

/// Price of a model, US dollars per million tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Input tokens.
    pub input: f64,
    /// Output tokens.
    pub output: f64,
    /// Cached input tokens.
    #[serde(default)]
    pub cached_input: f64,
}

impl Price {
    /// The cost of `usage`.
    pub fn cost(&self, usage: &super::Usage) -> f64 {
        let fresh = usage.input.saturating_sub(usage.cached) as f64;
        (fresh * self.input
            + usage.cached as f64 * self.cached_input
            + usage.output as f64 * self.output)
            / 1_000_000.0
    }

    /// A comparable figure for `cheapest`: a call of 1000 tokens in, 1000 out.
    pub(crate) fn rank(&self) -> f64 {
        self.input + self.output
    }
}

/// Retries, backoff and cooldown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts on one target for a retryable failure (the first included).
    pub attempts: u32,
    /// First backoff, doubled on each retry, in milliseconds.
    pub backoff_ms: u64,
    /// Longest wait the router honours from `Retry-After`, in milliseconds.
    pub max_retry_after_ms: u64,
    /// Failures of a target within `window_s` that put it in cooldown.
    pub cooldown_failures: u32,
    /// The window, in seconds.
    pub window_s: u64,
    /// How long a target stays in cooldown, in seconds.
    pub cooldown_s: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            attempts: 2,
            backoff_ms: 200,
            max_retry_after_ms: 10_000,
            cooldown_failures: 3,
            window_s: 60,
            cooldown_s: 5,
        }
    }
}

impl ModelsConfig {
    /// True when nothing is configured.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty() && self.routes.is_empty()
    }

    /// Checks what the types cannot: every target names a provider, weights fit.
    pub fn check(&self) -> Result<(), ModelsConfigError> {
        for (name, provider) in &self.providers {
            if !(provider.base_url.starts_with("http://")
                || provider.base_url.starts_with("https://"))
            {
                return Err(ModelsConfigError::BaseUrl {
                    provider: name.clone(),
                    base_url: provider.base_url.clone(),
                });
            }
        }
        for (name, route) in &self.routes {
            if route.targets.is_empty() {
                return Err(ModelsConfigError::NoTargets {
                    route: name.clone(),
                });
            }
            for target in &route.targets {
                let Some((provider, model)) = target.split_once('/') else {
                    return Err(ModelsConfigError::Target {
                        route: name.clone(),
                        target: target.clone(),
                    });
                };
                if model.is_empty() || !self.providers.contains_key(provider) {
                    return Err(ModelsConfigError::UnknownProvider {
                        route: name.clone(),
                        target: target.clone(),
                        provider: provider.to_string(),
                        providers: self.providers.keys().cloned().collect(),
                    });
                }
            }
            if route.strategy == Strategy::Weighted && route.weights.len() != route.targets.len() {
                return Err(ModelsConfigError::Weights {
                    route: name.clone(),
                });
            }
        }
        for name in self.budgets.routes.keys() {
            if !self.routes.contains_key(name) {
                return Err(ModelsConfigError::UnknownRoute {
                    route: name.clone(),
                    routes: self.routes.keys().cloned().collect(),
                });
            }
        }
        let budgets = self
            .budgets
            .principals
            .iter()
            .map(|(n, b)| (format!("principals.{n:?}"), b));
        let budgets = budgets.chain(
            self.budgets
                .routes
                .iter()
                .map(|(n, b)| (format!("routes.{n}"), b)),
        );
        for (name, budget) in budgets {
            if budget
                .cost_per_day
                .is_some_and(|c| !c.is_finite() || c < 0.0)
            {
                return Err(ModelsConfigError::Cost { budget: name });
            }
        }
        Ok(())
    }
}

/// A daily budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Tokens (input + output) per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_day: Option<u64>,
    /// US dollars per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_day: Option<f64>,
}
