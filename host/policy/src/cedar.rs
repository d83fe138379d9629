//! The Cedar engine behind [`Decide`]: default deny, forbid wins, and a permit
//! annotated `@approval("required")` turns an allow into [`Decision::RequireApproval`]
//! (if any permit that applies requires approval, approval is required: the stricter
//! rule wins, as forbid does).
//!
//! Each request builds its few entities (the principal with its roles as parents, the
//! resource with its plugin) and the context (`args`: the declared arguments of the
//! call; for `decide-approval`, the approval's starter, tool, arguments and edit), then
//! asks Cedar. Anything that does not fit the schema (an argument of the
//! wrong type) is a deny that says so: the policy fails closed.
//!
//! A decision is a pure function of the request as Cedar sees it (the principal with
//! its roles, the action, the resource and the context built from the call): the same
//! request asked again is answered from a small cache ([`Decisions`]) without building
//! entities or evaluating anything. The cache belongs to one `CedarPolicy`; a policy
//! reloaded is a new one, with an empty cache.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::str::FromStr as _;
use std::sync::Mutex;

use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId,
    PolicySet, RestrictedExpression, Schema,
};
use serde_json::{Map, Value};

use super::load::{PolicyError, PolicySource};
use super::{Action, ArgType, Decide, Decision, Principal, Problem, Request, Resource};

/// The id of the one `Warden::Server` entity.
pub const SERVER_ID: &str = "warden";

/// Decides with Cedar policies. Cheap to share (`Arc`), thread-safe.
pub struct CedarPolicy {
    schema: Schema,
    policies: PolicySet,
    approval: BTreeSet<PolicyId>,
    args: BTreeMap<String, ArgType>,
    authorizer: Authorizer,
    types: Types,
    actions: HashMap<Action, EntityUid>,
    warnings: Vec<Problem>,
    decisions: Decisions,
}

/// Decisions already made, keyed by everything Cedar is given for them.
#[derive(Default)]
struct Decisions(Mutex<HashMap<String, Decision>>);

impl Decisions {
    /// Past this many, the cache starts over (a server sees few distinct requests:
    /// principals × tools × the declared arguments policies read).
    const MAX: usize = 4096;

    fn get(&self, key: &str) -> Option<Decision> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    fn put(&self, key: String, decision: &Decision) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(key, decision.clone());
    }
}

/// The entity type names, parsed once.
struct Types {
    user: EntityTypeName,
    token: EntityTypeName,
    agent: EntityTypeName,
    role: EntityTypeName,
    plugin: EntityTypeName,
    tool: EntityTypeName,
    route: EntityTypeName,
    server: EntityTypeName,
}

fn type_name(name: &str) -> EntityTypeName {
    EntityTypeName::from_str(&format!("{}::{name}", super::SCHEMA_NAMESPACE))
        .expect("a valid entity type name")
}

impl std::fmt::Debug for CedarPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CedarPolicy")
            .field("policies", &self.policy_ids())
            .finish_non_exhaustive()
    }
}

impl CedarPolicy {
    /// Loads and validates `source`; an error lists every problem with its place.
    pub fn new(source: &PolicySource) -> Result<Self, PolicyError> {
        let loaded = source.load()?;
        let action_type = type_name("Action");
        let actions = Action::ALL
            .into_iter()
            .map(|a| {
                let uid = EntityUid::from_type_name_and_id(
                    action_type.clone(),
                    EntityId::new(a.as_str()),
                );
                (a, uid)
            })
            .collect();
        Ok(Self {
            schema: loaded.schema,
            policies: loaded.policies,
            approval: loaded.approval,
            args: source.args.clone(),
            authorizer: Authorizer::new(),
            types: Types {
                user: type_name("User"),
                token: type_name("Token"),
                agent: type_name("Agent"),
                role: type_name("Role"),
                plugin: type_name("Plugin"),
                tool: type_name("Tool"),
                route: type_name("Route"),
                server: type_name("Server"),
            },
            actions,
            warnings: loaded.warnings,
            decisions: Decisions::default(),
        })
    }

    /// The ids of every policy, sorted.
    pub fn policy_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .policies
            .policies()
            .map(|p| p.id().to_string())
            .collect();
        ids.sort();
        ids
    }

    /// What validation warned about (policies that can never apply, …).
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// The Cedar entity of a principal id: `user:NAME` → `Warden::User::"NAME"`,
    /// `token:NAME` → `Token`, `agent:NAME` → `Agent`, anything else (`local:alice`)
    /// → a `User` of that whole name.
    pub fn principal_uid(&self, id: &str) -> EntityUid {
        let (ty, name) = match principal_type(id) {
            ("Token", name) => (&self.types.token, name),
            ("Agent", name) => (&self.types.agent, name),
            (_, name) => (&self.types.user, name),
        };
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(name))
    }

    fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }

    fn principal_entity(&self, principal: &Principal) -> Result<Entity, String> {
        let uid = self.principal_uid(&principal.id);
        let parents: HashSet<EntityUid> = principal
            .roles
            .iter()
            .map(|r| Self::uid(&self.types.role, r))
            .collect();
        let mut attrs = HashMap::new();
        if let Some(on_behalf_of) = &principal.on_behalf_of
            && uid.type_name() == &self.types.agent
        {
            attrs.insert(
                "on_behalf_of".to_string(),
                RestrictedExpression::new_string(on_behalf_of.clone()),
            );
        }
        Entity::new(uid, attrs, parents).map_err(|e| e.to_string())
    }

    /// The resource's entity and the entities it is in.
    fn resource_entities(&self, resource: &Resource) -> Result<(EntityUid, Vec<Entity>), String> {
        Ok(match resource {
            Resource::Tool {
                plugin,
                tool,
                annotations,
                signer,
            } => {
                let uid = Self::uid(&self.types.tool, &format!("{plugin}/{tool}"));
                let parent = Self::uid(&self.types.plugin, plugin);
                let flags = [
                    ("read_only", annotations.read_only),
                    ("destructive", annotations.destructive),
                    ("idempotent", annotations.idempotent),
                    ("open_world", annotations.open_world),
                ]
                .map(|(k, v)| (k.to_string(), RestrictedExpression::new_bool(v)));
                let annotations =
                    RestrictedExpression::new_record(flags).map_err(|e| e.to_string())?;
                let mut attrs = HashMap::from([
                    (
                        "plugin".to_string(),
                        RestrictedExpression::new_string(plugin.clone()),
                    ),
                    (
                        "name".to_string(),
                        RestrictedExpression::new_string(tool.clone()),
                    ),
                    ("annotations".to_string(), annotations),
                ]);
                if let Some(signer) = signer {
                    attrs.insert(
                        "signer".to_string(),
                        RestrictedExpression::new_string(signer.clone()),
                    );
                }
                let tool = Entity::new(uid.clone(), attrs, HashSet::from([parent.clone()]))
                    .map_err(|e| e.to_string())?;
                (
                    uid,
                    vec![tool, Entity::new_no_attrs(parent, HashSet::new())],
                )
            }
            Resource::Agent { name } => {
                let uid = Self::uid(&self.types.agent, name);
                (uid.clone(), vec![Entity::new_no_attrs(uid, HashSet::new())])
            }
            Resource::Route { name } => {
                let uid = Self::uid(&self.types.route, name);
                (uid.clone(), vec![Entity::new_no_attrs(uid, HashSet::new())])
            }
            Resource::Server => {
                let uid = Self::uid(&self.types.server, SERVER_ID);
                (uid.clone(), vec![Entity::new_no_attrs(uid, HashSet::new())])
            }
        })
    }

    /// The declared arguments `args` has (see [`fit`]), as `context.args` holds them.
    fn declared(&self, args: &Value) -> Result<Map<String, Value>, String> {
        let mut declared = Map::new();
        if let Value::Object(given) = args {
            for (name, ty) in &self.args {
                if let Some(value) = given.get(name)
                    && let Some(value) = fit(name, *ty, value)?
                {
                    declared.insert(name.clone(), value);
                }
            }
        }
        Ok(declared)
    }

    /// The context as JSON: for `call-tool` and `start-run`, `args`, the declared
    /// arguments the call has; for `decide-approval`, [`approval_context`]; none for
    /// the others.
    fn context_json(&self, request: &Request<'_>) -> Result<Option<Value>, String> {
        Ok(match request.action {
            Action::CallTool | Action::StartRun => {
                Some(serde_json::json!({ "args": self.declared(request.context)? }))
            }
            Action::DecideApproval => Some(self.approval_context(request)?),
            _ => None,
        })
    }

    /// The Cedar context of `json` ([`CedarPolicy::context_json`]).
    fn context(
        &self,
        request: &Request<'_>,
        uid: &EntityUid,
        json: Option<Value>,
    ) -> Result<Context, String> {
        let Some(json) = json else {
            return Ok(Context::empty());
        };
        Context::from_json_value(json, Some((&self.schema, uid))).map_err(|e| {
            match request.action {
                Action::DecideApproval => {
                    format!("the approval's arguments do not fit [policy.args]: {e}")
                }
                _ => format!("the call's arguments do not fit [policy.args]: {e}"),
            }
        })
    }

    /// `decide-approval`'s context from the request's JSON (see [`ApprovalContext`]):
    /// every attribute, absent ones empty. `by_starter` is true when the request says
    /// so or when the principal is the `starter` (or an agent acting for it): a caller
    /// that leaves it out does not get past the four-eyes rule.
    ///
    /// [`ApprovalContext`]: super::ApprovalContext
    fn approval_context(&self, request: &Request<'_>) -> Result<Value, String> {
        let given = request.context;
        let text = |key: &str| given.get(key).and_then(Value::as_str).unwrap_or("");
        let flag = |key: &str| given.get(key).and_then(Value::as_bool).unwrap_or(false);
        let starter = text("starter");
        let principal = request.principal;
        let by_starter = flag("by_starter")
            || (!starter.is_empty()
                && (principal.id == starter || principal.on_behalf_of.as_deref() == Some(starter)));
        let held = given.get("held").unwrap_or(&Value::Null);
        let arguments = match given.get("arguments") {
            Some(Value::Null) | None => held,
            Some(arguments) => arguments,
        };
        Ok(serde_json::json!({
            "kind": text("kind"),
            "approval": text("approval"),
            "run": text("run"),
            "agent": text("agent"),
            "decision": text("decision"),
            "starter": starter,
            "by_starter": by_starter,
            "tool": text("tool"),
            "held": self.declared(held)?,
            "edited": flag("edited"),
            "arguments": self.declared(arguments)?,
        }))
    }

    fn ask(&self, request: &Request<'_>) -> Result<Decision, String> {
        let context = self.context_json(request)?;
        // Everything Cedar is given, as one key.
        let key = serde_json::to_string(&(
            request.principal,
            request.action,
            request.resource,
            &context,
        ))
        .map_err(|e| e.to_string())?;
        if let Some(decision) = self.decisions.get(&key) {
            return Ok(decision);
        }
        let (decision, cacheable) = self.evaluate(request, context)?;
        if cacheable {
            self.decisions.put(key, &decision);
        }
        Ok(decision)
    }

    /// Asks Cedar: the decision, and whether it may be cached (not if a policy failed
    /// to evaluate: that is warned of each time).
    fn evaluate(
        &self,
        request: &Request<'_>,
        context: Option<Value>,
    ) -> Result<(Decision, bool), String> {
        let action = &self.actions[&request.action];
        let principal = self.principal_entity(request.principal)?;
        let principal_uid = principal.uid();
        let (resource_uid, mut entities) = self.resource_entities(request.resource)?;
        entities.retain(|e| e.uid() != principal_uid);
        entities.push(principal);
        let entities = Entities::from_entities(entities, None).map_err(|e| e.to_string())?;
        let context = self.context(request, action, context)?;
        let cedar = cedar_policy::Request::new(
            principal_uid,
            action.clone(),
            resource_uid,
            context,
            Some(&self.schema),
        )
        .map_err(|e| e.to_string())?;
        let response = self
            .authorizer
            .is_authorized(&cedar, &self.policies, &entities);
        let mut policies: Vec<String> = response
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect();
        policies.sort();
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect();
        for error in &errors {
            tracing::warn!(principal = %request.principal.id, action = %request.action, "access policy: {error}");
        }
        let decision = match response.decision() {
            cedar_policy::Decision::Allow => {
                let approval = response
                    .diagnostics()
                    .reason()
                    .any(|id| self.approval.contains(id));
                if approval {
                    Decision::RequireApproval { policies }
                } else {
                    Decision::Allow { policies }
                }
            }
            cedar_policy::Decision::Deny => {
                let what = format!(
                    "{} to {} {}",
                    request.principal.id, request.action, request.resource
                );
                let mut reason = if policies.is_empty() {
                    format!("no policy permits {what}")
                } else {
                    format!("{what} is forbidden by {}", policies.join(", "))
                };
                if !errors.is_empty() {
                    reason.push_str(&format!(
                        " ({} could not be evaluated: {})",
                        if errors.len() == 1 {
                            "a policy"
                        } else {
                            "policies"
                        },
                        errors.join("; ")
                    ));
                }
                Decision::Deny { policies, reason }
            }
        };
        Ok((decision, errors.is_empty()))
    }
}

impl Decide for CedarPolicy {
    fn decide(&self, request: &Request<'_>) -> Decision {
        self.ask(request).unwrap_or_else(|error| Decision::Deny {
            policies: Vec::new(),
            reason: format!(
                "{} may not {} {}: {error}",
                request.principal.id, request.action, request.resource
            ),
        })
    }
}

/// The entity type (in `Warden`) and id of a principal id (see
/// [`CedarPolicy::principal_uid`]).
fn principal_type(id: &str) -> (&'static str, &str) {
    if let Some(name) = id.strip_prefix("user:") {
        ("User", name)
    } else if let Some(name) = id.strip_prefix("token:") {
        ("Token", name)
    } else if let Some(name) = id.strip_prefix("agent:") {
        ("Agent", name)
    } else {
        ("User", id)
    }
}

/// The principal id `id` as a Cedar entity, as policies write it:
/// `Warden::Token::"admin"` for `token:admin`, `Warden::User::"local:alice"` for
/// `local:alice`.
pub fn principal_entity(id: &str) -> String {
    let (ty, name) = principal_type(id);
    format!(
        "{}::{ty}::\"{}\"",
        super::SCHEMA_NAMESPACE,
        super::roles::escape(name)
    )
}

/// An argument as policies see it, for its declared type.
///
/// - A value of the declared kind is given (a whole number written `150.0` is the
///   `Long` 150).
/// - A number with a fraction where a `Long` is declared is refused: a tool taking a
///   float would accept it, and leaving it out would let `amount > 1000` miss 1000.5.
/// - A value of another kind (a string where a `Long` is declared) is left out: the
///   declaration is for every tool, and a tool whose parameter of that name has
///   another type is not what the policies on it are about (a tool whose parameter
///   has the declared type refuses such a value itself).
fn fit(name: &str, ty: ArgType, value: &Value) -> Result<Option<Value>, String> {
    let long = |v: &Value| -> Result<Option<Value>, String> {
        match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Some(v.clone())),
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(Value::from(f as i64))),
                _ => Err(format!(
                    "argument {name} = {n} is not a whole number, and [policy.args] declares it Long; policies cannot judge it, so the call is refused (declare a whole-number parameter, or leave {name} out of [policy.args])"
                )),
            },
            _ => Ok(None),
        }
    };
    let kind = |ok: bool| Ok(ok.then(|| value.clone()));
    match (ty, value) {
        (ArgType::Long, v) => long(v),
        (ArgType::String, v) => kind(v.is_string()),
        (ArgType::Bool, v) => kind(v.is_boolean()),
        (ArgType::SetOfString, Value::Array(items)) => kind(items.iter().all(Value::is_string)),
        (ArgType::SetOfLong, Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match long(item)? {
                    Some(v) => out.push(v),
                    None => return Ok(None),
                }
            }
            Ok(Some(Value::Array(out)))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PolicyFile, builtin_roles};

    fn policy() -> CedarPolicy {
        CedarPolicy::new(&PolicySource {
            roles: builtin_roles(),
            args: BTreeMap::from([("amount".to_string(), ArgType::Long)]),
            file: Some(PolicyFile {
                path: "policy.cedar".into(),
                text: r#"@id("big-refunds")
forbid (principal, action == Warden::Action::"call-tool", resource)
when { context.args has amount && context.args.amount > 100 };"#
                    .into(),
            }),
        })
        .unwrap()
    }

    #[test]
    fn a_repeated_request_is_answered_from_the_cache_and_its_inputs_are_the_key() {
        let policy = policy();
        let admin = Principal::new("user:ann", vec!["admin".into()]);
        let nobody = Principal::new("user:bob", Vec::new());
        let tool = Resource::tool("shop", "refund");
        let ask = |principal: &Principal, amount: i64| {
            let args = serde_json::json!({ "amount": amount, "note": "ignored" });
            policy.decide(&Request {
                principal,
                action: Action::CallTool,
                resource: &tool,
                context: &args,
            })
        };
        for _ in 0..3 {
            assert!(ask(&admin, 50).is_allow());
            let big = ask(&admin, 500);
            assert_eq!(big.policies(), ["big-refunds"], "{big:?}");
            assert!(!big.is_allow());
            assert!(!ask(&nobody, 50).is_allow());
        }
        // One entry per distinct request: the undeclared `note` is not part of it.
        assert_eq!(policy.decisions.0.lock().unwrap().len(), 3);
    }
}
