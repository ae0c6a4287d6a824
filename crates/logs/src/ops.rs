//! The operations, over the stored streams ([`LogStore`]) and the group [`Registry`]. Every
//! function here blocks (file reads and writes): the router calls them on the blocking pool.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kindling_scheduler::LogStore;
use kindling_scheduler::layout::{self, fnv64};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::LogsError;
use crate::get;
use crate::pattern::Pattern;
use crate::registry::{GroupRecord, Registry};
use crate::search::{self, Key, Progress, Query, QueryId, Searches};
use crate::stream::{FileId, Place, StreamInfo};
use crate::streams::StreamFiles;

/// Largest answer of GetLogEvents and FilterLogEvents (events' bytes), as CloudWatch's 1 MB.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// The retention periods CloudWatch Logs accepts.
pub const RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// What the operations work on.
#[derive(Clone)]
pub struct Logs {
    pub store: LogStore,
    pub registry: Arc<Registry>,
    pub region: String,
    pub account_id: String,
    /// FilterLogEvents' searches paused between requests, and their work budget.
    pub searches: Arc<Searches>,
}

#[cfg(test)]
impl Logs {
    /// Logs over a fresh data dir (kept while the returned directory lives), for tests.
    pub(crate) fn for_tests() -> (Self, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("logs");
        let registry =
            Arc::new(Registry::open(root.join(".registry.json")).expect("log group registry"));
        let logs = Self {
            store: LogStore::new(root),
            registry,
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            searches: Arc::default(),
        };
        (logs, dir)
    }
}

/// Every operation served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    DescribeLogGroups,
    DescribeLogStreams,
    GetLogEvents,
    FilterLogEvents,
    CreateLogGroup,
    DeleteLogGroup,
    CreateLogStream,
    DeleteLogStream,
    PutLogEvents,
    PutRetentionPolicy,
    DeleteRetentionPolicy,
    /// A streamed answer: served by [`crate::live`], not by [`execute`].
    StartLiveTail,
}

impl Operation {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "DescribeLogGroups" => Self::DescribeLogGroups,
            "DescribeLogStreams" => Self::DescribeLogStreams,
            "GetLogEvents" => Self::GetLogEvents,
            "FilterLogEvents" => Self::FilterLogEvents,
            "CreateLogGroup" => Self::CreateLogGroup,
            "DeleteLogGroup" => Self::DeleteLogGroup,
            "CreateLogStream" => Self::CreateLogStream,
            "DeleteLogStream" => Self::DeleteLogStream,
            "PutLogEvents" => Self::PutLogEvents,
            "PutRetentionPolicy" => Self::PutRetentionPolicy,
            "DeleteRetentionPolicy" => Self::DeleteRetentionPolicy,
            "StartLiveTail" => Self::StartLiveTail,
            _ => return None,
        })
    }

    /// Reads are open to functions' credentials per the server's function access; writes of
    /// events (`CreateLogStream`, `PutLogEvents`) are the data plane, as an execution role's
    /// basic logging permission.
    pub fn is_read(self) -> bool {
        matches!(
            self,
            Self::DescribeLogGroups
                | Self::DescribeLogStreams
                | Self::GetLogEvents
                | Self::FilterLogEvents
                | Self::StartLiveTail
        )
    }

    pub fn is_data(self) -> bool {
        matches!(self, Self::CreateLogStream | Self::PutLogEvents)
    }
}

/// Runs one operation.
pub fn execute(logs: &Logs, op: Operation, input: Value) -> Result<Value, LogsError> {
    if op.is_read() {
        // Lines whose write an environment deferred are read like the others.
        logs.store.flush_pending();
    }
    match op {
        Operation::DescribeLogGroups => logs.describe_log_groups(parse(input)?),
        Operation::DescribeLogStreams => logs.describe_log_streams(parse(input)?),
        Operation::GetLogEvents => logs.get_log_events(parse(input)?),
        Operation::FilterLogEvents => logs.filter_log_events(parse(input)?),
        Operation::CreateLogGroup => logs.create_log_group(parse(input)?),
        Operation::DeleteLogGroup => logs.delete_log_group(parse(input)?),
        Operation::CreateLogStream => logs.create_log_stream(parse(input)?),
        Operation::DeleteLogStream => logs.delete_log_stream(parse(input)?),
        Operation::PutLogEvents => logs.put_log_events(parse(input)?),
        Operation::PutRetentionPolicy => logs.put_retention_policy(parse(input)?),
        Operation::DeleteRetentionPolicy => logs.delete_retention_policy(parse(input)?),
        Operation::StartLiveTail => Err(LogsError::UnknownOperation(
            "StartLiveTail (a streamed operation)".into(),
        )),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(input: Value) -> Result<T, LogsError> {
    serde_json::from_value(input).map_err(|e| LogsError::Serialization(e.to_string()))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// How far a stream file's modification time may lag the timestamps of the events written
/// to it (the kernel stamps files from its coarse clock, several milliseconds behind; far more
/// than that here, since the skip it guards is only a shortcut).
const MTIME_SLACK_MS: i64 = 10_000;

fn modified_ms(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct GroupRef {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
}

impl GroupRef {
    /// The group named by its name or identifier (name or ARN), exactly one of them.
    fn name(&self) -> Result<String, LogsError> {
        match (&self.log_group_name, &self.log_group_identifier) {
            (Some(n), None) => Ok(n.clone()),
            (None, Some(id)) => Ok(group_of_identifier(id)),
            (Some(_), Some(_)) => Err(LogsError::invalid(
                "LogGroup name and LogGroup ARN are mutually exclusive parameters.",
            )),
            (None, None) => Err(LogsError::invalid(
                "Should provide either name or ARN of the LogGroup.",
            )),
        }
    }
}

/// `arn:aws:logs:<region>:<account>:log-group:<name>[:*]` → `<name>`; a name stays itself.
pub(crate) fn group_of_identifier(id: &str) -> String {
    match id.split_once(":log-group:") {
        Some((prefix, rest)) if prefix.starts_with("arn:") => {
            rest.strip_suffix(":*").unwrap_or(rest).to_string()
        }
        _ => id.to_string(),
    }
}

fn valid_group_name(name: &str) -> Result<(), LogsError> {
    let ok = !name.is_empty()
        && name.len() <= 512
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/' | b'#'));
    if ok {
        Ok(())
    } else {
        Err(LogsError::invalid(format!(
            "1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"
        )))
    }
}

fn valid_stream_name(name: &str) -> Result<(), LogsError> {
    if name.is_empty() || name.len() > 512 || name.contains([':', '*']) {
        return Err(LogsError::invalid(format!(
            "1 validation error detected: Value '{name}' at 'logStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*]*"
        )));
    }
    Ok(())
}

fn limit(asked: Option<i64>, max: usize, default: usize) -> Result<usize, LogsError> {
    match asked {
        None => Ok(default),
        Some(n) if n >= 1 && n as usize <= max => Ok(n as usize),
        Some(n) => Err(LogsError::invalid(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {max}"
        ))),
    }
}

pub(crate) fn bad_token() -> LogsError {
    LogsError::invalid("The specified nextToken is invalid.")
}

impl Logs {
    fn group_arn(&self, group: &str) -> String {
        format!(
            "arn:aws:logs:{}:{}:log-group:{group}",
            self.region, self.account_id
        )
    }

    /// Whether the group exists (created, or written by a function).
    pub(crate) fn group_exists(&self, group: &str) -> bool {
        self.exists(group)
    }

    /// Every stream of a group, by name.
    pub(crate) fn group_streams(&self, group: &str) -> Result<Vec<StreamFiles>, LogsError> {
        self.store.flush_pending();
        self.streams(group)
    }

    fn exists(&self, group: &str) -> bool {
        self.registry.get(group).is_some() || self.store.group_dir(group).is_dir()
    }

    fn require(&self, group: &str) -> Result<(), LogsError> {
        if self.exists(group) {
            Ok(())
        } else {
            Err(LogsError::group_not_found())
        }
    }

    /// Every stream of a group, by name.
    fn streams(&self, group: &str) -> Result<Vec<StreamFiles>, LogsError> {
        let dir = self.store.group_dir(group);
        Ok(StreamFiles::group(&dir, self.store.group_streams(group)?))
    }

    /// The stream `stream` of `group` (`ResourceNotFoundException` when it has no file).
    fn stream(&self, group: &str, stream: &str) -> Result<StreamFiles, LogsError> {
        self.require(group)?;
        StreamFiles::named(&self.store.group_dir(group), stream)
            .filter(StreamFiles::exists)
            .ok_or_else(LogsError::stream_not_found)
    }

    fn describe_log_groups(&self, input: DescribeGroups) -> Result<Value, LogsError> {
        let limit = limit(input.limit, 50, 50)?;
        if input.log_group_name_prefix.is_some() && input.log_group_name_pattern.is_some() {
            return Err(LogsError::invalid(
                "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
            ));
        }
        let registered = self.registry.all();
        let mut names: BTreeSet<String> = registered.keys().cloned().collect();
        let dirs = self.store.groups()?;
        names.extend(dirs.iter().map(|(n, _)| n.clone()));
        let wanted: Option<BTreeSet<String>> = input
            .log_group_identifiers
            .map(|ids| ids.iter().map(|i| group_of_identifier(i)).collect());
        let pattern = input.log_group_name_pattern.map(|p| p.to_lowercase());
        let mut out = Vec::new();
        let mut next = None;
        for name in names {
            if input
                .log_group_name_prefix
                .as_ref()
                .is_some_and(|p| !name.starts_with(p.as_str()))
                || pattern
                    .as_ref()
                    .is_some_and(|p| !name.to_lowercase().contains(p.as_str()))
                || wanted.as_ref().is_some_and(|w| !w.contains(&name))
                || input.next_token.as_ref().is_some_and(|t| name <= *t)
            {
                continue;
            }
            if out.len() == limit {
                next = out
                    .last()
                    .and_then(|g: &Value| g["logGroupName"].as_str().map(str::to_string));
                break;
            }
            let dir = self.store.group_dir(&name);
            let mut bytes = 0;
            for f in self.store.group_streams(&name)? {
                bytes += std::fs::metadata(f).map_or(0, |m| m.len());
            }
            let record = registered.get(&name).copied().unwrap_or_else(|| {
                let meta = std::fs::metadata(&dir).ok();
                GroupRecord {
                    creation_time: meta
                        .as_ref()
                        .and_then(|m| m.created().ok())
                        .and_then(|c| c.duration_since(UNIX_EPOCH).ok())
                        .map(|d| d.as_millis() as i64)
                        .or_else(|| meta.as_ref().map(modified_ms))
                        .unwrap_or(0),
                    retention_in_days: None,
                }
            });
            let arn = self.group_arn(&name);
            let mut g = json!({
                "logGroupName": name,
                "creationTime": record.creation_time,
                "metricFilterCount": 0,
                "arn": format!("{arn}:*"),
                "logGroupArn": arn,
                "storedBytes": bytes,
                "logGroupClass": "STANDARD",
            });
            if let Some(days) = record.retention_in_days {
                g["retentionInDays"] = json!(days);
            }
            out.push(g);
        }
        let mut res = json!({ "logGroups": out });
        if let Some(t) = next {
            res["nextToken"] = json!(t);
        }
        Ok(res)
    }

    fn describe_log_streams(&self, input: DescribeStreams) -> Result<Value, LogsError> {
        let group = input.group.name()?;
        let limit = limit(input.limit, 50, 50)?;
        let by_time = match input.order_by.as_deref() {
            None | Some("LogStreamName") => false,
            Some("LastEventTime") => true,
            Some(other) => {
                return Err(LogsError::invalid(format!(
                    "1 validation error detected: Value '{other}' at 'orderBy' failed to satisfy constraint: Member must satisfy enum value set: [LastEventTime, LogStreamName]"
                )));
            }
        };
        if by_time && input.log_stream_name_prefix.is_some() {
            return Err(LogsError::invalid(
                "Cannot order by LastEventTime with a logStreamNamePrefix.",
            ));
        }
        self.require(&group)?;
        let mut infos: Vec<StreamInfo> = Vec::new();
        for s in self.streams(&group)? {
            if input
                .log_stream_name_prefix
                .as_ref()
                .is_some_and(|p| !s.name.starts_with(p.as_str()))
            {
                continue;
            }
            match s.info() {
                Ok(i) => infos.push(i),
                // Removed by retention meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        if by_time {
            infos.sort_by(|a, b| {
                (a.last_event.unwrap_or(a.creation_time), &a.name)
                    .cmp(&(b.last_event.unwrap_or(b.creation_time), &b.name))
            });
        } else {
            infos.sort_by(|a, b| a.name.cmp(&b.name));
        }
        if input.descending.unwrap_or(false) {
            infos.reverse();
        }
        let start: usize = match &input.next_token {
            None => 0,
            Some(t) => t
                .strip_prefix("s/")
                .and_then(|n| n.parse().ok())
                .ok_or_else(bad_token)?,
        };
        let page: Vec<Value> = infos
            .iter()
            .skip(start)
            .take(limit)
            .map(|s| {
                let mut v = json!({
                    "logStreamName": s.name,
                    "creationTime": s.creation_time,
                    "lastIngestionTime": s.last_ingestion,
                    "uploadSequenceToken": "1",
                    "arn": format!("{}:log-stream:{}", self.group_arn(&group), s.name),
                    "storedBytes": s.stored_bytes,
                });
                if let (Some(first), Some(last)) = (s.first_event, s.last_event) {
                    v["firstEventTimestamp"] = json!(first);
                    v["lastEventTimestamp"] = json!(last);
                }
                v
            })
            .collect();
        let mut res = json!({ "logStreams": page });
        if start + limit < infos.len() {
            res["nextToken"] = json!(format!("s/{}", start + limit));
        }
        Ok(res)
    }

    fn get_log_events(&self, input: GetEvents) -> Result<Value, LogsError> {
        let group = input.group.name()?;
        let limit = limit(input.limit, 10_000, 10_000)?;
        let files = self.stream(&group, &input.log_stream_name)?;
        let token = match &input.next_token {
            None => None,
            Some(t) => Some(get::parse_token(t).ok_or_else(bad_token)?),
        };
        // The stream is read a line at a time; the page holds at most `limit` events and
        // MAX_RESPONSE_BYTES of them. At the end of the stream the same token comes back
        // (clients stop on a repeat).
        let page = get::page(
            &files,
            &get::Request {
                limit,
                max_bytes: MAX_RESPONSE_BYTES,
                start_time: input.start_time,
                end_time: input.end_time,
                start_from_head: input.start_from_head.unwrap_or(false),
                token,
            },
        )?
        .ok_or_else(LogsError::stream_not_found)?;
        let events: Vec<Value> = page
            .events
            .iter()
            .map(|e| {
                json!({
                    "timestamp": e.timestamp,
                    "message": e.message,
                    "ingestionTime": e.timestamp,
                })
            })
            .collect();
        Ok(json!({
            "events": events,
            "nextForwardToken": get::token(true, page.forward),
            "nextBackwardToken": get::token(false, page.backward),
        }))
    }

    fn filter_log_events(&self, input: FilterEvents) -> Result<Value, LogsError> {
        let group = input.group.name()?;
        let limit = limit(input.limit, 10_000, 10_000)?;
        if input.log_stream_names.is_some() && input.log_stream_name_prefix.is_some() {
            return Err(LogsError::invalid(
                "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.",
            ));
        }
        if input
            .log_stream_names
            .as_ref()
            .is_some_and(|n| n.len() > 100)
        {
            return Err(LogsError::invalid(
                "1 validation error detected: Value at 'logStreamNames' failed to satisfy constraint: Member must have length less than or equal to 100",
            ));
        }
        if input
            .filter_pattern
            .as_ref()
            .is_some_and(|p| p.len() > 1024)
        {
            return Err(LogsError::invalid(
                "1 validation error detected: Value at 'filterPattern' failed to satisfy constraint: Member must have length less than or equal to 1024",
            ));
        }
        let pattern = Pattern::parse(input.filter_pattern.as_deref().unwrap_or(""))
            .map_err(|e| LogsError::invalid(format!("Invalid filter pattern: {e}")))?;
        let (paused, rounds, after) = match &input.next_token {
            None => (None, 0, None),
            Some(t) => parse_filter_token(t).ok_or_else(bad_token)?,
        };
        self.require(&group)?;
        let id = QueryId {
            group: group.clone(),
            names: input.log_stream_names.clone(),
            prefix: input.log_stream_name_prefix.clone(),
            start: input.start_time,
            end: input.end_time,
            pattern: input.filter_pattern.clone(),
            limit,
        };
        // A paused search goes on with one budget; a new page, or one whose paused search is
        // gone, starts over with one budget more than the token says the page has taken (so
        // it gets further than before), at most `MAX_RESTART_ROUNDS` budgets.
        let resumed = paused.and_then(|pid| self.searches.resume(pid, &id, &after, rounds));
        let (mut progress, budget, rounds) = match resumed {
            Some(p) => (p, self.searches.budget(), rounds.saturating_add(1)),
            None => {
                let (budget, rounds) = self.searches.restart_budget(rounds);
                (Progress::new(id, after.clone()), budget, rounds)
            }
        };
        let query = Query {
            names: input.log_stream_names.as_deref(),
            prefix: input.log_stream_name_prefix.as_deref(),
            start: input.start_time,
            end: input.end_time,
            pattern: &pattern,
            limit,
            max_bytes: MAX_RESPONSE_BYTES,
        };
        // By name.
        let streams = self.streams(&group)?;
        // A stream last written well before the start holds nothing for us. The file's
        // modification time comes from the kernel's coarse clock, which lags the events' own
        // timestamps by up to a few milliseconds: a stream written just after `start` can
        // carry an older time, hence the slack.
        let stale = |file: &std::fs::File| {
            input.start_time.is_some_and(|start| {
                file.metadata()
                    .is_ok_and(|m| modified_ms(&m) < start.saturating_sub(MTIME_SLACK_MS))
            })
        };
        let (done, searched) = search::run(&query, &mut progress, &streams, budget, stale)?;
        let searched: Vec<Value> = searched
            .iter()
            .map(|name| json!({ "logStreamName": name, "searchedCompletely": true }))
            .collect();
        let mut res = json!({ "searchedLogStreams": searched });
        if !done {
            // Out of budget: an empty page whose token resumes the search where it stopped.
            let after = progress.after.clone();
            progress.rounds = rounds;
            let id = self.searches.pause(progress);
            res["nextToken"] = json!(paused_token(id, rounds, after.as_ref()));
            res["events"] = json!([]);
            return Ok(res);
        }
        let mut out = Vec::new();
        let mut next = None;
        for ((ts, stream, place), message) in &progress.matched {
            out.push(json!({
                "logStreamName": stream,
                "timestamp": ts,
                "message": message,
                "ingestionTime": ts,
                "eventId": event_id(*ts, stream, place),
            }));
            next = Some(filter_token(*ts, stream, place));
        }
        if progress.more
            && let Some(t) = next
        {
            res["nextToken"] = json!(t);
        }
        res["events"] = json!(out);
        Ok(res)
    }

    fn create_log_group(&self, input: GroupRef) -> Result<Value, LogsError> {
        let group = input.name()?;
        valid_group_name(&group)?;
        if self.exists(&group) {
            return Err(LogsError::ResourceAlreadyExists(
                "The specified log group already exists".into(),
            ));
        }
        self.store.create_group(&group)?;
        self.registry.update(|g| {
            g.insert(
                group.clone(),
                GroupRecord {
                    creation_time: now_ms(),
                    retention_in_days: None,
                },
            );
        })?;
        Ok(json!({}))
    }

    fn delete_log_group(&self, input: GroupRef) -> Result<Value, LogsError> {
        let group = input.name()?;
        self.require(&group)?;
        self.registry.update(|g| g.remove(&group))?;
        if !self.store.delete_group(&group)? {
            tracing::info!(group, "log group deleted; streams still written were kept");
        }
        Ok(json!({}))
    }

    fn create_log_stream(&self, input: StreamRef) -> Result<Value, LogsError> {
        let group = input.group.name()?;
        valid_stream_name(&input.log_stream_name)?;
        self.require(&group)?;
        if layout::rotated_from(&input.log_stream_name).is_some() {
            // Its environment's next rotation would replace it.
            return Err(LogsError::invalid(
                "The log stream name is reserved: it names where an execution environment's stream sets its earlier lines aside.",
            ));
        }
        let files = StreamFiles::named(&self.store.group_dir(&group), &input.log_stream_name)
            .ok_or_else(|| LogsError::invalid("The log stream name cannot be stored."))?;
        if files.exists() {
            return Err(LogsError::ResourceAlreadyExists(
                "The specified log stream already exists".into(),
            ));
        }
        self.append(&group, &input.log_stream_name, &[])?;
        Ok(json!({}))
    }

    fn delete_log_stream(&self, input: StreamRef) -> Result<Value, LogsError> {
        let group = input.group.name()?;
        let files = self.stream(&group, &input.log_stream_name)?;
        if self.store.is_open(&files.path) {
            return Err(LogsError::invalid(
                "The log stream is being written by an execution environment.",
            ));
        }
        for path in files.paths() {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(json!({}))
    }

    fn put_log_events(&self, input: PutEvents) -> Result<Value, LogsError> {
        let group = input.group.name()?;
        self.stream(&group, &input.log_stream_name)?;
        if input.log_events.is_empty() || input.log_events.len() > 10_000 {
            return Err(LogsError::invalid(
                "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length between 1 and 10000",
            ));
        }
        let size: usize = input.log_events.iter().map(|e| e.message.len() + 26).sum();
        if size > 1_048_576 {
            return Err(LogsError::invalid(
                "Upload too large: the batch of log events exceeds 1,048,576 bytes.",
            ));
        }
        if input
            .log_events
            .windows(2)
            .any(|w| w[1].timestamp < w[0].timestamp)
        {
            return Err(LogsError::invalid(
                "Log events in a single PutLogEvents request must be in chronological order.",
            ));
        }
        let events: Vec<(i64, String)> = input
            .log_events
            .into_iter()
            .map(|e| (e.timestamp, e.message))
            .collect();
        self.append(&group, &input.log_stream_name, &events)?;
        Ok(json!({ "nextSequenceToken": format!("{:056}", now_ms()) }))
    }

    fn append(&self, group: &str, stream: &str, events: &[(i64, String)]) -> Result<(), LogsError> {
        match self.store.append_events(group, stream, events) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(LogsError::invalid("The log stream name cannot be stored.")),
            Err(e) if e.kind() == std::io::ErrorKind::ResourceBusy => Err(LogsError::invalid(
                "The log stream is being written by an execution environment.",
            )),
            Err(e) => Err(e.into()),
        }
    }

    fn put_retention_policy(&self, input: Retention) -> Result<Value, LogsError> {
        let group = input.group.name()?;
        let days = input.retention_in_days.ok_or_else(|| {
            LogsError::invalid("1 validation error detected: Value null at 'retentionInDays' failed to satisfy constraint: Member must not be null")
        })?;
        if !RETENTION_DAYS.contains(&days) {
            return Err(LogsError::invalid(format!(
                "1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: {RETENTION_DAYS:?}"
            )));
        }
        self.require(&group)?;
        let created = self.creation_time(&group);
        self.registry.update(|g| {
            g.entry(group.clone())
                .or_insert(GroupRecord {
                    creation_time: created,
                    retention_in_days: None,
                })
                .retention_in_days = Some(days);
        })?;
        // Data older than the new period goes now, not at the next sweep.
        self.expire(&group, Duration::from_secs(u64::from(days) * 86_400))?;
        Ok(json!({}))
    }

    fn delete_retention_policy(&self, input: GroupRef) -> Result<Value, LogsError> {
        let group = input.name()?;
        self.require(&group)?;
        self.registry.update(|g| {
            if let Some(r) = g.get_mut(&group) {
                r.retention_in_days = None;
            }
        })?;
        Ok(json!({}))
    }

    fn creation_time(&self, group: &str) -> i64 {
        std::fs::metadata(self.store.group_dir(group))
            .map(|m| modified_ms(&m))
            .unwrap_or_else(|_| now_ms())
    }

    /// Deletes the group's streams last written more than `max_age` ago (never an open one).
    fn expire(&self, group: &str, max_age: Duration) -> Result<usize, LogsError> {
        let cutoff = SystemTime::now().checked_sub(max_age).unwrap_or(UNIX_EPOCH);
        let mut deleted = 0;
        for path in self.store.group_streams(group)? {
            let old = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .is_ok_and(|m| m < cutoff);
            if old && !self.store.is_open(&path) {
                match std::fs::remove_file(&path) {
                    Ok(()) => deleted += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(deleted)
    }
}

/// A stable 56-digit id: the timestamp, a hash of the stream's name and the identity of the
/// line's file, and the line's byte offset in that file. A rotation renames the file, so a
/// line keeps its id (what `aws logs tail --follow` de-duplicates by).
fn event_id(ts: i64, stream: &str, place: &Place) -> String {
    let mut key = stream.as_bytes().to_vec();
    for n in [place.file.dev, place.file.ino, place.file.born] {
        key.extend_from_slice(&n.to_le_bytes());
    }
    format!("{:016}{:020}{:020}", ts.max(0), fnv64(&key), place.offset)
}

/// The position after the last event returned:
/// `<ts>.<birth>-<device>-<inode>-<offset>.<hex of the stream name>`.
fn filter_token(ts: i64, stream: &str, place: &Place) -> String {
    let hex: String = stream.bytes().map(|b| format!("{b:02x}")).collect();
    let f = &place.file;
    format!("{ts}.{}-{}-{}-{}.{hex}", f.born, f.dev, f.ino, place.offset)
}

/// A paused search's token: `p<id>-<rounds>` (the budgets the page has taken so far) and,
/// after a `.`, the page's position (if any).
fn paused_token(id: u64, rounds: u64, after: Option<&Key>) -> String {
    match after {
        Some((ts, stream, place)) => {
            format!("p{id}-{rounds}.{}", filter_token(*ts, stream, place))
        }
        None => format!("p{id}-{rounds}"),
    }
}

/// A FilterLogEvents token: the paused search it resumes, if any, the budgets its page has
/// taken so far (0 for a page not started; a token without the count, as written before it
/// existed, counts 1) and the position after which the page starts.
#[allow(
    clippy::type_complexity,
    reason = "the three parts of a token, named by the doc"
)]
fn parse_filter_token(t: &str) -> Option<(Option<u64>, u64, Option<Key>)> {
    if let Some(rest) = t.strip_prefix('p') {
        let (id, after) = match rest.split_once('.') {
            Some((id, after)) => (id, Some(parse_position(after)?)),
            None => (rest, None),
        };
        let (id, rounds) = match id.split_once('-') {
            Some((id, rounds)) => (id, rounds.parse().ok()?),
            None => (id, 1),
        };
        return Some((Some(id.parse().ok()?), rounds, after));
    }
    Some((None, 0, Some(parse_position(t)?)))
}

fn parse_position(t: &str) -> Option<Key> {
    let mut parts = t.splitn(3, '.');
    let ts = parts.next()?.parse().ok()?;
    let mut numbers = parts.next()?.split('-').map(|n| n.parse::<u64>().ok());
    let mut number = || numbers.next().flatten();
    let (born, dev, ino, offset) = (number()?, number()?, number()?, number()?);
    if numbers.next().is_some() {
        return None;
    }
    let place = Place {
        file: FileId { dev, ino, born },
        offset,
    };
    let hex = parts.next()?;
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    Some((ts, String::from_utf8(bytes?).ok()?, place))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeGroups {
    log_group_name_prefix: Option<String>,
    log_group_name_pattern: Option<String>,
    log_group_identifiers: Option<Vec<String>>,
    limit: Option<i64>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeStreams {
    #[serde(flatten)]
    group: GroupRef,
    log_stream_name_prefix: Option<String>,
    order_by: Option<String>,
    descending: Option<bool>,
    limit: Option<i64>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetEvents {
    #[serde(flatten)]
    group: GroupRef,
    log_stream_name: String,
    start_time: Option<i64>,
    end_time: Option<i64>,
    limit: Option<i64>,
    start_from_head: Option<bool>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FilterEvents {
    #[serde(flatten)]
    group: GroupRef,
    log_stream_names: Option<Vec<String>>,
    log_stream_name_prefix: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    filter_pattern: Option<String>,
    limit: Option<i64>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StreamRef {
    #[serde(flatten)]
    group: GroupRef,
    log_stream_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InputEvent {
    timestamp: i64,
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutEvents {
    #[serde(flatten)]
    group: GroupRef,
    log_stream_name: String,
    log_events: Vec<InputEvent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Retention {
    #[serde(flatten)]
    group: GroupRef,
    retention_in_days: Option<u32>,
}

#[cfg(test)]
mod rotated_tests;
#[cfg(test)]
mod tests;
