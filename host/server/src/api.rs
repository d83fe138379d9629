//! The HTTP API: routes, authentication, tool calls, the audit log, health and
//! metrics. Plugin management is in [`super::plugins`]. Every route is listed in
//! [`ROUTES`] and described in `openapi.json` (a test checks both against each other).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Extension, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::http::{authenticate, resource_metadata};
use super::auth::metadata;
use super::auth::{Access, Caller};
use super::error::{ApiError, code_for_status};
use super::metrics::Metrics;
use super::registry::Registry;
use warden_audit::{Event, Filter, Outcome};
use warden_config::home::{Action, ServerConfig};
use warden_policy::Resource;
use warden_runtime::error::chain;
use warden_runtime::{CallError, CallOptions, Via};

/// Every route: method and path, as `openapi.json` must describe them.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/v1/openapi.json"),
    ("get", "/.well-known/oauth-protected-resource"),
    ("get", "/.well-known/oauth-protected-resource/mcp"),
    ("get", "/v1/plugins"),
    ("get", "/v1/plugins/{name}"),
    ("put", "/v1/plugins/{name}"),
    ("delete", "/v1/plugins/{name}"),
    ("put", "/v1/plugins/{name}/grant"),
    ("post", "/v1/plugins/{name}/grant/accept-tools"),
    ("get", "/v1/tools"),
    ("post", "/v1/tools/{plugin}/{tool}"),
    ("get", "/v1/audit"),
    ("get", "/v1/audit/verify"),
    ("post", "/v1/chat/completions"),
    ("post", "/mcp"),
    ("post", "/v1/runs"),
    ("get", "/v1/runs"),
    ("get", "/v1/runs/{id}"),
    ("post", "/v1/runs/{id}/cancel"),
    ("get", "/v1/approvals"),
    ("get", "/v1/approvals/{id}"),
    ("post", "/v1/approvals/{id}/approve"),
    ("post", "/v1/approvals/{id}/reject"),
];

/// The OpenAPI description of [`ROUTES`].
pub const OPENAPI: &str = include_str!("openapi.json");

/// What every handler shares.
pub struct AppState {
    /// The plugins served.
    pub registry: Arc<Registry>,
    /// The tokens, replaced when the config file changes.
    pub access: RwLock<Arc<Access>>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Limits.
    pub config: ServerConfig,
    /// Agent runs and the approvals queue ([`super::runs`]).
    pub runs: Option<Arc<super::runs::Runs>>,
    /// Which unauthenticated requests go on the record ([`super::refusals`]).
    pub refusals: super::refusals::Limiter,
    /// The web console's sessions and samples ([`super::console`]).
    pub console: super::console::Console,
    /// `[trust]`: who may sign plugins added by reference; replaced with the config.
    pub trust: RwLock<Arc<warden_oci::TrustPolicy>>,
    /// The node's stores: the cluster's database, if any ([`super::storage`]).
    pub storage: super::storage::Storage,
}

impl AppState {
    /// The trust policy now.
    pub fn trust(&self) -> Arc<warden_oci::TrustPolicy> {
        self.trust.read().map(|t| t.clone()).unwrap_or_default()
    }

    /// The token table now.
    pub fn access(&self) -> Arc<Access> {
        self.access.read().map(|a| a.clone()).unwrap_or_default()
    }

    /// Appends an audit record, logging (not failing) if it cannot be written.
    pub(crate) async fn record(&self, event: Event) {
        if let Some(audit) = self.registry.runtime().audit() {
            let kind = event.kind.clone();
            if let Err(err) = audit.append(event).await {
                tracing::error!(kind, "writing an audit record: {}", chain(err));
            }
        }
    }

    /// `Ok` when the policy allows `caller` to do `action` (on the server; for
    /// `use-model` on any route), else the 403 (on record). `plugin` names the plugin
    /// the request is about, for the record.
    pub(crate) async fn require(
        &self,
        caller: &Caller,
        action: Action,
        plugin: Option<&str>,
    ) -> Result<(), ApiError> {
        let resource = match action {
            Action::UseModel => Resource::Route { name: "*".into() },
            _ => Resource::Server,
        };
        self.require_on(caller, action, &resource, plugin).await
    }

    /// `Ok` when the policy allows `caller` to do `action` on `resource`, else the 403
    /// (on record, through the gate).
    pub(crate) async fn require_on(
        &self,
        caller: &Caller,
        action: Action,
        resource: &Resource,
        plugin: Option<&str>,
    ) -> Result<(), ApiError> {
        self.require_with(caller, action, resource, &Value::Null, plugin)
            .await
    }

    /// [`AppState::require_on`] with `context` for the policy.
    pub(crate) async fn require_with(
        &self,
        caller: &Caller,
        action: Action,
        resource: &Resource,
        context: &Value,
        plugin: Option<&str>,
    ) -> Result<(), ApiError> {
        self.registry
            .runtime()
            .admit_about(&caller.gate(Via::Http), action, resource, context, plugin)
            .await
            .map(drop)
            .map_err(|refusal| ApiError::refused(action, resource, &refusal))
    }
}

/// The router with every route and layer.
pub fn router(state: Arc<AppState>, mcp: Router) -> Router {
    let config = &state.config;
    let body_limit = usize::try_from(config.max_body_kb * 1024).unwrap_or(usize::MAX);
    let upload_limit = usize::try_from(config.max_upload_mb << 20).unwrap_or(usize::MAX);
    let authenticated = Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/plugins", get(super::plugins::list))
        .route(
            "/v1/plugins/{name}",
            get(super::plugins::show)
                .delete(super::plugins::remove)
                .merge(put(super::plugins::upload).layer(DefaultBodyLimit::max(upload_limit))),
        )
        .route("/v1/plugins/{name}/grant", put(super::plugins::set_grant))
        .route(
            "/v1/plugins/{name}/grant/accept-tools",
            post(super::plugins::accept_tools),
        )
        .route("/v1/tools", get(tools))
        .route("/v1/tools/{plugin}/{tool}", post(call_tool))
        .route("/v1/audit", get(audit_query))
        .route("/v1/audit/verify", get(audit_verify))
        .route_service("/mcp", mcp)
        .route("/v1/runs", post(super::runs::start).get(super::runs::list))
        .route("/v1/runs/{id}", get(super::runs::show))
        .route("/v1/runs/{id}/cancel", post(super::runs::cancel))
        .route("/v1/approvals", get(super::runs::approvals))
        .route("/v1/approvals/{id}", get(super::runs::approval))
        .route("/v1/approvals/{id}/approve", post(super::runs::approve))
        .route("/v1/approvals/{id}/reject", post(super::runs::reject))
        .route(
            "/v1/chat/completions",
            post(super::gateway::chat_completions),
        )
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    let timeout = Duration::from_millis(config.request_timeout_ms);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/openapi.json", get(openapi))
        .route(metadata::WELL_KNOWN, get(resource_metadata))
        .route(
            &format!("{}/mcp", metadata::WELL_KNOWN),
            get(resource_metadata),
        )
        .merge(authenticated)
        .merge(super::console::router(state.clone()))
        .fallback(|| async {
            ApiError::not_found(
                "no-route",
                "no such route (GET /v1/openapi.json lists them)",
            )
        })
        .layer(outer_layers(&state, body_limit, upload_limit, timeout))
        .with_state(state)
}

/// The layers around every route, outermost first, as one stack: the router wraps
/// each route in it once. (Each `Router::layer` boxes every route again, and a request
/// clones each box on its way in: nine boxes a request with these as nine layers.)
fn outer_layers(
    state: &Arc<AppState>,
    body_limit: usize,
    upload_limit: usize,
    timeout: Duration,
) -> impl tower::Layer<
    axum::routing::Route,
    Service: tower::Service<
        Request,
        Response: IntoResponse + 'static,
        Error: Into<std::convert::Infallible> + 'static,
        Future: Send + 'static,
    > + Clone
                 + Send
                 + Sync
                 + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    // Where a layer changes the body's type, the next one in gets axum's `Body` back
    // (as `Router::layer` does between its boxes).
    tower::ServiceBuilder::new()
        .layer(middleware::from_fn::<_, (Request,)>(close_after_refusal))
        .layer(middleware::map_response::<_, ()>(json_errors))
        .map_response(IntoResponse::into_response)
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(warden_telemetry::http_span)
                .on_response(|response: &Response, _: Duration, span: &tracing::Span| {
                    warden_telemetry::record_status(span, response.status());
                }),
        )
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .map_response(IntoResponse::into_response)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(timeout))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            state.config.max_concurrent_requests,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            body_limit.max(upload_limit),
        ))
        .map_request(|request: http::Request<_>| request.map(axum::body::Body::new))
        .layer(middleware::from_fn_with_state::<
            _,
            _,
            (State<Arc<AppState>>, Request),
        >(state.clone(), count))
        .layer(DefaultBodyLimit::max(body_limit))
}

/// An error answer to a request that carries a body closes the connection: a refusal
/// (401, 403, 413…) is sent without reading the body, and a client that reused the
/// connection would have its next request read as the rest of that body.
async fn close_after_refusal(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|len| len.as_bytes() != b"0");
    let mut response = next.run(request).await;
    let status = response.status();
    if has_body && (status.is_client_error() || status.is_server_error()) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Answers without a JSON body (a layer's 413, 503, 405…) get the API's error shape;
/// the console's error pages (HTML) stay as they are.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json_or_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
        });
    if !status.is_client_error() && !status.is_server_error() || is_json_or_page {
        return response;
    }
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is larger than this server accepts (max_body_kb, max_upload_mb in warden.toml)".to_string(),
        StatusCode::SERVICE_UNAVAILABLE => "the request took longer than request_timeout_ms".to_string(),
        _ => status.canonical_reason().unwrap_or("error").to_string(),
    };
    let mut response = ApiError::new(status, code_for_status(status), message).into_response();
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response.headers_mut().insert(
            header::ALLOW,
            HeaderValue::from_static("see /v1/openapi.json"),
        );
    }
    response
}

async fn count(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    // Both clones are cheap (a method is an enum, a matched path an `Arc<str>`).
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    state.metrics.request(
        method.as_str(),
        route.as_ref().map_or("-", MatchedPath::as_str),
        response.status().as_u16(),
    );
    response
}

/// `ok`, or 503 `unavailable` when the cluster's database does not answer (a load
/// balancer then sends requests to other nodes).
async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let plugins = state.registry.snapshot().len();
    let Some(pool) = state.storage.pool().cloned() else {
        return axum::Json(json!({ "status": "ok", "plugins": plugins })).into_response();
    };
    let url = pool.url().redacted().to_string();
    let ping = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::task::spawn_blocking(move || pool.ping()),
    )
    .await;
    let database = match ping {
        Ok(Ok(Ok(()))) => json!({ "status": "ok", "url": url }),
        Ok(Ok(Err(err))) => {
            json!({ "status": "unreachable", "url": url, "error": err.to_string() })
        }
        _ => json!({ "status": "unreachable", "url": url, "error": "no answer within 2 s" }),
    };
    let ok = database["status"] == "ok";
    let body = json!({
        "status": if ok { "ok" } else { "unavailable" },
        "plugins": plugins,
        "database": database,
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

pub(crate) async fn metrics(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Caller>>,
) -> Result<Response, ApiError> {
    state.require(&caller, Action::ReadMetrics, None).await?;
    let mut text = state.metrics.render(state.registry.snapshot().len());
    if let Some(pool) = state.storage.pool() {
        super::metrics::render_pool(&mut text, &pool.stats());
    }
    if let Some(counts) = super::idle_poll::counts() {
        super::metrics::render_idle_poll(&mut text, &counts);
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

async fn tools(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Caller>>,
) -> axum::Json<Value> {
    let mut tools = Vec::new();
    for (name, served) in state.registry.snapshot().iter() {
        for tool in &served.plugin.tools {
            if caller.offers(&served.plugin.resource(&tool.name)) {
                tools.push(json!({
                    "id": format!("{name}/{}", tool.name),
                    "plugin": name,
                    "name": tool.name,
                    "description": tool.description,
                    "fallible": tool.is_fallible(),
                    "annotations": served.plugin.annotations(&tool.name),
                    "input_schema": tool.input_schema,
                    "output_schema": tool.output_schema,
                }));
            }
        }
    }
    axum::Json(json!({ "tools": tools }))
}

async fn call_tool(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Caller>>,
    Path((plugin, tool)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let served = state.registry.get(&plugin);
    let (plugin_label, tool_label) =
        super::metrics::tool_labels(served.as_ref().map(|s| &*s.plugin), &plugin, &tool);
    let body =
        body.map_err(|r| ApiError::new(r.status(), code_for_status(r.status()), r.body_text()))?;
    let args: Result<Value, _> = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(json!({}))
    } else {
        serde_json::from_slice(&body)
    };
    let gate = caller.gate(Via::Http);
    let runtime = state.registry.runtime();
    // What a caller may not see does not exist for it: a tool the policy refuses it
    // (decided on no arguments, as `GET /v1/tools` lists them) is answered as an
    // unknown one, and a plugin none of whose tools it sees as an unknown plugin. The
    // refusal is still on the record (`access.denied`, through the gate).
    let sees = |served: &Arc<super::registry::Served>, tool: &str| {
        served.plugin.has_tool(tool) && caller.offers(&served.plugin.resource(tool))
    };
    let visible = served.as_ref().filter(|s| sees(s, &tool));
    let Some(served) = visible else {
        let resource = match &served {
            Some(served) => served.plugin.resource(&tool),
            None => Resource::tool(&plugin, &tool),
        };
        if let Err(refusal) = runtime
            .admit(&gate, Action::CallTool, &resource, &json!({}))
            .await
        {
            state
                .metrics
                .refused(plugin_label, tool_label, &refusal.decision);
        }
        let plugin_seen = served
            .as_ref()
            .is_some_and(|s| s.plugin.tools.iter().any(|t| sees(s, &t.name)));
        return Err(if plugin_seen {
            unknown_tool(&plugin, &tool)
        } else {
            ApiError::not_found(
                "unknown-plugin",
                format!("no plugin named \"{plugin}\" is served (GET /v1/tools lists the tools)"),
            )
        });
    };
    let args = args.map_err(|err| {
        ApiError::bad_request(format!(
            "the body is not JSON ({err}); send the arguments as a JSON object keyed by parameter name"
        ))
    })?;
    let args = &args;
    let counting = state.metrics.counting(plugin_label, tool_label);
    let result = runtime
        .call_tool(&gate, &served.plugin, &tool, args, CallOptions::default())
        .await;
    counting.ended(&result);
    match result {
        Ok(value) => Ok(axum::Json(json!({ "result": value }))),
        Err(CallError::Refused { refusal, .. }) => {
            let resource = served.plugin.resource(&tool);
            Err(ApiError::refused(Action::CallTool, &resource, &refusal))
        }
        Err(err) => Err(ApiError::from(&err)),
    }
}

/// 404 for a tool the caller does not see: the same answer whether it does not
/// exist or the policy hides it.
fn unknown_tool(plugin: &str, tool: &str) -> ApiError {
    ApiError::not_found(
        "unknown-tool",
        format!("plugin \"{plugin}\" has no tool \"{tool}\" (GET /v1/tools lists the tools)"),
    )
}

/// `GET /v1/audit` filters, as `warden audit query` has them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    pub(crate) plugin: Option<String>,
    pub(crate) tool: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) principal: Option<String>,
    pub(crate) outcome: Option<String>,
    pub(crate) since: Option<String>,
    pub(crate) until: Option<String>,
    pub(crate) after: Option<u64>,
    pub(crate) limit: Option<usize>,
    #[serde(default)]
    pub(crate) newest: bool,
}

/// The most records one `GET /v1/audit` answers with.
pub const AUDIT_PAGE_MAX: usize = 1000;

pub(crate) async fn audit_query(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Caller>>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    state.require(&caller, Action::ReadAudit, None).await?;
    let Query(q) = query.map_err(|r| ApiError::bad_request(r.body_text()))?;
    let bound = |t: Option<String>| {
        t.map(|t| warden_audit::time::parse_bound(&t))
            .transpose()
            .map_err(|e| ApiError::bad_request(chain(e)))
    };
    let outcome = q
        .outcome
        .map(|o| o.parse::<Outcome>())
        .transpose()
        .map_err(ApiError::bad_request)?;
    let filter = Filter {
        plugin: q.plugin,
        tool: q.tool,
        kind: q.kind,
        principal: q.principal,
        outcome,
        since: bound(q.since)?,
        until: bound(q.until)?,
        after_seq: q.after,
        limit: Some(q.limit.unwrap_or(100).min(AUDIT_PAGE_MAX)),
        newest: q.newest,
    };
    let audit = audit_log(&state)?;
    let records = tokio::task::spawn_blocking(move || audit.read(filter))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::internal(chain(e)))?;
    let next = records.last().map(|r| r.seq);
    Ok(axum::Json(
        json!({ "records": records, "next_after": next }),
    ))
}

fn audit_log(state: &AppState) -> Result<warden_audit::Audit, ApiError> {
    state
        .registry
        .runtime()
        .audit()
        .cloned()
        .ok_or_else(|| ApiError::internal("this server keeps no audit log"))
}

pub(crate) async fn audit_verify(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Caller>>,
) -> Result<axum::Json<Value>, ApiError> {
    state.require(&caller, Action::ReadAudit, None).await?;
    let audit = audit_log(&state)?;
    let report = tokio::task::spawn_blocking(move || audit.verify())
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::internal(chain(e)))?;
    Ok(axum::Json(json!({
        "ok": report.problem.is_none(),
        "count": report.count,
        "first": report.first,
        "head": report.head.as_ref().map(|h| json!({ "seq": h.seq, "hash": h.hash })),
        "anchor": report.anchor.as_ref().map(|(seq, hash)| json!({ "seq": seq, "hash": hash })),
        "problem": report.problem.as_ref().map(|p| json!({
            "seq": p.seq, "kind": format!("{:?}", p.kind).to_lowercase(), "detail": p.detail, "message": p.to_string(),
        })),
        "time_warnings": report.time_warnings.iter().map(|w| json!({
            "seq": w.seq, "detail": w.detail, "message": w.to_string(),
        })).collect::<Vec<_>>(),
        "time_warnings_total": report.time_warnings_total,
    })))
}
