//! Telemetry API (`2022-07-01`) and Logs API (`2020-08-15`) delivery: the platform's events and
//! the function's log lines, buffered per subscriber as it asked (`maxItems`, `maxBytes`,
//! `timeoutMs`), then POSTed as one JSON array (`HTTP`, on a connection kept alive between
//! batches) or written as JSON lines on a kept connection (`TCP`) to its destination, an address inside the environment
//! (`sandbox.localdomain` is the environment's loopback); see [`deliver`].
//!
//! A slow or dead subscriber never holds anything up: [`Telemetry::platform`] and
//! [`Telemetry::function_line`] only try to put an item into the subscriber's bounded queue
//! and count it as dropped when that is full; the subscriber later gets a
//! `platform.logsDropped` record with the count. Items emitted before the first subscription
//! during Init (the platform's `initStart`, early log lines) are kept (up to [`BACKLOG`]) and
//! handed to subscribers that arrive before Init ends, as Lambda does.
//!
//! The emitting side is cheap: callers ask [`Telemetry::wants`] (one atomic load) before they
//! build anything, so a kind nobody subscribed to costs nothing; a platform record is a small
//! typed value ([`Platform`], its short strings inline: no allocation), a function line is the
//! line as the output pump read it (moved, not copied), and an item moves into the queue of
//! the one subscriber it goes to (shared, `Arc`, only between several or with the Init backlog). The delivery task encodes a whole
//! batch straight into one reused buffer (each distinct millisecond's timestamp formatted
//! once), and is woken once per batch (by its first item, or when `maxItems`/`maxBytes` are
//! reached), not once per item.

pub(crate) mod deliver;
mod record;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

use kindling_otel::queue::BatchQueue;

use crate::types::{TelemetryApi, TelemetryNetwork, TelemetrySubscription};

pub use deliver::Buffering;
use deliver::{Destination, Dropped, Queue};
pub use record::{Platform, Report, Text, iso_bytes, write_platform_item};

/// Items kept for subscribers that subscribe during Init.
pub const BACKLOG: usize = 1000;

/// The category an item belongs to (`types` of a subscription).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Platform,
    Function,
    Extension,
}

impl Kind {
    fn bit(self) -> u8 {
        match self {
            Self::Platform => 1,
            Self::Function => 2,
            Self::Extension => 4,
        }
    }
}

const ALL_KINDS: u8 = 7;

/// One item, `{"time","type","record"}` once encoded: moved into the queue of the one
/// subscriber it goes to, or shared by several (and by the Init backlog).
#[derive(Debug)]
enum Item {
    Owned(Entry),
    Shared(Arc<Entry>),
}

impl std::ops::Deref for Item {
    type Target = Entry;

    fn deref(&self) -> &Entry {
        match self {
            Self::Owned(e) => e,
            Self::Shared(e) => e,
        }
    }
}

#[derive(Debug)]
struct Entry {
    /// Milliseconds since the epoch.
    time_ms: i64,
    record: Record,
}

#[derive(Debug)]
enum Record {
    Platform(Platform),
    Function(String),
    Extension(String),
}

/// `{"time":"2024-01-01T00:00:00.000Z","type":"","record":}`
const FRAME: usize = 56;

impl Entry {
    fn new(time_ms: i64, record: Record) -> Self {
        Self { time_ms, record }
    }

    fn kind(&self) -> Kind {
        match self.record {
            Record::Platform(_) => Kind::Platform,
            Record::Function(_) => Kind::Function,
            Record::Extension(_) => Kind::Extension,
        }
    }

    fn ty(&self) -> &'static str {
        match &self.record {
            Record::Platform(p) => p.ty(),
            Record::Function(_) => "function",
            Record::Extension(_) => "extension",
        }
    }

    /// About the encoded size, for `maxBytes` and dropped bytes (exact for lines without
    /// escapes, an estimate for platform records, which are encoded only when delivered).
    fn size(&self) -> usize {
        FRAME
            + self.ty().len()
            + match &self.record {
                Record::Platform(p) => p.size_hint(),
                Record::Function(l) | Record::Extension(l) => l.len() + 2,
            }
    }

    /// Appends the item's JSON, its time from `stamp` (the formatted time of `stamp.0`, reused
    /// while items share a millisecond).
    fn encode(&self, out: &mut Vec<u8>, stamp: &mut (i64, [u8; 24])) {
        if stamp.0 != self.time_ms {
            *stamp = (self.time_ms, iso_bytes(self.time_ms));
        }
        out.extend_from_slice(br#"{"time":""#);
        out.extend_from_slice(&stamp.1);
        out.extend_from_slice(br#"","type":""#);
        out.extend_from_slice(self.ty().as_bytes());
        out.extend_from_slice(br#"","record":"#);
        match &self.record {
            Record::Platform(p) => p.encode(out),
            Record::Function(l) | Record::Extension(l) => record::write_str(out, l),
        }
        out.push(b'}');
    }
}

struct Subscriber {
    types: u8,
    queue: Arc<Queue>,
}

impl Drop for Subscriber {
    /// The hub is gone: the delivery task sends what is queued, then ends.
    fn drop(&mut self) {
        self.queue.pending.close();
    }
}

#[derive(Default)]
struct Inner {
    subscribers: Vec<Subscriber>,
    /// Items emitted during Init, for subscribers still to come; `None` once Init is over.
    backlog: Option<VecDeque<Arc<Entry>>>,
}

/// One environment's telemetry hub.
pub struct Telemetry {
    inner: Mutex<Inner>,
    /// The kinds an item emitted now could reach (bits of [`Kind`]): every kind while Init is
    /// on (for subscribers still to come), then those some subscriber asked for.
    wanted: AtomicU8,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                subscribers: Vec::new(),
                backlog: Some(VecDeque::new()),
            }),
            wanted: AtomicU8::new(ALL_KINDS),
        }
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `YYYY-MM-DDThh:mm:ss.sssZ` of now.
pub fn now_iso() -> String {
    String::from_utf8_lossy(&iso_bytes(now_ms())).into_owned()
}

impl Telemetry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether an item of `kind` emitted now could reach anyone (one atomic load): callers
    /// build nothing when it could not.
    pub fn wants(&self, kind: Kind) -> bool {
        self.wanted.load(Ordering::Relaxed) & kind.bit() != 0
    }

    /// A platform event at `time_ms`: `{"time","type":record.ty(),"record":record}`.
    pub fn platform(&self, time_ms: i64, record: Platform) {
        if self.wants(Kind::Platform) {
            self.push(Entry::new(time_ms, Record::Platform(record)));
        }
    }

    /// One line of the function's output (`"type":"function"`, the line as the record), moved
    /// into the item that every subscriber shares.
    pub fn function_line(&self, time_ms: i64, line: String) {
        if self.wants(Kind::Function) {
            self.push(Entry::new(time_ms, Record::Function(line)));
        }
    }

    /// One line of an extension's output (`"type":"extension"`).
    pub fn extension_line(&self, time_ms: i64, line: String) {
        if self.wants(Kind::Extension) {
            self.push(Entry::new(time_ms, Record::Extension(line)));
        }
    }

    fn push(&self, entry: Entry) {
        let mut inner = self.lock();
        let bit = entry.kind().bit();
        let mut takers = inner.subscribers.iter().filter(|s| s.types & bit != 0);
        // The usual case, one subscriber after Init: the entry moves into its queue.
        if inner.backlog.is_none() && takers.clone().nth(1).is_none() {
            if let Some(s) = takers.next() {
                s.queue.offer(Item::Owned(entry));
            }
            return;
        }
        let item = Arc::new(entry);
        for s in takers {
            s.queue.offer(Item::Shared(Arc::clone(&item)));
        }
        if let Some(backlog) = inner.backlog.as_mut() {
            if backlog.len() == BACKLOG {
                backlog.pop_front();
            }
            backlog.push_back(item);
        }
    }

    /// Init is over: items are no longer kept for later subscribers.
    pub fn end_init(&self) {
        let mut inner = self.lock();
        inner.backlog = None;
        let wanted = inner.subscribers.iter().fold(0, |acc, s| acc | s.types);
        self.wanted.store(wanted, Ordering::Relaxed);
    }

    /// Starts delivering to a new subscriber (on the current tokio runtime), first what the
    /// backlog holds of its types.
    pub fn subscribe(
        &self,
        sub: &TelemetrySubscription,
        buffering: Buffering,
        network: TelemetryNetwork,
    ) {
        let types = sub.types.iter().fold(0u8, |acc, t| {
            acc | match t.as_str() {
                "platform" => Kind::Platform.bit(),
                "function" => Kind::Function.bit(),
                "extension" => Kind::Extension.bit(),
                _ => 0,
            }
        });
        let capacity = (buffering.max_items * 2).clamp(1000, 20_000);
        let queue = Arc::new(Queue {
            pending: BatchQueue::new(capacity),
            dropped: Dropped::default(),
            items: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            full: Notify::new(),
            buffering,
        });
        let destination = Destination {
            protocol: sub.protocol.clone(),
            uri: sub.uri.clone(),
            api: sub.api,
            network,
        };
        tokio::spawn(deliver::deliver(destination, Arc::clone(&queue)));
        let notice = Entry::new(
            now_ms(),
            Record::Platform(Platform::TelemetrySubscription {
                name: sub.extension.as_str().into(),
                types: sub.types.clone(),
            }),
        );
        let mut inner = self.lock();
        for item in inner.backlog.iter().flatten() {
            if types & item.kind().bit() != 0 {
                queue.offer(Item::Shared(Arc::clone(item)));
            }
        }
        if sub.api == TelemetryApi::Telemetry && types & Kind::Platform.bit() != 0 {
            queue.offer(Item::Owned(notice));
        }
        inner.subscribers.push(Subscriber { types, queue });
        if inner.backlog.is_none() {
            self.wanted.fetch_or(types, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests;
