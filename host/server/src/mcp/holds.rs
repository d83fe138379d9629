//! Calls the access policy holds for a person, over MCP: instead of an error the model
//! cannot act on, the call waits on the approvals queue (the run store's, beside agent
//! runs' holds, decided with `warden approvals`, `POST /v1/approvals/{id}/…` or the
//! console) and completes once a person approves it.
//!
//! - **2026-07-28** (stateless): `tools/call` answers an `InputRequiredResult` whose
//!   input request is a URL-mode elicitation (the hold's entry in the console's
//!   inbox, where an approver decides) and whose `requestState` is the approval's id. The client retries the
//!   call with that state: still pending, the same answer; approved, the call runs
//!   (with the approver's edited arguments, if any) and its result is the answer;
//!   rejected, a tool error with the approver's reason.
//! - **Older revisions**: the server sends the URL-mode elicitation (`elicitation/
//!   create`) itself and, once the user accepts it, waits for the decision (at most
//!   [`Holds::wait`]) on the same request.
//!
//! - **As an MCP task** (a client of the tasks extension, a long call): the task's
//!   `tasks/get` is `input_required` with the same elicitation; once the client
//!   answers it (`tasks/update`, accept) the task waits for the decision.
//!
//! A client that declared no URL elicitation gets the gate's refusal, as without
//! holds. A `requestState` is only a handle: the approval it names must be this
//! caller's hold of this tool with these arguments, else the retry is refused. Every
//! hold is on the audit record (`call.held`) before the client hears of it; the
//! decision (`approval.decide`) and the call (`tool.call`, naming its approver) follow.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::ErrorData as McpError;
use rmcp::model::{
    CallToolResponse, ElicitRequest, ElicitRequestParams, ElicitationAction, InputRequest,
    InputRequests, InputRequiredResult,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::task_manager::TaskContext;
use serde_json::{Value, json};
use warden_audit::{Event, Outcome};
use warden_runs::store::{Approval, Decision as Status, RunStore};
use warden_runtime::{Caller, Plugin};

/// The first protocol revision that asks for input with `InputRequiredResult`.
const STATELESS_SINCE: &str = "2026-07-28";

/// The key of the approval's input request.
const INPUT_KEY: &str = "approval";

/// Where held calls wait, and where an approver decides them.
#[derive(Clone)]
pub struct Holds {
    store: Arc<RunStore>,
    /// The server's base URL (`http://127.0.0.1:7878`): an approval's place in the
    /// console's inbox is `{base}/console/approvals#{id}`, its JSON
    /// `{base}/v1/approvals/{id}`.
    base: String,
    /// How long an older-revision client's request waits for a decision.
    pub wait: Duration,
}

impl Holds {
    /// Holds on `store`'s approvals queue, decided at `base`'s approvals routes.
    pub fn new(store: Arc<RunStore>, base: impl Into<String>) -> Self {
        Self {
            store,
            base: base.into().trim_end_matches('/').to_string(),
            wait: Duration::from_secs(600),
        }
    }

    /// Where an approver decides approval `id`: its entry in the console's inbox.
    pub fn url(&self, id: &str) -> String {
        format!("{}/console/approvals#{id}", self.base)
    }
}

/// Whether the client can be asked to have a person decide at a URL.
pub(super) fn can_hold(context: &RequestContext<RoleServer>) -> bool {
    context
        .client_capabilities()
        .and_then(|c| c.elicitation)
        .is_some_and(|e| e.url.is_some())
}

fn stateless(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|v| v.as_str() >= STATELESS_SINCE)
}

/// One call of a tool: who calls what, with which arguments.
#[derive(Clone, Copy)]
pub(super) struct Call<'a> {
    pub caller: &'a Caller,
    pub plugin: &'a Plugin,
    pub tool: &'a str,
    pub arguments: &'a Value,
}

/// What becomes of a held call.
pub(super) enum Held {
    /// Ask the client (2026-07-28) to have a person decide, and to call again.
    Ask(CallToolResponse),
    /// Decided: call the tool with these arguments, approved by this person.
    Approved { arguments: Value, by: String },
    /// Not to be called: the tool error to answer with.
    Refused(Value),
}

impl Holds {
    fn internal(err: impl std::fmt::Display) -> McpError {
        McpError::internal_error(format!("the approvals queue: {err}"), None)
    }

    /// Holds `call` for a person, as `policies` ask; on the record before the client
    /// hears of it.
    pub(super) async fn hold(
        &self,
        runtime: &warden_runtime::Runtime,
        call: Call<'_>,
        policies: &[String],
        context: &RequestContext<RoleServer>,
    ) -> Result<Held, McpError> {
        let approval = self.open(runtime, call, policies).await?;
        if stateless(context) {
            return Ok(Held::Ask(self.ask(&approval)));
        }
        // An older revision: ask the client now, and wait on this request.
        let action = context
            .peer
            .elicit_url(
                self.message(&approval),
                url_of(&self.url(&approval.id))?,
                approval.id.clone(),
            )
            .await;
        match action {
            Ok(ElicitationAction::Accept) => {
                self.wait_for(&approval.id, context.ct.cancelled()).await
            }
            Ok(_) => Ok(Held::Refused(pending(&approval, &self.url(&approval.id)))),
            Err(err) => {
                tracing::debug!("URL elicitation for {}: {err}", approval.id);
                Ok(Held::Refused(pending(&approval, &self.url(&approval.id))))
            }
        }
    }

    /// Holds `call`, running as an MCP task, for a person: the task asks for the
    /// URL-mode elicitation (`input_required` in `tasks/get`) and, once the client
    /// accepts it (`tasks/update`), waits for the decision.
    pub(super) async fn hold_in_task(
        &self,
        runtime: &warden_runtime::Runtime,
        call: Call<'_>,
        policies: &[String],
        task: &TaskContext,
    ) -> Result<Held, McpError> {
        let approval = self.open(runtime, call, policies).await?;
        let url = self.url(&approval.id);
        let request = InputRequest::Elicitation(self.elicitation(&approval));
        match task.request_input(INPUT_KEY, request).await {
            Ok(answer) if answer.get("action").and_then(Value::as_str) == Some("accept") => {
                self.wait_for(&approval.id, task.cancelled()).await
            }
            _ => Ok(Held::Refused(pending(&approval, &url))),
        }
    }

    /// Puts `call` on the approvals queue, and on the record.
    async fn open(
        &self,
        runtime: &warden_runtime::Runtime,
        call: Call<'_>,
        policies: &[String],
    ) -> Result<Approval, McpError> {
        let Call {
            caller,
            plugin,
            tool,
            arguments,
        } = call;
        let id = format!("{}/{tool}", plugin.name);
        let approval = self
            .store
            .hold_call(caller.id(), &id, arguments, policies)
            .map_err(Self::internal)?;
        if let Some(audit) = runtime.audit() {
            let mut event = Event::new("call.held", caller.id())
                .plugin(plugin.name.as_ref())
                .tool(tool)
                .outcome(Outcome::Ok)
                .field("approval", approval.id.clone())
                .field("policies", json!(policies))
                .field("via", caller.via.as_str())
                .field("roles", caller.principal.roles.clone());
            if let Some(token) = &caller.token {
                event = event.field("token", token.as_str());
            }
            audit.append(event).await.map_err(Self::internal)?;
        }
        Ok(approval)
    }

    /// A retry (2026-07-28) carrying `state`: the approval it names, checked against
    /// the call, and what becomes of the call now.
    pub(super) fn resume(&self, call: Call<'_>, state: &str) -> Result<Held, McpError> {
        let Call {
            caller,
            plugin,
            tool,
            arguments,
        } = call;
        let id = format!("{}/{tool}", plugin.name);
        let approval = self
            .store
            .approval(state)
            .map_err(Self::internal)?
            .filter(|a| {
                a.run.is_empty()
                    && a.principal == caller.id()
                    && a.tool.as_deref() == Some(id.as_str())
            })
            .ok_or_else(|| {
                McpError::invalid_params(
                    "requestState names no call of this tool held for this caller: call again without it",
                    None,
                )
            })?;
        if approval.arguments.as_ref() != Some(arguments) {
            return Err(McpError::invalid_params(
                format!(
                    "the arguments differ from those of the held call {}: retry with the same arguments (an approver may edit them)",
                    approval.id
                ),
                None,
            ));
        }
        Ok(self.settle(&approval))
    }

    /// What becomes of `approval` as it stands.
    fn settle(&self, approval: &Approval) -> Held {
        let by = approval.decided_by.clone().unwrap_or_default();
        match approval.status {
            Status::Pending => Held::Ask(self.ask(approval)),
            Status::Approved => Held::Approved {
                arguments: approval
                    .edited
                    .clone()
                    .or_else(|| approval.arguments.clone())
                    .unwrap_or_else(|| json!({})),
                by,
            },
            Status::Rejected => Held::Refused(json!({
                "code": "rejected",
                "message": format!(
                    "{} was not called: {by} rejected it: {}",
                    approval.tool.as_deref().unwrap_or("the tool"),
                    approval.reason.as_deref().unwrap_or("no reason given")
                ),
                "approval": approval.id,
                "reason": approval.reason,
            })),
            Status::Cancelled => Held::Refused(json!({
                "code": "cancelled",
                "message": format!("the hold {} was cancelled; the tool was not called", approval.id),
                "approval": approval.id,
            })),
        }
    }

    /// Waits for a person's decision on `id` (an older revision's request, or a
    /// task), until [`Holds::wait`] has passed or `cancelled` resolves.
    async fn wait_for(
        &self,
        id: &str,
        cancelled: impl Future<Output = ()>,
    ) -> Result<Held, McpError> {
        let until = Instant::now() + self.wait;
        tokio::pin!(cancelled);
        loop {
            let approval = self
                .store
                .approval(id)
                .map_err(Self::internal)?
                .ok_or_else(|| Self::internal(format!("approval {id} is gone")))?;
            if approval.status != Status::Pending || Instant::now() >= until {
                return Ok(match approval.status {
                    Status::Pending => Held::Refused(pending(&approval, &self.url(id))),
                    _ => self.settle(&approval),
                });
            }
            tokio::select! {
                () = &mut cancelled => {
                    return Ok(Held::Refused(pending(&approval, &self.url(id))));
                }
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }

    fn message(&self, approval: &Approval) -> String {
        format!(
            "{} waits for a person's approval ({}): an approver decides it at this address, in Warden's console (or with `warden approvals approve {}`, or POST /v1/approvals/{}/approve); the call completes once it is approved",
            approval.tool.as_deref().unwrap_or("the call"),
            approval.policies.join(", "),
            approval.id,
            approval.id
        )
    }

    /// The `InputRequiredResult` for `approval`: decide at its URL, then call again
    /// with its id as `requestState`.
    fn ask(&self, approval: &Approval) -> CallToolResponse {
        let mut requests = InputRequests::new();
        requests.insert(
            INPUT_KEY.into(),
            InputRequest::Elicitation(self.elicitation(approval)),
        );
        InputRequiredResult::new(Some(requests), Some(approval.id.clone())).into()
    }
}

impl Holds {
    /// The URL-mode elicitation of `approval`: decide at its page.
    fn elicitation(&self, approval: &Approval) -> ElicitRequest {
        ElicitRequest::new(ElicitRequestParams::UrlElicitationParams {
            meta: None,
            message: self.message(approval),
            url: self.url(&approval.id),
            elicitation_id: approval.id.clone(),
        })
    }
}

fn url_of(url: &str) -> Result<url::Url, McpError> {
    url::Url::parse(url).map_err(|err| Holds::internal(format!("approval URL {url:?}: {err}")))
}

/// The tool error of a call still waiting for a person.
fn pending(approval: &Approval, url: &str) -> Value {
    json!({
        "code": "approval-required",
        "message": format!(
            "{} was not called: it waits for a person's approval ({}) as {} ({url}); call it again once it is approved",
            approval.tool.as_deref().unwrap_or("the tool"),
            approval.policies.join(", "),
            approval.id
        ),
        "approval": approval.id,
        "url": url,
    })
}
