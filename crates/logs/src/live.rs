//! `StartLiveTail`: a session that streams the events written to up to 10 log groups from now
//! on, as an `application/vnd.amazon.eventstream` response (what botocore reads as
//! `responseStream`), over plain HTTP/1.1 with chunked transfer.
//!
//! Messages: `initial-response` (`{}`: botocore's JSON parser requires it first), one
//! `sessionStart` (request and session ids, the groups and stream filters), then a
//! `sessionUpdate` whenever new events matched — checked every [`POLL`] — and at least every
//! second (empty `sessionResults`), each with at most [`MAX_PER_UPDATE`] events (more are
//! dropped and the update says `sampled`). After [`SESSION_LIMIT`] a `SessionTimeoutException`
//! ends the stream. The session stops as soon as the client goes away (the body is dropped).
//!
//! Reading: each stream file is followed from its size when the session started (files that
//! appear later from their start), its place kept by the file's identity, not its path: when
//! an environment's stream sets its full file aside as `<name>-earlier` and starts a new one,
//! the rest of the old file is read, then the new one from its start, each line once and in
//! order, reported as the stream it was written to. Only complete lines are events. At most [`MAX_SESSIONS`]
//! sessions run at once (`LimitExceededException` beyond).

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use kindling_protocol::eventstream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::LogsError;
use crate::ops::Logs;
use crate::pattern::Pattern;
use crate::stream::{self, FileId};

/// How often the streams are read.
pub const POLL: Duration = Duration::from_millis(250);
/// An update at least this often, events or not (as CloudWatch's "every second").
const HEARTBEAT: Duration = Duration::from_secs(1);
/// Events per update at most (CloudWatch samples down to 500).
pub const MAX_PER_UPDATE: usize = 500;
/// A session's life (CloudWatch's three hours).
pub const SESSION_LIMIT: Duration = Duration::from_secs(3 * 3600);
/// Sessions at once (CloudWatch's default quota is 15 per account).
pub const MAX_SESSIONS: usize = 15;
/// Bytes read from one stream file per poll (the line that reaches it is the last; the rest
/// waits for the next poll).
const MAX_READ: u64 = 4 * 1024 * 1024;

/// The running sessions, for the limit.
#[derive(Debug, Default)]
pub struct Sessions {
    running: AtomicUsize,
}

/// One slot of [`Sessions`], released when dropped.
struct Slot(Arc<Sessions>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Sessions {
    fn take(self: &Arc<Self>) -> Result<Slot, LogsError> {
        let before = self.running.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(Arc::clone(self));
        if before >= MAX_SESSIONS {
            return Err(LogsError::LimitExceeded(format!(
                "There are already {MAX_SESSIONS} Live Tail sessions running."
            )));
        }
        Ok(slot)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Input {
    log_group_identifiers: Option<Vec<String>>,
    log_stream_names: Option<Vec<String>>,
    log_stream_name_prefixes: Option<Vec<String>>,
    log_event_filter_pattern: Option<String>,
}

/// What a session follows.
struct Plan {
    /// (identifier as given, group name)
    groups: Vec<(String, String)>,
    names: Option<Vec<String>>,
    prefixes: Option<Vec<String>>,
    pattern: Pattern,
    filter: Option<String>,
}

fn validate(logs: &Logs, input: Value) -> Result<Plan, LogsError> {
    let input: Input =
        serde_json::from_value(input).map_err(|e| LogsError::Serialization(e.to_string()))?;
    let ids = input.log_group_identifiers.ok_or_else(|| {
        LogsError::invalid(
            "1 validation error detected: Value null at 'logGroupIdentifiers' failed to satisfy constraint: Member must not be null",
        )
    })?;
    if ids.is_empty() || ids.len() > 10 {
        return Err(LogsError::invalid(
            "1 validation error detected: Value at 'logGroupIdentifiers' failed to satisfy constraint: Member must have length between 1 and 10",
        ));
    }
    if input.log_stream_names.is_some() && input.log_stream_name_prefixes.is_some() {
        return Err(LogsError::invalid(
            "logStreamNames and logStreamNamePrefixes are mutually exclusive parameters.",
        ));
    }
    for list in [&input.log_stream_names, &input.log_stream_name_prefixes]
        .into_iter()
        .flatten()
    {
        if list.is_empty() || list.len() > 100 {
            return Err(LogsError::invalid(
                "1 validation error detected: log stream names and prefixes must have between 1 and 100 members",
            ));
        }
    }
    if (input.log_stream_names.is_some() || input.log_stream_name_prefixes.is_some())
        && ids.len() != 1
    {
        return Err(LogsError::invalid(
            "Only one log group can be specified when logStreamNames or logStreamNamePrefixes are given.",
        ));
    }
    let filter = input.log_event_filter_pattern.filter(|p| !p.is_empty());
    if filter.as_ref().is_some_and(|p| p.len() > 1024) {
        return Err(LogsError::invalid(
            "1 validation error detected: Value at 'logEventFilterPattern' failed to satisfy constraint: Member must have length less than or equal to 1024",
        ));
    }
    let pattern = Pattern::parse(filter.as_deref().unwrap_or(""))
        .map_err(|e| LogsError::invalid(format!("Invalid filter pattern: {e}")))?;
    let mut groups = Vec::with_capacity(ids.len());
    for id in ids {
        if id.ends_with('*') {
            return Err(LogsError::invalid(format!(
                "The log group identifier {id} can't end with an asterisk (*)."
            )));
        }
        let name = crate::ops::group_of_identifier(&id);
        if !logs.group_exists(&name) {
            return Err(LogsError::ResourceNotFound(format!(
                "The specified log group does not exist: {id}"
            )));
        }
        groups.push((id, name));
    }
    Ok(Plan {
        groups,
        names: input.log_stream_names,
        prefixes: input.log_stream_name_prefixes,
        pattern,
        filter,
    })
}

/// Where each followed stream file was read up to, keyed by the file's identity (not its
/// name: an environment's stream renames its full file `<name>-earlier` and starts a new one
/// of its name).
struct Cursor {
    files: HashMap<FileId, u64>,
}

/// One event for a `sessionUpdate`.
struct Found {
    group: String,
    stream: String,
    timestamp: i64,
    message: String,
}

impl Plan {
    fn wants(&self, stream: &str) -> bool {
        if let Some(names) = &self.names {
            return names.iter().any(|n| n == stream);
        }
        if let Some(prefixes) = &self.prefixes {
            return prefixes.iter().any(|p| stream.starts_with(p.as_str()));
        }
        true
    }

    /// Calls `f` with every followed stream of every group and its files, oldest first (an
    /// environment's set-aside `-earlier` file, then its own: `StreamFiles::open`), closed
    /// before the next stream's are opened, so a poll holds at most two descriptors whatever
    /// the number of streams. Files deleted meanwhile are left out. Returns whether every
    /// group could be listed and every stream opened (false: some files that exist may have
    /// been left out, e.g. out of descriptors).
    fn each_stream(&self, logs: &Logs, mut f: impl FnMut(&str, &str, &[stream::OpenFile])) -> bool {
        let mut complete = true;
        for (id, group) in &self.groups {
            let Ok(streams) = logs.group_streams(group) else {
                complete = false;
                continue;
            };
            for s in streams {
                if !self.wants(&s.name) {
                    continue;
                }
                match s.open() {
                    Ok(files) => f(id, &s.name, &files),
                    Err(_) => complete = false,
                }
            }
        }
        complete
    }

    /// The cursor at the end of every stream file that exists now.
    fn start(&self, logs: &Logs) -> Cursor {
        let mut files = HashMap::new();
        self.each_stream(logs, |_, _, opened| {
            for file in opened {
                files.insert(file.id, file.len);
            }
        });
        Cursor { files }
    }

    /// New complete lines of every followed stream that match. A file read before goes on
    /// from where it was read to (under any name); a file not seen before is read from its
    /// start (a stream that appeared, or the new file of a stream that rotated). A stream's
    /// `-earlier` file is read before its own, and its own waits while the earlier one has
    /// more than a poll reads: its lines come once, in order, as the stream's.
    fn poll(&self, logs: &Logs, cursor: &mut Cursor) -> Vec<Found> {
        let mut out = Vec::new();
        // Every file listed (read or not).
        let mut listed: HashSet<FileId> = HashSet::new();
        let complete = self.each_stream(logs, |id, stream, files| {
            listed.extend(files.iter().map(|f| f.id));
            for (k, file) in files.iter().enumerate() {
                let from = cursor.files.get(&file.id).copied().unwrap_or(0);
                let Ok((events, next, more)) = read_from(file, from) else {
                    return;
                };
                cursor.files.insert(file.id, next);
                for e in events {
                    if self.pattern.matches(&e.message) {
                        out.push(Found {
                            group: id.to_string(),
                            stream: stream.to_string(),
                            timestamp: e.timestamp,
                            message: e.message,
                        });
                    }
                }
                // An `-earlier` file this poll could not read to its end (more than a poll
                // reads; a cut last line, which never completes, does not count): the
                // stream's own file waits for the next poll.
                if more && k + 1 < files.len() {
                    return;
                }
            }
        });
        // Files deleted meanwhile (retention, rotated out) are forgotten; only when every
        // file was listed: one left out by an error would be read again from its start.
        if complete {
            cursor.files.retain(|id, _| listed.contains(id));
        }
        out.sort_by_key(|f| f.timestamp);
        out
    }
}

/// The complete lines of `file` after byte `from`, until at least [`MAX_READ`] bytes were
/// read: the events, the offset after them and whether the read stopped there (more may
/// follow). A line too long for an event is cut (`stream::MAX_LINE_BYTES`) and the read goes
/// on after it, so a stream never stops at one.
fn read_from(
    file: &stream::OpenFile,
    from: u64,
) -> std::io::Result<(Vec<stream::Event>, u64, bool)> {
    let mut events = Vec::new();
    let (mut read, mut more) = (0u64, false);
    let start = stream::Position {
        offset: from,
        ..stream::Position::default()
    };
    let end = stream::each_event_in(&file.file, start, |e, size| {
        events.push(e);
        read += size;
        more = read >= MAX_READ;
        !more
    })?;
    Ok((events, end.offset, more))
}

/// Validates the request and answers with the session's event stream.
pub async fn start(
    logs: &Logs,
    sessions: &Arc<Sessions>,
    input: Value,
    request_id: &str,
) -> Result<Response, LogsError> {
    let slot = sessions.take()?;
    let plan = {
        let logs = logs.clone();
        tokio::task::spawn_blocking(move || {
            let plan = validate(&logs, input)?;
            let cursor = plan.start(&logs);
            Ok::<_, LogsError>((plan, cursor))
        })
        .await
        .map_err(|e| LogsError::Io(std::io::Error::other(e)))??
    };
    let (plan, cursor) = plan;
    let session_id = uuid::Uuid::new_v4().to_string();
    let mut start = json!({
        "requestId": request_id,
        "sessionId": session_id,
        "logGroupIdentifiers": plan.groups.iter().map(|(id, _)| id).collect::<Vec<_>>(),
    });
    if let Some(n) = &plan.names {
        start["logStreamNames"] = json!(n);
    }
    if let Some(p) = &plan.prefixes {
        start["logStreamNamePrefixes"] = json!(p);
    }
    if let Some(f) = &plan.filter {
        start["logEventFilterPattern"] = json!(f);
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    // Both fit: the channel is empty.
    let _ = tx.try_send(eventstream::event(
        "initial-response",
        "application/json",
        b"{}",
    ));
    let _ = tx.try_send(eventstream::event(
        "sessionStart",
        "application/json",
        start.to_string().as_bytes(),
    ));
    tokio::spawn(run(logs.clone(), plan, cursor, tx, slot));
    let mut res = Response::new(Body::new(ChannelBody(rx)));
    *res.status_mut() = StatusCode::OK;
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(eventstream::CONTENT_TYPE),
    );
    if let Ok(v) = header::HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    Ok(res.into_response())
}

/// The session: polls, sends updates, ends at the limit or when the client is gone.
async fn run(logs: Logs, plan: Plan, cursor: Cursor, tx: mpsc::Sender<Bytes>, _slot: Slot) {
    let plan = Arc::new(plan);
    let started = tokio::time::Instant::now();
    let mut last_update = started;
    let mut cursor = Some(cursor);
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = tx.closed() => return,
            _ = tick.tick() => {}
        }
        if started.elapsed() >= SESSION_LIMIT {
            let _ = tx
                .send(eventstream::message(
                    &[
                        (":exception-type", "SessionTimeoutException"),
                        (":content-type", "application/json"),
                        (":message-type", "exception"),
                    ],
                    br#"{"message":"Live Tail session has ended as it reached its maximum duration of 3 hours."}"#,
                ))
                .await;
            return;
        }
        let Some(mut c) = cursor.take() else { return };
        let (l, p) = (logs.clone(), Arc::clone(&plan));
        let Ok((found, c)) = tokio::task::spawn_blocking(move || {
            let found = p.poll(&l, &mut c);
            (found, c)
        })
        .await
        else {
            return;
        };
        cursor = Some(c);
        if found.is_empty() && last_update.elapsed() < HEARTBEAT {
            continue;
        }
        let sampled = found.len() > MAX_PER_UPDATE;
        let skip = found.len().saturating_sub(MAX_PER_UPDATE);
        let results: Vec<Value> = found
            .into_iter()
            .skip(skip)
            .map(|f| {
                json!({
                    "logStreamName": f.stream,
                    "logGroupIdentifier": f.group,
                    "message": f.message,
                    "timestamp": f.timestamp,
                    "ingestionTime": f.timestamp,
                })
            })
            .collect();
        let update = json!({"sessionMetadata": {"sampled": sampled}, "sessionResults": results});
        let frame = eventstream::event(
            "sessionUpdate",
            "application/json",
            update.to_string().as_bytes(),
        );
        if tx.send(frame).await.is_err() {
            return;
        }
        last_update = tokio::time::Instant::now();
    }
}

/// The response body: frames as the session sends them.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|b| b.map(|b| Ok(http_body::Frame::data(b))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kindling_scheduler::layout;

    #[test]
    fn reads_only_complete_new_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "2020-04-10T19:06:32.563Z\told\n").unwrap();
        let start = std::fs::metadata(&p).unwrap().len();
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::io::Write::write_all(
            &mut f,
            b"2020-04-10T19:06:33.000Z\tnew\n2020-04-10T19:06:34.000Z\tpart",
        )
        .unwrap();
        let open = || stream::OpenFile::open(&p).unwrap().unwrap();
        let (events, next, _) = read_from(&open(), start).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].message, "new");
        assert_eq!(events[0].timestamp, 1_586_545_593_000);
        let (again, n, _) = read_from(&open(), next).unwrap();
        assert!(again.is_empty() && n == next);
        std::io::Write::write_all(&mut f, b"ial\n").unwrap();
        let (rest, _, _) = read_from(&open(), next).unwrap();
        assert_eq!(rest[0].message, "partial");
    }

    const G: &str = "/aws/lambda/fn";
    const S: &str = "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef";

    fn logs() -> (Logs, tempfile::TempDir) {
        Logs::for_tests()
    }

    /// Appends `line <n>` for `range` to the stream, the last one without its newline when
    /// `partial` (a write cut in the middle of a line).
    fn append(l: &Logs, range: std::ops::Range<u32>, partial: bool) {
        let path = layout::stream_file(&l.store.group_dir(G), S).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut text: String = range
            .map(|n| format!("2024-01-01T00:00:00.{:03}Z\tline {n}\n", n % 1000))
            .collect();
        if partial {
            text.pop();
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
    }

    /// Ends a cut line.
    fn finish_line(l: &Logs) {
        let path = layout::stream_file(&l.store.group_dir(G), S).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, b"\n").unwrap();
    }

    /// An environment's stream at its limit: its file becomes `<name>-earlier` (replacing
    /// the one before) and a new file takes its name.
    fn rotate(l: &Logs) {
        let path = layout::stream_file(&l.store.group_dir(G), S).unwrap();
        std::fs::rename(&path, layout::earlier_file(&path)).unwrap();
        std::fs::write(&path, "").unwrap();
    }

    #[test]
    fn a_session_reads_every_line_once_in_order_across_rotations() {
        let (l, _d) = logs();
        append(&l, 0..5, false);
        rotate(&l);
        append(&l, 5..10, false);
        let plan = validate(&l, json!({"logGroupIdentifiers": [G]})).unwrap();
        let mut cursor = plan.start(&l);
        let mut seen: Vec<(String, String)> = Vec::new();
        let mut poll = |cursor: &mut Cursor| {
            seen.extend(
                plan.poll(&l, cursor)
                    .into_iter()
                    .map(|f| (f.stream, f.message)),
            );
        };
        append(&l, 10..20, false);
        poll(&mut cursor);
        // Lines after the last poll, one of them cut, then the file is set aside and the
        // new one gets more bytes than the old one had been read to.
        append(&l, 20..23, true);
        poll(&mut cursor);
        finish_line(&l);
        rotate(&l);
        append(&l, 23..60, false);
        poll(&mut cursor);
        poll(&mut cursor);
        // Two rotations between polls: the file in between was never seen, and is read whole
        // (lines 60-61 went with the file the second rotation replaced).
        append(&l, 60..62, false);
        rotate(&l);
        append(&l, 62..65, false);
        rotate(&l);
        append(&l, 65..70, false);
        poll(&mut cursor);
        poll(&mut cursor);
        let want: Vec<(String, String)> = (10..60)
            .chain(62..70)
            .map(|n| (S.to_string(), format!("line {n}")))
            .collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn a_stream_waits_while_its_earlier_file_has_more_than_a_poll_reads() {
        let (l, _d) = logs();
        append(&l, 0..1, false);
        let plan = validate(&l, json!({"logGroupIdentifiers": [G]})).unwrap();
        let mut cursor = plan.start(&l);
        // More than one poll reads (MAX_READ), then the file is set aside.
        let long = "y".repeat(1000);
        let path = layout::stream_file(&l.store.group_dir(G), S).unwrap();
        let text: String = (1..5001)
            .map(|n| format!("2024-01-01T00:00:00.000Z\tline {n} {long}\n"))
            .collect();
        assert!(text.len() as u64 > MAX_READ);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .unwrap();
        rotate(&l);
        append(&l, 5001..5003, false);
        let number = |m: &str| m.split(' ').nth(1).unwrap().parse::<u32>().unwrap();
        let first: Vec<u32> = plan
            .poll(&l, &mut cursor)
            .iter()
            .map(|f| number(&f.message))
            .collect();
        assert!(first.len() < 5000, "one poll read {} lines", first.len());
        let rest: Vec<u32> = plan
            .poll(&l, &mut cursor)
            .iter()
            .map(|f| number(&f.message))
            .collect();
        let all: Vec<u32> = first.into_iter().chain(rest).collect();
        assert_eq!(all, (1..5003).collect::<Vec<_>>());
    }

    #[test]
    fn a_new_stream_is_read_from_its_start_and_a_stream_filter_follows_its_earlier_file() {
        let (l, _d) = logs();
        l.store.create_group(G).unwrap();
        let plan = validate(
            &l,
            json!({"logGroupIdentifiers": [G], "logStreamNames": [S]}),
        )
        .unwrap();
        let mut cursor = plan.start(&l);
        append(&l, 0..3, false);
        let first: Vec<String> = plan
            .poll(&l, &mut cursor)
            .into_iter()
            .map(|f| f.message)
            .collect();
        assert_eq!(first, ["line 0", "line 1", "line 2"]);
        append(&l, 3..5, false);
        rotate(&l);
        append(&l, 5..6, false);
        let next: Vec<(String, String)> = plan
            .poll(&l, &mut cursor)
            .into_iter()
            .map(|f| (f.stream, f.message))
            .collect();
        let want: Vec<(String, String)> = (3..6)
            .map(|n| (S.to_string(), format!("line {n}")))
            .collect();
        assert_eq!(next, want);
    }

    #[test]
    fn an_earlier_file_ending_in_a_cut_line_does_not_hold_up_the_new_file() {
        let (l, _d) = logs();
        append(&l, 0..1, false);
        let plan = validate(&l, json!({"logGroupIdentifiers": [G]})).unwrap();
        let mut cursor = plan.start(&l);
        // The file is set aside with its last line cut (a write that failed half-way): that
        // line never completes, and the new file's lines still come.
        append(&l, 1..3, true);
        rotate(&l);
        append(&l, 3..5, false);
        let mut seen: Vec<String> = Vec::new();
        for _ in 0..3 {
            seen.extend(plan.poll(&l, &mut cursor).into_iter().map(|f| f.message));
        }
        assert_eq!(seen, ["line 1", "line 3", "line 4"]);
    }

    #[test]
    fn an_over_long_line_in_an_earlier_file_is_cut_and_the_stream_goes_on() {
        let (l, _d) = logs();
        append(&l, 0..1, false);
        let plan = validate(&l, json!({"logGroupIdentifiers": [G]})).unwrap();
        let mut cursor = plan.start(&l);
        // A line longer than a poll reads, between two others, then the file is set aside.
        let long = "z".repeat(MAX_READ as usize + 1000);
        let path = layout::stream_file(&l.store.group_dir(G), S).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| {
                std::io::Write::write_all(
                    &mut f,
                    format!(
                        "2024-01-01T00:00:00.001Z\tline 1\n2024-01-01T00:00:00.002Z\t{long}\n2024-01-01T00:00:00.003Z\tline 2\n"
                    )
                    .as_bytes(),
                )
            })
            .unwrap();
        rotate(&l);
        append(&l, 3..5, false);
        let mut seen: Vec<String> = Vec::new();
        for _ in 0..4 {
            seen.extend(plan.poll(&l, &mut cursor).into_iter().map(|f| f.message));
        }
        assert_eq!(
            seen.len(),
            5,
            "{:?}",
            seen.iter().map(|m| m.len()).collect::<Vec<_>>()
        );
        assert!(seen[1].starts_with("zzzz") && seen[1].len() < long.len());
        let others: Vec<&str> = [0, 2, 3, 4].iter().map(|&i| seen[i].as_str()).collect();
        assert_eq!(others, ["line 1", "line 2", "line 3", "line 4"]);
    }

    #[test]
    fn a_stream_named_x_earlier_is_its_own_stream_to_a_session() {
        let (l, _d) = logs();
        let g = "/app/custom";
        let put = |stream: &str, message: &str| {
            l.store
                .append_events(g, stream, &[(1000, message.to_string())])
                .unwrap()
                .unwrap();
        };
        put("x", "x before");
        put("x-earlier", "x-earlier before");
        for names in [json!(["x"]), json!(["x", "x-earlier"])] {
            let plan = validate(
                &l,
                json!({"logGroupIdentifiers": [g], "logStreamNames": names}),
            )
            .unwrap();
            let mut cursor = plan.start(&l);
            put("x", "x after");
            put("x-earlier", "x-earlier after");
            let mut seen: Vec<(String, String)> = plan
                .poll(&l, &mut cursor)
                .into_iter()
                .map(|f| (f.stream, f.message))
                .collect();
            seen.sort();
            let mut want = vec![("x".to_string(), "x after".to_string())];
            if names.as_array().unwrap().len() == 2 {
                want.push(("x-earlier".into(), "x-earlier after".into()));
            }
            assert_eq!(seen, want, "{names}");
        }
    }

    #[test]
    fn a_poll_that_cannot_list_or_open_a_stream_forgets_none_of_its_files() {
        let (l, _d) = logs();
        append(&l, 0..3, false);
        let plan = validate(&l, json!({"logGroupIdentifiers": [G]})).unwrap();
        let mut cursor = plan.start(&l);
        let poll = |cursor: &mut Cursor| -> Vec<String> {
            plan.poll(&l, cursor)
                .into_iter()
                .map(|f| f.message)
                .collect()
        };
        // For one poll the group cannot be listed (its directory replaced by a file).
        let dir = l.store.group_dir(G);
        let aside = dir.with_extension("aside");
        std::fs::rename(&dir, &aside).unwrap();
        std::fs::write(&dir, "").unwrap();
        assert!(poll(&mut cursor).is_empty());
        std::fs::remove_file(&dir).unwrap();
        std::fs::rename(&aside, &dir).unwrap();
        append(&l, 3..4, false);
        assert_eq!(poll(&mut cursor), ["line 3"]);
        // For one poll the stream's own file cannot be opened (its name a symbolic link to
        // itself), its set-aside file listed.
        rotate(&l);
        append(&l, 4..5, false);
        assert_eq!(poll(&mut cursor), ["line 4"]);
        let path = layout::stream_file(&dir, S).unwrap();
        let moved = path.with_extension("moved");
        std::fs::rename(&path, &moved).unwrap();
        std::os::unix::fs::symlink(&path, &path).unwrap();
        assert!(poll(&mut cursor).is_empty());
        std::fs::remove_file(&path).unwrap();
        std::fs::rename(&moved, &path).unwrap();
        append(&l, 5..6, false);
        assert_eq!(poll(&mut cursor), ["line 5"]);
    }

    /// Descriptors this process has open.
    fn open_descriptors() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }

    #[test]
    fn a_poll_holds_at_most_one_stream_s_two_files_open() {
        let (l, _d) = logs();
        let dir = l.store.group_dir(G);
        for n in 0..200 {
            let name = format!("2024/01/01/[$LATEST]{n:032x}");
            let path = layout::stream_file(&dir, &name).unwrap();
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(
                layout::earlier_file(&path),
                "2024-01-01T00:00:00.000Z	early\n",
            )
            .unwrap();
            std::fs::write(&path, "2024-01-01T00:00:00.001Z	late\n").unwrap();
        }
        let plan = validate(&l, json!({"logGroupIdentifiers": [G]})).unwrap();
        let before = open_descriptors();
        let mut most = 0;
        let mut files = 0;
        plan.each_stream(&l, |_, _, opened| {
            most = most.max(open_descriptors());
            files += opened.len();
        });
        assert_eq!(files, 400);
        // Other tests of this binary open files on their threads meanwhile: a margin, far
        // below the 400 files a poll used to hold at once.
        assert!(
            most <= before + 2 + 16,
            "{most} descriptors open, {before} before"
        );
        let mut cursor = Cursor {
            files: HashMap::new(),
        };
        let found = plan.poll(&l, &mut cursor);
        assert_eq!(found.len(), 400);
    }

    #[test]
    fn session_slots_are_limited_and_released() {
        let s = Arc::new(Sessions::default());
        let held: Vec<Slot> = (0..MAX_SESSIONS).map(|_| s.take().unwrap()).collect();
        assert!(matches!(s.take(), Err(LogsError::LimitExceeded(_))));
        drop(held);
        assert!(s.take().is_ok());
    }
}
