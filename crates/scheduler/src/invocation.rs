//! One invocation, run on its caller's task (see [`Scheduler::invoke`]): an environment
//! (warm, handed over by another invocation, or cold-started once the gate lets it), the run,
//! and the environment's return.
//!
//! [`Scheduler::invoke`]: crate::Scheduler::invoke

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::oneshot;

use kindling_model::invoke::FunctionError;
use kindling_runtime_api::{Invocation, ShutdownReason};

use crate::activity::InvocationRecord;
use crate::concurrency::{Permit, ThrottleReason};
use crate::env::{Env, Ran, RunResult};
use crate::error::SchedulerError;
use crate::logs::{self, Report};
use crate::pool::{PoolKey, Taken};
use crate::request::{InvokeRequest, InvokeResponse, InvokeResult, InvokeStream, StreamOutcome};
use crate::shared::Shared;
use crate::spans::Timeline;
use crate::start::{InitFailure, StartJob, StartResult};
use crate::trace::invocation_trace_header;

/// How many environments an invocation is handed to when each one's runtime turns out to have
/// died before it received the event (see [`Ran::Undelivered`]).
const DELIVERY_ATTEMPTS: u32 = 3;

/// Runs `req` to completion, holding its concurrency `permit` throughout, in `warm` when given
/// (taken by [`take_warm`]), else in an environment [`acquire`]d for it.
pub(crate) async fn run(
    shared: Arc<Shared>,
    req: InvokeRequest,
    permit: Permit,
    mut warm: Option<Env>,
) -> Result<InvokeResponse, SchedulerError> {
    let rec = &req.target.record;
    let version = rec.version_label();
    let trace_id = invocation_trace_header(req.trace_id.as_deref());
    let mut cancel = shared.cancel.subscribe();
    let exporter = shared.starter.spans.get().cloned();
    let started = SystemTime::now();
    let timeline = |acquired, init, run, error| Timeline {
        function: &rec.function_name,
        version: &version,
        request_id: &req.request_id,
        invoked_arn: &req.target.invoked_arn,
        incoming: req.trace_id.as_deref(),
        runtime_header: &trace_id,
        asynchronous: req.enqueued_ms.is_some(),
        enqueued: req
            .enqueued_ms
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)),
        started,
        acquired,
        init,
        run,
        ended: SystemTime::now(),
        error,
    };
    let mut attempts = 0;
    let (mut env, acquired, run, tail) = loop {
        let acquired = match warm.take() {
            Some(env) => Ok(env),
            None => acquire(&shared, &req, &mut cancel).await?,
        };
        let mut env = match acquired {
            Ok(env) => env,
            Err(failure) => {
                if let Some(x) = &exporter {
                    let now = SystemTime::now();
                    timeline(
                        now,
                        Some(failure.duration),
                        None,
                        Some(failure.error.as_str()),
                    )
                    .export(x);
                }
                shared.activity.record(InvocationRecord {
                    at_ms: logs::now_ms(),
                    function: rec.function_name.clone(),
                    version: version.clone(),
                    resource: resource(&req).into_owned(),
                    request_id: req.request_id.clone(),
                    error: Some(failure.error.as_str().to_string()),
                    duration: failure.duration,
                    init: Some(failure.duration),
                    asynchronous: req.enqueued_ms.is_some(),
                });
                return Ok(InvokeResponse::Buffered(init_failed(
                    &shared.starter.metrics,
                    &req,
                    &version,
                    failure,
                    trace_id,
                )));
            }
        };
        let acquired = SystemTime::now();

        let deadline_ms = logs::now_ms() as u64 + u64::from(rec.spec.timeout) * 1000;
        let inv = Invocation {
            request_id: req.request_id.clone(),
            deadline_ms,
            invoked_function_arn: req.target.invoked_arn.clone(),
            trace_id: Some(trace_id.clone()),
            client_context: req.client_context.clone(),
            cognito_identity: None,
            tenant_id: None,
            payload: req.payload.clone(),
            content_type: None,
        };
        attempts += 1;
        let redeliver = attempts < DELIVERY_ATTEMPTS;
        match env
            .run(inv, &version, req.tail, redeliver, &mut cancel)
            .await
        {
            None => {
                shared.retire(env, ShutdownReason::Spindown);
                return Err(SchedulerError::ShuttingDown);
            }
            // The runtime had died before the event was handed to it: another environment.
            Some(Ran::Undelivered) => shared.retire(env, ShutdownReason::Failure),
            Some(Ran::Done(run, tail)) => break (env, acquired, run, tail),
            Some(Ran::Streaming {
                content_type,
                chunks,
                stream,
            }) => {
                let (end_tx, end) = oneshot::channel();
                let resource = resource(&req).into_owned();
                let req_facts = Facts::of(&req, &version);
                // The stream's end is awaited in a task of its own (counted for the shutdown),
                // which holds the environment and the concurrency slot until then.
                let entered = shared.tasks.enter();
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let outcome = match env.finish_stream(stream, &mut cancel).await {
                        None => {
                            shared.retire(env, ShutdownReason::Spindown);
                            StreamOutcome {
                                function_error: Some(FunctionError::Unknown),
                                error_body: Bytes::from_static(
                                    br#"{"errorType":"Runtime.Unknown","errorMessage":"Kindling is shutting down"}"#,
                                ),
                                log_tail: None,
                            }
                        }
                        Some((run, log_tail)) => {
                            record(&mut env, &resource, &run);
                            shared
                                .activity
                                .record(activity_of(req_facts, resource.clone(), &run));
                            let outcome = StreamOutcome {
                                function_error: run.error.clone(),
                                error_body: run.payload.clone(),
                                log_tail,
                            };
                            hand_back(&shared, env, &run);
                            outcome
                        }
                    };
                    drop(permit);
                    let _ = end_tx.send(outcome);
                    drop(entered);
                });
                return Ok(InvokeResponse::Stream(InvokeStream {
                    request_id: req.request_id,
                    executed_version: version,
                    content_type,
                    trace_id,
                    chunks,
                    end,
                }));
            }
        }
    };
    let resource = resource(&req);
    record(&mut env, &resource, &run);
    shared.activity.record(activity_of(
        Facts::of(&req, &version),
        resource.into_owned(),
        &run,
    ));
    if let Some(x) = &exporter {
        let error = run.error.as_ref().map(FunctionError::as_str);
        timeline(acquired, run.init, Some(run.duration), error).export(x);
    }
    hand_back(&shared, env, &run);
    drop(permit);
    Ok(InvokeResponse::Buffered(InvokeResult {
        request_id: req.request_id,
        executed_version: version,
        payload: run.payload,
        content_type: run.content_type,
        function_error: run.error,
        log_tail: tail,
        trace_id,
    }))
}

/// Lambda's metrics of one run, on the members its environment resolved (atomic adds).
fn record(env: &mut Env, resource: &str, run: &RunResult) {
    let m = env.invoke_metrics(resource);
    m.invocations.inc();
    if run.error.is_some() {
        m.errors.inc();
    }
    m.duration.observe(run.duration);
    if let Some(init) = run.init {
        m.init_duration.observe(init);
    }
}

/// What the console's activity record needs of the request.
struct Facts {
    function: String,
    version: String,
    request_id: String,
    asynchronous: bool,
}

impl Facts {
    fn of(req: &InvokeRequest, version: &str) -> Self {
        Self {
            function: req.target.record.function_name.clone(),
            version: version.to_string(),
            request_id: req.request_id.clone(),
            asynchronous: req.enqueued_ms.is_some(),
        }
    }
}

fn activity_of(f: Facts, resource: String, run: &RunResult) -> InvocationRecord {
    InvocationRecord {
        at_ms: logs::now_ms(),
        function: f.function,
        version: f.version,
        resource,
        request_id: f.request_id,
        error: run.error.as_ref().map(|e| e.as_str().to_string()),
        duration: run.duration,
        init: run.init,
        asynchronous: f.asynchronous,
    }
}

/// Returns the environment after a run: to the pool, or to its end after a crash or timeout.
fn hand_back(shared: &Shared, env: Env, run: &RunResult) {
    if run.reusable {
        shared.give_back(env);
    } else {
        let reason = if run.error == Some(FunctionError::Timeout) {
            ShutdownReason::Timeout
        } else {
            ShutdownReason::Failure
        };
        shared.retire(env, reason);
    }
}

/// An environment for `req`: a warm one of its key; else whichever comes first of one handed
/// over by an invocation finishing with it, and a cold-start slot (then a cold start); or a
/// throttle once the wait limit passes.
async fn acquire(
    shared: &Arc<Shared>,
    req: &InvokeRequest,
    cancel: &mut tokio::sync::watch::Receiver<bool>,
) -> StartResult<Env> {
    let key = PoolKey::of(&req.target.record);
    // Provisioned concurrency first; beyond it, on-demand environments.
    while let Some(env) = shared.provisioned.take(&key) {
        if let Some(env) = usable(shared, env).await {
            if let Some(set) = env.provisioned_set() {
                set.served();
            }
            return Ok(Ok(env));
        }
    }
    let deadline = Instant::now() + shared.config().cold_start_wait_limit;
    // Created once, so the invocation keeps its place in the gate's line across hand-overs.
    let slot = shared.cold_starts.acquire();
    tokio::pin!(slot);
    let mut stale_checked = false;
    loop {
        let taken = shared.pool().take_or_wait(&key);
        let mut handoff = match taken {
            Taken::Warm(env) => {
                if let Some(env) = usable(shared, env).await {
                    return Ok(Ok(env));
                }
                continue;
            }
            Taken::Wait(rx) => rx,
        };
        if !stale_checked {
            stale_checked = true;
            let stale = shared.pool().stale(&key);
            for mut env in stale {
                env.stale = true;
                shared.retire(env, ShutdownReason::Spindown);
            }
        }
        let woke = tokio::select! {
            biased;
            handed = &mut handoff => Woke::Handed(handed.ok().map(Box::new)),
            permit = &mut slot => Woke::Slot(permit.map_err(|_| SchedulerError::ShuttingDown)?),
            () = tokio::time::sleep_until(deadline.into()) => Woke::Deadline,
            _ = cancel.wait_for(|stop| *stop) => return Err(SchedulerError::ShuttingDown),
        };
        match woke {
            Woke::Handed(env) => {
                if let Some(env) = env
                    && let Some(env) = usable(shared, *env).await
                {
                    return Ok(Ok(env));
                }
            }
            Woke::Slot(_permit) => {
                // The slot is held until the cold start is over; an environment handed over
                // in the meantime is taken instead.
                handoff.close();
                if let Ok(env) = handoff.try_recv()
                    && let Some(env) = usable(shared, env).await
                {
                    return Ok(Ok(env));
                }
                return cold_start(shared, req, cancel).await;
            }
            Woke::Deadline => {
                handoff.close();
                if let Ok(env) = handoff.try_recv()
                    && let Some(env) = usable(shared, env).await
                {
                    return Ok(Ok(env));
                }
                tracing::info!(function = %key.function, "no environment within the cold-start wait limit");
                shared.starter.metrics.throttled(
                    &key.function,
                    ThrottleReason::FunctionInvocationRateLimitExceeded.as_str(),
                );
                return Err(SchedulerError::Throttled(
                    ThrottleReason::FunctionInvocationRateLimitExceeded,
                ));
            }
        }
    }
}

/// An idle environment of `key` (provisioned first), ready for its next event, without
/// waiting for one nor starting one: for invocations forwarded by another node, which runs
/// them itself when this one has none.
pub(crate) async fn take_warm(shared: &Shared, key: &PoolKey) -> Option<Env> {
    while let Some(env) = shared.provisioned.take(key) {
        if let Some(env) = usable(shared, env).await {
            return Some(env);
        }
    }
    loop {
        let env = shared.pool().take(key)?;
        if let Some(env) = usable(shared, env).await {
            return Some(env);
        }
    }
}

/// What ended a wait for an environment.
enum Woke<P> {
    Handed(Option<Box<Env>>),
    Slot(P),
    Deadline,
}

/// A warm environment, thawed and ready for the next event; `None` (and it is retired) when
/// its runtime died or never came back for the next event.
async fn usable(shared: &Shared, env: Env) -> Option<Env> {
    if env.alive() {
        env.thaw().await;
        if env.ready().await {
            return Some(env);
        }
    }
    shared.retire(env, ShutdownReason::Failure);
    None
}

/// Starts an environment for `req` (the caller holds a cold-start slot).
async fn cold_start(
    shared: &Shared,
    req: &InvokeRequest,
    cancel: &mut tokio::sync::watch::Receiver<bool>,
) -> StartResult<Env> {
    let target = &req.target;
    let job = StartJob {
        rec: Arc::clone(&target.record),
        code_zip: target.code_zip.clone(),
        layers: target.layers.clone(),
        image_layers: target.image_layers.clone(),
        request_id: req.request_id.clone(),
        tail: req.tail,
        provisioned: false,
    };
    let mut evicted = 0;
    loop {
        // At the node's limit on environments, or out of descriptors, memory or processes:
        // an idle environment makes room (see `Shared::make_room`); none idle, the caller is
        // throttled (429, retried by SDKs; an async event is retried later) rather than
        // seeing the function fail. The place is reserved before the start, so concurrent
        // starts never overshoot the limit; not when a pre-initialized environment is ready
        // to be claimed, which has its place already (the start reserves one only if none
        // fits after all), so that nothing is retired to make room for it.
        let why = if let Some(place) = shared.starter.place_for(&job.rec) {
            match shared.starter.start(job.clone(), place, cancel).await {
                Err(e) if e.is_host_exhausted() || matches!(e, SchedulerError::NoPlace) => {
                    e.to_string()
                }
                other => return other,
            }
        } else {
            SchedulerError::NoPlace.to_string()
        };
        let room = evicted < MAX_EVICTIONS_PER_START
            && shared.make_room(&job.rec.function_name, &why).await;
        if !room {
            tracing::warn!(function = %job.rec.function_name, why, "no execution environment can be started and none is idle: throttled");
            let reason = ThrottleReason::FunctionInvocationRateLimitExceeded;
            shared
                .starter
                .metrics
                .throttled(&job.rec.function_name, reason.as_str());
            return Err(SchedulerError::Throttled(reason));
        }
        evicted += 1;
    }
}

/// Idle environments a cold start may retire when the host is out of resources for it.
pub(crate) const MAX_EVICTIONS_PER_START: u32 = 3;

/// Lambda's `Resource` dimension: the function, or `function:qualifier` as invoked.
fn resource(req: &InvokeRequest) -> Cow<'_, str> {
    let name = &req.target.record.function_name;
    match &req.target.qualifier {
        Some(q) => Cow::Owned(format!("{name}:{q}")),
        None => Cow::Borrowed(name),
    }
}

/// The result of an invocation whose cold start failed: the init error is its payload.
fn init_failed(
    shared_metrics: &crate::metrics::SchedulerMetrics,
    req: &InvokeRequest,
    version: &str,
    f: InitFailure,
    trace_id: String,
) -> InvokeResult {
    let rec = &req.target.record;
    let error_type = f.error.as_str();
    f.log.line(&format!(
        "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: error\tError Type: {error_type}",
        f.duration.as_secs_f64() * 1000.0,
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
        error_type: Some(error_type),
    }));
    f.log.flush();
    let m = shared_metrics.invoke(&rec.function_name, &resource(req), version);
    m.invocations.inc();
    m.errors.inc();
    m.init_duration.observe(f.duration);
    InvokeResult {
        request_id: req.request_id.clone(),
        executed_version: version.to_string(),
        payload: f.payload,
        content_type: None,
        log_tail: req.tail.then(|| f.log.end_tail()),
        function_error: Some(f.error),
        trace_id,
    }
}
