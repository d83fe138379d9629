//! `POST /v1/chat/completions`: an OpenAI-compatible endpoint where `model` names a
//! route, so an app using any OpenAI client library gets Warden's routing, retries,
//! fallbacks, budgets and audit. Authenticated like the rest of the API (action
//! `use-model`).
//!
//! A call reserves its estimate against the caller's principal's budget and the
//! route's (`[models.budgets]`) before it goes out — past one, the answer is 429 with
//! the budget named — and settles with the real usage when it ends. With
//! `stream: true` the answer is server-sent events ([`stream`]); otherwise one
//! `chat.completion`. Every call is a `model.call` audit record.

mod stream;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tracing::Instrument as _;

use super::api::AppState;
use super::auth::Caller;
use super::error::{ApiError, code_for_status};
use warden_audit::{Event, Outcome};
use warden_config::home::Action;
use warden_models::gateway::{build_response, parse_request};
use warden_models::{Payer, RouteError, Router, Usage};
use warden_runtime::Runtime;

pub(super) async fn chat_completions(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Caller>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Response> {
    let body = body.map_err(|r| {
        ApiError::new(r.status(), code_for_status(r.status()), r.body_text()).into_response()
    })?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")).into_response())?;
    let (route, request) =
        parse_request(&body).map_err(|e| ApiError::bad_request(e).into_response())?;
    // The access policy decides on the route itself (`use-model`, `Warden::Route`).
    let resource = warden_policy::Resource::Route {
        name: route.clone(),
    };
    state
        .require_on(&caller, Action::UseModel, &resource, None)
        .await
        .map_err(IntoResponse::into_response)?;
    let streamed = body["stream"].as_bool() == Some(true);
    let include_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
    let runtime = state.registry.runtime().clone();
    let Some(router) = runtime.router().cloned() else {
        return Err(ApiError::not_found(
            "no-models",
            "this Warden has no model routes; configure [models] in warden.toml",
        )
        .into_response());
    };
    let call = Call {
        runtime,
        router,
        principal: caller.principal.clone(),
        route,
        streamed,
        started: Instant::now(),
    };
    let payer = Payer {
        plugin: None,
        principal: Some(&caller.principal),
    };
    let reservation = match call.router.reserve(&call.route, payer, &request) {
        Ok(reservation) => reservation,
        Err(err) => return Err(call.refused(err).await),
    };
    if streamed {
        return match call.router.stream(&call.route, &request).await {
            Ok(answer) => Ok(stream::respond(call, answer, reservation, include_usage)),
            Err(err) => {
                call.router.settle(reservation, &Usage::default(), 0.0);
                Err(call.refused(err).await)
            }
        };
    }
    // The provider call, its settlement and its record run on a task of their own, so
    // a client that hangs up (or a request timeout) still leaves the ledger settled
    // with the real usage and the call on the record.
    let finished = tokio::spawn(
        async move {
            match call.router.complete(&call.route, &request).await {
                Ok(answer) => {
                    call.router.settle(reservation, &answer.usage, answer.cost);
                    let event = call
                        .event(Outcome::Ok)
                        .field("target", answer.target.clone())
                        .field("input_tokens", answer.usage.input)
                        .field("output_tokens", answer.usage.output)
                        .field("cost", answer.cost)
                        .field("provider_us", answer.provider_us)
                        .field("failures", answer.failures.clone());
                    call.record(event)
                        .await
                        .map_err(IntoResponse::into_response)?;
                    let created = warden_memory::now();
                    Ok(axum::Json(build_response(&call.route, &answer, created)).into_response())
                }
                Err(err) => {
                    call.router.settle(reservation, &Usage::default(), 0.0);
                    Err(call.refused(err).await)
                }
            }
        }
        .in_current_span(),
    );
    match finished.await {
        Ok(answer) => answer,
        Err(err) => {
            Err(ApiError::internal(format!("the model call failed: {err}")).into_response())
        }
    }
}

/// One call through the gateway, for its audit record.
struct Call {
    runtime: Arc<Runtime>,
    router: Arc<Router>,
    principal: String,
    route: String,
    streamed: bool,
    started: Instant,
}

impl Call {
    /// A `model.call` record of this call so far.
    fn event(&self, outcome: Outcome) -> Event {
        Event::new("model.call", self.principal.clone())
            .outcome(outcome)
            .field("route", self.route.clone())
            .field("via", "gateway")
            .field("stream", self.streamed)
            .field(
                "duration_us",
                u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX),
            )
    }

    /// Puts `event` on record; the caller is told if it cannot be.
    async fn record(&self, event: Event) -> Result<(), ApiError> {
        if let Some(audit) = self.runtime.audit() {
            audit.append(event).await.map_err(|e| {
                ApiError::internal(format!(
                    "the audit log could not record the call: {}",
                    warden_runtime::error::chain(e)
                ))
            })?;
        }
        Ok(())
    }

    /// The record and the answer of a call that got no answer.
    async fn refused(&self, err: RouteError) -> Response {
        let mut event = self.event(match err {
            RouteError::Budget(_) => Outcome::Denied,
            _ => Outcome::Error,
        });
        event = event.field("error", err.to_string());
        if let RouteError::Budget(exceeded) = &err {
            event = event.field("budget", exceeded.budget.clone());
        }
        if let RouteError::Exhausted { attempts, .. } = &err {
            let failures: Vec<String> = attempts.iter().map(|(t, f)| format!("{t}: {f}")).collect();
            event = event.field("failures", failures);
        }
        if let Err(err) = self.record(event).await {
            return err.into_response();
        }
        error_response(err)
    }
}

/// The status and OpenAI-style error body of a call that got no answer.
fn error_response(err: RouteError) -> Response {
    let (status, code) = match &err {
        RouteError::UnknownRoute { .. } => (StatusCode::NOT_FOUND, "unknown-route"),
        RouteError::Stopped { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "model-refused"),
        RouteError::Exhausted { .. } => (StatusCode::BAD_GATEWAY, "model-failed"),
        RouteError::Budget(_) => (StatusCode::TOO_MANY_REQUESTS, "budget-exceeded"),
    };
    let mut error = ApiError::new(status, code, err.to_string());
    error.body["type"] = json!(code.replace('-', "_"));
    let budget = matches!(err, RouteError::Budget(_));
    if let RouteError::Budget(exceeded) = err {
        error.body["budget"] = json!(exceeded.budget);
    }
    let mut response = error.into_response();
    if budget {
        // Retrying today will not help; OpenAI's clients read this and do not.
        response
            .headers_mut()
            .insert("x-should-retry", HeaderValue::from_static("false"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_body_maps_to_a_request() {
        let body = json!({
            "model": "fast",
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            ],
            "max_completion_tokens": 50,
            "stop": "END",
            "response_format": {"type": "json_object"},
        });
        let (route, request) = parse_request(&body).unwrap();
        assert_eq!(route, "fast");
        assert_eq!(request.messages[1].content, "hi");
        assert_eq!(request.max_tokens, Some(50));
        assert_eq!(request.stop, ["END"]);
        assert!(request.response_format.is_some());
        assert!(parse_request(&json!({"messages": []})).is_err());
    }
}
