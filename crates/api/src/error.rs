//! The one mapping from failures to Lambda's error responses: status, `x-amzn-ErrorType`
//! header and a JSON body with `Type` and `message`/`Message`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kindling_control::ControlError;
use kindling_esm::EsmError;
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
    /// The node running a forwarded invocation failed (or did not answer in time) after it
    /// had the request: it may have run, so it is not run again here.
    #[error("node {node} failed while running a forwarded invocation")]
    PeerFailed { node: String },
    /// A blocking task died (a bug): logged, answered as ServiceException.
    #[error("a blocking task failed")]
    Join(#[from] tokio::task::JoinError),
    /// A domain value could not be rendered as JSON (a bug): logged, ServiceException.
    #[error("rendering the response failed")]
    Render(#[from] serde_json::Error),
    /// The request's signature or credentials were refused (AWS's 400/403 answers).
    #[error(transparent)]
    Auth(kindling_auth::AuthError),
    /// A function's session credentials used for an operation they do not allow.
    #[error("{caller} may not call {action} on {resource}")]
    AccessDenied {
        caller: String,
        action: String,
        resource: String,
    },
    /// A request from inside an execution environment not signed with its own credentials.
    #[error("a request from an execution environment was not signed with its credentials")]
    EnvironmentCredentialsRequired,
    /// A code download URL that is unsigned, tampered with or expired.
    #[error("code download refused: {0}")]
    CodeUrl(kindling_auth::AuthError),
    /// A path parameter that is not valid percent-encoded UTF-8.
    #[error("malformed path: {0}")]
    MalformedPath(String),
    /// The request body stopped arriving.
    #[error("the request body stopped arriving for {0:?}")]
    BodyTimeout(std::time::Duration),
    /// The request body arrived too slowly on average.
    #[error("{0}")]
    BodySlow(String),
    /// Too many large bodies are being read at once.
    #[error("the request body budget is exhausted")]
    BodyBudget,
    /// The connection failed while the body was read.
    #[error("reading the request body failed")]
    BodyRead(#[source] Box<dyn std::error::Error + Send + Sync>),
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
    /// An event source mapping operation failed (function errors arrive as `Control`).
    #[error(transparent)]
    Esm(EsmError),
}

impl From<EsmError> for ApiError {
    fn from(e: EsmError) -> Self {
        match e {
            EsmError::Control(c) => Self::Control(c),
            other => Self::Esm(other),
        }
    }
}

/// Whether an exception's model member is `Message` (capitalized) or `message`.
fn uses_capital_message(kind: &str) -> bool {
    matches!(
        kind,
        "ResourceNotFoundException"
            | "AccessDeniedException"
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
                C::ProvisionedConfigNotFound(m) => (
                    StatusCode::NOT_FOUND,
                    "ProvisionedConcurrencyConfigNotFoundException",
                    m.clone(),
                ),
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
            Self::Join(_) | Self::Render(_) => internal(),
            Self::Auth(e) => (
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::FORBIDDEN),
                e.error_type(),
                e.message().to_string(),
            ),
            Self::AccessDenied {
                caller,
                action,
                resource,
            } => (
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                format!(
                    "User: {caller} is not authorized to perform: {action} on resource: \
                     {resource} because no identity-based policy allows the {action} action"
                ),
            ),
            Self::EnvironmentCredentialsRequired => (
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                "Requests from inside an execution environment must be signed with the \
                 environment's own credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and \
                 AWS_SESSION_TOKEN as Kindling set them)."
                    .into(),
            ),
            Self::CodeUrl(e) => (
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                format!(
                    "This code download URL is not valid ({}: {}). Code locations are \
                     presigned URLs that expire 10 minutes after GetFunction or \
                     GetLayerVersion returned them; ask for a fresh one.",
                    e.error_type(),
                    e.message()
                ),
            ),
            Self::MalformedPath(detail) => (
                StatusCode::BAD_REQUEST,
                "ValidationException",
                format!("The request path could not be decoded: {detail}"),
            ),
            Self::BodyTimeout(after) => (
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeoutException",
                format!(
                    "The request body stopped arriving for {} s before it was complete.",
                    after.as_secs_f64()
                ),
            ),
            Self::BodySlow(why) => (
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeoutException",
                format!("The request body was not complete in time: {why}."),
            ),
            Self::BodyBudget => (
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                "Rate Exceeded.".into(),
            ),
            Self::BodyRead(_) => (
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                "The request body could not be read.".into(),
            ),
            Self::PayloadTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestTooLargeException",
                format!(
                    "Request must be smaller than {limit} bytes for the InvokeFunction operation"
                ),
            ),
            Self::Scheduler(e) => match e {
                SchedulerError::Throttled(_) | SchedulerError::NoPlace => (
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
                SchedulerError::Io { .. }
                | SchedulerError::Sandbox { .. }
                | SchedulerError::Users(_)
                | SchedulerError::Task { .. } => internal(),
            },
            Self::PeerFailed { node } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceException",
                format!(
                    "The Kindling node running this invocation ({node}) failed before it answered."
                ),
            ),
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
            Self::Esm(e) => match e {
                EsmError::Validation(m) => {
                    (StatusCode::BAD_REQUEST, "ValidationException", m.clone())
                }
                EsmError::InvalidParameter(m) => (
                    StatusCode::BAD_REQUEST,
                    "InvalidParameterValueException",
                    m.clone(),
                ),
                EsmError::NotFound(m) => (
                    StatusCode::NOT_FOUND,
                    "ResourceNotFoundException",
                    m.clone(),
                ),
                EsmError::Conflict(m) => {
                    (StatusCode::CONFLICT, "ResourceConflictException", m.clone())
                }
                EsmError::InUse(m) => {
                    (StatusCode::BAD_REQUEST, "ResourceInUseException", m.clone())
                }
                EsmError::Control(_)
                | EsmError::Store(_)
                | EsmError::Queue(_)
                | EsmError::Task(_) => internal(),
            },
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
        if status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::REQUEST_TIMEOUT {
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

/// What to say about a request hyper could not parse (answered with `status`: 400, 414, 431).
pub(crate) fn malformed_message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::URI_TOO_LONG => "The request URI is too long.",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            "The request headers are too large (at most 64 KiB and 100 headers)."
        }
        _ => {
            "The request is not valid HTTP/1.1: its request line, target, a header or its \
             framing (Content-Length, Transfer-Encoding) is malformed."
        }
    }
}

/// A Lambda error response with its body as bytes, a request id, and `Connection: close`
/// (for the edge, which answers before or instead of the router).
pub(crate) fn wire_error(
    status: StatusCode,
    kind: &str,
    message: &str,
) -> axum::http::Response<bytes::Bytes> {
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
    let body = serde_json::to_vec(&json!({ "Type": origin, key: message })).unwrap_or_default();
    let mut res = axum::http::Response::new(bytes::Bytes::from(body));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(kind) {
        headers.insert(ERROR_TYPE_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-amzn-RequestId", v);
    }
    headers.insert(
        axum::http::header::CONNECTION,
        HeaderValue::from_static("close"),
    );
    res
}

impl ApiError {
    /// This error as the edge sends it.
    pub(crate) fn to_wire(&self) -> axum::http::Response<bytes::Bytes> {
        let (status, kind, message) = self.parts();
        wire_error(status, kind, &message)
    }
}

/// An error response made outside Lambda's format (an extractor's plain-text rejection, say),
/// rewritten into it with the same status; its text becomes the message.
pub(crate) async fn foreign_error(res: Response) -> Response {
    let status = res.status();
    let text = axum::body::to_bytes(res.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let (kind, fallback) = match status {
        StatusCode::NOT_FOUND => ("UnknownOperationException", "Unknown operation"),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "RequestEntityTooLargeException",
            "The request is too large.",
        ),
        StatusCode::TOO_MANY_REQUESTS => ("TooManyRequestsException", "Rate Exceeded."),
        s if s.is_server_error() => {
            tracing::error!(%status, body = %text, "an error response outside Lambda's format");
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceException",
                "An internal error occurred in Kindling; see the server log.",
            );
        }
        _ => ("ValidationException", "The request is not valid."),
    };
    let message = if text.is_empty() { fallback } else { &text };
    error_response(status, kind, message)
}

impl From<kindling_edge::gate::GateError> for ApiError {
    fn from(e: kindling_edge::gate::GateError) -> Self {
        use kindling_edge::BodyError;
        use kindling_edge::gate::GateError as G;
        match e {
            G::Auth(e) => Self::Auth(e),
            G::EnvironmentCredentialsRequired => Self::EnvironmentCredentialsRequired,
            G::AccessDenied {
                caller,
                action,
                resource,
            } => Self::AccessDenied {
                caller,
                action,
                resource,
            },
            G::Body(BodyError::TooLarge { limit }) => Self::BodyTooLarge {
                limit,
                operation: "this",
            },
            G::Body(BodyError::Timeout(after)) => Self::BodyTimeout(after),
            G::Body(e @ BodyError::TooSlow { .. }) => Self::BodySlow(e.to_string()),
            G::Body(BodyError::Busy) => Self::BodyBudget,
            G::Body(BodyError::Read(source)) => Self::BodyRead(source),
            G::Task(e) => Self::Join(e),
        }
    }
}
