//! Replaces hyper's own answers to requests it cannot parse with the API's error format.
//!
//! hyper writes a bare head (`HTTP/1.1 400 Bad Request`, `content-length: 0`) when a request
//! head is malformed, too large, or has a URI too long, and then closes the connection. It
//! offers no hook for the body of that answer, so the connection's output is followed here:
//! every response the service produces carries a marker header (the API's request id);
//! hyper's own heads do not. The wrapper keeps track of where each response head starts (the
//! service's responses are framed by `Content-Length`; responses to `HEAD` and 1xx/204/304
//! have no body), passes the service's responses through untouched (one copy-free
//! `write`/`writev` as before), and swallows a marker-less error head, writing the renderer's
//! response in its place. Anything it cannot frame (chunked encoding) is passed through
//! unchanged from then on.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use http::StatusCode;
use hyper::rt::{Read, ReadBufCursor, Write};

use crate::{Rejection, Renderer};

/// For each request the service was called with, in order: whether it was a `HEAD` (whose
/// response has a `Content-Length` but no body).
pub(crate) type HeadQueue = Arc<Mutex<VecDeque<bool>>>;

/// A head longer than this is not looked for: it passes through as is.
const MAX_HEAD: usize = 64 * 1024;

enum Out {
    /// At the start of a response head (holding the bytes of a head that came in pieces).
    Head(Vec<u8>),
    /// Inside a response: `left` bytes of it still pass through; then the next head, or
    /// unframed output when `then_opaque`.
    Through { left: u64, then_opaque: bool },
    /// Unframed output: everything passes through from here on.
    Opaque,
}

/// What to do with a complete response head.
enum Decision {
    /// Pass through this many bytes (head and body).
    Pass(u64),
    /// Pass the head through; what follows cannot be framed.
    PassHeadThenOpaque,
    /// hyper's own error answer with this status: replace it.
    Replace(StatusCode),
}

pub(crate) struct Rewrite<T> {
    inner: T,
    out: Out,
    /// Bytes to write before anything else (a replacement, or a head that came in pieces).
    pending: Vec<u8>,
    pending_at: usize,
    heads: HeadQueue,
    marker: &'static str,
    renderer: Renderer,
}

impl<T> Rewrite<T> {
    pub(crate) fn new(
        inner: T,
        heads: HeadQueue,
        marker: &'static str,
        renderer: Renderer,
    ) -> Self {
        Self {
            inner,
            out: Out::Head(Vec::new()),
            pending: Vec::new(),
            pending_at: 0,
            heads,
            marker,
            renderer,
        }
    }

    fn decide(&self, head: &[u8]) -> Decision {
        let Some(info) = HeadInfo::scan(head, self.marker) else {
            return Decision::PassHeadThenOpaque;
        };
        let status = info.status;
        let len = head.len() as u64;
        if !info.marked {
            return if status.is_informational() {
                Decision::Pass(len)
            } else if status.is_client_error() || status.is_server_error() {
                Decision::Replace(status)
            } else {
                Decision::PassHeadThenOpaque
            };
        }
        let is_head = self
            .heads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
            .unwrap_or(false);
        if is_head
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            return Decision::Pass(len);
        }
        match (info.chunked, info.content_length) {
            (false, Some(body)) => Decision::Pass(len + body),
            _ => Decision::PassHeadThenOpaque,
        }
    }

    /// The renderer's answer for `status`, as bytes on the wire.
    fn replacement(&self, status: StatusCode) -> Vec<u8> {
        to_wire((self.renderer)(Rejection::Malformed(status)))
    }

    /// Acts on a complete head of `len` bytes at the start of the output: `Some(len)` when it
    /// was swallowed (replaced), `None` when it passes through (the state says how far).
    fn on_head(&mut self, head: &[u8]) -> Option<usize> {
        match self.decide(head) {
            Decision::Pass(total) => {
                self.out = Out::Through {
                    left: total,
                    then_opaque: false,
                };
                None
            }
            Decision::PassHeadThenOpaque => {
                self.out = Out::Through {
                    left: head.len() as u64,
                    then_opaque: true,
                };
                None
            }
            Decision::Replace(status) => {
                tracing::debug!(%status, "replacing hyper's answer to an unparsable request");
                self.pending = self.replacement(status);
                self.pending_at = 0;
                self.out = Out::Opaque;
                Some(head.len())
            }
        }
    }

    /// Takes `buf` into a head that arrives in pieces; returns how much of it was used.
    fn accumulate(&mut self, buf: &[u8]) -> usize {
        let Out::Head(acc) = &mut self.out else {
            return 0;
        };
        let before = acc.len();
        acc.extend_from_slice(buf);
        let Some(len) = head_len(acc) else {
            if acc.len() >= MAX_HEAD {
                self.pending = std::mem::take(acc);
                self.pending_at = 0;
                self.out = Out::Opaque;
            }
            return buf.len();
        };
        acc.truncate(len);
        let head = std::mem::take(acc);
        match self.on_head(&head) {
            Some(_) => {}
            None => {
                // The head is written from `pending`; only the rest passes through.
                if let Out::Through { left, .. } = &mut self.out {
                    *left -= len as u64;
                }
                self.pending = head;
                self.pending_at = 0;
            }
        }
        len - before
    }
}

/// One of the edge's own answers as bytes on the wire (HTTP/1.1): its `Content-Length` set
/// to its body's and `Connection: close`, whatever the renderer put there (the edge closes
/// the connection after each of them).
pub(crate) fn to_wire(res: http::Response<bytes::Bytes>) -> Vec<u8> {
    let (parts, body) = res.into_parts();
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\n",
            parts.status.as_u16(),
            parts.status.canonical_reason().unwrap_or("Error")
        )
        .as_bytes(),
    );
    for (name, value) in &parts.headers {
        if name == http::header::CONTENT_LENGTH || name == http::header::CONNECTION {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&body);
    out
}

/// The length of the head at the start of `buf` (through the blank line), if complete.
fn head_len(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// What the rewrite needs from a response head, read in one pass.
struct HeadInfo {
    status: StatusCode,
    /// Carries the service's marker header.
    marked: bool,
    chunked: bool,
    content_length: Option<u64>,
}

impl HeadInfo {
    fn scan(head: &[u8], marker: &str) -> Option<Self> {
        let mut lines = head.split(|&b| b == b'\n');
        let status = lines
            .next()?
            .strip_prefix(b"HTTP/1.")
            .and_then(|rest| rest.get(2..5))
            .and_then(|code| std::str::from_utf8(code).ok())
            .and_then(|code| code.parse::<u16>().ok())
            .and_then(|code| StatusCode::from_u16(code).ok())?;
        let mut info = Self {
            status,
            marked: false,
            chunked: false,
            content_length: None,
        };
        for line in lines {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
            if name.eq_ignore_ascii_case(marker.as_bytes()) {
                info.marked = true;
            } else if name.eq_ignore_ascii_case(b"content-length") {
                info.content_length = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                info.chunked = true;
            }
        }
        Some(info)
    }
}

impl<T: Write + Unpin> Rewrite<T> {
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.pending_at < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.pending_at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending_at += n;
        }
        self.pending.clear();
        self.pending_at = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: Read + Unpin> Read for Rewrite<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for Rewrite<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        loop {
            match &mut this.out {
                Out::Opaque => return Pin::new(&mut this.inner).poll_write(cx, buf),
                Out::Through {
                    left: 0,
                    then_opaque,
                } => {
                    this.out = if *then_opaque {
                        Out::Opaque
                    } else {
                        Out::Head(Vec::new())
                    };
                }
                Out::Through { left, .. } => {
                    let k = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &buf[..k]))?;
                    *left -= n as u64;
                    return Poll::Ready(Ok(n));
                }
                Out::Head(acc) if acc.is_empty() => {
                    let window = &buf[..buf.len().min(MAX_HEAD)];
                    match head_len(window) {
                        Some(len) => {
                            if let Some(swallowed) = this.on_head(&buf[..len]) {
                                return Poll::Ready(Ok(swallowed));
                            }
                        }
                        None if buf.len() >= MAX_HEAD => this.out = Out::Opaque,
                        None => return Poll::Ready(Ok(this.accumulate(buf))),
                    }
                }
                Out::Head(_) => return Poll::Ready(Ok(this.accumulate(buf))),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        loop {
            match &mut this.out {
                Out::Opaque => return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs),
                Out::Through {
                    left: 0,
                    then_opaque,
                } => {
                    this.out = if *then_opaque {
                        Out::Opaque
                    } else {
                        Out::Head(Vec::new())
                    };
                }
                Out::Through { left, .. } => {
                    // At most `left` bytes, in at most 8 slices.
                    let mut limited = [IoSlice::new(&[]); 8];
                    let mut budget = usize::try_from(*left).unwrap_or(usize::MAX);
                    let mut count = 0;
                    for b in bufs.iter().filter(|b| !b.is_empty()) {
                        if budget == 0 || count == limited.len() {
                            break;
                        }
                        let k = b.len().min(budget);
                        limited[count] = IoSlice::new(&b[..k]);
                        budget -= k;
                        count += 1;
                    }
                    let n = ready!(
                        Pin::new(&mut this.inner).poll_write_vectored(cx, &limited[..count])
                    )?;
                    *left -= n as u64;
                    return Poll::Ready(Ok(n));
                }
                Out::Head(_) => {
                    let Some(first) = bufs.iter().find(|b| !b.is_empty()) else {
                        return Poll::Ready(Ok(0));
                    };
                    let complete = matches!(&this.out, Out::Head(acc) if acc.is_empty())
                        && head_len(&first[..first.len().min(MAX_HEAD)]).is_some();
                    if !complete {
                        return Pin::new(this).poll_write(cx, first);
                    }
                    let len = head_len(first).unwrap_or(0);
                    if let Some(swallowed) = this.on_head(&first[..len]) {
                        return Poll::Ready(Ok(swallowed));
                    }
                }
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use bytes::Bytes;
    use http::Response;

    use super::*;

    /// Output that takes at most `max` bytes per write.
    struct Sink {
        out: Vec<u8>,
        max: usize,
        vectored: bool,
    }

    impl Write for Sink {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.max);
            self.out.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut n = 0;
            for b in bufs {
                let k = b.len().min(self.max - n);
                self.out.extend_from_slice(&b[..k]);
                n += k;
                if n == self.max {
                    break;
                }
            }
            Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            self.vectored
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn renderer() -> Renderer {
        Arc::new(|r| {
            let Rejection::Malformed(status) = r else {
                panic!("{r:?}");
            };
            let mut res = Response::new(Bytes::from_static(b"{\"Type\":\"User\"}"));
            *res.status_mut() = status;
            res.headers_mut()
                .insert("x-amzn-errortype", "ValidationException".parse().unwrap());
            res
        })
    }

    /// Writes `chunks` as hyper would (each until fully taken), then flushes; returns the output.
    fn run(chunks: &[&[u8]], heads: &[bool], max: usize, vectored: bool) -> Vec<u8> {
        let queue: HeadQueue = Arc::new(Mutex::new(heads.iter().copied().collect()));
        let mut io = Rewrite::new(
            Sink {
                out: Vec::new(),
                max,
                vectored,
            },
            queue,
            "x-amzn-requestid",
            renderer(),
        );
        let mut cx = Context::from_waker(Waker::noop());
        for chunk in chunks {
            let mut at = 0;
            while at < chunk.len() {
                let n = if vectored {
                    // Split like hyper's queue: head and body in separate slices.
                    let mid = (chunk.len() - at) / 2;
                    let rest = &chunk[at..];
                    let slices = [IoSlice::new(&rest[..mid]), IoSlice::new(&rest[mid..])];
                    Pin::new(&mut io).poll_write_vectored(&mut cx, &slices)
                } else {
                    Pin::new(&mut io).poll_write(&mut cx, &chunk[at..])
                };
                let Poll::Ready(Ok(n)) = n else {
                    panic!("write failed");
                };
                assert!(n > 0, "no progress");
                at += n;
            }
        }
        assert!(matches!(
            Pin::new(&mut io).poll_flush(&mut cx),
            Poll::Ready(Ok(()))
        ));
        io.inner.out
    }

    const OURS: &[u8] = b"HTTP/1.1 200 OK\r\nx-amzn-requestid: 1\r\ncontent-length: 5\r\n\r\nhello";
    const OURS_HEAD: &[u8] =
        b"HTTP/1.1 200 OK\r\nx-amzn-requestid: 2\r\ncontent-length: 99\r\n\r\n";
    /// A body that looks like a bare error head must not be taken for one.
    const TRICKY: &[u8] = b"HTTP/1.1 200 OK\r\nx-amzn-requestid: 3\r\ncontent-length: 34\r\n\r\nHTTP/1.1 400 Bad Request\r\nx: y\r\n\r\n";
    const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
    const BARE: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";

    fn replaced(out: &[u8]) -> bool {
        let text = String::from_utf8_lossy(out);
        text.ends_with("{\"Type\":\"User\"}")
            && text.contains("x-amzn-errortype: ValidationException")
            && text.contains("connection: close")
    }

    #[test]
    fn service_responses_pass_and_hyper_errors_are_replaced() {
        for (max, vectored) in [
            (usize::MAX, false),
            (7, false),
            (usize::MAX, true),
            (5, true),
        ] {
            let out = run(
                &[OURS, CONTINUE, TRICKY, OURS_HEAD, OURS, BARE],
                &[false, false, true, false],
                max,
                vectored,
            );
            let expected_prefix = [OURS, CONTINUE, TRICKY, OURS_HEAD, OURS].concat();
            assert!(
                out.starts_with(&expected_prefix),
                "{max} {vectored}: {}",
                String::from_utf8_lossy(&out)
            );
            let rest = &out[expected_prefix.len()..];
            assert!(
                rest.starts_with(b"HTTP/1.1 400 Bad Request\r\n"),
                "{}",
                String::from_utf8_lossy(rest)
            );
            assert!(
                replaced(rest),
                "{max} {vectored}: {}",
                String::from_utf8_lossy(rest)
            );
        }
    }

    #[test]
    fn a_head_in_pieces_is_still_recognised() {
        let (a, b) = BARE.split_at(10);
        assert!(replaced(&run(&[a, b], &[], usize::MAX, false)));
        let (a, b) = OURS.split_at(20);
        assert_eq!(run(&[a, b], &[false], usize::MAX, false), OURS);
    }

    #[test]
    fn unframed_output_passes_untouched() {
        let chunked = b"HTTP/1.1 200 OK\r\nx-amzn-requestid: 1\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let out = run(&[chunked, BARE], &[false], usize::MAX, false);
        assert_eq!(out, [&chunked[..], BARE].concat());
    }
}
