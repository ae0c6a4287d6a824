//! OpenTelemetry spans of an invocation, when an exporter is configured: `request` (the
//! invocation as the platform handled it, a child of the caller's X-Ray segment), and its
//! children `queue wait` (an asynchronous event's time in the queue), `environment wait` (an
//! invocation waiting for a warm environment or a cold-start slot), `init` (a cold start) and
//! `invoke` (the function's run, whose span id is the `Parent` the runtime receives in its
//! trace header, so the function's own spans continue from it). The X-Ray trace id
//! `1-<8 hex>-<24 hex>` is the OTel trace id's 32 hex digits.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kindling_model::trace::header_field;
use kindling_otel::{AttrValue, Exporter, Span, SpanId, SpanKind, TraceId};

/// The X-Ray trace id as an OTel trace id.
pub(crate) fn otel_trace_id(root: &str) -> Option<TraceId> {
    let (time, rest) = root.strip_prefix("1-")?.split_once('-')?;
    if time.len() != 8
        || rest.len() != 24
        || !(time.bytes().chain(rest.bytes())).all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    let hi = u128::from(u32::from_str_radix(time, 16).ok()?);
    let lo = u128::from_str_radix(rest, 16).ok()?;
    Some(TraceId(hi << 96 | lo))
}

/// A random nonzero 64-bit span id (a fast user-space generator: span ids need uniqueness, not
/// secrecy, and this runs several times per invocation).
fn new_span_id() -> SpanId {
    SpanId(fastrand::u64(1..))
}

/// What one invocation went through, for its spans.
pub(crate) struct Timeline<'a> {
    pub function: &'a str,
    pub version: &'a str,
    pub request_id: &'a str,
    pub invoked_arn: &'a str,
    /// The caller's header (its Parent is the request span's parent).
    pub incoming: Option<&'a str>,
    /// The header the runtime got (its Parent is the invoke span's id).
    pub runtime_header: &'a str,
    pub asynchronous: bool,
    pub enqueued: Option<SystemTime>,
    pub started: SystemTime,
    /// When an environment was in hand (after a cold start, if any).
    pub acquired: SystemTime,
    pub init: Option<Duration>,
    pub run: Option<Duration>,
    pub ended: SystemTime,
    pub error: Option<&'a str>,
}

impl Timeline<'_> {
    /// Records the invocation's spans: small structs sharing one set of attributes; the
    /// exporter's batch task encodes them.
    pub fn export(&self, exporter: &Exporter) {
        // The runtime's header is Kindling's own (valid): its fields are read in place.
        let Some(root) = header_field(self.runtime_header, "Root") else {
            return;
        };
        let Some(trace_id) = otel_trace_id(root) else {
            return;
        };
        // The caller's Parent, when the invocation continued the caller's trace.
        let parent = self
            .incoming
            .filter(|h| header_field(h, "Root") == Some(root))
            .and_then(|h| header_field(h, "Parent"))
            .and_then(SpanId::from_hex);
        let invoke_id = header_field(self.runtime_header, "Parent").and_then(SpanId::from_hex);
        let request_id = new_span_id();
        let common = Arc::new(vec![
            (
                "faas.name",
                AttrValue::Str(self.function.to_string().into()),
            ),
            (
                "faas.version",
                AttrValue::Str(self.version.to_string().into()),
            ),
            (
                "faas.invocation_id",
                AttrValue::Str(self.request_id.to_string().into()),
            ),
            (
                "cloud.resource_id",
                AttrValue::Str(self.invoked_arn.to_string().into()),
            ),
        ]);
        let child =
            |name: &'static str, start: SystemTime, end: SystemTime, id: Option<SpanId>| Span {
                trace_id,
                span_id: id.unwrap_or_else(new_span_id),
                parent_span_id: Some(request_id),
                name: Cow::Borrowed(name),
                kind: SpanKind::Internal,
                start,
                end,
                shared: Some(Arc::clone(&common)),
                attributes: Vec::new(),
                error: None,
            };
        let request_start = self.enqueued.unwrap_or(self.started).min(self.started);
        exporter.record(Span {
            trace_id,
            span_id: request_id,
            parent_span_id: parent,
            name: Cow::Owned(format!("{} request", self.function)),
            kind: SpanKind::Server,
            start: request_start,
            end: self.ended,
            shared: Some(Arc::clone(&common)),
            attributes: vec![
                ("faas.coldstart", AttrValue::Bool(self.init.is_some())),
                (
                    "faas.trigger",
                    AttrValue::Str(Cow::Borrowed(if self.asynchronous {
                        "pubsub"
                    } else {
                        "http"
                    })),
                ),
            ],
            error: self.error.map(str::to_string),
        });
        if let Some(enqueued) = self.enqueued {
            exporter.record(child("queue wait", enqueued, self.started, None));
        }
        let init_start = self
            .init
            .and_then(|d| self.acquired.checked_sub(d))
            .unwrap_or(self.acquired);
        if init_start > self.started + Duration::from_micros(50) {
            exporter.record(child("environment wait", self.started, init_start, None));
        }
        if self.init.is_some() {
            let mut init = child("init", init_start, self.acquired, None);
            init.attributes
                .push(("faas.coldstart", AttrValue::Bool(true)));
            if self.run.is_none() {
                init.error = self.error.map(str::to_string);
            }
            exporter.record(init);
        }
        if let Some(run) = self.run {
            let start = self.ended.checked_sub(run).unwrap_or(self.acquired);
            // The runtime's trace header carries this span's id as its Parent.
            let mut invoke = child("invoke", start, self.ended, invoke_id);
            invoke.error = self.error.map(str::to_string);
            exporter.record(invoke);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xray_roots_are_otel_trace_ids() {
        assert_eq!(
            otel_trace_id("1-5759e988-bd862e3fe1be46a994272793"),
            TraceId::from_hex("5759e988bd862e3fe1be46a994272793")
        );
        assert_eq!(otel_trace_id("2-x"), None);
    }
}
