//! Why a function URL request failed, and the answer each failure gets — mapped in this one
//! place. Client mistakes are 4xx; the function's own failures are 502 as on Lambda; only
//! Kindling's faults are 500 (logged with their causes).

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode};
use kindling_auth::AuthError;
use kindling_control::ControlError;
use kindling_edge::BodyError;
use kindling_httpevents::ResponseError;
use kindling_httpevents::stream::PreludeError;
use kindling_model::limits;
use kindling_scheduler::SchedulerError;

#[derive(Debug, thiserror::Error)]
pub enum FrontDoorError {
    /// No URL with this id (or the path names none).
    #[error("no function URL at this address")]
    NotFound,
    /// `AuthType` NONE without the resource-policy statement that allows it, or a caller
    /// refused by the gate.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// `AuthType` AWS_IAM and the signature is missing or wrong.
    #[error("{}", .0.message())]
    Auth(AuthError),
    #[error("the request body is over {limit} bytes")]
    TooLarge { limit: usize },
    #[error("reading the request body failed: {0}")]
    Body(BodyError),
    /// Concurrency exhausted (429 as Lambda answers).
    #[error("throttled: {0}")]
    Throttled(SchedulerError),
    /// The function failed (unhandled error, timeout, crash, response too large).
    #[error("the function failed: {0}")]
    Function(String),
    /// The function's result is not a response Lambda can send.
    #[error("the function's result cannot be sent: {0}")]
    BadResult(#[from] ResponseError),
    /// A streamed response whose HTTP prelude is missing or malformed.
    #[error("the function's response stream cannot be sent: {0}")]
    BadStream(#[from] PreludeError),
    /// The function cannot run (package, runtime); Lambda answers 502.
    #[error("the function cannot run: {0}")]
    Unrunnable(SchedulerError),
    #[error("Kindling is shutting down")]
    ShuttingDown,
    /// Kindling's own failure.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<ControlError> for FrontDoorError {
    fn from(e: ControlError) -> Self {
        match e {
            // The URL's alias (or function) went away between the lookups.
            ControlError::NotFound(_) => Self::NotFound,
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl From<SchedulerError> for FrontDoorError {
    fn from(e: SchedulerError) -> Self {
        match e {
            SchedulerError::Throttled(_) | SchedulerError::NoPlace => Self::Throttled(e),
            SchedulerError::ShuttingDown => Self::ShuttingDown,
            SchedulerError::RuntimeUnavailable(_) | SchedulerError::InvalidPackage(_) => {
                Self::Unrunnable(e)
            }
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl From<BodyError> for FrontDoorError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge { limit } => Self::TooLarge { limit },
            other => Self::Body(other),
        }
    }
}

impl FrontDoorError {
    /// Status, `x-amzn-ErrorType` (when Lambda sends one) and body.
    fn parts(&self) -> (StatusCode, Option<&'static str>, String, &'static str) {
        const JSON: &str = "application/json";
        let msg = |m: &str| serde_json::json!({ "Message": m }).to_string();
        match self {
            Self::NotFound => (StatusCode::NOT_FOUND, None, msg("Not Found"), JSON),
            Self::Forbidden(_) => (
                StatusCode::FORBIDDEN,
                Some("AccessDeniedException"),
                msg("Forbidden"),
                JSON,
            ),
            Self::Auth(e) => (
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::FORBIDDEN),
                Some("AccessDeniedException"),
                msg(e.message()),
                JSON,
            ),
            Self::TooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                Some("RequestTooLargeException"),
                msg(&format!(
                    "Request must be smaller than {} bytes for the InvokeFunction operation",
                    limits::SYNC_PAYLOAD
                )),
                JSON,
            ),
            Self::Body(BodyError::Busy) => (
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                msg("Service Unavailable"),
                JSON,
            ),
            Self::Body(_) => (StatusCode::BAD_REQUEST, None, msg("Bad Request"), JSON),
            Self::Throttled(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                Some("TooManyRequestsException"),
                msg("Rate Exceeded."),
                JSON,
            ),
            Self::Function(_) | Self::BadResult(_) | Self::BadStream(_) | Self::Unrunnable(_) => (
                StatusCode::BAD_GATEWAY,
                None,
                "Internal Server Error".to_owned(),
                "text/plain; charset=utf-8",
            ),
            Self::ShuttingDown => (
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                msg("Service Unavailable"),
                JSON,
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Some("ServiceException"),
                msg("Internal Server Error"),
                JSON,
            ),
        }
    }

    /// The HTTP answer.
    pub fn response(&self, request_id: &str) -> Response {
        let (status, error_type, body, content_type) = self.parts();
        let mut res = Response::new(Body::from(body));
        *res.status_mut() = status;
        let h = res.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        if let Some(t) = error_type {
            h.insert("x-amzn-ErrorType", HeaderValue::from_static(t));
        }
        if let Ok(v) = HeaderValue::from_str(request_id) {
            h.insert("x-amzn-RequestId", v);
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let cases: Vec<(FrontDoorError, u16)> = vec![
            (FrontDoorError::NotFound, 404),
            (FrontDoorError::Forbidden("x"), 403),
            (
                FrontDoorError::Auth(AuthError::MissingAuthenticationToken),
                403,
            ),
            (FrontDoorError::TooLarge { limit: 1 }, 413),
            (FrontDoorError::Function("Unhandled".into()), 502),
            (FrontDoorError::BadResult(ResponseError::BadBase64), 502),
            (FrontDoorError::BadStream(PreludeError::Ended), 502),
            (FrontDoorError::ShuttingDown, 503),
            (FrontDoorError::Internal("x".into()), 500),
        ];
        for (e, status) in cases {
            let res = e.response("rid");
            assert_eq!(res.status().as_u16(), status, "{e}");
            assert_eq!(res.headers()["x-amzn-RequestId"], "rid");
        }
    }
}
