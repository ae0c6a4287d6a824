//! The one mapping from failures to Lambda's error responses: status, `x-amzn-ErrorType`
//! header and a JSON body with `Type` and `message`/`Message`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kindling_control::ControlError;
use kindling_events::IntakeError;
use kindling_scheduler::SchedulerError;
use serde_json::json;

pub const ERROR_TYPE_HEADER: &str = "x-amzn-ErrorType";

/// Everything an API call can answer with other than success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The request body exceeds the operation's size limit.
    #[error("request entity too large")]
    BodyTooLarge {
        limit: usize,
        operation: &'static str,
    },
    /// No operation is served at this method and path.
    #[error("unknown operation")]
    UnknownOperation,
    /// A blocking task died (a bug): logged, answered as ServiceException.
    #[error("task failed: {0}")]
    Join(String),
    /// An Invoke payload over its limit: `RequestTooLargeException`.
    #[error("payload too large")]
    PayloadTooLarge { limit: usize },
    /// The data plane could not run the invocation.
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    /// This server was started without a data plane.
    #[error("the data plane is disabled")]
    DataPlaneDisabled,
    /// An Event invocation could not be stored.
    #[error(transparent)]
    Intake(#[from] IntakeError),
}

/// Whether an exception's model member is `Message` (capitalized) or `message`.
fn uses_capital_message(kind: &str) -> bool {
    matches!(
        kind,
        "ResourceNotFoundException"
            | "ServiceException"
            | "ResourceInUseException"
            | "InvalidRuntimeException"
            | "InvalidZipFileException"
    )
}

impl ApiError {
    /// The HTTP status, exception name and client-facing message.
    fn parts(&self) -> (StatusCode, &'static str, String) {
        use ControlError as C;
        match self {
            Self::Control(e) => match e {
                C::Validation(m) => (StatusCode::BAD_REQUEST, "ValidationException", m.clone()),
                C::InvalidParameter(m) => (
                    StatusCode::BAD_REQUEST,
                    "InvalidParameterValueException",
                    m.clone(),
                ),
                C::InvalidRequestContent(m) => (
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    m.clone(),
                ),
                C::NotFound(m) => (
                    StatusCode::NOT_FOUND,
                    "ResourceNotFoundException",
                    m.clone(),
                ),
                C::Conflict(m) => (StatusCode::CONFLICT, "ResourceConflictException", m.clone()),
                C::PreconditionFailed(m) => (
                    StatusCode::PRECONDITION_FAILED,
                    "PreconditionFailedException",
                    m.clone(),
                ),
                C::RequestEntityTooLarge(m) => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestEntityTooLargeException",
                    m.clone(),
                ),
                C::CodeStorageExceeded(m) => (
                    StatusCode::BAD_REQUEST,
                    "CodeStorageExceededException",
                    m.clone(),
                ),
                C::PolicyLengthExceeded(m) => (
                    StatusCode::BAD_REQUEST,
                    "PolicyLengthExceededException",
                    m.clone(),
                ),
                C::Store(_) | C::Io(_) | C::CodeSource(_) | C::Internal(_) => internal(),
            },
            Self::BodyTooLarge { limit, operation } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLargeException",
                format!("Request must be smaller than {limit} bytes for the {operation} operation"),
            ),
            Self::UnknownOperation => (
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                "Unknown operation".into(),
            ),
            Self::Join(_) => internal(),
            Self::PayloadTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestTooLargeException",
                format!(
                    "Request must be smaller than {limit} bytes for the InvokeFunction operation"
                ),
            ),
            Self::Scheduler(e) => match e {
                SchedulerError::Throttled(_) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequestsException",
                    "Rate Exceeded.".into(),
                ),
                SchedulerError::RuntimeUnavailable(m) => (
                    StatusCode::BAD_GATEWAY,
                    "InvalidRuntimeException",
                    m.clone(),
                ),
                SchedulerError::InvalidPackage(e) => (
                    StatusCode::BAD_GATEWAY,
                    "InvalidZipFileException",
                    format!("Kindling could not unzip the deployment package or a layer: {e}"),
                ),
                SchedulerError::ShuttingDown => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceException",
                    "Kindling is shutting down.".into(),
                ),
                SchedulerError::Internal(_) => internal(),
            },
            Self::DataPlaneDisabled => (
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceException",
                "This Kindling server runs no data plane.".into(),
            ),
            Self::Intake(IntakeError::Stopped) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceException",
                "Kindling is shutting down.".into(),
            ),
            Self::Intake(_) => internal(),
        }
    }
}

fn internal() -> (StatusCode, &'static str, String) {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "ServiceException",
        "An internal error occurred in Kindling; see the server log.".into(),
    )
}

/// Renders a Lambda error response.
pub fn error_response(status: StatusCode, kind: &str, message: &str) -> Response {
    let key = if uses_capital_message(kind) {
        "Message"
    } else {
        "message"
    };
    let origin = if status.is_server_error() {
        "Service"
    } else {
        "User"
    };
    let mut res = (status, Json(json!({ "Type": origin, key: message }))).into_response();
    if let Ok(v) = HeaderValue::from_str(kind) {
        res.headers_mut().insert(ERROR_TYPE_HEADER, v);
    }
    res
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, message) = self.parts();
        if status.is_server_error() {
            // As a `dyn Error` the log shows the whole chain of causes (`error.sources`).
            tracing::error!(error = &self as &dyn std::error::Error, "request failed");
        } else {
            tracing::debug!(kind, %message, "client error");
        }
        let mut res = error_response(status, kind, &message);
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was not read: the connection cannot be reused.
            res.headers_mut().insert(
                axum::http::header::CONNECTION,
                HeaderValue::from_static("close"),
            );
        }
        if let Self::Scheduler(SchedulerError::Throttled(reason)) = &self {
            res = (
                status,
                Json(json!({ "Reason": reason.as_str(), "Type": "User", "message": message })),
            )
                .into_response();
            res.headers_mut().insert(
                ERROR_TYPE_HEADER,
                HeaderValue::from_static("TooManyRequestsException"),
            );
            res.headers_mut()
                .insert("Retry-After", HeaderValue::from_static("1"));
        }
        res
    }
}
