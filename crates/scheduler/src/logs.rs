//! Function logs: one stream per execution environment, stored as files under the log
//! directory (`<function>/<YYYY>/<MM>/<DD>/[<version>]<id>.log` for the default group
//! `/aws/lambda/<function>`, other groups as [`layout`] says), one line per event with its
//! timestamp; plus the START/END/REPORT platform lines and the per-invocation tail. Old streams
//! are deleted by [`retention`], never while they are open for writing.

mod format;
pub mod layout;
mod retention;

use std::borrow::Cow;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kindling_model::timefmt::{iso8601_z, iso8601_z_bytes};
use kindling_runtime_api::telemetry::{self, Kind, Platform, Telemetry};

pub use format::{Level, LogFormat};
use layout::earlier_file;
pub use retention::{LogRetention, RetentionOverrides, RetentionTask, SweepReport};

/// Size of the `X-Amz-Log-Result` tail.
pub const TAIL_BYTES: usize = 4096;

/// How long lines given to [`LogStream::flush_soon`] may wait in the stream's buffer before
/// they are written. Readers through [`LogStore::flush_pending`] (the Logs API, live tail)
/// see them at once; a reader of the file itself within this bound.
pub const FLUSH_DELAY: Duration = Duration::from_millis(5);

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `YYYY/MM/DD/[<version>]<32 hex>`.
pub fn log_stream_name(epoch_ms: i64, version: &str, env_id_hex: &str) -> String {
    let date = iso8601_z(epoch_ms);
    format!(
        "{}/{}/{}/[{version}]{env_id_hex}",
        &date[0..4],
        &date[5..7],
        &date[8..10]
    )
}

/// Paths of the streams open for writing. Its lock also orders creating a stream's directories
/// and file against retention removing files and emptied directories.
type OpenStreams = Arc<Mutex<HashSet<PathBuf>>>;

/// Streams with lines waiting for a deferred write ([`LogStream::flush_soon`]): one write
/// per stream per [`FLUSH_DELAY`] instead of one per invocation on the warm path.
#[derive(Debug, Default)]
struct Deferred {
    pending: Mutex<Vec<Weak<LogStream>>>,
}

impl Deferred {
    fn pending(&self) -> MutexGuard<'_, Vec<Weak<LogStream>>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `stream` (not queued yet); the first stream queued after a write-out arms the
    /// next one, [`FLUSH_DELAY`] later on the async runtime (at once without one).
    fn queue(self: &Arc<Self>, stream: &Arc<LogStream>) {
        let first = {
            let mut pending = self.pending();
            pending.push(Arc::downgrade(stream));
            pending.len() == 1
        };
        if !first {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let deferred = Arc::clone(self);
                runtime.spawn(async move {
                    tokio::time::sleep(FLUSH_DELAY).await;
                    deferred.flush_all();
                });
            }
            Err(_) => self.flush_all(),
        }
    }

    /// Writes every queued stream's buffered lines now.
    fn flush_all(&self) {
        let streams = std::mem::take(&mut *self.pending());
        for stream in streams.iter().filter_map(Weak::upgrade) {
            // Lines added from here on queue the stream again.
            stream.queued.store(false, Ordering::Release);
            stream.flush();
        }
    }
}

/// The root of stored logs. Clones share the set of open streams.
#[derive(Debug, Clone)]
pub struct LogStore {
    root: PathBuf,
    /// Bytes one file of an environment's stream takes before the stream starts a new one
    /// (`None`: no limit); see [`LogStore::with_max_stream_bytes`].
    max_stream_bytes: Option<u64>,
    open: OpenStreams,
    deferred: Arc<Deferred>,
}

impl LogStore {
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            max_stream_bytes: None,
            open: OpenStreams::default(),
            deferred: Arc::default(),
        }
    }

    /// Writes out the lines of every stream whose write was deferred
    /// ([`LogStream::flush_soon`]): readers call it first, so they see every line logged
    /// before their request.
    pub fn flush_pending(&self) {
        self.deferred.flush_all();
    }

    pub fn function_dir(&self, function: &str) -> PathBuf {
        self.root.join(function)
    }

    /// Bounds the disk an environment's stream takes, however long it lives and however much
    /// it writes: once the stream's file holds `max` bytes it becomes the stream
    /// `<name>-earlier` (replacing the one before, if any), which retention may delete, and
    /// the environment goes on writing into a new file of its own name. A stream thus takes
    /// at most twice `max` (plus one line) while it is open, and keeps its newest lines.
    pub fn with_max_stream_bytes(mut self, max: Option<u64>) -> Self {
        self.max_stream_bytes = max;
        self
    }

    /// The root directory of every group.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a log group's streams ([`layout`]).
    pub fn group_dir(&self, group: &str) -> PathBuf {
        layout::group_dir(&self.root, group)
    }

    /// Creates a group's directory if missing (CloudWatch Logs' `CreateLogGroup`).
    pub fn create_group(&self, group: &str) -> io::Result<PathBuf> {
        let _open = self.open_streams();
        layout::create_group_dir(&self.root, group)
    }

    /// Every group with a directory: `(name, directory)`.
    pub fn groups(&self) -> io::Result<Vec<(String, PathBuf)>> {
        layout::list_groups(&self.root)
    }

    /// Every stream file of a group, in no particular order.
    pub fn group_streams(&self, group: &str) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        collect(&self.group_dir(group), &mut out)?;
        Ok(out)
    }

    /// Whether a stream file is open for writing by an environment.
    pub fn is_open(&self, path: &Path) -> bool {
        self.open_streams().contains(path)
    }

    /// Deletes a group's streams that are not open for writing and, if none is left, its
    /// directory; returns whether the group is gone.
    pub fn delete_group(&self, group: &str) -> io::Result<bool> {
        let dir = self.group_dir(group);
        let open = self.open_streams();
        let mut files = Vec::new();
        collect(&dir, &mut files)?;
        let mut kept = false;
        for f in files {
            if open.contains(&f) {
                kept = true;
                continue;
            }
            match fs::remove_file(&f) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if !kept {
            match fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(!kept)
    }

    /// Appends events to a stream written through the Logs API (`PutLogEvents`), creating it
    /// when missing; `None` when the stream name cannot be a file name.
    pub fn append_events(
        &self,
        group: &str,
        stream: &str,
        events: &[(i64, String)],
    ) -> io::Result<Option<PathBuf>> {
        let open = self.open_streams();
        let dir = layout::create_group_dir(&self.root, group)?;
        let Some(path) = layout::stream_file(&dir, stream) else {
            return Ok(None);
        };
        if open.contains(&path) {
            // An environment's stream: its own writer owns the file.
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "the stream is being written by an execution environment",
            ));
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        let mut buf = Vec::new();
        for (ts, message) in events {
            for line in message.split('\n') {
                buf.extend_from_slice(iso8601_z(*ts).as_bytes());
                buf.push(b'\t');
                buf.extend_from_slice(line.as_bytes());
                buf.push(b'\n');
            }
        }
        file.write_all(&buf)?;
        Ok(Some(path))
    }

    fn open_streams(&self) -> MutexGuard<'_, HashSet<PathBuf>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens (creating) the file of one log stream of `group`; retention leaves it alone until
    /// the returned stream is dropped.
    pub(crate) fn open_stream(&self, group: &str, stream: &str) -> io::Result<LogStream> {
        let mut open = self.open_streams();
        let dir = layout::create_group_dir(&self.root, group)?;
        let path = layout::stream_file(&dir, stream)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad log stream name"))?;
        let file = (|| {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            OpenOptions::new().create(true).append(true).open(&path)
        })()?;
        open.insert(path.clone());
        Ok(LogStream {
            inner: Mutex::new(StreamState {
                file: BufWriter::new(file),
                tail: None,
                format: LogFormat::default(),
                telemetry: None,
                written: false,
                size: 0,
                rotation: self.max_stream_bytes.map(|max| Rotation {
                    max,
                    open: Arc::clone(&self.open),
                }),
            }),
            path,
            open: Arc::clone(&self.open),
            deferred: Arc::clone(&self.deferred),
            queued: AtomicBool::new(false),
        })
    }

    /// Every stream file of a function, oldest first by modification time.
    pub fn streams(&self, function: &str) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        collect(&self.function_dir(function), &mut out)?;
        out.sort_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).ok());
        Ok(out)
    }
}

/// The stream files under `dir`, without following symbolic links. Files and directories
/// removed meanwhile (by retention) are skipped.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect(&path, out)?,
            Ok(t) if t.is_file() && path.extension().is_some_and(|e| e == "log") => {
                out.push(path);
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

struct StreamState {
    /// Written out within [`FLUSH_DELAY`] of an invocation's REPORT or a burst of function
    /// output ([`LogStream::flush_soon`]), at once when a line would not fit.
    file: BufWriter<File>,
    /// The current invocation's lines, while one is being recorded.
    tail: Option<Vec<u8>>,
    format: LogFormat,
    /// The environment's Telemetry API hub, once its Runtime API runs.
    telemetry: Option<Arc<Telemetry>>,
    /// A line was written: a stream that ends without one (a start that failed before its
    /// environment ran, e.g. throttled for want of descriptors) leaves no empty file.
    written: bool,
    /// Bytes in the stream's current file.
    size: u64,
    /// Where the file is set aside for a new one (`None`: it grows without limit).
    rotation: Option<Rotation>,
}

/// [`LogStore::with_max_stream_bytes`] for one stream.
struct Rotation {
    max: u64,
    /// The store's open streams: their lock orders the rename and the new file against
    /// retention removing files and emptied directories.
    open: OpenStreams,
}

/// One environment's log stream.
pub(crate) struct LogStream {
    inner: Mutex<StreamState>,
    path: PathBuf,
    open: OpenStreams,
    deferred: Arc<Deferred>,
    /// In `deferred`'s queue (its lines will be written without another call).
    queued: AtomicBool,
}

impl std::fmt::Debug for LogStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStream")
            .field("path", &self.path)
            .finish()
    }
}

impl Drop for LogStream {
    fn drop(&mut self) {
        self.flush();
        let written = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .written;
        if !written && let Err(e) = std::fs::remove_file(&self.path) {
            tracing::debug!(path = %self.path.display(), error = %e, "could not remove an empty log stream");
        }
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.path);
    }
}

impl LogStream {
    /// Sets the function's `LoggingConfig` (Text by default).
    pub fn set_format(&self, format: LogFormat) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .format = format;
    }

    /// Appends one line of the function's output, unless its JSON level is below the
    /// application log level; the line itself goes on to telemetry subscribers (one timestamp
    /// for both).
    pub fn function_line(&self, text: String) {
        let mut s = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if s.format.keeps_function_line(&text) {
            let ms = now_ms();
            Self::write_line(&self.path, &mut s, ms, &text);
            if let Some(t) = &s.telemetry {
                t.function_line(ms, text);
            }
        }
    }

    /// Sends the stream's lines and platform records also to the environment's Telemetry API
    /// subscribers.
    pub fn set_telemetry(&self, telemetry: Arc<Telemetry>) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .telemetry = Some(telemetry);
    }

    /// A platform event: the text line (`text`), or in JSON format its record (dropped below
    /// the system log level); and the record to telemetry subscribers. The record is built
    /// only when one of them takes it.
    pub fn platform(
        &self,
        text: impl FnOnce() -> Option<String>,
        level: Level,
        record: impl FnOnce() -> Platform,
    ) {
        let mut s = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let telemetry = s
            .telemetry
            .as_ref()
            .filter(|t| t.wants(Kind::Platform))
            .cloned();
        let json_line = s.format.json && level >= s.format.system_level;
        let record = (json_line || telemetry.is_some()).then(record);
        let ms = now_ms();
        if !s.format.json {
            if let Some(line) = text() {
                Self::write_line(&self.path, &mut s, ms, &line);
            }
        } else if let (true, Some(r)) = (json_line, &record) {
            let line = s.format.platform_line(ms, r);
            Self::write_line(&self.path, &mut s, ms, &line);
        }
        drop(s);
        if let (Some(t), Some(r)) = (telemetry, record) {
            t.platform(ms, r);
        }
    }

    /// Appends one line (a platform line in either format).
    pub fn line(&self, text: &str) {
        let mut s = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        Self::write_line(&self.path, &mut s, now_ms(), text);
    }

    fn write_line(path: &Path, s: &mut StreamState, ms: i64, text: &str) {
        s.written = true;
        if s.rotation.as_ref().is_some_and(|r| s.size >= r.max)
            && let Err(e) = Self::rotate(path, s)
        {
            tracing::warn!(path = %path.display(), error = %e, "could not start a new log file");
        }
        // The stamp is 24 bytes, then a tab and the newline.
        s.size += text.len() as u64 + 26;
        let written = match iso8601_z_bytes(ms) {
            // A line that fits the stream's buffer is copied into it piecewise (no allocation
            // per line), after a flush if the buffer is too full to take it whole, so a line
            // still reaches the file in one write.
            Some(stamp) if stamp.len() + text.len() + 2 <= s.file.capacity() => {
                let room = s.file.capacity() - s.file.buffer().len();
                if room < stamp.len() + text.len() + 2 {
                    s.file.flush()
                } else {
                    Ok(())
                }
                .and_then(|()| s.file.write_all(&stamp))
                .and_then(|()| s.file.write_all(b"\t"))
                .and_then(|()| s.file.write_all(text.as_bytes()))
                .and_then(|()| s.file.write_all(b"\n"))
            }
            _ => s
                .file
                .write_all(format!("{}\t{text}\n", iso8601_z(ms)).as_bytes()),
        };
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "could not write log line");
        }
        if let Some(tail) = s.tail.as_mut() {
            tail.extend_from_slice(text.as_bytes());
            tail.push(b'\n');
            if tail.len() > 4 * TAIL_BYTES {
                let cut = tail.len() - TAIL_BYTES;
                tail.drain(..cut);
            }
        }
    }

    /// Has the buffered lines written within [`FLUSH_DELAY`] (or by the next reader through
    /// [`LogStore::flush_pending`], a full buffer, or the stream's end), batching the writes of
    /// invocations that follow each other closely into one.
    pub fn flush_soon(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.deferred.queue(self);
        }
    }

    /// Writes buffered lines to the file.
    pub fn flush(&self) {
        let mut s = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = s.file.flush() {
            tracing::warn!(path = %self.path.display(), error = %e, "could not write log lines");
        }
    }

    /// Sets the stream's full file aside as `<name>-earlier` (replacing the one before) and
    /// goes on in a new file. On failure the stream keeps its file, tried again a limit later.
    fn rotate(path: &Path, s: &mut StreamState) -> io::Result<()> {
        s.size = 0;
        s.file.flush()?;
        let Some(rotation) = &s.rotation else {
            return Ok(());
        };
        let _open = rotation.open.lock().unwrap_or_else(PoisonError::into_inner);
        // The new file is opened first (as `<name>.log.next`, which no listing takes for a
        // stream): opening is what can fail under pressure (descriptors, inodes), and a
        // stream whose full file was already renamed would go on writing into the
        // `-earlier` file, which retention may delete and which no later rotation renames.
        // The renames need no descriptor.
        let next = path.with_extension("log.next");
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&next)?;
        if let Err(e) = fs::rename(path, earlier_file(path)) {
            let _ = fs::remove_file(&next);
            return Err(e);
        }
        if let Err(e) = fs::rename(&next, path) {
            // Put the full file back under the stream's name: it stays the stream's file.
            let _ = fs::rename(earlier_file(path), path);
            let _ = fs::remove_file(&next);
            return Err(e);
        }
        s.file = BufWriter::new(file);
        Ok(())
    }

    /// Starts collecting the tail of a new invocation (a cold start's Init output, collected
    /// since the environment started, is kept).
    pub fn begin_tail(&self) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tail
            .get_or_insert_with(Vec::new);
    }

    /// Stops collecting and returns the last 4 KB of the invocation's log.
    pub fn end_tail(&self) -> String {
        let tail = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tail
            .take()
            .unwrap_or_default();
        let start = tail.len().saturating_sub(TAIL_BYTES);
        // Move forward to a character boundary.
        let start = (start..tail.len())
            .find(|&i| tail[i] & 0xC0 != 0x80)
            .unwrap_or(tail.len());
        String::from_utf8_lossy(&tail[start..]).into_owned()
    }
}

/// `START RequestId: <id> Version: <version>` (built in one allocation of its length).
pub(crate) fn start_line(request_id: &str, version: &str) -> String {
    concat(&["START RequestId: ", request_id, " Version: ", version])
}

/// `END RequestId: <id>`
pub(crate) fn end_line(request_id: &str) -> String {
    concat(&["END RequestId: ", request_id])
}

/// The pieces one after the other, in a string of exactly their length.
fn concat(pieces: &[&str]) -> String {
    let mut out = String::with_capacity(pieces.iter().map(|p| p.len()).sum());
    for p in pieces {
        out.push_str(p);
    }
    out
}

/// The figures of a REPORT line.
pub(crate) struct Report<'a> {
    pub request_id: &'a str,
    pub duration: Duration,
    pub memory_mb: u32,
    pub max_memory_used_mb: u64,
    pub init_duration: Option<Duration>,
    /// `timeout` or `error` for failed invocations.
    pub status: Option<&'a str>,
    pub error_type: Option<&'a str>,
}

/// The tab-separated REPORT line (Init Duration last, as Lambda prints it), written into one
/// string sized for the usual line (no `format!` per piece).
pub(crate) fn report_line(r: &Report<'_>) -> String {
    use std::fmt::Write as _;
    let ms = r.duration.as_secs_f64() * 1000.0;
    let billed = (ms.ceil() as u64).max(1);
    let mut line = String::with_capacity(160 + r.request_id.len());
    // Writing into a String cannot fail.
    let _ = write!(
        line,
        "REPORT RequestId: {}\tDuration: {ms:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {} MB\tMax Memory Used: {} MB\t",
        r.request_id, r.memory_mb, r.max_memory_used_mb
    );
    if let Some(init) = r.init_duration {
        let _ = write!(
            line,
            "Init Duration: {:.2} ms\t",
            init.as_secs_f64() * 1000.0
        );
    }
    if let Some(status) = r.status {
        line.push_str("Status: ");
        line.push_str(status);
        line.push('\t');
        if let Some(t) = r.error_type {
            line.push_str("Error Type: ");
            line.push_str(t);
            line.push('\t');
        }
    }
    line
}

/// A status word of a record (`success`, `error`, `timeout`, `failure`) without allocating.
fn status_word(s: &str) -> Cow<'static, str> {
    match s {
        "success" => Cow::Borrowed("success"),
        "error" => Cow::Borrowed("error"),
        "timeout" => Cow::Borrowed("timeout"),
        "failure" => Cow::Borrowed("failure"),
        other => Cow::Owned(other.to_string()),
    }
}

/// Milliseconds with microsecond precision (`12.345`), as Lambda's records give durations.
fn duration_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// `platform.start`'s record.
pub(crate) fn start_record(request_id: &str, version: &str) -> Platform {
    Platform::Start {
        request_id: request_id.into(),
        version: version.into(),
    }
}

/// `platform.runtimeDone`'s record.
pub(crate) fn runtime_done_record(request_id: &str, status: &str, duration: Duration) -> Platform {
    Platform::RuntimeDone {
        request_id: request_id.into(),
        status: status_word(status),
        duration_ms: duration_ms(duration),
    }
}

/// `platform.report`'s record (Lambda's shape: metrics, then status and error type).
pub(crate) fn report_record(r: &Report<'_>) -> Platform {
    let ms = r.duration.as_secs_f64() * 1000.0;
    Platform::Report(telemetry::Report {
        request_id: r.request_id.into(),
        duration_ms: (ms * 1000.0).round() / 1000.0,
        billed_duration_ms: (ms.ceil() as u64).max(1),
        memory_size_mb: r.memory_mb,
        max_memory_used_mb: r.max_memory_used_mb,
        init_duration_ms: r.init_duration.map(duration_ms),
        status: status_word(r.status.unwrap_or("success")),
        error_type: r.error_type.map(Into::into),
    })
}

/// `platform.initStart`'s record.
pub(crate) fn init_start_record(
    initialization_type: &'static str,
    runtime_version: &str,
    function_name: &str,
    function_version: &str,
) -> Platform {
    Platform::InitStart {
        initialization_type,
        runtime_version: runtime_version.into(),
        function_name: function_name.into(),
        function_version: function_version.into(),
    }
}

/// `platform.initRuntimeDone`'s record.
pub(crate) fn init_runtime_done_record(
    initialization_type: &'static str,
    status: &'static str,
) -> Platform {
    Platform::InitRuntimeDone {
        initialization_type,
        status,
    }
}

/// `platform.initReport`'s record.
pub(crate) fn init_report_record(
    initialization_type: &'static str,
    status: &'static str,
    duration: Duration,
) -> Platform {
    Platform::InitReport {
        initialization_type,
        status,
        duration_ms: duration_ms(duration),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_platform_lines() {
        assert_eq!(
            log_stream_name(1_586_545_592_563, "$LATEST", "abc"),
            "2020/04/10/[$LATEST]abc"
        );
        let line = report_line(&Report {
            request_id: "r",
            duration: Duration::from_micros(15_740),
            memory_mb: 128,
            max_memory_used_mb: 20,
            init_duration: Some(Duration::from_millis(100)),
            status: None,
            error_type: None,
        });
        assert_eq!(
            line,
            "REPORT RequestId: r\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\tInit Duration: 100.00 ms\t"
        );
        assert_eq!(
            report_line(&Report {
                request_id: "r",
                duration: Duration::from_nanos(1_004_999),
                memory_mb: 128,
                max_memory_used_mb: 20,
                init_duration: None,
                status: Some("error"),
                error_type: Some("Runtime.ExitError"),
            }),
            "REPORT RequestId: r\tDuration: 1.00 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\tStatus: error\tError Type: Runtime.ExitError\t"
        );
        assert_eq!(
            start_line("r-1", "$LATEST"),
            "START RequestId: r-1 Version: $LATEST"
        );
        assert_eq!(end_line("r-1"), "END RequestId: r-1");
    }

    #[test]
    fn keeps_a_bounded_tail_per_invocation() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::new(dir.path().to_path_buf());
        let s = store
            .open_stream("/aws/lambda/f", "2020/01/01/[$LATEST]x")
            .unwrap();
        s.line("before");
        s.begin_tail();
        for i in 0..2000 {
            s.line(&format!("line {i}"));
        }
        let tail = s.end_tail();
        s.flush();
        assert!(tail.len() <= TAIL_BYTES);
        assert!(tail.ends_with("line 1999\n"));
        assert!(!tail.contains("before"));
        assert_eq!(store.streams("f").unwrap().len(), 1);
        let text = fs::read_to_string(&store.streams("f").unwrap()[0]).unwrap();
        assert!(text.lines().next().unwrap().ends_with("\tbefore"));
    }

    #[tokio::test]
    async fn a_deferred_write_happens_within_the_delay_or_at_a_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::new(dir.path().to_path_buf());
        let s = Arc::new(
            store
                .open_stream("/aws/lambda/f", "2020/01/01/[$LATEST]d")
                .unwrap(),
        );
        let path = store.streams("f").unwrap().remove(0);
        let text = || fs::read_to_string(&path).unwrap();
        s.line("one");
        s.flush_soon();
        s.flush_soon();
        // The write waits for the delay (no await since: its task cannot have run).
        assert_eq!(text(), "");
        store.flush_pending();
        assert!(text().ends_with("\tone\n"), "{}", text());
        s.line("two");
        s.flush_soon();
        assert!(!text().contains("two"));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !text().contains("\ttwo\n") {
            assert!(
                std::time::Instant::now() < deadline,
                "not written: {}",
                text()
            );
            tokio::time::sleep(FLUSH_DELAY).await;
        }
        // Queued again after the write-out: a later line is written too.
        s.line("three");
        s.flush_soon();
        drop(s);
        assert!(text().ends_with("\tthree\n"), "written at the stream's end");
    }

    #[test]
    fn a_deferred_write_without_an_async_runtime_happens_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::new(dir.path().to_path_buf());
        let s = Arc::new(
            store
                .open_stream("/aws/lambda/f", "2020/01/01/[$LATEST]n")
                .unwrap(),
        );
        s.line("now");
        s.flush_soon();
        let text = fs::read_to_string(&store.streams("f").unwrap()[0]).unwrap();
        assert!(text.ends_with("\tnow\n"), "{text}");
    }

    #[test]
    fn an_endless_stream_keeps_its_newest_lines_in_two_files_of_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::new(dir.path().to_path_buf()).with_max_stream_bytes(Some(4096));
        let s = store
            .open_stream("/aws/lambda/f", "2020/01/01/[$LATEST]flood")
            .unwrap();
        let line = "x".repeat(100);
        for i in 0..10_000 {
            s.line(&format!("{i:05} {line}"));
        }
        s.flush();
        let mut files = store.streams("f").unwrap();
        files.sort();
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            ["[$LATEST]flood-earlier.log", "[$LATEST]flood.log"],
            "{files:?}"
        );
        // The earlier file ends at the first line past the limit; the live one is filling.
        let len = |i: usize| fs::metadata(&files[i]).unwrap().len();
        assert!((4096..4096 + 131).contains(&len(0)), "{}", len(0));
        assert!(len(1) < 4096 + 131, "{}", len(1));
        let live = fs::read_to_string(&files[1]).unwrap();
        assert!(live.ends_with(&format!("\t09999 {line}\n")), "{live}");
        let earlier = fs::read_to_string(&files[0]).unwrap();
        let first_live = live.lines().next().unwrap().split('\t').nth(1).unwrap();
        let last_earlier = earlier.lines().last().unwrap().split('\t').nth(1).unwrap();
        let number = |l: &str| l[..5].parse::<u32>().unwrap();
        assert_eq!(
            number(last_earlier) + 1,
            number(first_live),
            "no line lost between"
        );
        // Only the live file is open: retention may delete the earlier one.
        assert!(store.is_open(&files[1]) && !store.is_open(&files[0]));
    }

    #[test]
    fn a_rotation_that_cannot_open_its_new_file_keeps_the_stream_in_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::new(dir.path().to_path_buf()).with_max_stream_bytes(Some(1024));
        let s = store
            .open_stream("/aws/lambda/f", "2020/01/01/[$LATEST]stuck")
            .unwrap();
        let path = store.streams("f").unwrap().remove(0);
        // Whatever is at the new file's name cannot be opened as one (a directory here; out
        // of descriptors or inodes in life).
        let next = path.with_extension("log.next");
        fs::create_dir(&next).unwrap();
        for i in 0..100 {
            s.line(&format!("{i:03} {}", "y".repeat(60)));
        }
        s.flush();
        // No rotation happened: the stream's lines are all in its own file, none set aside.
        assert_eq!(store.streams("f").unwrap(), std::slice::from_ref(&path));
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 100);
        assert!(store.is_open(&path));
        // Once the new file can be made, the next limit rotates as usual.
        fs::remove_dir(&next).unwrap();
        for i in 100..200 {
            s.line(&format!("{i:03} {}", "y".repeat(60)));
        }
        s.flush();
        let mut files = store.streams("f").unwrap();
        files.sort();
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .ends_with(&format!("199 {}\n", "y".repeat(60)))
        );
        assert!(!next.exists());
    }

    #[test]
    fn without_a_limit_a_stream_stays_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::new(dir.path().to_path_buf());
        let s = store
            .open_stream("/aws/lambda/f", "2020/01/01/[$LATEST]one")
            .unwrap();
        for i in 0..1000 {
            s.line(&format!("line {i}"));
        }
        drop(s);
        assert_eq!(store.streams("f").unwrap().len(), 1);
    }

    #[test]
    fn a_stream_closed_without_a_line_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::new(dir.path().to_path_buf());
        let empty = store
            .open_stream("/aws/lambda/f", "2020/01/01/[$LATEST]empty")
            .unwrap();
        assert_eq!(
            store.streams("f").unwrap().len(),
            1,
            "open: the file exists"
        );
        drop(empty);
        assert!(store.streams("f").unwrap().is_empty());
        let used = store
            .open_stream("/aws/lambda/f", "2020/01/01/[$LATEST]used")
            .unwrap();
        used.line("START");
        drop(used);
        assert_eq!(
            store.streams("f").unwrap().len(),
            1,
            "a written stream stays"
        );
    }
}
