//! Standard output and error of an environment, delivered line by line.

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::mpsc;

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

/// Reads one output pipe to its end, sending each line. When the receiver is gone the pipe is
/// still drained (and lines dropped) so the program never blocks on a full pipe.
pub(crate) async fn pump(
    stream: Stream,
    mut source: pipe::Receiver,
    sink: mpsc::Sender<OutputLine>,
    max_line_bytes: usize,
) {
    let mut sink = Some(sink);
    let mut splitter = LineSplitter::new(max_line_bytes);
    let mut buf = vec![0u8; 16 * 1024];
    let mut lines = Vec::new();
    loop {
        let n = match source.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::debug!(?stream, error = %e, "reading environment output failed");
                break;
            }
        };
        splitter.push(&buf[..n], &mut lines);
        for line in lines.drain(..) {
            send(&mut sink, OutputLine { stream, line }).await;
        }
    }
    if let Some(line) = splitter.finish() {
        send(&mut sink, OutputLine { stream, line }).await;
    }
}

async fn send(sink: &mut Option<mpsc::Sender<OutputLine>>, line: OutputLine) {
    if let Some(tx) = sink
        && tx.send(line).await.is_err()
    {
        *sink = None;
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
