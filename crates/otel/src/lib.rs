//! Spans to an OpenTelemetry collector over OTLP/HTTP with the JSON encoding
//! (`POST <endpoint>/v1/traces`, `application/json`, hex trace and span ids), as the OTLP
//! specification defines it for HTTP/JSON.
//!
//! [`Exporter::record`] never waits: spans go into a bounded queue (full: the span is dropped
//! and counted); a background task sends them in batches (up to [`BATCH`] spans, or what came
//! within [`FLUSH_EVERY`]). A collector that is down costs a failed connection per batch, the
//! batch is dropped and counted. Plain `http://` only (a local collector or agent).
//!
//! The recording side is cheap: a [`Span`] is a small struct (ids as integers, names and
//! attributes shared or static where they can be), nothing is encoded until the batch task
//! writes the whole batch into one reused buffer, and the batch task is woken once per batch
//! (by the first span of a batch, or when a full batch is queued), not once per span.
//! *Invariant: the caller's path does one `try_send` and an atomic add.*

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};

/// Most spans in one request.
pub const BATCH: usize = 512;
/// Longest a span waits before its batch is sent.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// Spans queued at most; more are dropped.
pub const QUEUE: usize = 8192;

/// OTLP span kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

/// A 128-bit trace id (written as 32 lowercase hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceId(pub u128);

impl TraceId {
    /// 32 hex digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u128::from_str_radix(hex, 16).ok().map(Self))
            .flatten()
    }
}

/// A 64-bit span id (written as 16 lowercase hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanId(pub u64);

impl SpanId {
    /// 16 hex digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        (hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u64::from_str_radix(hex, 16).ok().map(Self))
            .flatten()
    }
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(Cow<'static, str>),
    Int(i64),
    Bool(bool),
}

/// Attributes, keyed by static names.
pub type Attributes = Vec<(&'static str, AttrValue)>;

/// One finished span.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub name: Cow<'static, str>,
    pub kind: SpanKind,
    pub start: SystemTime,
    pub end: SystemTime,
    /// Attributes several spans share (an invocation's), written before [`Span::attributes`].
    pub shared: Option<Arc<Attributes>>,
    pub attributes: Attributes,
    /// The operation failed (status code ERROR), with a message.
    pub error: Option<String>,
}

fn nanos(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

impl Span {
    fn all_attributes(&self) -> impl Iterator<Item = &(&'static str, AttrValue)> {
        self.shared
            .iter()
            .flat_map(|a| a.iter())
            .chain(self.attributes.iter())
    }

    fn to_json(&self) -> Value {
        let attributes: Vec<Value> = self
            .all_attributes()
            .map(|(k, v)| {
                let value = match v {
                    AttrValue::Str(s) => json!({ "stringValue": s }),
                    AttrValue::Int(i) => json!({ "intValue": i.to_string() }),
                    AttrValue::Bool(b) => json!({ "boolValue": b }),
                };
                json!({ "key": k, "value": value })
            })
            .collect();
        let mut span = json!({
            "traceId": format!("{:032x}", self.trace_id.0),
            "spanId": format!("{:016x}", self.span_id.0),
            "name": self.name,
            "kind": self.kind as i32,
            "startTimeUnixNano": nanos(self.start).to_string(),
            "endTimeUnixNano": nanos(self.end.max(self.start)).to_string(),
            "attributes": attributes,
            "status": match &self.error {
                None => json!({ "code": 1 }),
                Some(m) => json!({ "code": 2, "message": m }),
            },
        });
        if let Some(p) = &self.parent_span_id {
            span["parentSpanId"] = json!(format!("{:016x}", p.0));
        }
        span
    }
}

/// `s` as a JSON string.
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        match escape {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{:04x}", b);
            }
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

/// The OTLP/HTTP JSON body of a batch (see [`write_export`]).
pub fn export_text(service_name: &str, spans: &[Span]) -> String {
    let mut out = String::with_capacity(256 + spans.len() * 640);
    write_export(&mut out, service_name, spans);
    out
}

/// Writes the OTLP/HTTP JSON body of a batch into `out` directly (no intermediate JSON tree;
/// the exporter reuses one buffer for every batch).
pub fn write_export(out: &mut String, service_name: &str, spans: &[Span]) {
    out.push_str(r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"#);
    write_str(out, service_name);
    let _ = write!(
        out,
        r#"}}}},{{"key":"cloud.provider","value":{{"stringValue":"kindling"}}}}]}},"scopeSpans":[{{"scope":{{"name":"kindling","version":"{}"}},"spans":["#,
        env!("CARGO_PKG_VERSION")
    );
    for (i, s) in spans.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            r#"{{"traceId":"{:032x}","spanId":"{:016x}","#,
            s.trace_id.0, s.span_id.0
        );
        if let Some(p) = &s.parent_span_id {
            let _ = write!(out, r#""parentSpanId":"{:016x}","#, p.0);
        }
        out.push_str(r#""name":"#);
        write_str(out, &s.name);
        let _ = write!(
            out,
            r#","kind":{},"startTimeUnixNano":"{}","endTimeUnixNano":"{}","attributes":["#,
            s.kind as i32,
            nanos(s.start),
            nanos(s.end.max(s.start))
        );
        for (j, (k, v)) in s.all_attributes().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let _ = write!(out, r#"{{"key":"{k}","value":{{"#);
            let _ = match v {
                AttrValue::Str(x) => {
                    out.push_str(r#""stringValue":"#);
                    write_str(out, x);
                    Ok(())
                }
                AttrValue::Int(x) => write!(out, r#""intValue":"{x}""#),
                AttrValue::Bool(x) => write!(out, r#""boolValue":{x}"#),
            };
            out.push_str("}}");
        }
        out.push_str("],\"status\":");
        match &s.error {
            None => out.push_str(r#"{"code":1}"#),
            Some(m) => {
                out.push_str(r#"{"code":2,"message":"#);
                write_str(out, m);
                out.push('}');
            }
        }
        out.push('}');
    }
    out.push_str("]}]}]}");
}

/// The OTLP/HTTP JSON body of a batch as a JSON value (tests; see [`export_text`]).
pub fn export_body(service_name: &str, spans: &[Span]) -> Value {
    json!({
        "resourceSpans": [{
            "resource": { "attributes": [
                { "key": "service.name", "value": { "stringValue": service_name } },
                { "key": "cloud.provider", "value": { "stringValue": "kindling" } },
            ]},
            "scopeSpans": [{
                "scope": { "name": "kindling", "version": env!("CARGO_PKG_VERSION") },
                "spans": spans.iter().map(Span::to_json).collect::<Vec<_>>(),
            }],
        }],
    })
}

/// Where batches go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Endpoint {
    /// `http://host[:port][/base]` → requests to `<base>/v1/traces` (a URL already ending in
    /// `/v1/traces` is used as it is).
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("the OTLP endpoint must be an http:// URL: {url}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse()
                    .map_err(|_| format!("bad port in the OTLP endpoint: {url}"))?,
            ),
            None => (authority, 80),
        };
        if host.is_empty() {
            return Err(format!("no host in the OTLP endpoint: {url}"));
        }
        let path = path.trim_end_matches('/');
        let path = if path.ends_with("/v1/traces") {
            path.to_string()
        } else {
            format!("{path}/v1/traces")
        };
        Ok(Self {
            host: host.to_string(),
            port,
            path,
        })
    }
}

/// Sends spans in the background. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Exporter {
    tx: mpsc::Sender<Span>,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    dropped: AtomicU64,
    exported: AtomicU64,
    /// Spans in the queue (as counted by [`Exporter::record`] and the batch task).
    queued: AtomicUsize,
    /// A full batch is queued.
    full: Notify,
}

impl Exporter {
    /// Starts the sending task on the current tokio runtime.
    pub fn start(endpoint: Endpoint, service_name: String) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let shared = Arc::new(Shared::default());
        tokio::spawn(send_loop(rx, endpoint, service_name, Arc::clone(&shared)));
        Arc::new(Self { tx, shared })
    }

    /// Queues a span; drops it (counted) when the queue is full.
    pub fn record(&self, span: Span) {
        // Counted before it is sent, so the batch task never counts it out first.
        let queued = self.shared.queued.fetch_add(1, Ordering::Relaxed) + 1;
        if self.tx.try_send(span).is_err() {
            self.shared.queued.fetch_sub(1, Ordering::Relaxed);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        } else if queued == BATCH {
            self.shared.full.notify_one();
        }
    }

    /// Spans dropped (queue full, or their batch failed).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Spans the collector accepted.
    pub fn exported(&self) -> u64 {
        self.shared.exported.load(Ordering::Relaxed)
    }
}

async fn send_loop(
    mut rx: mpsc::Receiver<Span>,
    endpoint: Endpoint,
    service: String,
    shared: Arc<Shared>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut body = String::new();
    // Waiting in `recv` is the only time a sender wakes this task: after the first span of a
    // batch it sleeps until the batch is due or full, then takes what is queued.
    while let Some(first) = rx.recv().await {
        batch.push(first);
        if shared.queued.load(Ordering::Relaxed) < BATCH {
            let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = shared.full.notified() => {}
            }
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(s) => batch.push(s),
                Err(_) => break,
            }
        }
        shared.queued.fetch_sub(batch.len(), Ordering::Relaxed);
        body.clear();
        write_export(&mut body, &service, &batch);
        match post(&endpoint, body.as_bytes()).await {
            Ok(status) if (200..300).contains(&status) => {
                shared
                    .exported
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Ok(status) => {
                tracing::debug!(
                    status,
                    spans = batch.len(),
                    "the OTLP collector refused spans"
                );
                shared
                    .dropped
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::debug!(error = %e, spans = batch.len(), "could not export spans");
                shared
                    .dropped
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
        }
        batch.clear();
        // A batch (or a body) far above the usual is not kept.
        if body.capacity() > 4 * BATCH * 1024 {
            body = String::new();
        }
    }
}

/// One POST; the status code of the answer.
async fn post(e: &Endpoint, body: &[u8]) -> std::io::Result<u16> {
    let exchange = async {
        let mut s = TcpStream::connect((e.host.as_str(), e.port)).await?;
        s.set_nodelay(true)?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            e.path,
            e.host,
            e.port,
            body.len()
        );
        s.write_all(head.as_bytes()).await?;
        s.write_all(body).await?;
        let mut answer = Vec::new();
        let mut chunk = [0u8; 1024];
        while answer.len() < 12 {
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&chunk[..n]);
        }
        let status = std::str::from_utf8(answer.get(9..12).unwrap_or_default())
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other("not an HTTP answer"))?;
        while s.read(&mut chunk).await? > 0 {}
        Ok(status)
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "the collector is too slow")
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:4318").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("127.0.0.1", 4318, "/v1/traces")
        );
        assert_eq!(
            Endpoint::parse("http://c:1/v1/traces").unwrap().path,
            "/v1/traces"
        );
        assert_eq!(
            Endpoint::parse("http://c/otlp/").unwrap().path,
            "/otlp/v1/traces"
        );
        assert!(Endpoint::parse("https://c:1").is_err());
    }

    #[test]
    fn spans_in_otlp_json() {
        let start = UNIX_EPOCH + Duration::from_millis(1500);
        let body = export_body(
            "kindling",
            &[Span {
                trace_id: TraceId::from_hex("5759e988bd862e3fe1be46a994272793").unwrap(),
                span_id: SpanId(0x5399_5c3f_42cd_8ad8),
                parent_span_id: None,
                name: "init".into(),
                kind: SpanKind::Internal,
                start,
                end: start + Duration::from_millis(2),
                shared: None,
                attributes: vec![("faas.coldstart", AttrValue::Bool(true))],
                error: Some("boom".into()),
            }],
        );
        let span = &body["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["startTimeUnixNano"], "1500000000");
        assert_eq!(span["endTimeUnixNano"], "1502000000");
        assert_eq!(span["status"]["code"], 2);
        assert_eq!(span["attributes"][0]["value"]["boolValue"], true);
        assert!(span.get("parentSpanId").is_none());
        assert_eq!(span["spanId"], "53995c3f42cd8ad8");
        assert_eq!(span["traceId"], "5759e988bd862e3fe1be46a994272793");
    }

    #[test]
    fn ids_from_hex() {
        assert_eq!(SpanId::from_hex("00000000000000ff"), Some(SpanId(255)));
        assert_eq!(SpanId::from_hex("ff"), None);
        assert_eq!(SpanId::from_hex("+000000000000000"), None);
        assert_eq!(
            TraceId::from_hex("0000000000000000000000000000000A"),
            Some(TraceId(10))
        );
        assert_eq!(TraceId::from_hex("x000000000000000000000000000000a"), None);
    }

    /// A collector stand-in that answers 200 and hands every body over.
    async fn collector() -> (Endpoint, mpsc::UnboundedReceiver<Value>) {
        let (port, mut bodies) = kindling_test_support::body_sink().await;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(body) = bodies.recv().await {
                tx.send(serde_json::from_slice(&body).unwrap()).unwrap();
            }
        });
        (
            Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
            rx,
        )
    }

    fn span(n: u64) -> Span {
        Span {
            trace_id: TraceId(1),
            span_id: SpanId(n),
            parent_span_id: None,
            name: "invoke".into(),
            kind: SpanKind::Internal,
            start: UNIX_EPOCH,
            end: UNIX_EPOCH,
            shared: None,
            attributes: vec![],
            error: None,
        }
    }

    #[tokio::test]
    async fn every_span_arrives_in_batches_of_at_most_batch() {
        let (endpoint, mut rx) = collector().await;
        let exporter = Exporter::start(endpoint, "svc".into());
        let total = 3 * BATCH as u64 + 7;
        for n in 1..=total {
            exporter.record(span(n));
        }
        let mut ids = Vec::new();
        while ids.len() < total as usize {
            let body = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .unwrap()
                .unwrap();
            let spans = body["resourceSpans"][0]["scopeSpans"][0]["spans"]
                .as_array()
                .unwrap()
                .clone();
            assert!(!spans.is_empty() && spans.len() <= BATCH);
            ids.extend(
                spans
                    .iter()
                    .map(|s| s["spanId"].as_str().unwrap().to_string()),
            );
        }
        let expected: Vec<String> = (1..=total).map(|n| format!("{n:016x}")).collect();
        assert_eq!(ids, expected);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while exporter.exported() < total && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!((exporter.exported(), exporter.dropped()), (total, 0));
    }

    #[tokio::test]
    async fn a_dead_collector_never_blocks_and_drops_are_counted() {
        // Nothing listens on port 9: batches fail, recording never waits.
        let exporter = Exporter::start(Endpoint::parse("http://127.0.0.1:9").unwrap(), "s".into());
        let started = std::time::Instant::now();
        for n in 1..=(2 * QUEUE as u64) {
            exporter.record(span(n));
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(exporter.dropped() >= QUEUE as u64 - BATCH as u64);
    }

    #[test]
    fn the_written_body_is_the_json_body() {
        let start = UNIX_EPOCH + Duration::from_millis(1500);
        let spans = vec![
            Span {
                trace_id: TraceId::from_hex("5759e988bd862e3fe1be46a994272793").unwrap(),
                span_id: SpanId(0x5399_5c3f_42cd_8ad8),
                parent_span_id: SpanId::from_hex("0000000000000001"),
                name: "a \"quoted\" name".into(),
                kind: SpanKind::Server,
                start,
                end: start,
                shared: Some(Arc::new(vec![(
                    "ctl",
                    AttrValue::Str("\u{1}\t\r\\ é".into()),
                )])),
                attributes: vec![
                    ("s", AttrValue::Str("x\ny".into())),
                    ("i", AttrValue::Int(-3)),
                    ("b", AttrValue::Bool(false)),
                ],
                error: None,
            },
            Span {
                trace_id: TraceId::from_hex("5759e988bd862e3fe1be46a994272793").unwrap(),
                span_id: SpanId(0x5399_5c3f_42cd_8ad9),
                parent_span_id: None,
                name: "init".into(),
                kind: SpanKind::Internal,
                start,
                end: start + Duration::from_nanos(7),
                shared: None,
                attributes: vec![],
                error: Some("boom".into()),
            },
        ];
        let text = export_text("svc \"x\"", &spans);
        assert!(text.contains(r#""traceId":"5759e988bd862e3fe1be46a994272793","spanId":"53995c3f42cd8ad8","parentSpanId":"0000000000000001""#));
        let written: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(written, export_body("svc \"x\"", &spans));
    }
}
