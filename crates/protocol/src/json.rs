//! AWS JSON 1.0 / 1.1 (SQS, CloudWatch Logs, EventBridge): `POST /` with `X-Amz-Target:
//! <prefix>.<Operation>`, JSON in and out, errors as `{"__type": …, "message": …}`.

use bytes::Bytes;

use crate::error::WireError;

/// The two JSON protocol versions; they differ only in the content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonVersion {
    V1_0,
    V1_1,
}

impl JsonVersion {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::V1_0 => "application/x-amz-json-1.0",
            Self::V1_1 => "application/x-amz-json-1.1",
        }
    }
}

/// The operation named by an `X-Amz-Target` header with this service's prefix
/// (`AmazonSQS.SendMessage` with prefix `AmazonSQS` → `SendMessage`).
pub fn target_operation<'a>(target: &'a str, prefix: &str) -> Option<&'a str> {
    target
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('.'))
        .filter(|op| !op.is_empty())
}

/// A JSON success with the protocol's content type.
pub fn response(
    version: JsonVersion,
    request_id: &str,
    body: &serde_json::Value,
) -> crate::Response {
    build(200, version, request_id, Bytes::from(body.to_string()))
}

/// A JSON error. `type_prefix` is prepended to the code in `__type` (e.g.
/// `com.amazonaws.sqs#`; clients strip everything up to `#`). `query_compat` adds SQS's
/// `x-amzn-query-error: <legacy code>;<Sender|Receiver>` for services whose model is
/// `awsQueryCompatible`.
pub fn error_response(
    err: &dyn WireError,
    version: JsonVersion,
    request_id: &str,
    type_prefix: &str,
    query_compat: Option<&str>,
) -> crate::Response {
    let body = serde_json::json!({
        "__type": format!("{type_prefix}{}", err.code()),
        "message": err.message(),
    });
    let mut res = build(
        err.status(),
        version,
        request_id,
        Bytes::from(body.to_string()),
    );
    if let Some(legacy) = query_compat
        && let Ok(v) = http::HeaderValue::from_str(&format!("{legacy};{}", err.fault().as_str()))
    {
        res.headers_mut().insert("x-amzn-query-error", v);
    }
    res
}

fn build(status: u16, version: JsonVersion, request_id: &str, body: Bytes) -> crate::Response {
    let mut res = http::Response::new(body);
    *res.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = res.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(version.content_type()),
    );
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-RequestId", v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Gone;
    impl WireError for Gone {
        fn status(&self) -> u16 {
            400
        }
        fn code(&self) -> &str {
            "QueueDoesNotExist"
        }
        fn message(&self) -> String {
            "The specified queue does not exist.".into()
        }
    }

    #[test]
    fn targets_name_operations_of_one_prefix() {
        assert_eq!(
            target_operation("AmazonSQS.SendMessage", "AmazonSQS"),
            Some("SendMessage")
        );
        assert_eq!(target_operation("AmazonSQSX.Send", "AmazonSQS"), None);
        assert_eq!(target_operation("AmazonSQS.", "AmazonSQS"), None);
    }

    #[test]
    fn errors_carry_type_message_and_query_compat_header() {
        let res = error_response(
            &Gone,
            JsonVersion::V1_0,
            "r1",
            "com.amazonaws.sqs#",
            Some("AWS.SimpleQueueService.NonExistentQueue"),
        );
        assert_eq!(res.status(), 400);
        assert_eq!(res.headers()["content-type"], "application/x-amz-json-1.0");
        assert_eq!(
            res.headers()["x-amzn-query-error"],
            "AWS.SimpleQueueService.NonExistentQueue;Sender"
        );
        let body: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
        assert_eq!(body["__type"], "com.amazonaws.sqs#QueueDoesNotExist");
        assert_eq!(body["message"], "The specified queue does not exist.");
    }
}
