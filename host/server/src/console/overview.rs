//! The overview: calls per second, errors and denials over the last minutes, calls and
//! p50/p99 latency per tool, and model spend today per route and principal against
//! their budgets — drawn as inline SVG, rendered here (no script, nothing the
//! Content-Security-Policy has to allow). The numbers are `/metrics`' own: the page
//! asks the API's handler (`read-metrics` through the gate) and reads its text; a
//! background task samples the totals every [`SAMPLE_EVERY`] for the rates.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::layout::{self, Ctx};
use crate::api::AppState;

/// How often the totals are sampled.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// How many samples are kept (ten minutes).
const KEEP: usize = 120;

/// One sample of the totals.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Sample {
    at: f64,
    calls: f64,
    errors: f64,
    denials: f64,
}

/// The latest samples.
#[derive(Default)]
pub(crate) struct Samples(Mutex<VecDeque<Sample>>);

impl Samples {
    fn push(&self, sample: Sample) {
        let mut ring = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if ring.len() == KEEP {
            ring.pop_front();
        }
        ring.push_back(sample);
    }

    fn all(&self) -> Vec<Sample> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect()
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Samples the metrics' totals every [`SAMPLE_EVERY`] until the server is gone.
pub fn sample_in_background(state: Weak<AppState>) {
    tokio::spawn(async move {
        loop {
            let Some(this) = state.upgrade() else { return };
            let metrics = Metrics::parse(&this.metrics.render(this.registry.snapshot().len()));
            this.console.samples.push(metrics.totals(now_secs()));
            drop(this);
            tokio::time::sleep(SAMPLE_EVERY).await;
        }
    });
}

/// One line of the text exposition: name, labels, value.
#[derive(Clone, Debug, PartialEq)]
struct Line {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The metrics of the text exposition `/metrics` answers.
#[derive(Debug, Default)]
struct Metrics(Vec<Line>);

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').trim().to_string(), value);
        rest = &after[end..];
    }
    labels
}

impl Metrics {
    fn parse(text: &str) -> Self {
        let lines = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let value: f64 = value.parse().ok()?;
                let (name, labels) = match series.split_once('{') {
                    Some((name, labels)) => (name, parse_labels(labels.trim_end_matches('}'))),
                    None => (series, BTreeMap::new()),
                };
                Some(Line {
                    name: name.to_string(),
                    labels,
                    value,
                })
            })
            .collect();
        Self(lines)
    }

    fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Line> + 'a {
        self.0.iter().filter(move |l| l.name == name)
    }

    fn sum(&self, name: &str) -> f64 {
        // From +0: an empty float sum is -0, which would read "-0 errors".
        self.named(name).map(|l| l.value).fold(0.0, |a, b| a + b)
    }

    fn totals(&self, at: f64) -> Sample {
        Sample {
            at,
            calls: self.sum("warden_tool_calls_total"),
            errors: self.sum("warden_tool_errors_total"),
            denials: self.sum("warden_tool_denials_total"),
        }
    }

    /// Per `plugin/tool`: calls by outcome, errors, denials, and the duration buckets.
    fn tools(&self) -> BTreeMap<String, ToolRow> {
        let mut rows: BTreeMap<String, ToolRow> = BTreeMap::new();
        let id = |l: &Line| {
            format!(
                "{}/{}",
                l.labels.get("plugin").map_or("-", String::as_str),
                l.labels.get("tool").map_or("-", String::as_str)
            )
        };
        for l in self.named("warden_tool_calls_total") {
            let row = rows.entry(id(l)).or_default();
            row.calls += l.value;
            if l.labels.get("outcome").is_some_and(|o| o == "ok") {
                row.ok += l.value;
            }
        }
        for l in self.named("warden_tool_errors_total") {
            rows.entry(id(l)).or_default().errors += l.value;
        }
        for l in self.named("warden_tool_denials_total") {
            rows.entry(id(l)).or_default().denials += l.value;
        }
        for l in self.named("warden_tool_call_duration_seconds_bucket") {
            let le = match l.labels.get("le").map(String::as_str) {
                Some("+Inf") => f64::INFINITY,
                Some(le) => le.parse().unwrap_or(f64::INFINITY),
                None => continue,
            };
            rows.entry(id(l)).or_default().buckets.push((le, l.value));
        }
        for row in rows.values_mut() {
            row.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        rows
    }
}

/// One tool's numbers.
#[derive(Debug, Default)]
struct ToolRow {
    calls: f64,
    ok: f64,
    errors: f64,
    denials: f64,
    /// Cumulative: (upper bound in seconds, calls at most that long).
    buckets: Vec<(f64, f64)>,
}

impl ToolRow {
    /// The `q` quantile of the durations, in seconds, interpolated in its bucket.
    fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut below = (0.0, 0.0);
        for &(le, count) in &self.buckets {
            if count >= rank {
                if le.is_infinite() {
                    return Some(below.0);
                }
                let within = (rank - below.1) / (count - below.1).max(f64::MIN_POSITIVE);
                return Some(below.0 + (le - below.0) * within.clamp(0.0, 1.0));
            }
            below = (le, count);
        }
        None
    }
}

fn ms(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "-".into(), |s| format!("{:.2} ms", s * 1000.0))
}

/// `GET /console`.
pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<Ctx>>,
) -> Response {
    let answered = crate::api::metrics(State(state.clone()), Extension(ctx.caller.clone())).await;
    let text = match answered {
        Ok(response) => match axum::body::to_bytes(response.into_body(), 16 << 20).await {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(err) => {
                return layout::error(
                    Some(&ctx),
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &err.to_string(),
                );
            }
        },
        Err(err) => return layout::api_error(&ctx, err),
    };
    let metrics = Metrics::parse(&text);
    let mut samples = state.console.samples.all();
    samples.push(metrics.totals(now_secs()));
    let tools = metrics.tools();
    let totals = metrics.totals(0.0);
    let body = html! {
        ul.totals aria-label="Totals since the server started" {
            li { strong { (totals.calls) } " calls" }
            li { strong { (totals.errors) } " errors" }
            li { strong { (totals.denials) } " denials" }
            li { strong { (state.registry.snapshot().len()) } " plugins served" }
        }
        h2 { "Calls per second" }
        (rates(&samples))
        h2 { "Tools" }
        @if tools.is_empty() {
            p.empty { "No tool has been called since the server started." }
        } @else {
            (latency_chart(&tools))
            table {
                caption { "Per tool, since the server started" }
                thead { tr {
                    th scope="col" { "Tool" } th scope="col" { "Calls" } th scope="col" { "OK" }
                    th scope="col" { "Errors" } th scope="col" { "Denials" }
                    th scope="col" { "p50" } th scope="col" { "p99" }
                } }
                tbody {
                    @for (id, row) in &tools {
                        tr {
                            th scope="row" { code { (id) } }
                            td { (row.calls) } td { (row.ok) } td { (row.errors) } td { (row.denials) }
                            td { (ms(row.quantile(0.5))) } td { (ms(row.quantile(0.99))) }
                        }
                    }
                }
            }
        }
        h2 { "Model spend today" }
        (spend(&state))
    };
    layout::page(&ctx, "overview", "Overview", body)
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 160.0;

/// Calls, errors and denials per second between samples, as lines.
fn rates(samples: &[Sample]) -> Markup {
    let pairs: Vec<(f64, f64, f64, f64)> = samples
        .windows(2)
        .filter(|w| w[1].at > w[0].at)
        .map(|w| {
            let dt = w[1].at - w[0].at;
            (
                w[1].at,
                (w[1].calls - w[0].calls).max(0.0) / dt,
                (w[1].errors - w[0].errors).max(0.0) / dt,
                (w[1].denials - w[0].denials).max(0.0) / dt,
            )
        })
        .collect();
    if pairs.is_empty() {
        return html! { p.empty { "Rates appear after the first samples (every 5 s)." } };
    }
    let max = pairs
        .iter()
        .map(|p| p.1.max(p.2).max(p.3))
        .fold(0.0, f64::max)
        .max(1.0);
    let (t0, t1) = (pairs[0].0, pairs[pairs.len() - 1].0);
    let span = (t1 - t0).max(1.0);
    let x = |t: f64| 40.0 + (t - t0) / span * (WIDTH - 50.0);
    let y = |v: f64| HEIGHT - 20.0 - v / max * (HEIGHT - 30.0);
    let line = |pick: fn(&(f64, f64, f64, f64)) -> f64| {
        pairs
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.0), y(pick(p))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let last = pairs[pairs.len() - 1];
    let label = format!(
        "Calls per second over the last {:.0} seconds: now {:.2} calls, {:.2} errors, {:.2} denials per second; at most {:.2}.",
        span, last.1, last.2, last.3, max
    );
    html! {
        figure.chart {
            svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(label) {
                line.axis x1="40" y1=(HEIGHT - 20.0) x2=(WIDTH - 10.0) y2=(HEIGHT - 20.0) {}
                line.axis x1="40" y1="10" x2="40" y2=(HEIGHT - 20.0) {}
                text.tick x="36" y="14" text-anchor="end" { (format!("{max:.1}")) }
                text.tick x="36" y=(HEIGHT - 20.0) text-anchor="end" { "0" }
                polyline.calls points=(line(|p| p.1)) {}
                polyline.errors points=(line(|p| p.2)) {}
                polyline.denials points=(line(|p| p.3)) {}
                @for p in &pairs {
                    circle.calls cx=(format!("{:.1}", x(p.0))) cy=(format!("{:.1}", y(p.1))) r="3" {}
                }
            }
            figcaption {
                span.key.calls { "calls" } " " span.key.errors { "errors" } " " span.key.denials { "denials" }
                " per second — " (label)
            }
        }
    }
}

/// p50 and p99 per tool, as bars.
fn latency_chart(tools: &BTreeMap<String, ToolRow>) -> Markup {
    let rows: Vec<(&String, f64, f64)> = tools
        .iter()
        .filter_map(|(id, r)| Some((id, r.quantile(0.5)?, r.quantile(0.99)?)))
        .collect();
    if rows.is_empty() {
        return html! {};
    }
    let max = rows.iter().map(|r| r.2).fold(0.0, f64::max).max(1e-6);
    let bar = 14.0;
    let height = rows.len() as f64 * (2.0 * bar + 10.0) + 10.0;
    let scale = |v: f64| v / max * (WIDTH - 260.0);
    html! {
        figure.chart {
            svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (height) } role="img"
                aria-label="Latency per tool: p50 and p99, in milliseconds (the table below has the numbers)" {
                @for (i, (id, p50, p99)) in rows.iter().enumerate() {
                    @let top = 10.0 + i as f64 * (2.0 * bar + 10.0);
                    text.label x="0" y=(top + bar) { (id) }
                    rect.p50 x="170" y=(top) width=(format!("{:.1}", scale(*p50).max(1.0))) height=(bar) {}
                    text.tick x=(format!("{:.1}", 176.0 + scale(*p50).max(1.0))) y=(top + bar - 3.0) { "p50 " (ms(Some(*p50))) }
                    rect.p99 x="170" y=(top + bar) width=(format!("{:.1}", scale(*p99).max(1.0))) height=(bar) {}
                    text.tick x=(format!("{:.1}", 176.0 + scale(*p99).max(1.0))) y=(top + 2.0 * bar - 3.0) { "p99 " (ms(Some(*p99))) }
                }
            }
            figcaption { span.key.p50 { "p50" } " " span.key.p99 { "p99" } " latency per tool" }
        }
    }
}

/// Today's use of every route and principal with a budget, against the budget.
fn spend(state: &AppState) -> Markup {
    let Some(router) = state.registry.runtime().router() else {
        return html! { p.empty { "No model routes are configured ([models] in warden.toml)." } };
    };
    let day = warden_models::day_of(now_secs() as u64);
    let budgets = &router.config().budgets;
    let rows: Vec<(String, String, (u64, f64), &warden_models::Budget)> = budgets
        .routes
        .iter()
        .map(|(name, b)| ("route", name, warden_models::Scope::Route, b))
        .chain(
            budgets
                .principals
                .iter()
                .map(|(name, b)| ("principal", name, warden_models::Scope::Principal, b)),
        )
        .map(|(kind, name, scope, budget)| {
            (
                kind.to_string(),
                name.clone(),
                router.ledger().used(scope, name, day),
                budget,
            )
        })
        .collect();
    if rows.is_empty() {
        return html! { p.empty { "No route or principal has a budget ([models.budgets] in warden.toml)." } };
    }
    html! {
        table.spend {
            caption { "Spend today (UTC) against the daily budgets" }
            thead { tr {
                th scope="col" { "Budget of" } th scope="col" { "Tokens" } th scope="col" { "Cost" } th scope="col" { "Used" }
            } }
            tbody {
                @for (kind, name, (tokens, cost), budget) in &rows {
                    @let share = [
                        budget.tokens_per_day.map(|t| *tokens as f64 / t.max(1) as f64),
                        budget.cost_per_day.map(|c| cost / c.max(f64::MIN_POSITIVE)),
                    ].into_iter().flatten().fold(0.0, f64::max);
                    tr {
                        th scope="row" { (kind) " " code { (name) } }
                        td { (tokens) @if let Some(t) = budget.tokens_per_day { " of " (t) } }
                        td { (format!("${cost:.4}")) @if let Some(c) = budget.cost_per_day { " of " (format!("${c:.2}")) } }
                        td {
                            svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 12" width="100" height="12"
                                role="img" aria-label=(format!("{:.0}% of the budget", share * 100.0)) {
                                rect.track x="0" y="0" width="100" height="12" {}
                                rect class=(if share >= 0.9 { "used high" } else { "used" }) x="0" y="0"
                                    width=(format!("{:.1}", (share * 100.0).min(100.0))) height="12" {}
                            }
                            " " (format!("{:.0}%", share * 100.0))
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# TYPE warden_tool_calls counter
warden_tool_calls_total{plugin="text",tool="upper",outcome="ok"} 3
warden_tool_calls_total{plugin="text",tool="upper",outcome="denied"} 1
warden_tool_denials_total{plugin="text",tool="upper",reason="access"} 2
warden_tool_call_duration_seconds_bucket{le="0.001",plugin="text",tool="upper"} 2
warden_tool_call_duration_seconds_bucket{le="0.002",plugin="text",tool="upper"} 4
warden_tool_call_duration_seconds_bucket{le="+Inf",plugin="text",tool="upper"} 4
# EOF
"#;

    #[test]
    fn the_exposition_reads_as_tools_with_quantiles() {
        let metrics = Metrics::parse(TEXT);
        let tools = metrics.tools();
        let row = &tools["text/upper"];
        assert_eq!((row.calls, row.ok, row.denials), (4.0, 3.0, 2.0));
        assert_eq!(row.quantile(0.5), Some(0.001));
        let p99 = row.quantile(0.99).unwrap();
        assert!((p99 - 0.00198).abs() < 1e-9, "{p99}");
        assert_eq!(metrics.totals(1.0).calls, 4.0);
    }

    #[test]
    fn labels_with_escapes_are_read() {
        let labels = parse_labels(r#"a="x\"y",b="z""#);
        assert_eq!(labels["a"], "x\"y");
        assert_eq!(labels["b"], "z");
    }
}
