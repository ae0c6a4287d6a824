//! Reading stored log streams: one event per line, `<ISO-8601 UTC>\t<message>`.

use std::fs::{self, File};
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::UNIX_EPOCH;

/// One event of a stream, with its position (line index) in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub index: usize,
    pub timestamp: i64,
    pub message: String,
}

/// What DescribeLogStreams shows of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    pub name: String,
    pub creation_time: i64,
    pub first_event: Option<i64>,
    pub last_event: Option<i64>,
    pub last_ingestion: i64,
    pub stored_bytes: u64,
}

/// Calls `f` with every complete line of the stream file as an event, in order, until it
/// returns `false` (a partial last line is left for the next read). The file is read a line
/// at a time: memory is one event, however large the stream (reading it whole cost each
/// GetLogEvents twice the stream's size). A line without a readable timestamp takes the
/// previous event's.
pub fn each_event(path: &Path, mut f: impl FnMut(Event) -> bool) -> io::Result<()> {
    each_event_from(path, Position::default(), |e, _| f(e)).map(|_| ())
}

/// Where a read of a stream file stopped: the next line's byte offset and index, and the
/// timestamp a line without one takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    pub offset: u64,
    pub index: usize,
    pub last_ts: i64,
}

/// [`each_event`] from `from` (a position an earlier read returned); `f` also gets the line's
/// size in bytes. Returns the position after the last event given to `f`.
pub fn each_event_from(
    path: &Path,
    from: Position,
    f: impl FnMut(Event, u64) -> bool,
) -> io::Result<Position> {
    each_event_in(&File::open(path)?, from, f)
}

/// The most bytes of an event's message (as the answers count it: UTF-8, after invalid bytes
/// were replaced): a longer one is cut at a character boundary and ends with [`CUT_MARK`]
/// (no more than this in all), and the line after it is read next. Kindling's writers make
/// no such lines (function output is cut into lines of 256 KiB, PutLogEvents takes a message
/// of at most this many bytes, its line's timestamp apart): this bounds what a reader holds
/// and keeps any event within one page of GetLogEvents and FilterLogEvents (1 MiB with 26
/// bytes per event) and one update of live tail, so a stream never stops at a line too long
/// to answer.
pub const MAX_LINE_BYTES: usize = 1024 * 1024 - 26;
/// Ends the message of a line cut at [`MAX_LINE_BYTES`].
pub const CUT_MARK: &str = " [truncated by Kindling]";
/// Bytes of a line read beyond [`MAX_LINE_BYTES`]: room for its timestamp and tab (25 bytes
/// as Kindling writes them), which do not count against the message.
const PREFIX_ROOM: usize = 64;

/// Reads one line into `line`, at most [`MAX_LINE_BYTES`] and [`PREFIX_ROOM`] of it (the
/// rest is skipped, never held), without its newline. Returns its size in the file, whether
/// it is complete (ends with a newline) and whether it was cut.
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<(u64, bool, bool)> {
    let keep = MAX_LINE_BYTES + PREFIX_ROOM;
    let (mut size, mut cut) = (0u64, false);
    loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok((size, false, cut));
        }
        let newline = buf.iter().position(|&b| b == b'\n');
        let (content, used) = match newline {
            Some(i) => (&buf[..i], i + 1),
            None => (buf, buf.len()),
        };
        let take = content.len().min(keep.saturating_sub(line.len()));
        cut |= take < content.len();
        line.extend_from_slice(&content[..take]);
        reader.consume(used);
        size += used as u64;
        if newline.is_some() {
            return Ok((size, true, cut));
        }
    }
}

/// [`each_event_from`] in a file already open.
pub fn each_event_in(
    file: &File,
    from: Position,
    mut f: impl FnMut(Event, u64) -> bool,
) -> io::Result<Position> {
    let mut reader = io::BufReader::new(file);
    reader.seek(SeekFrom::Start(from.offset))?;
    let mut line = Vec::new();
    let mut at = from;
    loop {
        line.clear();
        let (size, complete, cut) = read_line(&mut reader, &mut line)?;
        if !complete {
            break;
        }
        if !cut && line.last() == Some(&b'\r') {
            line.pop();
        }
        let mut e = event(at.index, &String::from_utf8_lossy(&line), &mut at.last_ts);
        if cut || e.message.len() > MAX_LINE_BYTES {
            cut_message(&mut e.message);
        }
        at.offset += size;
        at.index += 1;
        if !f(e, size) {
            break;
        }
    }
    Ok(at)
}

/// Cuts a message to at most [`MAX_LINE_BYTES`] with [`CUT_MARK`], at a character boundary.
fn cut_message(message: &mut String) {
    let mut end = message.len().min(MAX_LINE_BYTES - CUT_MARK.len());
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    message.push_str(CUT_MARK);
}

/// Which file a position is in, whatever its name: its device and inode, and its birth time
/// where the file system keeps one (an inode number is given again once its file is deleted).
/// A stream's file keeps its identity when a rotation renames it `<name>-earlier`, so readers
/// that key their place by it go on where they were, not in the new file that took the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
    /// Nanoseconds since the epoch (0 where unknown).
    pub born: u64,
}

impl FileId {
    pub fn of(meta: &fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        let born = meta
            .created()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            born,
        }
    }
}

/// A line's place in a stream: the byte offset where it starts in one file of the stream.
/// It does not change when a rotation renames the file. Places are ordered by the file's
/// birth (a stream's set-aside file was born before the file that took its name), then its
/// identity, then the offset: a stream's lines in the order they were written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Place {
    pub file: FileId,
    pub offset: u64,
}

impl Place {
    fn order(&self) -> (u64, u64, u64, u64) {
        (self.file.born, self.file.dev, self.file.ino, self.offset)
    }
}

impl Ord for Place {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order().cmp(&other.order())
    }
}

impl PartialOrd for Place {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// An open stream file: its identity and length when it was opened.
#[derive(Debug)]
pub struct OpenFile {
    pub file: File,
    pub id: FileId,
    pub len: u64,
}

impl OpenFile {
    /// Opens `path`; `None` when it does not exist.
    pub fn open(path: &Path) -> io::Result<Option<Self>> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        Ok(Some(Self {
            id: FileId::of(&meta),
            len: meta.len(),
            file,
        }))
    }

    /// Whether `offset` is where a line starts (or the file's end).
    pub fn at_line_start(&self, offset: u64) -> io::Result<bool> {
        use std::os::unix::fs::FileExt;
        if offset == 0 {
            return Ok(true);
        }
        if offset > self.len {
            return Ok(false);
        }
        let mut before = [0u8];
        self.file.read_exact_at(&mut before, offset - 1)?;
        Ok(before[0] == b'\n')
    }

    /// Calls `f` with every complete line from byte `from` as an event with its start and end
    /// offsets, in order, until it returns `false` (that event counts as not taken). Returns
    /// the offset after the last event taken. Lines are numbered from 0 at `from`; a line
    /// without a timestamp takes the previous one's (0 for the first).
    pub fn each_event_at(
        &self,
        from: u64,
        mut f: impl FnMut(Event, u64, u64) -> bool,
    ) -> io::Result<u64> {
        // The offset after the last event taken (the line reader's own position also counts
        // the event `f` refused).
        let mut taken = from;
        let start = Position {
            offset: from,
            index: 0,
            last_ts: 0,
        };
        each_event_in(&self.file, start, |e, size| {
            let ok = f(e, taken, taken + size);
            if ok {
                taken += size;
            }
            ok
        })?;
        Ok(taken)
    }
}

/// One line as an event (`last_ts`: the previous event's timestamp, updated).
fn event(index: usize, line: &str, last_ts: &mut i64) -> Event {
    let (timestamp, message) = match line.split_once('\t') {
        Some((ts, msg)) => match parse_iso_ms(ts) {
            Some(ts) => (ts, msg),
            None => (*last_ts, line),
        },
        None => (*last_ts, line),
    };
    *last_ts = timestamp;
    Event {
        index,
        timestamp,
        message: message.to_string(),
    }
}

pub(crate) fn parse(bytes: &[u8]) -> Vec<Event> {
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&bytes[..complete]);
    let mut last_ts = 0;
    text.lines()
        .enumerate()
        .map(|(index, line)| event(index, line, &mut last_ts))
        .collect()
}

/// The figures of a stream file, reading only its first line and its last 64 KiB.
pub fn stream_info(name: String, path: &Path) -> io::Result<StreamInfo> {
    stream_info_of(name, &File::open(path)?)
}

/// [`stream_info`] of a file already open.
pub fn stream_info_of(name: String, mut file: &File) -> io::Result<StreamInfo> {
    let meta = file.metadata()?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64);
    file.seek(SeekFrom::Start(0))?;
    let mut head = vec![0u8; 64.min(meta.len() as usize)];
    file.read_exact(&mut head)?;
    let first_event = head
        .iter()
        .position(|&b| b == b'\t')
        .and_then(|i| parse_iso_ms(std::str::from_utf8(&head[..i]).ok()?));
    let tail_len = meta.len().min(64 * 1024);
    file.seek(SeekFrom::Start(meta.len() - tail_len))?;
    let mut tail = Vec::with_capacity(tail_len as usize);
    file.take(tail_len).read_to_end(&mut tail)?;
    let last_event = parse(&tail)
        .iter()
        .rev()
        .find(|e| e.timestamp > 0)
        .map(|e| e.timestamp);
    let created = meta
        .created()
        .ok()
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64);
    Ok(StreamInfo {
        name,
        creation_time: first_event.or(created).unwrap_or(modified),
        first_event,
        last_event,
        last_ingestion: modified,
        stored_bytes: meta.len(),
    })
}

/// `YYYY-MM-DDThh:mm:ss.sssZ` (or without the fraction) → milliseconds since the epoch.
pub fn parse_iso_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !s.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let millis = match &s[19..s.len() - 1] {
        "" => 0,
        f => {
            let digits = f.strip_prefix('.')?;
            let padded: String = digits.chars().chain("000".chars()).take(3).collect();
            padded.parse().ok()?
        }
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) * 1000) + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use kindling_model::timefmt::iso8601_z;

    #[test]
    fn timestamps_round_trip() {
        for ms in [0, 1_586_545_592_563, 1_700_000_000_001, 951_782_400_000] {
            assert_eq!(parse_iso_ms(&iso8601_z(ms)), Some(ms));
        }
        assert_eq!(
            parse_iso_ms("2020-04-10T19:06:32Z"),
            Some(1_586_545_592_000)
        );
        assert_eq!(parse_iso_ms("garbage"), None);
    }

    #[test]
    fn lines_become_events_and_partial_lines_wait() {
        let text = "2020-04-10T19:06:32.563Z\tSTART x\nstray\n2020-04-10T19:06:33.000Z\tEND x\n2020-04-10T19:06:34";
        let ev = parse(text.as_bytes());
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].timestamp, 1_586_545_592_563);
        assert_eq!(ev[0].message, "START x");
        assert_eq!(
            (ev[1].timestamp, ev[1].message.as_str()),
            (1_586_545_592_563, "stray")
        );
        assert_eq!(ev[2].index, 2);
    }

    #[test]
    fn events_are_read_a_line_at_a_time_as_parse_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.log");
        let text = "2020-04-10T19:06:32.563Z\tSTART x\r\nstray \u{e9}\n\n2020-04-10T19:06:33.000Z\tEND x\n2020-04-10T19:06:34";
        fs::write(&p, text).unwrap();
        let mut read = Vec::new();
        each_event(&p, |e| {
            read.push(e);
            true
        })
        .unwrap();
        assert_eq!(read, parse(text.as_bytes()));
        assert_eq!(read.len(), 4);
        assert_eq!(read[0].message, "START x");
        // The reader stops when asked.
        let mut seen = 0;
        each_event(&p, |_| {
            seen += 1;
            seen < 2
        })
        .unwrap();
        assert_eq!(seen, 2);
    }

    #[test]
    fn a_line_too_long_for_an_event_is_cut_and_reading_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.log");
        let long = "z".repeat(MAX_LINE_BYTES + 10);
        let text = format!("2020-04-10T19:06:32.563Z\t{long}\r\n2020-04-10T19:06:33.000Z\tafter\n");
        fs::write(&p, &text).unwrap();
        let mut read = Vec::new();
        let end = each_event_from(&p, Position::default(), |e, size| {
            read.push((e, size));
            true
        })
        .unwrap();
        assert_eq!(end.offset, text.len() as u64);
        assert_eq!(read.len(), 2);
        let (cut, size) = &read[0];
        assert_eq!(*size as usize, 25 + long.len() + 2);
        assert_eq!(cut.timestamp, 1_586_545_592_563);
        assert!(cut.message.starts_with("zzz") && cut.message.ends_with(CUT_MARK));
        assert!(cut.message.len() <= MAX_LINE_BYTES, "{}", cut.message.len());
        assert_eq!(read[1].0.message, "after");
    }

    #[test]
    fn a_cut_or_grown_message_always_fits_an_event() {
        // Invalid UTF-8 grows threefold when replaced (U+FFFD): a line cut on its bytes, or
        // one short enough not to be cut, can still come out longer than an event may be.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.log");
        let mut text = b"2020-04-10T19:06:32.563Z\t".to_vec();
        text.extend(std::iter::repeat_n(0xffu8, MAX_LINE_BYTES + 10));
        text.extend(b"\n2020-04-10T19:06:32.564Z\t");
        text.extend(std::iter::repeat_n(0xffu8, MAX_LINE_BYTES / 2));
        text.extend(b"\n2020-04-10T19:06:33.000Z\tafter\n");
        fs::write(&p, &text).unwrap();
        let mut read = Vec::new();
        each_event(&p, |e| {
            read.push(e);
            true
        })
        .unwrap();
        assert_eq!(read.len(), 3);
        for e in &read[..2] {
            assert!(e.message.len() <= MAX_LINE_BYTES, "{}", e.message.len());
            assert!(e.message.starts_with('\u{fffd}') && e.message.ends_with(CUT_MARK));
        }
        assert_eq!(read[2].message, "after");
    }

    #[test]
    fn the_longest_message_put_log_events_takes_is_not_cut() {
        // PutLogEvents takes a message of 1 MiB less 26 bytes: the line's timestamp does not
        // count against it.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.log");
        let longest = "y".repeat(MAX_LINE_BYTES);
        fs::write(&p, format!("2020-04-10T19:06:32.563Z\t{longest}\n")).unwrap();
        let mut read = Vec::new();
        each_event(&p, |e| {
            read.push(e);
            true
        })
        .unwrap();
        assert_eq!(read.len(), 1);
        assert!(read[0].message == longest, "{}", read[0].message.len());
        // One byte more is cut.
        fs::write(&p, format!("2020-04-10T19:06:32.563Z\t{longest}y\n")).unwrap();
        read.clear();
        each_event(&p, |e| {
            read.push(e);
            true
        })
        .unwrap();
        assert!(read[0].message.ends_with(CUT_MARK));
        assert!(read[0].message.len() <= MAX_LINE_BYTES);
    }

    #[test]
    fn places_are_ordered_by_their_file_s_birth_before_its_inode() {
        // A rotation's new file can get a lower inode number than the file it set aside (a
        // freed one): the set-aside file, born first, still comes first.
        let file = |born, ino| FileId { dev: 1, ino, born };
        let set_aside = Place {
            file: file(100, 900),
            offset: 5000,
        };
        let new = Place {
            file: file(200, 3),
            offset: 0,
        };
        assert!(set_aside < new);
        let mut places = vec![new, set_aside];
        places.sort();
        assert_eq!(places, [set_aside, new]);
    }

    #[test]
    fn stream_info_reads_first_and_last_events() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.log");
        fs::write(
            &p,
            "2020-04-10T19:06:32.563Z\ta\n2020-04-10T19:06:40.000Z\tb\n",
        )
        .unwrap();
        let info = stream_info("s".into(), &p).unwrap();
        assert_eq!(info.first_event, Some(1_586_545_592_563));
        assert_eq!(info.last_event, Some(1_586_545_600_000));
        assert_eq!(info.creation_time, 1_586_545_592_563);
    }
}
