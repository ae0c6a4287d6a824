//! The JSON bodies of the events extensions receive from `/extension/event/next`.

use bytes::Bytes;
use serde::Serialize;

use crate::types::{Invocation, ShutdownReason};

/// The `tracing.type` Lambda always sends.
const TRACE_TYPE: &str = "X-Amzn-Trace-Id";

#[derive(Serialize)]
#[serde(tag = "eventType", rename_all = "UPPERCASE")]
enum Event<'a> {
    #[serde(rename_all = "camelCase")]
    Invoke {
        deadline_ms: u64,
        request_id: &'a str,
        invoked_function_arn: &'a str,
        tracing: Tracing<'a>,
    },
    #[serde(rename_all = "camelCase")]
    Shutdown {
        shutdown_reason: &'static str,
        deadline_ms: u64,
    },
}

#[derive(Serialize)]
struct Tracing<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    value: &'a str,
}

/// `{"eventType":"INVOKE",...}`. `tracing` is always present (clients such as the Rust
/// `lambda-extension` crate require it); its value is `""` when the invocation has no trace id.
pub(crate) fn invoke(inv: &Invocation) -> Bytes {
    render(&Event::Invoke {
        deadline_ms: inv.deadline_ms,
        request_id: &inv.request_id,
        invoked_function_arn: &inv.invoked_function_arn,
        tracing: Tracing {
            kind: TRACE_TYPE,
            value: inv.trace_id.as_deref().unwrap_or(""),
        },
    })
}

/// `{"eventType":"SHUTDOWN","shutdownReason":..,"deadlineMs":..}`.
pub(crate) fn shutdown(reason: ShutdownReason, deadline_ms: u64) -> Bytes {
    render(&Event::Shutdown {
        shutdown_reason: reason.as_str(),
        deadline_ms,
    })
}

fn render(event: &Event<'_>) -> Bytes {
    // Serializing these shapes (strings and integers only) cannot fail.
    Bytes::from(serde_json::to_vec(event).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoke_event_shape() {
        let inv = Invocation {
            request_id: "r-1".into(),
            deadline_ms: 1_700_000_000_123,
            invoked_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            trace_id: Some("Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1".into()),
            ..Invocation::default()
        };
        let v: serde_json::Value = serde_json::from_slice(&invoke(&inv)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "eventType": "INVOKE",
                "deadlineMs": 1_700_000_000_123_u64,
                "requestId": "r-1",
                "invokedFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:f",
                "tracing": {
                    "type": "X-Amzn-Trace-Id",
                    "value": "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1"
                }
            })
        );
    }

    #[test]
    fn invoke_event_without_trace_keeps_tracing_object() {
        let v: serde_json::Value = serde_json::from_slice(&invoke(&Invocation::default())).unwrap();
        assert_eq!(
            v["tracing"],
            serde_json::json!({"type": "X-Amzn-Trace-Id", "value": ""})
        );
    }

    #[test]
    fn shutdown_event_shape() {
        let v: serde_json::Value =
            serde_json::from_slice(&shutdown(ShutdownReason::Timeout, 42)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"eventType": "SHUTDOWN", "shutdownReason": "timeout", "deadlineMs": 42})
        );
    }
}
