//! One subscriber's delivery: its bounded queue (shared with the emitting side) and the task
//! that takes a batch when it is due (`timeoutMs` after its first item, or `maxItems` or
//! `maxBytes` queued), encodes it into one reused buffer and sends it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use kindling_otel::post::{Connection, Dial, Target};
use kindling_otel::queue::BatchQueue;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::{Entry, Item, Platform, Record};
use crate::types::{TelemetryApi, TelemetryNetwork};

/// How long one delivery may take before it is given up (and its items counted as dropped).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

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

/// What the emitting side and a subscriber's delivery task share.
pub(super) struct Queue {
    /// The items emitted and not yet taken by the delivery task (2 × `maxItems`, within
    /// 1 000-20 000).
    pub(super) pending: BatchQueue<Item>,
    pub(super) dropped: Dropped,
    /// Items (and their bytes) sent and not yet taken by the delivery task.
    pub(super) items: AtomicUsize,
    pub(super) bytes: AtomicUsize,
    /// `maxItems` or `maxBytes` are queued: the batch is due.
    pub(super) full: Notify,
    pub(super) buffering: Buffering,
}

impl Queue {
    /// Offers an item; counts it as dropped when the subscriber's queue is full. Never waits.
    pub(super) fn offer(&self, item: Item) {
        let size = item.size();
        // Counted before they are sent, so the delivery task never counts them out first.
        let items = self.items.fetch_add(1, Ordering::Relaxed) + 1;
        let bytes = self.bytes.fetch_add(size, Ordering::Relaxed) + size;
        if self.pending.push(item).is_err() {
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
pub(super) struct Dropped {
    pub(super) records: AtomicU64,
    pub(super) bytes: AtomicU64,
}

pub(super) struct Destination {
    pub(super) protocol: String,
    pub(super) uri: String,
    pub(super) api: TelemetryApi,
    pub(super) network: TelemetryNetwork,
}

/// Buffers and sends one subscriber's items until the hub is gone.
pub(super) async fn deliver(dest: Destination, queue: Arc<Queue>) {
    let Some((host, port, path)) = parse_uri(&dest.uri) else {
        tracing::debug!(
            uri = dest.uri,
            "telemetry destination is not an http://host:port URI"
        );
        // Nothing is delivered: emitting counts its items as dropped at once.
        queue.pending.close();
        return;
    };
    let tcp_lines = dest.protocol == "TCP";
    let buffering = queue.buffering;
    let mut tcp: Option<TcpStream> = None;
    // HTTP: one connection kept alive between batches.
    let mut http = Connection::new(&Target {
        host: &host,
        port,
        authority: &format!("sandbox.localdomain:{port}"),
        path: &path,
        content_type: "application/json",
        timeout: DELIVERY_TIMEOUT,
    });
    let dial = match &dest.network {
        TelemetryNetwork::Host => None,
        TelemetryNetwork::Dialed(dial) => {
            http = http.dialing(Arc::clone(dial));
            Some(dial)
        }
    };
    let mut batch: VecDeque<Item> = VecDeque::new();
    let mut body: Vec<u8> = Vec::new();
    // The last timestamp formatted (items of one millisecond share it).
    let mut stamp = (i64::MIN, [0u8; 24]);
    // Waiting for a batch's first item is the only time an emitter wakes this task: then it
    // sleeps until the batch is due (timeout, maxItems or maxBytes), and takes what is queued
    // under one lock.
    while queue.pending.wait().await {
        if !queue.is_due() {
            let deadline = tokio::time::Instant::now() + buffering.timeout;
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = queue.full.notified() => {}
            }
        }
        let (mut items, mut bytes) = (0, 0);
        queue.pending.take(&mut batch, |item| {
            let fits = items < buffering.max_items && bytes < buffering.max_bytes;
            if fits {
                items += 1;
                bytes += item.size();
            }
            fits
        });
        queue.items.fetch_sub(items, Ordering::Relaxed);
        queue.bytes.fetch_sub(bytes, Ordering::Relaxed);
        let lost = queue.dropped.records.swap(0, Ordering::Relaxed);
        let lost_bytes = queue.dropped.bytes.swap(0, Ordering::Relaxed);
        if lost > 0 {
            batch.push_back(Item::Owned(Entry::new(
                super::now_ms(),
                Record::Platform(Platform::LogsDropped {
                    records: lost,
                    bytes: lost_bytes,
                }),
            )));
        }
        body.clear();
        if tcp_lines {
            for item in &batch {
                item.encode(&mut body, &mut stamp);
                body.push(b'\n');
            }
        } else {
            body.push(b'[');
            for (n, item) in batch.iter().enumerate() {
                if n > 0 {
                    body.push(b',');
                }
                item.encode(&mut body, &mut stamp);
            }
            body.push(b']');
        }
        // The subscriber's answer is read (to keep the connection) and its status ignored.
        let sent = if tcp_lines {
            send_tcp(&mut tcp, dial, &host, port, &body).await
        } else {
            // Kept as the source: `PostError` says what failed.
            http.post(&body)
                .await
                .map(drop)
                .map_err(std::io::Error::other)
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

/// The hosts a destination may name (any letter case: host names are case-insensitive).
/// IPv6's `[::1]` is not one of them: every way a delivery is made dials IPv4's `127.0.0.1`
/// (inside the environment's network namespace, or on the host's loopback with a socket of the
/// environment's user), so a subscriber listening on `[::1]` would never be reached.
pub(crate) const DESTINATION_HOSTS: &str = "sandbox.localdomain, sandbox, localhost or 127.0.0.1";

/// `http://host:port/path` → (`127.0.0.1`, port, path). A destination is inside the
/// environment (as Lambda requires): its host is `sandbox.localdomain` (or `sandbox`,
/// `localhost`, `127.0.0.1`; [`DESTINATION_HOSTS`], in any letter case), the environment's
/// loopback (the host's, or its own namespace's through [`TelemetryNetwork::Dialed`]); any
/// other host is refused (`None`), since Kindling connects from its own process and would
/// reach it for the function.
pub(crate) fn parse_uri(uri: &str) -> Option<(String, u16, String)> {
    let rest = match uri.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("http://") => &uri[7..],
        _ => uri,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = authority.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let allowed = ["sandbox.localdomain", "sandbox", "localhost", "127.0.0.1"]
        .iter()
        .any(|h| host.eq_ignore_ascii_case(h));
    if !allowed {
        return None;
    }
    Some(("127.0.0.1".to_string(), port, path.to_string()))
}

/// The batch as JSON lines on a kept connection (reconnected after an error).
async fn send_tcp(
    conn: &mut Option<TcpStream>,
    dial: Option<&Dial>,
    host: &str,
    port: u16,
    lines: &[u8],
) -> std::io::Result<()> {
    let attempt = async {
        if conn.is_none() {
            *conn = Some(match dial {
                Some(dial) => dial(host, port).await?,
                None => TcpStream::connect((host, port)).await?,
            });
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
