//! The SQS poller of one mapping: long-polls Kindling's queue in process, batches (BatchSize,
//! MaximumBatchingWindowInSeconds), filters, stops recursive loops, invokes the function
//! synchronously and settles the batch:
//! - success: the batch is deleted (with `ReportBatchItemFailures`, all but the reported items);
//! - function error or an unusable partial response: nothing is deleted; the messages return
//!   after the queue's visibility timeout, and the queue's redrive moves a message that keeps
//!   failing to its dead-letter queue after `maxReceiveCount` receives;
//! - throttled or a system error: the messages are made visible again after a short backoff,
//!   and the poller backs off too;
//! - messages no filter matches are deleted, as Lambda deletes them.
//!
//! Pollers scale with the backlog: a poller whose receive came back full asks for one more, up
//! to `ScalingConfig.MaximumConcurrency` (or the configured default); a poller whose long poll
//! came back empty, or that was throttled, leaves while others remain.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use kindling_control::ControlError;
use kindling_filter::Pattern;
use kindling_model::esm::MappingRecord;
use kindling_model::invoke::InvokeTarget;
use kindling_model::lineage;
use kindling_model::trace::TraceHeader;
use kindling_queues::{
    AttributeInput, QueueError, QueueRecord, ReceiveInput, ReceivedMessage, SendInput,
};
use kindling_scheduler::{InvokeRequest, SchedulerError};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::batch::{Settlement, settle};
use crate::record::{SqsEvent, SqsRecord, filter_document};
use crate::service::DEFAULT_RECURSIVE_LOOP;
use crate::{Inner, blocking};

/// The longest long poll.
const LONG_POLL_SECONDS: i64 = 20;
/// Lambda's synchronous payload limit bounds a batch's bodies (with room for the envelope).
const MAX_BATCH_BYTES: usize = 5 * 1024 * 1024;
/// Backoff bounds after a throttle or a system error.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// One mapping's pollers share this.
struct Poller {
    inner: Arc<Inner>,
    rec: MappingRecord,
    queue: Arc<QueueRecord>,
    queue_arn: String,
    patterns: Vec<Pattern>,
    /// Lineage id of the function (recursive loop detection).
    lineage_id: String,
    /// `FunctionName` as the invoke path takes it, with the qualifier apart.
    qualifier: Option<String>,
    active: AtomicUsize,
    cap: usize,
}

/// How a batch went, for the poller's pace.
enum Flow {
    Continue,
    /// Throttled or a system error: back off.
    Backoff,
    /// The function is gone: wait for the manager to stop the mapping.
    Gone,
}

pub(crate) async fn run(inner: Arc<Inner>, rec: MappingRecord, mut stop: watch::Receiver<bool>) {
    let arn = rec.event_source_arn.clone().unwrap_or_default();
    let mut warned = false;
    let queue = loop {
        match inner.queues.queue_by_arn(&arn).await {
            Ok(q) => break q,
            Err(e) => {
                if !warned {
                    tracing::warn!(mapping = %rec.uuid, queue = %arn, error = %e, "the mapping's queue is not available; retrying");
                    warned = true;
                }
                if wait_or_stop(&mut stop, Duration::from_secs(2)).await {
                    return;
                }
            }
        }
    };
    let patterns = rec
        .filters
        .iter()
        .flatten()
        .filter_map(|p| Pattern::parse_str(p).ok())
        .collect();
    let cap = rec
        .maximum_concurrency
        .unwrap_or(inner.config.default_max_pollers)
        .max(1) as usize;
    let function_arn = inner.control.arn().function_arn(&rec.function_name);
    let poller = Arc::new(Poller {
        queue_arn: inner.queues.queue_arn(&queue),
        lineage_id: lineage::function_id(&function_arn),
        qualifier: rec.qualifier.clone(),
        inner,
        rec,
        queue,
        patterns,
        active: AtomicUsize::new(0),
        cap,
    });
    tracing::info!(mapping = %poller.rec.uuid, queue = %poller.queue_arn, function = %poller.rec.function_name, max_pollers = cap, "event source mapping polling");
    let (more_tx, mut more_rx) = mpsc::channel::<()>(cap);
    let mut set = JoinSet::new();
    spawn_poller(&poller, &mut set, &stop, &more_tx);
    loop {
        tokio::select! {
            r = stop.changed() => if r.is_err() || *stop.borrow() { break },
            Some(()) = more_rx.recv() => {
                if poller.active.load(Ordering::Acquire) < poller.cap {
                    spawn_poller(&poller, &mut set, &stop, &more_tx);
                }
            }
            Some(_) = set.join_next() => {
                if set.is_empty() && !*stop.borrow() {
                    spawn_poller(&poller, &mut set, &stop, &more_tx);
                }
            }
        }
    }
    while set.join_next().await.is_some() {}
    tracing::info!(mapping = %poller.rec.uuid, "event source mapping stopped polling");
}

fn spawn_poller(
    p: &Arc<Poller>,
    set: &mut JoinSet<()>,
    stop: &watch::Receiver<bool>,
    more: &mpsc::Sender<()>,
) {
    p.active.fetch_add(1, Ordering::AcqRel);
    set.spawn(poll(Arc::clone(p), stop.clone(), more.clone()));
}

/// Sleeps for `d` unless stopped first; returns whether the mapping is stopping.
async fn wait_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        r = stop.changed() => r.is_err() || *stop.borrow(),
        () = tokio::time::sleep(d) => *stop.borrow(),
    }
}

async fn poll(p: Arc<Poller>, mut stop: watch::Receiver<bool>, more: mpsc::Sender<()>) {
    let mut backoff = Duration::ZERO;
    // The deletes of the last successful batch, committed while the next one is received.
    let mut settling: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        let batch = tokio::select! {
            r = p.collect() => r,
            _ = stop.changed() => break,
        };
        let others = p.active.load(Ordering::Acquire) > 1;
        match batch {
            Err(e) => {
                tracing::warn!(mapping = %p.rec.uuid, error = %e, "receiving from the mapping's queue failed");
                if wait_or_stop(&mut stop, Duration::from_secs(1)).await {
                    break;
                }
            }
            Ok(b) if b.is_empty() => {
                if others {
                    break;
                }
            }
            Ok(b) => {
                if b.len() >= (p.rec.batch_size as usize).min(10) {
                    let _ = more.try_send(());
                }
                match p.process(b, &mut settling).await {
                    Flow::Continue => backoff = Duration::ZERO,
                    Flow::Backoff => {
                        backoff = (backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
                        if others || wait_or_stop(&mut stop, backoff).await {
                            break;
                        }
                    }
                    Flow::Gone => {
                        if wait_or_stop(&mut stop, Duration::from_secs(1)).await {
                            break;
                        }
                    }
                }
            }
        }
    }
    if let Some(s) = settling {
        let _ = s.await;
    }
    p.active.fetch_sub(1, Ordering::AcqRel);
}

impl Poller {
    async fn receive(&self, max: usize, wait: i64) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.inner
            .queues
            .receive(
                &self.queue,
                &ReceiveInput {
                    max_messages: Some(max as i64),
                    visibility_timeout: None,
                    wait_seconds: Some(wait),
                    system_attribute_names: vec!["All".into()],
                    message_attribute_names: vec!["All".into()],
                },
            )
            .await
    }

    /// One batch: a long poll for the first messages, then, within the batching window, more
    /// until `BatchSize` (or the payload limit) is reached.
    async fn collect(&self) -> Result<Vec<ReceivedMessage>, QueueError> {
        let want = self.rec.batch_size.max(1) as usize;
        let mut out = self.receive(want.min(10), LONG_POLL_SECONDS).await?;
        let window = Duration::from_secs(u64::from(self.rec.maximum_batching_window_in_seconds));
        if out.is_empty() || window.is_zero() {
            return Ok(out);
        }
        let deadline = tokio::time::Instant::now() + window;
        let mut bytes: usize = out.iter().map(|m| m.body.len()).sum();
        while out.len() < want && bytes < MAX_BATCH_BYTES {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break;
            }
            let got = self.receive((want - out.len()).min(10), 0).await?;
            if got.is_empty() {
                tokio::time::sleep((deadline - now).min(Duration::from_millis(20))).await;
            } else {
                bytes += got.iter().map(|m| m.body.len()).sum::<usize>();
                out.extend(got);
            }
        }
        Ok(out)
    }

    /// Runs one batch. On success its deletes are left running in `settling` (at most one
    /// batch's at a time), so that they commit together with the next receive.
    async fn process(
        self: &Arc<Self>,
        msgs: Vec<ReceivedMessage>,
        settling: &mut Option<tokio::task::JoinHandle<()>>,
    ) -> Flow {
        let region = &self.inner.config.region;
        let mut dropped = Vec::new();
        let mut batch: Vec<(ReceivedMessage, u32)> = Vec::with_capacity(msgs.len());
        for m in msgs {
            if !self.patterns.is_empty() {
                let doc = filter_document(&SqsRecord {
                    m: &m,
                    queue_arn: &self.queue_arn,
                    region,
                });
                if !self.patterns.iter().any(|p| p.matches(&doc)) {
                    dropped.push(m.receipt_handle);
                    continue;
                }
            }
            let hops = m
                .attributes
                .get("AWSTraceHeader")
                .and_then(|h| TraceHeader::parse(h).ok())
                .map_or(0, |h| lineage::count(&h, &self.lineage_id));
            batch.push((m, hops));
        }
        if !dropped.is_empty() {
            self.delete(dropped).await;
        }
        if batch
            .iter()
            .any(|(_, hops)| *hops >= lineage::MAX_INVOCATIONS)
            && self.terminates_loops().await
        {
            let (looping, rest): (Vec<_>, Vec<_>) = batch
                .into_iter()
                .partition(|(_, hops)| *hops >= lineage::MAX_INVOCATIONS);
            batch = rest;
            self.stop_loop(looping.into_iter().map(|(m, _)| m).collect())
                .await;
        }
        if batch.is_empty() {
            return Flow::Continue;
        }
        let target = match self.target().await {
            Ok(t) => t,
            Err(ControlError::NotFound(m)) => {
                tracing::warn!(mapping = %self.rec.uuid, message = %m, "the mapping's function is gone");
                self.release(&batch, Duration::ZERO).await;
                return Flow::Gone;
            }
            Err(e) => {
                tracing::warn!(mapping = %self.rec.uuid, error = &e as &dyn std::error::Error, "resolving the mapping's function failed");
                self.release(&batch, BACKOFF_MIN).await;
                return Flow::Backoff;
            }
        };
        let hops = batch.iter().map(|(_, h)| *h).max().unwrap_or(0);
        let trace = batch
            .iter()
            .find_map(|(m, _)| {
                m.attributes
                    .get("AWSTraceHeader")
                    .and_then(|h| TraceHeader::parse(h).ok())
            })
            .or_else(|| TraceHeader::parse(&kindling_scheduler::accept_trace_header(None)).ok())
            .map(|h| lineage::with_count(&h, &self.lineage_id, hops + 1).to_string());
        let event = SqsEvent {
            records: batch
                .iter()
                .map(|(m, _)| SqsRecord {
                    m,
                    queue_arn: &self.queue_arn,
                    region,
                })
                .collect(),
        };
        let payload = match event.to_vec() {
            Ok(p) => Bytes::from(p),
            Err(e) => {
                tracing::error!(error = %e, "encoding an SQS event failed");
                return Flow::Backoff;
            }
        };
        let req = InvokeRequest {
            target,
            request_id: uuid::Uuid::new_v4().to_string(),
            payload,
            client_context: None,
            trace_id: trace,
            tail: false,
            enqueued_ms: None,
        };
        match self.inner.scheduler.invoke(req).await {
            Ok(r) if r.function_error.is_none() => {
                let settlement = if self.rec.reports_item_failures() {
                    let ids: HashSet<&str> =
                        batch.iter().map(|(m, _)| m.message_id.as_str()).collect();
                    settle(&r.payload, &ids)
                } else {
                    Settlement::AllSucceeded
                };
                let done: Vec<String> = match &settlement {
                    Settlement::AllSucceeded => batch
                        .iter()
                        .map(|(m, _)| m.receipt_handle.clone())
                        .collect(),
                    Settlement::Failed(failed) => batch
                        .iter()
                        .filter(|(m, _)| !failed.contains(&m.message_id))
                        .map(|(m, _)| m.receipt_handle.clone())
                        .collect(),
                    Settlement::AllFailed => {
                        tracing::info!(mapping = %self.rec.uuid, request = %r.request_id, "the function's partial batch response is not valid: the whole batch failed");
                        Vec::new()
                    }
                };
                if let Some(previous) = settling.take() {
                    let _ = previous.await;
                }
                let me = Arc::clone(self);
                *settling = Some(tokio::spawn(async move { me.delete(done).await }));
                Flow::Continue
            }
            Ok(r) => {
                tracing::debug!(mapping = %self.rec.uuid, request = %r.request_id, "the function failed: the batch returns after the visibility timeout");
                Flow::Continue
            }
            Err(SchedulerError::Throttled(reason)) => {
                tracing::debug!(mapping = %self.rec.uuid, ?reason, "throttled: the batch returns to the queue");
                self.release(&batch, Duration::from_secs(1)).await;
                Flow::Backoff
            }
            Err(SchedulerError::ShuttingDown) => Flow::Gone,
            Err(e) => {
                tracing::warn!(mapping = %self.rec.uuid, error = &e as &dyn std::error::Error, "invoking the mapping's function failed");
                self.release(&batch, Duration::from_secs(1)).await;
                Flow::Backoff
            }
        }
    }

    async fn target(&self) -> Result<InvokeTarget, ControlError> {
        crate::target::resolve(
            &self.inner,
            &self.rec.function_name,
            self.qualifier.as_deref(),
        )
        .await
    }

    /// Deletes messages by receipt handle, ten per call.
    async fn delete(&self, handles: Vec<String>) {
        for chunk in handles.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, h)| (i.to_string(), h.clone()))
                .collect();
            if let Err(e) = self.inner.queues.delete_batch(&self.queue, entries).await {
                tracing::warn!(mapping = %self.rec.uuid, error = %e, "deleting processed messages failed; they will be processed again");
            }
        }
    }

    /// Makes a batch visible again after `after`.
    async fn release(&self, batch: &[(ReceivedMessage, u32)], after: Duration) {
        for chunk in batch.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, (m, _))| {
                    (
                        i.to_string(),
                        m.receipt_handle.clone(),
                        after.as_secs() as i64,
                    )
                })
                .collect();
            let _ = self
                .inner
                .queues
                .change_visibility_batch(&self.queue, entries)
                .await;
        }
    }

    /// Whether the function's `RecursiveLoop` is `Terminate` (the default).
    async fn terminates_loops(&self) -> bool {
        let store = Arc::clone(&self.inner.store);
        let name = self.rec.function_name.clone();
        match blocking(move || store.recursive_loop(&name)).await {
            Ok(v) => v.as_deref().unwrap_or(DEFAULT_RECURSIVE_LOOP) == "Terminate",
            Err(e) => {
                tracing::warn!(
                    error = &e as &dyn std::error::Error,
                    "reading the recursion setting failed"
                );
                true
            }
        }
    }

    /// Stops a recursive loop: the messages are not invoked; they go to the queue's dead-letter
    /// queue when it has one (else they are dropped), and leave the source queue.
    async fn stop_loop(&self, msgs: Vec<ReceivedMessage>) {
        let dlq_arn = self
            .queue
            .attributes
            .get("RedrivePolicy")
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .and_then(|v| v["deadLetterTargetArn"].as_str().map(str::to_string));
        let dlq = match &dlq_arn {
            Some(arn) => self.inner.queues.queue_by_arn(arn).await.ok(),
            None => None,
        };
        let mut done = Vec::new();
        for m in msgs {
            tracing::warn!(
                function = %self.rec.function_name,
                mapping = %self.rec.uuid,
                message = %m.message_id,
                dead_letter_queue = dlq_arn.as_deref().unwrap_or("none"),
                "Lambda detected a recursive loop: this event has invoked the function {} times; the invocation was stopped (RecursiveLoop is Terminate)",
                lineage::MAX_INVOCATIONS
            );
            let moved = match &dlq {
                Some(dlq) => {
                    let input = dead_letter(&m, dlq.fifo);
                    match self
                        .inner
                        .queues
                        .send(dlq, &input, &self.rec.function_name)
                        .await
                    {
                        Ok(_) => true,
                        Err(e) => {
                            tracing::warn!(error = %e, "sending a looping message to the dead-letter queue failed; it stays in its queue");
                            false
                        }
                    }
                }
                None => true,
            };
            if moved {
                done.push(m.receipt_handle);
            }
        }
        self.delete(done).await;
    }
}

/// A copy of `m` for a dead-letter queue (its body, attributes and trace header).
fn dead_letter(m: &ReceivedMessage, fifo: bool) -> SendInput {
    let attributes: BTreeMap<String, AttributeInput> = m
        .message_attributes
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                AttributeInput {
                    data_type: Some(v.data_type.clone()),
                    string_value: v.string_value.clone(),
                    binary_value: v.binary_value.clone(),
                    has_list_values: false,
                },
            )
        })
        .collect();
    let mut system_attributes = BTreeMap::new();
    if let Some(h) = m.attributes.get("AWSTraceHeader") {
        system_attributes.insert(
            "AWSTraceHeader".to_string(),
            AttributeInput {
                data_type: Some("String".into()),
                string_value: Some(h.clone()),
                ..Default::default()
            },
        );
    }
    SendInput {
        body: m.body.clone(),
        delay_seconds: None,
        attributes,
        system_attributes,
        group_id: fifo.then(|| {
            m.attributes
                .get("MessageGroupId")
                .cloned()
                .unwrap_or_else(|| "recursive-loop".into())
        }),
        dedup_id: fifo.then(|| m.message_id.clone()),
    }
}
