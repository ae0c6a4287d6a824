//! Spans to an OpenTelemetry collector over OTLP/HTTP with the JSON encoding
//! (`POST <endpoint>/v1/traces`, `application/json`, hex trace and span ids), as the OTLP
//! specification defines it for HTTP/JSON.
//!
//! [`Exporter::record`] never waits: spans go into a bounded queue (full: the span is dropped
//! and counted); a background task sends them in batches (up to [`BATCH`] spans, or what came
//! within [`FLUSH_EVERY`]). A collector that is down costs a failed connection per batch, the
//! batch is dropped and counted. Plain `http://` only (a local collector or agent).
//! *Invariant: the caller's path does one `try_send`.*

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

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

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
    Bool(bool),
}

/// One finished span.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    pub kind: SpanKind,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<(&'static str, AttrValue)>,
    /// The operation failed (status code ERROR), with a message.
    pub error: Option<String>,
}

fn nanos(t: SystemTime) -> String {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        .to_string()
}

impl Span {
    fn to_json(&self) -> Value {
        let attributes: Vec<Value> = self
            .attributes
            .iter()
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
            "traceId": self.trace_id,
            "spanId": self.span_id,
            "name": self.name,
            "kind": self.kind as i32,
            "startTimeUnixNano": nanos(self.start),
            "endTimeUnixNano": nanos(self.end.max(self.start)),
            "attributes": attributes,
            "status": match &self.error {
                None => json!({ "code": 1 }),
                Some(m) => json!({ "code": 2, "message": m }),
            },
        });
        if let Some(p) = &self.parent_span_id {
            span["parentSpanId"] = json!(p);
        }
        span
    }
}

/// The OTLP/HTTP JSON body of a batch.
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
    dropped: Arc<AtomicU64>,
    exported: Arc<AtomicU64>,
}

impl Exporter {
    /// Starts the sending task on the current tokio runtime.
    pub fn start(endpoint: Endpoint, service_name: String) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let exported = Arc::new(AtomicU64::new(0));
        tokio::spawn(send_loop(
            rx,
            endpoint,
            service_name,
            Arc::clone(&dropped),
            Arc::clone(&exported),
        ));
        Arc::new(Self {
            tx,
            dropped,
            exported,
        })
    }

    /// Queues a span; drops it (counted) when the queue is full.
    pub fn record(&self, span: Span) {
        if self.tx.try_send(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Spans dropped (queue full, or their batch failed).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Spans the collector accepted.
    pub fn exported(&self) -> u64 {
        self.exported.load(Ordering::Relaxed)
    }
}

async fn send_loop(
    mut rx: mpsc::Receiver<Span>,
    endpoint: Endpoint,
    service: String,
    dropped: Arc<AtomicU64>,
    exported: Arc<AtomicU64>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
        while batch.len() < BATCH {
            tokio::select! {
                s = rx.recv() => match s {
                    Some(s) => batch.push(s),
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        let body = export_body(&service, &batch).to_string();
        match post(&endpoint, body.as_bytes()).await {
            Ok(status) if (200..300).contains(&status) => {
                exported.fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Ok(status) => {
                tracing::debug!(
                    status,
                    spans = batch.len(),
                    "the OTLP collector refused spans"
                );
                dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::debug!(error = %e, spans = batch.len(), "could not export spans");
                dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
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
                trace_id: "5759e988bd862e3fe1be46a994272793".into(),
                span_id: "53995c3f42cd8ad8".into(),
                parent_span_id: None,
                name: "init".into(),
                kind: SpanKind::Internal,
                start,
                end: start + Duration::from_millis(2),
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
    }
}
