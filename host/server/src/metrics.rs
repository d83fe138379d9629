//! Prometheus metrics of a server, served at `/metrics` (OpenMetrics text):
//!
//! | metric | labels | what |
//! | --- | --- | --- |
//! | `warden_tool_calls_total` | plugin, tool, outcome (`ok`/`error`/`denied`) | calls that ran (or were refused) |
//! | `warden_tool_errors_total` | plugin, tool, code | failed calls, by error code |
//! | `warden_tool_denials_total` | plugin, tool, reason (`access`/`capability`) | a caller not allowed the tool, or a capability the tool used refused |
//! | `warden_tool_call_duration_seconds` | plugin, tool | histogram of call durations (audit record included) |
//! | `warden_instances_live` | | calls running now (one instance each) |
//! | `warden_plugins_loaded` | | plugins served |
//! | `warden_http_requests_total` | method, route, status | requests answered |
//! | `warden_db_pool_connections` | state (`size`/`connected`/`busy`) | the cluster database's pool (with `[storage] url`) |
//! | `warden_db_pool_waiting`, `warden_db_statements_total`, `warden_db_errors_total`, `warden_db_connects_total` | | its queue and counts |
//! | `warden_idle_polls_total` | ended (`request`/`task`/`window`) | idle workers' polling windows (with `[server] idle_poll_us`), by what ended them |
//! | `warden_idle_poll_seconds_total` | | time they spent polling |
//!
//! The tool metrics count calls over the REST route and over `/mcp` alike.
//!
//! Labels come from served plugins and routes only: an unknown tool is counted as `tool="-"`,
//! so callers cannot grow the label sets.

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use warden_runtime::Plugin;
use warden_runtime::error::CallError;

/// The labels of a tool.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    plugin: String,
    tool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    plugin: String,
    tool: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    plugin: String,
    tool: String,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DenialLabels {
    plugin: String,
    tool: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

type Durations = Family<ToolLabels, Histogram, fn() -> Histogram>;

fn durations() -> Histogram {
    // 100 µs to about 52 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

/// The labels of a call of `tool` of `plugin`, from what is served only, so callers
/// cannot grow the label sets: `-` for a tool that `served` (the plugin of that name, if
/// any) does not have, and for a plugin that is not served.
pub fn tool_labels<'a>(
    served: Option<&Plugin>,
    plugin: &'a str,
    tool: &'a str,
) -> (&'a str, &'a str) {
    match served {
        Some(served) if served.has_tool(tool) => (plugin, tool),
        Some(_) => (plugin, "-"),
        None => ("-", "-"),
    }
}

/// The metrics of one server.
pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    denials: Family<DenialLabels, Counter>,
    durations: Durations,
    live: Gauge<i64, AtomicI64>,
    plugins: Gauge<i64, AtomicI64>,
    requests: Family<HttpLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts a call as live until dropped.
struct LiveCall<'a>(&'a Metrics);

impl Drop for LiveCall<'_> {
    fn drop(&mut self) {
        self.0.live.dec();
    }
}

/// A call being counted ([`Metrics::counting`]).
pub struct Counting<'a> {
    live: LiveCall<'a>,
    plugin: &'a str,
    tool: &'a str,
    started: std::time::Instant,
}

impl Counting<'_> {
    /// The call ended with `result`: a refusal counts as a denial, a call held for a
    /// person not at all (its approved rerun is counted), any other end as a call with
    /// its outcome.
    pub fn ended(self, result: &Result<serde_json::Value, CallError>) {
        let metrics = self.live.0;
        let elapsed = self.started.elapsed();
        drop(self.live);
        match result {
            Err(CallError::Refused { refusal, .. }) => {
                metrics.refused(self.plugin, self.tool, &refusal.decision);
            }
            Err(CallError::Held { .. }) => {}
            other => metrics.call_ended(
                self.plugin,
                self.tool,
                elapsed,
                other.as_ref().err().map(CallError::code),
            ),
        }
    }
}

impl Metrics {
    /// Every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("warden");
        let calls = Family::default();
        let errors = Family::default();
        let denials = Family::default();
        let durations: Durations = Family::new_with_constructor(durations);
        let live = Gauge::default();
        let plugins = Gauge::default();
        let requests = Family::default();
        registry.register("tool_calls", "Tool calls by outcome", calls.clone());
        registry.register(
            "tool_errors",
            "Failed tool calls by error code",
            errors.clone(),
        );
        registry.register(
            "tool_denials",
            "Tool calls refused to the caller (access) or capabilities refused to the tool (capability)",
            denials.clone(),
        );
        registry.register_with_unit(
            "tool_call_duration",
            "Duration of tool calls",
            prometheus_client::registry::Unit::Seconds,
            durations.clone(),
        );
        registry.register("instances_live", "Tool calls running now", live.clone());
        registry.register("plugins_loaded", "Plugins served", plugins.clone());
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        Self {
            registry,
            calls,
            errors,
            denials,
            durations,
            live,
            plugins,
            requests,
        }
    }

    /// A call of `tool` of `plugin` (labels from [`tool_labels`]) starts: live until
    /// [`Counting::ended`] takes its result (or the guard is dropped, as when the call
    /// is cancelled). The caller awaits the call itself, so no future of this module's
    /// holds the call's (5.5 KB) beside the caller's own.
    pub fn counting<'a>(&'a self, plugin: &'a str, tool: &'a str) -> Counting<'a> {
        self.live.inc();
        Counting {
            live: LiveCall(self),
            plugin,
            tool,
            started: std::time::Instant::now(),
        }
    }

    /// A call ended: `Ok`, or the error's code; `denied` when a capability was refused.
    pub fn call_ended(
        &self,
        plugin: &str,
        tool: &str,
        elapsed: Duration,
        error: Option<&'static str>,
    ) {
        let labels = ToolLabels {
            plugin: plugin.to_string(),
            tool: tool.to_string(),
        };
        self.durations
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        let outcome = match error {
            None => "ok",
            Some("denied") => "denied",
            Some(_) => "error",
        };
        self.calls
            .get_or_create(&CallLabels {
                plugin: plugin.to_string(),
                tool: tool.to_string(),
                outcome,
            })
            .inc();
        if let Some(code) = error {
            self.errors
                .get_or_create(&ErrorLabels {
                    plugin: plugin.to_string(),
                    tool: tool.to_string(),
                    code,
                })
                .inc();
            if code == "denied" {
                self.denied(plugin, tool, "capability");
            }
        }
    }

    /// A call the gate refused: `approval` where the policy wants a person's yes, else
    /// `access`.
    pub fn refused(&self, plugin: &str, tool: &str, decision: &warden_policy::Decision) {
        let reason = match decision {
            warden_policy::Decision::RequireApproval { .. } => "approval",
            _ => "access",
        };
        self.denied(plugin, tool, reason);
    }

    /// A call refused: `access` (the caller may not call it) or `capability`.
    pub fn denied(&self, plugin: &str, tool: &str, reason: &'static str) {
        self.denials
            .get_or_create(&DenialLabels {
                plugin: plugin.to_string(),
                tool: tool.to_string(),
                reason,
            })
            .inc();
    }

    /// A request was answered.
    pub fn request(&self, method: &str, route: &str, status: u16) {
        self.requests
            .get_or_create(&HttpLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
    }

    /// The text exposition, with `plugins` as the number of plugins served.
    pub fn render(&self, plugins: usize) -> String {
        self.plugins.set(i64::try_from(plugins).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Adds the cluster database's pool figures to rendered metrics (before `# EOF`):
/// `warden_db_pool_connections` (size, connected, busy), `warden_db_pool_waiting`,
/// `warden_db_statements_total`, `warden_db_errors_total`, `warden_db_connects_total`.
pub fn render_pool(text: &mut String, stats: &warden_postgres::PoolStats) {
    before_eof(
        text,
        format_args!(
            "# HELP warden_db_pool_connections Connections to the cluster's database, by state.\n\
         # TYPE warden_db_pool_connections gauge\n\
         warden_db_pool_connections{{state=\"size\"}} {}\n\
         warden_db_pool_connections{{state=\"connected\"}} {}\n\
         warden_db_pool_connections{{state=\"busy\"}} {}\n\
         # HELP warden_db_pool_waiting Callers waiting for a connection.\n\
         # TYPE warden_db_pool_waiting gauge\n\
         warden_db_pool_waiting {}\n\
         # HELP warden_db_statements Statements run on the pool.\n\
         # TYPE warden_db_statements counter\n\
         warden_db_statements_total {}\n\
         # HELP warden_db_errors Statements or connections that failed.\n\
         # TYPE warden_db_errors counter\n\
         warden_db_errors_total {}\n\
         # HELP warden_db_connects Connections made (more than the size: some were remade).\n\
         # TYPE warden_db_connects counter\n\
         warden_db_connects_total {}\n",
            stats.size,
            stats.connected,
            stats.busy,
            stats.waiting,
            stats.statements,
            stats.errors,
            stats.connects
        ),
    );
}

/// Adds what idle workers' polling did (`[server] idle_poll_us`, see
/// [`crate::idle_poll`]) to rendered metrics (before `# EOF`):
/// `warden_idle_polls_total` by what ended each window, and
/// `warden_idle_poll_seconds_total`.
pub fn render_idle_poll(text: &mut String, counts: &crate::idle_poll::Counts) {
    before_eof(
        text,
        format_args!(
            "# HELP warden_idle_polls Idle workers' polling windows ({} µs each at most), by what ended them: a request, a task, or the window's end.\n\
         # TYPE warden_idle_polls counter\n\
         warden_idle_polls_total{{ended=\"request\"}} {}\n\
         warden_idle_polls_total{{ended=\"task\"}} {}\n\
         warden_idle_polls_total{{ended=\"window\"}} {}\n\
         # HELP warden_idle_poll_seconds Time idle workers spent polling for the next request.\n\
         # TYPE warden_idle_poll_seconds counter\n\
         warden_idle_poll_seconds_total {}\n",
            counts.window_us, counts.request, counts.task, counts.window, counts.seconds
        ),
    );
}

/// Writes `families` into rendered metrics before their closing `# EOF`, which stays
/// last.
fn before_eof(text: &mut String, families: std::fmt::Arguments<'_>) {
    use std::fmt::Write as _;
    let eof = text.rfind("# EOF").unwrap_or(text.len());
    text.truncate(eof);
    // Writing into a String cannot fail.
    let _ = writeln!(text, "{families}# EOF");
}
