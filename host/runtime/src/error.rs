//! What can go wrong when a plugin is loaded or a tool is called, and the error code
//! each failure has.

use serde_json::Value;

use crate::convert::ConvertError;
use crate::denial::Denial;

/// A plugin that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a WebAssembly component.
    #[error("plugin \"{name}\": {reason}")]
    Invalid {
        /// The plugin's name.
        name: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// Anything else (I/O, the compile cache).
    #[error("plugin \"{name}\": {source:#}")]
    Other {
        /// The plugin's name.
        name: String,
        /// The cause.
        source: anyhow::Error,
    },
}

/// A tool call that did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No such tool in the plugin.
    #[error("plugin \"{plugin}\" has no tool \"{tool}\" (its tools: {})", available.join(", "))]
    UnknownTool {
        /// The plugin.
        plugin: String,
        /// The tool asked for.
        tool: String,
        /// The plugin's tools.
        available: Vec<String>,
    },
    /// The arguments do not fit the tool's schema.
    #[error("{plugin}/{tool}: {source}")]
    InvalidArguments {
        /// The plugin.
        plugin: String,
        /// The tool.
        tool: String,
        /// Which argument, and what was wrong with it.
        source: ConvertError,
    },
    /// The access policy refused the call (a deny, or an approval a direct call
    /// cannot wait for); the call did not run.
    #[error("{}", refusal.message)]
    Refused {
        /// The plugin.
        plugin: String,
        /// The tool.
        tool: String,
        /// The decision, and what the caller hears.
        refusal: Box<crate::gate::Refusal>,
    },
    /// The tool returned its `err` value.
    #[error("{plugin}/{tool} failed: {}", render(error))]
    ToolError {
        /// The plugin.
        plugin: String,
        /// The tool.
        tool: String,
        /// The tool's error payload.
        error: Value,
    },
    /// The host refused a capability the tool used.
    #[error("{plugin}/{tool}: {}", denials.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Denied {
        /// The plugin.
        plugin: String,
        /// The tool.
        tool: String,
        /// What was refused.
        denials: Vec<Denial>,
        /// The tool's own error, if it returned one after the denial.
        tool_error: Option<Value>,
    },
    /// The guest trapped (a panic, `unreachable`, stack overflow, a host import trap).
    #[error("{plugin}/{tool} trapped: {message}{}", if stderr.is_empty() { String::new() } else { format!("\nguest stderr:\n{stderr}") })]
    Trap {
        /// The plugin.
        plugin: String,
        /// The tool.
        tool: String,
        /// The trap.
        message: String,
        /// The end of what the guest wrote to stderr (a panic message, say).
        stderr: String,
    },
    /// A limit of the plugin was hit.
    #[error("{plugin}/{tool}: {limit} limit hit: {detail}")]
    Limit {
        /// The plugin.
        plugin: String,
        /// The tool.
        tool: String,
        /// `timeout`, `memory` or `output`.
        limit: &'static str,
        /// The limit and what was used.
        detail: String,
    },
    /// The caller cancelled the call (or went away) before it finished; its instance
    /// was stopped.
    #[error("{plugin}/{tool}: cancelled by the caller after {elapsed_ms} ms; the call was stopped")]
    Cancelled {
        /// The plugin.
        plugin: String,
        /// The tool.
        tool: String,
        /// How long it had run.
        elapsed_ms: u64,
    },
    /// A failure of the host itself.
    #[error("{plugin}/{tool}: internal error: {source:#}")]
    Internal {
        /// The plugin.
        plugin: String,
        /// The tool.
        tool: String,
        /// The cause.
        source: anyhow::Error,
    },
}

fn render(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl CallError {
    /// A stable, machine-readable code for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            CallError::UnknownTool { .. } => "unknown-tool",
            CallError::Refused { refusal, .. } => refusal.code,
            CallError::InvalidArguments { .. } => "invalid-arguments",
            CallError::ToolError { .. } => "tool-error",
            CallError::Denied { .. } => "denied",
            CallError::Trap { .. } => "trap",
            CallError::Limit { .. } => "limit",
            CallError::Cancelled { .. } => "cancelled",
            CallError::Internal { .. } => "internal",
        }
    }

    /// The failure as JSON: `{"code": …, "message": …}` plus the tool's payload or the
    /// denials where there are any.
    pub fn to_json(&self) -> Value {
        let mut out = serde_json::json!({ "code": self.code(), "message": self.to_string() });
        match self {
            CallError::ToolError { error, .. } => out["error"] = error.clone(),
            CallError::Refused { refusal, .. } => {
                out["policies"] = serde_json::json!(refusal.decision.policies());
            }
            CallError::Denied {
                denials,
                tool_error,
                ..
            } => {
                out["denials"] = serde_json::to_value(denials).unwrap_or_default();
                if let Some(e) = tool_error {
                    out["error"] = e.clone();
                }
            }
            _ => {}
        }
        out
    }
}
