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
