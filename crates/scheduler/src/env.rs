//! One started execution environment: its sandboxed process tree, its Runtime API server and
//! its log stream, through Invoke (with timeout) and Shutdown. How it is started lives in
//! `start`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kindling_model::invoke::FunctionError;
use kindling_runtime_api::{Invocation, Outcome, RuntimeApi, ShutdownReason, StreamEnd};
use kindling_sandbox::{Environment, Exit};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::freezer::Freezer;
use crate::logs::{self, Level, LogStream, Report};
use crate::metrics::{EnvEnd, FunctionState, InvokeMetrics, SchedulerMetrics};
use crate::pool::{PoolKey, Pooled};
use crate::users::UserLease;

/// A buffered response's limit (Lambda's 6 MB plus its 100 bytes of slack), for the message.
const MAX_BUFFERED_RESPONSE_BYTES: usize = kindling_runtime_api::DEFAULT_MAX_RESPONSE_BYTES;

/// How long END waits for the function's earlier output to be logged (a bound for a log
/// writer that cannot keep up, never reached by a working one: it waits only for what the
/// pipes held when the runtime answered).
const OUTPUT_SETTLE_LIMIT: Duration = Duration::from_secs(2);

/// After a stream is cut off, how long to wait for the runtime's exit to report that instead.
const EXIT_AFTER_CUT: Duration = Duration::from_millis(200);

/// How the runtime's side of a run ended.
enum Ended {
    Outcome(Outcome),
    Stream(StreamEnd),
    Exit(Exit),
    Timeout,
    /// The server is stopping (never concluded: the environment is killed).
    Cancelled,
}

/// What [`Env::run`] gives back.
pub(crate) enum Ran {
    /// The run is over: its result and the log tail (when asked for).
    Done(RunResult, Option<String>),
    /// The runtime is streaming: the caller reads `chunks`, the environment waits for the end
    /// with [`Env::finish_stream`].
    Streaming {
        content_type: Option<String>,
        chunks: mpsc::Receiver<Bytes>,
        stream: Streaming,
    },
    /// The runtime had ended before the event was handed to it (a runtime may exit while
    /// idle, and a warm environment's exit is only noticed moments later): it never saw the
    /// event, so the caller runs it in another environment, as Lambda would have.
    Undelivered,
}

/// A run whose response is being streamed.
pub(crate) struct Streaming {
    end: oneshot::Receiver<StreamEnd>,
    request_id: String,
    started: Instant,
    deadline: tokio::time::Instant,
    tail: bool,
}

/// Shutdown budget for external extensions.
const EXTENSION_SHUTDOWN: Duration = Duration::from_millis(2000);

/// A function error produced by the platform rather than the runtime.
pub(crate) fn platform_error(error: &FunctionError, request_id: &str, message: &str) -> Bytes {
    Bytes::from(
        json!({
            "errorType": error.as_str(),
            "errorMessage": format!("RequestId: {request_id} Error: {message}"),
        })
        .to_string(),
    )
}

/// The message and error of a runtime that ended.
pub(crate) fn exit_message(exit: Exit) -> (String, FunctionError) {
    match exit {
        Exit::Code(c) => (
            format!("Runtime exited with error: exit status {c}"),
            FunctionError::ExitError,
        ),
        Exit::Signal(s) => (
            format!("Runtime exited with error: signal: {}", signal_name(s)),
            FunctionError::ExitError,
        ),
        Exit::OutOfMemory => (
            "Runtime exited with error: signal: killed".to_string(),
            FunctionError::OutOfMemory,
        ),
        Exit::Killed => (
            "Runtime exited with error: signal: killed".to_string(),
            FunctionError::ExitError,
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

/// A process tree and the user id it runs as. The id is given back only once the tree is gone:
/// [`Tree::end`] waits for that; dropping a `Tree` kills the tree and gives the id back from a
/// task that waits for the reaping (without a runtime to wait on, the id is never reused).
pub(crate) struct Tree {
    sandbox: Arc<Environment>,
    user: Option<UserLease>,
    /// The relay of Kindling's API into the environment's network namespace, if any.
    relay: Option<tokio::task::AbortHandle>,
}

impl Tree {
    pub fn new(
        sandbox: Environment,
        user: Option<UserLease>,
        relay: Option<tokio::task::AbortHandle>,
    ) -> Self {
        Self {
            sandbox: Arc::new(sandbox),
            user,
            relay,
        }
    }

    pub fn sandbox(&self) -> &Arc<Environment> {
        &self.sandbox
    }

    /// Kills the tree, waits until it is gone, then gives the user id back.
    pub async fn end(mut self) {
        self.sandbox.kill();
        let _ = self.sandbox.wait().await;
        drop(self.user.take());
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        self.sandbox.kill();
        if let Some(relay) = self.relay.take() {
            relay.abort();
        }
        let Some(user) = self.user.take() else {
            return;
        };
        if self.sandbox.try_wait().is_some() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let sandbox = Arc::clone(&self.sandbox);
                runtime.spawn(async move {
                    let _ = sandbox.wait().await;
                    drop(user);
                });
            }
            Err(_) => {
                tracing::warn!(
                    uid = user.id(),
                    "environment dropped outside the runtime; its user id is not reused"
                );
                std::mem::forget(user);
            }
        }
    }
}

/// How a run of one invocation ended.
pub(crate) struct RunResult {
    pub payload: Bytes,
    pub content_type: Option<String>,
    /// `Some` for function errors (the caller sees `X-Amz-Function-Error: Unhandled`).
    pub error: Option<FunctionError>,
    /// Whether the environment can serve another invocation.
    pub reusable: bool,
    /// The invocation's Duration.
    pub duration: Duration,
    /// The environment's Init Duration, on its first invocation.
    pub init: Option<Duration>,
}

/// What `start` hands over once Init is done.
pub(crate) struct Started {
    pub key: PoolKey,
    pub stream_name: String,
    pub tree: Tree,
    pub api: RuntimeApi,
    pub log: Arc<LogStream>,
    pub init_duration: Duration,
    pub memory_mb: u32,
    pub timeout: Duration,
    pub tmp_dir: PathBuf,
    pub state: Arc<FunctionState>,
    pub metrics: Arc<SchedulerMetrics>,
}

pub(crate) struct Env {
    key: PoolKey,
    pub stream_name: String,
    tree: Tree,
    api: RuntimeApi,
    log: Arc<LogStream>,
    /// Init Duration, reported on the environment's first invocation only.
    init_duration: Option<Duration>,
    memory_mb: u32,
    timeout: Duration,
    tmp_dir: PathBuf,
    last_used: Instant,
    /// Extensions registered: the environment waits for them between invocations.
    has_extensions: bool,
    freezer: Arc<Freezer>,
    /// The function's environment counts (this one is live until retired).
    state: Arc<FunctionState>,
    metrics: Arc<SchedulerMetrics>,
    /// Metrics of the resources (`fn`, `fn:alias`...) this environment served, resolved once.
    handles: Vec<(String, Arc<InvokeMetrics>)>,
    /// Set when the environment is retired because its function changed.
    pub stale: bool,
    /// Membership of a provisioned concurrency set (`None`: an on-demand environment).
    provisioned: Option<crate::provisioned::Ticket>,
}

impl Pooled for Env {
    fn key(&self) -> &PoolKey {
        &self.key
    }

    fn last_used(&self) -> Instant {
        self.last_used
    }

    fn alive(&self) -> bool {
        Env::alive(self)
    }

    fn freezer(&self) -> &Arc<Freezer> {
        &self.freezer
    }
}

impl Env {
    pub fn new(s: Started) -> Self {
        let has_extensions = !s.api.registered_extensions().is_empty();
        let freezer = Arc::new(Freezer::new(
            Arc::clone(s.tree.sandbox()) as Arc<dyn crate::freezer::Freeze>
        ));
        Self {
            key: s.key,
            stream_name: s.stream_name,
            tree: s.tree,
            api: s.api,
            log: s.log,
            init_duration: Some(s.init_duration),
            memory_mb: s.memory_mb,
            timeout: s.timeout,
            tmp_dir: s.tmp_dir,
            last_used: Instant::now(),
            has_extensions,
            freezer,
            state: s.state,
            metrics: s.metrics,
            handles: Vec::new(),
            stale: false,
            provisioned: None,
        }
    }

    /// Makes this freshly initialized environment a member of a provisioned set: its Init
    /// happened ahead of any invocation, so no REPORT line carries it.
    pub fn make_provisioned(&mut self, ticket: crate::provisioned::Ticket) {
        self.init_duration = None;
        self.provisioned = Some(ticket);
    }

    /// The provisioned set this environment belongs to, if any.
    pub fn provisioned_set(&self) -> Option<&Arc<crate::provisioned::Set>> {
        self.provisioned
            .as_ref()
            .map(crate::provisioned::Ticket::set)
    }

    /// The metrics of invocations through `resource` running in this environment.
    pub fn invoke_metrics(&mut self, resource: &str) -> Arc<InvokeMetrics> {
        if let Some((_, m)) = self.handles.iter().find(|(r, _)| r == resource) {
            return Arc::clone(m);
        }
        let m = self
            .metrics
            .invoke(&self.key.function, resource, &self.key.version);
        self.handles.push((resource.to_string(), Arc::clone(&m)));
        m
    }

    fn sandbox(&self) -> &Environment {
        self.tree.sandbox()
    }

    /// True until Kindling learns that the runtime process ended (as soon as the supervisor
    /// says so, before the rest of the tree is torn down).
    pub fn alive(&self) -> bool {
        self.sandbox().program_ended_at().is_none()
    }

    /// Resumes the environment if the reaper froze it while it was idle.
    pub async fn thaw(&self) {
        self.freezer.thaw().await;
    }

    /// Waits until a warm environment can take an invocation: its runtime (and every extension)
    /// asked for the next event. False when the runtime exited in between (a runtime may answer
    /// and then exit) or never asked within the function's timeout: the caller retires it and
    /// starts a fresh one, as Lambda resets such an environment.
    pub async fn ready(&self) -> bool {
        // The warm path: the runtime is already back in `/next` (no timer armed, no wait).
        if self.api.invocation_complete() {
            return self.alive();
        }
        tokio::select! {
            () = self.api.wait_invocation_complete() => self.alive(),
            _ = self.sandbox().wait() => false,
            () = tokio::time::sleep(self.timeout) => false,
        }
    }

    /// Runs one invocation: START, hand-over, wait with the function's timeout, END, REPORT.
    /// A runtime that streams its response makes this return [`Ran::Streaming`] as soon as the
    /// stream begins; [`Env::finish_stream`] then waits for its end (same timeout) and logs.
    /// `None` when `cancel` fired first (the server is stopping): the environment was killed.
    /// With `redeliver`, an event the runtime provably never saw (it had ended before the
    /// hand-over) gives [`Ran::Undelivered`] instead of the runtime's exit error.
    pub async fn run(
        &mut self,
        inv: Invocation,
        version: &str,
        tail: bool,
        redeliver: bool,
        cancel: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Option<Ran> {
        if redeliver && !self.alive() {
            return Some(Ran::Undelivered);
        }
        let request_id = inv.request_id.clone();
        if tail {
            self.log.begin_tail();
        }
        self.log.platform(
            || Some(logs::start_line(&request_id, version)),
            Level::Info,
            || logs::start_record(&request_id, version),
        );
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let ended = tokio::select! {
            o = self.api.invoke(inv) => match o {
                Outcome::Stream(stream) => {
                    return Some(Ran::Streaming {
                        content_type: stream.content_type,
                        chunks: stream.chunks,
                        stream: Streaming {
                            end: stream.end,
                            request_id,
                            started,
                            deadline,
                            tail,
                        },
                    });
                }
                o => Ended::Outcome(o),
            },
            exit = self.tree.sandbox().wait() => Ended::Exit(exit),
            () = tokio::time::sleep_until(deadline) => Ended::Timeout,
            _ = cancel.wait_for(|stop| *stop) => {
                self.cancelled(&request_id);
                return None;
            }
        };
        if redeliver
            && matches!(ended, Ended::Exit(_))
            && self
                .sandbox()
                .program_ended_at()
                .is_some_and(|at| at < started)
        {
            // Kindling had word of the end before the hand-over, so the runtime never read it.
            self.log.line(&format!(
                "RequestId: {request_id} Error: Runtime exited before it received the event; \
                 the invocation runs in another environment"
            ));
            self.log.flush();
            return Some(Ran::Undelivered);
        }
        let (result, log_tail) = self.conclude(ended, &request_id, started, tail).await;
        Some(Ran::Done(result, log_tail))
    }

    /// Waits for the end of a streamed response (its body, the runtime's exit, the timeout or
    /// `cancel`), then END and REPORT as [`Env::run`] does.
    pub async fn finish_stream(
        &mut self,
        s: Streaming,
        cancel: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Option<(RunResult, Option<String>)> {
        let ended = tokio::select! {
            biased;
            end = s.end => Ended::Stream(end.unwrap_or(StreamEnd::Truncated)),
            exit = self.tree.sandbox().wait() => Ended::Exit(exit),
            () = tokio::time::sleep_until(s.deadline) => Ended::Timeout,
            _ = cancel.wait_for(|stop| *stop) => Ended::Cancelled,
        };
        let ended = match ended {
            Ended::Cancelled => {
                self.cancelled(&s.request_id);
                return None;
            }
            Ended::Stream(StreamEnd::Truncated) => {
                // A runtime that dies mid-stream cuts its body first: report the exit.
                match tokio::time::timeout(EXIT_AFTER_CUT, self.sandbox().wait()).await {
                    Ok(exit) => Ended::Exit(exit),
                    Err(_) => Ended::Stream(StreamEnd::Truncated),
                }
            }
            other => other,
        };
        Some(self.conclude(ended, &s.request_id, s.started, s.tail).await)
    }

    /// The server is stopping: the environment is killed and the invocation's log closed.
    fn cancelled(&self, request_id: &str) {
        self.sandbox().kill();
        self.log.line(&format!(
            "RequestId: {request_id} Error: Kindling is shutting down"
        ));
        self.log.line(&logs::end_line(request_id));
        self.log.flush();
    }

    /// The result of a run that ended as `ended`, with its END and REPORT lines.
    async fn conclude(
        &mut self,
        ended: Ended,
        request_id: &str,
        started: Instant,
        tail: bool,
    ) -> (RunResult, Option<String>) {
        let duration = started.elapsed();
        let (result, status) = match ended {
            Ended::Outcome(Outcome::Response { body, content_type }) => (
                RunResult {
                    payload: body,
                    content_type,
                    error: None,
                    reusable: true,
                    duration: Duration::ZERO,
                    init: None,
                },
                None,
            ),
            Ended::Stream(StreamEnd::Complete { .. }) => (
                RunResult {
                    payload: Bytes::new(),
                    content_type: None,
                    error: None,
                    reusable: true,
                    duration: Duration::ZERO,
                    init: None,
                },
                None,
            ),
            Ended::Outcome(Outcome::Error { error_type, body })
            | Ended::Stream(StreamEnd::Error { error_type, body }) => {
                let error = error_type
                    .as_deref()
                    .map_or(FunctionError::Unhandled, FunctionError::from_wire);
                (
                    RunResult {
                        payload: body,
                        content_type: None,
                        error: Some(error.clone()),
                        reusable: true,
                        duration: Duration::ZERO,
                        init: None,
                    },
                    Some(("error", error)),
                )
            }
            Ended::Outcome(Outcome::ResponseTooLarge) => {
                self.too_large(request_id, MAX_BUFFERED_RESPONSE_BYTES as u64)
            }
            Ended::Stream(StreamEnd::TooLarge { max }) => self.too_large(request_id, max),
            Ended::Stream(StreamEnd::Truncated)
            | Ended::Outcome(Outcome::Stream(_))
            | Ended::Cancelled => {
                let error = FunctionError::Unknown;
                let message = "The runtime's streamed response was cut off";
                self.log
                    .line(&format!("RequestId: {request_id} Error: {message}"));
                (
                    RunResult {
                        payload: platform_error(&error, request_id, message),
                        content_type: None,
                        error: Some(error.clone()),
                        reusable: false,
                        duration: Duration::ZERO,
                        init: None,
                    },
                    Some(("error", error)),
                )
            }
            Ended::Exit(exit) => {
                let (message, error) = exit_message(exit);
                self.log
                    .line(&format!("RequestId: {request_id} Error: {message}"));
                (
                    RunResult {
                        payload: platform_error(&error, request_id, &message),
                        content_type: None,
                        error: Some(error.clone()),
                        reusable: false,
                        duration: Duration::ZERO,
                        init: None,
                    },
                    Some(("error", error)),
                )
            }
            Ended::Timeout => {
                let secs = format!("{:.2}", self.timeout.as_secs_f64());
                self.sandbox().kill();
                self.log.line(&format!(
                    "{} {request_id} Task timed out after {secs} seconds",
                    kindling_model::timefmt::iso8601_z(logs::now_ms())
                ));
                let error = FunctionError::Timeout;
                (
                    RunResult {
                        payload: platform_error(
                            &error,
                            request_id,
                            &format!("Task timed out after {secs} seconds"),
                        ),
                        content_type: None,
                        error: Some(error.clone()),
                        reusable: false,
                        duration: Duration::ZERO,
                        init: None,
                    },
                    Some(("timeout", error)),
                )
            }
        };
        // What the runtime printed before it answered goes before END and REPORT.
        if tokio::time::timeout(OUTPUT_SETTLE_LIMIT, self.sandbox().output_settled())
            .await
            .is_err()
        {
            tracing::warn!(%request_id, "the function's output was not logged in time; END follows");
        }
        self.log.platform(
            || Some(logs::end_line(request_id)),
            Level::Debug,
            || {
                logs::runtime_done_record(
                    request_id,
                    status.as_ref().map_or("success", |(s, _)| *s),
                    duration,
                )
            },
        );
        let peak_mb = self
            .sandbox()
            .memory_peak_bytes()
            .unwrap_or(0)
            .div_ceil(1024 * 1024);
        let report = Report {
            request_id,
            duration,
            memory_mb: self.memory_mb,
            max_memory_used_mb: peak_mb,
            init_duration: self.init_duration.take(),
            status: status.as_ref().map(|(s, _)| *s),
            error_type: status
                .as_ref()
                .filter(|(s, _)| *s == "error")
                .map(|(_, t)| t.as_str()),
        };
        self.log.platform(
            || Some(logs::report_line(&report)),
            Level::Info,
            || logs::report_record(&report),
        );
        // Written within `FLUSH_DELAY` with the lines of the invocations that follow (one
        // write for many on the warm path), by the next Logs API read, or at the stream's end.
        self.log.flush_soon();
        self.last_used = Instant::now();
        let tail_text = tail.then(|| self.log.end_tail());
        let result = RunResult {
            duration,
            init: report.init_duration,
            ..result
        };
        (result, tail_text)
    }

    /// A response over the limit of `max` bytes: `Function.ResponseSizeTooLarge`.
    fn too_large(
        &self,
        request_id: &str,
        max: u64,
    ) -> (RunResult, Option<(&'static str, FunctionError)>) {
        let error = FunctionError::ResponseTooLarge;
        let body = platform_error(
            &error,
            request_id,
            &format!("Response payload size exceeded maximum allowed payload size ({max} bytes)."),
        );
        (
            RunResult {
                payload: body,
                content_type: None,
                error: Some(error.clone()),
                reusable: true,
                duration: Duration::ZERO,
                init: None,
            },
            Some(("error", error)),
        )
    }

    /// Ends the environment: SHUTDOWN to extensions (if any), then the process tree; its user
    /// id is given back once the tree is gone.
    pub async fn retire(self, reason: ShutdownReason) {
        self.thaw().await;
        if self.has_extensions && self.alive() {
            self.api.shutdown(reason, EXTENSION_SHUTDOWN).await;
        }
        let ended = if self.stale {
            EnvEnd::Update
        } else {
            EnvEnd::of(reason)
        };
        let Self {
            tree,
            log,
            tmp_dir,
            state,
            ..
        } = self;
        tree.end().await;
        state.ended(ended);
        log.flush();
        let _ = tokio::fs::remove_dir_all(&tmp_dir).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kindling_sandbox::{EnvironmentSpec, Sandbox};

    use super::*;
    use crate::users::{UserPool, UserRange};

    /// A dropped environment (its invocation's future dropped, a panic) gives its user id back
    /// only once its process tree is gone, never while a process could still run as it.
    #[tokio::test]
    async fn a_dropped_tree_keeps_its_user_id_until_reaped() {
        let dir = tempfile::tempdir().unwrap();
        let users = UserPool::new(UserRange {
            first: 300_000,
            count: 1,
            lock_dir: None,
        })
        .unwrap();
        let sandbox = Sandbox::process()
            .spawn(EnvironmentSpec {
                id: "tree-test".into(),
                program: "/bin/sleep".into(),
                args: vec!["30".into()],
                task_root: dir.path().to_path_buf(),
                tmp_dir: dir.path().join("tmp"),
                cwd: dir.path().to_path_buf(),
                memory_mb: 128,
                pids_max: 16,
                ..EnvironmentSpec::default()
            })
            .await
            .unwrap();
        let pid = sandbox.pid().unwrap();
        let tree = Tree::new(sandbox, Some(users.lease().unwrap()), None);
        drop(tree);
        assert!(
            users.lease().is_err(),
            "the id is still held right after the drop"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        let lease = loop {
            if let Ok(lease) = users.lease() {
                break lease;
            }
            assert!(Instant::now() < deadline, "the id never came back");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert_eq!(lease.id(), 300_000);
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z")),
            "the process is gone when the id comes back"
        );
    }
}
