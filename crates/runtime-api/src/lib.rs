//! The Lambda **Runtime API** (2018-06-01) and **Extensions API** (2020-01-01) served to one
//! execution environment, behind a small typed handle for the scheduler.
//!
//! The crate knows nothing of processes, sandboxes, storage or the public Lambda API: it serves
//! HTTP on a loopback port (the value of `AWS_LAMBDA_RUNTIME_API`) and turns what the runtime
//! and its extensions do there into typed results.
//!
//! # The handle
//!
//! ```text
//! RuntimeApi::bind(addr, RuntimeApiConfig) -> io::Result<RuntimeApi>   // one per environment
//! RuntimeApi::from_listener(tokio::net::TcpListener, RuntimeApiConfig) -> io::Result<RuntimeApi>
//! .local_addr() -> SocketAddr                          // AWS_LAMBDA_RUNTIME_API
//! .wait_init().await -> InitResult                     // Ready | InitError
//! .init_result() -> Option<InitResult>                 // the same, without waiting
//! .invoke(Invocation).await -> Outcome                 // Response | Error | ResponseTooLarge | Stream
//! .wait_invocation_complete().await                    // runtime and extensions back in next
//! .invocation_complete() -> bool                       // the same, without waiting
//! .shutdown(ShutdownReason, Duration).await            // SHUTDOWN to extensions, bounded wait
//! .runtime_polling() -> bool                           // a live /next is parked
//! .registered_extensions() -> Vec<String>
//! .wait_extensions_registered(n).await -> bool         // n registered (or init failed)
//! .telemetry_subscriptions() -> Vec<TelemetrySubscription>
//! drop(api)                                            // stops the server, closes connections
//! ```
//!
//! # Lifecycle
//!
//! * **Init** is complete when the runtime has called `GET /runtime/invocation/next` once and
//!   every extension registered so far has called `GET /extension/event/next` once. At that
//!   moment registration closes (`403 Extension.RegistrationClosed`). Init fails when the
//!   runtime posts `/runtime/init/error` (before its first `/next`) or an extension posts
//!   `/extension/init/error` or `/extension/exit/error` while init is pending; both become
//!   [`InitResult::InitError`] (an extension's error type, `Extension.InitError` if it sent
//!   none).
//!   Extensions that register after the runtime's first `/next` may miss the window: start
//!   extensions first (as Lambda does) if they must be part of init.
//! * **Invoke**: [`RuntimeApi::invoke`] first waits for init (if init failed it resolves at
//!   once with `Outcome::Error` carrying the init error's type and body, as Lambda fails the
//!   pending invocation with it), then hands the event to the runtime's pending `/next` (or
//!   queues it for the next one) and sends INVOKE to the extensions registered for it. It
//!   resolves when the runtime posts `/response` or `/error` for that request id; extensions
//!   do not delay the response. Dropping the future abandons the invocation: if undelivered
//!   it is forgotten, if delivered any later answer for its id gets `400 InvalidRequestID`.
//!   Invocations handed in while another is outstanding are queued in order.
//! * [`RuntimeApi::wait_invocation_complete`] resolves once nothing is queued, the runtime has
//!   called `/next` after its last event, and every INVOKE extension has called
//!   `/extension/event/next` after its last event: only then may the environment be reused.
//!   It resolves at once if init failed (check [`RuntimeApi::init_result`]).
//! * [`RuntimeApi::shutdown`] sends SHUTDOWN (once) to extensions registered for it and waits
//!   until each has called next again, or the deadline passes. It does not touch the runtime.
//!
//! # Decisions where Lambda's behaviour is not documented
//!
//! * `/next` while the delivered invocation is still unanswered: `403 InvalidStateTransition`
//!   (the invocation stays outstanding and can still be answered). `/next` after an init
//!   error: `403 InvalidStateTransition`. A second concurrent `/next` replaces the parked one,
//!   which is answered `403 InvalidStateTransition` (this keeps a runtime whose old connection
//!   died from being locked out). A parked `/next` whose connection closes loses nothing: the
//!   event goes to the next `/next`. Known limit: an event handed to a `/next` whose
//!   connection dies before the server has noticed is lost; the invocation stays outstanding
//!   (the runtime's next `/next` gets 403) until the caller's timeout drops it.
//! * `/response` bodies over `max_response_bytes` (by `Content-Length` or while reading):
//!   the invocation resolves at once as [`Outcome::ResponseTooLarge`]; the rest of the body is
//!   read and discarded (up to 64 MiB) so the client sees the `413` rather than a reset. The
//!   same cap and outcome apply to `/error` bodies.
//! * A `/response` or `/error` whose body is cut off gets `400 TruncatedHTTPRequest` and the
//!   invocation stays open for another answer.
//! * `Lambda-Runtime-Function-Response-Mode: streaming` (a chunked body): the invocation
//!   resolves as soon as the head is in, as [`Outcome::Stream`]; each body frame is handed
//!   over as it arrives through a channel of [`STREAM_CHANNEL_FRAMES`] frames (a full channel
//!   stops the reads: back-pressure), at full speed for the first
//!   [`StreamLimits::burst_bytes`] and then at [`StreamLimits::bytes_per_second`] (Lambda: 6
//!   MB, then 2 MB/s). The trailers (`Lambda-Runtime-Function-Error-Type`, base64
//!   `Lambda-Runtime-Function-Error-Body`) make the end a [`StreamEnd::Error`]. Past
//!   [`StreamLimits::max_bytes`] the stream ends [`StreamEnd::TooLarge`] and the runtime gets
//!   `413`; a cut body ends [`StreamEnd::Truncated`] (`400 TruncatedHTTPRequest`). The
//!   runtime's `202` comes after the whole body. Any other mode value: `400
//!   InvalidFunctionResponseMode`.
//! * Extension registration: the body may be empty (no events); `configurationKeys` or bad
//!   JSON → `403 InvalidRequestFormat`; a duplicate name → `403
//!   Extension.InvalidExtensionState` (as RIE). The answer's `handler` is `""` when unset
//!   (clients require the field). INVOKE events always carry `tracing` (value `""` without a
//!   trace id). SHUTDOWN reasons are lower case (`spindown`, `timeout`, `failure`) as in RIE.
//! * `/extension/init/error` after init → `403 Extension.InvalidExtensionState`. After either
//!   error post, every call by that extension is refused with `403
//!   Extension.InvalidExtensionState` and it no longer counts in any wait.
//! * Telemetry/Logs subscriptions: `200 "OK"`, stored per extension (see
//!   [`RuntimeApi::telemetry_subscriptions`]) and delivered to by [`telemetry`] with the
//!   buffering asked for (outside Lambda's bounds: `400 ValidationError`). A body without
//!   `destination.protocol` (`HTTP`|`TCP`) and `destination.URI`, or an extension subscribing
//!   to both APIs, gets `400 ValidationError`.
//! * `GET /ping` → `200 pong` (as RIE). Unknown paths → `404` with
//!   `{"errorMessage":..,"errorType":"NotFound"}`; a wrong method → `405 MethodNotAllowed`.
//!   With `extensions_enabled == false` the extension, telemetry and logs routes are unknown.
//! * Response header names are written in Lambda's capitalisation
//!   (`Lambda-Runtime-Aws-Request-Id`).
//!
//! # Who may connect
//!
//! The server answers whoever reaches its listener. That is right for a listener only the
//! environment can reach (a loopback inside its own network namespace, or Process mode where
//! everything is Kindling's user anyway), not for one on the host's loopback while other
//! environments share that network: any of them could park a `/next` and take this
//! environment's events. With [`RuntimeApiConfig::allowed_peer_uid`] set, and environments
//! running as users of their own, a connection is served only if the peer's socket belongs to
//! that uid. At accept time the kernel is asked who owns the socket whose local address is
//! the peer's and whose remote address is ours: one exact `sock_diag` netlink query (a hash
//! lookup, microseconds), or where the kernel lacks `inet_diag`, a read of `/proc/net/tcp`
//! (then `/proc/net/tcp6`) up to that row, whose `uid` column is the owner (about a microsecond
//! per socket on the host). A socket of another user, or one not found (the peer already
//! closed, or it is in another network namespace: do not combine the check with a listener in
//! a namespace other than the server's), gets the connection closed without an answer; this
//! is logged at debug level. The check runs once per connection, so a keep-alive runtime pays
//! it once per environment and warm invokes not at all.
//!
//! # Performance
//!
//! hyper 1 HTTP/1.1 with keep-alive and TCP_NODELAY on every accepted socket; no
//! task spawned per request (one per connection); one short `std::sync::Mutex` section
//! per state change (never across an await), `tokio::sync::oneshot` hand-offs for long polls
//! and outcomes, `Notify` for the scheduler's waits; payloads move as `Bytes` without copies.
//! `cargo run --release -p kindling-runtime-api --example invoke_bench` measures it;
//! `--example drive -- COMMAND...` runs a real runtime (awslambdaric, lambda_runtime, the
//! Kindling bootstraps, shell extensions) against it by hand.

mod body;
pub mod connections;
mod error;
mod events;
mod routes;
mod server;
mod state;
mod stream;
pub mod telemetry;
mod types;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::state::Shared;
pub use crate::types::{
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_STREAM_BYTES, DEFAULT_STREAM_BURST_BYTES,
    DEFAULT_STREAM_BYTES_PER_SECOND, InitResult, Invocation, MAX_EXTENSIONS, Outcome,
    ResponseStream, RuntimeApiConfig, STREAM_CHANNEL_FRAMES, ShutdownReason, StreamEnd,
    StreamLimits, TelemetryApi, TelemetryNetwork, TelemetrySubscription,
};

/// One execution environment's Runtime and Extensions API server. Dropping it stops the
/// server and closes every connection (pending long polls included).
pub struct RuntimeApi {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    server: JoinHandle<()>,
}

impl std::fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeApi")
            .field("local_addr", &self.local_addr)
            .field("function_name", &self.shared.config.function_name)
            .finish_non_exhaustive()
    }
}

impl RuntimeApi {
    /// Binds `addr` (usually `127.0.0.1:0`) and starts serving on the current tokio runtime.
    pub async fn bind(addr: SocketAddr, config: RuntimeApiConfig) -> io::Result<Self> {
        Self::from_listener(TcpListener::bind(addr).await?, config)
    }

    /// Serves on an already bound listener (e.g. one bound inside a network namespace).
    /// Must be called within a tokio runtime.
    pub fn from_listener(listener: TcpListener, config: RuntimeApiConfig) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let server = tokio::spawn(server::serve(listener, Arc::clone(&shared)));
        Ok(Self {
            shared,
            local_addr,
            server,
        })
    }

    /// The address to put in `AWS_LAMBDA_RUNTIME_API` (as `host:port`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Resolves when init is over: the runtime called `/next` for the first time and every
    /// extension registered so far called `/extension/event/next`, or an init error was posted.
    pub async fn wait_init(&self) -> InitResult {
        self.shared.wait_init().await
    }

    /// How init ended, or `None` while it is still running.
    pub fn init_result(&self) -> Option<InitResult> {
        self.shared.init_result()
    }

    /// Delivers `inv` to the runtime and resolves with its answer. Waits for init first.
    ///
    /// Cancel-safe: dropping the future abandons the invocation (see the crate docs).
    pub async fn invoke(&self, inv: Invocation) -> Outcome {
        match self.shared.wait_init().await {
            InitResult::Ready => {}
            InitResult::InitError { error_type, body } => {
                return Outcome::Error { error_type, body };
            }
        }
        let (seq, outcome) = self.shared.enqueue(inv);
        let mut pending = Pending {
            shared: &self.shared,
            seq,
            armed: true,
        };
        let outcome = outcome.await;
        pending.armed = false;
        outcome.unwrap_or_else(|_| {
            // Unreachable by construction (a responder is only dropped when the invocation is
            // abandoned, which needs this future dropped); answer rather than panic.
            tracing::error!(seq, "invocation lost its responder");
            Outcome::Error {
                error_type: Some("Runtime.Unknown".to_owned()),
                body: bytes::Bytes::from_static(
                    br#"{"errorMessage":"The invocation was lost","errorType":"Runtime.Unknown"}"#,
                ),
            }
        })
    }

    /// Resolves when, after the last invocation, the runtime has called `/next` again and every
    /// extension registered for INVOKE has called `/extension/event/next` again.
    pub async fn wait_invocation_complete(&self) {
        self.shared.wait_invocation_complete().await;
    }

    /// Whether [`wait_invocation_complete`](Self::wait_invocation_complete) would return at
    /// once: the runtime (and each extension) already asked for the next event.
    pub fn invocation_complete(&self) -> bool {
        self.shared.invocation_complete()
    }

    /// Sends SHUTDOWN with `reason` and `deadlineMs = now + deadline` to the extensions
    /// registered for it (only the first call sends), then waits until each has called
    /// `/extension/event/next` again or `deadline` has passed.
    pub async fn shutdown(&self, reason: ShutdownReason, deadline: Duration) {
        let deadline_ms = SystemTime::now()
            .checked_add(deadline)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.shared.start_shutdown(reason, deadline_ms);
        if tokio::time::timeout(deadline, self.shared.wait_shutdown_acknowledged())
            .await
            .is_err()
        {
            tracing::debug!(?reason, "extensions did not acknowledge SHUTDOWN in time");
        }
    }

    /// True while the runtime has a live `/next` long poll parked here (it is idle and an
    /// invocation would be delivered at once). A poll whose connection has closed stops
    /// counting once the server has noticed the close. For diagnostics and tests.
    pub fn runtime_polling(&self) -> bool {
        self.shared.runtime_polling()
    }

    /// Resolves once `count` extensions have registered or init has failed (`true`), or init
    /// completed with fewer registered (`false`). For a caller that starts extensions first and
    /// holds the runtime back until they registered, as Lambda does.
    pub async fn wait_extensions_registered(&self, count: usize) -> bool {
        self.shared.wait_extensions_registered(count).await
    }

    /// Names of the registered extensions, in registration order.
    pub fn registered_extensions(&self) -> Vec<String> {
        self.shared.registered_extensions()
    }

    /// The Telemetry and Logs API subscriptions made so far.
    pub fn telemetry_subscriptions(&self) -> Vec<TelemetrySubscription> {
        self.shared.telemetry_subscriptions()
    }

    /// The environment's telemetry hub: what is emitted there reaches the subscribers
    /// ([`telemetry`]).
    pub fn telemetry(&self) -> Arc<telemetry::Telemetry> {
        Arc::clone(&self.shared.telemetry)
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Abandons the invocation if `invoke`'s future is dropped before the outcome arrived.
struct Pending<'a> {
    shared: &'a Shared,
    seq: u64,
    armed: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.abandon(self.seq);
        }
    }
}
