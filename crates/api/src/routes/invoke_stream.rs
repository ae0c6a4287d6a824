//! InvokeWithResponseStream: the response is an AWS event stream, one `PayloadChunk` event per
//! piece the function writes (sent as it arrives), then `InvokeComplete` with the error, if
//! any, and the log tail. Errors found before the function runs are ordinary error responses;
//! after that the status is 200 and failures are reported in `InvokeComplete`.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body::Frame;
use kindling_control::ControlError;
use kindling_model::limits;
use kindling_protocol::eventstream;
use kindling_scheduler::{
    InvokeRequest, InvokeResponse, InvokeResult, InvokeStream, StreamOutcome,
};
use serde_json::{Map, Value};

use super::invoke::{client_context, header, log_tail, payload, resolve, set, with_request_id};
use crate::ApiState;
use crate::error::ApiError;
use crate::extract::QueryParams;

/// `POST /2021-11-15/functions/{name}/response-streaming-invocations`
pub async fn invoke_with_response_stream(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: QueryParams,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let dry_run = match header(&headers, "x-amz-invocation-type") {
        None | Some("RequestResponse") => false,
        Some("DryRun") => true,
        Some(other) => {
            return Err(ApiError::Control(ControlError::Validation(format!(
                "1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [RequestResponse, DryRun]"
            ))));
        }
    };
    let tail = log_tail(&headers)?;
    let client_context = client_context(&headers)?;
    let payload = payload(body, limits::SYNC_PAYLOAD).await?;
    let target = resolve(&s, &name, q.get("Qualifier")).await?;
    let scheduler = s.scheduler.clone().ok_or(ApiError::DataPlaneDisabled)?;
    let request_id = super::invoke::new_request_id();
    if dry_run {
        return Ok(with_request_id(
            StatusCode::NO_CONTENT.into_response(),
            &request_id,
        ));
    }
    let req = InvokeRequest {
        target,
        request_id,
        payload,
        client_context,
        trace_id: header(&headers, "x-amzn-trace-id").map(str::to_string),
        tail,
        enqueued_ms: None,
    };
    let body = match scheduler.invoke_response(req).await? {
        InvokeResponse::Buffered(result) => EventStreamBody::buffered(result),
        InvokeResponse::Stream(stream) => EventStreamBody::streaming(stream),
    };
    let (request_id, version, trace_id) = body.ids();
    let mut res = Response::new(Body::new(body));
    set(&mut res, "content-type", eventstream::CONTENT_TYPE);
    set(&mut res, "X-Amz-Executed-Version", &version);
    set(&mut res, "X-Amzn-Trace-Id", &trace_id);
    Ok(with_request_id(res, &request_id))
}

/// The `InvokeComplete` event: `ErrorCode` and `ErrorDetails` on failure, `LogResult` (base64
/// of the log tail) when asked for.
fn complete_event(outcome: &StreamOutcome) -> Bytes {
    let mut doc = Map::new();
    if let Some(error) = &outcome.function_error {
        doc.insert("ErrorCode".into(), Value::String(error.as_str().to_owned()));
        doc.insert(
            "ErrorDetails".into(),
            Value::String(String::from_utf8_lossy(&outcome.error_body).into_owned()),
        );
    }
    if let Some(tail) = &outcome.log_tail {
        doc.insert("LogResult".into(), Value::String(B64.encode(tail)));
    }
    eventstream::event(
        "InvokeComplete",
        "application/json",
        Value::Object(doc).to_string().as_bytes(),
    )
}

fn chunk_event(chunk: &[u8]) -> Bytes {
    eventstream::event("PayloadChunk", "application/octet-stream", chunk)
}

/// The response body: events made as the function's chunks arrive. Polled by hyper, it reads
/// the next chunk only when the previous event was taken, so the client's pace reaches the
/// function (nothing is buffered here).
struct EventStreamBody {
    ids: (String, String, String),
    phase: Phase,
}

enum Phase {
    /// A response that came whole: its one chunk (if any), then the completion.
    Buffered {
        chunk: Option<Bytes>,
        complete: Option<Bytes>,
    },
    /// Chunks as they come, then the completion.
    Streaming(Box<InvokeStream>, bool),
    Done,
}

impl EventStreamBody {
    fn buffered(r: InvokeResult) -> Self {
        let outcome = StreamOutcome {
            function_error: r.function_error.clone(),
            error_body: r.payload.clone(),
            log_tail: r.log_tail.clone(),
        };
        // A function error is reported in the completion only.
        let chunk =
            (r.function_error.is_none() && !r.payload.is_empty()).then(|| chunk_event(&r.payload));
        Self {
            ids: (r.request_id, r.executed_version, r.trace_id),
            phase: Phase::Buffered {
                chunk,
                complete: Some(complete_event(&outcome)),
            },
        }
    }

    fn streaming(stream: InvokeStream) -> Self {
        Self {
            ids: (
                stream.request_id.clone(),
                stream.executed_version.clone(),
                stream.trace_id.clone(),
            ),
            phase: Phase::Streaming(Box::new(stream), false),
        }
    }

    fn ids(&self) -> (String, String, String) {
        self.ids.clone()
    }
}

impl http_body::Body for EventStreamBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let event = match &mut this.phase {
            Phase::Buffered { chunk, complete } => match chunk.take() {
                Some(c) => Some(c),
                None => {
                    let last = complete.take();
                    this.phase = Phase::Done;
                    last
                }
            },
            Phase::Streaming(stream, chunks_done) => {
                if !*chunks_done {
                    match stream.poll_next_chunk(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Some(chunk)) => {
                            return Poll::Ready(Some(Ok(Frame::data(chunk_event(&chunk)))));
                        }
                        Poll::Ready(None) => *chunks_done = true,
                    }
                }
                match stream.poll_end(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(outcome) => {
                        this.phase = Phase::Done;
                        Some(complete_event(&outcome))
                    }
                }
            }
            Phase::Done => None,
        };
        Poll::Ready(event.map(|e| Ok(Frame::data(e))))
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kindling_model::invoke::FunctionError;

    #[test]
    fn completion_carries_error_and_log() {
        let ok = complete_event(&StreamOutcome {
            function_error: None,
            error_body: Bytes::new(),
            log_tail: None,
        });
        let (m, _) = eventstream::decode(&ok).unwrap();
        assert_eq!(m.header(":event-type"), Some("InvokeComplete"));
        assert_eq!(m.payload, "{}");
        let failed = complete_event(&StreamOutcome {
            function_error: Some(FunctionError::Runtime("Runtime.StreamError".into())),
            error_body: Bytes::from_static(br#"{"errorMessage":"boom"}"#),
            log_tail: Some("START\n".into()),
        });
        let (m, _) = eventstream::decode(&failed).unwrap();
        let doc: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(doc["ErrorCode"], "Runtime.StreamError");
        assert_eq!(doc["ErrorDetails"], r#"{"errorMessage":"boom"}"#);
        assert_eq!(doc["LogResult"], B64.encode("START\n"));
    }
}
