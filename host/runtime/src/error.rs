//! What can go wrong when a plugin is loaded or a tool is called, and the error code
//! each failure has; and the errors of the runtime's other parts: [`setup`] (the
//! engine and a call's store), [`cache`] (the compile cache), [`home`] (the home
//! directory), [`docs`] (WIT docs and Warden's WIT packages), [`record`] (the audit
//! records the runtime writes).
//!
//! An error of another Warden crate (the audit log, the config…) is held as a
//! [`BoxError`], with its causes; [`Chain`] shows an error with its causes as the CLI
//! does.

pub mod cache;
pub mod docs;
pub mod home;
pub mod record;
pub mod setup;

use std::fmt;

use serde_json::Value;

use crate::convert::ConvertError;
use crate::denial::Denial;

pub use self::cache::CacheError;
pub use self::docs::{DocsError, WitError};
pub use self::home::HomeError;
pub use self::record::RecordError;
pub use self::setup::SetupError;

/// An error of another crate, with its causes.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `err` and each of its causes, joined by `": "`: the [`Chain`] of an error of any
/// type (an `anyhow::Error` too), as a string.
pub fn chain(err: impl Into<BoxError>) -> String {
    let err = err.into();
    Chain(&*err).to_string()
}

/// Shows an error and each of its causes, joined by `": "` (as the CLI prints them).
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(err) = cause {
            write!(f, ": {err}")?;
            cause = err.source();
        }
        Ok(())
    }
}

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
    /// Anything else (linking the component).
    #[error("plugin \"{name}\"")]
    Other {
        /// The plugin's name.
        name: String,
        /// The cause.
        #[source]
        source: BoxError,
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
    /// The tool's definition changed (or it is new) since an operator accepted the
    /// plugin's tools (the grant's `[tool_definitions]`, [`crate::pins`]); it is
    /// withheld until one accepts it.
    #[error("{reason}")]
    Withheld {
        /// The plugin.
        plugin: String,
        /// The tool.
        tool: String,
        /// Which definition was accepted, which one is there now, what to do.
        reason: String,
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
    /// The access policy holds the call for a person, and the caller asked to hold
    /// it rather than have it refused ([`CallOptions::hold`](crate::CallOptions));
    /// the call did not run.
    #[error("{plugin}/{tool} waits for a person's approval ({})", policies.join(", "))]
    Held {
        /// The plugin.
        plugin: String,
        /// The tool.
        tool: String,
        /// The policies that hold it.
        policies: Vec<String>,
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
        /// `timeout`, `fuel`, `memory`, `output`, `handles` or `http-fields`.
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
    /// A failure of the host itself. Its cause, with the cause's own causes, is part
    /// of the message (which a caller gets whole, as every call failure's), so it is
    /// not also given as the error's source.
    #[error("{plugin}/{tool}: internal error: {}", Chain(&**cause))]
    Internal {
        /// The plugin.
        plugin: String,
        /// The tool.
        tool: String,
        /// The cause.
        cause: BoxError,
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
            CallError::Withheld { .. } => "withheld",
            CallError::Held { .. } => "approval-required",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_shows_each_cause_once() {
        let err = HomeError::File {
            action: "reading",
            path: "/home/plugin.json".into(),
            source: std::io::Error::other("disk full"),
        };
        assert_eq!(err.to_string(), "reading /home/plugin.json");
        assert_eq!(
            Chain(&err).to_string(),
            "reading /home/plugin.json: disk full"
        );
        let audit: BoxError = std::io::Error::other("audit.db is locked").into();
        let step = RecordError::Step(RecordError::Append(audit).into());
        assert_eq!(
            chain(step),
            "the audit log could not record the step's use of host services, so its output is withheld: audit.db is locked"
        );
    }

    #[test]
    fn an_internal_call_error_says_its_causes_in_its_message() {
        let err = CallError::Internal {
            plugin: "text".into(),
            tool: "upper".into(),
            cause: RecordError::Call(std::io::Error::other("disk full").into()).into(),
        };
        let message = "text/upper: internal error: the audit log could not record this call, so its result is withheld: disk full";
        assert_eq!(err.to_string(), message);
        assert!(std::error::Error::source(&err).is_none());
        assert_eq!(Chain(&err).to_string(), message);
    }
}
