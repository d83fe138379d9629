//! Streamed answers: the provider's server-sent events, read as they arrive and mapped
//! to provider-neutral [`Delta`]s (text, tool-call pieces, the finish reason), with the
//! usage the provider reports at the end (estimated from what streamed when it reports
//! none).
//!
//! The router hands a [`Streaming`] out only once its first delta is in, so every
//! failure before that is retried or fallen back from like any other; what breaks
//! later is the caller's to report (see [`Router::stream`](super::Router::stream)).

use std::collections::VecDeque;
use std::time::Duration;

use super::classify::{Failure, FailureKind};
use super::client::next_chunk;
use super::config::Price;
use super::types::Usage;
use super::wire::{anthropic, openai};

/// Longest line of a stream before it is taken as broken.
const MAX_LINE: usize = 1 << 20;

/// Longest wait for the end of a body after the end of its answer.
const DRAIN_WAIT: Duration = Duration::from_millis(250);

/// A piece of an answer as it streams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delta {
    /// More text.
    Text(String),
    /// A piece of tool call `index` (0, 1… in the answer's order): its first piece
    /// has the id and the name, later ones more of the arguments' JSON text.
    ToolCall {
        /// Which call of the answer.
        index: usize,
        /// The provider's id of the call (first piece only).
        id: Option<String>,
        /// The tool (first piece only).
        name: Option<String>,
        /// More of the arguments, as JSON text to append.
        arguments: String,
    },
    /// Why it stopped: `stop`, `length`, `tool_calls`, `content_filter`.
    Finish(String),
}

/// One server-sent event.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub(crate) event: Option<String>,
    pub(crate) data: String,
}

/// Splits bytes into server-sent events (`event:` and `data:` lines up to a blank
/// line; `\n` or `\r\n`; comments skipped).
#[derive(Default)]
pub(crate) struct Sse {
    buf: Vec<u8>,
    at: usize,
    event: Option<String>,
    data: Option<String>,
}

impl Sse {
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.at > 0 {
            self.buf.drain(..self.at);
            self.at = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes waiting for the end of their line.
    fn pending(&self) -> usize {
        self.buf.len() - self.at
    }

    pub(crate) fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            let rest = &self.buf[self.at..];
            let end = rest.iter().position(|b| *b == b'\n')?;
            let line = String::from_utf8_lossy(&rest[..end]).into_owned();
            self.at += end + 1;
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if line.is_empty() {
                match self.data.take() {
                    Some(data) => {
                        return Some(SseEvent {
                            event: self.event.take(),
                            data,
                        });
                    }
                    None => self.event = None,
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => self.event = Some(value.to_string()),
                "data" => match &mut self.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => self.data = Some(value.to_string()),
                },
                _ => {}
            }
        }
    }
}

/// What reads a provider's events.
pub(crate) enum Decoder {
    Openai,
    Anthropic(anthropic::StreamState),
}

/// Where decoders put what they read.
pub(crate) struct Out<'a> {
    pub(crate) deltas: &'a mut VecDeque<Delta>,
    pub(crate) usage: &'a mut Option<Usage>,
}

impl Decoder {
    /// Reads one event; true when it ends the answer.
    fn event(&mut self, event: &SseEvent, out: Out<'_>) -> Result<bool, Failure> {
        match self {
            Decoder::Openai => openai::stream_event(&event.data, out),
            Decoder::Anthropic(state) => state.event(&event.data, out),
        }
    }
}

/// A streamed answer in progress, from one target.
pub struct Streaming {
    target: String,
    url: String,
    response: reqwest::Response,
    decoder: Decoder,
    sse: Sse,
    pending: VecDeque<Delta>,
    idle: Duration,
    done: bool,
    failed: bool,
    drained: bool,
    usage: Option<Usage>,
    finish: Option<String>,
    output_bytes: usize,
    input_estimate: u64,
    price: Option<Price>,
    pub(crate) failures: Vec<String>,
}

impl std::fmt::Debug for Streaming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streaming")
            .field("target", &self.target)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Streaming {
    pub(crate) fn new(
        target: &str,
        url: String,
        response: reqwest::Response,
        decoder: Decoder,
        idle: Duration,
        input_estimate: u64,
        price: Option<Price>,
    ) -> Self {
        Self {
            target: target.to_string(),
            url,
            response,
            decoder,
            sse: Sse::default(),
            pending: VecDeque::new(),
            idle,
            done: false,
            failed: false,
            drained: false,
            usage: None,
            finish: None,
            output_bytes: 0,
            input_estimate,
            price,
            failures: Vec::new(),
        }
    }

    /// The target answering: `provider/model`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Failed attempts before this target answered (`target: failure`), in order.
    pub fn failures(&self) -> &[String] {
        &self.failures
    }

    /// The finish reason, once it came.
    pub fn finish_reason(&self) -> Option<&str> {
        self.finish.as_deref()
    }

    /// The usage the provider reported; until it does (or if it never does), an
    /// estimate: the prompt at ~4 bytes a token, and what streamed so far likewise.
    pub fn usage(&self) -> Usage {
        self.usage.unwrap_or(Usage {
            input: self.input_estimate,
            output: (self.output_bytes as u64).div_ceil(4),
            cached: 0,
            reasoning: 0,
        })
    }

    /// Whether [`usage`](Self::usage) is the provider's own figure.
    pub fn usage_reported(&self) -> bool {
        self.usage.is_some()
    }

    /// The cost of [`usage`](Self::usage) at the target's price (0 without one).
    pub fn cost(&self) -> f64 {
        self.price.map_or(0.0, |p| p.cost(&self.usage()))
    }

    /// Whether the answer came to its end (and no error ended it).
    pub(crate) fn is_complete(&self) -> bool {
        self.done && !self.failed
    }

    /// Puts a delta back in front (the router reads the first one ahead).
    pub(crate) fn unread(&mut self, delta: Delta) {
        self.output_bytes -= output_bytes(&delta);
        self.pending.push_front(delta);
    }

    /// The next delta; `None` once the answer is complete. An error ends the stream:
    /// the connection broke or went quiet for the provider's timeout, the provider
    /// sent an error event or something unreadable, or the stream stopped before the
    /// answer did.
    pub async fn next(&mut self) -> Option<Result<Delta, Failure>> {
        loop {
            if let Some(delta) = self.pending.pop_front() {
                self.output_bytes += output_bytes(&delta);
                if let Delta::Finish(reason) = &delta {
                    self.finish = Some(reason.clone());
                }
                return Some(Ok(delta));
            }
            if self.done {
                if !self.drained {
                    self.drained = true;
                    self.drain().await;
                }
                return None;
            }
            if let Some(event) = self.sse.next_event() {
                let out = Out {
                    deltas: &mut self.pending,
                    usage: &mut self.usage,
                };
                match self.decoder.event(&event, out) {
                    Ok(done) => self.done = done,
                    Err(failure) => return Some(Err(self.fail(failure))),
                }
                continue;
            }
            if self.sse.pending() > MAX_LINE {
                let failure = Failure::new(
                    FailureKind::MalformedResponse,
                    format!("{}: a stream line longer than {MAX_LINE} bytes", self.url),
                );
                return Some(Err(self.fail(failure)));
            }
            match next_chunk(&self.url, &mut self.response, self.idle).await {
                Ok(Some(bytes)) => self.sse.push(&bytes),
                Ok(None) => {
                    self.done = true;
                    let finished = self.finish.is_some()
                        || self.pending.iter().any(|d| matches!(d, Delta::Finish(_)));
                    if !finished {
                        let failure = Failure::new(
                            FailureKind::Connect,
                            format!("{}: the stream ended before the answer did", self.url),
                        );
                        return Some(Err(self.fail(failure)));
                    }
                }
                Err(failure) => return Some(Err(self.fail(failure))),
            }
        }
    }

    /// Reads what is left of the body after the answer's end (the chunked body's
    /// last chunk, usually), so its connection goes back to the pool for the next
    /// call. A body that goes on past [`MAX_LINE`] bytes or [`DRAIN_WAIT`] is left
    /// (and its connection closed).
    async fn drain(&mut self) {
        let mut left = MAX_LINE;
        let read = async {
            while let Ok(Some(bytes)) = next_chunk(&self.url, &mut self.response, self.idle).await {
                left = left.saturating_sub(bytes.len());
                if left == 0 {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_WAIT, read).await;
    }

    fn fail(&mut self, failure: Failure) -> Failure {
        self.failed = true;
        self.drained = true;
        self.done = true;
        self.pending.clear();
        failure
    }
}

/// Bytes of generated text in `delta`, for the usage estimate.
fn output_bytes(delta: &Delta) -> usize {
    match delta {
        Delta::Text(text) => text.len(),
        Delta::ToolCall {
            name, arguments, ..
        } => arguments.len() + name.as_ref().map_or(0, String::len),
        Delta::Finish(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_line_endings() {
        let mut sse = Sse::default();
        sse.push(b": keep-alive\n\nevent: message_start\r\ndata: {\"a\":");
        assert_eq!(sse.next_event(), None);
        sse.push(b" 1}\r\n\r\ndata: one\ndata: two\n\ndata: [DONE]\n");
        assert_eq!(
            sse.next_event(),
            Some(SseEvent {
                event: Some("message_start".into()),
                data: "{\"a\": 1}".into()
            })
        );
        assert_eq!(sse.next_event().unwrap().data, "one\ntwo");
        assert_eq!(sse.next_event(), None);
        sse.push(b"\n");
        assert_eq!(sse.next_event().unwrap().data, "[DONE]");
    }
}
