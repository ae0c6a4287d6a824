//! Asynchronous (Event) invocation, crash-safe.
//!
//! [`AsyncInvoker::enqueue`] answers only once the event is durably stored: a dedicated intake
//! thread group-commits concurrent events in one transaction. Workers lease due events from
//! the store round-robin across functions, run them through the scheduler (the same path as
//! synchronous calls, so concurrency limits apply), and then finish, retry or fail them:
//! function errors are retried `MaximumRetryAttempts` times with Lambda's delays; throttles and
//! system errors are retried with growing backoff until `MaximumEventAgeInSeconds`; failed
//! events go to the version's dead-letter queue and the `OnFailure` destination, successes to
//! `OnSuccess`. A crash between lease and finish makes the event run again once its lease is
//! released (at start-up for this node) or expires (other nodes): at-least-once, as on Lambda,
//! with the same request id on every attempt.

mod intake;
pub mod metrics;
mod outcome;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use kindling_control::ControlPlane;
use kindling_model::events::AsyncEvent;
use kindling_scheduler::Scheduler;
use kindling_store::Store;
use tokio::sync::Notify;

pub use intake::IntakeError;
pub use metrics::EventsMetrics;

/// Settings of asynchronous invocation, passed in by the binary.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// This node's lease owner name (stable across restarts of the same data dir).
    pub node_id: String,
    /// Most events run at once by this node.
    pub workers: usize,
    /// How long a leased event is reserved for this node.
    pub lease: Duration,
    /// How often the queue is checked when nothing signals new work.
    pub poll_interval: Duration,
    /// Delay before the 2nd, 3rd... attempt after a function error (Lambda: about 1 and 2 min).
    pub retry_delays: Vec<Duration>,
    /// First and largest delay when an event is throttled or hits a system error.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Most events written in one group commit.
    pub batch_max: usize,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            node_id: "node".into(),
            workers: 64,
            lease: Duration::from_secs(960),
            poll_interval: Duration::from_millis(250),
            retry_delays: vec![Duration::from_secs(60), Duration::from_secs(120)],
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            batch_max: 512,
        }
    }
}

/// Whether a function's recursive loops are stopped (`RecursiveLoop` is `Terminate`), asked
/// only of an event that has already invoked the function Lambda's maximum number of times.
pub type LoopPolicy = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Whether this node may lease events now (false while it is fenced from a shared database).
pub type LeaseGate = Arc<dyn Fn() -> bool + Send + Sync>;

pub(crate) struct Shared {
    pub config: EventsConfig,
    /// `None`: every loop is stopped (Lambda's default).
    pub loop_policy: std::sync::RwLock<Option<LoopPolicy>>,
    /// `None`: always lease (one node).
    pub lease_gate: std::sync::RwLock<Option<LeaseGate>>,
    pub store: Arc<dyn Store>,
    pub control: Arc<ControlPlane>,
    pub scheduler: Scheduler,
    /// Signalled when events are enqueued or a worker slot frees.
    pub wake: Notify,
    pub metrics: EventsMetrics,
}

/// The asynchronous-invocation service. Cheap to clone.
#[derive(Clone)]
pub struct AsyncInvoker {
    shared: Arc<Shared>,
    intake: intake::Intake,
}

impl AsyncInvoker {
    /// Creates the service and releases leases this node held before a crash.
    pub fn new(
        config: EventsConfig,
        store: Arc<dyn Store>,
        control: Arc<ControlPlane>,
        scheduler: Scheduler,
    ) -> Result<Self, IntakeError> {
        let released = store.release_leases(&config.node_id)?;
        if released > 0 {
            tracing::warn!(
                events = released,
                "re-queued events that were in flight when this node stopped"
            );
        }
        let shared = Arc::new(Shared {
            config,
            loop_policy: std::sync::RwLock::new(None),
            lease_gate: std::sync::RwLock::new(None),
            store,
            control,
            scheduler,
            wake: Notify::new(),
            metrics: EventsMetrics::default(),
        });
        let intake = intake::Intake::start(Arc::clone(&shared))?;
        Ok(Self { shared, intake })
    }

    /// Accepts an Event invocation: returns once it is durably stored. `trace_header` is the
    /// caller's `X-Amzn-Trace-Id`: stored with the event (a new trace when absent or invalid),
    /// so every attempt continues the same trace.
    pub async fn enqueue(
        &self,
        request_id: String,
        function_name: String,
        qualifier: Option<String>,
        payload: Vec<u8>,
        trace_header: Option<&str>,
    ) -> Result<(), IntakeError> {
        let now = worker::now_ms();
        let trace_header = Some(kindling_scheduler::accept_trace_header(trace_header));
        let received = self.shared.metrics.received.get(&function_name);
        self.intake
            .submit(AsyncEvent {
                id: request_id,
                function_name,
                qualifier,
                payload,
                enqueued_ms: now,
                attempts: 0,
                not_before_ms: now,
                last_result: None,
                trace_header,
            })
            .await?;
        received.inc();
        Ok(())
    }

    /// Writes the queue's metrics in the Prometheus text format: Lambda's async event
    /// metrics, and the depth and oldest event of each function's queue (read from the store,
    /// on the blocking pool).
    pub async fn render_metrics(&self, e: &mut kindling_metrics::Exposition) {
        self.shared.metrics.render(e);
        let store = Arc::clone(&self.shared.store);
        let started = std::time::Instant::now();
        let stats = tokio::task::spawn_blocking(move || store.queue_stats()).await;
        self.shared
            .metrics
            .store_call("queue_stats", started.elapsed());
        let Ok(Ok(stats)) = stats else {
            return;
        };
        let now = worker::now_ms();
        use kindling_metrics::MetricType;
        e.header(
            "kindling_lambda_async_queue_depth",
            MetricType::Gauge,
            "Events waiting for an asynchronous invocation (in flight included), by function.",
        );
        for s in &stats {
            e.sample(
                "kindling_lambda_async_queue_depth",
                &[("function", &s.function_name)],
                s.depth as f64,
            );
        }
        e.header(
            "kindling_lambda_async_queue_oldest_event_age_seconds",
            MetricType::Gauge,
            "Age of the oldest event waiting, by function.",
        );
        for s in &stats {
            e.sample(
                "kindling_lambda_async_queue_oldest_event_age_seconds",
                &[("function", &s.function_name)],
                ((now - s.oldest_enqueued_ms).max(0)) as f64 / 1000.0,
            );
        }
    }

    /// Sets how a function's `RecursiveLoop` setting is read (a blocking call; the default
    /// stops every loop).
    pub fn set_loop_policy(&self, policy: LoopPolicy) {
        if let Ok(mut p) = self.shared.loop_policy.write() {
            *p = Some(policy);
        }
    }

    /// Sets when this node may lease events (a node of a cluster stops leasing while it is
    /// fenced; its leases are freed when the others declare it dead).
    pub fn set_lease_gate(&self, gate: LeaseGate) {
        if let Ok(mut g) = self.shared.lease_gate.write() {
            *g = Some(gate);
        }
    }

    /// Tells the dispatcher that events were stored by another writer (an SNS publish stores
    /// its Lambda deliveries in its own transaction).
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// Starts the dispatcher that leases and runs due events; it stops when `shutdown` resolves.
    pub fn start(
        &self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(worker::dispatch(Arc::clone(&self.shared), shutdown))
    }
}
