//! What happens to an event after an attempt: destination records, dead letters and
//! follow-up events, built as data for one atomic `finish_event`.

use kindling_model::events::{
    AsyncEvent, AttemptResult, Condition, DeadLetter, DestinationKind, destination_kind,
    destination_record, payload_json,
};
use serde_json::{Value, json};

/// Dead letters and follow-up events produced by one delivery.
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    pub letters: Vec<DeadLetter>,
    pub follow_ups: Vec<AsyncEvent>,
}

impl Deliveries {
    /// Delivers `body` to a destination ARN (a function gets it as an Event invocation).
    pub fn send(
        &mut self,
        now_ms: i64,
        event: &AsyncEvent,
        target_arn: &str,
        body: Value,
        attributes: Value,
    ) {
        match destination_kind(target_arn) {
            Some(DestinationKind::Function { name, qualifier }) => {
                self.follow_ups.push(AsyncEvent {
                    id: uuid::Uuid::new_v4().to_string(),
                    function_name: name,
                    qualifier,
                    payload: body.to_string().into_bytes(),
                    enqueued_ms: now_ms,
                    attempts: 0,
                    not_before_ms: now_ms,
                    last_result: None,
                    // The destination's invocation continues the event's trace.
                    trace_header: event.trace_header.clone(),
                })
            }
            Some(DestinationKind::Store { queue }) => self.letters.push(DeadLetter {
                id: uuid::Uuid::new_v4().to_string(),
                queue,
                target_arn: target_arn.to_string(),
                created_ms: now_ms,
                body,
                attributes,
                function_name: event.function_name.clone(),
                qualifier: event.qualifier.clone(),
                request_payload: payload_json(&event.payload),
                trace_header: event.trace_header.clone(),
            }),
            None => tracing::warn!(
                target = target_arn,
                "unsupported destination; record dropped"
            ),
        }
    }
}

/// The message Lambda sends to a dead-letter queue: the original event with attributes.
pub(crate) fn dlq_attributes(event: &AsyncEvent, result: Option<&AttemptResult>) -> Value {
    let message = result.map_or_else(
        || "Event age exceeded".to_string(),
        |r| {
            let text = r.payload.to_string();
            text.chars().take(1024).collect()
        },
    );
    json!({
        "RequestID": event.id,
        "ErrorCode": result.map_or(200, |r| r.status_code).to_string(),
        "ErrorMessage": message,
    })
}

/// Everything a failed event produces: its DLQ message and its OnFailure record.
pub(crate) fn failure(
    now_ms: i64,
    event: &AsyncEvent,
    function_arn: &str,
    condition: Condition,
    result: Option<&AttemptResult>,
    dlq: Option<&str>,
    on_failure: Option<&str>,
) -> Deliveries {
    let mut out = Deliveries::default();
    if let Some(target) = dlq {
        out.send(
            now_ms,
            event,
            target,
            payload_json(&event.payload),
            dlq_attributes(event, result),
        );
    }
    if let Some(target) = on_failure {
        let record = destination_record(
            now_ms,
            event,
            function_arn,
            condition,
            event.attempts,
            result,
        );
        out.send(now_ms, event, target, record, json!({}));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> AsyncEvent {
        AsyncEvent {
            id: "req-1".into(),
            function_name: "f".into(),
            qualifier: Some("live".into()),
            payload: br#"{"k":1}"#.to_vec(),
            enqueued_ms: 0,
            attempts: 3,
            not_before_ms: 0,
            last_result: None,
            trace_header: Some("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0".into()),
        }
    }

    #[test]
    fn failure_goes_to_the_dlq_and_the_on_failure_destination() {
        let result = AttemptResult {
            status_code: 200,
            executed_version: "2".into(),
            function_error: Some("Unhandled".into()),
            payload: json!({"errorMessage": "x".repeat(2000)}),
        };
        let out = failure(
            5,
            &event(),
            "arn:aws:lambda:us-east-1:000000000000:function:f:live",
            Condition::RetriesExhausted,
            Some(&result),
            Some("arn:aws:sqs:us-east-1:000000000000:dlq"),
            Some("arn:aws:lambda:us-east-1:000000000000:function:handler"),
        );
        assert_eq!(out.letters.len(), 1);
        let dlq = &out.letters[0];
        assert_eq!(dlq.queue, "dlq");
        assert_eq!(dlq.body, json!({"k": 1}));
        assert_eq!(dlq.attributes["RequestID"], "req-1");
        assert_eq!(dlq.attributes["ErrorCode"], "200");
        assert_eq!(
            dlq.attributes["ErrorMessage"]
                .as_str()
                .map(|m| m.chars().count()),
            Some(1024)
        );
        assert_eq!(dlq.qualifier.as_deref(), Some("live"));

        assert_eq!(
            out.follow_ups.len(),
            1,
            "a function destination becomes an Event invocation"
        );
        let follow = &out.follow_ups[0];
        assert_eq!(follow.function_name, "handler");
        assert_eq!(
            follow.trace_header,
            event().trace_header,
            "the destination's invocation continues the event's trace"
        );
        let record: Value = serde_json::from_slice(&follow.payload).unwrap();
        assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
        assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
        assert_eq!(record["responseContext"]["executedVersion"], "2");
    }

    #[test]
    fn age_failures_carry_no_response() {
        let out = failure(
            5,
            &event(),
            "arn",
            Condition::EventAgeExceeded,
            None,
            None,
            Some("arn:aws:sns:us-east-1:000000000000:topic"),
        );
        assert!(out.follow_ups.is_empty());
        let body = &out.letters[0].body;
        assert_eq!(body["requestContext"]["condition"], "EventAgeExceeded");
        assert!(body.get("responsePayload").is_none());
        assert_eq!(out.letters[0].queue, "topic");
    }
}
