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
    min_rate: u64,
    budget: Arc<Semaphore>,
    budget_units: usize,
}

impl BodyLimits {
    /// `idle_timeout` between pieces of a body; `memory` bytes of bodies buffered at once.
    pub fn new(idle_timeout: Duration, memory: usize) -> Self {
        let units = (memory / UNIT).clamp(1, Semaphore::MAX_PERMITS);
        Self {
            idle_timeout,
            min_rate: MIN_BODY_RATE,
            budget: Arc::new(Semaphore::new(units)),
            budget_units: units,
        }
    }

    /// The slowest a body may arrive on average, in bytes per second, after twice the idle
    /// timeout of grace ([`MIN_BODY_RATE`] unless set); 0: no average rate, only the idle
    /// timeout.
    #[must_use]
    pub fn with_min_rate(mut self, bytes_per_second: u64) -> Self {
        self.min_rate = bytes_per_second;
        self
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

impl BufferedBody {
    /// The bytes, giving the budget they held back (for a reader that reserves it again).
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
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
    /// The body arrived slower than the minimum rate ([`MIN_BODY_RATE`] by default) on average (after a grace of twice the
    /// idle timeout).
    #[error("the body arrived slower than {min_rate} bytes per second")]
    TooSlow { min_rate: u64 },
    /// No memory budget became free within the idle timeout (for a body's first 64 KiB, or
    /// for all of it when it could not grow at once).
    #[error("too many request bodies are being buffered")]
    Busy,
    /// The connection failed while reading.
    #[error("reading the body failed: {0}")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Budget reserved before the first byte (a small body's whole size): larger bodies reserve
/// more as their bytes arrive, so a body holds budget for what it sent, not for what it
/// announced.
const FIRST_RESERVATION: usize = 64 * 1024;
/// The slowest a body may arrive on average by default ([`BodyLimits::with_min_rate`];
/// `--body-min-rate`), after twice the idle timeout of grace: a body of
/// `n` bytes has `2 x idle_timeout + n / MIN_BODY_RATE` in all (6 MB: 20 s + 6 min; a 70 MB
/// upload: 20 s + 71 min), plus any time it waited for budget. A client that
/// sends a byte every few seconds would otherwise hold its connection, and what it sent of the
/// memory budget, for ever.
pub const MIN_BODY_RATE: u64 = 16 * 1024;

/// A body's share of the memory budget, grown as its bytes arrive.
struct Reservation<'a> {
    limits: &'a BodyLimits,
    permit: Option<OwnedSemaphorePermit>,
    units: usize,
}

impl Reservation<'_> {
    fn units_for(&self, bytes: usize) -> usize {
        bytes.div_ceil(UNIT).min(self.limits.budget_units)
    }

    /// Holds at least `step` bytes: at once when the budget has room; otherwise gives back
    /// what it holds and waits, first come first served, for `all` bytes (everything the body
    /// may still need, so it never waits again), at most the idle timeout. Returns the time
    /// spent waiting.
    ///
    /// A body never waits while holding budget: bodies that each held part of it while
    /// waiting for more stalled one another until all failed (8 uploads of 70 MB on 512 MiB
    /// each held 64 MiB, and none could have its next step). Bodies given back wait in one
    /// queue (the semaphore serves `acquire_many` in order, and hands what is released to
    /// the first in line), so they complete one after another instead. What a waiting body
    /// has already read stays in memory outside the budget: while bodies queue, the budget
    /// goes only to the queue, so those that wait with bytes read held them before the queue
    /// formed (another budget's worth at most) or were given their first 64 KiB from it; a
    /// body given all it may need never waits again.
    async fn grow(&mut self, step: usize, all: usize) -> Result<Duration, BodyError> {
        let want = self.units_for(step);
        if want <= self.units {
            return Ok(Duration::ZERO);
        }
        let budget = Arc::clone(&self.limits.budget);
        // Without a timer when the budget has room (the usual case).
        let more = u32::try_from(want - self.units).unwrap_or(u32::MAX);
        if let Ok(permit) = Arc::clone(&budget).try_acquire_many_owned(more) {
            match &mut self.permit {
                Some(held) => held.merge(permit),
                None => self.permit = Some(permit),
            }
            self.units = want;
            return Ok(Duration::ZERO);
        }
        self.permit = None;
        self.units = 0;
        let all = self.units_for(all).max(want);
        let started = tokio::time::Instant::now();
        let units = u32::try_from(all).unwrap_or(u32::MAX);
        match tokio::time::timeout(self.limits.idle_timeout, budget.acquire_many_owned(units)).await
        {
            Ok(Ok(permit)) => {
                self.permit = Some(permit);
                self.units = all;
                Ok(started.elapsed())
            }
            _ => Err(BodyError::Busy),
        }
    }
}

/// Reads `body` (announced as `declared` bytes, if known) of at most `limit` bytes, with
/// pauses of at most the idle timeout and at the minimum rate on average (time spent waiting
/// for budget not counted), within the memory budget: the first 64 KiB (or the announced size,
/// when smaller) reserved before reading, more as the bytes arrive (see `Reservation::grow`).
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
    let mut budget = Reservation {
        limits,
        permit: None,
        units: 0,
    };
    // Nothing read yet: a body waits for its first step only (a client that sends nothing
    // holds no more than that).
    let first_step = expected.min(FIRST_RESERVATION);
    budget.grow(first_step, first_step).await?;
    // Moved on by the time spent waiting for budget: that is the server's delay, not the
    // client's.
    let mut deadline = (limits.min_rate > 0).then(|| {
        let allowed = limits.idle_timeout * 2
            + Duration::from_millis((expected as u64).saturating_mul(1000) / limits.min_rate);
        tokio::time::Instant::now() + allowed
    });
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
            None => {
                let idle = tokio::time::Instant::now() + limits.idle_timeout;
                let until = deadline.map_or(idle, |d| idle.min(d));
                match tokio::time::timeout_at(until, body.frame()).await {
                    Ok(next) => next,
                    Err(_) if until == idle => {
                        return Err(BodyError::Timeout(limits.idle_timeout));
                    }
                    Err(_) => {
                        return Err(BodyError::TooSlow {
                            min_rate: limits.min_rate,
                        });
                    }
                }
            }
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
        let total = have + data.len();
        if total > limit {
            return Err(BodyError::TooLarge { limit });
        }
        // Reserved ahead in doubling steps (a few semaphore calls per body), never beyond
        // what the body may still bring; when the budget has no room for the next step, all
        // the body may still bring (its `Content-Length`, or the operation's limit).
        if total > budget.units * UNIT {
            let step = (budget.units * UNIT * 2).min(expected).max(total);
            let waited = budget.grow(step, expected.max(total)).await?;
            if let Some(deadline) = &mut deadline {
                *deadline += waited;
            }
        }
        // One piece (the usual small body) is kept as is; more are gathered in one buffer.
        match (&mut first, &mut rest) {
            (None, None) => first = Some(data),
            (Some(f), None) => {
                // Room for what is reserved (the announced length only as it arrives: memory
                // follows the budget, not what a client claims it will send).
                let room = expected.min(budget.units * UNIT).max(total);
                let mut buf = BytesMut::with_capacity(room);
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
        _budget: budget.permit,
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

    /// A body that sends one byte every `every`, for ever.
    struct Trickle(tokio::time::Interval);

    impl Body for Trickle {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
            self.0
                .poll_tick(cx)
                .map(|_| Some(Ok(http_body::Frame::data(Bytes::from_static(b"x")))))
        }
    }

    fn trickle(every: Duration) -> Trickle {
        Trickle(tokio::time::interval(every))
    }

    #[tokio::test]
    async fn a_trickled_body_is_cut_at_the_minimum_rate() {
        // Idle 300 ms, a byte every 100 ms: never idle, but 10 000 bytes would take 17 min.
        // It has 2 x 300 ms + 10 000 / MIN_BODY_RATE (0.6 s) in all.
        let limits = BodyLimits::new(Duration::from_millis(300), 1024 * 1024);
        let started = std::time::Instant::now();
        let read = read_body(
            trickle(Duration::from_millis(100)),
            Some(10_000),
            10_000,
            &limits,
        );
        let got = tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .expect("cut, not read for ever");
        assert!(
            matches!(
                got,
                Err(BodyError::TooSlow {
                    min_rate: MIN_BODY_RATE
                })
            ),
            "{got:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn the_minimum_rate_is_configurable() {
        // 10 000 bytes at 10 bytes per 100 ms (100 B/s): too slow for 1 KiB/s (cut after
        // 600 ms + ~10 s), fine without a rate (0).
        let limits = BodyLimits::new(Duration::from_millis(300), 1024 * 1024);
        let slow = || paced(10_000, 10, Duration::from_millis(100));
        let got = read_body(
            slow(),
            Some(10_000),
            10_000,
            &limits.clone().with_min_rate(1024),
        )
        .await;
        assert!(
            matches!(got, Err(BodyError::TooSlow { min_rate: 1024 })),
            "{got:?}"
        );
        let got = read_body(slow(), Some(10_000), 10_000, &limits.with_min_rate(0)).await;
        assert!(matches!(&got, Ok(b) if b.bytes.len() == 10_000), "{got:?}");
    }

    #[tokio::test]
    async fn a_body_holds_budget_for_what_it_sent_not_what_it_announced() {
        // 256 KiB of budget; a client announces 1 MiB and trickles. It held the whole budget
        // (every other body was Busy) while it had sent a few bytes.
        let limits = BodyLimits::new(Duration::from_secs(1), 256 * 1024);
        let trickled = tokio::spawn({
            let limits = limits.clone();
            async move {
                read_body(
                    trickle(Duration::from_millis(50)),
                    Some(1024 * 1024),
                    1024 * 1024,
                    &limits,
                )
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let other = read_body(
            Full::new(Bytes::from(vec![7u8; 150 * 1024])),
            Some(150 * 1024),
            1024 * 1024,
            &limits,
        )
        .await;
        assert!(other.is_ok(), "{other:?}");
        drop(other);
        trickled.abort();
        assert!(trickled.await.unwrap_err().is_cancelled());
        // A large body still gets the budget it needs as it arrives, and gives it back.
        let pieces: Vec<&'static [u8]> = vec![&[1u8; 100 * 1024], &[2u8; 100 * 1024]];
        let big = read_body(
            chunks(pieces, false),
            Some(200 * 1024),
            1024 * 1024,
            &limits,
        )
        .await
        .unwrap();
        assert_eq!(big.bytes.len(), 200 * 1024);
        assert!(matches!(
            read_body(
                chunks(vec![&[3u8; 100 * 1024]], false),
                None,
                1024 * 1024,
                &limits
            )
            .await,
            Err(BodyError::Busy)
        ));
        drop(big);
        assert!(
            read_body(
                chunks(vec![&[3u8; 100 * 1024]], false),
                None,
                1024 * 1024,
                &limits
            )
            .await
            .is_ok()
        );
    }

    /// `left` bytes in pieces of `piece`, one every period of `tick`; a piece read late
    /// delays the next ones (a client blocked on its socket while the server does not read).
    struct Paced {
        left: usize,
        piece: usize,
        tick: tokio::time::Interval,
    }

    impl Body for Paced {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
            if self.left == 0 {
                return std::task::Poll::Ready(None);
            }
            std::task::ready!(self.tick.poll_tick(cx));
            let n = self.piece.min(self.left);
            self.left -= n;
            std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(vec![1u8; n])))))
        }
    }

    fn paced(len: usize, piece: usize, every: Duration) -> Paced {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Paced {
            left: len,
            piece,
            tick,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_bodies_larger_than_their_share_all_complete() {
        // 4 bodies of 400 KiB on 1 MiB, read side by side: each reached 256 KiB (the budget
        // spent), waited for its next step holding what it had, and all failed Busy.
        const LEN: usize = 400 * 1024;
        for declared in [Some(LEN as u64), None] {
            let limits = BodyLimits::new(Duration::from_secs(1), 1024 * 1024);
            let bodies: Vec<_> = (0..4)
                .map(|_| {
                    let limits = limits.clone();
                    tokio::spawn(async move {
                        let body = paced(LEN, 16 * 1024, Duration::from_millis(10));
                        let got = read_body(body, declared, LEN, &limits).await?;
                        // The request is handled while its body holds the budget.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, BodyError>(got.bytes.len())
                    })
                })
                .collect();
            for body in bodies {
                let got = body.await.unwrap();
                assert!(matches!(got, Ok(LEN)), "declared {declared:?}: {got:?}");
            }
            // Everything given back.
            assert_eq!(limits.budget.available_permits(), limits.budget_units);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn time_spent_waiting_for_budget_does_not_count_against_the_rate() {
        // 80 KiB at 4 KiB every 360 ms: done at 6.84 s of the 2 s + 5 s it is allowed. Its
        // 17th piece waits 0.9 s for budget (another body holds the rest), which made it
        // TooSlow at 7 s.
        let limits = BodyLimits::new(Duration::from_secs(1), 128 * 1024);
        let started = tokio::time::Instant::now();
        let subject = tokio::spawn({
            let limits = limits.clone();
            async move {
                let body = paced(80 * 1024, 4 * 1024, Duration::from_millis(360));
                read_body(body, Some(80 * 1024), 80 * 1024, &limits).await
            }
        });
        // The subject takes its first 64 KiB, then another body the other 64 KiB.
        while limits.budget.available_permits() == limits.budget_units {
            tokio::task::yield_now().await;
        }
        let holder = read_body(
            Full::new(Bytes::from(vec![0u8; 64 * 1024])),
            Some(64 * 1024),
            64 * 1024,
            &limits,
        )
        .await
        .unwrap();
        tokio::time::sleep_until(started + Duration::from_millis(16 * 360 + 900)).await;
        drop(holder);
        let got = subject.await.unwrap().map(|b| b.bytes.len());
        assert!(matches!(got, Ok(81_920)), "{got:?}");
        assert!(started.elapsed() > Duration::from_secs(7));
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
