//! Kindling's own endpoints for operators: `/metrics` (also `/_kindling/metrics`) in the
//! Prometheus text format, and health checks for load balancers and orchestrators:
//! `/_kindling/health/live` (the process serves requests) and `/_kindling/health/ready` (the
//! state database answers within a second). Every other `/_kindling/...` path goes to the
//! Lambda API (code downloads).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kindling_events::AsyncInvoker;
use kindling_metrics::{Exposition, FAST_BUCKETS, Histogram, MetricType};
use kindling_scheduler::Scheduler;
use kindling_store::{QueueStore, Store};

/// What the endpoints read.
#[derive(Clone)]
pub struct Observed {
    pub scheduler: Scheduler,
    pub events: AsyncInvoker,
    pub store: Arc<dyn Store>,
    pub queues: Arc<dyn QueueStore>,
    /// Readiness probes of the store.
    pub probe: Arc<Histogram>,
}

impl Observed {
    pub fn new(
        scheduler: Scheduler,
        events: AsyncInvoker,
        store: Arc<dyn Store>,
        queues: Arc<dyn QueueStore>,
    ) -> Self {
        Self {
            scheduler,
            events,
            store,
            queues,
            probe: Arc::new(Histogram::new(FAST_BUCKETS)),
        }
    }
}

/// The routes, then `fallback` (the Lambda API) for the rest of `/_kindling/...`.
pub fn router(observed: Observed, fallback: axum::Router) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/_kindling/metrics", get(metrics))
        .route("/_kindling/health/live", get(live))
        .route("/_kindling/health/ready", get(ready))
        .with_state(observed)
        .fallback_service(fallback)
}

async fn live() -> Response {
    json(StatusCode::OK, r#"{"status":"ok"}"#.to_string())
}

async fn ready(State(o): State<Observed>) -> Response {
    match probe_store(&o).await {
        Ok(took) => json(
            StatusCode::OK,
            format!(
                r#"{{"status":"ok","store":{{"ok":true,"latencyMs":{:.3}}}}}"#,
                took.as_secs_f64() * 1000.0
            ),
        ),
        Err(why) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "unavailable", "store": {"ok": false, "error": why}})
                .to_string(),
        ),
    }
}

/// One read of the state database, on the blocking pool, within a second.
async fn probe_store(o: &Observed) -> Result<Duration, String> {
    let store = Arc::clone(&o.store);
    let started = Instant::now();
    let call = tokio::task::spawn_blocking(move || store.account_usage());
    let result = tokio::time::timeout(Duration::from_secs(1), call).await;
    let took = started.elapsed();
    o.probe.observe(took);
    match result {
        Ok(Ok(Ok(_))) => Ok(took),
        Ok(Ok(Err(e))) => Err(format!("the store failed: {e}")),
        Ok(Err(e)) => Err(format!("the store call failed: {e}")),
        Err(_) => Err("the store did not answer within 1 s".into()),
    }
}

async fn metrics(State(o): State<Observed>) -> Response {
    let mut e = Exposition::default();
    o.scheduler.render_metrics(&mut e);
    o.events.render_metrics(&mut e).await;
    queue_metrics(&o, &mut e).await;
    let _ = probe_store(&o).await;
    e.header(
        "kindling_store_probe_seconds",
        MetricType::Histogram,
        "Latency of one read of the state database (readiness checks and scrapes).",
    );
    e.histogram("kindling_store_probe_seconds", &[], &o.probe);
    let mut res = e.finish().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(Exposition::content_type()),
    );
    res
}

/// Depth and oldest message age of every SQS queue (read on the blocking pool).
async fn queue_metrics(o: &Observed, e: &mut Exposition) {
    let store = Arc::clone(&o.queues);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let rows = tokio::task::spawn_blocking(move || {
        let queues = store.queues()?;
        let mut rows = Vec::with_capacity(queues.len());
        for q in queues {
            let counts = store.queue_counts(q.id, now)?;
            rows.push((q.name, counts));
        }
        Ok::<_, kindling_store::StoreError>(rows)
    })
    .await;
    let rows = match rows {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not read queue depths for /metrics");
            return;
        }
        Err(_) => return,
    };
    e.header(
        "kindling_sqs_messages",
        MetricType::Gauge,
        "Messages in each SQS queue by state (visible, in_flight, delayed).",
    );
    for (name, c) in &rows {
        for (state, n) in [
            ("visible", c.visible),
            ("in_flight", c.in_flight),
            ("delayed", c.delayed),
        ] {
            e.sample(
                "kindling_sqs_messages",
                &[("queue", name), ("state", state)],
                n as f64,
            );
        }
    }
    e.header(
        "kindling_sqs_oldest_message_age_seconds",
        MetricType::Gauge,
        "Age of the oldest message in each SQS queue (0 when empty).",
    );
    for (name, c) in &rows {
        let age = c.oldest_sent_ms.map_or(0, |t| (now - t).max(0));
        e.sample(
            "kindling_sqs_oldest_message_age_seconds",
            &[("queue", name)],
            age as f64 / 1000.0,
        );
    }
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}
