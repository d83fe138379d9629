//! Errors of the HTTP API: always `{"error": {"code": …, "message": …, …}}` with the
//! status that fits (the table is in the README). And the errors of the server's
//! other parts: [`serve`] (starting to serve), [`watch`] (watching the home),
//! [`change`] (changes through the registry).

pub mod auth;
pub mod change;
pub mod serve;
pub mod watch;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use warden_runtime::CallError;
use warden_runtime::error::Chain;

pub use self::auth::AuthError;
pub use self::change::ChangeError;
pub use self::serve::ServeError;
pub use self::watch::WatchError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// `{"code": …, "message": …}` and whatever else the error carries.
    pub body: Value,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({ "code": code, "message": message.into() }),
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", message)
    }

    /// 404: no such thing.
    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 500: the host failed.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            err.to_string(),
        )
    }
}

/// The status of a failed call.
pub fn call_status(err: &CallError) -> StatusCode {
    match err {
        CallError::UnknownTool { .. } => StatusCode::NOT_FOUND,
        CallError::InvalidArguments { .. } | CallError::ToolError { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        CallError::Denied { .. }
        | CallError::Refused { .. }
        | CallError::Withheld { .. }
        | CallError::Held { .. } => StatusCode::FORBIDDEN,
        CallError::Limit { limit, .. } if *limit == "concurrency" => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        CallError::Limit { limit, .. } if *limit == "timeout" => StatusCode::GATEWAY_TIMEOUT,
        // The HTTP API cancels no call itself: one cancelled means the server gave up on it.
        CallError::Cancelled { .. } => StatusCode::SERVICE_UNAVAILABLE,
        CallError::Trap { .. } | CallError::Limit { .. } | CallError::Internal { .. } => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

impl ApiError {
    /// 403: the gate refused `action` on `resource` (already on the audit record).
    pub fn refused(
        action: warden_policy::Action,
        resource: &warden_policy::Resource,
        refusal: &warden_runtime::Refusal,
    ) -> Self {
        let mut error = Self::new(StatusCode::FORBIDDEN, refusal.code, refusal.message.clone());
        error.body["action"] = json!(action.as_str());
        error.body["resource"] = json!(resource.to_string());
        error.body["policies"] = json!(refusal.decision.policies());
        error
    }
}

impl From<&CallError> for ApiError {
    fn from(err: &CallError) -> Self {
        let mut body = err.to_json();
        if let CallError::Limit { limit, .. } = err {
            body["limit"] = json!(limit);
        }
        Self {
            status: call_status(err),
            body,
        }
    }
}

impl From<ChangeError> for ApiError {
    fn from(err: ChangeError) -> Self {
        match &err {
            ChangeError::NotFound(_) => Self::not_found("unknown-plugin", err.to_string()),
            ChangeError::Invalid(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-plugin",
                err.to_string(),
            ),
            ChangeError::Home(_) | ChangeError::NotRecorded(_) | ChangeError::NoAudit => {
                Self::internal(Chain(&err))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let forbidden = self.status == StatusCode::FORBIDDEN && self.body["code"] == "forbidden";
        let mut response = (self.status, axum::Json(json!({ "error": self.body }))).into_response();
        if forbidden {
            response.extensions_mut().insert(Forbidden);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Marks a 403 of the access policy (code `forbidden`), for the authentication layer
/// to add the scopes an OAuth caller lacks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Forbidden;

/// The code of an error answer made by a layer, not a handler (too large, timed out,
/// wrong method…), from its status.
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "too-large",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::NOT_FOUND => "no-route",
        StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => "timeout",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        s if s.is_client_error() => "bad-request",
        _ => "internal",
    }
}
