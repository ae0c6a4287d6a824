//! Reading a request body into memory within the edge's bounds.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Budget units: one permit per KiB of body.
const UNIT: usize = 1024;

/// The server-wide bounds on reading bodies, in every request's extensions.
#[derive(Debug, Clone)]
pub struct BodyLimits {
    idle_timeout: Duration,
    budget: Arc<Semaphore>,
    budget_units: usize,
}

impl BodyLimits {
    /// `idle_timeout` between pieces of a body; `memory` bytes of bodies buffered at once.
    pub fn new(idle_timeout: Duration, memory: usize) -> Self {
        let units = (memory / UNIT).clamp(1, Semaphore::MAX_PERMITS);
        Self {
            idle_timeout,
            budget: Arc::new(Semaphore::new(units)),
            budget_units: units,
        }
    }

    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }
}

/// A body read whole, holding its share of the memory budget until dropped.
#[derive(Debug)]
pub struct BufferedBody {
    pub bytes: Bytes,
    _budget: Option<OwnedSemaphorePermit>,
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Longer than the operation's limit (by its `Content-Length`, or while reading).
    #[error("the body is longer than {limit} bytes")]
    TooLarge { limit: usize },
    /// Nothing arrived for the idle timeout (a stalled client, or a `Content-Length` larger
    /// than what it sends).
    #[error("the body stopped arriving for {0:?}")]
    Timeout(Duration),
    /// No memory budget became free within the idle timeout.
    #[error("too many request bodies are being buffered")]
    Busy,
    /// The connection failed while reading.
    #[error("reading the body failed: {0}")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Reads `body` (announced as `declared` bytes, if known) of at most `limit` bytes, with
/// pauses of at most the idle timeout, after reserving its size in the memory budget.
pub async fn read_body<B>(
    body: B,
    declared: Option<u64>,
    limit: usize,
    limits: &BodyLimits,
) -> Result<BufferedBody, BodyError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if declared.is_some_and(|d| d > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let expected = declared.map_or(limit, |d| usize::try_from(d).unwrap_or(limit));
    let budget = if expected == 0 {
        None
    } else {
        let units = expected.div_ceil(UNIT).min(limits.budget_units);
        let units = u32::try_from(units).unwrap_or(u32::MAX);
        // Without a timer when the budget has room (the usual case).
        match Arc::clone(&limits.budget).try_acquire_many_owned(units) {
            Ok(permit) => Some(permit),
            Err(_) => {
                let acquire = Arc::clone(&limits.budget).acquire_many_owned(units);
                match tokio::time::timeout(limits.idle_timeout, acquire).await {
                    Ok(Ok(permit)) => Some(permit),
                    _ => return Err(BodyError::Busy),
                }
            }
        }
    };
    let mut body = std::pin::pin!(body);
    let mut first: Option<Bytes> = None;
    let mut rest: Option<BytesMut> = None;
    loop {
        // A piece already there is taken without arming a timer.
        let ready = std::future::poll_fn(|cx| match body.as_mut().poll_frame(cx) {
            std::task::Poll::Ready(next) => std::task::Poll::Ready(Some(next)),
            std::task::Poll::Pending => std::task::Poll::Ready(None),
        })
        .await;
        let next = match ready {
            Some(next) => next,
            None => tokio::time::timeout(limits.idle_timeout, body.frame())
                .await
                .map_err(|_| BodyError::Timeout(limits.idle_timeout))?,
        };
        let frame = match next {
            None => break,
            Some(Err(e)) => return Err(BodyError::Read(e.into())),
            Some(Ok(frame)) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let have = first.as_ref().map_or(0, Bytes::len) + rest.as_ref().map_or(0, BytesMut::len);
        if have + data.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        // One piece (the usual small body) is kept as is; more are gathered in one buffer.
        match (&mut first, &mut rest) {
            (None, None) => first = Some(data),
            (Some(f), None) => {
                let mut buf = BytesMut::with_capacity(expected.max(f.len() + data.len()));
                buf.extend_from_slice(f);
                buf.extend_from_slice(&data);
                first = None;
                rest = Some(buf);
            }
            (_, Some(buf)) => buf.extend_from_slice(&data),
        }
    }
    let bytes = match (first, rest) {
        (_, Some(buf)) => buf.freeze(),
        (Some(f), None) => f,
        (None, None) => Bytes::new(),
    };
    Ok(BufferedBody {
        bytes,
        _budget: budget,
    })
}

/// Size of each read of [`file_body`].
const FILE_READ_BUFFER: usize = 64 * 1024;

/// A response body reading `len` bytes of a file from its current position.
pub fn file_body(file: std::fs::File, len: u64) -> axum::body::Body {
    axum::body::Body::new(FileBody {
        file: tokio::fs::File::from_std(file),
        remaining: len,
        buf: vec![0; FILE_READ_BUFFER],
    })
}

struct FileBody {
    file: tokio::fs::File,
    remaining: u64,
    buf: Vec<u8>,
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        use std::pin::Pin;
        use std::task::Poll;
        use tokio::io::{AsyncRead, ReadBuf};
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = (this.buf.len() as u64).min(this.remaining) as usize;
        let mut read = ReadBuf::new(&mut this.buf[..want]);
        match Pin::new(&mut this.file).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let filled = read.filled();
                if filled.is_empty() {
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "file shorter than the length it was served with",
                    ))));
                }
                this.remaining -= filled.len() as u64;
                Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::copy_from_slice(
                    filled,
                )))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http_body_util::Full;

    use super::*;

    fn limits() -> BodyLimits {
        BodyLimits::new(Duration::from_millis(200), 1024 * 1024)
    }

    #[tokio::test]
    async fn reads_within_the_limit() {
        let body = Full::new(Bytes::from_static(b"hello"));
        let got = read_body(body, Some(5), 10, &limits()).await.unwrap();
        assert_eq!(&got.bytes[..], b"hello");
    }

    #[tokio::test]
    async fn refuses_a_declared_length_over_the_limit_without_reading() {
        let body = Full::new(Bytes::from_static(b"hello"));
        assert!(matches!(
            read_body(body, Some(11), 10, &limits()).await,
            Err(BodyError::TooLarge { limit: 10 })
        ));
    }

    /// A body of `parts`, then its end, or a stall forever when `then_stall`.
    struct Pieces {
        parts: std::collections::VecDeque<&'static [u8]>,
        then_stall: bool,
    }

    impl Body for Pieces {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
            match self.parts.pop_front() {
                Some(p) => {
                    std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(p)))))
                }
                None if self.then_stall => std::task::Poll::Pending,
                None => std::task::Poll::Ready(None),
            }
        }
    }

    fn chunks(parts: Vec<&'static [u8]>, then_stall: bool) -> Pieces {
        Pieces {
            parts: parts.into(),
            then_stall,
        }
    }

    #[tokio::test]
    async fn gathers_pieces_and_enforces_the_limit_while_reading() {
        let got = read_body(chunks(vec![b"ab", b"cd", b"e"], false), None, 5, &limits())
            .await
            .unwrap();
        assert_eq!(&got.bytes[..], b"abcde");
        assert!(matches!(
            read_body(chunks(vec![b"abc", b"def"], false), None, 5, &limits()).await,
            Err(BodyError::TooLarge { limit: 5 })
        ));
    }

    #[tokio::test]
    async fn a_stalled_body_times_out() {
        let started = std::time::Instant::now();
        assert!(matches!(
            read_body(chunks(vec![b"ab"], true), Some(10), 10, &limits()).await,
            Err(BodyError::Timeout(_))
        ));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn the_memory_budget_is_shared_and_given_back() {
        let limits = BodyLimits::new(Duration::from_millis(100), 4 * 1024);
        let held = read_body(
            Full::new(Bytes::from(vec![0u8; 4096])),
            Some(4096),
            8192,
            &limits,
        )
        .await
        .unwrap();
        assert!(matches!(
            read_body(Full::new(Bytes::from_static(b"x")), Some(1), 10, &limits).await,
            Err(BodyError::Busy)
        ));
        drop(held);
        assert!(
            read_body(Full::new(Bytes::from_static(b"x")), Some(1), 10, &limits)
                .await
                .is_ok()
        );
    }
}
