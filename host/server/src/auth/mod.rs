//! Who is calling, and what they may do: bearer tokens (looked up by their SHA-256)
//! mapped to a principal and roles, or OAuth 2.1 access tokens of the configured
//! issuers ([`oauth`], their keys in [`jwks`], what clients learn in [`metadata`],
//! the HTTP layer that asks for them in `http`);
//! the access policy ([`warden_policy`], Cedar: the roles of the config translated
//! into permits, plus the policy file) decides each action. Deny by default: what no
//! policy permits, no token can do.

pub(crate) mod http;
pub mod jwks;
pub mod metadata;
pub mod oauth;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use sha2::{Digest, Sha256};
use warden_config::home::{Action, Config};
use warden_policy::{CedarPolicy, Decide, Decision, PolicySource, Principal, Request, Resource};

/// An authenticated caller.
#[derive(Clone)]
pub struct Caller {
    /// Who acts, as audit records name it.
    pub principal: String,
    /// The token's name.
    pub token: String,
    /// The token's roles.
    pub roles: Vec<String>,
    /// For an OAuth access token, its scopes (`None` for a static token).
    pub scopes: Option<Vec<String>>,
    who: Principal,
    policy: Arc<dyn Decide>,
    /// Signed in to the web console: what the handlers do for it is recorded as
    /// `via: "console"`.
    console: bool,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("principal", &self.principal)
            .field("token", &self.token)
            .field("roles", &self.roles)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl Caller {
    /// The caller as the access policy sees it.
    pub fn who(&self) -> &Principal {
        &self.who
    }

    /// The caller as the gate sees it, asking through `via` (the API's handlers, for
    /// a caller signed in to the console, through [`warden_runtime::Via::Console`]).
    pub fn gate(&self, via: warden_runtime::Via) -> warden_runtime::Caller {
        let via = match via {
            warden_runtime::Via::Http if self.console => warden_runtime::Via::Console,
            via => via,
        };
        warden_runtime::Caller::new(self.who.clone(), via).with_token(self.token.clone())
    }

    /// The same caller, signed in to the web console.
    pub fn in_console(&self) -> Self {
        Self {
            console: true,
            ..self.clone()
        }
    }

    /// The policy's decision on `action` on `resource`, with `args` as the context.
    pub fn decide(&self, action: Action, resource: &Resource, args: &Value) -> Decision {
        self.policy.decide(&Request {
            principal: &self.who,
            action,
            resource,
            context: args,
        })
    }

    /// The decision on calling `plugin/tool` with `args`.
    pub fn decide_call(&self, plugin: &str, tool: &str, args: &Value) -> Decision {
        self.decide(Action::CallTool, &Resource::tool(plugin, tool), args)
    }

    /// True when the policy allows `action` on the server (for `use-model`: on any
    /// route, `Warden::Route::"*"`; the gateway decides on the route itself).
    pub fn may(&self, action: Action) -> bool {
        let resource = match action {
            Action::UseModel => Resource::Route { name: "*".into() },
            Action::StartRun => Resource::Agent { name: "*".into() },
            Action::CallTool => Resource::tool("*", "*"),
            _ => Resource::Server,
        };
        self.decide(action, &resource, &Value::Null).is_allow()
    }

    /// True when `plugin/tool` is offered to the caller: the policy does not deny
    /// calling it with no arguments (it allows it, or allows it once approved). The
    /// call itself is decided with its arguments ([`Caller::decide_call`]).
    pub fn may_call(&self, plugin: &str, tool: &str) -> bool {
        self.offers(&Resource::tool(plugin, tool))
    }

    /// True when the tool `resource` is offered to the caller (as [`Caller::may_call`],
    /// with the tool's annotations).
    pub fn offers(&self, resource: &Resource) -> bool {
        let no_args = Value::Object(Default::default());
        !matches!(
            self.decide(Action::CallTool, resource, &no_args),
            Decision::Deny { .. }
        )
    }

    /// True when one of `tools` of `plugin` is offered to the caller.
    pub fn may_call_some<'a>(
        &self,
        plugin: &str,
        tools: impl IntoIterator<Item = &'a str>,
    ) -> bool {
        tools.into_iter().any(|tool| self.may_call(plugin, tool))
    }
}

/// The token table of a config, the OAuth issuers it trusts, and the policy that
/// decides for both.
#[derive(Default)]
pub struct Access {
    /// By the SHA-256 of the token, so a request's token is looked up without an
    /// allocation.
    by_hash: HashMap<[u8; 32], Arc<Caller>>,
    issuers: Arc<oauth::Issuers>,
    policy: Option<Arc<dyn Decide>>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("tokens", &self.by_hash.len())
            .field("issuers", &self.issuers)
            .finish_non_exhaustive()
    }
}

/// Why a bearer token was refused.
#[derive(Clone, Debug)]
pub enum Unknown {
    /// Neither a static token nor an access token of a configured issuer.
    Token,
    /// An access token (a JWT) that one of the issuers' checks refused.
    Access(oauth::Refused),
}

impl Access {
    /// The tokens of `config`, decided by its roles alone (no policy file).
    pub fn new(config: &Config) -> Self {
        let source = PolicySource {
            roles: config.roles(),
            args: config.policy.args.clone(),
            file: None,
        };
        match CedarPolicy::new(&source) {
            Ok(policy) => Self::with_policy(config, Arc::new(policy)),
            Err(err) => {
                // The config's check refuses what would fail here; fail closed anyway.
                tracing::error!("the roles of the config are not a valid policy: {err}");
                Self::default()
            }
        }
    }

    /// The tokens of `config`, decided by `policy`.
    pub fn with_policy(config: &Config, policy: Arc<dyn Decide>) -> Self {
        let by_hash = config
            .tokens
            .iter()
            .filter_map(|token| {
                let principal = token.principal();
                let caller = Caller {
                    who: Principal::new(principal.clone(), token.roles.clone()),
                    principal,
                    token: token.name.clone(),
                    roles: token.roles.clone(),
                    scopes: None,
                    policy: policy.clone(),
                    console: false,
                };
                // The config's check refuses a `sha256` that is not 64 hex digits.
                let digest = hex::decode(&token.sha256)
                    .ok()
                    .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())?;
                Some((digest, Arc::new(caller)))
            })
            .collect();
        Self {
            by_hash,
            issuers: Arc::default(),
            policy: Some(policy),
        }
    }

    /// The same table, accepting the access tokens of `issuers` too.
    pub fn with_issuers(mut self, issuers: Arc<oauth::Issuers>) -> Self {
        self.issuers = issuers;
        self
    }

    /// The OAuth issuers trusted.
    pub fn issuers(&self) -> &Arc<oauth::Issuers> {
        &self.issuers
    }

    /// The caller a static bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<Arc<Caller>> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.by_hash.get(&digest).cloned()
    }

    /// The caller a bearer token belongs to: a static token, else a valid access token
    /// of one of the issuers, as `user:<principal claim>` with the roles its claims
    /// give and the token named `oauth:<issuer>` on the record.
    pub async fn authenticate_bearer(&self, token: &str) -> Result<Arc<Caller>, Unknown> {
        if let Some(caller) = self.authenticate(token) {
            return Ok(caller);
        }
        let Some(policy) = &self.policy else {
            return Err(Unknown::Token);
        };
        if self.issuers.is_empty() || !oauth::looks_like_jwt(token) {
            return Err(Unknown::Token);
        }
        let bearer = self
            .issuers
            .validate(token)
            .await
            .map_err(Unknown::Access)?;
        Ok(Arc::new(Caller {
            who: Principal::new(bearer.principal.clone(), bearer.roles.clone()),
            principal: bearer.principal,
            token: format!("oauth:{}", bearer.issuer),
            roles: bearer.roles,
            scopes: Some(bearer.scopes),
            policy: policy.clone(),
            console: false,
        }))
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// True when no token and no issuer is configured (every request is refused).
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty() && self.issuers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_config::home::hash_token;

    #[test]
    fn roles_decide_through_the_policy() {
        let text = format!(
            "[roles.reader]\ntools = [\"text/*\", \"files/read\"]\nactions = [\"call-tool\"]\n\n[[tokens]]\nname = \"r\"\nsha256 = \"{}\"\nroles = [\"reader\"]\n",
            hash_token("t")
        );
        let config = Config::parse(&text, "w.toml").unwrap();
        let caller = Access::new(&config).authenticate("t").unwrap();
        assert!(caller.may_call("text", "upper"));
        assert!(caller.may_call("files", "read"));
        assert!(!caller.may_call("files", "write"));
        assert!(!caller.may_call("textual", "upper"));
        assert!(caller.may_call_some("files", ["write", "read"]));
        assert!(!caller.may_call_some("files", ["write"]));
        assert!(!caller.may(Action::ReadAudit));
        assert_eq!(
            caller
                .decide_call("files", "write", &Value::Null)
                .policies(),
            [] as [String; 0]
        );
    }
}
