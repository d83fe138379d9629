//! The gate: the one path every tool call takes, whichever way it arrives — the CLI,
//! the HTTP API, MCP over stdio or HTTP, an agent run, or this library.
//!
//! principal → access policy (with the call's arguments) → grant (the call's sandbox,
//! [`crate::state`]) → run ([`crate::call`]) → record. Entry points only translate
//! their wire format into a [`Caller`] and a call, and the answer back; none decides
//! or records by itself.
//!
//! Every outcome is on the audit record in one shape (principal, plugin, tool,
//! action, resource, `via`, the decision and the ids of the policies that made it):
//! a refusal as `access.denied`, a call that ran (whatever its outcome) as
//! `tool.call`, preceded by its capability uses and every denial at the host
//! boundary. A call whose caller goes away is still recorded, as `cancelled`.

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use warden_audit::{Audit, Event, Outcome};
use warden_policy::{Action, Decide, Decision, Principal, Request, Resource};

use crate::engine::Runtime;
use crate::error::CallError;
use crate::plugin::Plugin;

/// The entry point an action came through, as records name it (`via`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Via {
    /// `warden call`, `warden run` and the other commands.
    Cli,
    /// The HTTP API (`/v1`).
    Http,
    /// `warden mcp` (MCP over stdio), recorded as `mcp`.
    McpStdio,
    /// `/mcp` on `serve` (MCP over Streamable HTTP), recorded as `mcp`.
    McpHttp,
    /// An agent run's action.
    Run,
    /// A program embedding the library.
    Library,
    /// The web console (`/console` on `serve`): the API's handlers, on behalf of a
    /// person signed in to it.
    Console,
}

impl Via {
    /// The name records use.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Cli => "cli",
            Via::Http => "http",
            Via::McpStdio | Via::McpHttp => "mcp",
            Via::Run => "run",
            Via::Library => "library",
            Via::Console => "console",
        }
    }
}

/// Who asks the gate, and through which entry point.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Who acts, with the roles the policy sees.
    pub principal: Principal,
    /// Where the request came from.
    pub via: Via,
    /// The name of the bearer token it presented, if any (for the record).
    pub token: Option<String>,
}

impl Caller {
    /// `principal` asking through `via`.
    pub fn new(principal: Principal, via: Via) -> Self {
        Self {
            principal,
            via,
            token: None,
        }
    }

    /// The local operator (`local:<user>`) with the `admin` role: allowed everything
    /// unless the home's policy file forbids it.
    pub fn local(via: Via) -> Self {
        Self::new(
            Principal::new(
                warden_config::env::local_principal(),
                vec!["admin".to_string()],
            ),
            via,
        )
    }

    /// The same caller, having presented the token named `name`.
    pub fn with_token(mut self, name: impl Into<String>) -> Self {
        self.token = Some(name.into());
        self
    }

    /// The principal's id, as records name it.
    pub fn id(&self) -> &str {
        &self.principal.id
    }
}

/// How a call may end early, and what a person already decided about it.
#[derive(Clone, Copy, Debug, Default)]
pub struct CallOptions<'a> {
    /// Once cancelled, the call's instance is stopped and the call fails with
    /// [`CallError::Cancelled`] (on the record like any other call).
    pub cancel: Option<&'a CancellationToken>,
    /// The person who approved this call (an agent run's held action): a decision
    /// that requires approval lets it through; a deny still refuses it.
    pub approved_by: Option<&'a str>,
    /// The caller can hold the call for a person (MCP's input requests): a decision
    /// that requires approval comes back as [`CallError::Held`], not recorded as a
    /// refusal, for the caller to hold; without it, such a call is refused.
    pub hold: bool,
}

/// An action the access policy did not allow, as the caller hears it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The policy's decision (a deny, or an approval a direct request cannot wait for).
    pub decision: Decision,
    /// `forbidden` or `approval-required`.
    pub code: &'static str,
    /// What was refused, why, and what to change.
    pub message: String,
}

impl Runtime {
    /// The access policy's decision on `action` on `resource` for `caller`, with
    /// `context` (a call's arguments, a run's task). An allow comes back as `Ok`; a
    /// refusal is on the audit record as `access.denied` before it comes back.
    pub async fn admit(
        &self,
        caller: &Caller,
        action: Action,
        resource: &Resource,
        context: &Value,
    ) -> Result<Decision, Refusal> {
        self.admit_approved(caller, action, resource, context, None, None)
            .await
    }

    /// As [`Runtime::admit`], for a request about the plugin `plugin` (adding,
    /// replacing or removing it, setting its grant), which a refusal's record names.
    pub async fn admit_about(
        &self,
        caller: &Caller,
        action: Action,
        resource: &Resource,
        context: &Value,
        plugin: Option<&str>,
    ) -> Result<Decision, Refusal> {
        self.admit_approved(caller, action, resource, context, None, plugin)
            .await
    }

    /// The access policy's decision on an action that may wait for a person (an agent
    /// run's tool call, which parks when held): as [`Runtime::admit`], but a
    /// `RequireApproval` comes back to be held rather than refused. A deny is on the
    /// audit record as `access.denied` before it comes back.
    pub async fn decide(
        &self,
        caller: &Caller,
        action: Action,
        resource: &Resource,
        context: &Value,
    ) -> Decision {
        let question = Question {
            caller,
            action,
            resource,
            context,
            approved_by: None,
            plugin: None,
            may_hold: true,
        };
        match admit_with(self.policy(), self.audit(), &question).await {
            Ok(decision) => decision,
            Err(refusal) => refusal.decision,
        }
    }

    async fn admit_approved(
        &self,
        caller: &Caller,
        action: Action,
        resource: &Resource,
        context: &Value,
        approved_by: Option<&str>,
        plugin: Option<&str>,
    ) -> Result<Decision, Refusal> {
        let question = Question {
            caller,
            action,
            resource,
            context,
            approved_by,
            plugin,
            may_hold: false,
        };
        admit_with(self.policy(), self.audit(), &question).await
    }

    /// Calls `tool` of `plugin` with JSON `args` for `caller`, through the gate: the
    /// access policy decides with the arguments (a refusal is recorded and fails
    /// with [`CallError::Refused`]), the call runs in a fresh instance under the
    /// plugin's grant, and its records are durable before this returns.
    pub async fn call_tool(
        &self,
        caller: &Caller,
        plugin: &Plugin,
        tool: &str,
        args: &Value,
        options: CallOptions<'_>,
    ) -> Result<Value, CallError> {
        let resource = plugin.resource(tool);
        let question = Question {
            caller,
            action: Action::CallTool,
            resource: &resource,
            context: args,
            approved_by: options.approved_by,
            plugin: None,
            may_hold: options.hold,
        };
        let decision = admit_with(self.policy(), self.audit(), &question)
            .await
            .map_err(|refusal| CallError::Refused {
                plugin: plugin.name.to_string(),
                tool: tool.to_string(),
                refusal: Box::new(refusal),
            })?;
        if let Decision::RequireApproval { policies } = &decision
            && options.approved_by.is_none()
        {
            return Err(CallError::Held {
                plugin: plugin.name.to_string(),
                tool: tool.to_string(),
                policies: policies.clone(),
            });
        }
        self.call_recorded(caller, plugin, tool, args, &decision, options)
            .await
    }
}

/// One request to the gate: `caller` asks to do `action` on `resource` with `context`.
#[derive(Clone, Copy)]
pub(crate) struct Question<'a> {
    pub(crate) caller: &'a Caller,
    pub(crate) action: Action,
    pub(crate) resource: &'a Resource,
    pub(crate) context: &'a Value,
    /// The person who approved it, for a held action.
    pub(crate) approved_by: Option<&'a str>,
    /// The plugin a refusal's record names (a request about a plugin, or a host import
    /// a plugin's guest made).
    pub(crate) plugin: Option<&'a str>,
    /// A `RequireApproval` is the answer (the caller holds the action for a person),
    /// not a refusal.
    pub(crate) may_hold: bool,
}

/// The gate's decision, with `policy`, refusals recorded in `audit`: the one body of
/// [`Runtime::admit`], shared with the host imports that decide during a call (a
/// guest's store holds the policy and the log, not the runtime).
pub(crate) async fn admit_with(
    policy: &dyn Decide,
    audit: Option<&Audit>,
    question: &Question<'_>,
) -> Result<Decision, Refusal> {
    let Question {
        caller,
        action,
        resource,
        context,
        approved_by,
        plugin,
        may_hold,
    } = *question;
    let decision = policy.decide(&Request {
        principal: &caller.principal,
        action,
        resource,
        context,
    });
    let held = may_hold || approved_by.is_some();
    let refusal = match &decision {
        Decision::Allow { .. } => return Ok(decision),
        Decision::RequireApproval { .. } if held => return Ok(decision),
        Decision::RequireApproval { policies } => Refusal {
            code: "approval-required",
            message: match action {
                Action::CallTool => format!(
                    "{} may {action} {resource} only once a person approves ({}); a direct request cannot wait for approval: start an agent run, which parks for it",
                    who(caller),
                    policies.join(", ")
                ),
                _ => format!(
                    "{} may {action} {resource} only once a person approves ({}), which Warden does not ask for {action}; a policy that permits it outright lets it through",
                    who(caller),
                    policies.join(", ")
                ),
            },
            decision,
        },
        Decision::Deny { reason, .. } => Refusal {
            code: "forbidden",
            message: format!(
                "{} may not {action} {resource}: {reason}; give the principal a role that allows it in warden.toml, or change the policy file (`warden policy check` validates it)",
                who(caller)
            ),
            decision,
        },
    };
    if let Some(audit) = audit {
        record_refusal(audit, caller, action, resource, &refusal, plugin).await;
    }
    Err(refusal)
}

/// Puts `refusal` of `action` on `resource` on the audit record.
async fn record_refusal(
    audit: &Audit,
    caller: &Caller,
    action: Action,
    resource: &Resource,
    refusal: &Refusal,
    plugin: Option<&str>,
) {
    let mut event = Event::new("access.denied", caller.id())
        .outcome(Outcome::Denied)
        .field("action", action.as_str())
        .field("resource", resource.to_string())
        .field("via", caller.via.as_str())
        .field("roles", caller.principal.roles.clone())
        .field("decision", json!(refusal.decision));
    if let Some(token) = &caller.token {
        event = event.field("token", token.as_str());
    }
    if let Some(on_behalf_of) = &caller.principal.on_behalf_of {
        event = event.field("on_behalf_of", on_behalf_of.as_str());
    }
    match resource {
        Resource::Tool { plugin, tool, .. } => {
            event = event.plugin(plugin.as_str()).tool(tool.as_str());
        }
        Resource::Agent { name } => event = event.plugin(name.as_str()),
        Resource::Route { .. } | Resource::Server => {
            if let Some(plugin) = plugin {
                event = event.plugin(plugin);
            }
        }
    }
    if let Err(err) = audit.append(event).await {
        tracing::error!(
            "writing an access.denied record: {}",
            crate::error::chain(err)
        );
    }
}

/// `token:ci (roles caller)`: the caller as refusals name it.
fn who(caller: &Caller) -> String {
    match &caller.token {
        Some(token) => format!(
            "{} (token {token:?}, roles {})",
            caller.id(),
            caller.principal.roles.join(", ")
        ),
        None => caller.id().to_string(),
    }
}
