//! The dispatcher and the handling of one leased event.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kindling_control::ControlError;
use kindling_model::events::{
    AsyncEvent, AttemptResult, Condition, destination_record, payload_json,
};
use kindling_model::lineage;
use kindling_model::trace::TraceHeader;
use kindling_scheduler::{InvokeRequest, SchedulerError};
use tokio::sync::Semaphore;

use crate::Shared;
use crate::outcome::{Deliveries, failure};

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// Runs a store call on the blocking pool; store errors are logged and yield `None`.
async fn store_call<T: Send + 'static>(
    shared: &Arc<Shared>,
    what: &'static str,
    f: impl FnOnce(&Shared) -> Result<T, kindling_store::StoreError> + Send + 'static,
) -> Option<T> {
    let s = Arc::clone(shared);
    let started = std::time::Instant::now();
    let result = tokio::task::spawn_blocking(move || f(&s)).await;
    shared.metrics.store_call(what, started.elapsed());
    match result {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            tracing::error!(
                error = &e as &dyn std::error::Error,
                what,
                "async queue store call failed"
            );
            None
        }
        Err(e) => {
            tracing::error!(error = %e, what, "async queue task failed");
            None
        }
    }
}

/// Leases due events whenever worker slots are free, and runs each in its own task.
pub(crate) async fn dispatch(shared: Arc<Shared>, shutdown: impl std::future::Future<Output = ()>) {
    let slots = Arc::new(Semaphore::new(shared.config.workers.max(1)));
    tokio::pin!(shutdown);
    loop {
        let free = slots.available_permits();
        let mut leased = 0;
        if free > 0 && may_lease(&shared) {
            let owner = shared.config.node_id.clone();
            let lease_ms = ms(shared.config.lease);
            let events = store_call(&shared, "lease", move |s| {
                s.store.lease_events(&owner, now_ms(), lease_ms, free)
            })
            .await
            .unwrap_or_default();
            leased = events.len();
            for event in events {
                let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                    return;
                };
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    process(&shared, event).await;
                    drop(permit);
                    shared.wake.notify_one();
                });
            }
        }
        if leased > 0 && leased == free {
            continue;
        }
        tokio::select! {
            () = &mut shutdown => break,
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(shared.config.poll_interval) => {}
        }
    }
    tracing::info!("asynchronous invocation dispatcher stopped");
}

/// Whether the lease gate (a fenced node of a cluster) lets this node lease now.
fn may_lease(shared: &Shared) -> bool {
    let gate = shared.lease_gate.read().ok().and_then(|g| g.clone());
    gate.is_none_or(|g| g())
}

/// Handles one leased event: run it, then finish, retry or fail it.
async fn process(shared: &Arc<Shared>, event: AsyncEvent) {
    let (function, qualifier) = (event.function_name.clone(), event.qualifier.clone());
    let s = Arc::clone(shared);
    let resolved = tokio::task::spawn_blocking(move || {
        let settings = s.control.async_settings(&function, qualifier.as_deref())?;
        let target = s.control.invoke_target(&function, qualifier.as_deref())?;
        Ok::<_, ControlError>((settings, target))
    })
    .await;
    let now = now_ms();
    let (settings, target) = match resolved {
        Ok(Ok(v)) => v,
        Ok(Err(ControlError::NotFound(message))) => {
            tracing::warn!(event = %event.id, %message, "dropping an event whose function is gone");
            shared
                .metrics
                .dropped(&event.function_name, "function_deleted");
            finish(shared, &event, Deliveries::default()).await;
            return;
        }
        Ok(Err(e)) => {
            tracing::warn!(
                event = %event.id,
                error = &e as &dyn std::error::Error,
                "could not resolve an event's function"
            );
            retry_later(shared, &event, now).await;
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "async resolve task failed");
            retry_later(shared, &event, now).await;
            return;
        }
    };
    let function_arn = target.qualified_arn();
    let dlq = target.record.spec.dead_letter_target.clone();
    // Recursive loop detection: the event's trace header counts how many times its chain of
    // events has invoked this function (`Lineage`).
    let lineage_id = lineage::function_id(&shared.control.arn().function_arn(&event.function_name));
    let incoming = TraceHeader::parse(&kindling_scheduler::accept_trace_header(
        event.trace_header.as_deref(),
    ))
    .ok();
    let hops = incoming
        .as_ref()
        .map_or(0, |h| lineage::count(h, &lineage_id));
    let trace_header = incoming.map(|h| lineage::with_count(&h, &lineage_id, hops + 1).to_string());
    let last: Option<AttemptResult> = event
        .last_result
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok());
    let fail = |condition, result: Option<&AttemptResult>| {
        failure(
            now,
            &event,
            &function_arn,
            condition,
            result,
            dlq.as_deref(),
            settings.on_failure.as_deref(),
        )
    };
    if hops >= lineage::MAX_INVOCATIONS && terminates_loops(shared, &event.function_name).await {
        tracing::warn!(
            function = %event.function_name,
            event = %event.id,
            "Lambda detected a recursive loop: this event has invoked the function {} times; the invocation was stopped (RecursiveLoop is Terminate)",
            lineage::MAX_INVOCATIONS
        );
        let mut out = fail(Condition::RetriesExhausted, last.as_ref());
        // A stopped loop must not go on through a function destination.
        out.follow_ups.clear();
        finish(shared, &event, out).await;
        return;
    }
    if now - event.enqueued_ms > i64::from(settings.max_age_seconds()) * 1000 {
        tracing::info!(event = %event.id, "event exceeded its maximum age");
        shared
            .metrics
            .dropped(&event.function_name, "event_age_exceeded");
        finish(
            shared,
            &event,
            fail(Condition::EventAgeExceeded, last.as_ref()),
        )
        .await;
        return;
    }
    if target.reserved_concurrency == Some(0) {
        // Lambda sends events of a function throttled to zero straight to failure handling.
        shared.metrics.dropped(&event.function_name, "throttled");
        finish(shared, &event, fail(Condition::RetriesExhausted, None)).await;
        return;
    }
    shared
        .metrics
        .age
        .get(&event.function_name)
        .observe(Duration::from_millis(
            (now - event.enqueued_ms).max(0) as u64
        ));
    let req = InvokeRequest {
        target,
        request_id: event.id.clone(),
        payload: Bytes::from(event.payload.clone()),
        client_context: None,
        trace_id: trace_header.clone().or_else(|| event.trace_header.clone()),
        tail: false,
        enqueued_ms: Some(event.enqueued_ms),
    };
    match shared.scheduler.invoke(req).await {
        Ok(r) => {
            let result = AttemptResult {
                status_code: 200,
                executed_version: r.executed_version.clone(),
                function_error: r.function_error.as_ref().map(|_| "Unhandled".to_string()),
                payload: payload_json(&r.payload),
            };
            let attempts = event.attempts + 1;
            // What the invocation produces (destination events) continues its trace, with
            // this invocation counted in the lineage.
            let attempted = AsyncEvent {
                attempts,
                trace_header: trace_header.clone().or_else(|| event.trace_header.clone()),
                ..event.clone()
            };
            if r.function_error.is_none() {
                let mut out = Deliveries::default();
                if let Some(target) = &settings.on_success {
                    let record = destination_record(
                        now_ms(),
                        &attempted,
                        &function_arn,
                        Condition::Success,
                        attempts,
                        Some(&result),
                    );
                    out.send(now_ms(), &attempted, target, record, serde_json::json!({}));
                }
                finish(shared, &event, out).await;
            } else if attempts > settings.retries() {
                shared
                    .metrics
                    .dropped(&event.function_name, "retries_exhausted");
                let out = failure(
                    now_ms(),
                    &attempted,
                    &function_arn,
                    Condition::RetriesExhausted,
                    Some(&result),
                    dlq.as_deref(),
                    settings.on_failure.as_deref(),
                );
                finish(shared, &event, out).await;
            } else {
                let delays = &shared.config.retry_delays;
                let delay = delays
                    .get((attempts as usize).saturating_sub(1))
                    .or(delays.last())
                    .copied()
                    .unwrap_or(Duration::from_secs(60));
                let last_result = serde_json::to_string(&result).ok();
                reschedule(shared, &event, attempts, now_ms() + ms(delay), last_result).await;
            }
        }
        Err(SchedulerError::ShuttingDown) => {
            reschedule(
                shared,
                &event,
                event.attempts,
                now_ms(),
                event.last_result.clone(),
            )
            .await;
        }
        Err(e) => {
            tracing::info!(event = %event.id, error = %e, "event throttled or failed to start; retrying later");
            retry_later(shared, &event, now_ms()).await;
        }
    }
}

/// Whether `function`'s recursive loops are stopped (read on the blocking pool).
async fn terminates_loops(shared: &Arc<Shared>, function: &str) -> bool {
    let policy = shared.loop_policy.read().ok().and_then(|p| p.clone());
    let Some(policy) = policy else {
        return true;
    };
    let name = function.to_string();
    tokio::task::spawn_blocking(move || policy(&name))
        .await
        .unwrap_or(true)
}

/// Backs off after a throttle or a system error: the delay grows with the event's age (doubling
/// between attempts), within the configured bounds.
async fn retry_later(shared: &Arc<Shared>, event: &AsyncEvent, now: i64) {
    let age = (now - event.enqueued_ms).max(0);
    let delay = (age / 2).clamp(ms(shared.config.backoff_min), ms(shared.config.backoff_max));
    reschedule(
        shared,
        event,
        event.attempts,
        now + delay,
        event.last_result.clone(),
    )
    .await;
}

async fn reschedule(
    shared: &Arc<Shared>,
    event: &AsyncEvent,
    attempts: u32,
    not_before_ms: i64,
    last_result: Option<String>,
) {
    let (id, owner) = (event.id.clone(), shared.config.node_id.clone());
    store_call(shared, "reschedule", move |s| {
        s.store
            .reschedule_event(&id, &owner, attempts, not_before_ms, last_result.as_deref())
    })
    .await;
}

async fn finish(shared: &Arc<Shared>, event: &AsyncEvent, out: Deliveries) {
    let (id, owner) = (event.id.clone(), shared.config.node_id.clone());
    let has_follow_ups = !out.follow_ups.is_empty();
    store_call(shared, "finish", move |s| {
        s.store
            .finish_event(&id, &owner, &out.letters, &out.follow_ups)
    })
    .await;
    if has_follow_ups {
        shared.wake.notify_one();
    }
}
