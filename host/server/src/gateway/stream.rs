//! `stream: true`: the answer as server-sent `chat.completion.chunk` events, each
//! delta passed on as the provider's stream delivers it.
//!
//! A task relays the router's [`Streaming`] into the response body. The router has
//! retried and fallen back until the first delta was in; a failure after that ends
//! the stream with an OpenAI-style error event (`data: {"error": …}`, which OpenAI's
//! clients raise). When the stream ends — complete, broken, or because the client went
//! away (the provider's connection is dropped then) — the usage (the provider's, or
//! an estimate from what streamed) is settled in the budget ledger and the call is put
//! on record.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::Response;
use http_body::Frame;
use tokio::sync::mpsc;

use super::Call;
use warden_audit::Outcome;
use warden_models::gateway::{Chunks, SSE_DONE, sse, stream_error};
use warden_models::{Reservation, Streaming};

/// Events waiting for a slow client before the relay stops reading the provider.
const BUFFERED_EVENTS: usize = 32;

/// The streamed answer: the relay starts now, the body takes what it sends.
pub(super) fn respond(
    call: Call,
    answer: Streaming,
    reservation: Reservation,
    include_usage: bool,
) -> Response {
    let (tx, rx) = mpsc::channel(BUFFERED_EVENTS);
    tokio::spawn(relay(call, answer, reservation, include_usage, tx));
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::new(Events(rx)))
        .expect("a valid response head")
}

/// A response body of the events the relay sends.
struct Events(mpsc::Receiver<Bytes>);

impl http_body::Body for Events {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|event| event.map(|e| Ok(Frame::data(e))))
    }
}

/// How a stream ended.
enum End {
    Complete,
    Failed(warden_models::Failure),
    ClientGone,
}

async fn relay(
    call: Call,
    mut answer: Streaming,
    reservation: Reservation,
    include_usage: bool,
    tx: mpsc::Sender<Bytes>,
) {
    let chunks = Chunks::new(&call.route, warden_memory::now());
    let mut deltas = 0u64;
    let mut end = End::Complete;
    if tx.send(sse(&chunks.role())).await.is_err() {
        end = End::ClientGone;
    }
    while matches!(end, End::Complete) {
        let next = tokio::select! {
            biased;
            () = tx.closed() => {
                end = End::ClientGone;
                break;
            }
            next = answer.next() => next,
        };
        match next {
            None => break,
            Some(Ok(delta)) => {
                deltas += 1;
                if tx.send(sse(&chunks.delta(&delta))).await.is_err() {
                    end = End::ClientGone;
                }
            }
            Some(Err(failure)) => {
                let message = format!(
                    "route {:?}, target {}: the stream broke off after {deltas} deltas: {failure}",
                    call.route,
                    answer.target()
                );
                let _ = tx.send(sse(&stream_error("model-failed", &message))).await;
                end = End::Failed(failure);
            }
        }
    }
    if matches!(end, End::Complete) {
        if include_usage {
            let usage = chunks.usage(&answer.usage(), answer.target(), answer.cost());
            let _ = tx.send(sse(&usage)).await;
        }
        let _ = tx.send(Bytes::from_static(SSE_DONE)).await;
    }
    let failure = match &end {
        End::Failed(failure) => Some(failure),
        _ => None,
    };
    call.router.stream_ended(&answer, failure);
    let (usage, cost) = (answer.usage(), answer.cost());
    call.router.settle(reservation, &usage, cost);
    let mut event = call
        .event(match end {
            End::Complete => Outcome::Ok,
            _ => Outcome::Error,
        })
        .field("target", answer.target().to_string())
        .field("input_tokens", usage.input)
        .field("output_tokens", usage.output)
        .field("cost", cost)
        .field("usage_reported", answer.usage_reported())
        .field("deltas", deltas)
        .field("failures", answer.failures().to_vec());
    event = match &end {
        End::Complete => event.field("ended", "complete"),
        End::Failed(failure) => event
            .field("ended", "failed")
            .field("error", failure.to_string()),
        End::ClientGone => event.field("ended", "client-disconnected"),
    };
    drop(answer);
    if let Err(err) = call.record(event).await {
        tracing::error!(route = %call.route, error = %err.body, "a streamed model call is not on record");
    }
}
