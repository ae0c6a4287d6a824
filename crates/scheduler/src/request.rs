//! One invocation as the scheduler receives it, and its result.

use bytes::Bytes;
use kindling_model::invoke::{FunctionError, InvokeTarget};

/// One synchronous invocation.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    pub target: InvokeTarget,
    pub request_id: String,
    pub payload: Bytes,
    /// Decoded client context JSON.
    pub client_context: Option<String>,
    /// The caller's trace header (`X-Amzn-Trace-Id`, or the one stored with an event): the
    /// invocation continues it (same Root, new Parent); without one (or an invalid one) it
    /// starts a new trace.
    pub trace_id: Option<String>,
    /// Return the last 4 KB of the invocation's log.
    pub tail: bool,
    /// When an asynchronous event was accepted (its `queue wait` span).
    pub enqueued_ms: Option<i64>,
}

/// The result of an invocation that ran (function errors included).
#[derive(Debug, Clone)]
pub struct InvokeResult {
    pub request_id: String,
    pub executed_version: String,
    pub payload: Bytes,
    pub content_type: Option<String>,
    /// The error for function errors (the API answers `X-Amz-Function-Error: Unhandled`).
    pub function_error: Option<FunctionError>,
    pub log_tail: Option<String>,
    /// The trace header the invocation ran with (`Lambda-Runtime-Trace-Id`).
    pub trace_id: String,
}
