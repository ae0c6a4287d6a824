//! Cold starts, in three steps behind a context that knows nothing of the pool or of
//! admission:
//!
//! 1. **prepare** (on the blocking pool): unpack code and layers, find the runtime's command,
//!    open the log stream, count extensions, lease a user id;
//! 2. **spawn**: the network and the Runtime API, the runtime's environment variables, the
//!    sandbox, the output pump;
//! 3. **await Init**: release the extensions wrapper, then wait for the runtime's first `/next`
//!    (or its init error, its exit, the Init limit).
//!
//! The Init clock starts with step 1: the caller runs a cold start only once it holds a
//! cold-start slot, so time spent waiting for one does not count.

mod extensions;
mod prepare;
mod prewarm;

pub(crate) use prewarm::PrewarmPool;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kindling_model::function::VersionRecord;
use kindling_model::invoke::FunctionError;
use kindling_runtime_api::{InitResult, RuntimeApi, RuntimeApiConfig, TelemetryNetwork};
use kindling_sandbox::{
    BindMount, EnvironmentSlot, EnvironmentSpec, IsolationMode, NetworkNamespace, Sandbox,
};

use crate::artifacts::Artifacts;
use crate::config::SchedulerConfig;
use crate::env::{Env, Started, Tree, exit_message, platform_error};
use crate::error::SchedulerError;
use crate::launch::{EnvVars, Inside, Sdks};
use crate::locate::RuntimeLocator;
use crate::logs::{self, Level, LogStore, LogStream};
use crate::metrics::{EnvEnd, SchedulerMetrics};
use crate::pool::PoolKey;
use crate::users::{UserLease, UserPool};

use prepare::Prepared;

/// Largest response a runtime may post (6 MiB + 100 bytes, as Lambda's runtime API allows).
const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024 + 100;
/// The Runtime API's port inside an environment with a network namespace of its own, as in
/// Lambda (`AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001`). With the host's network it is a free port.
const RUNTIME_API_PORT: u16 = 9001;

/// A cold start's result: an environment ready for its first invocation, or the init error
/// that invocation gets; `Err` when Kindling itself failed.
pub(crate) type StartResult<T> = Result<Result<T, InitFailure>, SchedulerError>;

/// What to start.
#[derive(Clone)]
pub(crate) struct StartJob {
    pub rec: Arc<VersionRecord>,
    pub code_zip: PathBuf,
    pub layers: Vec<(String, PathBuf)>,
    /// A container image's layer files, bottom first.
    pub image_layers: Vec<PathBuf>,
    /// The invocation that caused the cold start (named in error messages).
    pub request_id: String,
    /// Collect the log tail from the start (the invocation asked for `LogType: Tail`).
    pub tail: bool,
    /// Initialized ahead for provisioned concurrency, not for an invocation.
    pub provisioned: bool,
}

impl StartJob {
    /// `AWS_LAMBDA_INITIALIZATION_TYPE` and telemetry's `initializationType`.
    fn initialization_type(&self) -> &'static str {
        if self.provisioned {
            "provisioned-concurrency"
        } else {
            "on-demand"
        }
    }
}

/// A cold start that failed: the invocation gets this error as its result.
pub(crate) struct InitFailure {
    pub error: FunctionError,
    pub payload: Bytes,
    pub log: Arc<LogStream>,
    pub duration: Duration,
}

/// Everything a cold start needs; shared by every cold start.
pub(crate) struct Starter {
    pub config: SchedulerConfig,
    pub sandbox: Sandbox,
    pub artifacts: Artifacts,
    pub logs: LogStore,
    pub locator: Arc<RuntimeLocator>,
    /// Per-environment users (Namespaces mode with a configured range).
    pub users: Option<UserPool>,
    pub metrics: Arc<SchedulerMetrics>,
    /// Where invocations' spans go, when an OTLP endpoint is configured.
    pub spans: std::sync::OnceLock<Arc<crate::spans::Exporter>>,
    /// Pre-initialized environments per runtime (see `prewarm`).
    pub prewarm: PrewarmPool,
}

/// A spawned environment whose Init is under way.
struct Spawned {
    prepared: Prepared,
    tree: Tree,
    api: RuntimeApi,
    /// Holds the extensions wrapper back until the extensions registered.
    gate: Option<extensions::Gate>,
    /// When the spawn began: the Init limit counts from here.
    at: Instant,
}

impl Starter {
    /// Kindling's API for the function's SDK calls (`AWS_ENDPOINT_URL`): on the host's
    /// loopback, or relayed from a listener on the namespace's own loopback at the same port.
    fn sdk_endpoint(
        &self,
        inside: Option<std::net::TcpListener>,
        uid: u32,
    ) -> Result<(Option<String>, Option<tokio::task::AbortHandle>), SchedulerError> {
        Ok(match (&self.config.endpoint, inside) {
            (Some(e), Some(inside)) => (
                Some(format!("http://127.0.0.1:{}", endpoint_port_inside(e.port))),
                Some(relay_task(inside, e, uid)?),
            ),
            (Some(e), None) => (Some(e.host_url.clone()), None),
            (None, _) => (None, None),
        })
    }

    fn namespaces(&self) -> bool {
        matches!(self.sandbox.mode(), IsolationMode::Namespaces { .. })
    }

    /// A place for one more environment under `max_environments`, keeping `spare` of them
    /// free (for cold starts of invocations, when a pre-initialized one is about to start);
    /// `None` when the node keeps that many already (live or reserved). Taken atomically, so
    /// concurrent starts never overshoot the limit; the place is the environment's once it
    /// is spawned, and free again if the start fails.
    pub(crate) fn reserve(&self, spare: usize) -> Option<EnvironmentSlot> {
        match self.config.max_environments {
            None => self.sandbox.reserve(None),
            Some(max) => self.sandbox.reserve(Some(max.checked_sub(spare)?)),
        }
    }

    /// The place a start of `rec` goes ahead with: `Some(None)` when a pre-initialized
    /// environment is ready to be claimed (it has its place already, so none is reserved nor
    /// anything retired for it: [`Self::prewarmed_ready`]), `Some(Some(slot))` a place reserved
    /// for a fresh environment, `None` when the node keeps as many as it may.
    pub(crate) fn place_for(&self, rec: &VersionRecord) -> Option<Option<EnvironmentSlot>> {
        if self.prewarmed_ready(rec) {
            Some(None)
        } else {
            self.reserve(0).map(Some)
        }
    }

    /// Starts an environment for `job` in the place `slot` reserved for it ([`Self::reserve`])
    /// and runs its Init phase. `cancel` (the server is stopping) ends a start under way with
    /// `ShuttingDown`. A pre-initialized environment that fits is claimed first (it has its
    /// place already, and `slot` is let go); without one, and without `slot` (the caller saw
    /// one ready: [`Self::prewarmed_ready`]), the place is reserved now, or the start ends
    /// with `NoPlace`.
    pub async fn start(
        self: &Arc<Self>,
        job: StartJob,
        slot: Option<EnvironmentSlot>,
        cancel: &mut tokio::sync::watch::Receiver<bool>,
    ) -> StartResult<Env> {
        let started = Instant::now();
        let prepared = match self.prepare(&job, started).await? {
            Ok(p) => p,
            Err(f) => return Ok(Err(f)),
        };
        let prepare_us = started.elapsed().as_micros() as u64;
        // A pre-initialized environment if one fits; its Init (what the function sees)
        // begins when it gets the function.
        let (spawned, init_started, prewarmed) = match self.prewarmed_for(&job, &prepared) {
            Some(p) => {
                // The pre-initialized environment has its place already.
                drop(slot);
                let claimed = Instant::now();
                let claim = self.spawn_prewarmed(&job, prepared, p).await;
                if !matches!(claim, Ok(Ok(_)))
                    && let Some(runtime) = job.rec.spec.runtime.as_deref()
                {
                    // The environment is used up all the same: its pool refills.
                    self.refill_after_claim(runtime);
                }
                match claim? {
                    Ok(s) => (s, claimed, true),
                    Err(f) => return Ok(Err(f)),
                }
            }
            None => {
                let Some(slot) = slot.or_else(|| self.reserve(0)) else {
                    return Err(SchedulerError::NoPlace);
                };
                match self.spawn(&job, prepared, started, slot).await? {
                    Ok(s) => (s, started, false),
                    Err(f) => return Ok(Err(f)),
                }
            }
        };
        let setup = started.elapsed();
        let result = self.await_init(&job, spawned, init_started, cancel).await;
        if prewarmed && let Some(runtime) = job.rec.spec.runtime.as_deref() {
            self.refill_after_claim(runtime);
        }
        // Where a cold start's time went (µs from its start): prepared, environment spawned
        // or claimed, Init done. With `init_started`, what the function's Init Duration is.
        tracing::debug!(
            function = %job.rec.function_name,
            prewarmed,
            prepare_us,
            setup_us = setup.as_micros() as u64,
            init_from_us = init_started.duration_since(started).as_micros() as u64,
            ready_us = started.elapsed().as_micros() as u64,
            "cold start phases"
        );
        let state = self.metrics.cold_start(&job.rec.function_name, setup);
        if !matches!(result, Ok(Ok(_))) {
            state.ended(EnvEnd::Failure);
        }
        result
    }

    /// Step 2: network, Runtime API, environment variables, sandbox, output pump.
    async fn spawn(
        &self,
        job: &StartJob,
        mut prepared: Prepared,
        started: Instant,
        slot: EnvironmentSlot,
    ) -> StartResult<Spawned> {
        let at = Instant::now();
        let rec = &job.rec;
        let namespaces = self.namespaces();
        let user = prepared.user.take();
        let uid = user
            .as_ref()
            .map_or(self.sandbox.config().uid, UserLease::id);
        // The Runtime API where only the environment reaches it: inside its network
        // namespace, or on the host's loopback serving only its user's sockets.
        let service_ports: Vec<u16> = self
            .config
            .endpoint
            .iter()
            .map(|e| endpoint_port_inside(e.port))
            .collect();
        let mut network = self
            .sandbox
            .prepare_network_with(RUNTIME_API_PORT, &service_ports)
            .await
            .map_err(|source| SchedulerError::Sandbox {
                what: "preparing the network",
                source,
            })?;
        let shares_host_network = network.namespace.is_none();
        let listener = tokio::net::TcpListener::from_std(network.listener)
            .map_err(SchedulerError::io("registering the Runtime API listener"))?;
        let api = RuntimeApi::from_listener(
            listener,
            RuntimeApiConfig {
                function_name: rec.function_name.clone(),
                function_version: rec.version_label(),
                handler: rec.spec.handler.clone(),
                account_id: self.config.account_id.clone(),
                max_response_bytes: MAX_RESPONSE_BYTES,
                extensions_enabled: true,
                allowed_peer_uid: (namespaces && shares_host_network).then_some(uid),
                telemetry_network: telemetry_network(
                    network.namespace.as_ref(),
                    namespaces.then_some(uid),
                ),
                stream_limits: self.config.stream_limits,
                connections: Arc::clone(&self.config.runtime_api_connections),
            },
        )
        .map_err(SchedulerError::io("starting the Runtime API"))?;
        let runtime_api = api.local_addr().to_string();
        log_init_start(&prepared, &api, job);
        let (endpoint_url, relay) = self.sdk_endpoint(network.extra_listeners.pop(), uid)?;

        let empty_opt = self.config.work_dir.join("empty-opt");
        let inside = self.inside(&prepared.task_root, prepared.opt_dir.as_deref(), &empty_opt);
        let mut env = self.env_vars(
            job,
            &runtime_api,
            endpoint_url.as_deref(),
            &prepared.stream_name,
            &inside,
        );
        if let Some(image) = &rec.code.image {
            env = crate::image::environment(image, env, rec);
        }
        if !env.iter().any(|(k, _)| k == "HOME") {
            // Environment users have no passwd entry: SDKs looking for ~/.aws (the JavaScript
            // v3 clients fail without a home) find the environment's own /tmp.
            let tmp = if namespaces {
                PathBuf::from("/tmp")
            } else {
                prepared.tmp_dir.clone()
            };
            env.push(("HOME".into(), tmp.to_string_lossy().into_owned()));
        }
        let launch = &prepared.launch;
        let (gate, pass_fds) = if prepared.extensions > 0 {
            let (gate, read_end) = extensions::Gate::new()
                .map_err(SchedulerError::io("creating the extensions gate"))?;
            (Some(gate), vec![read_end])
        } else {
            (None, Vec::new())
        };
        let (program, args) = if prepared.extensions > 0 {
            let mut args = vec![
                "-c".to_string(),
                extensions::WRAPPER.to_string(),
                "kindling-extensions".to_string(),
                inside.opt.join("extensions").to_string_lossy().into_owned(),
                launch.program.to_string_lossy().into_owned(),
            ];
            args.extend(launch.args.iter().cloned());
            (PathBuf::from("/bin/sh"), args)
        } else {
            (launch.program.clone(), launch.args.clone())
        };
        let image = prepared.image_root.is_some();
        let mut readonly = if image {
            Vec::new()
        } else {
            self.config.readonly_host_paths.clone()
        };
        for path in &launch.visible {
            if !readonly.iter().any(|p| path.starts_with(p)) {
                readonly.push(path.clone());
            }
        }
        let spec = EnvironmentSpec {
            id: prepared.id.clone(),
            program,
            args,
            env,
            task_root: prepared.task_root.clone(),
            opt_dir: prepared.opt_dir.clone(),
            tmp_dir: prepared.tmp_dir.clone(),
            tmp_size_mb: rec.spec.ephemeral_storage,
            memory_mb: rec.spec.memory_size,
            pids_max: 1024,
            cwd: launch
                .cwd
                .clone()
                .unwrap_or_else(|| inside.task_root.to_path_buf()),
            readonly_host_paths: readonly,
            extra_mounts: if image {
                Vec::new()
            } else {
                vec![BindMount {
                    host: self.config.runtime_dir.clone(),
                    inside: PathBuf::from("/var/runtime"),
                }]
            },
            root_dir: prepared.image_root.clone(),
            uid: user.as_ref().map(UserLease::id),
            gid: user.as_ref().map(UserLease::id),
            network: network.namespace,
            pass_fds,
            code_later: false,
            exec_later: false,
        };
        let mut sandbox = match self.sandbox.spawn_in(slot, spec).await {
            Ok(s) => s,
            // Kindling's own limits, not the function's: throttled by `start`, not reported
            // as the function's failure.
            Err(e) if e.is_host_exhausted() => {
                return Err(SchedulerError::Sandbox {
                    what: "starting the environment",
                    source: e,
                });
            }
            Err(e) => {
                tracing::warn!(function = %rec.function_name, error = %e, "could not start environment");
                // Nothing runs as the user: its id can go back at once.
                drop(user);
                return Ok(Err(prepared.failure(
                    FunctionError::InvalidEntrypoint,
                    &job.request_id,
                    &format!("Runtime failed to start: {e}"),
                    started,
                )));
            }
        };
        pump_output(&mut sandbox, &prepared.log);
        Ok(Ok(Spawned {
            prepared,
            tree: Tree::new(sandbox, user, relay),
            api,
            gate,
            at,
        }))
    }

    /// Paths as the runtime sees them: Lambda's in namespaces, the host's otherwise.
    fn inside<'a>(
        &'a self,
        task_root: &'a Path,
        opt_dir: Option<&'a Path>,
        empty_opt: &'a Path,
    ) -> Inside<'a> {
        if self.namespaces() {
            Inside {
                task_root: Path::new("/var/task"),
                opt: Path::new("/opt"),
                runtime_dir: Path::new("/var/runtime"),
            }
        } else {
            Inside {
                task_root,
                opt: opt_dir.unwrap_or(empty_opt),
                runtime_dir: &self.config.runtime_dir,
            }
        }
    }

    /// The runtime's environment variables (the one place they are built).
    fn env_vars(
        &self,
        job: &StartJob,
        runtime_api: &str,
        endpoint: Option<&str>,
        stream_name: &str,
        inside: &Inside<'_>,
    ) -> Vec<(String, String)> {
        let rec = &job.rec;
        let function_arn = format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.config.region, self.config.account_id, rec.function_name
        );
        let credentials = self
            .config
            .credentials
            .for_function(&function_arn, &rec.spec.role);
        EnvVars {
            rec,
            initialization_type: job.initialization_type(),
            region: &self.config.region,
            runtime_api,
            endpoint,
            log_stream: stream_name,
            inside,
            credentials: &credentials,
            sdks: Sdks::find(&self.config.runtime_dir),
        }
        .build()
    }

    /// Step 3: extensions first, then the runtime's first `/next`.
    async fn await_init(
        &self,
        job: &StartJob,
        spawned: Spawned,
        started: Instant,
        cancel: &mut tokio::sync::watch::Receiver<bool>,
    ) -> StartResult<Env> {
        let Spawned {
            prepared,
            tree,
            api,
            gate,
            at,
        } = spawned;
        let limit = self.config.init_timeout;
        let deadline = tokio::time::Instant::from(at + limit);
        if let Some(gate) = gate {
            // Whichever ends first, the gate opens (dropped with its future): the runtime
            // starts, or finds itself in a tree that is about to be discarded.
            tokio::select! {
                () = gate.release_when_registered(&api, prepared.extensions) => {}
                _ = tree.sandbox().wait() => {}
                () = tokio::time::sleep_until(deadline) => {}
                _ = cancel.wait_for(|stop| *stop) => {}
            }
        }
        enum InitEnd {
            Init(InitResult),
            Exited(kindling_sandbox::Exit),
            TimedOut,
            Cancelled,
        }
        let ended = tokio::select! {
            r = api.wait_init() => InitEnd::Init(r),
            exit = tree.sandbox().wait() => InitEnd::Exited(exit),
            () = tokio::time::sleep_until(deadline) => InitEnd::TimedOut,
            _ = cancel.wait_for(|stop| *stop) => InitEnd::Cancelled,
        };
        let init = match ended {
            InitEnd::Init(r) => Some(r),
            InitEnd::TimedOut => None,
            InitEnd::Exited(exit) => {
                let (message, error) = exit_message(exit);
                let failure = prepared.failure(error, &job.request_id, &message, started);
                prepared.discard(tree).await;
                return Ok(Err(failure));
            }
            InitEnd::Cancelled => {
                prepared.discard(tree).await;
                return Err(SchedulerError::ShuttingDown);
            }
        };
        let duration = started.elapsed();
        let status = match &init {
            Some(InitResult::Ready) => "success",
            Some(InitResult::InitError { .. }) => "error",
            None => "timeout",
        };
        let init_type = job.initialization_type();
        prepared.log.platform(
            || None,
            Level::Debug,
            || logs::init_runtime_done_record(init_type, status),
        );
        prepared.log.platform(
            || None,
            Level::Debug,
            || logs::init_report_record(init_type, status, duration),
        );
        api.telemetry().end_init();
        match init {
            Some(InitResult::Ready) => Ok(Ok(Env::new(Started {
                key: PoolKey::of(&job.rec),
                stream_name: prepared.stream_name,
                tree,
                api,
                log: prepared.log,
                init_duration: duration,
                memory_mb: job.rec.spec.memory_size,
                timeout: Duration::from_secs(u64::from(job.rec.spec.timeout)),
                tmp_dir: prepared.tmp_dir,
                state: self.metrics.functions.get(&job.rec.function_name),
                metrics: Arc::clone(&self.metrics),
            }))),
            Some(InitResult::InitError { error_type, body }) => {
                let failure = InitFailure {
                    error: error_type
                        .as_deref()
                        .map_or(FunctionError::Unknown, FunctionError::from_wire),
                    payload: body,
                    log: Arc::clone(&prepared.log),
                    duration,
                };
                prepared.discard(tree).await;
                Ok(Err(failure))
            }
            None => {
                let failure = prepared.failure(
                    FunctionError::Timeout,
                    &job.request_id,
                    &format!(
                        "Init phase timed out after {:.2} seconds",
                        limit.as_secs_f64()
                    ),
                    started,
                );
                prepared.discard(tree).await;
                Ok(Err(failure))
            }
        }
    }
}

/// The log's and telemetry's `initStart` (text logs have no INIT_START line here).
fn log_init_start(prepared: &Prepared, api: &RuntimeApi, job: &StartJob) {
    let rec = &job.rec;
    prepared.log.set_telemetry(api.telemetry());
    prepared.log.platform(
        || None,
        Level::Info,
        || {
            logs::init_start_record(
                job.initialization_type(),
                rec.spec.runtime.as_deref().unwrap_or("provided"),
                &rec.function_name,
                &rec.version_label(),
            )
        },
    );
}

/// Sends the environment's output lines to its log stream.
fn pump_output(sandbox: &mut kindling_sandbox::Environment, log: &Arc<LogStream>) {
    if let Some(mut output) = sandbox.take_output() {
        let log = Arc::clone(log);
        tokio::spawn(async move {
            while let Some(line) = output.recv().await {
                log.function_line(line.line);
                while let Ok(more) = output.try_recv() {
                    log.function_line(more.line);
                }
                // One write per burst at most, shared with the invocation's platform lines.
                log.flush_soon();
            }
        });
    }
}

/// How the environment's Telemetry and Logs API subscribers (on its `sandbox.localdomain`) are
/// reached from Kindling's process: inside its own network namespace if it has one (never the
/// host's loopback, which is not the function's to reach); on the shared host loopback with a
/// socket owned by its own user (`own_uid`: namespaces mode), so Kindling's edge and any other
/// listener that identifies peers by socket owner see the function, not Kindling (which would
/// pass for the operator); else (process mode, where the function runs as Kindling's user
/// anyway) as Kindling.
pub(super) fn telemetry_network(
    namespace: Option<&NetworkNamespace>,
    own_uid: Option<u32>,
) -> TelemetryNetwork {
    if let Some(namespace) = namespace {
        let namespace = namespace.clone();
        return TelemetryNetwork::Dialed(Arc::new(move |_host: &str, port: u16| {
            let namespace = namespace.clone();
            Box::pin(async move {
                let stream = namespace.connect_loopback(port).await?;
                tokio::net::TcpStream::from_std(stream)
            })
        }));
    }
    let Some(uid) = own_uid else {
        return TelemetryNetwork::Host;
    };
    TelemetryNetwork::Dialed(Arc::new(move |_host: &str, port: u16| {
        Box::pin(async move {
            let stream = kindling_sandbox::connect_loopback_as(uid, port).await?;
            tokio::net::TcpStream::from_std(stream)
        })
    }))
}

/// Accepts connections on `listener` (inside an environment's network namespace) and hands
/// them to the endpoint's relay as the environment's (`uid`). Ends when aborted (with the
/// environment's tree).
fn relay_task(
    listener: std::net::TcpListener,
    endpoint: &crate::config::ServiceEndpoint,
    uid: u32,
) -> Result<tokio::task::AbortHandle, SchedulerError> {
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(SchedulerError::io("registering the API relay listener"))?;
    let relay = Arc::clone(&endpoint.relay);
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => relay(stream, uid),
                Err(e) => {
                    tracing::debug!(error = %e, "API relay accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    Ok(task.abort_handle())
}

impl Prepared {
    /// An init failure of the platform's making (`error`, `message`).
    fn failure(
        &self,
        error: FunctionError,
        request_id: &str,
        message: &str,
        started: Instant,
    ) -> InitFailure {
        InitFailure {
            payload: platform_error(&error, request_id, message),
            error,
            log: Arc::clone(&self.log),
            duration: started.elapsed(),
        }
    }

    /// Ends an environment that failed its Init: the tree is killed at once, its user id
    /// given back once the tree is gone, its `/tmp` removed.
    async fn discard(self, tree: Tree) {
        drop(tree);
        let _ = tokio::fs::remove_dir_all(&self.tmp_dir).await;
    }
}

/// The port of Kindling's API on an environment's own loopback: the port Kindling listens on,
/// unless that is the Runtime API's (Kindling's default 9001 is also Lambda's Runtime API
/// port), then the next one.
fn endpoint_port_inside(listen_port: u16) -> u16 {
    if listen_port == RUNTIME_API_PORT {
        RUNTIME_API_PORT + 1
    } else {
        listen_port
    }
}

#[cfg(test)]
mod endpoint_port_tests {
    use super::*;

    #[test]
    fn the_endpoint_never_takes_the_runtime_api_port_inside() {
        assert_ne!(endpoint_port_inside(RUNTIME_API_PORT), RUNTIME_API_PORT);
        assert_eq!(endpoint_port_inside(4566), 4566);
    }
}
