//! `tools/list` and `tools/call`: Warden tools as MCP tools, calls through
//! [`Runtime::call_as`](warden_runtime::Runtime::call_as).

use std::borrow::Cow;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ContentBlock,
    CreateTaskResult, GetTaskParams, GetTaskResult, Implementation, JsonObject, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ProgressToken, ProtocolVersion,
    ServerCapabilities, ServerConfig, SubscriptionFilter, Tool as McpTool, ToolAnnotations,
    UpdateTaskParams,
};
use rmcp::service::{NotificationContext, Peer, RequestContext, RoleServer, SubscriptionContext};
use rmcp::{ErrorData as McpError, ServerHandler};
use serde_json::{Value, json};
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use super::holds::{self, Call, Held};
use super::http::{Authorizer, Principal};
use super::{Shared, names, tasks};
use crate::metrics::tool_labels;
use warden_policy::{Action, Decision, Request, Resource};
use warden_runtime::error::CallError;
use warden_runtime::tools::Tool;
use warden_runtime::{CallOptions, Caller, Plugin};

/// What the server says about itself in `initialize`.
const INSTRUCTIONS: &str = "Tools of the plugins loaded in Warden, each run in its own \
    WebAssembly sandbox with only the capabilities its operator granted. Tool names are \
    <plugin>__<tool>. A failed call is a result with isError true whose text is JSON: \
    {\"code\": …, \"message\": …} (code \"denied\" when the sandbox refused a capability).";

/// The first protocol revision with `outputSchema` and `structuredContent`.
const STRUCTURED_SINCE: &str = "2025-06-18";

/// The MCP server for one client connection (an `rmcp` [`ServerHandler`]).
#[derive(Clone)]
pub struct Handler {
    shared: Arc<Shared>,
    /// The principal of every call, or `None` to take it from each HTTP request's
    /// [`Principal`] extension.
    principal: Option<Caller>,
    /// The connection's calls in flight.
    calls: TaskTracker,
}

impl Handler {
    pub(super) fn new(shared: Arc<Shared>, principal: Option<Caller>) -> Self {
        Self {
            shared,
            principal,
            calls: TaskTracker::new(),
        }
    }

    /// Waits until the calls in flight have ended (and are on the audit record); new
    /// calls are still taken meanwhile.
    pub async fn drain(&self) {
        self.calls.close();
        self.calls.wait().await;
        self.calls.reopen();
    }

    fn caller(&self, context: &RequestContext<RoleServer>) -> Result<Caller, McpError> {
        if let Some(principal) = &self.principal {
            return Ok(principal.clone());
        }
        context
            .extensions
            .get::<::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Principal>())
            .map(|p| p.0.clone())
            .ok_or_else(|| {
                McpError::invalid_request(
                    "no principal: this MCP endpoint must sit behind authentication",
                    None,
                )
            })
    }

    /// Whether `caller` sees `tool` of `plugin`: the access policy does not deny it
    /// the call (decided on no arguments, as `GET /v1/tools` lists), the source allows
    /// it and, over HTTP, so does the request's [`Authorizer`].
    fn sees(
        &self,
        authorizer: Option<&Authorizer>,
        caller: &Caller,
        plugin: &Plugin,
        tool: &str,
    ) -> bool {
        let by_request = authorizer.is_none_or(|a| a.allows(&plugin.name, tool));
        let no_args = Value::Object(Default::default());
        let by_policy = !matches!(
            self.shared.runtime.policy().decide(&Request {
                principal: &caller.principal,
                action: Action::CallTool,
                resource: &plugin.resource(tool),
                context: &no_args,
            }),
            Decision::Deny { .. }
        );
        by_request && by_policy && self.shared.source.allowed(caller.id(), &plugin.name, tool)
    }

    /// The plugin and tool an MCP `name` calls, if `caller` sees it. A remote caller
    /// (over HTTP) learns nothing of what it may not see: such a tool is answered as
    /// an unknown one. Over stdio the caller is the operator, who has the home: the
    /// gate's refusal, naming the policy, is the answer.
    async fn resolve(
        &self,
        caller: &Caller,
        authorizer: Option<&Authorizer>,
        name: &str,
    ) -> Result<(Arc<Plugin>, String), McpError> {
        let (plugin_name, tool) = names::from_mcp(name).ok_or_else(|| unknown_tool(name))?;
        let Some(plugin) = self
            .shared
            .source
            .plugin(plugin_name)
            .filter(|p| p.has_tool(&tool))
        else {
            // Unknown to everyone; a refusal (if the policy refuses it) is on record.
            let resource = Resource::tool(plugin_name, &tool);
            return Err(self.unseen(caller, &resource, name).await);
        };
        if self.principal.is_none() && !self.sees(authorizer, caller, &plugin, &tool) {
            return Err(self.unseen(caller, &plugin.resource(&tool), name).await);
        }
        Ok((plugin, tool))
    }

    /// What [`ServerHandler::call_tool`] answers a call that nothing rides on: no
    /// progress token, no trace to join, no retry of a held call, and a client that
    /// takes neither holds nor tasks (so a held call is refused). The direct path of
    /// a plain 2026-07-28 request over HTTP ([`super::direct`]) calls it without
    /// rmcp's request context; `cancel` stops the call.
    pub(super) async fn call_plain(
        &self,
        caller: &Caller,
        authorizer: Option<&Authorizer>,
        name: &str,
        arguments: JsonObject,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<CallToolResult, McpError> {
        let (plugin, tool) = self.resolve(caller, authorizer, name).await?;
        let label = format!("{}/{tool}", plugin.name);
        let span = warden_telemetry::mcp_span("tools/call", &label);
        let args = Value::Object(arguments);
        let options = CallOptions {
            cancel: Some(cancel),
            approved_by: None,
            hold: false,
        };
        // Not tracked in `self.calls`: nothing drains the handler of one HTTP request
        // (the server waits for the request itself when it shuts down).
        let call = self.shared.call(caller, &plugin, &tool, &args, options);
        let result = call.instrument(span).await;
        if let Err(err) = &result {
            tracing::debug!(principal = caller.id(), %label, "{err}");
        }
        Ok(answer(result, true))
    }

    /// The MCP tools `caller` sees, in the source's order.
    fn tools(&self, context: &RequestContext<RoleServer>, caller: &Caller) -> Vec<McpTool> {
        let structured = supports_structured(context);
        let authorizer = authorizer(context);
        let mut out = Vec::new();
        for plugin in self.shared.source.plugins() {
            for tool in &plugin.tools {
                if !self.sees(authorizer, caller, &plugin, &tool.name) {
                    continue;
                }
                match names::to_mcp(&plugin.name, &tool.name) {
                    Some(name) => out.push(describe(&plugin, tool, name, structured)),
                    None => tracing::warn!(
                        plugin = %plugin.name,
                        tool = %tool.name,
                        "tool not offered over MCP: its name has no reversible MCP form (see mcp::names)"
                    ),
                }
            }
        }
        out
    }

    /// A call of a tool `caller` does not see, answered as a call of a tool that does
    /// not exist; the refusal is on the record (`access.denied`, through the gate).
    async fn unseen(&self, caller: &Caller, resource: &Resource, name: &str) -> McpError {
        let no_args = Value::Object(Default::default());
        if let Err(refusal) = self
            .shared
            .runtime
            .admit(caller, Action::CallTool, resource, &no_args)
            .await
        {
            tracing::debug!(principal = caller.id(), "{}", refusal.message);
            if let Some(metrics) = self.shared.metrics.get() {
                let (plugin, tool) = names::from_mcp(name).unwrap_or_default();
                let served = self.shared.source.plugin(plugin);
                let (plugin, tool) = tool_labels(served.as_deref(), plugin, &tool);
                metrics.refused(plugin, tool, &refusal.decision);
            }
        }
        unknown_tool(name)
    }
}

/// The MCP description of `tool` of `plugin`.
fn describe(plugin: &Plugin, tool: &Tool, name: String, structured: bool) -> McpTool {
    let input = tool.input_schema.as_object().cloned().unwrap_or_else(|| {
        let mut object = JsonObject::new();
        object.insert("type".into(), "object".into());
        object
    });
    let mut out = McpTool::new_with_raw(
        name,
        Some(Cow::Owned(tool.description.clone())),
        Arc::new(input),
    )
    .with_title(format!("{}/{}", plugin.name, tool.name));
    if structured && let Some(output) = tool.output_schema.as_object() {
        out = out.with_raw_output_schema(Arc::new(output.clone()));
    }
    // What the manifest says, narrowed by the grant (`Plugin::annotations`).
    let hints = plugin.annotations(&tool.name);
    out.with_annotations(
        ToolAnnotations::with_title(format!("{}/{}", plugin.name, tool.name))
            .read_only(hints.read_only)
            .destructive(hints.destructive)
            .idempotent(hints.idempotent)
            .open_world(hints.open_world),
    )
}

/// `notifications/progress` of one call, when the client asked for them with a
/// `progressToken`: one when it starts, one when it ends (progress 0 and 1 of 1).
struct Progress<'a> {
    token: Option<ProgressToken>,
    peer: &'a Peer<RoleServer>,
    label: String,
}

impl<'a> Progress<'a> {
    fn new(context: &'a RequestContext<RoleServer>, label: String) -> Self {
        Self {
            token: context.meta.get_progress_token(),
            peer: &context.peer,
            label,
        }
    }

    async fn started(&self) {
        self.send(0.0, format!("calling {}", self.label)).await;
    }

    async fn done(&self, result: &Result<Value, CallError>) {
        let how = match result {
            Ok(_) => "done".to_string(),
            Err(err) => format!("failed ({})", err.code()),
        };
        self.send(1.0, format!("{}: {how}", self.label)).await;
    }

    async fn send(&self, progress: f64, message: String) {
        let Some(token) = &self.token else {
            return;
        };
        let param = ProgressNotificationParam::new(token.clone(), progress)
            .with_total(1.0)
            .with_message(message);
        if let Err(err) = self.peer.notify_progress(param).await {
            tracing::debug!("could not send notifications/progress: {err}");
        }
    }
}

fn unknown_tool(name: &str) -> McpError {
    McpError::invalid_params(
        format!("unknown tool \"{name}\" (tools/list names the tools; names are <plugin>__<tool>)"),
        Some(json!({ "name": name })),
    )
}

/// A tool result with `isError: true` whose text is `error` as JSON.
pub(super) fn failed(error: &Value) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(error.to_string())])
}

/// The [`Authorizer`] of the HTTP request `context` answers, if any.
fn authorizer(context: &RequestContext<RoleServer>) -> Option<&Authorizer> {
    context
        .extensions
        .get::<::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Authorizer>())
}

fn supports_structured(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_none_or(|v| v.as_str() >= STRUCTURED_SINCE)
}

impl ServerHandler for Handler {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_tasks()
                .build(),
        );
        info.server_info = Implementation::new("warden", env!("CARGO_PKG_VERSION"));
        info.instructions = Some(INSTRUCTIONS.into());
        info
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::KNOWN_VERSIONS)
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.shared.register(context.peer);
    }

    /// `subscriptions/listen` (2026-07-28): what a stateless client hears of is the
    /// tool list changing.
    fn accepted_subscription_filter(
        &self,
        _requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(SubscriptionFilter::builder().tools_list_changed().build())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        self.shared
            .listen(context.sink().clone(), context.cancelled())
            .await;
        Ok(())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let caller = self.caller(&context)?;
        Ok(ListToolsResult::with_all_items(
            self.tools(&context, &caller),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<McpTool> {
        let (plugin, tool) = names::from_mcp(name)?;
        let plugin = self.shared.source.plugin(plugin)?;
        let def = plugin.tool(&tool)?;
        Some(describe(&plugin, def, name.to_string(), true))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = self.caller(&context)?;
        let principal = caller.id();
        let name = request.name.as_ref();
        let (plugin, tool) = self.resolve(&caller, authorizer(&context), name).await?;
        let plugin_name: &str = &plugin.name;
        let mut args = Value::Object(request.arguments.unwrap_or_default());
        let holds = self
            .shared
            .holds
            .as_ref()
            .filter(|_| holds::can_hold(&context));
        // A retry of a held call names its hold.
        let mut approved_by = None;
        if let Some(state) = &request.request_state {
            let holds = holds.ok_or_else(|| {
                McpError::invalid_params(
                    "requestState names no held call: this server holds calls only for clients that declare URL elicitation",
                    None,
                )
            })?;
            let call = Call {
                caller: &caller,
                plugin: &plugin,
                tool: &tool,
                arguments: &args,
            };
            match holds.resume(call, state)? {
                Held::Ask(ask) => return Ok(ask),
                Held::Refused(error) => return Ok(failed(&error).into()),
                Held::Approved { arguments, by } => {
                    args = arguments;
                    approved_by = Some(by);
                }
            }
        }
        // A long call, for a client that can take a task: the handle now.
        if approved_by.is_none() && as_task(&context, &plugin) {
            let task =
                self.shared
                    .tasks
                    .spawn(self.shared.clone(), caller, plugin, tool.clone(), args);
            return Ok(CallToolResponse::Task(CreateTaskResult::new(task)));
        }
        // The caller's trace (`_meta.traceparent`, SEP-414) continues into the call's.
        let label = format!("{plugin_name}/{tool}");
        let span = warden_telemetry::mcp_span("tools/call", &label);
        if let Some(parent) = context.meta.get_traceparent() {
            warden_telemetry::join_remote(&span, parent, context.meta.get_tracestate());
        }
        let progress = Progress::new(&context, label);
        progress.started().await;
        // `notifications/cancelled` for this request, or the client gone (the session
        // closed, stdin at its end), cancels `context.ct`: the call's instance is
        // stopped and the call is on the audit record as cancelled. rmcp sends no
        // response to a cancelled request.
        let call = |args: Value, approved_by: Option<String>| {
            let (caller, plugin, tool, ct) = (&caller, &plugin, &tool, &context.ct);
            let call = async move {
                self.shared
                    .call(
                        caller,
                        plugin,
                        tool,
                        &args,
                        CallOptions {
                            cancel: Some(ct),
                            approved_by: approved_by.as_deref(),
                            hold: holds.is_some(),
                        },
                    )
                    .await
            };
            self.calls.track_future(call.instrument(span.clone()))
        };
        let mut result = call(args.clone(), approved_by).await;
        if let (Err(CallError::Held { policies, .. }), Some(holds)) = (&result, holds) {
            let held_call = Call {
                caller: &caller,
                plugin: &plugin,
                tool: &tool,
                arguments: &args,
            };
            let held = holds
                .hold(&self.shared.runtime, held_call, policies, &context)
                .await?;
            match held {
                Held::Ask(ask) => return Ok(ask),
                Held::Refused(error) => return Ok(failed(&error).into()),
                Held::Approved { arguments, by } => result = call(arguments, Some(by)).await,
            }
        }
        progress.done(&result).await;
        if let Err(err) = &result {
            tracing::debug!(principal, plugin = plugin_name, tool, "{err}");
        }
        Ok(answer(result, supports_structured(&context)).into())
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        let caller = self.caller(&context)?;
        let task = self.shared.tasks.get(&caller, &request.task_id)?;
        Ok(GetTaskResult::new(task))
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let caller = self.caller(&context)?;
        self.shared
            .tasks
            .update(&caller, &request.task_id, request.input_responses)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let caller = self.caller(&context)?;
        self.shared.tasks.cancel(&caller, &request.task_id)
    }
}

/// A call's outcome as an MCP tool result: the value as JSON text (and as
/// `structuredContent` where the revision has it), or `isError` with the error's JSON.
pub(super) fn answer(result: Result<Value, CallError>, structured: bool) -> CallToolResult {
    match result {
        Ok(value) => {
            let mut out = CallToolResult::success(vec![ContentBlock::text(value.to_string())]);
            if structured {
                out.structured_content = Some(value);
            }
            out
        }
        Err(err) => failed(&err.to_json()),
    }
}

/// Whether the call runs as a task: the client declared the tasks extension and the
/// tool may run longer than a request comfortably waits.
fn as_task(context: &RequestContext<RoleServer>, plugin: &Plugin) -> bool {
    plugin.limits.timeout_ms > tasks::TASK_AFTER_MS
        && context
            .client_capabilities()
            .is_some_and(|c| c.supports_tasks())
}
