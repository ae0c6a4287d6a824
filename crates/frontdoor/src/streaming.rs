//! `RESPONSE_STREAM` URLs: the function's bytes reach the client as it writes them.
//!
//! A stream with the content type `application/vnd.awslambda.http-integration-response`
//! (`awslambda.HttpResponseStream.from`, `lambda_runtime`'s streaming responses) starts with
//! the HTTP prelude: the response head waits for it (never more than its 64 KiB), then the body
//! follows chunk by chunk. Any other stream is the body of a `200` with the function's content
//! type. The body is read only as fast as the client takes it (the scheduler's stream holds a
//! few frames; see ARCHITECTURE "Response streaming"). A function that fails before the head
//! is a `502`; after it, the status is sent already, so the response is cut off (no final
//! chunk): the client sees an incomplete body, never a complete-looking one.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http_body::Frame;
use kindling_httpevents::ResponseError;
use kindling_httpevents::stream::{HTTP_INTEGRATION_CONTENT_TYPE, PreludeError, PreludeReader};
use kindling_scheduler::InvokeStream;

use crate::error::FrontDoorError;
use crate::handler::HOP_BY_HOP;

/// The status, headers and body of a streamed function URL response.
pub(crate) async fn respond(
    mut stream: InvokeStream,
) -> Result<(u16, Vec<(String, String)>, Body), FrontDoorError> {
    let with_prelude = stream
        .content_type
        .as_deref()
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| {
            ct.trim()
                .eq_ignore_ascii_case(HTTP_INTEGRATION_CONTENT_TYPE)
        });
    let (status, mut headers, first) = if with_prelude {
        let mut reader = PreludeReader::new();
        loop {
            let Some(chunk) = stream.next_chunk().await else {
                let end = stream.finish().await;
                if let Some(e) = end.function_error {
                    return Err(FrontDoorError::Function(e.as_str().to_owned()));
                }
                return Err(PreludeError::Ended.into());
            };
            if let Some((head, rest)) = reader.push(&chunk)? {
                break (head.status, head.headers, rest);
            }
        }
    } else {
        let content_type = stream
            .content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        (
            200,
            vec![("content-type".to_owned(), content_type)],
            Bytes::new(),
        )
    };
    if !(200..=599).contains(&status) {
        return Err(FrontDoorError::BadResult(ResponseError::BadStatusCode));
    }
    headers.retain(|(n, _)| !HOP_BY_HOP.iter().any(|h| n.eq_ignore_ascii_case(h)));
    let body = StreamBody {
        first: (!first.is_empty()).then_some(first),
        stream: Box::new(stream),
        chunks_done: false,
        done: false,
    };
    Ok((status, headers, Body::new(body)))
}

/// The function failed after the response head was sent.
#[derive(Debug, thiserror::Error)]
#[error("the function failed mid-stream: {0}")]
struct StreamFailed(String);

/// The body after the prelude: the bytes that came with it, then each chunk as it arrives,
/// then the end (an error aborts the response).
struct StreamBody {
    first: Option<Bytes>,
    stream: Box<InvokeStream>,
    chunks_done: bool,
    done: bool,
}

impl http_body::Body for StreamBody {
    type Data = Bytes;
    type Error = StreamFailed;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if !this.chunks_done {
            match this.stream.poll_next_chunk(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(chunk)) => return Poll::Ready(Some(Ok(Frame::data(chunk)))),
                Poll::Ready(None) => this.chunks_done = true,
            }
        }
        let outcome = match this.stream.poll_end(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(outcome) => outcome,
        };
        this.done = true;
        match outcome.function_error {
            Some(e) => {
                tracing::info!(error = %e, "function URL stream failed after its head");
                Poll::Ready(Some(Err(StreamFailed(e.as_str().to_owned()))))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}
