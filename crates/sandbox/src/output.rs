//! Standard output and error of an environment, delivered line by line.

use std::future::Future;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use tokio::io::Interest;
use tokio::net::unix::pipe;
use tokio::sync::{Notify, mpsc};

/// Which of the program's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line the environment wrote, without its trailing `\n`.
///
/// Bytes that are not UTF-8 are replaced with U+FFFD. A line longer than the sandbox's
/// `max_line_bytes` is cut into several lines (at a character boundary when possible). A final
/// line without `\n` is delivered when the stream closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    pub stream: Stream,
    pub line: String,
}

/// Splits a byte stream into lines of at most `max` bytes.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    pending: Vec<u8>,
    max: usize,
}

impl LineSplitter {
    pub(crate) fn new(max: usize) -> Self {
        LineSplitter {
            pending: Vec::new(),
            max: max.max(4),
        }
    }

    /// Feeds `data`; appends every completed line to `out`.
    pub(crate) fn push(&mut self, mut data: &[u8], out: &mut Vec<String>) {
        while !data.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(newline) => {
                    self.append(&data[..newline], out);
                    out.push(lossy(&std::mem::take(&mut self.pending)));
                    data = &data[newline + 1..];
                }
                None => {
                    self.append(data, out);
                    data = &[];
                }
            }
        }
    }

    /// The unterminated last line, if any.
    pub(crate) fn finish(&mut self) -> Option<String> {
        (!self.pending.is_empty()).then(|| lossy(&std::mem::take(&mut self.pending)))
    }

    /// Appends bytes that contain no newline, emitting full-length pieces as lines.
    fn append(&mut self, mut data: &[u8], out: &mut Vec<String>) {
        while self.pending.len() + data.len() > self.max {
            let room = self.max - self.pending.len();
            self.pending.extend_from_slice(&data[..room]);
            data = &data[room..];
            let cut = char_boundary(&self.pending);
            let rest = self.pending.split_off(cut);
            out.push(lossy(&self.pending));
            self.pending = rest;
        }
        self.pending.extend_from_slice(data);
    }
}

/// The largest length `<= bytes.len()` that does not split a UTF-8 sequence at the end,
/// never less than `bytes.len() - 3` (invalid data is cut anywhere).
fn char_boundary(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for back in 0..4.min(len) {
        let i = len - back;
        if i == 0 {
            break;
        }
        let b = bytes[i - 1];
        let start = if b & 0x80 == 0 {
            // ASCII: a complete character ends here.
            return i;
        } else if b & 0xC0 == 0xC0 {
            // The lead byte of a sequence that starts at i - 1.
            i - 1
        } else {
            continue;
        };
        let need = match bytes[start] {
            b if b >= 0xF0 => 4,
            b if b >= 0xE0 => 3,
            _ => 2,
        };
        return if len - start >= need {
            len
        } else {
            start.max(1)
        };
    }
    len
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// How far the environment's output has got, shared by its pumps, its [`Output`] receiver and
/// [`Environment::output_settled`](crate::Environment::output_settled).
#[derive(Debug)]
pub(crate) struct Progress {
    /// Lines the pumps sent into the channel.
    sent: AtomicU64,
    /// Lines the receiver's holder is done with: every line handed out before its latest call.
    done: AtomicU64,
    /// Per stream (stdout, stderr): bytes taken from the pipe.
    taken: [AtomicU64; 2],
    /// Per stream: odd while the pump is reading (its `read` and the count of what it took are
    /// one step for [`written_so_far`]).
    reading: [AtomicU64; 2],
    /// Per stream: bytes taken from the pipe whose complete lines were sent.
    delivered: [AtomicU64; 2],
    /// Per stream: the pump reached the end of the pipe (or gave up on it).
    closed: [AtomicBool; 2],
    /// Woken whenever one of the above moved while someone may be waiting.
    moved: Notify,
}

impl Progress {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Progress {
            sent: AtomicU64::new(0),
            done: AtomicU64::new(0),
            taken: [AtomicU64::new(0), AtomicU64::new(0)],
            reading: [AtomicU64::new(0), AtomicU64::new(0)],
            delivered: [AtomicU64::new(0), AtomicU64::new(0)],
            closed: [AtomicBool::new(false), AtomicBool::new(false)],
            moved: Notify::new(),
        })
    }

    fn all_lines_done(&self) -> bool {
        self.done.load(Ordering::Acquire) >= self.sent.load(Ordering::Acquire)
    }
}

fn index(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

/// The environment's output, line by line (stdout and stderr interleaved as they arrive): a
/// bounded channel's receiving end that also tells the environment what its holder is done
/// with. A line counts as handled once the holder asks for the next one (or drops this), so
/// [`Environment::output_settled`](crate::Environment::output_settled) can wait until every
/// line printed before a point has been dealt with.
#[derive(Debug)]
pub struct Output {
    lines: mpsc::Receiver<OutputLine>,
    progress: Arc<Progress>,
    handed: u64,
}

impl Output {
    pub(crate) fn new(lines: mpsc::Receiver<OutputLine>, progress: Arc<Progress>) -> Self {
        Output {
            lines,
            progress,
            handed: 0,
        }
    }

    /// The next line; `None` once every process that held the pipes is gone and all lines were
    /// delivered. Marks every line received before as handled.
    pub async fn recv(&mut self) -> Option<OutputLine> {
        self.handled_so_far();
        let line = self.lines.recv().await;
        self.handed += u64::from(line.is_some());
        line
    }

    /// The next line if one is waiting. Marks every line received before as handled.
    pub fn try_recv(&mut self) -> Result<OutputLine, mpsc::error::TryRecvError> {
        self.handled_so_far();
        let line = self.lines.try_recv();
        self.handed += u64::from(line.is_ok());
        line
    }

    fn handled_so_far(&self) {
        if self.progress.done.load(Ordering::Relaxed) != self.handed {
            self.progress.done.store(self.handed, Ordering::Release);
            self.progress.moved.notify_waiters();
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        // Nobody will handle further lines: the pumps drop them, and nothing waits for them.
        self.progress.done.store(u64::MAX, Ordering::Release);
        self.progress.moved.notify_waiters();
    }
}

/// The read ends of an environment's output pipes, kept to tell whether output is pending.
#[derive(Debug, Default)]
pub(crate) struct Sources {
    pipes: Vec<(Stream, Arc<pipe::Receiver>)>,
}

impl Sources {
    pub(crate) fn push(&mut self, stream: Stream, pipe: Arc<pipe::Receiver>) {
        self.pipes.push((stream, pipe));
    }

    /// Waits until every byte written into the pipes before the call has been read, split
    /// into lines and handled by the [`Output`]'s holder (or the holder is gone). Costs no
    /// system call when the reactor has seen nothing to read and every line sent was handled:
    /// a runtime's output written before its response reached Kindling is seen by the reactor
    /// no later than the response (one epoll instance reports readiness in the order it
    /// happened). A partial last line (no newline yet) is not waited for.
    pub(crate) async fn settled(&self, progress: &Progress) {
        let pending: Vec<(usize, &pipe::Receiver)> = self
            .pipes
            .iter()
            .map(|(s, p)| (index(*s), &**p))
            .filter(|(i, p)| !progress.closed[*i].load(Ordering::Acquire) && readable_now(p))
            .collect();
        if pending.is_empty() && progress.all_lines_done() {
            return;
        }
        // Everything up to what the pipes hold now.
        let mut targets = Vec::with_capacity(pending.len());
        for (i, pipe) in pending {
            targets.push((i, written_so_far(pipe, progress, i).await));
        }
        let mut lines_to_handle = None;
        loop {
            let moved = progress.moved.notified();
            let mut moved = std::pin::pin!(moved);
            moved.as_mut().enable();
            if lines_to_handle.is_none()
                && targets.iter().all(|(i, target)| {
                    progress.closed[*i].load(Ordering::Acquire)
                        || progress.delivered[*i].load(Ordering::Acquire) >= *target
                })
            {
                lines_to_handle = Some(progress.sent.load(Ordering::Acquire));
            }
            if let Some(sent) = lines_to_handle
                && progress.done.load(Ordering::Acquire) >= sent
            {
                return;
            }
            moved.await;
        }
    }
}

/// Bytes written into stream `i`'s pipe so far: what its pump took plus what the pipe holds,
/// read with no read of the pump's in progress or in between (a count that mixed a read with a
/// pipe that no longer held its bytes would miss them, or count them twice).
async fn written_so_far(pipe: &pipe::Receiver, progress: &Progress, i: usize) -> u64 {
    loop {
        let before = progress.reading[i].load(Ordering::Acquire);
        if before.is_multiple_of(2) {
            let taken = progress.taken[i].load(Ordering::Acquire);
            let unread = crate::sys::pipe::unread_bytes(pipe.as_fd()).unwrap_or(0) as u64;
            if progress.reading[i].load(Ordering::Acquire) == before {
                return taken + unread;
            }
        }
        tokio::task::yield_now().await;
    }
}

/// Whether the reactor has seen the pipe readable (or closed) and its reader has not yet read
/// it empty. No system call: one poll of a readiness future.
fn readable_now(pipe: &pipe::Receiver) -> bool {
    let ready = pipe.ready(Interest::READABLE);
    let ready = std::pin::pin!(ready);
    let mut cx = Context::from_waker(Waker::noop());
    matches!(ready.poll(&mut cx), Poll::Ready(_))
}

/// Reads one output pipe to its end, sending each line. When the receiver is gone the pipe is
/// still drained (and lines dropped) so the program never blocks on a full pipe.
pub(crate) async fn pump(
    stream: Stream,
    source: Arc<pipe::Receiver>,
    sink: mpsc::Sender<OutputLine>,
    max_line_bytes: usize,
    progress: Arc<Progress>,
) {
    let i = index(stream);
    let mut sink = Some(sink);
    let mut splitter = LineSplitter::new(max_line_bytes);
    let mut buf = vec![0u8; 16 * 1024];
    let mut lines = Vec::new();
    'pipe: loop {
        if let Err(e) = source.readable().await {
            tracing::debug!(?stream, error = %e, "waiting for environment output failed");
            break;
        }
        loop {
            progress.reading[i].fetch_add(1, Ordering::AcqRel);
            let read = source.try_read(&mut buf);
            if let Ok(n) = read {
                progress.taken[i].fetch_add(n as u64, Ordering::AcqRel);
            }
            progress.reading[i].fetch_add(1, Ordering::AcqRel);
            let n = match read {
                Ok(0) => break 'pipe,
                Ok(n) => n,
                // Read empty: the reactor's readiness is cleared; tell waiters.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!(?stream, error = %e, "reading environment output failed");
                    break 'pipe;
                }
            };
            splitter.push(&buf[..n], &mut lines);
            for line in lines.drain(..) {
                send(&mut sink, OutputLine { stream, line }, &progress).await;
            }
            progress.delivered[i].fetch_add(n as u64, Ordering::AcqRel);
        }
        progress.moved.notify_waiters();
    }
    if let Some(line) = splitter.finish() {
        send(&mut sink, OutputLine { stream, line }, &progress).await;
    }
    progress.closed[i].store(true, Ordering::Release);
    progress.moved.notify_waiters();
}

async fn send(sink: &mut Option<mpsc::Sender<OutputLine>>, line: OutputLine, progress: &Progress) {
    if let Some(tx) = sink {
        // Counted before it is queued, so a count taken by `settled` covers every queued line.
        progress.sent.fetch_add(1, Ordering::AcqRel);
        if tx.send(line).await.is_err() {
            *sink = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(max: usize, chunks: &[&[u8]]) -> Vec<String> {
        let mut splitter = LineSplitter::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            splitter.push(chunk, &mut out);
        }
        out.extend(splitter.finish());
        out
    }

    #[test]
    fn splits_on_newlines_across_chunks() {
        assert_eq!(
            split(100, &[b"hel", b"lo\nwor", b"ld\n"]),
            ["hello", "world"]
        );
        assert_eq!(split(100, &[b"a\n\nb"]), ["a", "", "b"]);
        assert_eq!(split(100, &[b"\r\n"]), ["\r"]);
        assert!(split(100, &[b""]).is_empty());
    }

    #[test]
    fn unterminated_last_line_is_delivered() {
        assert_eq!(split(100, &[b"one\ntwo"]), ["one", "two"]);
    }

    #[test]
    fn long_lines_are_cut_at_the_limit() {
        assert_eq!(split(4, &[b"abcdefghij\n"]), ["abcd", "efgh", "ij"]);
        assert_eq!(split(4, &[b"ab", b"cd", b"ef\n"]), ["abcd", "ef"]);
        assert_eq!(split(4, &[b"abcd\n"]), ["abcd"]);
    }

    #[test]
    fn cuts_do_not_split_characters() {
        // "aé" is 3 bytes; with "bé" appended the 4-byte cut would land inside the second "é".
        let text = "aébé\n";
        let lines = split(4, &[text.as_bytes()]);
        assert_eq!(lines.concat(), "aébé");
        assert!(lines.iter().all(|l| !l.contains('\u{FFFD}')), "{lines:?}");
        let emoji = "😀😀😀\n";
        let lines = split(6, &[emoji.as_bytes()]);
        assert_eq!(lines.concat(), "😀😀😀");
        assert!(lines.iter().all(|l| !l.contains('\u{FFFD}')), "{lines:?}");
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(split(100, &[b"a\xffb\n"]), ["a\u{FFFD}b"]);
        // Continuation bytes only: cut anyway rather than loop.
        let lines = split(4, &[&[0x80; 10]]);
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn boundary_helper() {
        assert_eq!(char_boundary(b"abcd"), 4);
        assert_eq!(char_boundary("aé".as_bytes()), 3);
        assert_eq!(char_boundary(&"aé".as_bytes()[..2]), 1);
        assert_eq!(char_boundary(&"😀".as_bytes()[..3]), 1);
        assert_eq!(char_boundary(&[0x80, 0x80, 0x80, 0x80, 0x80]), 5);
    }
}
