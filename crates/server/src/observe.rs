//! Kindling's own endpoints for operators: `/metrics` (also `/_kindling/metrics`) in the
//! Prometheus text format, and health checks for load balancers and orchestrators:
//! `/_kindling/health/live` (the process serves requests) and `/_kindling/health/ready` (the
//! state database answers within a second). Every other `/_kindling/...` path goes to the
//! Lambda API (code downloads). `/_kindling/nodes` shows the cluster (`kindling nodes`); it
//! sits behind the gate (signing name `lambda`, action `kindling:ListNodes`): in shared mode
//! only signed callers learn the cluster's membership, while the metrics and health checks stay
//! open to load balancers and scrapers. `/_kindling/health/node` says whether this node may
//! take work (not fenced), without a database round trip.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kindling_console::api::admit_through;
use kindling_edge::gate::{Access, Gate};
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
    /// Undelivered dead letters and destination records.
    pub queue_service: Option<kindling_queues::QueueService>,
    /// Readiness probes of the store.
    pub probe: Arc<Histogram>,
    /// This node's membership (nodes sharing a database, or this one alone).
    pub cluster: Option<kindling_cluster::Cluster>,
    /// Who may read the membership (signing name `lambda`).
    pub gate: Gate,
}

impl Observed {
    pub fn new(
        scheduler: Scheduler,
        events: AsyncInvoker,
        store: Arc<dyn Store>,
        queues: Arc<dyn QueueStore>,
        gate: Gate,
    ) -> Self {
        Self {
            scheduler,
            events,
            store,
            queues,
            queue_service: None,
            probe: Arc::new(Histogram::new(FAST_BUCKETS)),
            cluster: None,
            gate,
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
        .route("/_kindling/nodes", get(nodes))
        .route("/_kindling/health/node", get(node_health))
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

/// How long the cluster's endpoints wait for the database.
const CLUSTER_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether this node may take work, without touching the database (200 while it may, 503
/// while it is fenced).
async fn node_health(State(o): State<Observed>) -> Response {
    let Some(cluster) = &o.cluster else {
        return json(StatusCode::OK, r#"{"healthy":true}"#.to_string());
    };
    let healthy = cluster.healthy();
    json(
        if healthy {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        serde_json::json!({"nodeId": cluster.node_id(), "healthy": healthy}).to_string(),
    )
}

/// The cluster as this node sees it (JSON; `kindling nodes` renders it).
async fn nodes(State(o): State<Observed>, req: Request) -> Response {
    if let Err(e) = admit_through(&o.gate, req, Access::Read, "ListNodes").await {
        return e.into_response();
    }
    let Some(cluster) = &o.cluster else {
        return json(
            StatusCode::NOT_FOUND,
            r#"{"message":"this server keeps no node membership"}"#.to_string(),
        );
    };
    let view = match tokio::time::timeout(CLUSTER_READ_TIMEOUT, cluster.view()).await {
        Ok(v) => v,
        Err(_) => {
            return json(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"message": "the node store did not answer in time", "healthy": cluster.healthy()})
                    .to_string(),
            );
        }
    };
    match view {
        Ok(view) => match serde_json::to_string(&view) {
            Ok(body) => json(StatusCode::OK, body),
            Err(e) => {
                tracing::error!(error = %e, "could not encode the cluster view");
                json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    r#"{"message":"internal error"}"#.to_string(),
                )
            }
        },
        Err(e) => {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "could not read the cluster"
            );
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"message": "the node store did not answer", "healthy": cluster.healthy()})
                    .to_string(),
            )
        }
    }
}

/// One gauge's value for a node (given the current time in milliseconds).
type NodeGauge = fn(&kindling_cluster::NodeView, i64) -> f64;

/// Nodes, their heartbeats, load and leases, as gauges.
async fn cluster_metrics(o: &Observed, e: &mut Exposition) {
    let Some(cluster) = &o.cluster else {
        return;
    };
    e.header(
        "kindling_node_healthy",
        MetricType::Gauge,
        "1 while this node may take work; 0 while it is fenced from the shared database.",
    );
    e.sample(
        "kindling_node_healthy",
        &[],
        f64::from(u8::from(cluster.healthy())),
    );
    routing_metrics(cluster, e);
    let Ok(Ok(view)) = tokio::time::timeout(CLUSTER_READ_TIMEOUT, cluster.view()).await else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let gauges: [(&str, &str, NodeGauge); 5] = [
        (
            "kindling_cluster_node_alive",
            "1 for a node with fresh heartbeats, 0 for one declared dead or gone.",
            |n, _| f64::from(u8::from(n.alive)),
        ),
        (
            "kindling_cluster_node_heartbeat_age_seconds",
            "Time since the node's last heartbeat (database clock against this node's).",
            |n, now| (now - n.heartbeat_ms).max(0) as f64 / 1000.0,
        ),
        (
            "kindling_cluster_node_load",
            "Invocations in flight on the node at its last heartbeat.",
            |n, _| n.load as f64,
        ),
        (
            "kindling_cluster_node_owned_resources",
            "Event source mappings and schedules the node owns.",
            |n, _| n.owned as f64,
        ),
        (
            "kindling_cluster_node_leased_events",
            "Asynchronous events the node has leased.",
            |n, _| n.leased_events as f64,
        ),
    ];
    for (name, help, value) in gauges {
        e.header(name, MetricType::Gauge, help);
        for n in &view.nodes {
            e.sample(name, &[("node", &n.node_id)], value(n, now));
        }
    }
}

/// Synchronous invokes forwarded between nodes, and the warm targets this node knows of (its
/// copy of the other nodes' sets: no database read).
fn routing_metrics(cluster: &kindling_cluster::Cluster, e: &mut Exposition) {
    if !cluster.is_shared() {
        return;
    }
    let directory = cluster.directory();
    let name = "kindling_cluster_warm_targets";
    e.header(
        name,
        MetricType::Gauge,
        "Invoke targets another live node advertises warm environments for, as this node last read them.",
    );
    for (node, count) in directory.advertised() {
        e.sample(name, &[("node", &node)], count as f64);
    }
    let s = &directory.stats;
    let name = "kindling_forwarded_invocations_total";
    e.header(
        name,
        MetricType::Counter,
        "Synchronous invokes this node forwarded to a node holding warm environments, by outcome: \
         served there, declined (run here), unreachable (run here), failed (the caller got an error).",
    );
    for (outcome, c) in [
        ("served", &s.forwarded),
        ("declined", &s.declined),
        ("unreachable", &s.unreachable),
        ("failed", &s.failed),
    ] {
        e.sample(
            name,
            &[("outcome", outcome)],
            c.load(std::sync::atomic::Ordering::Relaxed) as f64,
        );
    }
    let name = "kindling_forwarded_in_invocations_total";
    e.header(
        name,
        MetricType::Counter,
        "Synchronous invokes other nodes forwarded here, by outcome: served on an idle environment, or declined.",
    );
    for (outcome, c) in [
        ("served", &s.served_for_peers),
        ("declined", &s.declined_for_peers),
    ] {
        e.sample(
            name,
            &[("outcome", outcome)],
            c.load(std::sync::atomic::Ordering::Relaxed) as f64,
        );
    }
}

async fn metrics(State(o): State<Observed>) -> Response {
    let mut e = Exposition::default();
    cluster_metrics(&o, &mut e).await;
    o.scheduler.render_metrics(&mut e);
    o.events.render_metrics(&mut e).await;
    queue_metrics(&o, &mut e).await;
    if let Some(q) = &o.queue_service {
        e.header(
            "kindling_lambda_undelivered_records_total",
            MetricType::Counter,
            "Dead letters (kind dead_letter: Lambda's DeadLetterErrors) and destination records (kind destination: DestinationDeliveryFailures) that could not be delivered.",
        );
        for ((f, kind), n) in q.undelivered() {
            e.sample(
                "kindling_lambda_undelivered_records_total",
                &[("function", &f), ("kind", kind)],
                n as f64,
            );
        }
    }
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
