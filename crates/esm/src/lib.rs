//! Event source mappings: Lambda's third way to invoke a function. A mapping names a source (one
//! of Kindling's SQS queues; RabbitMQ and Kafka to come) and a function, version or alias;
//! pollers read the source in batches, invoke the function synchronously through the scheduler,
//! and delete, return or dead-letter what they read.
//!
//! - The control plane ([`Mappings`]: Create/Get/Update/Delete/List with Lambda's validation
//!   and shapes, `service.rs`) keeps mappings in the store ([`kindling_store::MappingStore`]),
//!   deleted with their function.
//! - The manager (`manager.rs`) reconciles running pollers with the stored mappings: it moves
//!   states on (Creating → Enabled, Disabling → Disabled, Deleting → gone), starts and stops
//!   pollers, and notices mappings whose function was deleted.
//! - The SQS poller (`sqs.rs`) long-polls its queue in process, batches, filters, invokes and
//!   settles each batch; `batch.rs` reads partial batch responses, `record.rs` builds the
//!   event, and recursive loop detection (`Lineage` in the trace header) stops a chain of
//!   invocations after 16 hops.
//!
//! Invariant: a message leaves its queue only by a delete after the function succeeded with it
//! (or reported it not failed), a delete of a message the mapping's filters drop, or a move to
//! the queue's dead-letter queue (the queue's redrive, or a stopped recursive loop); a crash at
//! any point returns in-flight messages after their visibility timeout.

mod batch;
mod error;
pub mod input;
mod kafka;
mod manager;
mod rabbit;
mod record;
mod service;
mod sqs;
mod target;
mod validate;
mod view;

use std::sync::Arc;
use std::time::Duration;

use kindling_cluster::Cluster;
use kindling_control::ControlPlane;
use kindling_queues::QueueService;
use kindling_scheduler::Scheduler;
use kindling_store::MappingStore;
use tokio::sync::Notify;

pub use error::{EsmError, Result};
pub use view::render;

/// Settings passed in by the binary.
#[derive(Debug, Clone)]
pub struct EsmConfig {
    pub region: String,
    pub account_id: String,
    /// Most pollers (concurrent invocations) of one SQS mapping without a
    /// `ScalingConfig.MaximumConcurrency`.
    pub default_max_pollers: u32,
    /// How often stored mappings are compared with running pollers when nothing signals a
    /// change (a function deleted elsewhere, another node's write).
    pub reconcile_interval: Duration,
    /// RabbitMQ brokers by name (`amqp://USER:PASS@HOST:PORT/VHOST`), selected by a mapping's
    /// `arn:aws:mq:<region>:<account>:broker:<name>:<id>`.
    pub brokers: std::collections::BTreeMap<String, String>,
}

impl Default for EsmConfig {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            default_max_pollers: 8,
            reconcile_interval: Duration::from_secs(1),
            brokers: Default::default(),
        }
    }
}

pub(crate) struct Inner {
    pub config: EsmConfig,
    pub store: Arc<dyn MappingStore>,
    pub control: Arc<ControlPlane>,
    pub queues: QueueService,
    pub scheduler: Scheduler,
    /// Serializes read-check-write sequences on mappings (API calls and state moves).
    pub write: tokio::sync::Mutex<()>,
    /// Signalled after every write, so that the manager reconciles at once.
    pub wake: Notify,
    /// Which node polls which mapping (unset: this node alone polls every mapping).
    pub cluster: std::sync::OnceLock<Cluster>,
}

impl Inner {
    pub(crate) fn cluster(&self) -> &Cluster {
        static ALONE: std::sync::OnceLock<Cluster> = std::sync::OnceLock::new();
        self.cluster
            .get()
            .unwrap_or_else(|| ALONE.get_or_init(|| Cluster::single("node", "", Arc::new(|| 0))))
    }
}

/// The event source mapping service. Cheap to clone.
#[derive(Clone)]
pub struct Mappings {
    inner: Arc<Inner>,
}

impl Mappings {
    pub fn new(
        config: EsmConfig,
        store: Arc<dyn MappingStore>,
        control: Arc<ControlPlane>,
        queues: QueueService,
        scheduler: Scheduler,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                store,
                control,
                queues,
                scheduler,
                write: tokio::sync::Mutex::new(()),
                wake: Notify::new(),
                cluster: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Starts the manager, which runs pollers until `shutdown` resolves.
    pub fn start(
        &self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(manager::run(Arc::clone(&self.inner), shutdown))
    }

    /// Polls only the mappings this node owns in `cluster` (set before [`Self::start`]; a
    /// second call is ignored).
    pub fn set_cluster(&self, cluster: Cluster) {
        let _ = self.inner.cluster.set(cluster);
    }

    /// Tells the manager to reconcile now (a function was deleted).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }
}

/// Runs a store call on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static, E>(
    f: impl FnOnce() -> std::result::Result<T, E> + Send + 'static,
) -> Result<T>
where
    EsmError: From<E>,
    E: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(EsmError::from),
        Err(e) => Err(EsmError::Task(e)),
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
