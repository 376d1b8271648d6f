//! The error envelope, the error codes, and the typed errors of request decoding.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Machine-readable error codes carried in the error envelope.
///
/// The HTTP status that goes with each code is the server's business; the
/// code strings are part of the wire contract and never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Missing or wrong bearer token (401).
    Unauthorized,
    /// No job with that id (404).
    JobNotFound,
    /// The offset lies past the end of the job's output (400).
    InvalidOffset,
    /// The requested working directory is not an existing directory (400).
    InvalidCwd,
    /// Input was sent to a job that is no longer running (409).
    JobNotRunning,
    /// A running job was deleted without `force` (409).
    JobRunning,
    /// A `run` reused an idempotency key with a different script (409).
    IdempotencyConflict,
    /// The request body or query failed validation (422).
    ValidationError,
    /// The request body is larger than the server accepts (413).
    PayloadTooLarge,
    /// No route matches the request (404).
    NotFound,
    /// The route exists but not for this HTTP method (405).
    MethodNotAllowed,
    /// A request body that is not declared `application/json` (415).
    UnsupportedMediaType,
    /// A request a browser marked as coming from another site (403).
    CrossOrigin,
    /// A `Host` header the server does not answer to, as sent after a DNS
    /// rebinding (403).
    HostNotAllowed,
    /// A job could not be started (500).
    JobStartFailed,
    /// A `run` asked for a resource limit this host cannot enforce (no
    /// such cgroup controller available to the server) (422).
    UnsupportedLimit,
    /// A `run` beyond the server's `--max-running-jobs` (429).
    TooManyJobs,
    /// The state directory's disk is full: no job can be created (507).
    InsufficientStorage,
    /// Any other fault on the server's side (500).
    InternalError,
}

impl ErrorCode {
    /// The wire spelling of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::JobNotFound => "job_not_found",
            ErrorCode::InvalidOffset => "invalid_offset",
            ErrorCode::InvalidCwd => "invalid_cwd",
            ErrorCode::JobNotRunning => "job_not_running",
            ErrorCode::JobRunning => "job_running",
            ErrorCode::IdempotencyConflict => "idempotency_conflict",
            ErrorCode::ValidationError => "validation_error",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::CrossOrigin => "cross_origin",
            ErrorCode::HostNotAllowed => "host_not_allowed",
            ErrorCode::JobStartFailed => "job_start_failed",
            ErrorCode::UnsupportedLimit => "unsupported_limit",
            ErrorCode::TooManyJobs => "too_many_jobs",
            ErrorCode::InsufficientStorage => "insufficient_storage",
            ErrorCode::InternalError => "internal_error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The inner object of the error envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Machine-readable code, see [`ErrorCode`].
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

/// The error envelope: `{"error":{"code":"…","message":"…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

impl ApiErrorBody {
    /// An envelope for `code` with `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiErrorBody {
            error: ErrorDetail {
                code: code.as_str().to_owned(),
                message: message.into(),
            },
        }
    }
}

/// A request value that breaks a rule of the API; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// Dotted path of the offending field (`terminal.cols`, `env.FOO`), or
    /// `body`/`query` when the problem is not in one field.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ValidationError {
    /// A validation error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Why a request body or query string could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body is not JSON at all (or not UTF-8, or truncated).
    #[error("request body is not valid JSON: {0}")]
    Syntax(String),
    /// The body or query is well-formed but a field is missing, unknown, of
    /// the wrong type or out of bounds.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

impl RequestError {
    /// The error code every request error answers with.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::ValidationError
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_the_reference_shape() {
        let body = ApiErrorBody::new(ErrorCode::JobNotFound, "job 01010101-abc not found");
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"error": {"code": "job_not_found", "message": "job 01010101-abc not found"}})
        );
    }

    #[test]
    fn validation_error_names_its_field() {
        let err = ValidationError::new("terminal.cols", "must be at most 4096");
        assert_eq!(err.to_string(), "terminal.cols: must be at most 4096");
    }
}
