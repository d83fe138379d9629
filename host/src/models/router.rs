//! The router: picks targets of a route by its strategy, and owns the only retry loop.
//!
//! Per attempt, a failure is classified ([`FailureKind`]): rate limits, server errors,
//! timeouts and refused connections are retried on the same target with exponential
//! backoff (or the provider's `Retry-After`, capped); a prompt too long for the model,
//! a key the provider refuses and an unreadable answer fall back to the next target; a
//! bad request or a content-policy refusal stops (no target would do better). A target
//! that fails `cooldown_failures` times within `window_s` sits out `cooldown_s`, also
//! when it is a route's only target.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::classify::{Decision, Failure, FailureKind};
use super::client::post_json;
use super::config::{ModelsConfig, ProviderKind, Strategy};
use super::types::{ChatRequest, ChatResponse};
use super::wire::{anthropic, openai};

/// Why a route gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// No such route.
    #[error("no model route {route:?} (routes: {known})")]
    UnknownRoute {
        /// The route asked for.
        route: String,
        /// The configured routes.
        known: String,
    },
    /// A failure no other target would fix.
    #[error("route {route:?}, target {target}: {failure}")]
    Stopped {
        /// The route.
        route: String,
        /// The target that answered so.
        target: String,
        /// What it said.
        failure: Failure,
    },
    /// Every target failed or is in cooldown.
    #[error("route {route:?}: every target failed: {}", attempts.iter().map(|(t, f)| format!("{t}: {f}")).collect::<Vec<_>>().join("; "))]
    Exhausted {
        /// The route.
        route: String,
        /// The last failure of each target tried.
        attempts: Vec<(String, Failure)>,
    },
}

/// What the router knows of a target's health.
#[derive(Default)]
struct Health {
    failures: VecDeque<Instant>,
    cooldown_until: Option<Instant>,
    /// Moving average of answer latency, in milliseconds.
    latency_ms: Option<f64>,
}

/// Routes model requests to providers.
pub struct Router {
    config: ModelsConfig,
    health: Mutex<HashMap<String, Health>>,
    tls: Arc<rustls::ClientConfig>,
    seed: AtomicU64,
    ledger: super::budget::Ledger,
}

impl Router {
    /// A router over `config` (checked here).
    pub fn new(config: ModelsConfig) -> anyhow::Result<Self> {
        config.check()?;
        Ok(Self {
            config,
            health: Mutex::default(),
            tls: crate::net::tls_config(&[])?,
            seed: AtomicU64::new(0x9e37_79b9_7f4a_7c15),
            ledger: super::budget::Ledger::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ModelsConfig {
        &self.config
    }

    /// The budget ledger of every plugin.
    pub fn ledger(&self) -> &super::budget::Ledger {
        &self.ledger
    }

    /// Answers `request` on `route`.
    pub async fn complete(
        &self,
        route: &str,
        request: &ChatRequest,
    ) -> Result<ChatResponse, RouteError> {
        let Some(config) = self.config.routes.get(route) else {
            return Err(RouteError::UnknownRoute {
                route: route.to_string(),
                known: self
                    .config
                    .routes
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let retry = &self.config.retry;
        let mut attempts = Vec::new();
        for target in self.order(&config.targets, config.strategy, &config.weights) {
            if let Some(until) = self.cooling(&target) {
                let left = until.saturating_duration_since(Instant::now());
                attempts.push((
                    target,
                    Failure::new(
                        FailureKind::Server,
                        format!("in cooldown for {} ms more", left.as_millis()),
                    ),
                ));
                continue;
            }
            let mut backoff = Duration::from_millis(retry.backoff_ms);
            for attempt in 1..=retry.attempts.max(1) {
                let started = Instant::now();
                match self.attempt(&target, request).await {
                    Ok(response) => {
                        self.succeeded(&target, started.elapsed());
                        return Ok(response);
                    }
                    Err(failure) => {
                        tracing::info!(route, target, attempt, %failure, "model call failed");
                        let cooled = failure.kind.counts_against_target() && self.failed(&target);
                        match failure.kind.decision() {
                            Decision::Stop => {
                                return Err(RouteError::Stopped {
                                    route: route.to_string(),
                                    target,
                                    failure,
                                });
                            }
                            Decision::Retry if attempt < retry.attempts && !cooled => {
                                let max = Duration::from_millis(retry.max_retry_after_ms);
                                let wait = failure.retry_after.map_or(backoff, |r| r.min(max));
                                tokio::time::sleep(wait).await;
                                backoff *= 2;
                            }
                            _ => {
                                attempts.push((target.clone(), failure));
                                break;
                            }
                        }
                    }
                }
            }
        }
        Err(RouteError::Exhausted {
            route: route.to_string(),
            attempts,
        })
    }

    /// One call of one target.
    async fn attempt(&self, target: &str, request: &ChatRequest) -> Result<ChatResponse, Failure> {
        let (provider_name, model) = target.split_once('/').expect("checked in config");
        let provider = &self.config.providers[provider_name];
        let key = match &provider.api_key_env {
            Some(var) => Some(std::env::var(var).map_err(|_| {
                Failure::new(
                    FailureKind::Auth,
                    format!("the environment variable {var} (api_key_env of provider {provider_name}) is not set for Warden"),
                )
            })?),
            None => None,
        };
        let base = provider.base_url.trim_end_matches('/');
        let (url, body, headers) = match provider.kind {
            ProviderKind::Openai => {
                let headers = key.map(|k| vec![("authorization", format!("Bearer {k}"))]);
                (
                    format!("{base}/chat/completions"),
                    openai::request(model, request),
                    headers.unwrap_or_default(),
                )
            }
            ProviderKind::Anthropic => {
                let mut headers = vec![("anthropic-version", "2023-06-01".to_string())];
                if let Some(k) = key {
                    headers.push(("x-api-key", k));
                }
                (
                    format!("{base}/v1/messages"),
                    anthropic::request(model, request),
                    headers,
                )
            }
        };
        let timeout = Duration::from_millis(provider.timeout_ms);
        let answer = post_json(&self.tls, &url, &headers, &body, timeout).await?;
        if !(200..300).contains(&answer.status) {
            return Err(Failure::from_status(
                answer.status,
                &answer.body,
                answer.retry_after.as_deref(),
            ));
        }
        let json: serde_json::Value = serde_json::from_str(&answer.body).map_err(|e| {
            Failure::new(
                FailureKind::MalformedResponse,
                format!("the answer is not JSON: {e}"),
            )
        })?;
        let (content, tool_calls, finish_reason, usage) = match provider.kind {
            ProviderKind::Openai => openai::response(&json)?,
            ProviderKind::Anthropic => anthropic::response(&json)?,
        };
        let cost = self
            .config
            .prices
            .get(target)
            .map_or(0.0, |p| p.cost(&usage));
        Ok(ChatResponse {
            content,
            tool_calls,
            finish_reason,
            usage,
            cost,
            target: target.to_string(),
        })
    }

    /// The targets in the order the strategy tries them.
    fn order(&self, targets: &[String], strategy: Strategy, weights: &[u32]) -> Vec<String> {
        let mut order = targets.to_vec();
        match strategy {
            Strategy::Fallback => {}
            Strategy::Cheapest => {
                let rank = |t: &String| self.config.prices.get(t).map_or(f64::MAX, |p| p.rank());
                order.sort_by(|a, b| rank(a).total_cmp(&rank(b)));
            }
            Strategy::Fastest => {
                let health = self.health.lock().unwrap_or_else(|e| e.into_inner());
                // A target not measured yet goes first, so it gets measured.
                let latency = |t: &String| health.get(t).and_then(|h| h.latency_ms).unwrap_or(0.0);
                order.sort_by(|a, b| latency(a).total_cmp(&latency(b)));
            }
            Strategy::Weighted => {
                let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
                if total > 0 {
                    let mut pick = self.random() % total;
                    let chosen = weights
                        .iter()
                        .position(|w| {
                            let w = u64::from(*w);
                            if pick < w {
                                true
                            } else {
                                pick -= w;
                                false
                            }
                        })
                        .unwrap_or(0);
                    let first = order.remove(chosen);
                    order.insert(0, first);
                }
            }
        }
        order
    }

    /// A xorshift step: enough randomness to spread weighted picks.
    fn random(&self) -> u64 {
        let mut x = self.seed.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.seed.store(x, Ordering::Relaxed);
        x
    }

    fn cooling(&self, target: &str) -> Option<Instant> {
        let health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        health
            .get(target)
            .and_then(|h| h.cooldown_until)
            .filter(|until| *until > Instant::now())
    }

    fn succeeded(&self, target: &str, took: Duration) {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let h = health.entry(target.to_string()).or_default();
        h.failures.clear();
        let ms = took.as_secs_f64() * 1000.0;
        h.latency_ms = Some(h.latency_ms.map_or(ms, |avg| avg * 0.8 + ms * 0.2));
    }

    /// Counts a failure; true when it put the target in cooldown.
    fn failed(&self, target: &str) -> bool {
        let retry = &self.config.retry;
        let now = Instant::now();
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let h = health.entry(target.to_string()).or_default();
        let window = Duration::from_secs(retry.window_s);
        h.failures.push_back(now);
        while h
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            h.failures.pop_front();
        }
        if h.failures.len() >= retry.cooldown_failures.max(1) as usize {
            h.failures.clear();
            h.cooldown_until = Some(now + Duration::from_secs(retry.cooldown_s));
            tracing::warn!(
                target,
                cooldown_s = retry.cooldown_s,
                "model target in cooldown"
            );
            return true;
        }
        false
    }
}
