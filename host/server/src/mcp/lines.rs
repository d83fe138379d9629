//! The stdio transport of `warden mcp`: newline-delimited JSON-RPC, as rmcp's
//! `AsyncRwTransport` speaks it, with `tools/call` decoded directly.
//!
//! rmcp decodes every incoming message through one `serde` enum that is untagged and
//! flattened: the message is buffered as generic content and walked once per variant
//! tried. For `tools/call`, the request that matters for speed, that was a tenth of
//! `warden mcp`'s serving thread. Here a line whose members are exactly those of a
//! plain `tools/call` (`jsonrpc`, `id`, `method`, `params` with `name` and
//! `arguments`) is decoded into that request at once; anything else (another method,
//! `_meta`, a member more, a duplicate) goes through rmcp's own decoding
//! (`JsonRpcMessageCodec`), so it is read exactly as rmcp reads it.
//!
//! The rest is rmcp's transport's behaviour, kept: a line longer than
//! [`MAX_LINE`] is dropped and the connection stays; a blank line and a trailing `\r`
//! or leading byte order mark are ignored; input that is not JSON is ignored; JSON
//! that is not a message is answered `Invalid request`; a notification outside MCP is
//! ignored; a read cancelled part way keeps its bytes for the next one. Sending is
//! rmcp's own (`AsyncRwTransport::send`).

use rmcp::RoleServer;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientRequest, ErrorData, JsonRpcMessage,
    JsonRpcRequest,
};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::transport::async_rw::{AsyncRwTransport, JsonRpcMessageCodec, JsonRpcMessageCodecError};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, BufReader};
use tokio_util::codec::Decoder as _;

use super::plain::{NoMeta, PlainCall};

/// The longest line read, as rmcp's transport bounds it (16 MiB).
pub(super) const MAX_LINE: usize = rmcp::transport::async_rw::DEFAULT_MAX_LINE_LENGTH;

/// `line` as a plain `tools/call`, if it is one.
fn plain_call(line: &[u8]) -> Option<RxJsonRpcMessage<RoleServer>> {
    let call: PlainCall<NoMeta> = serde_json::from_slice(line).ok()?;
    if call.method != "tools/call" {
        return None;
    }
    let mut params = CallToolRequestParams::new(call.params.name);
    if let Some(arguments) = call.params.arguments {
        params = params.with_arguments(arguments);
    }
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
    let mut message = JsonRpcRequest::new(call.id, request);
    message.jsonrpc = call.jsonrpc;
    Some(JsonRpcMessage::Request(message))
}

/// What one line is.
#[expect(
    clippy::large_enum_variant,
    reason = "lives on the stack for a moment and is moved out at once; a box would add an allocation a message"
)]
enum Decoded {
    Message(RxJsonRpcMessage<RoleServer>),
    /// Nothing to do: not JSON, or a notification rmcp ignores.
    Ignored,
    /// JSON that is not a message: answered `Invalid request`.
    Invalid,
}

fn decode(line: &[u8]) -> Decoded {
    let bare = line.strip_suffix(b"\n").unwrap_or(line);
    let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
    if bare.is_empty() {
        return Decoded::Ignored;
    }
    if let Some(message) = plain_call(bare) {
        return Decoded::Message(message);
    }
    // rmcp's own decoding of a line: its byte order mark, its compatibility with
    // notifications from outside MCP (`Ok(None)`: ignored).
    let mut whole = bytes::BytesMut::from(bare);
    whole.extend_from_slice(b"\n");
    match JsonRpcMessageCodec::<RxJsonRpcMessage<RoleServer>>::default().decode(&mut whole) {
        Ok(Some(message)) => Decoded::Message(message),
        Ok(None) => Decoded::Ignored,
        Err(JsonRpcMessageCodecError::Serde(err)) => match err.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                tracing::debug!("ignoring input that is not JSON: {err}");
                Decoded::Ignored
            }
            serde_json::error::Category::Data | serde_json::error::Category::Io => {
                tracing::debug!("a message that is not JSON-RPC: {err}");
                Decoded::Invalid
            }
        },
        Err(err) => {
            tracing::debug!("ignoring a line rmcp cannot read: {err}");
            Decoded::Ignored
        }
    }
}

/// Newline-delimited JSON-RPC over `read` and `write`.
pub(super) struct Lines<R, W: AsyncWrite> {
    read: BufReader<R>,
    /// The line read so far; kept when a read is cancelled part way.
    line: Vec<u8>,
    max_line: usize,
    /// Dropping the rest of a line that was too long.
    discarding: bool,
    send: AsyncRwTransport<RoleServer, tokio::io::Empty, W>,
}

impl<R, W> Lines<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    pub(super) fn new(read: R, write: W) -> Self {
        Self::with_max_line(read, write, MAX_LINE)
    }

    fn with_max_line(read: R, write: W, max_line: usize) -> Self {
        Self {
            read: BufReader::new(read),
            line: Vec::new(),
            max_line,
            discarding: false,
            send: AsyncRwTransport::new(tokio::io::empty(), write),
        }
    }

    /// The next whole line into `self.line`; false at the end of input or on an
    /// error. A line past `max_line` is dropped (logged), and reading goes on.
    /// Cancellation-safe: `fill_buf` takes nothing, and what it gave is copied and
    /// consumed with no await between.
    async fn next_line(&mut self) -> bool {
        loop {
            let (taken, whole) = {
                let available = match self.read.fill_buf().await {
                    Ok(available) => available,
                    Err(err) => {
                        tracing::error!("reading stdin: {err}");
                        return false;
                    }
                };
                if available.is_empty() {
                    return false;
                }
                let newline = available.iter().position(|&b| b == b'\n');
                let taken = newline.map_or(available.len(), |at| at + 1);
                if !self.discarding {
                    if self.line.len().saturating_add(taken) > self.max_line {
                        self.line.clear();
                        self.discarding = true;
                        tracing::error!(
                            max_line = self.max_line,
                            "a message longer than the longest line read; dropped"
                        );
                    } else {
                        self.line.extend_from_slice(&available[..taken]);
                    }
                }
                (taken, newline.is_some())
            };
            self.read.consume(taken);
            if whole {
                if std::mem::take(&mut self.discarding) {
                    continue;
                }
                return true;
            }
        }
    }
}

impl<R, W> Transport<RoleServer> for Lines<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.send.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            if !self.next_line().await {
                return None;
            }
            let decoded = decode(&self.line);
            self.line.clear();
            match decoded {
                Decoded::Message(message) => return Some(message),
                Decoded::Ignored => {}
                Decoded::Invalid => {
                    // Sent by a task of its own: a `receive` cancelled meanwhile
                    // neither loses nor repeats it.
                    let answer = self.send.send(TxJsonRpcMessage::<RoleServer>::error(
                        ErrorData::invalid_request("Invalid request", None),
                        None,
                    ));
                    tokio::spawn(async move {
                        if let Err(err) = answer.await {
                            tracing::debug!("answering an invalid request: {err}");
                        }
                    });
                }
            }
        }
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.send.close()
    }
}

#[cfg(test)]
mod tests;
