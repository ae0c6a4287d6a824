//! Spans to an OpenTelemetry collector over OTLP/HTTP (`POST <endpoint>/v1/traces`), in either
//! of the encodings the OTLP specification defines for HTTP: binary protobuf
//! (`application/x-protobuf`, the default of the OTel SDKs and the Collector, and Kindling's:
//! [`proto`]) or JSON (`application/json`, hex trace and span ids: [`json`]).
//!
//! [`Exporter::record`] never waits: items go into a bounded queue (full: the item's spans are
//! dropped and counted); a background task sends them in batches (up to [`BATCH`] spans, or
//! what came within [`FLUSH_EVERY`]), one POST each on a kept-alive connection. A collector
//! that is down costs a failed connection per batch, the batch is dropped and counted. Plain
//! `http://` only (a local collector or agent).
//!
//! The recording side is cheap: what is queued is a [`SpanSource`], an item that becomes its
//! spans only when its batch is encoded (an invocation's ids, timestamps and strings, for
//! instance: several spans, one queue item); a [`Span`] is a view that borrows its strings and
//! attributes from its item, built on the stack while the batch task writes the whole batch
//! into one reused buffer. The batch task is woken once per batch (by the first item of a
//! batch, or when a full batch is queued), not once per item.
//! *Invariant: the caller's path does one push under a short lock ([`queue::BatchQueue`]) and
//! an atomic add per item.*

mod endpoint;
mod exporter;
pub mod json;
pub mod post;
pub mod proto;
pub mod queue;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use endpoint::Endpoint;
pub use exporter::Exporter;

/// Most spans in one request.
pub const BATCH: usize = 512;
/// Longest a span waits before its batch is sent.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// Spans queued at most; more are dropped.
pub const QUEUE: usize = 8192;

/// How batches are encoded (OTLP/HTTP's two encodings; the names are the values of the OTel
/// SDKs' `OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// `http/protobuf`: `application/x-protobuf`.
    #[default]
    Protobuf,
    /// `http/json`: `application/json`.
    Json,
}

impl Encoding {
    /// `http/protobuf` or `http/json`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "http/protobuf" => Ok(Self::Protobuf),
            "http/json" => Ok(Self::Json),
            _ => Err(format!(
                "the OTLP protocol is http/protobuf or http/json (got {s})"
            )),
        }
    }

    /// The request's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }

    /// Appends the request body of a batch (the spans of `items`) to `out`.
    pub fn write<S: SpanSource>(self, out: &mut Vec<u8>, service_name: &str, items: &[S]) {
        match self {
            Self::Protobuf => proto::write_export(out, service_name, items),
            Self::Json => json::write_export(out, service_name, items),
        }
    }
}

/// OTLP span kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

/// Each byte's value as a hex digit (either case), 0xff for a byte that is not one.
const HEX: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// The value of 16 hex digits (either case), by table: one lookup and one shift per digit,
/// the digits checked once at the end (this runs for every invocation's trace and span ids).
fn hex_u64(digits: &[u8; 16]) -> Option<u64> {
    let mut v = 0u64;
    let mut bad = 0u8;
    for &b in digits {
        let d = HEX[usize::from(b)];
        bad |= d;
        v = v << 4 | u64::from(d & 0xf);
    }
    (bad & 0xf0 == 0).then_some(v)
}

/// A 128-bit trace id (written as 32 lowercase hex digits, or 16 big-endian bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceId(pub u128);

impl TraceId {
    /// 32 hex digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        Self::from_hex_bytes(hex.as_bytes())
    }

    /// 32 hex digits, as bytes (not necessarily UTF-8: anything else is `None`).
    pub fn from_hex_bytes(hex: &[u8]) -> Option<Self> {
        let digits: &[u8; 32] = hex.try_into().ok()?;
        let (high, low) = digits.split_at(16);
        let high = hex_u64(high.try_into().ok()?)?;
        let low = hex_u64(low.try_into().ok()?)?;
        Some(Self(u128::from(high) << 64 | u128::from(low)))
    }
}

/// A 64-bit span id (written as 16 lowercase hex digits, or 8 big-endian bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanId(pub u64);

impl SpanId {
    /// 16 hex digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        hex_u64(hex.as_bytes().try_into().ok()?).map(Self)
    }
}

/// An attribute value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttrValue<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
}

/// An attribute: a static key and its value.
pub type Attribute<'a> = (&'static str, AttrValue<'a>);

/// One finished span, as the encoders read it: a view borrowing its strings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span<'a> {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub name: &'a str,
    pub kind: SpanKind,
    pub start: SystemTime,
    pub end: SystemTime,
    /// Attributes several spans share (an invocation's), written before [`Span::attributes`].
    pub shared: &'a [Attribute<'a>],
    pub attributes: &'a [Attribute<'a>],
    /// The operation failed (status code ERROR), with a message.
    pub error: Option<&'a str>,
}

/// What the exporter queues: an item that becomes one or more spans when its batch is encoded.
///
/// An item's spans belong to a resource (OTLP's `Resource`: what produced them, a function for
/// instance): a batch is written as one `ResourceSpans` per distinct resource, whose
/// attributes are `service.name`, `cloud.provider` and the item's
/// [`SpanSource::resource_attributes`].
pub trait SpanSource: Send + 'static {
    /// How many spans [`SpanSource::each_span`] gives.
    fn span_count(&self) -> usize;
    /// Calls `f` with each of the item's spans, the same ones in the same order every time
    /// (an encoder may go over a batch twice: lengths first, then bytes).
    fn each_span(&self, f: &mut dyn FnMut(&Span<'_>));
    /// Names the item's resource: items with equal keys have the same
    /// [`SpanSource::resource_attributes`] and share a `ResourceSpans`. The default, `""`:
    /// no attributes of the item's own.
    fn resource_key(&self) -> &str {
        ""
    }
    /// Calls `f` once with the attributes of the item's resource (written after `service.name`
    /// and `cloud.provider`), the same every time. The default: none.
    fn resource_attributes(&self, f: &mut dyn FnMut(&[Attribute<'_>])) {
        f(&[]);
    }
}

/// A batch's items by resource ([`SpanSource::resource_key`]): the groups in the order of their
/// first items, each group's items in batch order. An empty batch has no groups.
pub(crate) struct Groups<'a, S> {
    /// The items, group after group.
    order: Vec<&'a S>,
    /// Where each group ends in `order`.
    ends: Vec<usize>,
}

impl<'a, S: SpanSource> Groups<'a, S> {
    /// Groups `items`: each item's key is compared with its predecessor's group's key (usually
    /// equal: a batch is mostly one function's), else looked up by hash among the groups found
    /// so far. One group (the common case) keeps the batch's order as it is; more are placed
    /// by counting (no sort; a few vectors and a map per batch, no allocation per item).
    pub(crate) fn new(items: &'a [S]) -> Self {
        // Each group's key and size; each item's group; each key's group.
        let mut groups: Vec<(&str, usize)> = Vec::new();
        let mut group_of: Vec<usize> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut current = 0;
        for (i, item) in items.iter().enumerate() {
            let key = item.resource_key();
            if groups.get(current).is_none_or(|g| g.0 != key) {
                current = *index.entry(key).or_insert_with(|| {
                    if groups.len() == 1 {
                        // A second group: the items so far were all the first's.
                        group_of = vec![0; i];
                        group_of.reserve(items.len() - i);
                    }
                    groups.push((key, 0));
                    groups.len() - 1
                });
            }
            groups[current].1 += 1;
            if groups.len() > 1 {
                group_of.push(current);
            }
        }
        if groups.len() <= 1 {
            return Self {
                order: items.iter().collect(),
                ends: groups.iter().map(|_| items.len()).collect(),
            };
        }
        // Each group's next place in `order`, then each group's end.
        let mut next: Vec<usize> = groups
            .iter()
            .scan(0, |start, g| {
                let at = *start;
                *start += g.1;
                Some(at)
            })
            .collect();
        let mut order = vec![&items[0]; items.len()];
        for (item, &g) in items.iter().zip(&group_of) {
            let at = &mut next[g];
            order[*at] = item;
            *at += 1;
        }
        Self { order, ends: next }
    }

    /// How many groups.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Each group's items (never empty).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[&'a S]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter())
            .map(|(start, &end)| &self.order[start..end])
    }
}

/// A span of static strings is its own source (tests, tools).
impl SpanSource for Span<'static> {
    fn span_count(&self) -> usize {
        1
    }

    fn each_span(&self, f: &mut dyn FnMut(&Span<'_>)) {
        f(self);
    }
}

/// Nanoseconds since the epoch (0 before it).
fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Span<'_> {
    fn all_attributes(&self) -> impl Iterator<Item = &Attribute<'_>> {
        self.shared.iter().chain(self.attributes.iter())
    }

    /// Start and end in nanoseconds since the epoch (an end before the start is the start).
    fn times(&self) -> (u64, u64) {
        let start = nanos(self.start);
        (start, nanos(self.end).max(start))
    }
}

/// OTLP status codes.
const STATUS_OK: u64 = 1;
const STATUS_ERROR: u64 = 2;

/// The resource's attributes (besides `service.name`).
const CLOUD_PROVIDER: &str = "kindling";
/// The instrumentation scope.
const SCOPE_NAME: &str = "kindling";
const SCOPE_VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
pub(crate) mod sample {
    use super::*;

    /// Spans that exercise every field and every kind of value.
    pub fn spans() -> Vec<Span<'static>> {
        let start = UNIX_EPOCH + Duration::from_millis(1500);
        vec![
            Span {
                trace_id: TraceId::from_hex("5759e988bd862e3fe1be46a994272793").unwrap(),
                span_id: SpanId(0x5399_5c3f_42cd_8ad8),
                parent_span_id: SpanId::from_hex("0000000000000001"),
                name: "a \"quoted\" name",
                kind: SpanKind::Server,
                start,
                end: start,
                shared: &[("ctl", AttrValue::Str("\u{1}\t\r\\ é"))],
                attributes: &[
                    ("s", AttrValue::Str("x\ny")),
                    ("i", AttrValue::Int(-3)),
                    ("b", AttrValue::Bool(false)),
                ],
                error: None,
            },
            Span {
                trace_id: TraceId::from_hex("5759e988bd862e3fe1be46a994272793").unwrap(),
                span_id: SpanId(0x5399_5c3f_42cd_8ad9),
                parent_span_id: None,
                name: "init",
                kind: SpanKind::Internal,
                start,
                end: start + Duration::from_nanos(7),
                shared: &[],
                attributes: &[("faas.coldstart", AttrValue::Bool(true))],
                error: Some("boom"),
            },
        ]
    }

    /// An item of a function's: its resource (the function's name) and its spans.
    pub struct Invocation {
        pub function: &'static str,
        pub spans: Vec<Span<'static>>,
    }

    impl SpanSource for Invocation {
        fn span_count(&self) -> usize {
            self.spans.len()
        }

        fn each_span(&self, f: &mut dyn FnMut(&Span<'_>)) {
            self.spans.iter().for_each(f);
        }

        fn resource_key(&self) -> &str {
            self.function
        }

        fn resource_attributes(&self, f: &mut dyn FnMut(&[Attribute<'_>])) {
            f(&[
                ("faas.name", AttrValue::Str(self.function)),
                ("faas.max_memory", AttrValue::Int(128)),
            ]);
        }
    }

    /// Two functions' invocations, interleaved: `a`, `b "q"`, `a` (span ids 1..=5 in order).
    pub fn invocations() -> Vec<Invocation> {
        let with_id = |n: u64, i: usize| Span {
            span_id: SpanId(n),
            ..spans()[i]
        };
        vec![
            Invocation {
                function: "a",
                spans: vec![with_id(1, 0), with_id(2, 1)],
            },
            Invocation {
                function: "b \"q\"",
                spans: vec![with_id(3, 0)],
            },
            Invocation {
                function: "a",
                spans: vec![with_id(4, 1), with_id(5, 0)],
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(TraceId::from_hex("0000000000000000000000000000000g"), None);
        assert_eq!(TraceId::from_hex("00"), None);
        assert_eq!(
            TraceId::from_hex("5759e988bd862e3fe1be46a994272793"),
            Some(TraceId(0x5759_e988_bd86_2e3f_e1be_46a9_9427_2793))
        );
        assert_eq!(SpanId::from_hex("FfFfFfFfFfFfFfFf"), Some(SpanId(u64::MAX)));
        // Every byte that is not a hex digit is refused, in every position.
        for b in 0..=255u8 {
            let mut digits = *b"0123456789abcdef";
            digits[7] = b;
            let ok = b.is_ascii_hexdigit();
            let got = std::str::from_utf8(&digits).ok().and_then(SpanId::from_hex);
            assert_eq!(got.is_some(), ok, "{b}");
            let mut long = [b'0'; 32];
            long[31 - usize::from(b % 32)] = b;
            assert_eq!(TraceId::from_hex_bytes(&long).is_some(), ok, "{b}");
        }
    }

    #[test]
    fn encodings_by_their_sdk_names() {
        assert_eq!(Encoding::parse("http/protobuf"), Ok(Encoding::Protobuf));
        assert_eq!(Encoding::parse("http/json"), Ok(Encoding::Json));
        assert!(Encoding::parse("grpc").is_err());
        assert_eq!(Encoding::default(), Encoding::Protobuf);
        assert_eq!(Encoding::Protobuf.content_type(), "application/x-protobuf");
    }

    fn grouped(keys: &[&'static str]) -> Vec<Vec<u64>> {
        let items: Vec<sample::Invocation> = keys
            .iter()
            .enumerate()
            .map(|(n, &function)| sample::Invocation {
                function,
                spans: vec![Span {
                    span_id: SpanId(n as u64),
                    ..sample::spans()[1]
                }],
            })
            .collect();
        let groups = Groups::new(&items);
        let out: Vec<Vec<u64>> = groups
            .iter()
            .map(|g| g.iter().map(|i| i.spans[0].span_id.0).collect())
            .collect();
        assert_eq!(out.len(), groups.len());
        out
    }

    #[test]
    fn items_are_grouped_by_resource_in_order() {
        assert_eq!(grouped(&[]), Vec::<Vec<u64>>::new());
        assert_eq!(grouped(&["a", "a", "a"]), [vec![0, 1, 2]]);
        assert_eq!(
            grouped(&["a", "a", "b", "a", "c", "b", "c"]),
            [vec![0, 1, 3], vec![2, 5], vec![4, 6]]
        );
        assert_eq!(grouped(&["b", "a", "a"]), [vec![0], vec![1, 2]]);
    }

    #[test]
    fn many_interleaved_resources_are_grouped_in_order() {
        // Thirteen keys coming back in turns, runs of one key.
        const NAMES: [&str; 13] = [
            "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m",
        ];
        let keys: Vec<&'static str> = (0..60)
            .map(|n: usize| NAMES[(n * 5 + n / 7) % NAMES.len()])
            .chain(["m", "m", "a", "l"])
            .collect();
        let mut expected: Vec<(&str, Vec<u64>)> = Vec::new();
        for (n, key) in keys.iter().enumerate() {
            match expected.iter_mut().find(|g| g.0 == *key) {
                Some(g) => g.1.push(n as u64),
                None => expected.push((key, vec![n as u64])),
            }
        }
        assert_eq!(expected.len(), NAMES.len());
        let expected: Vec<Vec<u64>> = expected.into_iter().map(|g| g.1).collect();
        assert_eq!(grouped(&keys), expected);
    }

    #[test]
    fn an_end_before_the_start_is_the_start() {
        let mut s = sample::spans().remove(1);
        s.end = UNIX_EPOCH;
        assert_eq!(s.times(), (1_500_000_000, 1_500_000_000));
    }
}
