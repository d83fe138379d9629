//! `/mcp` on `serve`: the MCP server (Streamable HTTP) over the registry's plugins,
//! behind the same bearer tokens (static, or OAuth access tokens) as the rest of the
//! API. The caller's principal is the token's; the tools a caller sees and may call
//! are those the policy allows it (another is, for it, an unknown tool); a call the
//! policy holds for a person waits on the approvals queue ([`crate::mcp::holds`]);
//! clients hear `tools/list_changed` after every hot reload.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use super::auth::Caller;
use super::metrics::Metrics;
use super::registry::Registry;
use crate::mcp::{Authorizer, Holds, HttpOptions, Mcp, Principal, ToolSource};
use warden_policy::Resource;
use warden_runtime::Plugin;

/// The registry's plugins, as an MCP tool source.
struct RegistryTools(Arc<Registry>);

impl ToolSource for RegistryTools {
    fn plugins(&self) -> Vec<Arc<Plugin>> {
        self.0
            .snapshot()
            .values()
            .map(|served| served.plugin.clone())
            .collect()
    }

    fn plugin(&self, name: &str) -> Option<Arc<Plugin>> {
        self.0.get(name).map(|served| served.plugin.clone())
    }
}

/// The `/mcp` router for `registry`, listening on `addr`.
pub(super) fn router(
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    addr: SocketAddr,
    holds: Holds,
) -> axum::Router {
    let mcp = Mcp::with_holds(
        registry.runtime().clone(),
        Arc::new(RegistryTools(registry.clone())),
        Some(holds),
    );
    // Its calls count in `/metrics` beside the REST route's.
    mcp.count_in(metrics);
    // Tell connected clients when the set of tools changes.
    let mut changes = registry.subscribe();
    let notify = mcp.clone();
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            notify.tools_changed();
        }
    });
    let mut options = HttpOptions::default();
    if addr.ip().is_unspecified() {
        // Listening on every address: any Host may reach it; the token still decides.
        options.allowed_hosts.clear();
    } else {
        options.allowed_hosts.push(addr.ip().to_string());
        options.allowed_hosts.push(addr.to_string());
    }
    mcp.http_router(options)
        .layer(axum::middleware::from_fn(move |request, next| {
            principal_from_token(registry.clone(), request, next)
        }))
}

/// Hands the authenticated caller to the MCP layer: its principal, and the access
/// policy as the decision which tools it sees and may call (each call with its
/// arguments).
async fn principal_from_token(
    registry: Arc<Registry>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(caller) = request.extensions().get::<Arc<Caller>>().cloned() {
        request
            .extensions_mut()
            .insert(Principal(caller.gate(warden_runtime::Via::McpHttp)));
        // The tool as policies see it: with its annotations when it is served.
        let resource = move |plugin: &str, tool: &str| match registry.get(plugin) {
            Some(served) => served.plugin.resource(tool),
            None => Resource::tool(plugin, tool),
        };
        // Which tools it sees; each call is decided, with its arguments, by the gate.
        let listed = move |plugin: &str, tool: &str| caller.offers(&resource(plugin, tool));
        request.extensions_mut().insert(Authorizer::new(listed));
    }
    next.run(request).await
}
