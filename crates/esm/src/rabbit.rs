//! The RabbitMQ poller of one mapping (Amazon MQ for RabbitMQ's shape, lambda-facts §6.10): it
//! reads the mapping's queue on a broker named in Kindling's configuration, in batches of up to
//! `BatchSize` messages gathered within the batching window (500 ms when none is set, as on
//! Lambda), and invokes the function with `rmqMessagesByQueue` (base64 data, basicProperties).
//! - success: every message is acknowledged;
//! - function error, throttle or system error: messages are requeued (`basic.nack` with
//!   requeue; the broker marks them `redelivered`); a message that fails again once
//!   redelivered is rejected without requeue, which dead-letters it through the queue's
//!   dead-letter exchange when it has one (else the broker drops it).
//!
//! - messages no pattern of the mapping's `FilterCriteria` matches are acknowledged without an
//!   invocation (Lambda drops them); patterns see the message as the event renders it, with
//!   `data` decoded (a JSON object or array parsed, other UTF-8 text as a string).
//!
//! Unacknowledged messages of a lost connection (or a crash of Kindling) go back to the queue:
//! the broker keeps them until they are acknowledged.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use kindling_control::ControlError;
use kindling_filter::Pattern;
use kindling_model::esm::MappingRecord;
use kindling_scheduler::{InvokeRequest, SchedulerError};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicRejectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::Inner;

/// Lambda's batching window for Amazon MQ when the mapping sets none.
const DEFAULT_WINDOW: Duration = Duration::from_millis(500);
/// Pause between polls of an empty queue.
const IDLE_POLL: Duration = Duration::from_millis(100);

/// The broker name of `arn:aws:mq:<region>:<account>:broker:<name>:<id>`.
pub(crate) fn broker_name(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "mq", _, _, "broker", name, _id] if !name.is_empty() => Some(name),
        _ => None,
    }
}

/// The virtual host an `amqp://` URL names (`/` when it names none).
fn vhost(url: &str) -> String {
    let rest = url.strip_prefix("amqp://").unwrap_or(url);
    match rest.split_once('/') {
        Some((_, v)) if !v.is_empty() => percent_decode(v.split('?').next().unwrap_or(v)),
        _ => "/".into(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..(i + 3).min(s.len())], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn wait_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        r = stop.changed() => r.is_err() || *stop.borrow(),
        () = tokio::time::sleep(d) => *stop.borrow(),
    }
}

pub(crate) async fn run(inner: Arc<Inner>, rec: MappingRecord, mut stop: watch::Receiver<bool>) {
    let arn = rec.event_source_arn.clone().unwrap_or_default();
    let Some(url) = broker_name(&arn)
        .and_then(|n| inner.config.brokers.get(n))
        .cloned()
    else {
        tracing::warn!(mapping = %rec.uuid, broker = %arn, "the mapping's broker is not configured; not polling");
        let _ = stop.changed().await;
        return;
    };
    let Some(queue) = rec.queues.first().cloned() else {
        return;
    };
    tracing::info!(mapping = %rec.uuid, broker = %arn, %queue, function = %rec.function_name, "event source mapping polling");
    loop {
        if *stop.borrow() {
            break;
        }
        match Connection::connect(&url, ConnectionProperties::default()).await {
            Ok(conn) => {
                let result = match conn.create_channel().await {
                    Ok(ch) => poll(&inner, &rec, &arn, &queue, &vhost(&url), &ch, &mut stop).await,
                    Err(e) => Err(e),
                };
                let _ = conn.close(200, "kindling mapping stopped".into()).await;
                match result {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(mapping = %rec.uuid, error = %e, "the RabbitMQ channel failed; reconnecting");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(mapping = %rec.uuid, error = %e, "connecting to the RabbitMQ broker failed; retrying");
            }
        }
        if wait_or_stop(&mut stop, Duration::from_secs(2)).await {
            break;
        }
    }
    tracing::info!(mapping = %rec.uuid, "event source mapping stopped polling");
}

/// Polls until stopped (`Ok`) or the channel fails.
async fn poll(
    inner: &Arc<Inner>,
    rec: &MappingRecord,
    arn: &str,
    queue: &str,
    vhost: &str,
    ch: &Channel,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), lapin::Error> {
    let window = match rec.maximum_batching_window_in_seconds {
        0 => DEFAULT_WINDOW,
        s => Duration::from_secs(u64::from(s)),
    };
    let want = rec.batch_size.max(1) as usize;
    let patterns: Vec<Pattern> = rec
        .filters
        .iter()
        .flatten()
        .filter_map(|p| Pattern::parse_str(p).ok())
        .collect();
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let mut batch: Vec<Delivery> = Vec::new();
        let mut deadline = None;
        while batch.len() < want {
            match ch
                .basic_get(queue.into(), BasicGetOptions { no_ack: false })
                .await?
            {
                Some(m) => {
                    deadline.get_or_insert_with(|| tokio::time::Instant::now() + window);
                    batch.push(m.delivery);
                }
                None => {
                    let Some(d) = deadline else { break };
                    let now = tokio::time::Instant::now();
                    if now >= d {
                        break;
                    }
                    tokio::time::sleep((d - now).min(Duration::from_millis(20))).await;
                }
            }
        }
        if batch.is_empty() {
            if wait_or_stop(stop, IDLE_POLL).await {
                return Ok(());
            }
            continue;
        }
        if !patterns.is_empty() {
            let (kept, dropped): (Vec<Delivery>, Vec<Delivery>) = batch
                .into_iter()
                .partition(|d| patterns.iter().any(|p| p.matches(&filter_document(d))));
            for d in &dropped {
                d.acker.ack(BasicAckOptions::default()).await?;
            }
            batch = kept;
            if batch.is_empty() {
                continue;
            }
        }
        let ok = invoke(inner, rec, arn, queue, vhost, &batch).await;
        for d in &batch {
            if ok {
                d.acker.ack(BasicAckOptions::default()).await?;
            } else if d.redelivered {
                d.acker
                    .reject(BasicRejectOptions { requeue: false })
                    .await?;
            } else {
                d.acker
                    .nack(BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    })
                    .await?;
            }
        }
        if !ok && wait_or_stop(stop, Duration::from_millis(200)).await {
            return Ok(());
        }
    }
}

/// Runs the function on a batch; whether it succeeded.
async fn invoke(
    inner: &Arc<Inner>,
    rec: &MappingRecord,
    arn: &str,
    queue: &str,
    vhost: &str,
    batch: &[Delivery],
) -> bool {
    let target = match crate::target::resolve(inner, &rec.function_name, rec.qualifier.as_deref())
        .await
    {
        Ok(t) => t,
        Err(ControlError::NotFound(m)) => {
            tracing::warn!(mapping = %rec.uuid, message = %m, "the mapping's function is gone");
            return false;
        }
        Err(e) => {
            tracing::warn!(mapping = %rec.uuid, error = &e as &dyn std::error::Error, "resolving the mapping's function failed");
            return false;
        }
    };
    let messages: Vec<Value> = batch.iter().map(message).collect();
    let event = json!({
        "eventSource": "aws:rmq",
        "eventSourceArn": arn,
        "rmqMessagesByQueue": { format!("{queue}::{vhost}"): messages },
    });
    let payload = match serde_json::to_vec(&event) {
        Ok(p) => Bytes::from(p),
        Err(_) => return false,
    };
    let req = InvokeRequest {
        target,
        request_id: uuid::Uuid::new_v4().to_string(),
        payload,
        client_context: None,
        trace_id: None,
        tail: false,
        enqueued_ms: None,
    };
    match inner.scheduler.invoke(req).await {
        Ok(r) if r.function_error.is_none() => true,
        Ok(r) => {
            tracing::debug!(mapping = %rec.uuid, request = %r.request_id, "the function failed: the batch is requeued");
            false
        }
        Err(SchedulerError::Throttled(_)) => false,
        Err(e) => {
            tracing::warn!(mapping = %rec.uuid, error = &e as &dyn std::error::Error, "invoking the mapping's function failed");
            false
        }
    }
}

/// One message as Lambda renders it.
fn message(d: &Delivery) -> Value {
    json!({
        "basicProperties": properties(&d.properties, d.data.len()),
        "redelivered": d.redelivered,
        "data": STANDARD.encode(&d.data),
    })
}

/// What filter patterns see of a message: its event form with `data` decoded (a JSON object
/// or array parsed, other UTF-8 text as a string; binary data stays base64).
fn filter_document(d: &Delivery) -> Value {
    let mut doc = message(d);
    doc["data"] = match serde_json::from_slice::<Value>(&d.data) {
        Ok(parsed) if parsed.is_object() || parsed.is_array() => parsed,
        _ => match std::str::from_utf8(&d.data) {
            Ok(text) => Value::String(text.to_string()),
            Err(_) => doc["data"].take(),
        },
    };
    doc
}

fn properties(p: &BasicProperties, body_size: usize) -> Value {
    let s = |v: &Option<lapin::types::ShortString>| {
        v.as_ref().map_or(Value::Null, |x| json!(x.as_str()))
    };
    json!({
        "contentType": s(p.content_type()),
        "contentEncoding": s(p.content_encoding()),
        "headers": p.headers().as_ref().map_or_else(|| json!({}), headers),
        "deliveryMode": p.delivery_mode().map_or(Value::Null, |v| json!(v)),
        "priority": p.priority().map_or(Value::Null, |v| json!(v)),
        "correlationId": s(p.correlation_id()),
        "replyTo": s(p.reply_to()),
        "expiration": s(p.expiration()),
        "messageId": s(p.message_id()),
        "timestamp": p.timestamp().map_or(Value::Null, |v| json!(v)),
        "type": s(p.kind()),
        "userId": s(p.user_id()),
        "appId": s(p.app_id()),
        "clusterId": s(p.cluster_id()),
        "bodySize": body_size,
    })
}

/// Header values: strings as `{"bytes": [...]}`, numbers and booleans as themselves.
fn headers(t: &FieldTable) -> Value {
    let mut m = Map::new();
    for (k, v) in t.inner() {
        m.insert(k.as_str().to_string(), header_value(v));
    }
    Value::Object(m)
}

fn header_value(v: &AMQPValue) -> Value {
    match v {
        AMQPValue::Boolean(b) => json!(b),
        AMQPValue::ShortShortInt(n) => json!(n),
        AMQPValue::ShortShortUInt(n) => json!(n),
        AMQPValue::ShortInt(n) => json!(n),
        AMQPValue::ShortUInt(n) => json!(n),
        AMQPValue::LongInt(n) => json!(n),
        AMQPValue::LongUInt(n) => json!(n),
        AMQPValue::LongLongInt(n) => json!(n),
        AMQPValue::Float(n) => json!(n),
        AMQPValue::Double(n) => json!(n),
        AMQPValue::ShortString(s) => json!({ "bytes": s.as_str().as_bytes() }),
        AMQPValue::LongString(s) => json!({ "bytes": s.as_bytes() }),
        AMQPValue::Timestamp(t) => json!(t),
        AMQPValue::FieldTable(t) => headers(t),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(header_value).collect()),
        AMQPValue::ByteArray(b) => json!({ "bytes": b.as_slice() }),
        other => json!(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_names_and_vhosts() {
        assert_eq!(
            broker_name("arn:aws:mq:us-east-1:123456789012:broker:local:b-1234"),
            Some("local")
        );
        assert_eq!(broker_name("arn:aws:sqs:us-east-1:123456789012:q"), None);
        assert_eq!(vhost("amqp://guest:guest@127.0.0.1:5672"), "/");
        assert_eq!(vhost("amqp://guest:guest@127.0.0.1:5672/%2F"), "/");
        assert_eq!(vhost("amqp://u:p@h:1/prod"), "prod");
    }
}
