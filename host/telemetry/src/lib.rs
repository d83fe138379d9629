//! Logs and traces of a Warden process.
//!
//! Logs go to stderr, filtered by `RUST_LOG` (default: warnings, and guest log lines).
//! Spans are named as the OpenTelemetry GenAI conventions name them (`execute_tool
//! {tool}`, `chat {model}`, `invoke_agent {name}`, with `gen_ai.*` attributes; HTTP
//! requests as `{method} {route}`) and exported over OTLP when an endpoint is
//! configured with the standard variables:
//!
//! - `OTEL_EXPORTER_OTLP_ENDPOINT` (the collector's base URL; `/v1/traces` is added) or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL);
//! - `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf` (default) or `http/json`;
//! - `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_SERVICE_NAME`…
//!   as the OpenTelemetry SDK reads them.
//!
//! Without an endpoint nothing is exported and spans cost what `tracing` costs.

mod error;

pub use error::TelemetryError;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// The base URL of an OTLP collector.
pub const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The full URL traces go to (wins over [`ENDPOINT_ENV`]).
pub const TRACES_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// `http/protobuf` or `http/json`.
pub const PROTOCOL_ENV: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";

/// Keeps the exporter running; exports what is left when dropped.
#[must_use = "spans are exported until the guard is dropped"]
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("warning: exporting the last spans over OTLP failed: {err}");
        }
    }
}

/// Installs the process's subscriber: logs to stderr, and spans to the OTLP endpoint
/// if one is configured. An endpoint that is set but unusable is an error.
pub fn init() -> Result<Guard, TelemetryError> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,warden::guest=info"));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_filter(filter);
    let provider = provider()?;
    let traces = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("warden"))
            .with_filter(EnvFilter::new("warden=info"))
    });
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()
        .map_err(TelemetryError::Subscriber)?;
    Ok(Guard { provider })
}

fn provider() -> Result<Option<SdkTracerProvider>, TelemetryError> {
    let set = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if !set(ENDPOINT_ENV) && !set(TRACES_ENDPOINT_ENV) {
        return Ok(None);
    }
    let protocol = match std::env::var(PROTOCOL_ENV).as_deref() {
        Err(_) | Ok("" | "http/protobuf") => Protocol::HttpBinary,
        Ok("http/json") => Protocol::HttpJson,
        Ok(other) => {
            return Err(TelemetryError::Protocol {
                value: other.to_owned(),
            });
        }
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .build()
        .map_err(TelemetryError::Exporter)?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("warden");
    }
    let resource = resource.build();
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    ))
}

/// The span of one tool call: `execute_tool {plugin/tool}`, as the GenAI conventions
/// name it.
pub fn tool_span(plugin: &str, tool: &str, call_id: u64) -> tracing::Span {
    tracing::info_span!(
        "execute_tool",
        otel.name = %format_args!("execute_tool {plugin}/{tool}"),
        otel.kind = "internal",
        otel.status_code = tracing::field::Empty,
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = %format_args!("{plugin}/{tool}"),
        gen_ai.tool.call.id = call_id,
        gen_ai.tool.type = "function",
        error.type = tracing::field::Empty,
    )
}

/// The span of one MCP request: `{method} {target}` (`tools/call text/word-count`), a
/// server span as the OpenTelemetry MCP conventions name it.
pub fn mcp_span(method: &str, target: &str) -> tracing::Span {
    tracing::info_span!(
        "mcp",
        otel.name = %format_args!("{method} {target}"),
        otel.kind = "server",
        mcp.method.name = method,
        gen_ai.tool.name = target,
    )
}

/// Makes the remote span a W3C `traceparent` (and `tracestate`) names the parent of
/// `span`, so a caller's trace (an MCP request's `_meta`) continues into Warden's
/// spans; a value that does not parse leaves `span` where it was.
pub fn join_remote(span: &tracing::Span, traceparent: &str, tracestate: Option<&str>) {
    use opentelemetry::propagation::TextMapPropagator as _;
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let mut carrier = std::collections::HashMap::new();
    carrier.insert("traceparent".to_string(), traceparent.to_string());
    if let Some(state) = tracestate {
        carrier.insert("tracestate".to_string(), state.to_string());
    }
    let cx = opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// Marks `span` failed with `code` (an error code such as `denied`, `timeout`), if any.
pub fn record_error(span: &tracing::Span, code: Option<&str>) {
    if let Some(code) = code {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", code);
    }
}

/// The span of one HTTP request: `{method} {route}` (the matched route, not the raw
/// path, so ids and tool names do not make every span name unique).
pub fn http_span<B>(request: &http::Request<B>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    tracing::info_span!(
        "request",
        otel.name = %format_args!("{} {route}", request.method()),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %request.method(),
        http.route = route,
        url.path = request.uri().path(),
        http.response.status_code = tracing::field::Empty,
    )
}

/// Records the response status on the request's span (5xx marks it failed).
pub fn record_status(span: &tracing::Span, status: http::StatusCode) {
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}

/// The span of one model call: `chat {route}` (the route is the model a caller names;
/// the target that answered is `gen_ai.response.model`).
pub fn chat_span(route: &str) -> tracing::Span {
    tracing::info_span!(
        "chat",
        otel.name = %format_args!("chat {route}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        gen_ai.operation.name = "chat",
        gen_ai.request.model = route,
        gen_ai.response.model = tracing::field::Empty,
        gen_ai.usage.input_tokens = tracing::field::Empty,
        gen_ai.usage.output_tokens = tracing::field::Empty,
        error.type = tracing::field::Empty,
    )
}

/// Records on a `chat` span the target that answered and the tokens it counted.
pub fn record_usage(span: &tracing::Span, target: &str, input_tokens: u64, output_tokens: u64) {
    span.record("gen_ai.response.model", target);
    span.record("gen_ai.usage.input_tokens", input_tokens);
    span.record("gen_ai.usage.output_tokens", output_tokens);
}

/// The span of one step of an agent run: `invoke_agent {agent}`.
pub fn agent_span(agent: &str, run_id: &str) -> tracing::Span {
    tracing::info_span!(
        "invoke_agent",
        otel.name = %format_args!("invoke_agent {agent}"),
        otel.kind = "internal",
        otel.status_code = tracing::field::Empty,
        gen_ai.operation.name = "invoke_agent",
        gen_ai.agent.name = agent,
        gen_ai.conversation.id = run_id,
        error.type = tracing::field::Empty,
    )
}
