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

/// How many messages [`redrive`] reads from the store at a time.
const REDRIVE_PAGE: usize = 100;

/// Redrives every message of `queue` (or of all queues) to its function as an asynchronous
/// event, each removed from its queue in the transaction that enqueues its event. Stops at the
/// first message whose function is unknown when `function` is not given (the messages before
/// it stay redriven). Returns how many were redriven.
///
/// Messages are read a page at a time (a whole queue of 256 KB messages is not held in
/// memory), and at most as many as each queue held at the start are taken: an event that
/// fails again may come back to the same queue while the redrive runs.
pub fn redrive(
    store: &dyn QueueStore,
    queue: Option<&str>,
    function: Option<&str>,
    now_ms: i64,
) -> Result<u64, DlqError> {
    let mut total = 0;
    let mut found = false;
    for q in store.queues()? {
        if queue.is_some_and(|name| name != q.name) {
            continue;
        }
        found = true;
        let counts = store.queue_counts(q.id, i64::MAX)?;
        let mut left = counts.visible + counts.in_flight + counts.delayed;
        while left > 0 {
            let want = usize::try_from(left).map_or(REDRIVE_PAGE, |l| l.min(REDRIVE_PAGE));
            let page = store.peek_messages(q.id, want)?;
            if page.is_empty() {
                break;
            }
            for m in page {
                left = left.saturating_sub(1);
                total += redrive_one(store, &q, &m, function, now_ms)?;
            }
        }
    }
    match queue {
        Some(name) if !found => Err(DlqError::NoSuchQueue(name.to_string())),
        _ => Ok(total),
    }
}

fn redrive_one(
    store: &dyn QueueStore,
    q: &QueueRecord,
    m: &StoredMessage,
    function: Option<&str>,
    now_ms: i64,
) -> Result<u64, DlqError> {
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
    Ok(store.redrive_messages(q.id, &[m.seq], &[event])?)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kindling_model::messaging::NewMessage;
    use kindling_store::SqliteStore;
    use kindling_store::messaging::QueueOp;

    use super::*;

    fn message(i: usize) -> NewMessage {
        NewMessage {
            message_id: format!("m{i}"),
            body: format!("{{\"n\":{i}}}"),
            attributes: BTreeMap::new(),
            system_attributes: BTreeMap::new(),
            md5_body: String::new(),
            md5_attributes: None,
            md5_system_attributes: None,
            sender_id: "s".into(),
            sent_ms: 1,
            visible_ms: 1,
            group_id: None,
            dedup_id: None,
            dedup_key: None,
            dedup_until_ms: 0,
            dead_letter_source_arn: None,
            receive_count: 0,
            first_receive_ms: None,
        }
    }

    /// More messages than a page: every one is redriven, a page at a time, and the queue
    /// ends empty.
    #[test]
    fn redrive_takes_every_message_page_by_page() {
        let store = SqliteStore::in_memory().expect("db");
        let rec = QueueRecord {
            id: 0,
            account: "000000000000".into(),
            name: "dlq".into(),
            fifo: false,
            attributes: BTreeMap::new(),
            tags: BTreeMap::new(),
            created_ms: 1,
            modified_ms: 1,
        };
        let (q, _) = store.create_queue(&rec).expect("queue");
        let n = 2 * REDRIVE_PAGE + 50;
        let send = QueueOp::Send {
            queue_id: q.id,
            messages: (0..n).map(message).collect(),
        };
        store.apply_queue_ops(&[send], true).expect("send");
        assert!(matches!(
            redrive(&store, Some("dlq"), None, 5),
            Err(DlqError::FunctionRequired { .. })
        ));
        assert!(matches!(
            redrive(&store, Some("nope"), Some("f"), 5),
            Err(DlqError::NoSuchQueue(_))
        ));
        assert_eq!(
            redrive(&store, Some("dlq"), Some("f"), 5).expect("redrive"),
            n as u64
        );
        assert!(store.peek_messages(q.id, 10).expect("peek").is_empty());
    }
}
