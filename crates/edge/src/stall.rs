//! Write stalls: how long a connection's answer has waited on a client that reads nothing.
//!
//! The connection's I/O is wrapped ([`Watched`]): a write the socket cannot take (its send
//! buffer full: the client is not reading) starts a stall, and any write that makes progress
//! ends it. Only that time counts: an answer read slowly but steadily, or a streamed answer
//! whose producer is slow (nothing is waiting to be written), never stalls. The connection's
//! task bounds its stalls with [`Stall::bound`], so a client that stops reading cannot hold
//! its slot for good.
//!
//! Cost on the request path: one relaxed load per write; the clock is read only when a write
//! finds the socket full.

use std::future::{Future, poll_fn};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::rt::{Read, ReadBufCursor, Write};

/// One connection's write stall, shared by its I/O and its task.
pub(crate) struct Stall {
    epoch: Instant,
    /// 0: no stall; otherwise 1 + microseconds since `epoch` at which it began.
    since: AtomicU64,
}

impl Stall {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            since: AtomicU64::new(0),
        })
    }

    /// Records what a write on the socket came to.
    #[inline]
    fn note(&self, pending: bool) {
        // Relaxed: only the connection's own task writes and reads it.
        let since = self.since.load(Ordering::Relaxed);
        if pending {
            if since == 0 {
                let at = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX - 1);
                self.since.store(at + 1, Ordering::Relaxed);
            }
        } else if since != 0 {
            self.since.store(0, Ordering::Relaxed);
        }
    }

    /// When the current stall began, if the output is stalled.
    fn began(&self) -> Option<Instant> {
        match self.since.load(Ordering::Relaxed) {
            0 => None,
            at => Some(self.epoch + Duration::from_micros(at - 1)),
        }
    }

    /// Drives `fut` (the connection) to its end, or gives up (`None`) once its output has
    /// stalled for `limit` without a write making progress.
    pub(crate) async fn bound<F: Future>(
        &self,
        mut fut: Pin<&mut F>,
        limit: Duration,
    ) -> Option<F::Output> {
        // The timer of the stall seen last (a timer is made only when the output stalls).
        let mut timer: Option<(Instant, Pin<Box<tokio::time::Sleep>>)> = None;
        poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            // The I/O has just been polled within this same poll: the stall is current.
            let Some(began) = self.began() else {
                timer = None;
                return Poll::Pending;
            };
            let sleep = match &mut timer {
                Some((at, sleep)) if *at == began => sleep,
                _ => {
                    let deadline = tokio::time::Instant::from_std(began + limit);
                    &mut timer
                        .insert((began, Box::pin(tokio::time::sleep_until(deadline))))
                        .1
                }
            };
            match sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

/// A connection's I/O whose writes are watched for stalls.
pub(crate) struct Watched<T> {
    inner: T,
    stall: Arc<Stall>,
}

impl<T> Watched<T> {
    pub(crate) fn new(inner: T, stall: Arc<Stall>) -> Self {
        Self { inner, stall }
    }
}

impl<T: Read + Unpin> Read for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for Watched<T> {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.stall.note(r.is_pending());
        r
    }

    #[inline]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.stall.note(r.is_pending());
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_time_without_progress_counts() {
        let stall = Stall::new();
        let limit = Duration::from_millis(30);
        // Nothing waits to be written (a slow producer): the limit never applies.
        let idle = std::future::pending::<()>();
        tokio::pin!(idle);
        assert!(
            tokio::time::timeout(limit * 4, stall.bound(idle, limit))
                .await
                .is_err()
        );
        // A steady reader: every wake-up makes progress, then the socket is full again.
        let steady = async {
            for _ in 0..12 {
                stall.note(true);
                tokio::time::sleep(limit / 3).await;
                stall.note(false);
            }
        };
        tokio::pin!(steady);
        assert!(
            stall.bound(steady, limit).await.is_some(),
            "a steady reader is served"
        );
        // A client that stops reading: given up once the limit has passed.
        let stuck = async {
            stall.note(true);
            std::future::pending::<()>().await;
        };
        tokio::pin!(stuck);
        let start = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(2), stall.bound(stuck, limit))
            .await
            .expect("gives up");
        assert!(r.is_none());
        assert!(start.elapsed() >= limit - Duration::from_millis(2));
    }
}
