//! EventBridge on Kindling's endpoint (AWS JSON 1.1, `X-Amz-Target: AWSEvents.<Op>`, signing
//! name `events`): `PutEvents` puts events on a bus, where the rules CloudFormation made
//! (`AWS::Events::Rule` with an `EventPattern`, kept by `kindling-cron`) match them and hand
//! them to their targets. Other operations are refused with `UnknownOperationException`.
//!
//! Limits as EventBridge's: 1 to 10 entries, 256 KiB per request (entries counted as AWS
//! counts them); an entry without `Source`, `DetailType` or a JSON-object `Detail` fails on
//! its own (`FailedEntryCount`, `ErrorCode`/`ErrorMessage`) while the others go through.
//! *Invariant: no rule logic here; every error leaves as the service's JSON error.*

pub mod error;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use kindling_cron::{Cron, PutEvent};
use kindling_edge::gate::{Access, Gate};
use kindling_protocol::WireError;
use kindling_protocol::json::{self, JsonVersion};
use serde_json::{Value, json};

pub use error::EventsError;

/// The `X-Amz-Target` prefix.
pub const TARGET_PREFIX: &str = "AWSEvents";
/// Largest request body read (the entries' own limit is [`MAX_ENTRIES_SIZE`]).
pub const MAX_BODY: usize = 1024 * 1024;
/// Largest total size of a request's entries (EventBridge: 256 KiB).
pub const MAX_ENTRIES_SIZE: usize = 256 * 1024;
/// Entries per PutEvents.
pub const MAX_ENTRIES: usize = 10;

/// What the router serves with.
#[derive(Clone)]
pub struct EventsState {
    pub cron: Cron,
    /// Who may call (signing name `events`).
    pub gate: Gate,
}

/// The EventBridge API.
pub fn router(state: EventsState) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(state)
}

async fn handle(State(state): State<EventsState>, req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let response = match serve(&state, req).await {
        Ok(v) => json::response(JsonVersion::V1_1, &request_id, &v),
        Err(e) => {
            if e.status() >= 500 {
                tracing::error!(
                    error = &e as &dyn std::error::Error,
                    "EventBridge request failed"
                );
            }
            json::error_response(&e, JsonVersion::V1_1, &request_id, "", None)
        }
    };
    response.map(Body::from).into_response()
}

async fn serve(state: &EventsState, req: Request) -> Result<Value, EventsError> {
    let (parts, body) = req.into_parts();
    let admission = state.gate.check_head(&parts)?;
    let (caller, body) = state
        .gate
        .read_body(admission, &parts, body, MAX_BODY)
        .await?;
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .unwrap_or_default();
    let name = json::target_operation(target, TARGET_PREFIX)
        .ok_or_else(|| EventsError::UnknownOperation(target.to_string()))?;
    if name != "PutEvents" {
        return Err(EventsError::UnknownOperation(name.to_string()));
    }
    let input: Value = serde_json::from_slice(&body.bytes).map_err(|e| {
        EventsError::Serialization(format!("The request body is not valid JSON: {e}"))
    })?;
    let entries = parse_entries(&input)?;
    for bus in entries
        .iter()
        .filter_map(|e| e.as_ref().ok())
        .map(|e| &e.bus)
    {
        let resource = format!(
            "arn:aws:events:{}:{}:event-bus/{}",
            state.cron.region(),
            state.cron.account(),
            kindling_cron::bus::bus_name(bus)
        );
        state
            .gate
            .authorize(&caller, Access::Data, "events:PutEvents", &resource, false)?;
    }
    let mut out = Vec::with_capacity(entries.len());
    let mut failed = 0;
    for entry in entries {
        match entry {
            Ok(e) => {
                let (id, _) = state.cron.put_event(e).await;
                out.push(json!({"EventId": id}));
            }
            Err((code, message)) => {
                failed += 1;
                out.push(json!({"ErrorCode": code, "ErrorMessage": message}));
            }
        }
    }
    Ok(json!({"FailedEntryCount": failed, "Entries": out}))
}

type EntryResult = Result<PutEvent, (&'static str, String)>;

/// The request's entries: each either an event to put or its own failure.
fn parse_entries(input: &Value) -> Result<Vec<EntryResult>, EventsError> {
    let list = input
        .get("Entries")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            EventsError::Validation(
                "1 validation error detected: Value null at 'entries' failed to satisfy constraint: Member must not be null".into(),
            )
        })?;
    if list.is_empty() || list.len() > MAX_ENTRIES {
        return Err(EventsError::Validation(format!(
            "1 validation error detected: Value '{}' at 'entries' failed to satisfy constraint: Member must have length less than or equal to {MAX_ENTRIES} and greater than or equal to 1",
            list.len()
        )));
    }
    let size: usize = list.iter().map(entry_size).sum();
    if size > MAX_ENTRIES_SIZE {
        return Err(EventsError::Validation(
            "Total size of the entries in the request is over the limit.".into(),
        ));
    }
    Ok(list.iter().map(entry).collect())
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// An entry's size as EventBridge counts it (Time: 14 bytes when given).
fn entry_size(e: &Value) -> usize {
    let mut n = ["Source", "DetailType", "Detail"]
        .iter()
        .filter_map(|k| text(e, k))
        .map(str::len)
        .sum::<usize>();
    if e.get("Time").is_some() {
        n += 14;
    }
    if let Some(r) = e.get("Resources").and_then(Value::as_array) {
        n += r
            .iter()
            .filter_map(Value::as_str)
            .map(str::len)
            .sum::<usize>();
    }
    n
}

fn entry(e: &Value) -> EntryResult {
    let invalid = |field: &str| {
        (
            "InvalidArgument",
            format!("Parameter {field} is not valid. Reason: {field} is a required argument."),
        )
    };
    let source = text(e, "Source").ok_or_else(|| invalid("Source"))?;
    let detail_type = text(e, "DetailType").ok_or_else(|| invalid("DetailType"))?;
    let detail_text = text(e, "Detail").ok_or_else(|| invalid("Detail"))?;
    let detail: Value = serde_json::from_str(detail_text)
        .ok()
        .filter(Value::is_object)
        .ok_or(("MalformedDetail", "Detail is malformed.".to_string()))?;
    let resources = match e.get("Resources") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(r)) => r
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid("Resources"))?,
        Some(_) => return Err(invalid("Resources")),
    };
    // Timestamps of AWS JSON 1.1: epoch seconds (a number), or ISO 8601 text.
    let time_ms = match e.get("Time") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64().map(|s| (s * 1000.0) as i64),
        Some(_) => return Err(invalid("Time")),
    };
    Ok(PutEvent {
        bus: text(e, "EventBusName").unwrap_or("default").to_string(),
        source: source.to_string(),
        detail_type: detail_type.to_string(),
        detail,
        resources,
        time_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_checked_one_by_one_and_as_a_request() {
        let input = json!({"Entries": [
            {"Source": "shop", "DetailType": "Order", "Detail": "{\"a\":1}", "Time": 1.5},
            {"Source": "shop", "DetailType": "Order", "Detail": "[1]"},
            {"DetailType": "Order", "Detail": "{}"},
        ]});
        let parsed = parse_entries(&input).expect("entries");
        let first = parsed[0].as_ref().expect("valid");
        assert_eq!(first.detail, json!({"a": 1}));
        assert_eq!(first.time_ms, Some(1500));
        assert_eq!(first.bus, "default");
        assert_eq!(
            parsed[1].as_ref().err().map(|e| e.0),
            Some("MalformedDetail")
        );
        assert_eq!(
            parsed[2].as_ref().err().map(|e| e.0),
            Some("InvalidArgument")
        );
        assert!(matches!(
            parse_entries(&json!({"Entries": []})),
            Err(EventsError::Validation(_))
        ));
        let eleven: Vec<Value> = (0..11).map(|_| json!({})).collect();
        assert!(parse_entries(&json!({"Entries": eleven})).is_err());
        let big = "x".repeat(MAX_ENTRIES_SIZE);
        let huge = json!({"Entries": [{"Source": "s", "DetailType": "d", "Detail": format!("{{\"a\":\"{big}\"}}")}]});
        assert!(matches!(
            parse_entries(&huge),
            Err(EventsError::Validation(m)) if m.contains("over the limit")
        ));
    }
}
