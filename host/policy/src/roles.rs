//! The roles of `warden.toml` (the built-in `admin`, `caller`, `auditor` and every
//! `[roles.NAME]`) as Cedar policies, so a config written for the simple role rules
//! keeps meaning what it meant: a role's actions become
//! `permit(principal in Warden::Role::"NAME", action in [...], resource)` (id
//! `role:NAME`), and its tool patterns a `call-tool` permit (id `role:NAME:call-tool`):
//! `*` any tool, `plugin/*` any tool of the plugin, `plugin/tool` that tool.
//!
//! `decide-approval` has a permit of its own (id `role:NAME:decide-approval`) with the
//! four-eyes rule: [`FOUR_EYES`], the starter of a run does not approve its own held
//! tool calls. It may still reject them and answer its agent's questions; and an
//! operator's policy file may permit self-approval (`permit(…, action ==
//! Warden::Action::"decide-approval", resource) when { context.by_starter };`), since a
//! permit of the file is as good as the role's.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Action;

/// The condition of every role's `decide-approval` permit: not the starter of the run
/// approving a tool call its run holds.
pub const FOUR_EYES: &str =
    "unless { context.by_starter && context.kind == \"tool\" && context.decision == \"approve\" }";

/// The Cedar policies of `roles`, as `(id, text)`, in role-name order.
pub fn role_policies(roles: &BTreeMap<String, RoleConfig>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, role) in roles {
        let principal = format!("principal in Warden::Role::\"{}\"", escape(name));
        let others: Vec<String> = role
            .actions
            .iter()
            .filter(|a| !matches!(a, Action::CallTool | Action::DecideApproval))
            .map(|a| format!("Warden::Action::\"{}\"", a.as_str()))
            .collect();
        if !others.is_empty() {
            out.push((
                format!("role:{name}"),
                format!(
                    "permit({principal}, action in [{}], resource);",
                    others.join(", ")
                ),
            ));
        }
        if role.actions.contains(&Action::DecideApproval) {
            out.push((
                format!("role:{name}:decide-approval"),
                format!(
                    "permit({principal}, action == Warden::Action::\"decide-approval\", resource) {FOUR_EYES};"
                ),
            ));
        }
        if !role.actions.contains(&Action::CallTool) || role.tools.is_empty() {
            continue;
        }
        let head =
            format!("permit({principal}, action == Warden::Action::\"call-tool\", resource)");
        let text = if role.tools.iter().any(|t| t == "*") {
            format!("{head};")
        } else {
            let tests: Vec<String> = role.tools.iter().filter_map(|p| pattern(p)).collect();
            if tests.is_empty() {
                continue;
            }
            format!("{head} when {{ {} }};", tests.join(" || "))
        };
        out.push((format!("role:{name}:call-tool"), text));
    }
    out
}

/// The condition on `resource` of a tool pattern (checked by the config already).
fn pattern(pattern: &str) -> Option<String> {
    match pattern.split_once('/')? {
        (plugin, "*") => Some(format!(
            "resource in Warden::Plugin::\"{}\"",
            escape(plugin)
        )),
        (plugin, tool) => Some(format!(
            "resource == Warden::Tool::\"{}/{}\"",
            escape(plugin),
            escape(tool)
        )),
    }
}

/// A Cedar string literal's content.
pub(super) fn escape(s: &str) -> String {
    s.escape_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::builtin_roles;
    use super::*;

    #[test]
    fn built_in_roles_become_permits() {
        let policies = role_policies(&builtin_roles());
        let ids: Vec<&str> = policies.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "role:admin",
                "role:admin:decide-approval",
                "role:admin:call-tool",
                "role:auditor",
                "role:caller",
                "role:caller:call-tool"
            ]
        );
        assert_eq!(
            policies[1].1,
            "permit(principal in Warden::Role::\"admin\", action == Warden::Action::\"decide-approval\", resource) unless { context.by_starter && context.kind == \"tool\" && context.decision == \"approve\" };"
        );
        assert_eq!(
            policies[4].1,
            "permit(principal in Warden::Role::\"caller\", action in [Warden::Action::\"start-run\", Warden::Action::\"use-model\"], resource);"
        );
    }

    #[test]
    fn tool_patterns_become_conditions() {
        let roles = BTreeMap::from([(
            "reader".to_string(),
            RoleConfig {
                tools: vec!["text/*".into(), "files/read".into()],
                actions: [Action::CallTool].into(),
            },
        )]);
        assert_eq!(
            role_policies(&roles),
            [(
                "role:reader:call-tool".to_string(),
                "permit(principal in Warden::Role::\"reader\", action == Warden::Action::\"call-tool\", resource) when { resource in Warden::Plugin::\"text\" || resource == Warden::Tool::\"files/read\" };".to_string()
            )]
        );
    }
}

/// What a role allows.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// Tools it may call: `*`, `plugin/*` or `plugin/tool`.
    #[serde(default)]
    pub tools: Vec<String>,
    /// What else it may do.
    #[serde(default)]
    pub actions: BTreeSet<Action>,
}

/// The built-in roles: `admin` (everything), `caller` (call every tool, start agent
/// runs, use model routes), `auditor` (read the audit log and metrics). A
/// `[roles.NAME]` of the same name replaces one. They become Cedar policies
/// ([`role_policies`]).
pub fn builtin_roles() -> BTreeMap<String, RoleConfig> {
    let role = |tools: &[&str], actions: &[Action]| RoleConfig {
        tools: tools.iter().map(|t| (*t).to_string()).collect(),
        actions: actions.iter().copied().collect(),
    };
    BTreeMap::from([
        ("admin".to_string(), role(&["*"], &Action::ALL)),
        (
            "caller".to_string(),
            role(
                &["*"],
                &[Action::CallTool, Action::StartRun, Action::UseModel],
            ),
        ),
        (
            "auditor".to_string(),
            role(&[], &[Action::ReadAudit, Action::ReadMetrics]),
        ),
    ])
}
