//! Reading request bodies with a cap: never more than `max` bytes are buffered.

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::HeaderMap;
use hyper::body::{Body, Incoming};

/// How many bytes of an oversized body are read and thrown away so that the client, which is
/// usually still writing, receives the 413 instead of a connection reset. Beyond this the
/// connection is simply closed after the answer.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Bodies up to this size are copied out of the connection's read buffer.
const COPY_BELOW: usize = 4096;

/// A complete body.
#[derive(Debug)]
pub(crate) struct Collected {
    pub(crate) bytes: Bytes,
    pub(crate) trailers: Option<HeaderMap>,
}

#[derive(Debug)]
pub(crate) enum ReadError {
    /// More than `max` bytes were sent (or announced by `Content-Length`). `rest` is the
    /// unread remainder; `announced` is true when nothing was read because the length header
    /// alone was too large.
    TooLarge { rest: Incoming, announced: bool },
    /// The body ended early or the connection failed.
    Truncated,
}

/// Reads the whole body, failing as soon as it exceeds `max` bytes. A body that arrives in
/// one frame is returned without copying.
pub(crate) async fn read_capped(mut body: Incoming, max: usize) -> Result<Collected, ReadError> {
    let hint = body.size_hint();
    if hint.lower() > max as u64 {
        return Err(ReadError::TooLarge {
            rest: body,
            announced: true,
        });
    }
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut total = 0usize;
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ReadError::Truncated)?;
        let data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    trailers = Some(t);
                }
                continue;
            }
        };
        if data.is_empty() {
            continue;
        }
        total += data.len();
        if total > max {
            return Err(ReadError::TooLarge {
                rest: body,
                announced: false,
            });
        }
        if let Some(buf) = joined.as_mut() {
            buf.extend_from_slice(&data);
        } else if let Some(head) = first.take() {
            let expected = hint.exact().map_or(total, |n| n as usize).clamp(total, max);
            let mut buf = BytesMut::with_capacity(expected);
            buf.extend_from_slice(&head);
            buf.extend_from_slice(&data);
            joined = Some(buf);
        } else {
            first = Some(data);
        }
    }
    let bytes = match (joined, first) {
        (Some(buf), _) => buf.freeze(),
        // A small body is copied out: a slice would keep hyper's whole read buffer shared,
        // and the connection's next request (the runtime's `/next`, sent right after the
        // answer) would then be read into a freshly allocated one.
        (None, Some(head)) if head.len() <= COPY_BELOW => Bytes::copy_from_slice(&head),
        (None, Some(head)) => head,
        (None, None) => Bytes::new(),
    };
    Ok(Collected { bytes, trailers })
}

/// Reads and discards what is left of an oversized body, up to [`DRAIN_LIMIT`].
pub(crate) async fn drain(mut rest: Incoming) {
    let mut seen = 0usize;
    while let Some(Ok(frame)) = rest.frame().await {
        if let Some(data) = frame.data_ref() {
            seen += data.len();
            if seen > DRAIN_LIMIT {
                return;
            }
        }
    }
}
