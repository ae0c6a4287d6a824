//! Every error the API answers with, and the one place where each becomes an HTTP response.
//!
//! Bodies follow the Runtime API's shape: `{"errorMessage": "..", "errorType": ".."}`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

/// A request the API refuses. Variants carry only what the rendered message needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApiError {
    /// The id in a `/response` or `/error` path is not the outstanding invocation (unknown,
    /// already answered, or abandoned by the caller).
    InvalidRequestId,
    /// The runtime called an endpoint its state does not allow (e.g. `/next` while an
    /// invocation is still unanswered, anything after `/init/error`).
    InvalidStateTransition {
        from: &'static str,
        to: &'static str,
    },
    /// A parked `/next` was replaced by a newer `/next` from the same client.
    RuntimeNextSuperseded,
    /// A posted body was larger than the configured maximum.
    TooLarge {
        max: usize,
    },
    /// The request body ended early or the connection failed while reading it.
    TruncatedRequest,
    /// `Lambda-Runtime-Function-Response-Mode` had a value other than `streaming`.
    InvalidResponseMode,
    /// An Extensions API refusal (always 403): `Extension.<kind>` or `InvalidRequestFormat`.
    Extension {
        kind: ExtensionErrorKind,
        message: String,
    },
    /// A Telemetry or Logs API subscription body that cannot be used.
    InvalidSubscription(String),
    NotFound(String),
    MethodNotAllowed,
}

/// The `errorType`s of the Extensions API's 403 answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExtensionErrorKind {
    InvalidExtensionName,
    RegistrationClosed,
    InvalidExtensionState,
    TooManyExtensions,
    InvalidEventType,
    MissingExtensionIdentifier,
    InvalidExtensionIdentifier,
    InvalidRequestFormat,
}

impl ExtensionErrorKind {
    fn error_type(self) -> &'static str {
        match self {
            Self::InvalidExtensionName => "Extension.InvalidExtensionName",
            Self::RegistrationClosed => "Extension.RegistrationClosed",
            Self::InvalidExtensionState => "Extension.InvalidExtensionState",
            Self::TooManyExtensions => "Extension.TooManyExtensions",
            Self::InvalidEventType => "Extension.InvalidEventType",
            Self::MissingExtensionIdentifier => "Extension.MissingExtensionIdentifier",
            Self::InvalidExtensionIdentifier => "Extension.InvalidExtensionIdentifier",
            Self::InvalidRequestFormat => "InvalidRequestFormat",
        }
    }
}

impl ApiError {
    pub(crate) fn extension(kind: ExtensionErrorKind, message: impl Into<String>) -> Self {
        Self::Extension {
            kind,
            message: message.into(),
        }
    }

    /// Status, `errorType` and `errorMessage` of this error.
    pub(crate) fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            Self::InvalidRequestId => (
                StatusCode::BAD_REQUEST,
                "InvalidRequestID",
                "Invalid request ID".to_owned(),
            ),
            Self::InvalidStateTransition { from, to } => (
                StatusCode::FORBIDDEN,
                "InvalidStateTransition",
                format!(
                    "State transition from {from} to {to} failed for runtime. \
                     Error: State transition is not allowed"
                ),
            ),
            Self::RuntimeNextSuperseded => (
                StatusCode::FORBIDDEN,
                "InvalidStateTransition",
                "State transition from Ready to Ready failed for runtime. \
                 Error: a newer /next request replaced this one"
                    .to_owned(),
            ),
            Self::TooLarge { max } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                format!("Exceeded maximum allowed payload size ({max} bytes)."),
            ),
            Self::TruncatedRequest => (
                StatusCode::BAD_REQUEST,
                "TruncatedHTTPRequest",
                "The HTTP request body was truncated".to_owned(),
            ),
            Self::InvalidResponseMode => (
                StatusCode::BAD_REQUEST,
                "InvalidFunctionResponseMode",
                "Invalid value of Lambda-Runtime-Function-Response-Mode (expected: streaming)"
                    .to_owned(),
            ),
            Self::Extension { kind, message } => {
                (StatusCode::FORBIDDEN, kind.error_type(), message.clone())
            }
            Self::InvalidSubscription(message) => {
                (StatusCode::BAD_REQUEST, "ValidationError", message.clone())
            }
            Self::NotFound(path) => (
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("No such endpoint: {path}"),
            ),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "Method not allowed for this endpoint".to_owned(),
            ),
        }
    }

    /// The HTTP response for this error.
    pub(crate) fn into_response(self) -> Response<Full<Bytes>> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Body<'a> {
            error_message: &'a str,
            error_type: &'a str,
        }
        let (status, error_type, message) = self.parts();
        tracing::debug!(%status, error_type, message, "runtime api request refused");
        let body = serde_json::to_vec(&Body {
            error_message: &message,
            error_type,
        })
        .unwrap_or_default();
        json_response(status, Bytes::from(body))
    }
}

/// A response with a JSON body.
pub(crate) fn json_response(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// `202 {"status":"OK"}`: the answer to every accepted post.
pub(crate) fn accepted() -> Response<Full<Bytes>> {
    json_response(
        StatusCode::ACCEPTED,
        Bytes::from_static(br#"{"status":"OK"}"#),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(err: ApiError) -> (StatusCode, serde_json::Value) {
        let (status, error_type, message) = err.parts();
        (
            status,
            serde_json::json!({ "errorMessage": message, "errorType": error_type }),
        )
    }

    #[test]
    fn wire_texts_match_lambda() {
        let (status, body) = body_of(ApiError::InvalidRequestId);
        assert_eq!(status, 400);
        assert_eq!(
            body,
            serde_json::json!({"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"})
        );

        let (status, body) = body_of(ApiError::TooLarge { max: 6_291_556 });
        assert_eq!(status, 413);
        assert_eq!(
            body,
            serde_json::json!({
                "errorMessage": "Exceeded maximum allowed payload size (6291556 bytes).",
                "errorType": "RequestEntityTooLarge"
            })
        );

        let (status, body) = body_of(ApiError::extension(
            ExtensionErrorKind::RegistrationClosed,
            "closed",
        ));
        assert_eq!(status, 403);
        assert_eq!(body["errorType"], "Extension.RegistrationClosed");

        let (status, body) = body_of(ApiError::InvalidStateTransition {
            from: "Running",
            to: "Ready",
        });
        assert_eq!(status, 403);
        assert_eq!(body["errorType"], "InvalidStateTransition");
        assert!(
            body["errorMessage"]
                .as_str()
                .unwrap()
                .starts_with("State transition from Running to Ready failed for runtime.")
        );
    }
}
