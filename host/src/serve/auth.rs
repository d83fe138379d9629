//! Who is calling, and what they may do: bearer tokens (looked up by their SHA-256)
//! mapped to a principal and roles; roles to tool patterns and actions. Deny by
//! default: a token without a role that allows an action cannot do it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::config::{Action, Config, hash_token};

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Who acts, as audit records name it.
    pub principal: String,
    /// The token's name.
    pub token: String,
    /// The token's roles.
    pub roles: Vec<String>,
    tools: Vec<String>,
    actions: BTreeSet<Action>,
}

impl Caller {
    /// True when a role allows `action`.
    pub fn may(&self, action: Action) -> bool {
        self.actions.contains(&action)
    }

    /// True when a role allows calling `plugin/tool`.
    pub fn may_call(&self, plugin: &str, tool: &str) -> bool {
        self.may(Action::CallTool) && self.tools.iter().any(|p| matches(p, plugin, tool))
    }

    /// True when a role allows calling some tool of `plugin`.
    pub fn may_call_some(&self, plugin: &str) -> bool {
        self.may(Action::CallTool)
            && self
                .tools
                .iter()
                .any(|p| p == "*" || p.split_once('/').is_some_and(|(pp, _)| pp == plugin))
    }
}

/// Does `pattern` (`*`, `plugin/*`, `plugin/tool`) match `plugin/tool`?
pub fn matches(pattern: &str, plugin: &str, tool: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.split_once('/') {
        Some((p, "*")) => p == plugin,
        Some((p, t)) => p == plugin && t == tool,
        None => false,
    }
}

/// The token table of a config.
#[derive(Debug, Default)]
pub struct Access {
    by_hash: HashMap<String, Arc<Caller>>,
}

impl Access {
    /// The tokens of `config`, each with the union of its roles.
    pub fn new(config: &Config) -> Self {
        let roles = config.roles();
        let by_hash = config
            .tokens
            .iter()
            .map(|token| {
                let mut tools = Vec::new();
                let mut actions = BTreeSet::new();
                for role in token.roles.iter().filter_map(|r| roles.get(r)) {
                    tools.extend(role.tools.iter().cloned());
                    actions.extend(role.actions.iter().copied());
                }
                let caller = Caller {
                    principal: token.principal(),
                    token: token.name.clone(),
                    roles: token.roles.clone(),
                    tools,
                    actions,
                };
                (token.sha256.to_ascii_lowercase(), Arc::new(caller))
            })
            .collect();
        Self { by_hash }
    }

    /// The caller a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<Arc<Caller>> {
        self.by_hash.get(&hash_token(token)).cloned()
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// True when no token is configured (every request is refused).
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches("*", "a", "b"));
        assert!(matches("a/*", "a", "b"));
        assert!(!matches("a/*", "ab", "b"));
        assert!(matches("a/b", "a", "b"));
        assert!(!matches("a/b", "a", "c"));
    }
}
