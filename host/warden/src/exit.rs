//! Exit codes of the `warden` CLI (documented in the README), and the code of each
//! call failure.

use warden_runtime::CallError;

/// Success.
pub const OK: i32 = 0;
/// The tool failed: its `err` value, a trap, a limit hit, or a host failure.
pub const TOOL_FAILED: i32 = 1;
/// Bad usage or input: unknown plugin or tool, arguments that do not fit the
/// schema, malformed wasm, a bad file.
pub const USAGE: i32 = 2;
/// A capability the plugin used was denied by the host.
pub const DENIED: i32 = 3;
/// An agent run is parked, waiting for a person (`warden approvals list`).
pub const PARKED: i32 = 4;

/// The exit code of a call that failed with `err`.
pub fn code(err: &CallError) -> i32 {
    match err {
        CallError::UnknownTool { .. } | CallError::InvalidArguments { .. } => USAGE,
        CallError::Denied { .. }
        | CallError::Refused { .. }
        | CallError::Withheld { .. }
        | CallError::Held { .. } => DENIED,
        CallError::ToolError { .. }
        | CallError::Trap { .. }
        | CallError::Limit { .. }
        | CallError::Cancelled { .. }
        | CallError::Internal { .. } => TOOL_FAILED,
    }
}
