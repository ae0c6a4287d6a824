//! One invocation as the scheduler receives it, and its result.

use bytes::Bytes;
use kindling_model::invoke::{FunctionError, InvokeTarget};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, oneshot};

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

/// What an invocation answers: the whole response, or a stream begun by the runtime.
#[derive(Debug)]
pub enum InvokeResponse {
    /// The runtime answered in one piece (or the invocation failed before streaming).
    Buffered(InvokeResult),
    /// The runtime streams its response (`Lambda-Runtime-Function-Response-Mode: streaming`).
    Stream(InvokeStream),
}

/// A streamed response on its way: read its chunks as the function writes them with
/// [`InvokeStream::next_chunk`] until `None`, then [`InvokeStream::finish`] says how the
/// invocation ended. The chunks wait in a small bounded channel: not reading holds the
/// function's writes back (nothing is buffered whole). Dropping the stream does not stop the
/// invocation; it runs to its end and the rest of its output is discarded.
pub struct InvokeStream {
    pub request_id: String,
    pub executed_version: String,
    /// The `Content-Type` the runtime sent with the stream.
    pub content_type: Option<String>,
    /// The trace header the invocation runs with.
    pub trace_id: String,
    pub(crate) chunks: mpsc::Receiver<Bytes>,
    pub(crate) end: oneshot::Receiver<StreamOutcome>,
}

impl std::fmt::Debug for InvokeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvokeStream")
            .field("request_id", &self.request_id)
            .field("executed_version", &self.executed_version)
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

/// How a streamed invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOutcome {
    /// `Some` when the function failed mid-stream (error trailers, timeout, crash, size).
    pub function_error: Option<FunctionError>,
    /// The error document (empty on success).
    pub error_body: Bytes,
    /// The last 4 KB of the invocation's log, when asked for.
    pub log_tail: Option<String>,
}

impl InvokeStream {
    /// The next piece of the body, as the function wrote it; `None` once the body has ended.
    pub async fn next_chunk(&mut self) -> Option<Bytes> {
        self.chunks.recv().await
    }

    /// [`InvokeStream::next_chunk`] for hand-written bodies and streams.
    pub fn poll_next_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.chunks.poll_recv(cx)
    }

    /// How the invocation ended, once [`InvokeStream::poll_next_chunk`] gave `None`.
    pub fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<StreamOutcome> {
        Pin::new(&mut self.end)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| lost()))
    }

    /// How the invocation ended (waits for its end; chunks not read are discarded).
    pub async fn finish(self) -> StreamOutcome {
        drop(self.chunks);
        self.end.await.unwrap_or_else(|_| lost())
    }
}

/// The end of a stream whose invocation task went away (it panicked); never expected.
fn lost() -> StreamOutcome {
    StreamOutcome {
        function_error: Some(FunctionError::Unknown),
        error_body: Bytes::from_static(
            br#"{"errorType":"Runtime.Unknown","errorMessage":"The invocation was lost"}"#,
        ),
        log_tail: None,
    }
}
