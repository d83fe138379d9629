//! Where the MCP server gets its plugins, and who may call what: [`ToolSource`].
//!
//! The server asks the source on every `tools/list` and `tools/call`, so a source that
//! changes (a registry with hot reload) is seen at once; it then calls
//! [`Mcp::tools_changed`](super::Mcp::tools_changed) so clients list again.

use std::sync::Arc;

use crate::error::ServeError;
use warden_runtime::error::Chain;
use warden_runtime::home::Home;
use warden_runtime::{Plugin, Runtime};

/// The plugins an MCP server offers, and the decision who may call which tool.
pub trait ToolSource: Send + Sync + 'static {
    /// Every plugin to offer, in the order its tools are listed.
    fn plugins(&self) -> Vec<Arc<Plugin>>;

    /// The plugin named `name`, if it is offered.
    fn plugin(&self, name: &str) -> Option<Arc<Plugin>> {
        self.plugins().into_iter().find(|p| &*p.name == name)
    }

    /// Whether `principal` may see and call `tool` of `plugin`. The default allows
    /// everything: right for `warden mcp`, where the principal is the local user who
    /// started the server; a server for remote principals overrides it.
    fn allowed(&self, principal: &str, plugin: &str, tool: &str) -> bool {
        let _ = (principal, plugin, tool);
        true
    }
}

/// A fixed list of plugins, everyone allowed: what `warden mcp` serves.
pub struct FixedTools {
    plugins: Vec<Arc<Plugin>>,
}

impl FixedTools {
    /// These plugins, in this order.
    pub fn new(plugins: Vec<Arc<Plugin>>) -> Self {
        Self { plugins }
    }

    /// How many plugins there are.
    pub fn plugin_count(&self) -> usize {
        self.plugins.len()
    }

    /// Every plugin installed in `home`, each with its grant, loaded into `runtime`
    /// through the home's compile cache. A plugin that fails to load is left out with a
    /// warning on stderr (the log), so one broken plugin does not take the others down.
    pub fn load_home(home: &Home, runtime: &Runtime) -> Result<Self, ServeError> {
        let cache = home.cache(runtime.engine())?;
        let mut plugins = Vec::new();
        for name in home.names()? {
            let loaded = match home.read(&name) {
                Ok(installed) => installed
                    .load(runtime, Some(&cache))
                    .map_err(|err| Chain(&err).to_string()),
                Err(err) => Err(Chain(&err).to_string()),
            };
            match loaded {
                Ok(plugin) => {
                    if let Some(notice) = &plugin.notice {
                        tracing::warn!(plugin = %name, "{notice}");
                    }
                    plugins.push(Arc::new(plugin));
                }
                Err(err) => {
                    tracing::warn!("loading plugin \"{name}\": {err}; its tools are not offered");
                }
            }
        }
        Ok(Self::new(plugins))
    }
}

impl ToolSource for FixedTools {
    fn plugins(&self) -> Vec<Arc<Plugin>> {
        self.plugins.clone()
    }
}
