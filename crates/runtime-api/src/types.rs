//! The data the scheduler hands in and gets back. Plain values, no I/O.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

/// Lambda's synchronous response limit plus the 100 bytes of slack Lambda allows: a runtime
/// posting more than this gets `413 RequestEntityTooLarge`.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024 + 100;

/// Lambda's limit on a streamed response: 200 MB.
pub const DEFAULT_MAX_STREAM_BYTES: u64 = 200 * 1024 * 1024;

/// The part of a streamed response Lambda sends at full speed: the first 6 MB.
pub const DEFAULT_STREAM_BURST_BYTES: u64 = 6 * 1024 * 1024;

/// Lambda's bandwidth for a streamed response past its first 6 MB: 2 MB/s.
pub const DEFAULT_STREAM_BYTES_PER_SECOND: u64 = 2 * 1024 * 1024;

/// At most this many body frames of a streamed response wait between the runtime's connection
/// and the caller; beyond that the runtime's connection is not read (back-pressure).
pub const STREAM_CHANNEL_FRAMES: usize = 8;

/// How much a runtime may stream and how fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Largest streamed response; past it the stream ends with
    /// [`StreamEnd::TooLarge`] and the runtime gets `413 RequestEntityTooLarge`.
    pub max_bytes: u64,
    /// Bytes forwarded at full speed before the bandwidth cap applies.
    pub burst_bytes: u64,
    /// Bandwidth past the burst; `None`: uncapped.
    pub bytes_per_second: Option<u64>,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_STREAM_BYTES,
            burst_bytes: DEFAULT_STREAM_BURST_BYTES,
            bytes_per_second: Some(DEFAULT_STREAM_BYTES_PER_SECOND),
        }
    }
}

impl StreamLimits {
    /// How long after the stream began `total` bytes may have been forwarded.
    pub(crate) fn earliest(&self, total: u64) -> Option<Duration> {
        let rate = self.bytes_per_second.filter(|r| *r > 0)?;
        let over = total.checked_sub(self.burst_bytes).filter(|o| *o > 0)?;
        Some(Duration::from_secs_f64(over as f64 / rate as f64))
    }
}

/// How Kindling's process connects to an environment's Telemetry and Logs API subscribers
/// (on its loopback, `sandbox.localdomain`).
#[derive(Clone, Default)]
pub enum TelemetryNetwork {
    /// From Kindling's own network and identity (the environment shares both: process mode).
    #[default]
    Host,
    /// Through this dial (port only; the host is always the environment's `127.0.0.1`): inside
    /// the environment's own network namespace, whose loopback Kindling's network cannot reach
    /// (and must not stand in for), or on the shared host loopback with a socket owned by the
    /// environment's user, so that what Kindling connects to on the function's behalf (its own
    /// API included) sees the function, not Kindling.
    Dialed(kindling_otel::post::Dial),
}

impl std::fmt::Debug for TelemetryNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Host => "Host",
            Self::Dialed(_) => "Dialed",
        })
    }
}

/// At most this many extensions may register with one environment.
pub const MAX_EXTENSIONS: usize = 10;

/// What one environment's API needs to know about its function.
#[derive(Debug, Clone)]
pub struct RuntimeApiConfig {
    /// Returned to extensions on registration (`functionName`).
    pub function_name: String,
    /// `$LATEST` or the version number; returned to extensions (`functionVersion`).
    pub function_version: String,
    /// The handler string; returned to extensions (`handler`, `""` when `None`).
    pub handler: Option<String>,
    /// Returned to extensions that send `Lambda-Extension-Accept-Feature: accountId`.
    pub account_id: String,
    /// Largest `/response` or `/error` body accepted; see [`DEFAULT_MAX_RESPONSE_BYTES`].
    pub max_response_bytes: usize,
    /// When false, the Extensions, Telemetry and Logs routes answer 404 (as RIE does).
    pub extensions_enabled: bool,
    /// Serve only connections whose peer socket is owned by this uid (Linux; see the crate
    /// docs, "Who may connect"): for a listener other local users can reach, such as one on
    /// the host's loopback while environments run as users of their own. Other connections
    /// are closed unanswered. `None` (the default): anyone who can connect is served.
    pub allowed_peer_uid: Option<u32>,
    /// How Kindling reaches a Telemetry or Logs API destination (the environment's
    /// `sandbox.localdomain`), which it connects to from its own process.
    pub telemetry_network: TelemetryNetwork,
    /// Size and bandwidth of streamed responses (`Lambda-Runtime-Function-Response-Mode:
    /// streaming`).
    pub stream_limits: StreamLimits,
    /// The connections beyond its guaranteed few that this environment draws from, shared by
    /// every environment of the process ([`crate::connections`]).
    pub connections: std::sync::Arc<crate::connections::ConnectionBudget>,
}

impl RuntimeApiConfig {
    /// A config with the default response limit, extensions enabled and no peer check.
    pub fn new(
        function_name: impl Into<String>,
        function_version: impl Into<String>,
        account_id: impl Into<String>,
    ) -> Self {
        Self {
            function_name: function_name.into(),
            function_version: function_version.into(),
            handler: None,
            account_id: account_id.into(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            extensions_enabled: true,
            allowed_peer_uid: None,
            telemetry_network: TelemetryNetwork::Host,
            stream_limits: StreamLimits::default(),
            connections: std::sync::Arc::default(),
        }
    }
}

/// One event to deliver on the runtime's `/next` long poll.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// `Lambda-Runtime-Aws-Request-Id`; also the id the runtime must answer with.
    pub request_id: String,
    /// `Lambda-Runtime-Deadline-Ms`: absolute deadline, Unix epoch milliseconds.
    pub deadline_ms: u64,
    /// `Lambda-Runtime-Invoked-Function-Arn`: the ARN exactly as invoked.
    pub invoked_function_arn: String,
    /// `Lambda-Runtime-Trace-Id` (X-Ray header value).
    pub trace_id: Option<String>,
    /// `Lambda-Runtime-Client-Context`: the decoded client-context JSON.
    pub client_context: Option<String>,
    /// `Lambda-Runtime-Cognito-Identity`: JSON.
    pub cognito_identity: Option<String>,
    /// `Lambda-Runtime-Aws-Tenant-Id`.
    pub tenant_id: Option<String>,
    /// The event bytes, sent as the `/next` body without copying.
    pub payload: Bytes,
    /// `Content-Type` of the `/next` response; `application/json` when `None`.
    pub content_type: Option<String>,
}

/// How an invocation ended, as far as the runtime is concerned.
pub enum Outcome {
    /// The runtime posted `/response`.
    Response {
        body: Bytes,
        /// The `Content-Type` the runtime sent with the response, if any.
        content_type: Option<String>,
    },
    /// The runtime posted `/error`.
    Error {
        /// `Lambda-Runtime-Function-Error-Type`, verbatim.
        error_type: Option<String>,
        /// The error document, verbatim.
        body: Bytes,
    },
    /// The runtime posted a body larger than `max_response_bytes`. It was answered
    /// `413 RequestEntityTooLarge`; the caller should get `Function.ResponseSizeTooLarge`.
    ResponseTooLarge,
    /// The runtime began a streamed `/response` (`Lambda-Runtime-Function-Response-Mode:
    /// streaming`): its body arrives as it is written, then how it ended.
    Stream(ResponseStream),
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Response { body, content_type } => f
                .debug_struct("Response")
                .field("body", body)
                .field("content_type", content_type)
                .finish(),
            Self::Error { error_type, body } => f
                .debug_struct("Error")
                .field("error_type", error_type)
                .field("body", body)
                .finish(),
            Self::ResponseTooLarge => f.write_str("ResponseTooLarge"),
            Self::Stream(s) => f
                .debug_struct("Stream")
                .field("content_type", &s.content_type)
                .finish_non_exhaustive(),
        }
    }
}

/// Outcomes compare by value; two streams are never equal.
impl PartialEq for Outcome {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Self::Response {
                    body: a,
                    content_type: ca,
                },
                Self::Response {
                    body: b,
                    content_type: cb,
                },
            ) => a == b && ca == cb,
            (
                Self::Error {
                    error_type: ta,
                    body: a,
                },
                Self::Error {
                    error_type: tb,
                    body: b,
                },
            ) => ta == tb && a == b,
            (Self::ResponseTooLarge, Self::ResponseTooLarge) => true,
            _ => false,
        }
    }
}

/// A streamed response: the body's bytes as the runtime writes them, then how it ended.
///
/// `chunks` holds at most [`STREAM_CHANNEL_FRAMES`] frames: while it is full, the runtime's
/// connection is not read, so a slow reader slows the function's writes and nothing is
/// buffered whole. Dropping `chunks` does not stop the stream: the rest of the body is read
/// and discarded (the invocation runs to its end whatever its caller does). `chunks` closes
/// when the body ends; `end` resolves then (it is dropped if the connection's task is).
pub struct ResponseStream {
    /// The `Content-Type` the runtime sent, if any.
    pub content_type: Option<String>,
    pub chunks: mpsc::Receiver<Bytes>,
    pub end: oneshot::Receiver<StreamEnd>,
}

/// How a streamed response ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The body ended without error trailers; `bytes` were streamed.
    Complete { bytes: u64 },
    /// The body ended with the trailers `Lambda-Runtime-Function-Error-Type` and (base64)
    /// `Lambda-Runtime-Function-Error-Body`.
    Error {
        error_type: Option<String>,
        body: Bytes,
    },
    /// The body went past [`StreamLimits::max_bytes`]; the runtime got `413`.
    TooLarge { max: u64 },
    /// The body was cut off (the connection failed or closed mid-body).
    Truncated,
}

/// How the init phase ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitResult {
    /// The runtime and every registered extension called their `next` endpoint.
    Ready,
    /// The runtime posted `/runtime/init/error`, or an extension posted
    /// `/extension/init/error` (or `/extension/exit/error`) while init was pending.
    InitError {
        /// `Lambda-Runtime-Function-Error-Type` from the runtime, or
        /// `Lambda-Extension-Function-Error-Type` from an extension (`Extension.InitError`
        /// when the extension sent none), verbatim.
        error_type: Option<String>,
        /// The posted error document, verbatim.
        body: Bytes,
    },
}

/// Why the environment is being shut down; the `shutdownReason` of the SHUTDOWN event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownReason {
    Spindown,
    Timeout,
    Failure,
}

impl ShutdownReason {
    /// The wire value. Lower case, as RIE emits it (AWS's docs print upper case; clients
    /// treat the value as an opaque string).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spindown => "spindown",
            Self::Timeout => "timeout",
            Self::Failure => "failure",
        }
    }
}

/// Which subscription API an extension used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TelemetryApi {
    /// `PUT /2022-07-01/telemetry`.
    Telemetry,
    /// `PUT /2020-08-15/logs` (legacy).
    Logs,
}

/// A Telemetry or Logs API subscription (delivered to by `telemetry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetrySubscription {
    /// The name of the extension that subscribed.
    pub extension: String,
    pub api: TelemetryApi,
    /// `destination.protocol`: `HTTP` or `TCP`.
    pub protocol: String,
    /// `destination.URI`.
    pub uri: String,
    /// `types`, e.g. `["platform","function"]`.
    pub types: Vec<String>,
    /// The whole request body as sent (its `buffering` is read by the delivery).
    pub raw: Bytes,
}
