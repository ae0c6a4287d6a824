//! One execution environment: a sandboxed runtime process, its Runtime API server and its log
//! stream, through Init, Invoke (with timeout) and Shutdown.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kindling_model::function::VersionRecord;
use kindling_runtime_api::{
    InitResult, Invocation, Outcome, RuntimeApi, RuntimeApiConfig, ShutdownReason,
};
use kindling_sandbox::{BindMount, EnvironmentSpec, Exit, IsolationMode};
use serde_json::json;

use crate::error::SchedulerError;
use crate::launch::{EnvVars, Inside, launch};
use crate::logs::{self, LogStream, Report};
use crate::pool::PoolKey;
use crate::scheduler::Shared;
use crate::users::UserLease;

/// Largest response a runtime may post (6 MiB + 100 bytes, as Lambda's runtime API allows).
const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024 + 100;
/// Shutdown budget for external extensions.
const EXTENSION_SHUTDOWN: Duration = Duration::from_millis(2000);
/// The Runtime API's port inside an environment with a network namespace of its own, as in
/// Lambda (`AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001`). With the host's network it is a free port.
const RUNTIME_API_PORT: u16 = 9001;

/// Starts every external extension (executables in `/opt/extensions`, without the runtime-only
/// variables), stops itself until Kindling has seen them register, then becomes the runtime.
/// Arguments: the extensions directory, then the runtime's command line.
const EXTENSIONS_WRAPPER: &str = r#"dir=$1; shift
for ext in "$dir"/*; do
  if [ -f "$ext" ] && [ -x "$ext" ]; then
    env -u _HANDLER -u AWS_EXECUTION_ENV -u LAMBDA_TASK_ROOT -u LAMBDA_RUNTIME_DIR \
      -u AWS_LAMBDA_LOG_GROUP_NAME -u AWS_LAMBDA_LOG_STREAM_NAME "$ext" &
  fi
done
kill -STOP $$
exec "$@""#;

/// Executables in a layer set's `extensions` directory.
fn count_extensions(opt: &Path) -> usize {
    use std::os::unix::fs::PermissionsExt;
    std::fs::read_dir(opt.join("extensions"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.metadata()
                        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                })
                .count()
        })
        .unwrap_or(0)
}

/// Lets the runtime start once `expected` extensions registered (or one failed, or the Init
/// limit passed): waits for the wrapper to stop itself, then continues it.
async fn release_runtime(
    api: &RuntimeApi,
    sandbox: &kindling_sandbox::Environment,
    expected: usize,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    let stopped = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with('T'))
            })
            .unwrap_or(false)
    };
    while Instant::now() < deadline {
        let registered = api.registered_extensions().len() >= expected;
        let failed = matches!(api.init_result(), Some(InitResult::InitError { .. }));
        let exited = sandbox.try_wait().is_some();
        if exited {
            return;
        }
        if let Some(pid) = sandbox.pid()
            && (registered || failed)
            && stopped(pid)
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGCONT,
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    if let Some(pid) = sandbox.pid() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGCONT,
        );
    }
}

/// Kills an environment that failed its Init; its user id is given back once the tree is gone.
fn discard(sandbox: kindling_sandbox::Environment, user: Option<UserLease>) {
    sandbox.kill();
    tokio::spawn(async move {
        let _ = sandbox.wait().await;
        drop(user);
    });
}

/// A function error produced by the platform rather than the runtime.
pub(crate) fn platform_error(error_type: &str, request_id: &str, message: &str) -> Bytes {
    Bytes::from(
        json!({
            "errorType": error_type,
            "errorMessage": format!("RequestId: {request_id} Error: {message}"),
        })
        .to_string(),
    )
}

/// How a run of one invocation ended.
pub(crate) struct RunResult {
    pub payload: Bytes,
    pub content_type: Option<String>,
    /// `Some` for function errors (the caller sees `X-Amz-Function-Error: Unhandled`).
    pub error_type: Option<String>,
    /// Whether the environment can serve another invocation.
    pub reusable: bool,
}

/// A cold start that failed: the invocation gets this error as its result.
pub(crate) struct InitFailure {
    pub error_type: String,
    pub payload: Bytes,
    pub log: Arc<LogStream>,
    pub duration: Duration,
}

pub(crate) struct Env {
    pub key: PoolKey,
    pub stream_name: String,
    sandbox: kindling_sandbox::Environment,
    api: RuntimeApi,
    pub log: Arc<LogStream>,
    /// Init Duration, reported on the environment's first invocation only.
    init_duration: Option<Duration>,
    memory_mb: u32,
    timeout: Duration,
    tmp_dir: PathBuf,
    pub last_used: Instant,
    /// Extensions registered: the environment waits for them between invocations.
    has_extensions: bool,
    /// Suspended by the cgroup freezer while idle.
    pub frozen: bool,
    /// The environment's own user id; given back once the tree is gone (after `retire`).
    _user: Option<UserLease>,
}

fn exit_message(exit: Exit) -> (String, &'static str) {
    match exit {
        Exit::Code(c) => (
            format!("Runtime exited with error: exit status {c}"),
            "Runtime.ExitError",
        ),
        Exit::Signal(s) => (
            format!("Runtime exited with error: signal: {}", signal_name(s)),
            "Runtime.ExitError",
        ),
        Exit::OutOfMemory => (
            "Runtime exited with error: signal: killed".to_string(),
            "Runtime.OutOfMemory",
        ),
        Exit::Killed => (
            "Runtime exited with error: signal: killed".to_string(),
            "Runtime.ExitError",
        ),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        6 => "aborted",
        9 => "killed",
        11 => "segmentation fault",
        15 => "terminated",
        _ => "signal",
    }
}

impl Env {
    /// Starts an environment for `rec` and runs its Init phase. `request_id` names the
    /// invocation that caused the cold start (for error messages).
    pub async fn start(
        shared: &Arc<Shared>,
        rec: &Arc<VersionRecord>,
        code_zip: &Path,
        layers: &[(String, PathBuf)],
        request_id: &str,
        tail: bool,
    ) -> Result<Result<Env, InitFailure>, SchedulerError> {
        let started = Instant::now();
        let artifacts = shared.artifacts.clone();
        let (blob, zip, layers_owned) = (
            rec.code.blob.clone(),
            code_zip.to_path_buf(),
            layers.to_vec(),
        );
        let (task_root, opt_dir) = tokio::task::spawn_blocking(move || {
            Ok::<_, std::io::Error>((
                artifacts.code_dir(&blob, &zip)?,
                artifacts.opt_dir(&layers_owned)?,
            ))
        })
        .await
        .map_err(|e| SchedulerError::Internal(e.to_string()))??;

        let id = uuid::Uuid::new_v4().simple().to_string();
        let stream_name = logs::log_stream_name(logs::now_ms(), &rec.version_label(), &id);
        let log = Arc::new(shared.logs.open_stream(&rec.function_name, &stream_name)?);
        if tail {
            log.begin_tail();
        }
        let namespaces = matches!(shared.sandbox.mode(), IsolationMode::Namespaces { .. });
        let runtime_dir = &shared.config.runtime_dir;
        let empty_opt = shared.config.work_dir.join("empty-opt");
        let inside = if namespaces {
            Inside {
                task_root: Path::new("/var/task"),
                opt: Path::new("/opt"),
                runtime_dir: Path::new("/var/runtime"),
            }
        } else {
            Inside {
                task_root: &task_root,
                opt: opt_dir.as_deref().unwrap_or(&empty_opt),
                runtime_dir,
            }
        };
        let fail = |error_type: &str, message: String, log: Arc<LogStream>| {
            Ok(Err(InitFailure {
                error_type: error_type.to_string(),
                payload: platform_error(error_type, request_id, &message),
                log,
                duration: started.elapsed(),
            }))
        };
        let launch = match launch(
            rec,
            &shared.locator,
            &task_root,
            opt_dir.as_deref(),
            &inside,
        )? {
            Ok(l) => l,
            Err(message) => return fail("Runtime.InvalidEntrypoint", message, log),
        };

        // A user of its own (namespaces with a configured range), and the Runtime API where
        // only the environment reaches it: inside its network namespace, or on the host's
        // loopback serving only its user's sockets.
        let user = match &shared.users {
            Some(pool) if namespaces => Some(pool.lease().map_err(SchedulerError::Internal)?),
            _ => None,
        };
        let uid = user
            .as_ref()
            .map_or(shared.sandbox.config().uid, UserLease::id);
        let network = shared
            .sandbox
            .prepare_network(RUNTIME_API_PORT)
            .await
            .map_err(|e| SchedulerError::Internal(format!("preparing the network: {e}")))?;
        let shares_host_network = network.namespace.is_none();
        let api = RuntimeApi::from_listener(
            tokio::net::TcpListener::from_std(network.listener)?,
            RuntimeApiConfig {
                function_name: rec.function_name.clone(),
                function_version: rec.version_label(),
                handler: rec.spec.handler.clone(),
                account_id: shared.config.account_id.clone(),
                max_response_bytes: MAX_RESPONSE_BYTES,
                extensions_enabled: true,
                allowed_peer_uid: (namespaces && shares_host_network).then_some(uid),
            },
        )?;
        let runtime_api = api.local_addr().to_string();
        let function_arn = format!(
            "arn:aws:lambda:{}:{}:function:{}",
            shared.config.region, shared.config.account_id, rec.function_name
        );
        let credentials = shared
            .config
            .credentials
            .for_function(&function_arn, &rec.spec.role);
        let env = EnvVars {
            rec,
            region: &shared.config.region,
            runtime_api: &runtime_api,
            log_stream: &stream_name,
            inside: &inside,
            credentials: &credentials,
        }
        .build();

        let extensions = opt_dir.as_deref().map(count_extensions).unwrap_or(0);
        let (program, args) = if extensions > 0 {
            let mut args = vec![
                "-c".to_string(),
                EXTENSIONS_WRAPPER.to_string(),
                "kindling-extensions".to_string(),
                inside.opt.join("extensions").to_string_lossy().into_owned(),
                launch.program.to_string_lossy().into_owned(),
            ];
            args.extend(launch.args.iter().cloned());
            (PathBuf::from("/bin/sh"), args)
        } else {
            (launch.program.clone(), launch.args.clone())
        };
        let tmp_dir = shared.config.work_dir.join("tmp").join(&id);
        let mut readonly = shared.config.readonly_host_paths.clone();
        if let Some(prefix) = &launch.interpreter_prefix
            && !readonly.iter().any(|p| prefix.starts_with(p))
        {
            readonly.push(prefix.clone());
        }
        let spec = EnvironmentSpec {
            id: id.clone(),
            program,
            args,
            env,
            task_root: task_root.clone(),
            opt_dir: opt_dir.clone(),
            tmp_dir: tmp_dir.clone(),
            tmp_size_mb: rec.spec.ephemeral_storage,
            memory_mb: rec.spec.memory_size,
            pids_max: 1024,
            cwd: inside.task_root.to_path_buf(),
            readonly_host_paths: readonly,
            extra_mounts: vec![BindMount {
                host: runtime_dir.clone(),
                inside: PathBuf::from("/var/runtime"),
            }],
            uid: user.as_ref().map(UserLease::id),
            gid: user.as_ref().map(UserLease::id),
            network: network.namespace,
        };
        let mut sandbox = match shared.sandbox.spawn(spec).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(function = %rec.function_name, error = %e, "could not start environment");
                return fail(
                    "Runtime.InvalidEntrypoint",
                    format!("Runtime failed to start: {e}"),
                    log,
                );
            }
        };
        if let Some(mut output) = sandbox.take_output() {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                while let Some(line) = output.recv().await {
                    log.line(&line.line);
                    while let Ok(more) = output.try_recv() {
                        log.line(&more.line);
                    }
                    log.flush();
                }
            });
        }

        if extensions > 0 {
            release_runtime(&api, &sandbox, extensions, shared.config.init_timeout).await;
        }
        let init = tokio::select! {
            r = api.wait_init() => Some(r),
            exit = sandbox.wait() => {
                let (message, error_type) = exit_message(exit);
                let _ = tokio::fs::remove_dir_all(&tmp_dir).await;
                return fail(error_type, message, log);
            }
            () = tokio::time::sleep(shared.config.init_timeout) => None,
        };
        let duration = started.elapsed();
        match init {
            Some(InitResult::Ready) => {}
            Some(InitResult::InitError { error_type, body }) => {
                discard(sandbox, user);
                let _ = tokio::fs::remove_dir_all(&tmp_dir).await;
                return Ok(Err(InitFailure {
                    error_type: error_type.unwrap_or_else(|| "Runtime.Unknown".into()),
                    payload: body,
                    log,
                    duration,
                }));
            }
            None => {
                discard(sandbox, user);
                let _ = tokio::fs::remove_dir_all(&tmp_dir).await;
                return fail(
                    "Sandbox.Timedout",
                    format!(
                        "Init phase timed out after {:.2} seconds",
                        shared.config.init_timeout.as_secs_f64()
                    ),
                    log,
                );
            }
        }
        let has_extensions = !api.registered_extensions().is_empty();
        Ok(Ok(Env {
            key: PoolKey::of(rec),
            stream_name,
            sandbox,
            api,
            log,
            init_duration: Some(duration),
            memory_mb: rec.spec.memory_size,
            timeout: Duration::from_secs(u64::from(rec.spec.timeout)),
            tmp_dir,
            last_used: Instant::now(),
            has_extensions,
            frozen: false,
            _user: user,
        }))
    }

    /// Suspends an idle environment (no CPU until the next invocation).
    pub async fn freeze(&mut self) {
        if self.sandbox.can_freeze() && !self.frozen {
            match self.sandbox.freeze().await {
                Ok(()) => self.frozen = true,
                Err(e) => {
                    tracing::warn!(stream = %self.stream_name, error = %e, "could not freeze")
                }
            }
        }
    }

    /// Resumes a frozen environment before an invocation.
    pub async fn thaw(&mut self) {
        if self.frozen {
            if let Err(e) = self.sandbox.thaw().await {
                tracing::warn!(stream = %self.stream_name, error = %e, "could not thaw");
            }
            self.frozen = false;
        }
    }

    /// True while the runtime process is alive.
    pub fn alive(&self) -> bool {
        self.sandbox.try_wait().is_none()
    }

    /// Waits until a warm environment can take an invocation: its runtime (and every extension)
    /// asked for the next event. False when the runtime exited in between (a runtime may answer
    /// and then exit) or never asked within the function's timeout: the caller retires it and
    /// starts a fresh one, as Lambda resets such an environment.
    pub async fn ready(&self) -> bool {
        tokio::select! {
            () = self.api.wait_invocation_complete() => self.alive(),
            _ = self.sandbox.wait() => false,
            () = tokio::time::sleep(self.timeout) => false,
        }
    }

    /// Runs one invocation: START, hand-over, wait with the function's timeout, END, REPORT.
    /// `None` when `cancel` fired first (the server is stopping): the environment was killed.
    pub async fn run(
        &mut self,
        inv: Invocation,
        version: &str,
        tail: bool,
        cancel: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Option<(RunResult, Option<String>)> {
        let request_id = inv.request_id.clone();
        if tail {
            self.log.begin_tail();
        }
        self.log.line(&logs::start_line(&request_id, version));
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let outcome = tokio::select! {
            o = self.api.invoke(inv) => Ok(o),
            exit = self.sandbox.wait() => Err(Some(exit)),
            () = tokio::time::sleep_until(deadline) => Err(None),
            _ = cancel.wait_for(|stop| *stop) => {
                self.sandbox.kill();
                self.log.line(&format!("RequestId: {request_id} Error: Kindling is shutting down"));
                self.log.line(&logs::end_line(&request_id));
                self.log.flush();
                return None;
            }
        };
        let duration = started.elapsed();
        let (result, status) = match outcome {
            Ok(Outcome::Response { body, content_type }) => (
                RunResult {
                    payload: body,
                    content_type,
                    error_type: None,
                    reusable: true,
                },
                None,
            ),
            Ok(Outcome::Error { error_type, body }) => {
                let t = error_type.unwrap_or_else(|| "Unhandled".into());
                (
                    RunResult {
                        payload: body,
                        content_type: None,
                        error_type: Some(t.clone()),
                        reusable: true,
                    },
                    Some(("error", t)),
                )
            }
            Ok(Outcome::ResponseTooLarge) => {
                let t = "Function.ResponseSizeTooLarge";
                let body = platform_error(
                    t,
                    &request_id,
                    "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
                );
                (
                    RunResult {
                        payload: body,
                        content_type: None,
                        error_type: Some(t.into()),
                        reusable: true,
                    },
                    Some(("error", t.to_string())),
                )
            }
            Err(Some(exit)) => {
                let (message, t) = exit_message(exit);
                self.log
                    .line(&format!("RequestId: {request_id} Error: {message}"));
                (
                    RunResult {
                        payload: platform_error(t, &request_id, &message),
                        content_type: None,
                        error_type: Some(t.into()),
                        reusable: false,
                    },
                    Some(("error", t.to_string())),
                )
            }
            Err(None) => {
                let secs = format!("{:.2}", self.timeout.as_secs_f64());
                self.sandbox.kill();
                self.log.line(&format!(
                    "{} {request_id} Task timed out after {secs} seconds",
                    kindling_model::timefmt::iso8601_z(logs::now_ms())
                ));
                (
                    RunResult {
                        payload: platform_error(
                            "Sandbox.Timedout",
                            &request_id,
                            &format!("Task timed out after {secs} seconds"),
                        ),
                        content_type: None,
                        error_type: Some("Sandbox.Timedout".into()),
                        reusable: false,
                    },
                    Some(("timeout", "Sandbox.Timedout".to_string())),
                )
            }
        };
        // Let the output pump forward what the runtime printed before it answered.
        tokio::task::yield_now().await;
        self.log.line(&logs::end_line(&request_id));
        let peak_mb = self
            .sandbox
            .memory_peak_bytes()
            .unwrap_or(0)
            .div_ceil(1024 * 1024);
        self.log.line(&logs::report_line(&Report {
            request_id: &request_id,
            duration,
            memory_mb: self.memory_mb,
            max_memory_used_mb: peak_mb,
            init_duration: self.init_duration.take(),
            status: status.as_ref().map(|(s, _)| *s),
            error_type: status
                .as_ref()
                .filter(|(s, _)| *s == "error")
                .map(|(_, t)| t.as_str()),
        }));
        self.log.flush();
        self.last_used = Instant::now();
        let tail_text = tail.then(|| self.log.end_tail());
        Some((result, tail_text))
    }

    /// Ends the environment: SHUTDOWN to extensions (if any), then the process tree.
    pub async fn retire(mut self, reason: ShutdownReason) {
        self.thaw().await;
        if self.has_extensions && self.alive() {
            self.api.shutdown(reason, EXTENSION_SHUTDOWN).await;
        }
        self.sandbox.kill();
        let _ = self.sandbox.wait().await;
        self.log.flush();
        let _ = tokio::fs::remove_dir_all(&self.tmp_dir).await;
    }
}
