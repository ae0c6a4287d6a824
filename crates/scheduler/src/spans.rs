//! OpenTelemetry spans of an invocation, when an exporter is configured: `request` (the
//! invocation as the platform handled it, a child of the caller's X-Ray segment), and its
//! children `queue wait` (an asynchronous event's time in the queue), `environment wait` (an
//! invocation waiting for a warm environment or a cold-start slot), `init` (a cold start) and
//! `invoke` (the function's run, whose span id is the `Parent` the runtime receives in its
//! trace header, so the function's own spans continue from it). The X-Ray trace id
//! `1-<8 hex>-<24 hex>` is the OTel trace id's 32 hex digits.

use std::time::{Duration, SystemTime};

use kindling_model::trace::header_field;
use kindling_otel::{AttrValue, Attribute, Span, SpanId, SpanKind, SpanSource, TraceId};

/// The exporter the scheduler records into: one item per invocation.
pub type Exporter = kindling_otel::Exporter<InvocationSpans>;

/// The X-Ray trace id as an OTel trace id.
pub(crate) fn otel_trace_id(root: &str) -> Option<TraceId> {
    let (time, rest) = root.strip_prefix("1-")?.split_once('-')?;
    if time.len() != 8 || rest.len() != 24 {
        return None;
    }
    // The 32 digits side by side: one hex decode (which checks them).
    let mut digits = [0u8; 32];
    digits[..8].copy_from_slice(time.as_bytes());
    digits[8..].copy_from_slice(rest.as_bytes());
    TraceId::from_hex_bytes(&digits)
}

/// The Root and Parent of the header an invocation runs with. Kindling writes it (new or
/// continued) as `Root=1-<8>-<24>;Parent=<16>;…`: read at fixed offsets, else field by field.
fn root_and_parent(header: &str) -> (Option<&str>, Option<&str>) {
    const ROOT: usize = "Root=".len() + 35;
    const PARENT: usize = ROOT + ";Parent=".len() + 16;
    if header.starts_with("Root=1-")
        && header.get(ROOT..ROOT + 8) == Some(";Parent=")
        && matches!(header.as_bytes().get(PARENT), None | Some(b';'))
    {
        return (header.get(5..ROOT), header.get(PARENT - 16..PARENT));
    }
    (header_field(header, "Root"), header_field(header, "Parent"))
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
    /// Records the invocation's spans: one queue item (ids, times, and the strings in one
    /// allocation); the exporter's batch task makes them spans and encodes them.
    pub fn export(&self, exporter: &Exporter) {
        if let Some(item) = self.spans() {
            exporter.record(item);
        }
    }

    /// The invocation's spans as one item (none without a valid trace header).
    fn spans(&self) -> Option<InvocationSpans> {
        // The runtime's header is Kindling's own (valid): its fields are read in place.
        let (root, invoke) = root_and_parent(self.runtime_header);
        let root = root?;
        let trace_id = otel_trace_id(root)?;
        // The caller's Parent, when the invocation continued the caller's trace.
        let parent = self
            .incoming
            .filter(|h| header_field(h, "Root") == Some(root))
            .and_then(|h| header_field(h, "Parent"))
            .and_then(SpanId::from_hex);
        let invoke = invoke
            .and_then(SpanId::from_hex)
            .unwrap_or_else(new_span_id);
        // "<function> <version> <function ARN> <invoked ARN> <function> request<request id>":
        // the resource's key (the function's name and version, none of which has a space)
        // first, the request span's name ends where the request id starts.
        let arn = function_arn(self.invoked_arn, self.function, self.version);
        let mut text = String::with_capacity(
            2 * self.function.len()
                + self.version.len()
                + arn.iter().map(|p| p.len()).sum::<usize>()
                + self.invoked_arn.len()
                + REQUEST.len()
                + self.request_id.len()
                + 4,
        );
        // Where the function's name, the version, the function's ARN, the invoked ARN and the
        // request span's name end.
        let mut ends = [0; 5];
        let [base, colon, qualifier] = arn;
        for (end, pieces) in ends.iter_mut().zip([
            ["", self.function, "", ""],
            [" ", self.version, "", ""],
            [" ", base, colon, qualifier],
            [" ", self.invoked_arn, "", ""],
            [" ", self.function, REQUEST, ""],
        ]) {
            pieces.iter().for_each(|p| text.push_str(p));
            *end = text.len();
        }
        text.push_str(self.request_id);
        Some(InvocationSpans {
            trace_id,
            parent,
            ids: [
                new_span_id(),
                new_span_id(),
                new_span_id(),
                new_span_id(),
                invoke,
            ],
            text: text.into_boxed_str(),
            ends,
            asynchronous: self.asynchronous,
            enqueued: self.enqueued,
            started: self.started,
            acquired: self.acquired,
            init: self.init,
            run: self.run,
            ended: self.ended,
            error: self.error.map(Box::from),
        })
    }
}

/// The request span's name after the function's.
const REQUEST: &str = " request";

/// The ARN of the function version that ran, as Lambda's GetFunctionConfiguration reports its
/// `FunctionArn` (OpenTelemetry's `cloud.resource_id`: the invoked ARN with an alias's
/// qualifier replaced by the version it resolved to), in three pieces: the invoked ARN without
/// its qualifier (`arn:aws:lambda:<region>:<account>:function:<name>`), then `:` and the
/// version for a published version, nothing more for `$LATEST` (unqualified).
fn function_arn<'a>(invoked_arn: &'a str, function: &str, version: &'a str) -> [&'a str; 3] {
    // arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]: the base ends
    // after the name, found from the end (a name or qualifier has no ':'; a region or
    // account given on the command line is not checked for one).
    const MARK: &str = ":function:";
    let base = invoked_arn
        .rfind(MARK)
        .map(|at| at + MARK.len() + function.len())
        .filter(|&end| {
            invoked_arn.get(end - function.len()..end) == Some(function)
                && matches!(invoked_arn.as_bytes().get(end), None | Some(b':'))
        })
        .map_or(invoked_arn, |end| &invoked_arn[..end]);
    match version {
        "$LATEST" => [base, "", ""],
        _ => [base, ":", version],
    }
}

/// One invocation's spans as queued: `request`, and its children `queue wait` (an event's),
/// `environment wait`, `init` (a cold start's) and `invoke`, made from the invocation's ids and
/// times when their batch is encoded.
pub struct InvocationSpans {
    trace_id: TraceId,
    /// The caller's span (the request span's parent).
    parent: Option<SpanId>,
    /// Span ids: request, queue wait, environment wait, init, invoke.
    ids: [SpanId; 5],
    /// The function's name, its version, its ARN (the version's), the invoked ARN (these four
    /// each followed by a space), the request span's name (the function's name, " request"),
    /// the request id.
    text: Box<str>,
    /// Where the function's name, the version, the function's ARN, the invoked ARN and the
    /// request span's name end in `text`.
    ends: [usize; 5],
    asynchronous: bool,
    enqueued: Option<SystemTime>,
    started: SystemTime,
    acquired: SystemTime,
    init: Option<Duration>,
    run: Option<Duration>,
    ended: SystemTime,
    error: Option<Box<str>>,
}

impl InvocationSpans {
    fn init_start(&self) -> SystemTime {
        self.init
            .and_then(|d| self.acquired.checked_sub(d))
            .unwrap_or(self.acquired)
    }

    fn waited(&self) -> bool {
        self.init_start() > self.started + Duration::from_micros(50)
    }

    /// The request span's name.
    fn request_name(&self) -> &str {
        &self.text[self.ends[3] + 1..self.ends[4]]
    }
}

impl SpanSource for InvocationSpans {
    fn span_count(&self) -> usize {
        1 + usize::from(self.enqueued.is_some())
            + usize::from(self.waited())
            + usize::from(self.init.is_some())
            + usize::from(self.run.is_some())
    }

    /// The function version that ran (the OpenTelemetry semantic conventions' FaaS resource:
    /// its name, version and ARN, the same whichever alias or ARN it was invoked by), named
    /// by the function's name and the version (the ARN's region and account are the same for
    /// every function of a server).
    fn resource_key(&self) -> &str {
        &self.text[..self.ends[1]]
    }

    fn resource_attributes(&self, f: &mut dyn FnMut(&[Attribute<'_>])) {
        let [function_end, version_end, arn_end, ..] = self.ends;
        let text = &*self.text;
        f(&[
            ("faas.name", AttrValue::Str(&text[..function_end])),
            (
                "faas.version",
                AttrValue::Str(&text[function_end + 1..version_end]),
            ),
            (
                "cloud.resource_id",
                AttrValue::Str(&text[version_end + 1..arn_end]),
            ),
        ]);
    }

    fn each_span(&self, f: &mut dyn FnMut(&Span<'_>)) {
        let [_, _, arn_end, invoked_end, name_end] = self.ends;
        let text = &*self.text;
        let shared: [Attribute<'_>; 1] =
            [("faas.invocation_id", AttrValue::Str(&text[name_end..]))];
        let [request_id, queue_id, wait_id, init_id, invoke_id] = self.ids;
        let error = self.error.as_deref();
        let request_attributes = [
            ("faas.coldstart", AttrValue::Bool(self.init.is_some())),
            (
                "faas.trigger",
                AttrValue::Str(if self.asynchronous { "pubsub" } else { "http" }),
            ),
            // The ARN as invoked (an alias's, a version's or the function's).
            (
                "aws.lambda.invoked_arn",
                AttrValue::Str(&text[arn_end + 1..invoked_end]),
            ),
        ];
        f(&Span {
            trace_id: self.trace_id,
            span_id: request_id,
            parent_span_id: self.parent,
            name: self.request_name(),
            kind: SpanKind::Server,
            start: self.enqueued.unwrap_or(self.started).min(self.started),
            end: self.ended,
            shared: &shared,
            attributes: &request_attributes,
            error,
        });
        let child = |name, span_id, start, end| Span {
            trace_id: self.trace_id,
            span_id,
            parent_span_id: Some(request_id),
            name,
            kind: SpanKind::Internal,
            start,
            end,
            shared: &shared,
            attributes: &[],
            error: None,
        };
        if let Some(enqueued) = self.enqueued {
            f(&child("queue wait", queue_id, enqueued, self.started));
        }
        let init_start = self.init_start();
        if self.waited() {
            f(&child(
                "environment wait",
                wait_id,
                self.started,
                init_start,
            ));
        }
        if self.init.is_some() {
            f(&Span {
                attributes: &[("faas.coldstart", AttrValue::Bool(true))],
                error: if self.run.is_none() { error } else { None },
                ..child("init", init_id, init_start, self.acquired)
            });
        }
        if let Some(run) = self.run {
            let start = self.ended.checked_sub(run).unwrap_or(self.acquired);
            // The runtime's trace header carries this span's id as its Parent.
            f(&Span {
                error,
                ..child("invoke", invoke_id, start, self.ended)
            });
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
        assert_eq!(otel_trace_id("1-5759e988-bd862e3fe1be46a99427279g"), None);
    }

    #[test]
    fn root_and_parent_at_fixed_offsets_or_field_by_field() {
        let root = "1-5759e988-bd862e3fe1be46a994272793";
        let new = crate::invocation_trace_header(None);
        let continued = crate::invocation_trace_header(Some(&format!(
            "Root={root};Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:0"
        )));
        for header in [new.as_str(), continued.as_str()] {
            assert_eq!(
                root_and_parent(header),
                (header_field(header, "Root"), header_field(header, "Parent")),
                "{header}"
            );
        }
        assert_eq!(root_and_parent(&continued).0, Some(root));
        for header in [
            format!("Parent=53995c3f42cd8ad8;Root={root}"),
            format!("Root={root};Parent=53995c3f42cd8ad8"),
            format!("Root={root}"),
        ] {
            assert_eq!(
                root_and_parent(&header),
                (
                    Some(root),
                    header.contains("Parent").then_some("53995c3f42cd8ad8")
                ),
                "{header}"
            );
        }
    }

    fn timeline<'a>(
        incoming: Option<&'a str>,
        runtime_header: &'a str,
        at: SystemTime,
    ) -> Timeline<'a> {
        Timeline {
            function: "f",
            version: "$LATEST",
            request_id: "r-1",
            invoked_arn: "arn:aws:lambda:us-east-1:000000000000:function:f",
            incoming,
            runtime_header,
            asynchronous: false,
            enqueued: None,
            started: at,
            acquired: at,
            init: None,
            run: Some(Duration::from_millis(2)),
            ended: at + Duration::from_millis(3),
            error: None,
        }
    }

    /// Each span of an item as (name, parent, start, end, error, attributes as text).
    fn spans_of(item: &InvocationSpans) -> Vec<(String, Option<SpanId>, SpanId, String)> {
        let mut out = Vec::new();
        item.each_span(&mut |s| {
            out.push((
                s.name.to_string(),
                s.parent_span_id,
                s.span_id,
                format!(
                    "{:?} {:?} {:?} {:?}",
                    s.start,
                    s.end,
                    s.error,
                    s.shared.iter().chain(s.attributes).collect::<Vec<_>>()
                ),
            ));
        });
        assert_eq!(out.len(), item.span_count());
        out
    }

    /// An item's resource attributes as text.
    fn resource_of(item: &InvocationSpans) -> String {
        let mut out = String::new();
        item.resource_attributes(&mut |a| out = format!("{a:?}"));
        out
    }

    const ROOT: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    #[test]
    fn a_warm_invocation_is_a_request_and_an_invoke_under_the_callers_parent() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let caller = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000007";
        let item = timeline(Some(caller), ROOT, at).spans().unwrap();
        let spans = spans_of(&item);
        assert_eq!(spans.len(), 2);
        let (name, parent, request_id, text) = &spans[0];
        assert_eq!((name.as_str(), *parent), ("f request", Some(SpanId(7))));
        assert!(text.ends_with(
            r#"[("faas.invocation_id", Str("r-1")), ("faas.coldstart", Bool(false)), ("faas.trigger", Str("http")), ("aws.lambda.invoked_arn", Str("arn:aws:lambda:us-east-1:000000000000:function:f"))]"#
        ), "{text}");
        // The function is the spans' resource, not their attributes.
        assert_eq!(
            resource_of(&item),
            r#"[("faas.name", Str("f")), ("faas.version", Str("$LATEST")), ("cloud.resource_id", Str("arn:aws:lambda:us-east-1:000000000000:function:f"))]"#
        );
        assert!(
            spans
                .iter()
                .all(|s| s.3.contains(r#"[("faas.invocation_id", Str("r-1"))"#))
        );
        let (name, parent, invoke_id, _) = &spans[1];
        assert_eq!(name, "invoke");
        assert_eq!(*parent, Some(*request_id));
        // The runtime's Parent is the invoke span's id.
        assert_eq!(*invoke_id, SpanId(0x5399_5c3f_42cd_8ad8));
        // Encoded twice (lengths, then bytes), an item gives the same spans.
        assert_eq!(spans_of(&item), spans);
        // A caller's header of another trace is not the parent.
        let other = "Root=1-00000000-bd862e3fe1be46a994272793;Parent=0000000000000007";
        assert_eq!(
            spans_of(&timeline(Some(other), ROOT, at).spans().unwrap())[0].1,
            None
        );
        assert!(timeline(None, "Root=bad", at).spans().is_none());
    }

    #[test]
    fn a_queued_cold_failed_invocation_has_every_span() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut t = timeline(None, ROOT, at + Duration::from_millis(10));
        t.asynchronous = true;
        t.enqueued = Some(at);
        t.acquired = at + Duration::from_millis(500);
        t.init = Some(Duration::from_millis(300));
        t.run = None;
        t.error = Some("Runtime.ExitError");
        let spans = spans_of(&t.spans().unwrap());
        let names: Vec<&str> = spans.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(
            names,
            ["f request", "queue wait", "environment wait", "init"]
        );
        assert!(spans[0].3.contains(r#"Some("Runtime.ExitError")"#));
        assert!(spans[0].3.contains(r#"("faas.trigger", Str("pubsub"))"#));
        // The init span carries the failure when nothing ran.
        assert!(spans[3].3.contains(r#"Some("Runtime.ExitError")"#));
        assert!(spans[3].3.ends_with(r#"("faas.coldstart", Bool(true))]"#));
        assert!(spans[1].3.contains("None"));
        let ids: std::collections::HashSet<u64> = spans.iter().map(|s| s.2.0).collect();
        assert_eq!(ids.len(), 4);
    }

    /// OpenTelemetry's semantic conventions (`cloud.resource_id`, formerly `faas.id`): "AWS
    /// Lambda: The function ARN. Take care not to use the 'invoked ARN' directly but replace
    /// any alias suffix with the resolved function version"; the invoked ARN is the request
    /// span's `aws.lambda.invoked_arn`. The function ARN is the version's as
    /// GetFunctionConfiguration reports it: unqualified for `$LATEST`, `:<N>` for version N.
    #[test]
    fn cloud_resource_id_is_the_resolved_version_arn_not_the_alias_arn() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let arn = "arn:aws:lambda:us-east-1:000000000000:function:";
        let live = format!("{arn}f:live");
        let item = Timeline {
            function: "f",
            version: "1",
            invoked_arn: &live,
            request_id: "r-1",
            ..timeline(None, ROOT, at)
        }
        .spans()
        .unwrap();
        let mut id = String::new();
        item.resource_attributes(&mut |a| {
            for (k, v) in a {
                if let ("cloud.resource_id", AttrValue::Str(s)) = (*k, v) {
                    id = s.to_string();
                }
            }
        });
        assert_eq!(id, format!("{arn}f:1"));
        // The alias's ARN is the request span's (only).
        let spans = spans_of(&item);
        let invoked = format!(r#"("aws.lambda.invoked_arn", Str("{live}"))"#);
        assert!(spans[0].3.contains(&invoked), "{}", spans[0].3);
        assert!(!spans[1].3.contains("aws.lambda.invoked_arn"));
        // Whatever the invoked ARN's qualifier, or none.
        for (invoked, version, expected) in [
            (format!("{arn}f"), "$LATEST", format!("{arn}f")),
            (format!("{arn}f:$LATEST"), "$LATEST", format!("{arn}f")),
            (format!("{arn}f:live"), "$LATEST", format!("{arn}f")),
            (format!("{arn}f"), "3", format!("{arn}f:3")),
            (format!("{arn}f:12"), "12", format!("{arn}f:12")),
            // A region or account with a ':' (not checked on the command line).
            (
                "arn:aws:lambda:local:dev:000000000000:function:f:live".to_string(),
                "2",
                "arn:aws:lambda:local:dev:000000000000:function:f:2".to_string(),
            ),
            // An alias named like the marker's word.
            (format!("{arn}f:function"), "1", format!("{arn}f:1")),
        ] {
            assert_eq!(
                function_arn(&invoked, "f", version).concat(),
                expected,
                "{invoked}"
            );
        }
    }

    #[test]
    fn a_batch_has_a_resource_per_function_version() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let arn = "arn:aws:lambda:us-east-1:000000000000:function:";
        let [f, f_latest, f_live, f_1, f_2, g] =
            ["f", "f:$LATEST", "f:live", "f:1", "f:2", "g"].map(|q| format!("{arn}{q}"));
        let invocation = |function, version, invoked_arn, request_id| {
            Timeline {
                function,
                version,
                invoked_arn,
                request_id,
                ..timeline(None, ROOT, at)
            }
            .spans()
            .unwrap()
        };
        let items = [
            invocation("f", "$LATEST", &f, "r-1"),
            invocation("g", "$LATEST", &g, "r-2"),
            invocation("f", "$LATEST", &f_latest, "r-3"),
            // An alias of f, then the version it resolved to invoked directly: one resource.
            invocation("f", "1", &f_live, "r-4"),
            invocation("f", "1", &f_1, "r-5"),
            // The alias, now routed to another version: another resource.
            invocation("f", "2", &f_live, "r-6"),
        ];
        assert_eq!(items[0].resource_key(), items[2].resource_key());
        assert_eq!(items[3].resource_key(), items[4].resource_key());
        assert_ne!(items[3].resource_key(), items[5].resource_key());
        let body: serde_json::Value =
            serde_json::from_str(&kindling_otel::json::export_text("kindling", &items)).unwrap();
        let resources: Vec<(Vec<String>, Vec<String>)> = body["resourceSpans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|rs| {
                let attributes = rs["resource"]["attributes"].as_array().unwrap()[2..]
                    .iter()
                    .map(|a| format!("{}={}", a["key"], a["value"]["stringValue"]))
                    .collect();
                // Each span's invocation id, and the invoked ARN of a request span.
                let ids = rs["scopeSpans"][0]["spans"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| {
                        let attributes = s["attributes"].as_array().unwrap();
                        assert!(attributes.iter().all(|a| a["key"] != "faas.name"));
                        let invoked = attributes
                            .iter()
                            .find(|a| a["key"] == "aws.lambda.invoked_arn")
                            .map(|a| format!(" {}", a["value"]["stringValue"]));
                        format!(
                            "{}{}",
                            attributes[0]["value"]["stringValue"],
                            invoked.unwrap_or_default()
                        )
                    })
                    .collect();
                (attributes, ids)
            })
            .collect();
        let resource = |name: &str, version: &str, arn: &str| {
            vec![
                format!(r#""faas.name"="{name}""#),
                format!(r#""faas.version"="{version}""#),
                format!(r#""cloud.resource_id"="{arn}""#),
            ]
        };
        // A request span (with its invoked ARN), then its invoke span.
        let ids = |ids: &[(&str, &str)]| -> Vec<String> {
            ids.iter()
                .flat_map(|(id, arn)| [format!(r#""{id}" "{arn}""#), format!(r#""{id}""#)])
                .collect()
        };
        assert_eq!(
            resources,
            [
                (
                    resource("f", "$LATEST", &f),
                    ids(&[("r-1", &f), ("r-3", &f_latest)])
                ),
                (resource("g", "$LATEST", &g), ids(&[("r-2", &g)])),
                (
                    resource("f", "1", &f_1),
                    ids(&[("r-4", &f_live), ("r-5", &f_1)])
                ),
                (resource("f", "2", &f_2), ids(&[("r-6", &f_live)])),
            ]
        );
        // In the protobuf body too, the function's ARN is written once per resource, the
        // invoked ARN once per invocation (its request span), not once per span.
        let mut protobuf = Vec::new();
        kindling_otel::proto::write_export(&mut protobuf, "kindling", &items);
        let count = |s: &str| {
            protobuf
                .windows(s.len())
                .filter(|w| *w == s.as_bytes())
                .count()
        };
        assert_eq!([&g, &f_live, &f_1, &f_2, "r-1"].map(count), [2, 2, 2, 1, 2]);
    }
}
