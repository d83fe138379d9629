//! The floor of an MCP stdio round trip in Rust on this machine: the same SDK `warden
//! mcp` is built on (`rmcp`), the same transport (stdin and stdout as non-blocking
//! pipes on a one-thread tokio runtime) and the same answer (the sum as text and as
//! `structuredContent`), with `add` computed natively: no sandbox, no grant, no access
//! policy, no audit record. What is left between this row and `warden mcp`'s is
//! Warden's own work.
//!
//! The bench runs itself as this server: [`FLOOR_ENV`] set in a child's environment
//! makes `main` call [`serve`] instead of measuring.

use std::os::fd::AsFd as _;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData as McpError, ServerHandler, ServiceExt as _};
use serde_json::{Value, json};
use tokio::net::unix::pipe;

/// Set (to anything) in the environment of the bench's own child: serve the floor.
pub(crate) const FLOOR_ENV: &str = "MCP_PEER_SERVE_FLOOR";

#[derive(Clone)]
struct Floor;

impl ServerHandler for Floor {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let schema = json!({
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        });
        let Value::Object(schema) = schema else {
            unreachable!("a JSON object")
        };
        Ok(ListToolsResult::with_all_items(vec![Tool::new(
            "add",
            "a + b",
            Arc::new(schema),
        )]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let args = request.arguments.unwrap_or_default();
        let operand = |name: &str| {
            args.get(name).and_then(Value::as_i64).ok_or_else(|| {
                McpError::invalid_params(format!("{name}: an integer is required"), None)
            })
        };
        let sum = json!(operand("a")? + operand("b")?);
        let mut result = CallToolResult::success(vec![ContentBlock::text(sum.to_string())]);
        result.structured_content = Some(sum);
        Ok(result.into())
    }
}

/// Serves [`Floor`] on stdin and stdout (pipes, as the bench starts it) until stdin
/// closes.
pub(crate) fn serve() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let input = std::io::stdin().as_fd().try_clone_to_owned().unwrap();
        let output = std::io::stdout().as_fd().try_clone_to_owned().unwrap();
        let receiver = pipe::Receiver::from_file(std::fs::File::from(input))
            .expect("stdin: a pipe (the bench starts the floor with piped stdio)");
        let sender = pipe::Sender::from_file(std::fs::File::from(output))
            .expect("stdout: a pipe (the bench starts the floor with piped stdio)");
        let service = Floor
            .serve((receiver, sender))
            .await
            .expect("the MCP handshake");
        let _ = service.waiting().await;
    });
}
