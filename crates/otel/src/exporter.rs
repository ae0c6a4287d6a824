//! The bounded queue items are recorded into and the task that sends their spans in batches.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::post::{Connection, Target};
use crate::queue::BatchQueue;
use crate::{BATCH, Encoding, Endpoint, FLUSH_EVERY, QUEUE, SpanSource};

/// Sends spans in the background. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Exporter<S> {
    shared: Arc<Shared<S>>,
}

#[derive(Debug)]
struct Shared<S> {
    /// Items recorded and not yet taken by the batch task (at most [`QUEUE`]).
    queue: BatchQueue<S>,
    dropped: AtomicU64,
    exported: AtomicU64,
    /// Spans in the queue (as counted by [`Exporter::record`] and the batch task).
    queued: AtomicUsize,
    /// A full batch is queued.
    full: Notify,
}

impl<S: SpanSource> Exporter<S> {
    /// Starts the sending task on the current tokio runtime.
    pub fn start(endpoint: Endpoint, service_name: String, encoding: Encoding) -> Arc<Self> {
        let shared = Arc::new(Shared {
            queue: BatchQueue::new(QUEUE),
            dropped: AtomicU64::new(0),
            exported: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
            full: Notify::new(),
        });
        let sender = Sender {
            conn: Connection::new(&Target {
                host: &endpoint.host,
                port: endpoint.port,
                authority: &format!("{}:{}", endpoint.host, endpoint.port),
                path: &endpoint.path,
                content_type: encoding.content_type(),
                timeout: Duration::from_secs(10),
            }),
            service: service_name,
            encoding,
        };
        tokio::spawn(send_loop(sender, Arc::clone(&shared)));
        Arc::new(Self { shared })
    }

    /// Queues an item (its spans); drops them (counted) when the queue is full.
    pub fn record(&self, item: S) {
        let n = item.span_count();
        // Counted before it is sent, so the batch task never counts it out first.
        let queued = self.shared.queued.fetch_add(n, Ordering::Relaxed) + n;
        if self.shared.queue.push(item).is_err() {
            self.shared.queued.fetch_sub(n, Ordering::Relaxed);
            self.shared.dropped.fetch_add(n as u64, Ordering::Relaxed);
        } else if queued >= BATCH && queued - n < BATCH {
            self.shared.full.notify_one();
        }
    }
}

impl<S> Drop for Exporter<S> {
    /// The batch task sends what is queued, then ends.
    fn drop(&mut self) {
        self.shared.queue.close();
    }
}

impl<S> Exporter<S> {
    /// Spans dropped (queue full, or their batch failed).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Spans the collector accepted.
    pub fn exported(&self) -> u64 {
        self.shared.exported.load(Ordering::Relaxed)
    }
}

/// Where and how batches are sent.
struct Sender {
    conn: Connection,
    service: String,
    encoding: Encoding,
}

async fn send_loop<S: SpanSource>(mut sender: Sender, shared: Arc<Shared<S>>) {
    let mut batch: VecDeque<S> = VecDeque::new();
    let mut body = Vec::new();
    // Waiting for a batch's first item is the only time a recorder wakes this task: then it
    // sleeps until the batch is due or full, and takes what is queued under one lock.
    while shared.queue.wait().await {
        if shared.queued.load(Ordering::Relaxed) < BATCH {
            let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = shared.full.notified() => {}
            }
        }
        // Up to BATCH spans; an item's spans are never split (an item above BATCH goes alone).
        let mut weight = 0;
        shared.queue.take(&mut batch, |item| {
            weight += item.span_count();
            weight <= BATCH
        });
        let spans: usize = batch.iter().map(SpanSource::span_count).sum();
        shared.queued.fetch_sub(spans, Ordering::Relaxed);
        body.clear();
        sender
            .encoding
            .write(&mut body, &sender.service, batch.make_contiguous());
        let counter = match sender.conn.post(&body).await {
            Ok(status) if (200..300).contains(&status) => &shared.exported,
            Ok(status) => {
                tracing::debug!(status, spans, "the OTLP collector refused spans");
                &shared.dropped
            }
            Err(e) => {
                tracing::debug!(error = %e, spans, "could not export spans");
                &shared.dropped
            }
        };
        counter.fetch_add(spans as u64, Ordering::Relaxed);
        batch.clear();
        // A batch (or a body) far above the usual is not kept.
        if body.capacity() > 4 * BATCH * 1024 {
            body = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use serde_json::Value;
    use tokio::sync::mpsc;

    use super::*;
    use crate::proto::tests::decode_request;
    use crate::{Span, SpanId, SpanKind, TraceId};

    /// A collector stand-in that answers 200 and hands every body over, decoded into the OTLP
    /// JSON mapping.
    /// The spans of the next export the collector received (within 10 s).
    async fn next_batch(rx: &mut mpsc::UnboundedReceiver<Value>) -> Vec<Value> {
        let body = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        body["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn collector(encoding: Encoding) -> (Endpoint, mpsc::UnboundedReceiver<Value>) {
        let (port, mut bodies) = kindling_test_support::body_sink().await;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(body) = bodies.recv().await {
                let decoded = match encoding {
                    Encoding::Json => serde_json::from_slice(&body).unwrap(),
                    Encoding::Protobuf => decode_request(&body),
                };
                tx.send(decoded).unwrap();
            }
        });
        (
            Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
            rx,
        )
    }

    fn span(n: u64) -> Span<'static> {
        Span {
            trace_id: TraceId(1),
            span_id: SpanId(n),
            parent_span_id: None,
            name: "invoke",
            kind: SpanKind::Internal,
            start: UNIX_EPOCH,
            end: UNIX_EPOCH,
            shared: &[],
            attributes: &[],
            error: None,
        }
    }

    async fn every_span_arrives_in_batches_of_at_most_batch(encoding: Encoding) {
        let (endpoint, mut rx) = collector(encoding).await;
        let exporter = Exporter::start(endpoint, "svc".into(), encoding);
        let total = 3 * BATCH as u64 + 7;
        for n in 1..=total {
            exporter.record(span(n));
        }
        let mut ids = Vec::new();
        while ids.len() < total as usize {
            let spans = next_batch(&mut rx).await;
            assert!(!spans.is_empty() && spans.len() <= BATCH);
            ids.extend(
                spans
                    .iter()
                    .map(|s| s["spanId"].as_str().unwrap().to_string()),
            );
        }
        let expected: Vec<String> = (1..=total).map(|n| format!("{n:016x}")).collect();
        assert_eq!(ids, expected);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while exporter.exported() < total && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!((exporter.exported(), exporter.dropped()), (total, 0));
    }

    #[tokio::test]
    async fn every_span_arrives_in_protobuf_batches() {
        every_span_arrives_in_batches_of_at_most_batch(Encoding::Protobuf).await;
    }

    #[tokio::test]
    async fn every_span_arrives_in_json_batches() {
        every_span_arrives_in_batches_of_at_most_batch(Encoding::Json).await;
    }

    /// An item of three spans, ids `3n+1..=3n+3`.
    struct Three(u64);

    impl SpanSource for Three {
        fn span_count(&self) -> usize {
            3
        }

        fn each_span(&self, f: &mut dyn FnMut(&Span<'_>)) {
            for k in 1..=3 {
                f(&span(3 * self.0 + k));
            }
        }
    }

    #[tokio::test]
    async fn an_items_spans_are_never_split_between_batches() {
        let (endpoint, mut rx) = collector(Encoding::Protobuf).await;
        let exporter = Exporter::start(endpoint, "svc".into(), Encoding::Protobuf);
        let items = 2 * BATCH as u64;
        for n in 0..items {
            exporter.record(Three(n));
        }
        let mut ids = Vec::new();
        while ids.len() < 3 * items as usize {
            let spans = next_batch(&mut rx).await;
            // Whole items only, and at most BATCH spans.
            assert!(
                spans.len() % 3 == 0 && spans.len() <= BATCH,
                "{}",
                spans.len()
            );
            ids.extend(
                spans
                    .iter()
                    .map(|s| u64::from_str_radix(s["spanId"].as_str().unwrap(), 16).unwrap()),
            );
        }
        assert_eq!(ids, (1..=3 * items).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_dead_collector_never_blocks_and_drops_are_counted() {
        // Nothing listens on port 9: batches fail, recording never waits.
        let exporter = Exporter::start(
            Endpoint::parse("http://127.0.0.1:9").unwrap(),
            "s".into(),
            Encoding::default(),
        );
        let started = std::time::Instant::now();
        for n in 1..=(2 * QUEUE as u64) {
            exporter.record(span(n));
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(exporter.dropped() >= QUEUE as u64 - BATCH as u64);
    }
}
