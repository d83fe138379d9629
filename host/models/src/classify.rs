//! Provider failures, classified for the router's one retry loop.

use std::fmt;
use std::time::Duration;

/// What went wrong with one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// 429: too many requests (maybe with `Retry-After`).
    RateLimited,
    /// 5xx (and Anthropic's 529 overloaded).
    Server,
    /// No answer in time.
    Timeout,
    /// No connection.
    Connect,
    /// The prompt is longer than the model's context.
    ContextTooLong,
    /// 401/403: the key is missing, wrong or not allowed.
    Auth,
    /// The provider refused the content.
    ContentPolicy,
    /// Any other 4xx: the request itself is wrong.
    BadRequest,
    /// The answer could not be read.
    MalformedResponse,
}

/// What the router does about a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Try the same target again after a backoff.
    Retry,
    /// Go on to the next target.
    FallBack,
    /// Give up: no target would do better.
    Stop,
}

impl FailureKind {
    pub(crate) fn decision(self) -> Decision {
        match self {
            Self::RateLimited | Self::Server | Self::Timeout | Self::Connect => Decision::Retry,
            Self::ContextTooLong | Self::Auth | Self::MalformedResponse => Decision::FallBack,
            Self::ContentPolicy | Self::BadRequest => Decision::Stop,
        }
    }

    /// Whether it counts toward the target's cooldown (the target's health, not the
    /// request's fault).
    pub(crate) fn counts_against_target(self) -> bool {
        matches!(
            self,
            Self::RateLimited
                | Self::Server
                | Self::Timeout
                | Self::Connect
                | Self::MalformedResponse
        )
    }

    fn name(self) -> &'static str {
        match self {
            Self::RateLimited => "rate-limited",
            Self::Server => "server-error",
            Self::Timeout => "timeout",
            Self::Connect => "connection-failed",
            Self::ContextTooLong => "context-too-long",
            Self::Auth => "auth",
            Self::ContentPolicy => "content-policy",
            Self::BadRequest => "bad-request",
            Self::MalformedResponse => "malformed-response",
        }
    }
}

/// One failed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Its class.
    pub kind: FailureKind,
    /// What the provider (or the connection) said.
    pub message: String,
    /// The provider's `Retry-After`.
    pub retry_after: Option<Duration>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

impl Failure {
    pub(crate) fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Classifies an HTTP error answer by status and body (both wire formats).
    pub(crate) fn from_status(status: u16, body: &str, retry_after: Option<&str>) -> Self {
        let lower = body.to_ascii_lowercase();
        let kind = match status {
            429 => FailureKind::RateLimited,
            401 | 403 => FailureKind::Auth,
            500..=599 => FailureKind::Server,
            _ if lower.contains("context_length_exceeded")
                || lower.contains("maximum context length")
                || lower.contains("prompt is too long")
                || lower.contains("too many tokens") =>
            {
                FailureKind::ContextTooLong
            }
            _ if lower.contains("content_filter")
                || lower.contains("content_policy")
                || lower.contains("content policy") =>
            {
                FailureKind::ContentPolicy
            }
            _ => FailureKind::BadRequest,
        };
        let message = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| body.chars().take(300).collect());
        Self {
            kind,
            message: format!("HTTP {status}: {message}"),
            retry_after: retry_after
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_bodies_of_both_providers() {
        let f = Failure::from_status(429, "{}", Some("2"));
        assert_eq!(f.kind, FailureKind::RateLimited);
        assert_eq!(f.retry_after, Some(Duration::from_secs(2)));
        assert_eq!(
            Failure::from_status(529, "", None).kind,
            FailureKind::Server
        );
        assert_eq!(Failure::from_status(401, "", None).kind, FailureKind::Auth);
        let openai = r#"{"error": {"message": "This model's maximum context length is 8192 tokens", "code": "context_length_exceeded"}}"#;
        assert_eq!(
            Failure::from_status(400, openai, None).kind,
            FailureKind::ContextTooLong
        );
        let anthropic = r#"{"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long: 210000 tokens > 200000 maximum"}}"#;
        let f = Failure::from_status(400, anthropic, None);
        assert_eq!(f.kind, FailureKind::ContextTooLong);
        assert!(f.message.contains("prompt is too long"));
        assert_eq!(
            Failure::from_status(400, r#"{"error": {"code": "content_filter"}}"#, None).kind,
            FailureKind::ContentPolicy
        );
        assert_eq!(
            Failure::from_status(422, "nope", None).kind,
            FailureKind::BadRequest
        );
        assert_eq!(FailureKind::Auth.decision(), Decision::FallBack);
        assert_eq!(FailureKind::BadRequest.decision(), Decision::Stop);
    }
}
