//! The environment's state machine: the runtime's and each extension's position in the
//! lifecycle, what is queued, who is long-polling, and which invocation is outstanding.
//!
//! All of it sits behind one `std::sync::Mutex` whose critical sections are short and never
//! span an `.await`. Long polls park a `oneshot::Sender` here and await the receiver outside
//! the lock; the scheduler's waits (`wait_init`, `wait_invocation_complete`, `shutdown`) are
//! woken by one `Notify` after every change.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::{Notify, oneshot};

use crate::error::{ApiError, ExtensionErrorKind};
use crate::events;
use crate::telemetry::{Buffering, Telemetry};
use crate::types::{
    InitResult, Invocation, MAX_EXTENSIONS, Outcome, RuntimeApiConfig, ShutdownReason,
    TelemetrySubscription,
};

/// What a long poll gets: the item at once, or a receiver to await it on.
pub(crate) enum Poll<T> {
    Ready(T),
    Wait(oneshot::Receiver<T>),
}

/// Which of the two extension error endpoints was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExtensionErrorKindPosted {
    Init,
    Exit,
}

/// Everything one environment's server shares between connections and the handle.
pub(crate) struct Shared {
    pub(crate) config: RuntimeApiConfig,
    state: Mutex<State>,
    changed: Notify,
    pub(crate) telemetry: Arc<Telemetry>,
}

#[derive(Default)]
struct State {
    init: InitPhase,
    runtime: RuntimeSide,
    extensions: Vec<Extension>,
    next_seq: u64,
    shutdown_sent: bool,
}

#[derive(Default)]
enum InitPhase {
    #[default]
    Pending,
    Done,
    Failed(InitResult),
}

#[derive(Default)]
struct RuntimeSide {
    /// The runtime has called `/next` at least once.
    called_next: bool,
    /// An event was delivered and the runtime has not called `/next` since.
    busy: bool,
    /// The runtime's pending `/next`, if it is long-polling.
    parked: Option<oneshot::Sender<Invocation>>,
    /// Invocations handed in but not yet delivered.
    queue: VecDeque<Queued>,
    /// The last delivered invocation, until the runtime calls `/next` again.
    current: Option<Current>,
}

struct Queued {
    seq: u64,
    inv: Invocation,
    responder: oneshot::Sender<Outcome>,
}

struct Current {
    seq: u64,
    request_id: String,
    /// `Some` while the invocation is unanswered; taken by the answer, or dropped when the
    /// caller abandons the invocation.
    responder: Option<oneshot::Sender<Outcome>>,
    /// A `/response` or `/error` for this id is being read.
    claimed: bool,
}

struct Extension {
    id: String,
    name: String,
    invoke: bool,
    shutdown: bool,
    /// Has called `/extension/event/next` at least once (its init is done).
    called_next: bool,
    /// An event was delivered and the extension has not called next since.
    awaiting_next: bool,
    queue: VecDeque<Bytes>,
    parked: Option<oneshot::Sender<Bytes>>,
    /// Posted `/init/error` or `/exit/error`; every later call is refused.
    failed: bool,
    got_shutdown: bool,
    subscription: Option<TelemetrySubscription>,
}

impl Extension {
    /// Hands `event` to the parked poll, or queues it.
    fn push(&mut self, event: Bytes) {
        let event = match self.parked.take() {
            Some(tx) => match tx.send(event) {
                Ok(()) => {
                    self.awaiting_next = true;
                    return;
                }
                Err(event) => event,
            },
            None => event,
        };
        self.queue.push_back(event);
    }

    /// Has consumed every event and called next again since the last one.
    fn idle(&self) -> bool {
        self.failed || (self.queue.is_empty() && !self.awaiting_next)
    }
}

impl State {
    fn init_result(&self) -> Option<InitResult> {
        match &self.init {
            InitPhase::Pending => None,
            InitPhase::Done => Some(InitResult::Ready),
            InitPhase::Failed(result) => Some(result.clone()),
        }
    }

    /// `Some` once init has ended and the last invocation is done: the runtime (and every
    /// extension registered for INVOKE) asked for the next event.
    fn invocation_complete(&self) -> Option<()> {
        match self.init {
            InitPhase::Failed(_) => Some(()),
            InitPhase::Pending => None,
            InitPhase::Done => {
                let rt = &self.runtime;
                let runtime_idle = rt.queue.is_empty() && !rt.busy;
                let extensions_idle = self
                    .extensions
                    .iter()
                    .filter(|e| e.invoke)
                    .all(Extension::idle);
                (runtime_idle && extensions_idle).then_some(())
            }
        }
    }

    /// Init ends when the runtime and every registered extension have called their next.
    fn recompute_init(&mut self) {
        if matches!(self.init, InitPhase::Pending)
            && self.runtime.called_next
            && self.extensions.iter().all(|e| e.called_next)
        {
            self.init = InitPhase::Done;
            tracing::debug!(extensions = self.extensions.len(), "init complete");
        }
    }

    fn extension_mut(&mut self, id: &str) -> Result<&mut Extension, ApiError> {
        self.extensions
            .iter_mut()
            .find(|e| e.id == id)
            .ok_or_else(|| {
                ApiError::extension(
                    ExtensionErrorKind::InvalidExtensionIdentifier,
                    format!("Unknown extension {id}"),
                )
            })
    }

    fn usable_extension(&mut self, id: &str) -> Result<&mut Extension, ApiError> {
        let ext = self.extension_mut(id)?;
        if ext.failed {
            return Err(ApiError::extension(
                ExtensionErrorKind::InvalidExtensionState,
                "The extension reported an error and must exit",
            ));
        }
        Ok(ext)
    }
}

impl Shared {
    pub(crate) fn new(config: RuntimeApiConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            telemetry: Arc::new(Telemetry::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn changed(&self) {
        self.changed.notify_waiters();
    }

    /// Resolves with the first `Some` that `check` returns, re-checking after every change.
    async fn wait_until<T>(&self, mut check: impl FnMut(&State) -> Option<T>) -> T {
        if let Some(value) = check(&self.lock()) {
            return value;
        }
        loop {
            let mut notified = pin!(self.changed.notified());
            notified.as_mut().enable();
            let value = check(&self.lock());
            if let Some(value) = value {
                return value;
            }
            notified.await;
        }
    }

    // ----- the scheduler's side -------------------------------------------------------------

    pub(crate) fn init_result(&self) -> Option<InitResult> {
        self.lock().init_result()
    }

    pub(crate) async fn wait_init(&self) -> InitResult {
        self.wait_until(State::init_result).await
    }

    /// Queues `inv` (delivering it at once if the runtime is long-polling) and sends INVOKE to
    /// the extensions registered for it. Returns the invocation's sequence number and the
    /// receiver its outcome arrives on.
    pub(crate) fn enqueue(&self, inv: Invocation) -> (u64, oneshot::Receiver<Outcome>) {
        let (responder, outcome) = oneshot::channel();
        let mut guard = self.lock();
        let state = &mut *guard;
        let seq = state.next_seq;
        state.next_seq += 1;

        let mut invoke_event = None;
        for ext in state
            .extensions
            .iter_mut()
            .filter(|e| e.invoke && !e.failed)
        {
            let event = invoke_event
                .get_or_insert_with(|| events::invoke(&inv))
                .clone();
            ext.push(event);
        }

        let rt = &mut state.runtime;
        let inv = match rt.parked.take() {
            Some(tx) => {
                let request_id = inv.request_id.clone();
                match tx.send(inv) {
                    Ok(()) => {
                        rt.current = Some(Current {
                            seq,
                            request_id,
                            responder: Some(responder),
                            claimed: false,
                        });
                        rt.busy = true;
                        return (seq, outcome);
                    }
                    // That /next went away (connection closed); keep the event for the next.
                    Err(inv) => inv,
                }
            }
            None => inv,
        };
        rt.queue.push_back(Queued {
            seq,
            inv,
            responder,
        });
        (seq, outcome)
    }

    /// The caller stopped waiting for invocation `seq`: forget it if undelivered, otherwise
    /// refuse any later answer for it.
    pub(crate) fn abandon(&self, seq: u64) {
        {
            let mut state = self.lock();
            let rt = &mut state.runtime;
            if let Some(pos) = rt.queue.iter().position(|q| q.seq == seq) {
                rt.queue.remove(pos);
            } else if let Some(current) = rt.current.as_mut()
                && current.seq == seq
            {
                current.responder = None;
                current.claimed = false;
            }
        }
        tracing::debug!(seq, "invocation abandoned by the caller");
        self.changed();
    }

    pub(crate) async fn wait_invocation_complete(&self) {
        self.wait_until(State::invocation_complete).await
    }

    /// Whether [`wait_invocation_complete`](Self::wait_invocation_complete) would resolve at
    /// once (the warm path's check, without a wait).
    pub(crate) fn invocation_complete(&self) -> bool {
        self.lock().invocation_complete().is_some()
    }

    /// Sends SHUTDOWN (once) to the extensions registered for it and closes registration.
    pub(crate) fn start_shutdown(&self, reason: ShutdownReason, deadline_ms: u64) {
        {
            let mut state = self.lock();
            if state.shutdown_sent {
                return;
            }
            state.shutdown_sent = true;
            let event = events::shutdown(reason, deadline_ms);
            for ext in state
                .extensions
                .iter_mut()
                .filter(|e| e.shutdown && !e.failed)
            {
                ext.push(event.clone());
                ext.got_shutdown = true;
            }
        }
        self.changed();
    }

    pub(crate) async fn wait_shutdown_acknowledged(&self) {
        self.wait_until(|s| {
            s.extensions
                .iter()
                .filter(|e| e.got_shutdown)
                .all(Extension::idle)
                .then_some(())
        })
        .await
    }

    pub(crate) fn runtime_polling(&self) -> bool {
        self.lock()
            .runtime
            .parked
            .as_ref()
            .is_some_and(|tx| !tx.is_closed())
    }

    /// Resolves once `count` extensions have registered, or init has failed (true), or init
    /// completed with fewer (false: registration is closed).
    pub(crate) async fn wait_extensions_registered(&self, count: usize) -> bool {
        self.wait_until(|state| {
            if state.extensions.len() >= count || matches!(state.init, InitPhase::Failed(_)) {
                Some(true)
            } else if matches!(state.init, InitPhase::Done) {
                Some(false)
            } else {
                None
            }
        })
        .await
    }

    pub(crate) fn registered_extensions(&self) -> Vec<String> {
        self.lock()
            .extensions
            .iter()
            .map(|e| e.name.clone())
            .collect()
    }

    pub(crate) fn telemetry_subscriptions(&self) -> Vec<TelemetrySubscription> {
        self.lock()
            .extensions
            .iter()
            .filter_map(|e| e.subscription.clone())
            .collect()
    }

    // ----- the runtime's side ---------------------------------------------------------------

    /// `GET /runtime/invocation/next`.
    pub(crate) fn runtime_next(&self) -> Result<Poll<Invocation>, ApiError> {
        let result = {
            let mut guard = self.lock();
            let state = &mut *guard;
            if matches!(state.init, InitPhase::Failed(_)) {
                return Err(ApiError::InvalidStateTransition {
                    from: "InitError",
                    to: "Ready",
                });
            }
            let rt = &mut state.runtime;
            if rt.current.as_ref().is_some_and(|c| c.responder.is_some()) {
                return Err(ApiError::InvalidStateTransition {
                    from: "Running",
                    to: "Ready",
                });
            }
            rt.current = None;
            rt.busy = false;
            rt.called_next = true;
            let poll = match rt.queue.pop_front() {
                Some(q) => {
                    rt.current = Some(Current {
                        seq: q.seq,
                        request_id: q.inv.request_id.clone(),
                        responder: Some(q.responder),
                        claimed: false,
                    });
                    rt.busy = true;
                    Poll::Ready(q.inv)
                }
                None => {
                    let (tx, rx) = oneshot::channel();
                    // A previous /next still parked gets `RuntimeNextSuperseded`.
                    rt.parked = Some(tx);
                    Poll::Wait(rx)
                }
            };
            state.recompute_init();
            poll
        };
        self.changed();
        Ok(result)
    }

    /// Reserves the outstanding invocation `request_id` for the answer being read.
    pub(crate) fn claim(&self, request_id: &str) -> Result<u64, ApiError> {
        let mut state = self.lock();
        match state.runtime.current.as_mut() {
            Some(c) if c.request_id == request_id && c.responder.is_some() && !c.claimed => {
                c.claimed = true;
                Ok(c.seq)
            }
            _ => Err(ApiError::InvalidRequestId),
        }
    }

    /// Releases a claim whose body could not be read; the runtime may post again.
    pub(crate) fn unclaim(&self, seq: u64) {
        let mut state = self.lock();
        if let Some(c) = state.runtime.current.as_mut()
            && c.seq == seq
        {
            c.claimed = false;
        }
    }

    /// Delivers the outcome of claimed invocation `seq`. False if the caller abandoned it.
    pub(crate) fn complete(&self, seq: u64, outcome: Outcome) -> bool {
        let responder = {
            let mut state = self.lock();
            match state.runtime.current.as_mut() {
                Some(c) if c.seq == seq => {
                    c.claimed = false;
                    c.responder.take()
                }
                _ => None,
            }
        };
        responder.is_some_and(|tx| tx.send(outcome).is_ok())
    }

    /// `POST /runtime/init/error`.
    pub(crate) fn runtime_init_error(
        &self,
        error_type: Option<String>,
        body: Bytes,
    ) -> Result<(), ApiError> {
        {
            let mut state = self.lock();
            match state.init {
                InitPhase::Pending if !state.runtime.called_next => {}
                InitPhase::Failed(_) => {
                    return Err(ApiError::InvalidStateTransition {
                        from: "InitError",
                        to: "InitError",
                    });
                }
                _ => {
                    return Err(ApiError::InvalidStateTransition {
                        from: "Ready",
                        to: "InitError",
                    });
                }
            }
            tracing::debug!(?error_type, "runtime reported an init error");
            state.init = InitPhase::Failed(InitResult::InitError { error_type, body });
        }
        self.changed();
        Ok(())
    }

    // ----- the extensions' side -------------------------------------------------------------

    /// `POST /extension/register` (events already validated). Returns the new identifier.
    pub(crate) fn register_extension(
        &self,
        name: &str,
        invoke: bool,
        shutdown: bool,
    ) -> Result<String, ApiError> {
        let id = uuid::Uuid::new_v4().to_string();
        {
            let mut state = self.lock();
            if !matches!(state.init, InitPhase::Pending) || state.shutdown_sent {
                return Err(ApiError::extension(
                    ExtensionErrorKind::RegistrationClosed,
                    "Extension registration closed already",
                ));
            }
            if state.extensions.len() >= MAX_EXTENSIONS {
                return Err(ApiError::extension(
                    ExtensionErrorKind::TooManyExtensions,
                    format!("Extension limit ({MAX_EXTENSIONS}) reached"),
                ));
            }
            if state.extensions.iter().any(|e| e.name == name) {
                return Err(ApiError::extension(
                    ExtensionErrorKind::InvalidExtensionState,
                    "Extension with this name already registered",
                ));
            }
            state.extensions.push(Extension {
                id: id.clone(),
                name: name.to_owned(),
                invoke,
                shutdown,
                called_next: false,
                awaiting_next: false,
                queue: VecDeque::new(),
                parked: None,
                failed: false,
                got_shutdown: false,
                subscription: None,
            });
        }
        tracing::debug!(name, id, invoke, shutdown, "extension registered");
        self.changed();
        Ok(id)
    }

    /// `GET /extension/event/next`.
    pub(crate) fn extension_next(&self, id: &str) -> Result<Poll<Bytes>, ApiError> {
        let poll = {
            let mut state = self.lock();
            let ext = state.usable_extension(id)?;
            ext.called_next = true;
            ext.awaiting_next = false;
            let poll = match ext.queue.pop_front() {
                Some(event) => {
                    ext.awaiting_next = true;
                    Poll::Ready(event)
                }
                None => {
                    let (tx, rx) = oneshot::channel();
                    ext.parked = Some(tx);
                    Poll::Wait(rx)
                }
            };
            state.recompute_init();
            poll
        };
        self.changed();
        Ok(poll)
    }

    /// `POST /extension/init/error` and `POST /extension/exit/error`.
    pub(crate) fn extension_error(
        &self,
        id: &str,
        kind: ExtensionErrorKindPosted,
        error_type: Option<String>,
        body: Bytes,
    ) -> Result<(), ApiError> {
        {
            let mut guard = self.lock();
            let state = &mut *guard;
            let init_pending = matches!(state.init, InitPhase::Pending);
            let ext = state.usable_extension(id)?;
            if kind == ExtensionErrorKindPosted::Init && !init_pending {
                return Err(ApiError::extension(
                    ExtensionErrorKind::InvalidExtensionState,
                    "Init is over; use /extension/exit/error",
                ));
            }
            ext.failed = true;
            ext.parked = None;
            ext.queue.clear();
            tracing::warn!(
                extension = ext.name,
                ?kind,
                ?error_type,
                "extension reported an error"
            );
            if init_pending {
                let error_type = error_type.or_else(|| Some("Extension.InitError".to_owned()));
                state.init = InitPhase::Failed(InitResult::InitError { error_type, body });
            }
        }
        self.changed();
        Ok(())
    }

    /// `PUT /2022-07-01/telemetry` and `PUT /2020-08-15/logs`.
    pub(crate) fn subscribe(
        &self,
        id: &str,
        mut subscription: TelemetrySubscription,
    ) -> Result<(), ApiError> {
        let mut state = self.lock();
        let ext = state.usable_extension(id)?;
        if let Some(existing) = &ext.subscription
            && existing.api != subscription.api
        {
            return Err(ApiError::InvalidSubscription(
                "An extension cannot subscribe to both the Telemetry API and the Logs API"
                    .to_owned(),
            ));
        }
        let buffering =
            Buffering::of_body(&subscription.raw).map_err(ApiError::InvalidSubscription)?;
        subscription.extension = ext.name.clone();
        tracing::debug!(
            extension = ext.name,
            uri = subscription.uri,
            "telemetry subscription"
        );
        ext.subscription = Some(subscription.clone());
        drop(state);
        self.telemetry.subscribe(
            &subscription,
            buffering,
            self.config.telemetry_network.clone(),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared::new(RuntimeApiConfig::new("f", "$LATEST", "123456789012"))
    }

    fn inv(id: &str) -> Invocation {
        Invocation {
            request_id: id.into(),
            ..Invocation::default()
        }
    }

    fn ready<T>(poll: Poll<T>) -> T {
        match poll {
            Poll::Ready(v) => v,
            Poll::Wait(_) => panic!("expected an immediate item"),
        }
    }

    fn waiting<T>(poll: Poll<T>) -> oneshot::Receiver<T> {
        match poll {
            Poll::Wait(rx) => rx,
            Poll::Ready(_) => panic!("expected to wait"),
        }
    }

    #[test]
    fn init_needs_runtime_and_every_extension() {
        let s = shared();
        let ext = s.register_extension("e", true, true).unwrap();
        let _rx = waiting(s.runtime_next().unwrap());
        assert_eq!(s.init_result(), None);
        let _erx = waiting(s.extension_next(&ext).unwrap());
        assert_eq!(s.init_result(), Some(InitResult::Ready));
        let err = s.register_extension("late", true, false).unwrap_err();
        assert_eq!(err.parts().1, "Extension.RegistrationClosed");
    }

    #[test]
    fn queued_invocation_is_delivered_on_next() {
        let s = shared();
        let _rx = waiting(s.runtime_next().unwrap());
        drop(_rx); // the parked /next went away; the event must be queued, not lost
        let (seq, _outcome) = s.enqueue(inv("a"));
        let got = ready(s.runtime_next().unwrap());
        assert_eq!(got.request_id, "a");
        assert_eq!(s.claim("a").unwrap(), seq);
    }

    #[test]
    fn next_while_outstanding_is_refused() {
        let s = shared();
        let rx = waiting(s.runtime_next().unwrap());
        let (_seq, _outcome) = s.enqueue(inv("a"));
        assert_eq!(rx.blocking_recv().unwrap().request_id, "a");
        let err = s.runtime_next().err().unwrap();
        assert_eq!(
            err,
            ApiError::InvalidStateTransition {
                from: "Running",
                to: "Ready"
            }
        );
    }

    #[test]
    fn answer_once_and_abandon() {
        let s = shared();
        let _rx = waiting(s.runtime_next().unwrap());
        let (seq, mut outcome) = s.enqueue(inv("a"));
        assert_eq!(s.claim("b"), Err(ApiError::InvalidRequestId));
        let claimed = s.claim("a").unwrap();
        assert_eq!(
            s.claim("a"),
            Err(ApiError::InvalidRequestId),
            "claimed already"
        );
        s.unclaim(claimed);
        let claimed = s.claim("a").unwrap();
        assert!(s.complete(claimed, Outcome::ResponseTooLarge));
        assert_eq!(outcome.try_recv().unwrap(), Outcome::ResponseTooLarge);
        assert_eq!(
            s.claim("a"),
            Err(ApiError::InvalidRequestId),
            "answered already"
        );

        let _rx = waiting(s.runtime_next().unwrap());
        let (seq2, _outcome) = s.enqueue(inv("b"));
        assert_ne!(seq, seq2);
        s.abandon(seq2);
        assert_eq!(s.claim("b"), Err(ApiError::InvalidRequestId), "abandoned");
        // Abandoned counts as finished: the runtime may poll again.
        let _rx = waiting(s.runtime_next().unwrap());
    }

    #[test]
    fn abandon_before_delivery_removes_from_queue() {
        let s = shared();
        let _rx = waiting(s.runtime_next().unwrap());
        drop(_rx);
        let (seq, _outcome) = s.enqueue(inv("a"));
        s.abandon(seq);
        let _rx = waiting(s.runtime_next().unwrap());
    }

    #[test]
    fn extension_errors() {
        let s = shared();
        let a = s.register_extension("a", true, false).unwrap();
        let b = s.register_extension("b", false, true).unwrap();
        assert_eq!(
            s.register_extension("a", true, false)
                .unwrap_err()
                .parts()
                .1,
            "Extension.InvalidExtensionState"
        );
        assert_eq!(
            s.extension_next("nope").err().unwrap().parts().1,
            "Extension.InvalidExtensionIdentifier"
        );
        s.extension_error(
            &a,
            ExtensionErrorKindPosted::Init,
            Some("Extension.X".into()),
            "x".into(),
        )
        .unwrap();
        assert_eq!(
            s.init_result(),
            Some(InitResult::InitError {
                error_type: Some("Extension.X".into()),
                body: Bytes::from_static(b"x"),
            })
        );
        assert_eq!(
            s.extension_next(&a).err().unwrap().parts().1,
            "Extension.InvalidExtensionState"
        );
        assert!(s.extension_next(&b).is_ok());
    }

    #[test]
    fn too_many_extensions() {
        let s = shared();
        for i in 0..MAX_EXTENSIONS {
            s.register_extension(&format!("e{i}"), false, false)
                .unwrap();
        }
        assert_eq!(
            s.register_extension("one-more", false, false)
                .unwrap_err()
                .parts()
                .1,
            "Extension.TooManyExtensions"
        );
    }

    #[test]
    fn runtime_init_error_only_before_first_next() {
        let s = shared();
        s.runtime_init_error(Some("Runtime.X".into()), Bytes::new())
            .unwrap();
        assert!(matches!(
            s.init_result(),
            Some(InitResult::InitError { .. })
        ));
        assert!(s.runtime_next().is_err());

        let s = shared();
        let _rx = waiting(s.runtime_next().unwrap());
        assert!(s.runtime_init_error(None, Bytes::new()).is_err());
    }
}
