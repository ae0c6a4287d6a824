//! OTLP/HTTP's binary protobuf encoding (`application/x-protobuf`): an
//! `ExportTraceServiceRequest` (`opentelemetry/proto/collector/trace/v1`) with a
//! `ResourceSpans` per resource (a function's), each holding one `ScopeSpans`, written field by field with prost's wire
//! primitives straight from [`Span`]s (no generated message structs, nothing copied). Every
//! message's length is computed before it is written (a first pass over the batch's spans),
//! so the body is written in one pass.

use prost::bytes::BufMut;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use crate::{
    AttrValue, Attribute, CLOUD_PROVIDER, Groups, SCOPE_NAME, SCOPE_VERSION, STATUS_ERROR,
    STATUS_OK, Span, SpanSource,
};

// Field numbers (opentelemetry-proto v1).
mod field {
    /// `ExportTraceServiceRequest.resource_spans`
    pub const RESOURCE_SPANS: u32 = 1;
    /// `ResourceSpans.resource`, `.scope_spans`
    pub const RESOURCE: u32 = 1;
    pub const SCOPE_SPANS: u32 = 2;
    /// `Resource.attributes`
    pub const RESOURCE_ATTRIBUTES: u32 = 1;
    /// `ScopeSpans.scope`, `.spans`
    pub const SCOPE: u32 = 1;
    pub const SPANS: u32 = 2;
    /// `InstrumentationScope.name`, `.version`
    pub const SCOPE_NAME: u32 = 1;
    pub const SCOPE_VERSION: u32 = 2;
    /// `Span`
    pub const TRACE_ID: u32 = 1;
    pub const SPAN_ID: u32 = 2;
    pub const PARENT_SPAN_ID: u32 = 4;
    pub const NAME: u32 = 5;
    pub const KIND: u32 = 6;
    pub const START: u32 = 7;
    pub const END: u32 = 8;
    pub const ATTRIBUTES: u32 = 9;
    pub const STATUS: u32 = 15;
    /// `Status.message`, `.code`
    pub const STATUS_MESSAGE: u32 = 2;
    pub const STATUS_CODE: u32 = 3;
    /// `KeyValue.key`, `.value`
    pub const KEY: u32 = 1;
    pub const VALUE: u32 = 2;
    /// `AnyValue.string_value`, `.bool_value`, `.int_value`
    pub const STRING_VALUE: u32 = 1;
    pub const BOOL_VALUE: u32 = 2;
    pub const INT_VALUE: u32 = 3;
}

/// Bytes of a length-delimited field of `len` bytes.
fn delimited_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// Bytes of a varint field.
fn varint_len(tag: u32, v: u64) -> usize {
    key_len(tag) + encoded_len_varint(v)
}

/// Bytes of a fixed64 field.
fn fixed64_len(tag: u32) -> usize {
    key_len(tag) + 8
}

/// Writes a field's key: one byte for the fields below 16 (all of OTLP's that are written
/// here), else prost's general encoding.
#[inline]
fn put_key(out: &mut Vec<u8>, tag: u32, wire_type: WireType) {
    if tag < 16 {
        out.push((tag << 3) as u8 | wire_type as u8);
    } else {
        encode_key(tag, wire_type, out);
    }
}

/// Writes a varint: one byte below 128 (most lengths, kinds and codes), else prost's.
#[inline]
fn put_uvarint(out: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        out.push(v as u8);
    } else {
        encode_varint(v, out);
    }
}

/// Writes the key and length of a length-delimited field (its content follows).
fn put_delimited(out: &mut Vec<u8>, tag: u32, len: usize) {
    put_key(out, tag, WireType::LengthDelimited);
    put_uvarint(out, len as u64);
}

fn put_bytes(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    put_delimited(out, tag, bytes.len());
    out.put_slice(bytes);
}

fn put_varint(out: &mut Vec<u8>, tag: u32, v: u64) {
    put_key(out, tag, WireType::Varint);
    put_uvarint(out, v);
}

fn put_fixed64(out: &mut Vec<u8>, tag: u32, v: u64) {
    put_key(out, tag, WireType::SixtyFourBit);
    out.put_u64_le(v);
}

/// `AnyValue`'s length.
fn value_len(v: &AttrValue) -> usize {
    match v {
        AttrValue::Str(s) => delimited_len(field::STRING_VALUE, s.len()),
        AttrValue::Bool(_) => varint_len(field::BOOL_VALUE, 1),
        // int64: negative values are ten-byte varints of their two's complement.
        AttrValue::Int(i) => varint_len(field::INT_VALUE, *i as u64),
    }
}

/// `KeyValue`'s length.
fn key_value_len(key: &str, v: &AttrValue) -> usize {
    delimited_len(field::KEY, key.len()) + delimited_len(field::VALUE, value_len(v))
}

fn put_key_value(out: &mut Vec<u8>, tag: u32, key: &str, v: &AttrValue) {
    put_delimited(out, tag, key_value_len(key, v));
    put_bytes(out, field::KEY, key.as_bytes());
    put_delimited(out, field::VALUE, value_len(v));
    match v {
        AttrValue::Str(s) => put_bytes(out, field::STRING_VALUE, s.as_bytes()),
        AttrValue::Bool(b) => put_varint(out, field::BOOL_VALUE, u64::from(*b)),
        AttrValue::Int(i) => put_varint(out, field::INT_VALUE, *i as u64),
    }
}

fn status_code(s: &Span) -> u64 {
    if s.error.is_some() {
        STATUS_ERROR
    } else {
        STATUS_OK
    }
}

/// `Status`'s length.
fn status_len(s: &Span) -> usize {
    s.error
        .map_or(0, |m| delimited_len(field::STATUS_MESSAGE, m.len()))
        + varint_len(field::STATUS_CODE, status_code(s))
}

/// `Span`'s length.
fn span_len(s: &Span) -> usize {
    delimited_len(field::TRACE_ID, 16)
        + delimited_len(field::SPAN_ID, 8)
        + s.parent_span_id
            .map_or(0, |_| delimited_len(field::PARENT_SPAN_ID, 8))
        + delimited_len(field::NAME, s.name.len())
        + varint_len(field::KIND, s.kind as u64)
        + fixed64_len(field::START)
        + fixed64_len(field::END)
        + s.all_attributes()
            .map(|a| attribute_len(field::ATTRIBUTES, a))
            .sum::<usize>()
        + delimited_len(field::STATUS, status_len(s))
}

fn put_span(out: &mut Vec<u8>, s: &Span, len: usize) {
    put_delimited(out, field::SPANS, len);
    put_bytes(out, field::TRACE_ID, &s.trace_id.0.to_be_bytes());
    put_bytes(out, field::SPAN_ID, &s.span_id.0.to_be_bytes());
    if let Some(p) = s.parent_span_id {
        put_bytes(out, field::PARENT_SPAN_ID, &p.0.to_be_bytes());
    }
    put_bytes(out, field::NAME, s.name.as_bytes());
    put_varint(out, field::KIND, s.kind as u64);
    let (start, end) = s.times();
    put_fixed64(out, field::START, start);
    put_fixed64(out, field::END, end);
    for (k, v) in s.all_attributes() {
        put_key_value(out, field::ATTRIBUTES, k, v);
    }
    put_delimited(out, field::STATUS, status_len(s));
    if let Some(m) = s.error {
        put_bytes(out, field::STATUS_MESSAGE, m.as_bytes());
    }
    put_varint(out, field::STATUS_CODE, status_code(s));
}

/// Bytes of a `KeyValue` field of a repeated `attributes`.
fn attribute_len(tag: u32, (k, v): &Attribute) -> usize {
    delimited_len(tag, key_value_len(k, v))
}

/// Appends the protobuf body of a batch (an `ExportTraceServiceRequest` of the spans of
/// `items`: one `ResourceSpans` per resource, in the order of their first items) to `out`.
pub fn write_export<S: SpanSource>(out: &mut Vec<u8>, service_name: &str, items: &[S]) {
    let base: [Attribute; 2] = [
        ("service.name", AttrValue::Str(service_name)),
        ("cloud.provider", AttrValue::Str(CLOUD_PROVIDER)),
    ];
    let base_len = base
        .iter()
        .map(|a| attribute_len(field::RESOURCE_ATTRIBUTES, a))
        .sum::<usize>();
    let scope_len = delimited_len(field::SCOPE_NAME, SCOPE_NAME.len())
        + delimited_len(field::SCOPE_VERSION, SCOPE_VERSION.len());
    let groups = Groups::new(items);
    // First pass: every span's length, and each group's `Resource` and `ScopeSpans` lengths.
    let mut span_lens = Vec::with_capacity(items.iter().map(SpanSource::span_count).sum());
    let mut group_lens = Vec::with_capacity(groups.len());
    for group in groups.iter() {
        let mut resource_len = base_len;
        group[0].resource_attributes(&mut |attributes| {
            resource_len += attributes
                .iter()
                .map(|a| attribute_len(field::RESOURCE_ATTRIBUTES, a))
                .sum::<usize>();
        });
        let first = span_lens.len();
        for item in group {
            item.each_span(&mut |s| span_lens.push(span_len(s)));
        }
        let scope_spans_len = delimited_len(field::SCOPE, scope_len)
            + span_lens[first..]
                .iter()
                .map(|&l| delimited_len(field::SPANS, l))
                .sum::<usize>();
        group_lens.push((resource_len, scope_spans_len));
    }
    let resource_spans_len = |(resource_len, scope_spans_len)| {
        delimited_len(field::RESOURCE, resource_len)
            + delimited_len(field::SCOPE_SPANS, scope_spans_len)
    };
    out.reserve(
        group_lens
            .iter()
            .map(|&g| delimited_len(field::RESOURCE_SPANS, resource_spans_len(g)))
            .sum(),
    );

    let mut lens = span_lens.iter();
    for (group, &(resource_len, scope_spans_len)) in groups.iter().zip(&group_lens) {
        put_delimited(
            out,
            field::RESOURCE_SPANS,
            resource_spans_len((resource_len, scope_spans_len)),
        );
        put_delimited(out, field::RESOURCE, resource_len);
        for (k, v) in &base {
            put_key_value(out, field::RESOURCE_ATTRIBUTES, k, v);
        }
        group[0].resource_attributes(&mut |attributes| {
            for (k, v) in attributes {
                put_key_value(out, field::RESOURCE_ATTRIBUTES, k, v);
            }
        });
        put_delimited(out, field::SCOPE_SPANS, scope_spans_len);
        put_delimited(out, field::SCOPE, scope_len);
        put_bytes(out, field::SCOPE_NAME, SCOPE_NAME.as_bytes());
        put_bytes(out, field::SCOPE_VERSION, SCOPE_VERSION.as_bytes());
        for item in group {
            item.each_span(&mut |s| {
                // Every span was measured in the first pass, in this order.
                let len = lens.next().copied().unwrap_or_else(|| span_len(s));
                put_span(out, s, len);
            });
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! The body is read back with prost's decoding primitives into the OTLP JSON mapping and
    //! compared with the JSON encoder's reference body: both encodings carry the same spans.
    //! (tests/observability decodes what a server exports with the OpenTelemetry project's
    //! own generated protobuf classes.)

    use prost::bytes::Buf;
    use prost::encoding::{decode_key, decode_varint};
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::{json as otlp_json, sample};

    /// How a field of a message is shown in the JSON mapping.
    enum Shape {
        Message(&'static [(u32, &'static str, Shape, bool)]),
        Str,
        Hex,
        Int,
        IntString,
        Bool,
        Fixed64String,
    }

    use Shape::*;

    const ANY_VALUE: &[(u32, &str, Shape, bool)] = &[
        (1, "stringValue", Str, false),
        (2, "boolValue", Bool, false),
        (3, "intValue", IntString, false),
    ];
    const KEY_VALUE: &[(u32, &str, Shape, bool)] = &[
        (1, "key", Str, false),
        (2, "value", Message(ANY_VALUE), false),
    ];
    const STATUS: &[(u32, &str, Shape, bool)] =
        &[(2, "message", Str, false), (3, "code", Int, false)];
    const SPAN: &[(u32, &str, Shape, bool)] = &[
        (1, "traceId", Hex, false),
        (2, "spanId", Hex, false),
        (4, "parentSpanId", Hex, false),
        (5, "name", Str, false),
        (6, "kind", Int, false),
        (7, "startTimeUnixNano", Fixed64String, false),
        (8, "endTimeUnixNano", Fixed64String, false),
        (9, "attributes", Message(KEY_VALUE), true),
        (15, "status", Message(STATUS), false),
    ];
    const SCOPE: &[(u32, &str, Shape, bool)] =
        &[(1, "name", Str, false), (2, "version", Str, false)];
    const SCOPE_SPANS: &[(u32, &str, Shape, bool)] = &[
        (1, "scope", Message(SCOPE), false),
        (2, "spans", Message(SPAN), true),
    ];
    const RESOURCE: &[(u32, &str, Shape, bool)] = &[(1, "attributes", Message(KEY_VALUE), true)];
    const RESOURCE_SPANS: &[(u32, &str, Shape, bool)] = &[
        (1, "resource", Message(RESOURCE), false),
        (2, "scopeSpans", Message(SCOPE_SPANS), true),
    ];
    const REQUEST: &[(u32, &str, Shape, bool)] =
        &[(1, "resourceSpans", Message(RESOURCE_SPANS), true)];

    fn decode(mut buf: &[u8], fields: &[(u32, &str, Shape, bool)]) -> Value {
        let mut out = Map::new();
        while buf.has_remaining() {
            let (tag, wire) = decode_key(&mut buf).unwrap();
            let (_, name, shape, repeated) = fields
                .iter()
                .find(|f| f.0 == tag)
                .unwrap_or_else(|| panic!("unexpected field {tag}"));
            let value = match wire {
                WireType::Varint => {
                    let v = decode_varint(&mut buf).unwrap();
                    match shape {
                        Int => json!(v),
                        IntString => json!((v as i64).to_string()),
                        Bool => json!(v != 0),
                        _ => panic!("{name}: a varint"),
                    }
                }
                WireType::SixtyFourBit => {
                    assert!(matches!(shape, Fixed64String), "{name}: a fixed64");
                    json!(buf.get_u64_le().to_string())
                }
                WireType::LengthDelimited => {
                    let len = decode_varint(&mut buf).unwrap() as usize;
                    let (content, rest) = buf.split_at(len);
                    buf = rest;
                    match shape {
                        Message(inner) => decode(content, inner),
                        Str => json!(std::str::from_utf8(content).unwrap()),
                        Hex => json!(
                            content
                                .iter()
                                .map(|b| format!("{b:02x}"))
                                .collect::<String>()
                        ),
                        _ => panic!("{name}: length-delimited"),
                    }
                }
                other => panic!("{name}: unexpected wire type {other:?}"),
            };
            if *repeated {
                out.entry(name.to_string())
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .unwrap()
                    .push(value);
            } else {
                assert!(
                    out.insert(name.to_string(), value).is_none(),
                    "{name} twice"
                );
            }
        }
        Value::Object(out)
    }

    /// A request body in the OTLP JSON mapping.
    pub(crate) fn decode_request(body: &[u8]) -> Value {
        decode(body, REQUEST)
    }

    #[test]
    fn the_protobuf_body_carries_what_the_json_body_does() {
        let spans = sample::spans();
        let mut body = Vec::new();
        write_export(&mut body, "svc \"x\"", &spans);
        assert_eq!(
            decode(&body, REQUEST),
            otlp_json::export_body("svc \"x\"", &spans)
        );
    }

    #[test]
    fn each_resource_has_its_resource_spans() {
        let items = sample::invocations();
        let mut body = Vec::new();
        write_export(&mut body, "svc", &items);
        let decoded = decode(&body, REQUEST);
        assert_eq!(decoded, otlp_json::export_body("svc", &items));
        let resource_spans = decoded["resourceSpans"].as_array().unwrap();
        assert_eq!(resource_spans.len(), 2);
        for (rs, (function, ids)) in resource_spans.iter().zip([
            ("a", ["01", "02", "04", "05"].as_slice()),
            ("b \"q\"", &["03"]),
        ]) {
            let attributes = &rs["resource"]["attributes"];
            assert_eq!(attributes[0]["key"], "service.name");
            assert_eq!(attributes[1]["key"], "cloud.provider");
            assert_eq!(attributes[2]["key"], "faas.name");
            assert_eq!(attributes[2]["value"]["stringValue"], function);
            assert_eq!(attributes[3]["value"]["intValue"], "128");
            let spans = rs["scopeSpans"][0]["spans"].as_array().unwrap();
            let got: Vec<&str> = spans
                .iter()
                .map(|s| &s["spanId"].as_str().unwrap()[14..])
                .collect();
            assert_eq!(got, ids);
        }
    }

    #[test]
    fn many_interleaved_resources_with_long_names_decode_to_the_reference() {
        // 200 distinct functions (names 1..=300 bytes: one- and two-byte length varints),
        // interleaved a, b, a, c, ... so that Groups reorders; 400 items.
        let names: Vec<&'static str> = (0..200)
            .map(|i| &*Box::leak(format!("f{i}-{}", "x".repeat(i * 3 / 2)).into_boxed_str()))
            .collect();
        let items: Vec<sample::Invocation> = (0..400)
            .map(|n| sample::Invocation {
                function: names[(n * 7919) % names.len()],
                spans: vec![Span {
                    span_id: crate::SpanId(n as u64 + 1),
                    ..sample::spans()[n % 2]
                }],
            })
            .collect();
        let mut body = Vec::new();
        write_export(&mut body, "svc", &items);
        let decoded = decode(&body, REQUEST);
        assert_eq!(decoded, otlp_json::export_body("svc", &items));
        assert_eq!(decoded["resourceSpans"].as_array().unwrap().len(), 200);
    }

    #[test]
    fn ids_are_big_endian_bytes_and_times_fixed64() {
        let spans = &sample::spans()[1..];
        let mut body = Vec::new();
        write_export(&mut body, "s", spans);
        let trace_id = [
            0x57, 0x59, 0xe9, 0x88, 0xbd, 0x86, 0x2e, 0x3f, 0xe1, 0xbe, 0x46, 0xa9, 0x94, 0x27,
            0x27, 0x93,
        ];
        let mut field = vec![0x0a, 16];
        field.extend_from_slice(&trace_id);
        assert!(body.windows(field.len()).any(|w| w == field));
        // startTimeUnixNano = 1.5 s: tag 7, wire type 1, then 8 little-endian bytes.
        let mut start = vec![0x39];
        start.extend_from_slice(&1_500_000_000u64.to_le_bytes());
        assert!(body.windows(start.len()).any(|w| w == start));
    }

    #[test]
    fn keys_and_varints_are_prosts() {
        for tag in [1, 9, 15, 16, 300] {
            for wire_type in [
                WireType::Varint,
                WireType::SixtyFourBit,
                WireType::LengthDelimited,
            ] {
                let (mut ours, mut prosts) = (Vec::new(), Vec::new());
                put_key(&mut ours, tag, wire_type);
                encode_key(tag, wire_type, &mut prosts);
                assert_eq!(ours, prosts, "{tag}");
            }
        }
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let (mut ours, mut prosts) = (Vec::new(), Vec::new());
            put_uvarint(&mut ours, v);
            encode_varint(v, &mut prosts);
            assert_eq!(ours, prosts, "{v}");
        }
    }

    #[test]
    fn an_empty_batch_is_an_empty_request() {
        let mut body = Vec::new();
        write_export::<Span<'static>>(&mut body, "s", &[]);
        // An `ExportTraceServiceRequest` without `resource_spans`.
        assert!(body.is_empty());
    }
}
