//! Dead-letter queues seen from the operator's side (`kindling dlq`, the web console): a
//! queue's messages listed without receiving them, and redrive of the events they hold back to
//! their functions as asynchronous invocations.
//!
//! A message is redriven to the function it names when it is a destination record
//! (`requestContext.functionArn` and `requestPayload`); a dead letter of an asynchronous
//! invocation is the bare event, so its function must be given. Every function here blocks
//! (store calls): call them on the blocking pool.

use kindling_model::events::AsyncEvent;
use kindling_model::messaging::{QueueRecord, StoredMessage};
use kindling_store::{QueueStore, StoreError};
use serde_json::{Value, json};

/// Why a redrive stopped.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error("no queue named {0}")]
    NoSuchQueue(String),
    #[error(
        "message {message_id} of queue {queue} is an event without its function (a dead-letter \
         queue message): name the function to redrive it to"
    )]
    FunctionRequired { message_id: String, queue: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Messages of one queue (or of all), oldest first, without receiving them; at most `limit`
/// per queue.
pub fn messages(
    store: &dyn QueueStore,
    queue: Option<&str>,
    limit: usize,
) -> Result<Vec<(QueueRecord, StoredMessage)>, DlqError> {
    let mut out = Vec::new();
    let mut found = false;
    for q in store.queues()? {
        if queue.is_some_and(|name| name != q.name) {
            continue;
        }
        found = true;
        for m in store.peek_messages(q.id, limit)? {
            out.push((q.clone(), m));
        }
    }
    match queue {
        Some(name) if !found => Err(DlqError::NoSuchQueue(name.to_string())),
        _ => Ok(out),
    }
}

/// A message body as JSON when it is JSON, else as a string.
pub fn body_json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()))
}

/// A message as `kindling dlq list` prints it: its queue, body (JSON when it is) and
/// attributes.
pub fn listed(q: &QueueRecord, m: &StoredMessage) -> Value {
    let attributes: serde_json::Map<String, Value> = m
        .message
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), json!(v.string_value.clone().unwrap_or_default())))
        .collect();
    json!({
        "id": m.message.message_id,
        "queue": q.name,
        "sent_ms": m.message.sent_ms,
        "body": body_json(&m.message.body),
        "attributes": attributes,
    })
}

/// A destination record names its function and original event.
pub fn redrive_target(body: &Value) -> Option<(String, Option<String>, Value)> {
    let arn = body["requestContext"]["functionArn"].as_str()?;
    let r = kindling_model::FunctionRef::parse(arn, true).ok()?;
    Some((
        r.name,
        r.qualifier.map(|q| q.to_string()),
        body.get("requestPayload")?.clone(),
    ))
}

/// Redrives every message of `queue` (or of all queues) to its function as an asynchronous
/// event, each removed from its queue in the transaction that enqueues its event. Stops at the
/// first message whose function is unknown when `function` is not given (the messages before
/// it stay redriven). Returns how many were redriven.
pub fn redrive(
    store: &dyn QueueStore,
    queue: Option<&str>,
    function: Option<&str>,
    now_ms: i64,
) -> Result<u64, DlqError> {
    let mut total = 0;
    for (q, m) in messages(store, queue, usize::MAX >> 1)? {
        let body = body_json(&m.message.body);
        let (name, qualifier, payload) = match redrive_target(&body) {
            Some(t) => t,
            None => match function {
                Some(f) => (f.to_string(), None, body.clone()),
                None => {
                    return Err(DlqError::FunctionRequired {
                        message_id: m.message.message_id.clone(),
                        queue: q.name.clone(),
                    });
                }
            },
        };
        let event = AsyncEvent {
            id: uuid::Uuid::new_v4().to_string(),
            function_name: name,
            qualifier,
            payload: payload.to_string().into_bytes(),
            enqueued_ms: now_ms,
            attempts: 0,
            not_before_ms: now_ms,
            last_result: None,
            trace_header: None,
        };
        total += store.redrive_messages(q.id, &[m.seq], &[event])?;
    }
    Ok(total)
}
