//! OTLP/HTTP's JSON encoding (`application/json`): the protobuf messages' JSON mapping with
//! lowerCamelCase names, trace and span ids as hex strings, 64-bit integers as strings and
//! enums as integers, as the OTLP specification defines it for HTTP/JSON.

use std::io::Write as _;

use serde_json::{Value, json};

use crate::{
    AttrValue, Attribute, CLOUD_PROVIDER, Groups, SCOPE_NAME, SCOPE_VERSION, STATUS_ERROR,
    STATUS_OK, Span, SpanSource,
};

/// `s` as a JSON string (serde_json's escaping).
fn write_str(out: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *out, s);
}

/// The JSON body of a batch as text (tests and tools; see [`write_export`]).
pub fn export_text<S: SpanSource>(service_name: &str, items: &[S]) -> String {
    let mut out = Vec::with_capacity(256 + items.len() * 640);
    write_export(&mut out, service_name, items);
    String::from_utf8_lossy(&out).into_owned()
}

/// Appends attributes as a JSON array's elements (`{"key":…,"value":{…}}`, comma-separated).
fn write_attributes<'a>(
    out: &mut Vec<u8>,
    attributes: impl Iterator<Item = &'a Attribute<'a>>,
    mut first: bool,
) {
    for (k, v) in attributes {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        let _ = write!(out, r#"{{"key":"{k}","value":{{"#);
        let _ = match v {
            AttrValue::Str(x) => {
                out.extend_from_slice(br#""stringValue":"#);
                write_str(out, x);
                Ok(())
            }
            AttrValue::Int(x) => write!(out, r#""intValue":"{x}""#),
            AttrValue::Bool(x) => write!(out, r#""boolValue":{x}"#),
        };
        out.extend_from_slice(b"}}");
    }
}

fn write_span(out: &mut Vec<u8>, s: &Span<'_>) {
    let _ = write!(
        out,
        r#"{{"traceId":"{:032x}","spanId":"{:016x}","#,
        s.trace_id.0, s.span_id.0
    );
    if let Some(p) = &s.parent_span_id {
        let _ = write!(out, r#""parentSpanId":"{:016x}","#, p.0);
    }
    out.extend_from_slice(br#""name":"#);
    write_str(out, s.name);
    let (start, end) = s.times();
    let _ = write!(
        out,
        r#","kind":{},"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}","attributes":["#,
        s.kind as i32,
    );
    write_attributes(out, s.all_attributes(), true);
    out.extend_from_slice(b"],\"status\":");
    match s.error {
        None => {
            let _ = write!(out, r#"{{"code":{STATUS_OK}}}"#);
        }
        Some(m) => {
            let _ = write!(out, r#"{{"code":{STATUS_ERROR},"message":"#);
            write_str(out, m);
            out.push(b'}');
        }
    }
    out.push(b'}');
}

/// Appends the JSON body of a batch (the spans of `items`, one `ResourceSpans` per resource in
/// the order of their first items) to `out` directly (no intermediate JSON tree; the exporter
/// reuses one buffer for every batch).
pub fn write_export<S: SpanSource>(out: &mut Vec<u8>, service_name: &str, items: &[S]) {
    let base: [Attribute; 2] = [
        ("service.name", AttrValue::Str(service_name)),
        ("cloud.provider", AttrValue::Str(CLOUD_PROVIDER)),
    ];
    out.extend_from_slice(br#"{"resourceSpans":["#);
    for (n, group) in Groups::new(items).iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"resource":{"attributes":["#);
        write_attributes(out, base.iter(), true);
        group[0].resource_attributes(&mut |attributes| {
            write_attributes(out, attributes.iter(), false);
        });
        let _ = write!(
            out,
            r#"]}},"scopeSpans":[{{"scope":{{"name":"{SCOPE_NAME}","version":"{SCOPE_VERSION}"}},"spans":["#,
        );
        let mut first = true;
        for item in group {
            item.each_span(&mut |s| {
                if !std::mem::take(&mut first) {
                    out.push(b',');
                }
                write_span(out, s);
            });
        }
        out.extend_from_slice(b"]}]}");
    }
    out.extend_from_slice(b"]}");
}

/// Attributes as JSON values.
fn attribute_values<'a>(attributes: impl Iterator<Item = &'a Attribute<'a>>) -> Vec<Value> {
    attributes
        .map(|(k, v)| {
            let value = match v {
                AttrValue::Str(s) => json!({ "stringValue": s }),
                AttrValue::Int(i) => json!({ "intValue": i.to_string() }),
                AttrValue::Bool(b) => json!({ "boolValue": b }),
            };
            json!({ "key": k, "value": value })
        })
        .collect()
}

/// One span as a JSON value (the reference [`write_export`] is checked against).
fn span_value(s: &Span) -> Value {
    let attributes = attribute_values(s.all_attributes());
    let (start, end) = s.times();
    let mut span = json!({
        "traceId": format!("{:032x}", s.trace_id.0),
        "spanId": format!("{:016x}", s.span_id.0),
        "name": s.name,
        "kind": s.kind as i32,
        "startTimeUnixNano": start.to_string(),
        "endTimeUnixNano": end.to_string(),
        "attributes": attributes,
        "status": match &s.error {
            None => json!({ "code": STATUS_OK }),
            Some(m) => json!({ "code": STATUS_ERROR, "message": m }),
        },
    });
    if let Some(p) = &s.parent_span_id {
        span["parentSpanId"] = json!(format!("{:016x}", p.0));
    }
    span
}

/// The JSON body of a batch as a JSON value (tests; see [`write_export`]): the reference both
/// encoders are checked against, grouped naively (each item's resource looked up by its
/// attributes among those seen before).
pub fn export_body<S: SpanSource>(service_name: &str, items: &[S]) -> Value {
    let mut resource_spans: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();
    for item in items {
        let mut attributes = attribute_values(
            [
                ("service.name", AttrValue::Str(service_name)),
                ("cloud.provider", AttrValue::Str(CLOUD_PROVIDER)),
            ]
            .iter(),
        );
        item.resource_attributes(&mut |a| attributes.extend(attribute_values(a.iter())));
        let at = match resource_spans.iter().position(|r| r.0 == attributes) {
            Some(at) => at,
            None => {
                resource_spans.push((attributes, Vec::new()));
                resource_spans.len() - 1
            }
        };
        item.each_span(&mut |s| resource_spans[at].1.push(span_value(s)));
    }
    let resource_spans: Vec<Value> = resource_spans
        .into_iter()
        .map(|(attributes, spans)| {
            json!({
                "resource": { "attributes": attributes },
                "scopeSpans": [{
                    "scope": { "name": SCOPE_NAME, "version": SCOPE_VERSION },
                    "spans": spans,
                }],
            })
        })
        .collect();
    json!({ "resourceSpans": resource_spans })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;

    #[test]
    fn spans_in_otlp_json() {
        let body = export_body("kindling", &sample::spans()[1..]);
        let span = &body["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["startTimeUnixNano"], "1500000000");
        assert_eq!(span["endTimeUnixNano"], "1500000007");
        assert_eq!(span["status"]["code"], 2);
        assert_eq!(span["attributes"][0]["value"]["boolValue"], true);
        assert!(span.get("parentSpanId").is_none());
        assert_eq!(span["spanId"], "53995c3f42cd8ad9");
        assert_eq!(span["traceId"], "5759e988bd862e3fe1be46a994272793");
    }

    #[test]
    fn the_written_body_is_the_json_body() {
        let spans = sample::spans();
        // Quotes, backslashes and control characters are escaped as JSON requires.
        let name = "svc \"x\" \\ \n\t\u{1}";
        let text = export_text(name, &spans);
        assert!(text.contains(r#""traceId":"5759e988bd862e3fe1be46a994272793","spanId":"53995c3f42cd8ad8","parentSpanId":"0000000000000001""#));
        let written: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(written, export_body(name, &spans));
        // One resource (the spans name none of their own).
        assert_eq!(written["resourceSpans"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn each_resource_has_its_resource_spans() {
        let items = sample::invocations();
        let written: Value = serde_json::from_str(&export_text("svc", &items)).unwrap();
        assert_eq!(written, export_body("svc", &items));
        let names: Vec<&Value> = written["resourceSpans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|rs| &rs["resource"]["attributes"][2]["value"]["stringValue"])
            .collect();
        assert_eq!(names, ["a", "b \"q\""]);
    }

    #[test]
    fn an_empty_batch_is_an_empty_request() {
        assert_eq!(
            export_text::<Span<'static>>("s", &[]),
            r#"{"resourceSpans":[]}"#
        );
    }
}
