//! The scheduler's handle: admission, invocations (detached if their caller goes away),
//! reaping and shutdown.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kindling_runtime_api::ShutdownReason;
use kindling_sandbox::{IsolationMode, Sandbox};

use crate::artifacts::Artifacts;
use crate::concurrency::{Concurrency, GrantBroker, HealthFn, Refused};
use crate::config::SchedulerConfig;
use crate::detach::Detachable;
use crate::error::SchedulerError;
use crate::invocation;
use crate::locate::RuntimeLocator;
use crate::logs::LogStore;
use crate::metrics::{Live, SchedulerMetrics};
use crate::pool::{self, PoolKey, Pooled};
use crate::provisioned::{self, ProvisionedSpec, ProvisionedStatus};
use crate::request::{InvokeRequest, InvokeResponse, InvokeResult, InvokeStream};
use crate::shared::Shared;
use crate::start::Starter;
use crate::users::UserPool;
use kindling_metrics::Exposition;
use kindling_model::invoke::InvokeTarget;

/// A streamed response taken whole, for a caller of plain Invoke: up to the buffered limit,
/// beyond which it is `Function.ResponseSizeTooLarge` (the rest of the stream is discarded).
async fn collect(mut stream: InvokeStream) -> InvokeResult {
    let max = kindling_runtime_api::DEFAULT_MAX_RESPONSE_BYTES;
    let mut body = bytes::BytesMut::new();
    let mut too_large = false;
    while let Some(chunk) = stream.next_chunk().await {
        if body.len() + chunk.len() > max {
            too_large = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    let request_id = stream.request_id.clone();
    let executed_version = stream.executed_version.clone();
    let content_type = stream.content_type.clone();
    let trace_id = stream.trace_id.clone();
    let end = stream.finish().await;
    let (payload, function_error) = if end.function_error.is_some() {
        (end.error_body, end.function_error)
    } else if too_large {
        let error = kindling_model::invoke::FunctionError::ResponseTooLarge;
        let body = crate::env::platform_error(
            &error,
            &request_id,
            &format!("Response payload size exceeded maximum allowed payload size ({max} bytes)."),
        );
        (body, Some(error))
    } else {
        (body.freeze(), None)
    };
    InvokeResult {
        request_id,
        executed_version,
        payload,
        content_type: if function_error.is_some() {
            None
        } else {
            content_type
        },
        function_error,
        log_tail: end.log_tail,
        trace_id,
    }
}

/// Figures for observability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub idle_environments: usize,
}

/// Runs invocations in execution environments. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

impl Scheduler {
    pub fn new(
        config: SchedulerConfig,
        sandbox: Sandbox,
        locator: Arc<RuntimeLocator>,
        logs: LogStore,
    ) -> Result<Self, SchedulerError> {
        std::fs::create_dir_all(config.work_dir.join("empty-opt"))
            .map_err(SchedulerError::io("creating the work directory"))?;
        let namespaces = matches!(sandbox.mode(), IsolationMode::Namespaces { .. });
        let users = match &config.environment_users {
            Some(range) if namespaces => {
                Some(UserPool::new(range.clone()).map_err(SchedulerError::Users)?)
            }
            _ => None,
        };
        let starter = Starter {
            artifacts: Artifacts::new(config.work_dir.clone()),
            users,
            config,
            sandbox,
            logs,
            locator,
            metrics: Arc::new(SchedulerMetrics::default()),
            spans: std::sync::OnceLock::new(),
            prewarm: crate::start::PrewarmPool::default(),
        };
        let shared = Arc::new(Shared::new(starter));
        if tokio::runtime::Handle::try_current().is_ok() {
            for runtime in &shared.starter.config.prewarm_runtimes {
                shared.starter.prewarm_fill(runtime);
            }
        }
        Ok(Self { shared })
    }

    pub fn logs(&self) -> &LogStore {
        &self.shared.starter.logs
    }

    /// In-flight invocations of a function.
    pub fn running(&self, function: &str) -> u32 {
        self.shared.concurrency.running(function)
    }

    /// Admits invocations only within the concurrency slots the cluster grants this node (per
    /// scope: the unreserved pool, each function with reserved concurrency), and only while
    /// `healthy`; `broker` asks the cluster for more when a scope's grant is used up.
    pub fn use_grants(&self, healthy: HealthFn, broker: Arc<dyn GrantBroker>) {
        self.shared.concurrency.use_grants(healthy, broker);
    }

    /// This node's concurrency grants (see [`Concurrency`]): their exchange with the cluster.
    pub fn grants(&self) -> Arc<Concurrency> {
        Arc::clone(&self.shared.concurrency)
    }

    /// Invocations in flight on this node, every function together (a node's load).
    pub fn in_flight(&self) -> u64 {
        let (_, per_function) = self.shared.concurrency.snapshot();
        per_function.iter().map(|(_, n)| u64::from(*n)).sum()
    }

    /// How much work this node ever started (invocations, environments retired): a count that
    /// moves while the node is busy (`--cpu-latency-qos` samples it).
    pub fn work_started(&self) -> u64 {
        self.shared.tasks.entered()
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            idle_environments: self.shared.pool().len(),
        }
    }

    /// Recent invocations and per-function charts (the web console's).
    pub fn activity(&self) -> &crate::activity::Activity {
        &self.shared.activity
    }

    /// The scheduler's metrics (Lambda's per-function set and Kindling's own).
    pub fn metrics(&self) -> &Arc<SchedulerMetrics> {
        &self.shared.starter.metrics
    }

    /// Exports every invocation's spans (request, queue wait, environment wait, init,
    /// invoke) from now on to the OTLP collector at `endpoint` (the exporter's task runs on the
    /// current tokio runtime). Only the first call counts.
    pub fn export_spans(
        &self,
        endpoint: kindling_otel::Endpoint,
        service_name: String,
        encoding: kindling_otel::Encoding,
    ) {
        let spans = &self.shared.starter.spans;
        if spans.get().is_none() {
            let _ = spans.set(crate::spans::Exporter::start(
                endpoint,
                service_name,
                encoding,
            ));
        }
    }

    /// Writes the scheduler's metrics in the Prometheus text format.
    pub fn render_metrics(&self, e: &mut Exposition) {
        let (unreserved_running, running) = self.shared.concurrency.snapshot();
        let live = Live {
            idle_environments: self.shared.pool().len(),
            running,
            unreserved_running,
            provisioned: self.shared.provisioned.live(),
        };
        self.shared.starter.metrics.render(&live, e);
        if self.shared.concurrency.granting() {
            e.header(
                "kindling_concurrency_granted_slots",
                kindling_metrics::MetricType::Gauge,
                "Concurrency slots the cluster granted this node, by scope (unreserved, or function:NAME for reserved concurrency).",
            );
            for (scope, n) in self.shared.concurrency.granted() {
                e.sample(
                    "kindling_concurrency_granted_slots",
                    &[("scope", &scope)],
                    f64::from(n),
                );
            }
        }
    }

    /// Runs one invocation to completion (or its timeout), on the caller's task: dropping the
    /// returned future (the caller went away) does not cancel it, what is left of it goes on in
    /// a task of its own. The invocation holds its concurrency slot, and its environment goes
    /// back to the pool, as if the caller had waited.
    pub async fn invoke(&self, req: InvokeRequest) -> Result<InvokeResult, SchedulerError> {
        match self.invoke_response(req).await? {
            InvokeResponse::Buffered(result) => Ok(result),
            InvokeResponse::Stream(stream) => Ok(collect(stream).await),
        }
    }

    /// [`Scheduler::invoke`] for callers that can take a streamed response as it is written
    /// (InvokeWithResponseStream, RESPONSE_STREAM function URLs). A function that answers in
    /// one piece gives [`InvokeResponse::Buffered`].
    pub async fn invoke_response(
        &self,
        req: InvokeRequest,
    ) -> Result<InvokeResponse, SchedulerError> {
        let shared = &self.shared;
        if shared.shutting_down() {
            return Err(SchedulerError::ShuttingDown);
        }
        let target = &req.target;
        let admit = || {
            shared.concurrency.admit(
                &target.record.function_name,
                target.reserved_concurrency,
                target.unreserved_pool,
            )
        };
        let admitted = match admit() {
            // In a cluster, at this node's grant but not at the limit: ask for more slots
            // (bounded wait), then try once more.
            Err(Refused {
                ask: Some(scope), ..
            }) => match shared.concurrency.broker() {
                Some(broker) => {
                    broker.ask(scope).await;
                    admit()
                }
                None => admit(),
            },
            other => other,
        };
        let permit = admitted.map_err(|Refused { reason, .. }| {
            shared
                .starter
                .metrics
                .throttled(&target.record.function_name, reason.as_str());
            SchedulerError::Throttled(reason)
        })?;
        let entered = shared.tasks.enter();
        let run = invocation::run(Arc::clone(shared), req, permit, None);
        // On the caller's task (no spawn, no cross-thread wake-up per invoke); detached into a
        // task of its own only if the caller goes away first.
        Detachable::new(async move {
            let result = run.await;
            drop(entered);
            result
        })
        .await
        .map_err(SchedulerError::panicked("running an invocation"))?
    }

    /// Whether an environment for `target` is idle on this node now (provisioned or warm):
    /// an invocation of it would start at once, here.
    pub fn has_idle(&self, target: &InvokeTarget) -> bool {
        let key = PoolKey::of(&target.record);
        self.shared.pool().has_idle(&key) || self.shared.provisioned.has_idle(&key)
    }

    /// The routing name of `target`'s environments (function, version, code revision): what
    /// nodes advertise to each other ([`Scheduler::warm_targets`]).
    pub fn route_key(target: &InvokeTarget) -> String {
        let rec = &target.record;
        format!(
            "{}:{}:{}",
            rec.function_name,
            rec.version_label(),
            rec.revision_id
        )
    }

    /// The routing names of the targets with an environment idle now or at some moment since
    /// the last call (unsorted, maybe repeated): what this node advertises.
    pub fn warm_targets(&self) -> Vec<String> {
        let mut keys = self.shared.pool().advertised();
        keys.extend(self.shared.provisioned.idle_keys());
        keys.into_iter()
            .map(|k| format!("{}:{}:{}", k.function, k.version, k.revision))
            .collect()
    }

    /// Runs `req` if an environment for it is idle on this node now (without waiting for one
    /// or starting one), as [`Scheduler::invoke`] would; `None` when there is none, or when
    /// this node's concurrency limits refuse it, or it is stopping: the node that forwarded
    /// it runs it instead.
    pub async fn invoke_warm(
        &self,
        req: InvokeRequest,
    ) -> Result<Option<InvokeResult>, SchedulerError> {
        let shared = &self.shared;
        if shared.shutting_down() {
            return Ok(None);
        }
        let target = &req.target;
        let Ok(permit) = shared.concurrency.acquire(
            &target.record.function_name,
            target.reserved_concurrency,
            target.unreserved_pool,
        ) else {
            return Ok(None);
        };
        let entered = shared.tasks.enter();
        let shared = Arc::clone(shared);
        let task = Detachable::new(async move {
            let key = PoolKey::of(&req.target.record);
            let result = match invocation::take_warm(&shared, &key).await {
                None => Ok(None),
                Some(env) => {
                    match invocation::run(Arc::clone(&shared), req, permit, Some(env)).await? {
                        InvokeResponse::Buffered(result) => Ok(Some(result)),
                        InvokeResponse::Stream(stream) => Ok(Some(collect(stream).await)),
                    }
                }
            };
            drop(entered);
            result
        });
        task.await
            .map_err(SchedulerError::panicked("running an invocation"))?
    }

    /// Shuts down idle environments past the idle timeout and freezes those idle for a while,
    /// every `period`.
    pub fn spawn_reaper(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                if shared.shutting_down() {
                    break;
                }
                let expired = shared
                    .pool()
                    .expired(shared.config().idle_timeout, Instant::now());
                for env in expired {
                    tracing::debug!(function = %env.key().function, stream = %env.stream_name, "reaping idle environment");
                    shared.retire(env, ShutdownReason::Spindown);
                }
                if let Some(after) = shared.config().freeze_after {
                    pool::freeze_idle(shared.pool_mutex(), after).await;
                }
            }
        })
    }

    /// Unpacks a code package in the background, ahead of its first invocation, so that the
    /// first cold start after CreateFunction or UpdateFunctionCode does not pay for it.
    pub fn prepare_code(&self, blob: String, zip: PathBuf) {
        let artifacts = self.shared.starter.artifacts.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = artifacts.code_dir(&blob, &zip) {
                tracing::debug!(blob, error = %e, "could not unpack code ahead of time");
            }
        });
    }

    /// Unpacks a container image's root ahead of its first cold start (in the background; a
    /// failure is only logged: the cold start tries again and reports it).
    pub fn prepare_image(&self, manifest_digest: String, layers: Vec<(PathBuf, String)>) {
        let artifacts = self.shared.starter.artifacts.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = artifacts.image_root(&manifest_digest, &layers) {
                tracing::debug!(manifest_digest, error = %e, "could not unpack an image ahead of time");
            }
        });
    }

    /// Keeps `function`'s provisioned concurrency as `specs` say (all of it: configurations
    /// missing from `specs` are released, their idle environments shut down).
    pub fn set_provisioned(&self, function: &str, specs: Vec<ProvisionedSpec>) {
        if self.shared.shutting_down() {
            return;
        }
        provisioned::apply(&self.shared, function, specs);
    }

    /// Allocation and status of the provisioned concurrency configuration on `qualifier`
    /// (`None`: not provisioned here).
    pub fn provisioned_status(&self, function: &str, qualifier: &str) -> Option<ProvisionedStatus> {
        self.shared.provisioned.status(function, qualifier)
    }

    /// Abandons every in-flight invocation (its environment is killed and the caller gets
    /// `ShuttingDown`): for a server whose shutdown grace period ran out.
    pub fn cancel_in_flight(&self) {
        self.shared.begin_shutdown();
        self.shared.cancel.send_replace(true);
    }

    /// Stops accepting invocations, shuts every idle environment down, and waits for the
    /// invocations still running (also those whose callers went away) and the environments
    /// being retired. In-flight invocations end by themselves or at [`cancel_in_flight`].
    ///
    /// [`cancel_in_flight`]: Self::cancel_in_flight
    pub async fn shutdown(&self) {
        self.shared.begin_shutdown();
        let mut envs = self.shared.pool().drain();
        envs.append(&mut self.shared.provisioned.drain());
        let count = envs.len();
        for env in envs {
            self.shared.retire(env, ShutdownReason::Spindown);
        }
        let running = self.shared.tasks.count();
        if running > count {
            tracing::info!(tasks = running - count, "waiting for in-flight invocations");
        }
        self.shared.starter.prewarm.close().await;
        self.shared.tasks.idle().await;
        // Streams still held elsewhere keep their deferred lines no longer than this.
        self.logs().flush_pending();
        tracing::info!(environments = count, "execution environments shut down");
    }
}
