//! The Cedar schema policies are validated against: namespace `Warden`, its entity
//! types (principals, roles, tools and their plugins, agents, routes, the server) and
//! its actions with their principal, resource and context types.
//!
//! A call's arguments reach policies as `context.args`, a record. Cedar validates
//! records as closed (open records exist only behind its experimental
//! `partial-validate` feature), and one schema cannot give each tool's arguments their
//! own type, so `args` holds the arguments the operator declares in `[policy.args]`
//! (`amount = "Long"`), each an *optional* attribute: strict validation then makes a
//! policy test `context.args has amount` before it reads it, and a typo or a wrong type
//! in a policy is an error at `warden policy check` instead of a rule that silently
//! never applies. Arguments not declared are not given to policies.
//!
//! `decide-approval` has a context of its own (the run's `starter`, `by_starter`, the
//! held `tool`, the `held` arguments, whether the decision `edited` them and the
//! `arguments` the tool will get): every attribute is required, so a policy reads
//! `context.by_starter` without a `has` test. The two argument records, `held` and
//! `arguments`, are the same `Args` type as `call-tool`'s `context.args`: the declared
//! arguments, each optional (`context.arguments has amount && context.arguments.amount
//! > 1000`). Leaving them out of validation is not an option Cedar offers (closed
//! records), and typing them alike means one `[policy.args]` serves both.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// The namespace of every Warden entity type and action.
pub const SCHEMA_NAMESPACE: &str = "Warden";

/// The type of one declared argument (`[policy.args]`), as Cedar names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArgType {
    /// A whole number (a JSON number without a fractional part).
    Long,
    /// A string.
    String,
    /// `true` or `false`.
    Bool,
    /// A JSON array of whole numbers.
    #[serde(rename = "Set<Long>")]
    SetOfLong,
    /// A JSON array of strings.
    #[serde(rename = "Set<String>")]
    SetOfString,
}

impl ArgType {
    /// The Cedar type.
    pub fn as_cedar(self) -> &'static str {
        match self {
            ArgType::Long => "Long",
            ArgType::String => "String",
            ArgType::Bool => "Bool",
            ArgType::SetOfLong => "Set<Long>",
            ArgType::SetOfString => "Set<String>",
        }
    }
}

/// The schema, in Cedar's schema syntax, with `args` holding the `declared` arguments.
pub fn schema_text(declared: &BTreeMap<String, ArgType>) -> String {
    let mut args = String::new();
    for (name, ty) in declared {
        let _ = write!(args, "\n    \"{name}\"?: {},", ty.as_cedar());
    }
    if !args.is_empty() {
        args.push_str("\n  ");
    }
    SCHEMA_TEMPLATE.replace("{ARGS}", &args)
}

const SCHEMA_TEMPLATE: &str = r#"// Warden's access-policy schema (`warden policy schema`).
namespace Warden {
  // A role of API tokens (`[[tokens]] roles` in warden.toml): the built-in admin,
  // caller and auditor, and every `[roles.NAME]`.
  entity Role;

  // Principals. `user:NAME` and other names are Users, `token:NAME` Tokens,
  // `agent:NAME` Agents (acting for the principal that started the run, with its roles).
  entity User in [Role];
  entity Token in [Role];
  entity Agent in [Role] {
    "on_behalf_of"?: String,
  };

  // Resources. A Tool's id is "plugin/tool"; it is in its Plugin.
  entity Plugin;
  type Annotations = {
    "read_only": Bool,
    "destructive": Bool,
    "idempotent": Bool,
    "open_world": Bool,
  };
  // "signer": the [trust.keys] or [trust.identities] name whose verified signature covers the plugin's
  // component (absent when unsigned): `resource has signer && resource.signer == "acme"`.
  entity Tool in [Plugin] {
    "plugin": String,
    "name": String,
    "annotations": Annotations,
    "signer"?: String,
  };
  entity Route;
  // The server itself: Warden::Server::"warden".
  entity Server;

  // The call's arguments declared in warden.toml [policy.args]; each optional.
  type Args = {{ARGS}};

  action "call-tool" appliesTo {
    principal: [User, Token, Agent],
    resource: [Tool],
    context: { "args": Args },
  };
  action "start-run" appliesTo {
    principal: [User, Token, Agent],
    resource: [Agent],
    context: { "args": Args },
  };
  action "use-model" appliesTo {
    principal: [User, Token, Agent],
    resource: [Route],
  };
  // Deciding on the approvals queue (on the held Tool, on the asking Agent) and
  // cancelling another principal's run (on its Agent). `kind`: "tool" (a held call),
  // "question" (an agent's question) or "run" (a cancel). `decision`: "approve",
  // "reject" or "cancel". `starter`: the principal that started the run;
  // `by_starter`: the one deciding is that starter (the roles' permits refuse a
  // starter's approval of its own held call: four eyes). `tool`: the held tool
  // ("plugin/tool", "" for a question or a run). `held`: the held call's arguments;
  // `edited`: the decision replaces them; `arguments`: what the tool will be called
  // with (the edit, else the held ones). `held` and `arguments` are typed by
  // [policy.args], as `context.args` of call-tool is.
  action "decide-approval" appliesTo {
    principal: [User, Token, Agent],
    resource: [Server, Tool, Agent],
    context: {
      "kind": String,
      "approval": String,
      "run": String,
      "agent": String,
      "decision": String,
      "starter": String,
      "by_starter": Bool,
      "tool": String,
      "held": Args,
      "edited": Bool,
      "arguments": Args,
    },
  };
  action "manage-plugins", "manage-grants", "read-audit", "read-metrics" appliesTo {
    principal: [User, Token, Agent],
    resource: [Server],
  };
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_parses_with_and_without_declared_arguments() {
        for declared in [
            BTreeMap::new(),
            BTreeMap::from([
                ("amount".to_string(), ArgType::Long),
                ("tags".to_string(), ArgType::SetOfString),
            ]),
        ] {
            let text = schema_text(&declared);
            let (schema, warnings) = cedar_policy::Schema::from_cedarschema_str(&text)
                .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
            assert_eq!(warnings.count(), 0);
            assert_eq!(schema.actions().count(), 8);
        }
    }
}
