//! The answer to an MCP request over HTTP, sent in one piece when it is ready soon.
//!
//! The SDK answers each POST with a server-sent event stream and hands it over at once:
//! the head, a priming event (its id lets the client resume), and then, once the call
//! has ended, the message. Sent as they come, that is two writes, and the client wakes
//! twice for one answer (a sleeping CPU woken twice: on a VM, tens of microseconds
//! each). So the head and the stream's first events are held until its first JSON-RPC
//! message (the answer, or a progress notification or a request of the server's before
//! it), for at most [`FIRST_MESSAGE_WAIT`]: a call that takes longer gets its head and
//! priming event then, as before, and the rest as it comes.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use http_body::Frame;
use http_body_util::BodyExt as _;

/// How long the head of an event stream waits for the stream's first message.
pub(super) const FIRST_MESSAGE_WAIT: Duration = Duration::from_millis(5);

/// `response` with its head held until its body's first message, or until
/// [`FIRST_MESSAGE_WAIT`] has passed, or until the body ends; then with the events
/// read so far first in its body. Other responses (not an event stream) as they are.
pub(super) async fn first_message(response: Response) -> Response {
    let is_stream = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !is_stream {
        return response;
    }
    let (parts, mut body) = response.into_parts();
    let mut read = VecDeque::new();
    let mut failed = None;
    let wait = tokio::time::sleep(FIRST_MESSAGE_WAIT);
    tokio::pin!(wait);
    loop {
        tokio::select! {
            frame = body.frame() => match frame {
                Some(Ok(frame)) => {
                    let message = frame.data_ref().is_some_and(|data| holds_message(data));
                    read.push_back(frame);
                    if message {
                        break;
                    }
                }
                Some(Err(err)) => {
                    failed = Some(err);
                    break;
                }
                None => break,
            },
            () = &mut wait => break,
        }
    }
    Response::from_parts(
        parts,
        Body::new(Prefixed {
            read,
            failed,
            rest: body,
        }),
    )
}

/// Whether `data` has an event whose `data:` field starts a JSON-RPC message (an
/// object, or a batch); the priming event's is empty.
fn holds_message(data: &[u8]) -> bool {
    data.split(|&b| b == b'\n').any(|line| {
        line.strip_prefix(b"data:").is_some_and(|value| {
            matches!(
                value.iter().find(|b| !b.is_ascii_whitespace()),
                Some(b'{' | b'[')
            )
        })
    })
}

/// A body whose first frames were read already: those, then the rest.
struct Prefixed {
    read: VecDeque<Frame<Bytes>>,
    failed: Option<axum::Error>,
    rest: Body,
}

impl http_body::Body for Prefixed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Some(frame) = self.read.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(err) = self.failed.take() {
            return Poll::Ready(Some(Err(err)));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_empty() && self.failed.is_none() && self.rest.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    const PRIMING: &str = "data: \nid: 0\nretry: 3000\n\n";
    const MESSAGE: &str = "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\nid: 0/0\n\n";

    /// Events as they are sent on a channel.
    struct Events(tokio::sync::mpsc::UnboundedReceiver<&'static str>);

    impl http_body::Body for Events {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            self.0
                .poll_recv(cx)
                .map(|e| e.map(|e| Ok(Frame::data(Bytes::from(e)))))
        }
    }

    /// An event stream whose events come from the returned sender.
    fn stream() -> (tokio::sync::mpsc::UnboundedSender<&'static str>, Response) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let response = Response::builder()
            .header(http::header::CONTENT_TYPE, "text/event-stream")
            .body(Body::new(Events(rx)))
            .unwrap();
        (tx, response)
    }

    async fn text(response: Response) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn the_head_waits_for_the_first_message_and_every_event_follows_in_order() {
        let (tx, response) = stream();
        tx.send(PRIMING).unwrap();
        let held = tokio::spawn(first_message(response));
        // The priming event alone does not release the head.
        tokio::time::sleep(FIRST_MESSAGE_WAIT / 2).await;
        assert!(!held.is_finished(), "released before the message");
        tx.send(MESSAGE).unwrap();
        let response = held.await.unwrap();
        tx.send("data: {\"later\":1}\n\n").unwrap();
        drop(tx);
        assert_eq!(
            text(response).await,
            format!("{PRIMING}{MESSAGE}data: {{\"later\":1}}\n\n")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_call_gets_its_head_and_priming_event_after_the_wait() {
        let (tx, response) = stream();
        tx.send(PRIMING).unwrap();
        let started = tokio::time::Instant::now();
        let response = first_message(response).await;
        assert_eq!(started.elapsed(), FIRST_MESSAGE_WAIT);
        // The priming event is read already, and the message still comes after it.
        tx.send(MESSAGE).unwrap();
        drop(tx);
        assert_eq!(text(response).await, format!("{PRIMING}{MESSAGE}"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_ends_at_once_and_other_answers_pass_as_they_are() {
        let (tx, response) = stream();
        drop(tx);
        let started = tokio::time::Instant::now();
        assert_eq!(text(first_message(response).await).await, "");
        assert!(started.elapsed() < FIRST_MESSAGE_WAIT);
        let json = Response::new(Body::from("{}"));
        assert_eq!(text(first_message(json).await).await, "{}");
    }

    #[test]
    fn a_message_is_a_data_field_that_starts_json() {
        assert!(holds_message(MESSAGE.as_bytes()));
        assert!(holds_message(b"data:[{\"jsonrpc\":\"2.0\"}]\n\n"));
        assert!(!holds_message(PRIMING.as_bytes()));
        assert!(!holds_message(b": keep-alive\n\n"));
        assert!(!holds_message(b"id: 0\nretry: 3000\n\n"));
    }
}
