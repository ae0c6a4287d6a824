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
//! Reading: each stream file is followed from its size when the session started (streams that
//! appear later from their start); only complete lines are events. At most [`MAX_SESSIONS`]
//! sessions run at once (`LimitExceededException` beyond).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
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
use crate::stream;

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
/// Bytes read from one stream per poll at most (the rest waits for the next poll).
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

/// Where each followed stream file was read up to.
struct Cursor {
    offsets: HashMap<PathBuf, u64>,
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

    /// The cursor at the end of every stream that exists now.
    fn start(&self, logs: &Logs) -> Cursor {
        let mut offsets = HashMap::new();
        for (_, group) in &self.groups {
            for (name, path) in logs.group_streams(group).unwrap_or_default() {
                if self.wants(&name) {
                    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
                    offsets.insert(path, size);
                }
            }
        }
        Cursor { offsets }
    }

    /// New complete lines of every followed stream that match.
    fn poll(&self, logs: &Logs, cursor: &mut Cursor) -> Vec<Found> {
        let mut out = Vec::new();
        for (id, group) in &self.groups {
            for (name, path) in logs.group_streams(group).unwrap_or_default() {
                if !self.wants(&name) {
                    continue;
                }
                let from = cursor.offsets.get(&path).copied().unwrap_or(0);
                let Ok((events, next)) = read_from(&path, from) else {
                    continue;
                };
                cursor.offsets.insert(path, next);
                for e in events {
                    if self.pattern.matches(&e.message) {
                        out.push(Found {
                            group: id.clone(),
                            stream: name.clone(),
                            timestamp: e.timestamp,
                            message: e.message,
                        });
                    }
                }
            }
        }
        // Streams deleted meanwhile (retention) are forgotten.
        cursor.offsets.retain(|p, _| p.exists());
        out.sort_by_key(|f| f.timestamp);
        out
    }
}

/// The complete lines of `path` after byte `from` (at most [`MAX_READ`] bytes), and the offset
/// after them. A file shorter than `from` (a new file of the stream's name: an environment's
/// stream starts one when its file is full) is read from its start.
fn read_from(path: &std::path::Path, from: u64) -> std::io::Result<(Vec<stream::Event>, u64)> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let from = if len < from { 0 } else { from };
    if len == from {
        return Ok((Vec::new(), from));
    }
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    file.take((len - from).min(MAX_READ))
        .read_to_end(&mut bytes)?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    Ok((stream::parse(&bytes[..complete]), from + complete as u64))
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
        let (events, next) = read_from(&p, start).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].message, "new");
        assert_eq!(events[0].timestamp, 1_586_545_593_000);
        let (again, n) = read_from(&p, next).unwrap();
        assert!(again.is_empty() && n == next);
        std::io::Write::write_all(&mut f, b"ial\n").unwrap();
        let (rest, _) = read_from(&p, next).unwrap();
        assert_eq!(rest[0].message, "partial");
    }

    #[test]
    fn a_new_shorter_file_is_read_once_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        let line = |n: u32| format!("2020-04-10T19:06:32.563Z\tline {n}\n");
        std::fs::write(&p, (0..100).map(line).collect::<String>()).unwrap();
        let (_, old_end) = read_from(&p, 0).unwrap();
        // The stream's full file was set aside; a new one took its name.
        std::fs::write(&p, line(100) + &line(101)).unwrap();
        let (events, next) = read_from(&p, old_end).unwrap();
        let texts: Vec<_> = events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(texts, ["line 100", "line 101"]);
        let (again, _) = read_from(&p, next).unwrap();
        assert!(again.is_empty(), "read twice: {again:?}");
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
