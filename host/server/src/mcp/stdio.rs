//! stdin and stdout as the MCP transport of `warden mcp`.
//!
//! An agent host starts `warden mcp` with pipes for stdin and stdout. Those are read
//! and written through the async runtime's own event loop (tokio's `unix::pipe`),
//! not as `tokio::io::stdin`/`stdout` do, with a blocking thread per read and write:
//! two thread hand-offs fewer per message, which is most of a round trip's cost on a
//! small machine. Anything else (a terminal, a file) falls back to those. Either way
//! the messages are read and written by [`super::lines::Lines`].

use std::fs::File;
use std::os::fd::AsFd;

use tokio::net::unix::pipe;

/// stdin and stdout as non-blocking pipes, if both are pipes.
pub(super) fn pipes() -> Option<(pipe::Receiver, pipe::Sender)> {
    let input = File::from(std::io::stdin().as_fd().try_clone_to_owned().ok()?);
    let output = File::from(std::io::stdout().as_fd().try_clone_to_owned().ok()?);
    // Both or neither: `from_file` checks that each is a FIFO before making it
    // non-blocking.
    if !is_fifo(&input) || !is_fifo(&output) {
        return None;
    }
    let receiver = pipe::Receiver::from_file(input).ok()?;
    let sender = pipe::Sender::from_file(output).ok()?;
    Some((receiver, sender))
}

fn is_fifo(file: &File) -> bool {
    use std::os::unix::fs::FileTypeExt as _;
    file.metadata().is_ok_and(|m| m.file_type().is_fifo())
}
