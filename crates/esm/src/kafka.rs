//! The self-managed Kafka poller of one mapping (lambda-facts §6.9): one task per partition of
//! the mapping's topic reads records from the position Kindling keeps in its store (the
//! broker's consumer groups are not used, so any broker that serves Fetch works and several
//! nodes can share the positions), invokes the function with up to `BatchSize` records of that
//! partition (`records` keyed `<topic>-<partition>`, base64 keys and values), and advances the
//! position only after the function succeeded. A failing batch is retried (after a second)
//! until `MaximumRetryAttempts` (-1, the default: forever); then a record of it goes to the
//! `OnFailure` SQS queue, if any, and the position moves past it. Order is kept per partition.
//!
//! A batch is gathered for up to `MaximumBatchingWindowInSeconds` (500 ms when none is set, as
//! on Lambda) after its first record, or until it holds `BatchSize` records. Records that no
//! pattern of the mapping's `FilterCriteria` matches are skipped (the position moves past them
//! without an invocation); patterns see the record with its `value` decoded (parsed when it is
//! a JSON object or array, else the text), as Lambda filters Kafka records.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use kindling_filter::Pattern;
use kindling_model::esm::MappingRecord;
use kindling_queues::SendInput;
use kindling_scheduler::InvokeRequest;
use rskafka::client::ClientBuilder;
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::record::RecordAndOffset;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::{Inner, blocking, now_ms};

/// Most bytes one fetch returns.
const FETCH_BYTES: i32 = 4 * 1024 * 1024;
/// How long a fetch waits at the broker for records.
const FETCH_WAIT_MS: i32 = 500;
/// Lambda's batching window for Kafka when the mapping sets none.
const DEFAULT_WINDOW: Duration = Duration::from_millis(500);

async fn wait_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        r = stop.changed() => r.is_err() || *stop.borrow(),
        () = tokio::time::sleep(d) => *stop.borrow(),
    }
}

/// Polls the mapping's partitions while this node owns the mapping at `epoch` (positions are
/// written only under that epoch: a node that lost the mapping cannot move one back).
pub(crate) async fn run(
    inner: Arc<Inner>,
    rec: MappingRecord,
    epoch: i64,
    mut stop: watch::Receiver<bool>,
) {
    let Some(topic) = rec.topics.first().cloned() else {
        return;
    };
    let rec = Arc::new(rec);
    tracing::info!(mapping = %rec.uuid, %topic, function = %rec.function_name, "event source mapping polling");
    let mut warned = false;
    let partitions = loop {
        let found = match ClientBuilder::new(rec.kafka_bootstrap_servers.clone())
            .build()
            .await
        {
            Ok(client) => match client.list_topics().await {
                Ok(topics) => topics
                    .into_iter()
                    .find(|t| t.name == topic)
                    .map(|t| (Arc::new(client), t.partitions)),
                Err(e) => {
                    if !warned {
                        tracing::warn!(mapping = %rec.uuid, error = %e, "listing Kafka topics failed; retrying");
                    }
                    None
                }
            },
            Err(e) => {
                if !warned {
                    tracing::warn!(mapping = %rec.uuid, error = %e, "connecting to Kafka failed; retrying");
                }
                None
            }
        };
        if let Some(f) = found {
            break f;
        }
        warned = true;
        if wait_or_stop(&mut stop, Duration::from_secs(2)).await {
            return;
        }
    };
    let (client, partitions) = partitions;
    let mut set = JoinSet::new();
    for p in partitions {
        let (inner, rec, client, topic, stop) = (
            Arc::clone(&inner),
            Arc::clone(&rec),
            Arc::clone(&client),
            topic.clone(),
            stop.clone(),
        );
        set.spawn(async move {
            match client
                .partition_client(topic.clone(), p, UnknownTopicHandling::Retry)
                .await
            {
                Ok(pc) => partition(&inner, &rec, epoch, &pc, &topic, p, stop).await,
                Err(e) => {
                    tracing::warn!(mapping = %rec.uuid, partition = p, error = %e, "no client for a Kafka partition")
                }
            }
        });
    }
    let _ = stop.changed().await;
    while set.join_next().await.is_some() {}
    tracing::info!(mapping = %rec.uuid, "event source mapping stopped polling");
}

/// Where a partition's processing starts: the stored position, else `StartingPosition`
/// (stored at once, so a restart continues from there).
async fn start_offset(
    inner: &Arc<Inner>,
    rec: &MappingRecord,
    epoch: i64,
    pc: &PartitionClient,
    key: &str,
) -> Option<i64> {
    let store = Arc::clone(&inner.store);
    let uuid = rec.uuid.clone();
    let stored: HashMap<String, i64> = blocking(move || store.source_positions(&uuid))
        .await
        .ok()?
        .into_iter()
        .collect();
    if let Some(o) = stored.get(key) {
        return Some(*o);
    }
    let at = match rec.starting_position.as_deref() {
        Some("LATEST") => OffsetAt::Latest,
        _ => OffsetAt::Earliest,
    };
    let offset = pc.get_offset(at).await.ok()?;
    save(inner, rec, epoch, key, offset).await.then_some(offset)
}

/// Stores a partition's next position while this node owns the mapping at `epoch`; `false`
/// once another node took the mapping over (nothing written: the partition's task stops).
/// A failing store is logged and the task goes on (the position is written again later).
async fn save(inner: &Arc<Inner>, rec: &MappingRecord, epoch: i64, key: &str, offset: i64) -> bool {
    let store = Arc::clone(&inner.store);
    let (uuid, owned_key) = (rec.uuid.clone(), key.to_string());
    let written = inner
        .cluster()
        .set_owned_source_position(&rec.uuid, key, offset, epoch, move || {
            store.set_source_position(&uuid, &owned_key, offset)
        })
        .await;
    match written {
        Ok(true) => true,
        Ok(false) => {
            tracing::warn!(mapping = %rec.uuid, partition = %key, epoch, "this node no longer owns the mapping: its Kafka position is not written");
            false
        }
        Err(e) => {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "storing a Kafka position failed"
            );
            true
        }
    }
}

async fn partition(
    inner: &Arc<Inner>,
    rec: &MappingRecord,
    epoch: i64,
    pc: &PartitionClient,
    topic: &str,
    p: i32,
    mut stop: watch::Receiver<bool>,
) {
    let key = format!("{topic}-{p}");
    let mut offset = loop {
        if let Some(o) = start_offset(inner, rec, epoch, pc, &key).await {
            break o;
        }
        if wait_or_stop(&mut stop, Duration::from_secs(2)).await {
            return;
        }
    };
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
    let mut attempts: i64 = 0;
    loop {
        if *stop.borrow() {
            return;
        }
        let fetched = tokio::select! {
            r = pc.fetch_records(offset, 1..FETCH_BYTES, FETCH_WAIT_MS) => r,
            _ = stop.changed() => return,
        };
        let mut records: Vec<RecordAndOffset> = match fetched {
            Ok((r, _)) => r.into_iter().filter(|r| r.offset >= offset).collect(),
            Err(e) => {
                tracing::warn!(mapping = %rec.uuid, partition = %key, error = %e, "fetching Kafka records failed");
                if wait_or_stop(&mut stop, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        if records.is_empty() {
            continue;
        }
        records.sort_by_key(|r| r.offset);
        // The batching window: more records until the batch is full or the window ends.
        let deadline = tokio::time::Instant::now() + window;
        while records.len() < want {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break;
            }
            let next = records.last().map_or(offset, |r| r.offset + 1);
            let wait = (deadline - now).as_millis().clamp(1, FETCH_WAIT_MS as u128) as i32;
            let more = tokio::select! {
                r = pc.fetch_records(next, 1..FETCH_BYTES, wait) => r,
                _ = stop.changed() => return,
            };
            match more {
                Ok((more, _)) => {
                    let mut more: Vec<RecordAndOffset> =
                        more.into_iter().filter(|r| r.offset >= next).collect();
                    more.sort_by_key(|r| r.offset);
                    records.extend(more);
                }
                // The batch so far is invoked; the next fetch reports the error.
                Err(_) => break,
            }
        }
        records.truncate(want);
        let last = records.last().map_or(offset, |r| r.offset);
        if !patterns.is_empty() {
            records.retain(|r| {
                let doc = filter_document(topic, p, r);
                patterns.iter().any(|pat| pat.matches(&doc))
            });
            if records.is_empty() {
                // Nothing matched: the position moves past the batch without an invocation.
                offset = last + 1;
                attempts = 0;
                if !save(inner, rec, epoch, &key, offset).await {
                    return;
                }
                continue;
            }
        }
        if invoke(inner, rec, topic, p, &records).await {
            offset = last + 1;
            attempts = 0;
            if !save(inner, rec, epoch, &key, offset).await {
                return;
            }
            continue;
        }
        attempts += 1;
        let limit = rec.maximum_retry_attempts.unwrap_or(-1);
        if limit >= 0 && attempts > limit {
            on_failure(inner, rec, topic, p, &records, attempts).await;
            offset = last + 1;
            attempts = 0;
            if !save(inner, rec, epoch, &key, offset).await {
                return;
            }
            continue;
        }
        if wait_or_stop(&mut stop, Duration::from_secs(1)).await {
            return;
        }
    }
}

fn record_json(topic: &str, p: i32, r: &RecordAndOffset) -> Value {
    let headers: Vec<Value> = r
        .record
        .headers
        .iter()
        .map(|(k, v)| json!({ k.clone(): v }))
        .collect();
    json!({
        "topic": topic,
        "partition": p,
        "offset": r.offset,
        "timestamp": r.record.timestamp.timestamp_millis(),
        "timestampType": "CREATE_TIME",
        "key": r.record.key.as_ref().map(|k| STANDARD.encode(k)),
        "value": r.record.value.as_ref().map(|v| STANDARD.encode(v)),
        "headers": headers,
    })
}

/// What filter patterns see of a record: its event form with `value` decoded (a JSON object
/// or array parsed, other UTF-8 text as a string) and `key` as text.
fn filter_document(topic: &str, p: i32, r: &RecordAndOffset) -> Value {
    let mut doc = record_json(topic, p, r);
    if let Some(v) = &r.record.value {
        doc["value"] = match serde_json::from_slice::<Value>(v) {
            Ok(parsed) if parsed.is_object() || parsed.is_array() => parsed,
            _ => match std::str::from_utf8(v) {
                Ok(text) => Value::String(text.to_string()),
                Err(_) => doc["value"].take(),
            },
        };
    }
    doc
}

/// Runs the function on a batch of one partition; whether it succeeded.
async fn invoke(
    inner: &Arc<Inner>,
    rec: &MappingRecord,
    topic: &str,
    p: i32,
    records: &[RecordAndOffset],
) -> bool {
    let target = match crate::target::resolve(inner, &rec.function_name, rec.qualifier.as_deref())
        .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(mapping = %rec.uuid, error = &e as &dyn std::error::Error, "resolving the mapping's function failed");
            return false;
        }
    };
    let list: Vec<Value> = records.iter().map(|r| record_json(topic, p, r)).collect();
    let event = json!({
        "eventSource": "SelfManagedKafka",
        "bootstrapServers": rec.kafka_bootstrap_servers.join(","),
        "records": { format!("{topic}-{p}"): list },
    });
    let Ok(payload) = serde_json::to_vec(&event) else {
        return false;
    };
    let req = InvokeRequest {
        target,
        request_id: uuid::Uuid::new_v4().to_string(),
        payload: Bytes::from(payload),
        client_context: None,
        trace_id: None,
        tail: false,
        enqueued_ms: None,
    };
    match inner.scheduler.invoke(req).await {
        Ok(r) => r.function_error.is_none(),
        Err(e) => {
            tracing::debug!(mapping = %rec.uuid, error = %e, "a Kafka batch was not run");
            false
        }
    }
}

/// Sends the record of a batch that exhausted its retries to the `OnFailure` queue.
async fn on_failure(
    inner: &Arc<Inner>,
    rec: &MappingRecord,
    topic: &str,
    p: i32,
    records: &[RecordAndOffset],
    attempts: i64,
) {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return;
    };
    tracing::warn!(mapping = %rec.uuid, partition = %format!("{topic}-{p}"), first = first.offset, last = last.offset, "a Kafka batch exhausted its retries");
    let Some(dest) = &rec.on_failure else { return };
    let body = json!({
        "requestContext": {
            "requestId": uuid::Uuid::new_v4().to_string(),
            "functionArn": inner.function_arn(rec),
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": attempts,
        },
        "responseContext": { "statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled" },
        "version": "1.0",
        "timestamp": kindling_model::timefmt::iso8601_z(now_ms()),
        "KafkaBatchInfo": {
            "batchSize": records.len(),
            "bootstrapServers": rec.kafka_bootstrap_servers.join(","),
            "recordsInfo": { format!("{topic}-{p}"): {
                "firstRecordOffset": first.offset.to_string(),
                "firstRecordTimestamp": first.record.timestamp.timestamp_millis(),
                "lastRecordOffset": last.offset.to_string(),
                "lastRecordTimestamp": last.record.timestamp.timestamp_millis(),
            }},
        },
    });
    match inner.queues.queue_by_arn(dest).await {
        Ok(q) => {
            let input = SendInput {
                body: body.to_string(),
                ..SendInput::default()
            };
            if let Err(e) = inner.queues.send(&q, &input, &rec.function_name).await {
                tracing::warn!(error = %e, "sending a Kafka failure record failed");
            }
        }
        Err(e) => {
            tracing::warn!(destination = %dest, error = %e, "the mapping's OnFailure destination is not a queue of this Kindling; record dropped")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rskafka::record::Record;

    use super::*;

    fn record(value: &[u8]) -> RecordAndOffset {
        RecordAndOffset {
            record: Record {
                key: Some(b"k".to_vec()),
                value: Some(value.to_vec()),
                headers: BTreeMap::new(),
                timestamp: rskafka::chrono::DateTime::from_timestamp_millis(1_700_000_000_000)
                    .expect("timestamp"),
            },
            offset: 7,
        }
    }

    #[test]
    fn filters_see_decoded_values() {
        let json = filter_document("t", 0, &record(br#"{"kind":"order","n":3}"#));
        assert_eq!(json["value"]["kind"], "order");
        assert_eq!(json["offset"], 7);
        let text = filter_document("t", 0, &record(b"plain"));
        assert_eq!(text["value"], "plain");
        let binary = filter_document("t", 0, &record(&[0xff, 0xfe]));
        assert_eq!(binary["value"], STANDARD.encode([0xff, 0xfe]));
        let pattern = Pattern::parse_str(r#"{"value":{"kind":["order"]}}"#).expect("pattern");
        assert!(pattern.matches(&json));
        assert!(!pattern.matches(&text));
    }
}
