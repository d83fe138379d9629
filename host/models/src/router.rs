//! The router: picks targets of a route by its strategy, and owns the only retry loop.
//!
//! Per attempt, a failure is classified ([`FailureKind`]): rate limits, server errors,
//! timeouts and refused connections are retried on the same target with exponential
//! backoff (or the provider's `Retry-After`, capped); a prompt too long for the model,
//! a key the provider refuses and an unreadable answer fall back to the next target; a
//! bad request or a content-policy refusal stops (no target would do better). A target
//! that fails `cooldown_failures` times within `window_s` sits out `cooldown_s`, also
//! when it is a route's only target.
//!
//! A streamed answer ([`Router::stream`]) goes through the same loop until its first
//! delta is in: a failure before that (an error status, a broken or unreadable
//! stream, silence past the timeout) is handled like any other. Once the caller has
//! the stream, its first bytes may have gone on to a client, so a later failure is
//! the caller's to report; it still counts against the target's health
//! ([`Router::stream_ended`]).
//!
//! Each provider has one HTTP client, made here: connections are pooled and reused.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::budget::BudgetExceeded;
use super::classify::{Decision, Failure, FailureKind};
use super::client::{open_stream, post_json};
use super::config::{ModelsConfig, ProviderKind, Strategy};
use super::error::SetupError;
use super::stream::{Decoder, Streaming};
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
    /// The call would pass a budget; nothing was sent.
    #[error(transparent)]
    Budget(#[from] BudgetExceeded),
}

impl RouteError {
    /// A short name of the error's kind, for spans and metrics (`error.type`).
    pub fn kind(&self) -> &'static str {
        match self {
            RouteError::UnknownRoute { .. } => "unknown-route",
            RouteError::Stopped { .. } => "stopped",
            RouteError::Exhausted { .. } => "exhausted",
            RouteError::Budget(_) => "budget",
        }
    }
}

/// What the router knows of a target's health.
#[derive(Default)]
struct Health {
    failures: VecDeque<Instant>,
    cooldown_until: Option<Instant>,
    /// Moving average of answer latency, in milliseconds.
    latency_ms: Option<f64>,
}

/// What an attempt is after.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Whole,
    Stream,
}

/// What an attempt got.
enum Got {
    Whole(ChatResponse),
    Stream(Box<Streaming>),
}

/// Routes model requests to providers.
pub struct Router {
    config: ModelsConfig,
    health: Mutex<HashMap<String, Health>>,
    clients: HashMap<String, reqwest::Client>,
    seed: AtomicU64,
    pub(crate) ledger: super::budget::Ledger,
}

/// The seed of `weighted` picks unless [`Router::seed`] sets one.
const DEFAULT_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

impl Router {
    /// The router of the home config's `[models]`, if it configures any route.
    pub fn from_config(models: &ModelsConfig) -> Result<Option<Router>, SetupError> {
        if models.is_empty() {
            return Ok(None);
        }
        Router::new(models.clone()).map(Some)
    }
}

impl Router {
    /// A router over `config` (checked here), with one HTTP client per provider.
    pub fn new(config: ModelsConfig) -> Result<Self, SetupError> {
        config.check()?;
        let tls = warden_net::tls_config(&[]).map_err(|err| SetupError::Tls(err.into()))?;
        let clients = config
            .providers
            .iter()
            .map(|(name, provider)| {
                let connect = Duration::from_millis(provider.timeout_ms);
                Ok((name.clone(), super::client::client(&tls, connect)?))
            })
            .collect::<Result<_, SetupError>>()?;
        Ok(Self {
            config,
            health: Mutex::default(),
            clients,
            seed: AtomicU64::new(DEFAULT_SEED),
            ledger: super::budget::Ledger::default(),
        })
    }

    /// Seeds the pseudo-random picks of `weighted` routes (a fixed seed by default), so
    /// a test or a replay sees the same sequence.
    pub fn seed(&self, seed: u64) {
        self.seed.store(seed.max(1), Ordering::Relaxed);
    }

    /// The configuration.
    pub fn config(&self) -> &ModelsConfig {
        &self.config
    }

    /// The budget ledger of every plugin, principal and route.
    pub fn ledger(&self) -> &super::budget::Ledger {
        &self.ledger
    }

    /// Answers `request` on `route`.
    pub async fn complete(
        &self,
        route: &str,
        request: &ChatRequest,
    ) -> Result<ChatResponse, RouteError> {
        let span = warden_telemetry::chat_span(route);
        let got =
            tracing::Instrument::instrument(self.run(route, request, Want::Whole), span.clone())
                .await;
        match got {
            Ok(Got::Whole(answer)) => {
                let usage = &answer.usage;
                warden_telemetry::record_usage(&span, &answer.target, usage.input, usage.output);
                Ok(answer)
            }
            Ok(Got::Stream(_)) => unreachable!("asked for a whole answer"),
            Err(err) => {
                warden_telemetry::record_error(&span, Some(err.kind()));
                Err(err)
            }
        }
    }

    /// Answers `request` on `route` as a stream, handed out once its first delta is
    /// in (or once it ended, for an empty answer). After [`Streaming::next`] has
    /// returned its last item, tell the router with [`Router::stream_ended`].
    pub async fn stream(
        &self,
        route: &str,
        request: &ChatRequest,
    ) -> Result<Streaming, RouteError> {
        let span = warden_telemetry::chat_span(route);
        let got =
            tracing::Instrument::instrument(self.run(route, request, Want::Stream), span.clone())
                .await;
        match got {
            Ok(Got::Stream(stream)) => {
                span.record("gen_ai.response.model", stream.target());
                Ok(*stream)
            }
            Ok(Got::Whole(_)) => unreachable!("asked for a stream"),
            Err(err) => {
                warden_telemetry::record_error(&span, Some(err.kind()));
                Err(err)
            }
        }
    }

    /// Tells the router how a stream it handed out ended: with `failure` (which
    /// counts against the target, as before the first delta), complete (which clears
    /// the target's failures, as a whole answer does), or left unfinished by the
    /// caller (which says nothing of the target).
    pub fn stream_ended(&self, stream: &Streaming, failure: Option<&Failure>) {
        match failure {
            Some(failure) if failure.kind.counts_against_target() => {
                self.failed(stream.target());
            }
            Some(_) => {}
            None if stream.is_complete() => {
                let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(h) = health.get_mut(stream.target()) {
                    h.failures.clear();
                }
            }
            None => {}
        }
    }

    /// The configuration of `route`, or the error naming the routes there are.
    pub(crate) fn route(&self, route: &str) -> Result<&super::RouteConfig, RouteError> {
        self.config
            .routes
            .get(route)
            .ok_or_else(|| RouteError::UnknownRoute {
                route: route.to_string(),
                known: self
                    .config
                    .routes
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The one retry loop.
    async fn run(&self, route: &str, request: &ChatRequest, want: Want) -> Result<Got, RouteError> {
        let config = self.route(route)?;
        let retry = &self.config.retry;
        let mut attempts = Vec::new();
        let mut failures = Vec::new();
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
                match self.attempt(&target, request, want).await {
                    Ok(mut got) => {
                        self.succeeded(&target, started.elapsed(), want == Want::Whole);
                        match &mut got {
                            Got::Whole(answer) => answer.failures = failures,
                            Got::Stream(stream) => stream.failures = failures,
                        }
                        return Ok(got);
                    }
                    Err(failure) => {
                        tracing::info!(route, target, attempt, %failure, "model call failed");
                        failures.push(format!("{target}: {failure}"));
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

    /// One call of one target: the whole answer, or a stream with its first delta in.
    async fn attempt(
        &self,
        target: &str,
        request: &ChatRequest,
        want: Want,
    ) -> Result<Got, Failure> {
        let (provider_name, model) = target.split_once('/').expect("checked in config");
        let provider = &self.config.providers[provider_name];
        let client = &self.clients[provider_name];
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
        let stream = want == Want::Stream;
        let (url, body, headers) = match provider.kind {
            ProviderKind::Openai => {
                let headers = key.map(|k| vec![("authorization", format!("Bearer {k}"))]);
                (
                    format!("{base}/chat/completions"),
                    openai::request(model, request, stream),
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
                    anthropic::request(model, request, stream),
                    headers,
                )
            }
        };
        let timeout = Duration::from_millis(provider.timeout_ms);
        let price = self.config.prices.get(target).copied();
        if stream {
            let response = open_stream(client, &url, &headers, &body, timeout).await?;
            let decoder = match provider.kind {
                ProviderKind::Openai => Decoder::Openai,
                ProviderKind::Anthropic => Decoder::Anthropic(Default::default()),
            };
            let input = super::budget::prompt_tokens(request);
            let mut stream = Streaming::new(target, url, response, decoder, timeout, input, price);
            return match stream.next().await {
                Some(Err(failure)) => Err(failure),
                Some(Ok(first)) => {
                    stream.unread(first);
                    Ok(Got::Stream(Box::new(stream)))
                }
                None => Ok(Got::Stream(Box::new(stream))),
            };
        }
        let sent = Instant::now();
        let answer = post_json(client, &url, &headers, &body, timeout).await?;
        let provider_us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
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
        let cost = price.map_or(0.0, |p| p.cost(&usage));
        Ok(Got::Whole(ChatResponse {
            content,
            tool_calls,
            finish_reason,
            usage,
            cost,
            target: target.to_string(),
            failures: Vec::new(),
            provider_us,
        }))
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

    /// Records an answer's latency (a stream's: to its first delta); a whole answer
    /// also clears the target's failures, a stream only once it completes.
    fn succeeded(&self, target: &str, took: Duration, complete: bool) {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let h = health.entry(target.to_string()).or_default();
        if complete {
            h.failures.clear();
        }
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
