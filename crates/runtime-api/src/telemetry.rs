//! Telemetry API (`2022-07-01`) and Logs API (`2020-08-15`) delivery: the platform's events and
//! the function's log lines, buffered per subscriber as it asked (`maxItems`, `maxBytes`,
//! `timeoutMs`), then POSTed as one JSON array (`HTTP`) or written as JSON lines on a kept
//! connection (`TCP`) to its destination, an address inside the environment
//! (`sandbox.localdomain` is the environment's loopback).
//!
//! A slow or dead subscriber never holds anything up: [`Telemetry::emit`] only tries to put an
//! item into the subscriber's bounded queue and counts it as dropped when that is full; the
//! subscriber later gets a `platform.logsDropped` record with the count. Items emitted before
//! the first subscription during Init (the platform's `initStart`, early log lines) are kept
//! (up to [`BACKLOG`]) and handed to subscribers that arrive before Init ends, as Lambda does.
//!
//! The emitting side is cheap: an item is the record as given (a JSON value or a line) with its
//! time, shared by every subscriber; the delivery task encodes a whole batch into one reused
//! buffer, and is woken once per batch (by its first item, or when `maxItems`/`maxBytes` are
//! reached), not once per item.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};

use crate::types::{TelemetryApi, TelemetrySubscription};

/// Items kept for subscribers that subscribe during Init.
pub const BACKLOG: usize = 1000;
/// How long one delivery may take before it is given up (and its items counted as dropped).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

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

/// One item, `{"time","type","record"}` once encoded; shared by the subscribers it goes to.
type Item = Arc<Entry>;

#[derive(Debug)]
struct Entry {
    kind: Kind,
    /// Milliseconds since the epoch.
    time_ms: i64,
    /// `type`.
    ty: &'static str,
    record: Record,
}

#[derive(Debug)]
enum Record {
    Json(Value),
    Line(Box<str>),
}

impl Entry {
    fn new(kind: Kind, ty: &'static str, record: Record) -> Item {
        Arc::new(Self {
            kind,
            time_ms: now_ms(),
            ty,
            record,
        })
    }

    /// About the encoded size, for `maxBytes` and dropped bytes (exact for lines, an estimate
    /// for platform records, which are encoded only when delivered).
    fn size(&self) -> usize {
        const FRAME: usize = r#"{"time":"2024-01-01T00:00:00.000Z","type":"","record":}"#.len();
        FRAME
            + self.ty.len()
            + match &self.record {
                Record::Json(_) => 160,
                Record::Line(l) => l.len() + 2,
            }
    }

    /// Appends the item's JSON.
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"time":""#);
        write_iso(out, self.time_ms);
        out.extend_from_slice(br#"","type":"#);
        let _ = serde_json::to_writer(&mut *out, self.ty);
        out.extend_from_slice(br#","record":"#);
        let _ = match &self.record {
            Record::Json(v) => serde_json::to_writer(&mut *out, v),
            Record::Line(l) => serde_json::to_writer(&mut *out, &**l),
        };
        out.push(b'}');
    }
}

/// Buffering as asked, within Lambda's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffering {
    pub max_items: usize,
    pub max_bytes: usize,
    pub timeout: Duration,
}

impl Default for Buffering {
    fn default() -> Self {
        Self {
            max_items: 10_000,
            max_bytes: 262_144,
            timeout: Duration::from_millis(1000),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct BufferingBody {
    max_items: Option<u64>,
    max_bytes: Option<u64>,
    timeout_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
struct SubscribeBody {
    #[serde(default)]
    buffering: Option<BufferingBody>,
}

impl Buffering {
    /// The `buffering` of a subscription body; values outside Lambda's bounds are refused.
    pub fn of_body(raw: &[u8]) -> Result<Self, String> {
        let body: SubscribeBody = serde_json::from_slice(raw).unwrap_or_default();
        let b = body.buffering.unwrap_or_default();
        let d = Self::default();
        let check = |v: Option<u64>, lo: u64, hi: u64, name: &str, default: u64| match v {
            None => Ok(default),
            Some(v) if (lo..=hi).contains(&v) => Ok(v),
            Some(v) => Err(format!(
                "buffering.{name} must be between {lo} and {hi} (got {v})"
            )),
        };
        Ok(Self {
            max_items: check(b.max_items, 1000, 10_000, "maxItems", d.max_items as u64)? as usize,
            max_bytes: check(
                b.max_bytes,
                262_144,
                1_048_576,
                "maxBytes",
                d.max_bytes as u64,
            )? as usize,
            timeout: Duration::from_millis(check(b.timeout_ms, 25, 30_000, "timeoutMs", 1000)?),
        })
    }
}

struct Subscriber {
    types: u8,
    tx: mpsc::Sender<Item>,
    queue: Arc<Queue>,
}

/// What the emitting side and a subscriber's delivery task share.
struct Queue {
    dropped: Dropped,
    /// Items (and their bytes) sent and not yet taken by the delivery task.
    items: AtomicUsize,
    bytes: AtomicUsize,
    /// `maxItems` or `maxBytes` are queued: the batch is due.
    full: Notify,
    buffering: Buffering,
}

impl Queue {
    /// Offers an item; counts it as dropped when the subscriber's queue is full. Never waits.
    fn offer(&self, tx: &mpsc::Sender<Item>, item: &Item) {
        let size = item.size();
        // Counted before they are sent, so the delivery task never counts them out first.
        let items = self.items.fetch_add(1, Ordering::Relaxed) + 1;
        let bytes = self.bytes.fetch_add(size, Ordering::Relaxed) + size;
        if tx.try_send(Arc::clone(item)).is_err() {
            self.items.fetch_sub(1, Ordering::Relaxed);
            self.bytes.fetch_sub(size, Ordering::Relaxed);
            self.dropped.records.fetch_add(1, Ordering::Relaxed);
            self.dropped.bytes.fetch_add(size as u64, Ordering::Relaxed);
        } else if items == self.buffering.max_items
            || (bytes >= self.buffering.max_bytes && bytes - size < self.buffering.max_bytes)
        {
            self.full.notify_one();
        }
    }

    fn is_due(&self) -> bool {
        self.items.load(Ordering::Relaxed) >= self.buffering.max_items
            || self.bytes.load(Ordering::Relaxed) >= self.buffering.max_bytes
    }
}

#[derive(Default)]
struct Dropped {
    records: AtomicU64,
    bytes: AtomicU64,
}

#[derive(Default)]
struct Inner {
    subscribers: Vec<Subscriber>,
    /// Items emitted during Init, for subscribers still to come; `None` once Init is over.
    backlog: Option<VecDeque<Item>>,
}

/// One environment's telemetry hub.
pub struct Telemetry {
    inner: Mutex<Inner>,
    /// Someone may want items: a subscriber exists or Init is still on.
    wanted: AtomicBool,
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
            wanted: AtomicBool::new(true),
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `YYYY-MM-DDThh:mm:ss.sssZ` of now.
pub fn now_iso() -> String {
    let mut out = Vec::with_capacity(24);
    write_iso(&mut out, now_ms());
    String::from_utf8(out).unwrap_or_default()
}

/// Appends `YYYY-MM-DDThh:mm:ss.sssZ` of `ms` since the epoch.
fn write_iso(out: &mut Vec<u8>, ms: i64) {
    use std::io::Write;
    let secs = ms.div_euclid(1000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60,
        ms.rem_euclid(1000)
    );
}

impl Telemetry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether an item emitted now could reach anyone (one atomic load).
    pub fn wanted(&self) -> bool {
        self.wanted.load(Ordering::Relaxed)
    }

    /// A platform event: `{"time","type":kind,"record":record}`.
    pub fn platform(&self, kind: &'static str, record: Value) {
        if self.wanted() {
            self.push(Entry::new(Kind::Platform, kind, Record::Json(record)));
        }
    }

    /// One line of the function's output (`"type":"function"`, the line as the record).
    pub fn function_line(&self, line: &str) {
        if self.wanted() {
            self.push(Entry::new(
                Kind::Function,
                "function",
                Record::Line(line.into()),
            ));
        }
    }

    /// One line of an extension's output (`"type":"extension"`).
    pub fn extension_line(&self, line: &str) {
        if self.wanted() {
            self.push(Entry::new(
                Kind::Extension,
                "extension",
                Record::Line(line.into()),
            ));
        }
    }

    fn push(&self, item: Item) {
        let mut inner = self.lock();
        if let Some(backlog) = inner.backlog.as_mut() {
            if backlog.len() == BACKLOG {
                backlog.pop_front();
            }
            backlog.push_back(Arc::clone(&item));
        }
        for s in &inner.subscribers {
            if s.types & item.kind.bit() != 0 {
                s.queue.offer(&s.tx, &item);
            }
        }
    }

    /// Init is over: items are no longer kept for later subscribers.
    pub fn end_init(&self) {
        let mut inner = self.lock();
        inner.backlog = None;
        self.wanted
            .store(!inner.subscribers.is_empty(), Ordering::Relaxed);
    }

    /// Starts delivering to a new subscriber (on the current tokio runtime), first what the
    /// backlog holds of its types.
    pub fn subscribe(&self, sub: &TelemetrySubscription, buffering: Buffering) {
        let types = sub.types.iter().fold(0u8, |acc, t| {
            acc | match t.as_str() {
                "platform" => Kind::Platform.bit(),
                "function" => Kind::Function.bit(),
                "extension" => Kind::Extension.bit(),
                _ => 0,
            }
        });
        let capacity = (buffering.max_items * 2).clamp(1000, 20_000);
        let (tx, rx) = mpsc::channel(capacity);
        let queue = Arc::new(Queue {
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
        };
        tokio::spawn(deliver(rx, destination, Arc::clone(&queue)));
        let notice = Entry::new(
            Kind::Platform,
            "platform.telemetrySubscription",
            Record::Json(
                json!({ "name": sub.extension, "state": "Subscribed", "types": sub.types }),
            ),
        );
        let mut inner = self.lock();
        // Any earlier subscription of this extension is replaced.
        for item in inner.backlog.iter().flatten() {
            if types & item.kind.bit() != 0 {
                queue.offer(&tx, item);
            }
        }
        if sub.api == TelemetryApi::Telemetry && types & Kind::Platform.bit() != 0 {
            queue.offer(&tx, &notice);
        }
        inner.subscribers.push(Subscriber { types, tx, queue });
        self.wanted.store(true, Ordering::Relaxed);
    }
}

struct Destination {
    protocol: String,
    uri: String,
    api: TelemetryApi,
}

/// Buffers and sends one subscriber's items until the hub is gone.
async fn deliver(mut rx: mpsc::Receiver<Item>, dest: Destination, queue: Arc<Queue>) {
    let Some((host, port, path)) = parse_uri(&dest.uri) else {
        tracing::debug!(
            uri = dest.uri,
            "telemetry destination is not an http://host:port URI"
        );
        return;
    };
    let tcp_lines = dest.protocol == "TCP";
    let buffering = queue.buffering;
    let mut tcp: Option<TcpStream> = None;
    let mut batch: Vec<Item> = Vec::new();
    let mut body: Vec<u8> = Vec::new();
    // Waiting in `recv` is the only time an emitter wakes this task: after the first item of a
    // batch it sleeps until the batch is due (timeout, maxItems or maxBytes), then takes what
    // is queued.
    while let Some(first) = rx.recv().await {
        let mut bytes = first.size();
        batch.push(first);
        if !queue.is_due() {
            let deadline = tokio::time::Instant::now() + buffering.timeout;
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = queue.full.notified() => {}
            }
        }
        while batch.len() < buffering.max_items && bytes < buffering.max_bytes {
            match rx.try_recv() {
                Ok(item) => {
                    bytes += item.size();
                    batch.push(item);
                }
                Err(_) => break,
            }
        }
        queue.items.fetch_sub(batch.len(), Ordering::Relaxed);
        queue.bytes.fetch_sub(bytes, Ordering::Relaxed);
        let lost = queue.dropped.records.swap(0, Ordering::Relaxed);
        let lost_bytes = queue.dropped.bytes.swap(0, Ordering::Relaxed);
        if lost > 0 {
            batch.push(Entry::new(
                Kind::Platform,
                "platform.logsDropped",
                Record::Json(json!({
                    "reason": "Some logs were dropped because the downstream consumer is slower than the logs production rate",
                    "droppedRecords": lost,
                    "droppedBytes": lost_bytes,
                })),
            ));
        }
        body.clear();
        if tcp_lines {
            for item in &batch {
                item.encode(&mut body);
                body.push(b'\n');
            }
        } else {
            body.push(b'[');
            for (n, item) in batch.iter().enumerate() {
                if n > 0 {
                    body.push(b',');
                }
                item.encode(&mut body);
            }
            body.push(b']');
        }
        let sent = if tcp_lines {
            send_tcp(&mut tcp, &host, port, &body).await
        } else {
            post(&host, port, &path, &body).await
        };
        if let Err(e) = sent {
            tracing::debug!(uri = dest.uri, api = ?dest.api, error = %e, "telemetry delivery failed");
            queue
                .dropped
                .records
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
        batch.clear();
        // A body far above the usual is not kept.
        if body.capacity() > 2 * buffering.max_bytes.max(1 << 20) {
            body = Vec::new();
        }
    }
}

/// `http://host:port/path` → (`host` with `sandbox.localdomain` as the loopback, port, path).
fn parse_uri(uri: &str) -> Option<(String, u16, String)> {
    let rest = uri.strip_prefix("http://").unwrap_or(uri);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = authority.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = match host {
        "sandbox.localdomain" | "sandbox" | "localhost" => "127.0.0.1",
        h => h,
    };
    Some((host.to_string(), port, path.to_string()))
}

/// One POST of the batch as a JSON array; the subscriber's answer is read and ignored.
async fn post(host: &str, port: u16, path: &str, body: &[u8]) -> std::io::Result<()> {
    let exchange = async {
        let mut s = TcpStream::connect((host, port)).await?;
        s.set_nodelay(true)?;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: sandbox.localdomain:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await?;
        s.write_all(body).await?;
        let mut status = [0u8; 12];
        s.read_exact(&mut status).await?;
        let mut rest = [0u8; 4096];
        while s.read(&mut rest).await? > 0 {}
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(DELIVERY_TIMEOUT, exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "subscriber too slow"))?
}

/// The batch as JSON lines on a kept connection (reconnected after an error).
async fn send_tcp(
    conn: &mut Option<TcpStream>,
    host: &str,
    port: u16,
    lines: &[u8],
) -> std::io::Result<()> {
    let attempt = async {
        if conn.is_none() {
            *conn = Some(TcpStream::connect((host, port)).await?);
        }
        match conn.as_mut() {
            Some(s) => s.write_all(lines).await,
            None => Ok(()),
        }
    };
    let result = tokio::time::timeout(DELIVERY_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "slow")));
    if result.is_err() {
        *conn = None;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn sub(uri: String, types: &[&str]) -> TelemetrySubscription {
        TelemetrySubscription {
            extension: "ext".into(),
            api: TelemetryApi::Telemetry,
            protocol: "HTTP".into(),
            uri,
            types: types.iter().map(|t| t.to_string()).collect(),
            raw: bytes::Bytes::new(),
        }
    }

    /// A subscriber that answers 200 and hands every body over.
    async fn receiver() -> (String, mpsc::UnboundedReceiver<Vec<Value>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65536];
                loop {
                    let n = s.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf);
                    if let Some(i) = text.find("\r\n\r\n") {
                        let len: usize = text[..i]
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .unwrap()
                            .parse()
                            .unwrap();
                        if buf.len() >= i + 4 + len {
                            let body: Vec<Value> =
                                serde_json::from_slice(&buf[i + 4..i + 4 + len]).unwrap();
                            tx.send(body).unwrap();
                            break;
                        }
                    }
                }
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    .await
                    .unwrap();
            }
        });
        (format!("http://sandbox.localdomain:{port}/telemetry"), rx)
    }

    #[tokio::test]
    async fn delivers_backlog_and_later_items_in_batches_by_type() {
        let hub = Telemetry::default();
        hub.platform("platform.initStart", json!({"phase": "init"}));
        let (uri, mut rx) = receiver().await;
        let buffering = Buffering {
            max_items: 1000,
            max_bytes: 262_144,
            timeout: Duration::from_millis(50),
        };
        hub.subscribe(&sub(uri, &["platform"]), buffering);
        hub.end_init();
        hub.function_line("not subscribed");
        hub.platform("platform.start", json!({"requestId": "r1"}));
        let mut types = Vec::new();
        while types.len() < 3 {
            let batch = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
                .unwrap();
            types.extend(
                batch
                    .iter()
                    .map(|i| i["type"].as_str().unwrap().to_string()),
            );
        }
        assert_eq!(
            types,
            [
                "platform.initStart",
                "platform.telemetrySubscription",
                "platform.start"
            ]
        );
    }

    #[tokio::test]
    async fn a_batch_goes_once_max_items_are_queued_before_its_timeout() {
        let hub = Telemetry::default();
        let (uri, mut rx) = receiver().await;
        let buffering = Buffering {
            max_items: 1000,
            max_bytes: 1_048_576,
            timeout: Duration::from_secs(30),
        };
        hub.subscribe(&sub(uri, &["function"]), buffering);
        hub.end_init();
        // 2 000 fit the queue (2 x maxItems): none is dropped.
        for i in 0..2000 {
            hub.function_line(&format!("line \"{i}\""));
        }
        let mut records = Vec::new();
        while records.len() < 2000 {
            let batch = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .unwrap()
                .unwrap();
            assert!(batch.len() <= 1000);
            for item in &batch {
                assert_eq!(item["type"], "function");
                assert!(item["time"].as_str().unwrap().ends_with('Z'));
            }
            records.extend(
                batch
                    .iter()
                    .map(|i| i["record"].as_str().unwrap().to_string()),
            );
        }
        let expected: Vec<String> = (0..2000).map(|i| format!("line \"{i}\"")).collect();
        assert_eq!(records, expected);
    }

    #[tokio::test]
    async fn a_dead_subscriber_never_blocks_and_drops_are_counted() {
        let hub = Telemetry::default();
        // Nothing listens there: deliveries fail, emitting never waits.
        hub.subscribe(
            &sub("http://127.0.0.1:9/x".into(), &["platform", "function"]),
            Buffering::default(),
        );
        hub.end_init();
        let started = std::time::Instant::now();
        for i in 0..50_000 {
            hub.function_line(&format!("line {i}"));
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        let inner = hub.lock();
        assert!(
            inner.subscribers[0]
                .queue
                .dropped
                .records
                .load(Ordering::Relaxed)
                > 0
        );
    }

    #[test]
    fn buffering_bounds() {
        assert_eq!(Buffering::of_body(b"{}").unwrap(), Buffering::default());
        let b = Buffering::of_body(
            br#"{"buffering":{"maxItems":1000,"maxBytes":262144,"timeoutMs":25}}"#,
        )
        .unwrap();
        assert_eq!(b.timeout, Duration::from_millis(25));
        assert!(Buffering::of_body(br#"{"buffering":{"timeoutMs":5}}"#).is_err());
        assert!(now_iso().ends_with('Z'));
        assert_eq!(
            parse_uri("http://sandbox.localdomain:8080/x"),
            Some(("127.0.0.1".into(), 8080, "/x".into()))
        );
    }
}
