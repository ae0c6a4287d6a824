//! The scheduler: admission, warm-pool lookup or cold start, the invocation, and reaping.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kindling_model::invoke::InvokeTarget;
use kindling_runtime_api::{Invocation, ShutdownReason};
use kindling_sandbox::{IsolationMode, Sandbox};

use crate::artifacts::Artifacts;
use crate::concurrency::Concurrency;
use crate::env::{Env, RunResult};
use crate::error::SchedulerError;
use crate::launch::RuntimeLocator;
use crate::logs::{self, LogStore, Report};
use crate::pool::{Pool, PoolKey};
use crate::users::{UserPool, UserRange};

/// Settings of the scheduler, passed in by the binary.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Unpacked code, layers and environments' `/tmp` directories.
    pub work_dir: PathBuf,
    /// Host directory holding Kindling's runtime bootstraps (`python/bootstrap.py`,
    /// `node/bootstrap.js`); appears at `/var/runtime` inside sandboxes.
    pub runtime_dir: PathBuf,
    pub region: String,
    pub account_id: String,
    /// Idle environments are shut down after this long.
    pub idle_timeout: Duration,
    /// Limit of the Init phase.
    pub init_timeout: Duration,
    /// Host paths the runtimes need, visible read-only inside namespaced sandboxes.
    pub readonly_host_paths: Vec<PathBuf>,
    /// Credentials given to functions (`AWS_ACCESS_KEY_ID`, ...), per function.
    pub credentials: CredentialsProvider,
    /// Idle environments are frozen after this long (`None`: never).
    pub freeze_after: Option<Duration>,
    /// Namespaced sandboxes: every environment runs as a user (and group) of its own from this
    /// range, and its Runtime API (on the host's loopback when the network is shared) serves
    /// only that user's sockets, so no environment can use another's. `None`: every
    /// environment runs as the sandbox's configured user. Not used in Process mode.
    pub environment_users: Option<UserRange>,
}

/// The credentials an environment's runtime gets (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, ...), asked for at each cold start with the
/// function's unqualified ARN and its execution role.
#[derive(Clone)]
pub struct CredentialsProvider(Arc<CredentialsFn>);

type CredentialsFn = dyn Fn(&str, &str) -> Vec<(String, String)> + Send + Sync;

impl CredentialsProvider {
    /// `provide(function_arn, role_arn)` gives the variables to set.
    pub fn new(
        provide: impl Fn(&str, &str) -> Vec<(String, String)> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(provide))
    }

    /// The same variables for every function.
    pub fn fixed(vars: Vec<(String, String)>) -> Self {
        Self::new(move |_, _| vars.clone())
    }

    pub(crate) fn for_function(&self, function_arn: &str, role_arn: &str) -> Vec<(String, String)> {
        (self.0)(function_arn, role_arn)
    }
}

impl std::fmt::Debug for CredentialsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialsProvider(..)")
    }
}

/// One synchronous invocation.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    pub target: InvokeTarget,
    pub request_id: String,
    pub payload: Bytes,
    /// Decoded client context JSON.
    pub client_context: Option<String>,
    pub trace_id: Option<String>,
    /// Return the last 4 KB of the invocation's log.
    pub tail: bool,
}

/// The result of an invocation that ran (function errors included).
#[derive(Debug, Clone)]
pub struct InvokeResult {
    pub request_id: String,
    pub executed_version: String,
    pub payload: Bytes,
    pub content_type: Option<String>,
    /// The error type for function errors (the API answers `X-Amz-Function-Error: Unhandled`).
    pub function_error: Option<String>,
    pub log_tail: Option<String>,
}

/// Figures for observability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub idle_environments: usize,
}

pub(crate) struct Shared {
    pub config: SchedulerConfig,
    pub sandbox: Sandbox,
    pub artifacts: Artifacts,
    pub logs: LogStore,
    pub locator: RuntimeLocator,
    pub concurrency: Arc<Concurrency>,
    /// Per-environment users (Namespaces mode with a configured range).
    pub users: Option<UserPool>,
    pool: Mutex<Pool>,
    shutting_down: AtomicBool,
    /// Set when in-flight invocations must be abandoned (the server's shutdown grace ran out).
    cancel: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }
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
        locator: RuntimeLocator,
        logs: LogStore,
    ) -> Result<Self, SchedulerError> {
        std::fs::create_dir_all(config.work_dir.join("empty-opt"))?;
        let namespaces = matches!(sandbox.mode(), IsolationMode::Namespaces { .. });
        let users = match &config.environment_users {
            Some(range) if namespaces => {
                Some(UserPool::new(range.clone()).map_err(SchedulerError::Internal)?)
            }
            _ => None,
        };
        Ok(Self {
            shared: Arc::new(Shared {
                artifacts: Artifacts::new(config.work_dir.clone()),
                users,
                config,
                sandbox,
                logs,
                locator,
                concurrency: Arc::new(Concurrency::default()),
                pool: Mutex::new(Pool::default()),
                shutting_down: AtomicBool::new(false),
                cancel: tokio::sync::watch::channel(false).0,
            }),
        })
    }

    pub fn logs(&self) -> &LogStore {
        &self.shared.logs
    }

    /// In-flight invocations of a function.
    pub fn running(&self, function: &str) -> u32 {
        self.shared.concurrency.running(function)
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            idle_environments: self.shared.pool().len(),
        }
    }

    /// Runs one invocation to completion.
    pub async fn invoke(&self, req: InvokeRequest) -> Result<InvokeResult, SchedulerError> {
        let shared = &self.shared;
        if shared.shutting_down.load(Ordering::Acquire) {
            return Err(SchedulerError::ShuttingDown);
        }
        let target = &req.target;
        let rec = &target.record;
        let _permit = shared
            .concurrency
            .acquire(
                &rec.function_name,
                target.reserved_concurrency,
                target.unreserved_pool,
            )
            .map_err(SchedulerError::Throttled)?;
        let key = PoolKey::of(rec);
        let version = rec.version_label();

        let mut env = loop {
            let warm = shared.pool().take(&key);
            match warm {
                Some(mut env) if env.alive() => {
                    env.thaw().await;
                    if env.ready().await {
                        break env;
                    }
                    tokio::spawn(env.retire(ShutdownReason::Failure));
                }
                Some(dead) => {
                    tokio::spawn(dead.retire(ShutdownReason::Failure));
                }
                None => {
                    let stale = shared.pool().stale(&key);
                    for env in stale {
                        tokio::spawn(env.retire(ShutdownReason::Spindown));
                    }
                    match Env::start(
                        shared,
                        rec,
                        &target.code_zip,
                        &target.layers,
                        &req.request_id,
                        req.tail,
                    )
                    .await?
                    {
                        Ok(env) => break env,
                        Err(failure) => return Ok(init_failed(&req, &version, failure)),
                    }
                }
            }
        };

        let deadline_ms = logs::now_ms() as u64 + u64::from(rec.spec.timeout) * 1000;
        let inv = Invocation {
            request_id: req.request_id.clone(),
            deadline_ms,
            invoked_function_arn: target.invoked_arn.clone(),
            trace_id: req.trace_id.clone(),
            client_context: req.client_context.clone(),
            cognito_identity: None,
            tenant_id: None,
            payload: req.payload.clone(),
            content_type: None,
        };
        let mut cancel = shared.cancel.subscribe();
        let Some((run, tail)): Option<(RunResult, Option<String>)> =
            env.run(inv, &version, req.tail, &mut cancel).await
        else {
            tokio::spawn(env.retire(ShutdownReason::Spindown));
            return Err(SchedulerError::ShuttingDown);
        };
        if run.reusable && !shared.shutting_down.load(Ordering::Acquire) {
            shared.pool().put(env);
        } else {
            let reason = if run.error_type.as_deref() == Some("Sandbox.Timedout") {
                ShutdownReason::Timeout
            } else {
                ShutdownReason::Failure
            };
            tokio::spawn(env.retire(reason));
        }
        Ok(InvokeResult {
            request_id: req.request_id,
            executed_version: version,
            payload: run.payload,
            content_type: run.content_type,
            function_error: run.error_type,
            log_tail: tail,
        })
    }

    /// Shuts down idle environments past the idle timeout, every `period`.
    pub fn spawn_reaper(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                if shared.shutting_down.load(Ordering::Acquire) {
                    break;
                }
                let expired = shared
                    .pool()
                    .expired(shared.config.idle_timeout, Instant::now());
                for env in expired {
                    tracing::debug!(function = %env.key.function, stream = %env.stream_name, "reaping idle environment");
                    env.retire(ShutdownReason::Spindown).await;
                }
                freeze_idle(&shared).await;
            }
        })
    }

    /// Unpacks a code package in the background, ahead of its first invocation, so that the
    /// first cold start after CreateFunction or UpdateFunctionCode does not pay for it.
    pub fn prepare_code(&self, blob: String, zip: PathBuf) {
        let artifacts = self.shared.artifacts.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = artifacts.code_dir(&blob, &zip) {
                tracing::debug!(blob, error = %e, "could not unpack code ahead of time");
            }
        });
    }

    /// Abandons every in-flight invocation (its environment is killed and the caller gets
    /// `ShuttingDown`): for a server whose shutdown grace period ran out.
    pub fn cancel_in_flight(&self) {
        self.shared.shutting_down.store(true, Ordering::Release);
        self.shared.cancel.send_replace(true);
    }

    /// Stops accepting invocations and shuts every idle environment down.
    pub async fn shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::Release);
        let envs = self.shared.pool().drain();
        let count = envs.len();
        let handles: Vec<_> = envs
            .into_iter()
            .map(|e| tokio::spawn(e.retire(ShutdownReason::Spindown)))
            .collect();
        for h in handles {
            let _ = h.await;
        }
        tracing::info!(environments = count, "execution environments shut down");
    }
}

/// Freezes environments idle for longer than the configured grace period, so that idle
/// runtimes and extensions use no CPU; they are thawed when taken for an invocation.
async fn freeze_idle(shared: &Arc<Shared>) {
    let Some(after) = shared.config.freeze_after else {
        return;
    };
    let candidates = shared.pool().take_unfrozen_idle(after, Instant::now());
    for mut env in candidates {
        env.freeze().await;
        shared.pool().put(env);
    }
}

/// The result of an invocation whose cold start failed: the init error is its payload.
fn init_failed(req: &InvokeRequest, version: &str, f: crate::env::InitFailure) -> InvokeResult {
    let rec = &req.target.record;
    f.log.line(&format!(
        "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: error\tError Type: {}",
        f.duration.as_secs_f64() * 1000.0,
        f.error_type
    ));
    f.log.line(&logs::start_line(&req.request_id, version));
    f.log.line(&logs::end_line(&req.request_id));
    f.log.line(&logs::report_line(&Report {
        request_id: &req.request_id,
        duration: f.duration,
        memory_mb: rec.spec.memory_size,
        max_memory_used_mb: 0,
        init_duration: None,
        status: Some("error"),
        error_type: Some(&f.error_type),
    }));
    f.log.flush();
    InvokeResult {
        request_id: req.request_id.clone(),
        executed_version: version.to_string(),
        payload: f.payload,
        content_type: None,
        function_error: Some(f.error_type),
        log_tail: req.tail.then(|| f.log.end_tail()),
    }
}
