//! `POST /v1/chat/completions`: an OpenAI-compatible endpoint where `model` names a
//! route, so an app using any OpenAI client library gets Warden's routing, retries,
//! fallbacks and audit. Authenticated like the rest of the API (action `use-model`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use serde_json::Value;

use super::api::AppState;
use super::auth::Caller;
use super::config::Action;
use super::error::{ApiError, code_for_status};
use crate::audit::{Event, Outcome};
use crate::models::RouteError;
use crate::models::gateway::{build_response, parse_request};

pub(super) async fn chat_completions(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Caller>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    state.require(&caller, Action::UseModel, None).await?;
    let body =
        body.map_err(|r| ApiError::new(r.status(), code_for_status(r.status()), r.body_text()))?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    if body["stream"].as_bool() == Some(true) {
        return Err(ApiError::bad_request(
            "stream: true is not served yet; send the request without it",
        ));
    }
    let (route, request) = parse_request(&body).map_err(ApiError::bad_request)?;
    let runtime = state.registry.runtime();
    let Some(router) = runtime.router() else {
        return Err(ApiError::not_found(
            "no-models",
            "this Warden has no model routes; configure [models] in warden.toml",
        ));
    };
    let started = std::time::Instant::now();
    let result = router.complete(&route, &request).await;
    let mut event = Event::new("model.call", caller.principal.clone())
        .field("route", route.clone())
        .field("via", "gateway")
        .field(
            "duration_us",
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        );
    event = match &result {
        Ok(answer) => event
            .outcome(Outcome::Ok)
            .field("target", answer.target.clone())
            .field("input_tokens", answer.usage.input)
            .field("output_tokens", answer.usage.output)
            .field("cost", answer.cost),
        Err(err) => event
            .outcome(Outcome::Error)
            .field("error", err.to_string()),
    };
    if let Some(audit) = runtime.audit() {
        audit.append(event).await.map_err(|e| {
            ApiError::internal(format!("the audit log could not record the call: {e:#}"))
        })?;
    }
    match result {
        Ok(answer) => {
            let created = crate::memory::now();
            Ok(axum::Json(build_response(&route, &answer, created)))
        }
        Err(err @ RouteError::UnknownRoute { .. }) => {
            Err(ApiError::not_found("unknown-route", err.to_string()))
        }
        Err(err @ RouteError::Stopped { .. }) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "model-refused",
            err.to_string(),
        )),
        Err(err @ RouteError::Exhausted { .. }) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "model-failed",
            err.to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
