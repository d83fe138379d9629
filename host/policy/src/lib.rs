//! The access policy: for a principal, an action and a resource (with the call's
//! arguments as context), allow, deny, or allow once a person approves.
//!
//! This module is the contract between the places that ask (HTTP API, MCP, the model
//! gateway, agent runs, approvals) and the engine that answers. The engine is Cedar
//! (`cedar-policy`): default deny, forbid wins, schema-validated policies; every
//! decision carries the ids of the policies that made it, for the audit record.
//!
//! - [`schema`](schema_text): namespace `Warden`, its entity types and actions; a
//!   call's arguments are `context.args`, typed by `[policy.args]` in `warden.toml`
//!   (Cedar validates closed records only, so the arguments policies read are declared);
//! - [`roles`](role_policies): the config's roles as permits (`role:NAME`), so configs
//!   written for the role rules keep their meaning; their `decide-approval` permits
//!   keep four eyes ([`FOUR_EYES`]: a run's starter does not approve its own holds);
//! - [`ApprovalContext`]: what `decide-approval` sees (the run's starter, whether the
//!   decider is the starter, the held tool and arguments, the edit);
//! - `load`: the policy file (`policy.cedar`), parsed, named (`@id`, else
//!   `policy.cedar:LINE`) and validated, with errors at `FILE:LINE:COLUMN`;
//! - [`CedarPolicy`]: the engine. A permit annotated `@approval("required")` turns an
//!   allow into [`Decision::RequireApproval`]; if any permit that applies requires
//!   approval, approval is required (forbid still wins over both);
//! - [`Reloadable`]: what `serve` sets on the runtime, swapped on a config change.
//!
//! The CLI's operator (`local:<user>`) is allowed everything ([`AllowAll`]) unless the
//! home has a policy file; then it acts with the `admin` role under that policy, so the
//! file's forbids hold for the operator too.

mod cedar;
mod diagnostics;
mod load;
mod reload;
mod roles;
mod schema;

pub use self::cedar::{CedarPolicy, SERVER_ID, principal_entity};
pub use self::diagnostics::Problem;
pub use self::load::{APPROVAL, PolicyError, PolicyFile, PolicySource};
pub use self::reload::Reloadable;
pub use self::roles::{FOUR_EYES, RoleConfig, builtin_roles, role_policies};
pub use self::schema::{ArgType, SCHEMA_NAMESPACE, schema_text};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who acts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// `user:<name>`, `token:<name>`, `agent:<name>`, `local` (the CLI's operator).
    pub id: String,
    /// Roles of the principal (for an agent: of the principal it acts for).
    pub roles: Vec<String>,
    /// For an agent run: the principal that started it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
}

/// What the principal wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Call a tool.
    CallTool,
    /// Start an agent run.
    StartRun,
    /// Use a model route.
    UseModel,
    /// Add, replace and remove plugins.
    ManagePlugins,
    /// Set grants.
    ManageGrants,
    /// Read and verify the audit log.
    ReadAudit,
    /// Read `/metrics`.
    ReadMetrics,
    /// Approve or reject a parked action.
    DecideApproval,
}

impl Action {
    /// The action's name, as written in policies and configs.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::CallTool => "call-tool",
            Action::StartRun => "start-run",
            Action::UseModel => "use-model",
            Action::ManagePlugins => "manage-plugins",
            Action::ManageGrants => "manage-grants",
            Action::ReadAudit => "read-audit",
            Action::ReadMetrics => "read-metrics",
            Action::DecideApproval => "decide-approval",
        }
    }

    /// Every action.
    pub const ALL: [Action; 8] = [
        Action::CallTool,
        Action::StartRun,
        Action::UseModel,
        Action::ManagePlugins,
        Action::ManageGrants,
        Action::ReadAudit,
        Action::ReadMetrics,
        Action::DecideApproval,
    ];
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Action {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<_> = Action::ALL.iter().map(|a| a.as_str()).collect();
                format!("unknown action {s:?} (actions: {})", all.join(", "))
            })
    }
}

impl Principal {
    /// A principal with `roles`, acting for itself.
    pub fn new(id: impl Into<String>, roles: Vec<String>) -> Self {
        Self {
            id: id.into(),
            roles,
            on_behalf_of: None,
        }
    }
}

/// What the action is on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Resource {
    /// A tool, `plugin/tool`, with its manifest annotations and the trusted signer of
    /// its plugin's component, if one signed it (policies read `resource.signer`).
    Tool {
        plugin: String,
        tool: String,
        #[serde(default)]
        annotations: ToolAnnotations,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signer: Option<String>,
    },
    /// An agent (a plugin exporting `warden:plugin/agent`).
    Agent { name: String },
    /// A model route.
    Route { name: String },
    /// The server itself (plugins, grants, audit, metrics, approvals).
    Server,
}

impl Resource {
    /// `tool` of `plugin`, annotations unknown (the conservative defaults).
    pub fn tool(plugin: &str, tool: &str) -> Self {
        Resource::Tool {
            plugin: plugin.to_string(),
            tool: tool.to_string(),
            annotations: ToolAnnotations::default(),
            signer: None,
        }
    }
}

impl std::fmt::Display for Resource {
    /// `tool refunds/issue`, `agent triage`, `route smart`, `the server`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resource::Tool { plugin, tool, .. } => write!(f, "tool {plugin}/{tool}"),
            Resource::Agent { name } => write!(f, "agent {name}"),
            Resource::Route { name } => write!(f, "route {name}"),
            Resource::Server => f.write_str("the server"),
        }
    }
}

/// What a tool says about itself (from its plugin's manifest). The default, for a
/// tool nothing is known of, is the conservative one (MCP's): it may do anything —
/// not read-only, destructive, not idempotent, open world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ToolAnnotations {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

impl Default for ToolAnnotations {
    fn default() -> Self {
        Self {
            read_only: false,
            destructive: true,
            idempotent: false,
            open_world: true,
        }
    }
}

/// One question to the policy.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub principal: &'a Principal,
    pub action: Action,
    pub resource: &'a Resource,
    /// The call's arguments (a tool's JSON arguments, a run's task…); `null` if none.
    pub context: &'a Value,
}

/// The answer, with the ids of the policies that made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    /// Go ahead.
    Allow { policies: Vec<String> },
    /// Go ahead once a person approves (the run parks; a direct call is refused
    /// with a message saying approval is needed).
    RequireApproval { policies: Vec<String> },
    /// Refused; `reason` is for people ("no policy permits…", "forbidden by …").
    Deny {
        policies: Vec<String>,
        reason: String,
    },
}

impl Decision {
    /// True for [`Decision::Allow`].
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// The ids of the policies that made the decision.
    pub fn policies(&self) -> &[String] {
        match self {
            Decision::Allow { policies }
            | Decision::RequireApproval { policies }
            | Decision::Deny { policies, .. } => policies,
        }
    }
}

/// The context of a `decide-approval` request: who started the run, whether the one
/// deciding is that starter, the held tool and its arguments, and the edit. Policies
/// read it as `context.starter`, `context.by_starter`, `context.tool`, `context.held`,
/// `context.edited`, `context.arguments` (and `kind`, `decision`, `approval`, `run`,
/// `agent`); see the schema ([`schema_text`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ApprovalContext {
    /// `tool` (a held call), `question` (an agent's question), `run` (cancelling
    /// another principal's run).
    pub kind: &'static str,
    /// The approval's id (`""` for a cancel).
    pub approval: String,
    /// The run's id.
    pub run: String,
    /// The agent of the run.
    pub agent: String,
    /// `approve`, `reject` or `cancel`.
    pub decision: &'static str,
    /// The principal that started the run.
    pub starter: String,
    /// The one deciding is the starter. The Cedar engine also sets it when the
    /// principal is the starter, whatever this says.
    pub by_starter: bool,
    /// The held tool, `plugin/tool` (`""` for a question or a run).
    pub tool: String,
    /// The held call's arguments (`null` if none).
    pub held: Value,
    /// The decision replaces the arguments.
    pub edited: bool,
    /// What the tool is to be called with: the edited arguments, else the held ones.
    pub arguments: Value,
}

impl ApprovalContext {
    /// As [`Request::context`] takes it.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Something that answers [`Request`]s. Cheap to call (microseconds), thread-safe.
pub trait Decide: Send + Sync {
    /// The decision for `request`.
    fn decide(&self, request: &Request<'_>) -> Decision;
}

/// Allows everything: the local operator's CLI when no policy is configured.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAll;

impl Decide for AllowAll {
    fn decide(&self, _: &Request<'_>) -> Decision {
        Decision::Allow {
            policies: vec!["local-operator".into()],
        }
    }
}
