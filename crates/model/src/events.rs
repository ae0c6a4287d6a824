//! Asynchronous invocation: queued events, event invoke configuration, destination records and
//! dead letters.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::timefmt::iso8601_z;

/// One accepted Event invocation waiting in (or leased from) the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsyncEvent {
    /// The request id, kept across retries.
    pub id: String,
    pub function_name: String,
    /// The qualifier as invoked (`None`: unqualified).
    pub qualifier: Option<String>,
    pub payload: Vec<u8>,
    pub enqueued_ms: i64,
    /// Attempts that ran the function and failed.
    pub attempts: u32,
    pub not_before_ms: i64,
    /// JSON of the last failed attempt (`responseContext` + `responsePayload`).
    pub last_result: Option<String>,
    /// The X-Ray trace header the event was accepted with (or started when it had none): every
    /// attempt, and the function destinations it reaches, continue its Root.
    pub trace_header: Option<String>,
}

/// `FunctionEventInvokeConfig` as stored (per function and qualifier).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventInvokeConfig {
    pub maximum_retry_attempts: Option<u32>,
    pub maximum_event_age_in_seconds: Option<u32>,
    pub on_success: Option<String>,
    pub on_failure: Option<String>,
    pub last_modified_ms: i64,
}

impl EventInvokeConfig {
    pub const DEFAULT_RETRIES: u32 = 2;
    pub const DEFAULT_MAX_AGE_SECONDS: u32 = 21_600;

    pub fn retries(&self) -> u32 {
        self.maximum_retry_attempts.unwrap_or(Self::DEFAULT_RETRIES)
    }

    pub fn max_age_seconds(&self) -> u32 {
        self.maximum_event_age_in_seconds
            .unwrap_or(Self::DEFAULT_MAX_AGE_SECONDS)
    }

    /// The wire shape; `function_arn` is qualified.
    pub fn render(&self, function_arn: &str) -> Value {
        let dest = |d: &Option<String>| match d {
            Some(arn) => json!({ "Destination": arn }),
            None => json!({}),
        };
        let mut v = json!({
            "LastModified": crate::timefmt::epoch_seconds(self.last_modified_ms),
            "FunctionArn": function_arn,
            "DestinationConfig": {
                "OnSuccess": dest(&self.on_success),
                "OnFailure": dest(&self.on_failure),
            },
        });
        if let Some(r) = self.maximum_retry_attempts {
            v["MaximumRetryAttempts"] = json!(r);
        }
        if let Some(a) = self.maximum_event_age_in_seconds {
            v["MaximumEventAgeInSeconds"] = json!(a);
        }
        v
    }
}

/// Why an event ended in a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Success,
    RetriesExhausted,
    EventAgeExceeded,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "Success",
            Self::RetriesExhausted => "RetriesExhausted",
            Self::EventAgeExceeded => "EventAgeExceeded",
        }
    }
}

/// The payload bytes as JSON (the event was validated as JSON when accepted).
pub fn payload_json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// The result of the last attempt, as kept in the queue and shown in destination records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptResult {
    pub status_code: u16,
    pub executed_version: String,
    pub function_error: Option<String>,
    pub payload: Value,
}

/// A destination record (§6.11 of the facts): what OnSuccess/OnFailure targets receive.
pub fn destination_record(
    now_ms: i64,
    event: &AsyncEvent,
    function_arn: &str,
    condition: Condition,
    invoke_count: u32,
    result: Option<&AttemptResult>,
) -> Value {
    let mut record = json!({
        "version": "1.0",
        "timestamp": iso8601_z(now_ms),
        "requestContext": {
            "requestId": event.id,
            "functionArn": function_arn,
            "condition": condition.as_str(),
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": payload_json(&event.payload),
    });
    if let Some(r) = result {
        let mut ctx = json!({ "statusCode": r.status_code, "executedVersion": r.executed_version });
        if let Some(fe) = &r.function_error {
            ctx["functionError"] = json!(fe);
        }
        record["responseContext"] = ctx;
        record["responsePayload"] = r.payload.clone();
    }
    record
}

/// A message in the built-in dead-letter store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: String,
    /// The destination's name (queue or topic).
    pub queue: String,
    /// The destination ARN the message was sent to.
    pub target_arn: String,
    pub created_ms: i64,
    /// Message body: the original event (DLQ) or a destination record.
    pub body: Value,
    /// DLQ message attributes (`RequestID`, `ErrorCode`, `ErrorMessage`).
    pub attributes: Value,
    /// The function (and qualifier) the event was for, for redrive.
    pub function_name: String,
    pub qualifier: Option<String>,
    /// The original event, for redrive.
    pub request_payload: Value,
    /// The event's X-Ray header: the message carries it as `AWSTraceHeader`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_header: Option<String>,
}

/// Where a destination ARN delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationKind {
    /// Another function: the record becomes its Event invocation.
    Function {
        name: String,
        qualifier: Option<String>,
    },
    /// An SQS queue, SNS topic, EventBridge bus or S3 bucket: kept in the built-in dead-letter
    /// store under the resource's name.
    Store { queue: String },
}

/// Classifies a destination ARN; `None` when it is not one Lambda accepts.
pub fn destination_kind(arn: &str) -> Option<DestinationKind> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", _partition, service, _region, _account, resource] = parts.as_slice() else {
        return None;
    };
    match *service {
        "lambda" => {
            let r = crate::FunctionRef::parse(arn, true).ok()?;
            Some(DestinationKind::Function {
                name: r.name,
                qualifier: r.qualifier.map(|q| q.to_string()),
            })
        }
        "sqs" | "sns" if !resource.is_empty() && !resource.contains(':') => {
            Some(DestinationKind::Store {
                queue: (*resource).to_string(),
            })
        }
        "events" => resource
            .strip_prefix("event-bus/")
            .map(|bus| DestinationKind::Store {
                queue: format!("event-bus-{bus}"),
            }),
        "s3" if !resource.is_empty() => Some(DestinationKind::Store {
            queue: format!("s3-{resource}"),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_destinations() {
        assert_eq!(
            destination_kind("arn:aws:sqs:us-east-1:000000000000:dlq"),
            Some(DestinationKind::Store {
                queue: "dlq".into()
            })
        );
        assert_eq!(
            destination_kind("arn:aws:lambda:us-east-1:000000000000:function:f:live"),
            Some(DestinationKind::Function {
                name: "f".into(),
                qualifier: Some("live".into())
            })
        );
        assert!(destination_kind("arn:aws:dynamodb:us-east-1:000000000000:table/t").is_none());
        assert!(destination_kind("not-an-arn").is_none());
    }

    #[test]
    fn builds_records_like_lambda() {
        let ev = AsyncEvent {
            id: "r1".into(),
            function_name: "f".into(),
            qualifier: None,
            payload: br#"{"k":1}"#.to_vec(),
            enqueued_ms: 0,
            attempts: 3,
            not_before_ms: 0,
            last_result: None,
            trace_header: None,
        };
        let result = AttemptResult {
            status_code: 200,
            executed_version: "$LATEST".into(),
            function_error: Some("Unhandled".into()),
            payload: json!({"errorMessage": "boom"}),
        };
        let r = destination_record(
            0,
            &ev,
            "arn:f:$LATEST",
            Condition::RetriesExhausted,
            3,
            Some(&result),
        );
        assert_eq!(r["requestContext"]["condition"], "RetriesExhausted");
        assert_eq!(r["requestContext"]["approximateInvokeCount"], 3);
        assert_eq!(r["requestPayload"]["k"], 1);
        assert_eq!(r["responseContext"]["functionError"], "Unhandled");
        assert_eq!(r["timestamp"], "1970-01-01T00:00:00.000Z");
    }
}
