//! Platform records as small typed values: built on the invoke path without a JSON tree or any
//! string formatting, and written straight into a delivery's (or a JSON log line's) buffer,
//! with Lambda's field names and order (`lambda-facts.md` §4.3).

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

/// A record's string: up to [`Text::INLINE`] bytes (a request id, a version) are kept in the
/// value itself, longer ones on the heap, so building a record allocates nothing for them.
#[derive(Clone)]
pub struct Text(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; Text::INLINE] },
    Heap(Box<str>),
}

impl Text {
    /// Bytes kept inline (a UUID request id is 36).
    pub const INLINE: usize = 46;
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        if s.len() <= Self::INLINE {
            let mut bytes = [0; Self::INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Self(Repr::Inline {
                len: s.len() as u8,
                bytes,
            })
        } else {
            Self(Repr::Heap(s.into()))
        }
    }
}

impl Text {
    /// The string's bytes (no UTF-8 check: they are a whole `str`'s).
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Heap(s) => s.as_bytes(),
        }
    }

    /// The string's length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// The empty string.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        match &self.0 {
            // Always a whole copy of a `str` (see `From<&str>`): valid UTF-8.
            Repr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Repr::Heap(s) => s,
        }
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// One `platform.*` record.
#[derive(Debug, Clone, PartialEq)]
pub enum Platform {
    /// `platform.initStart`.
    InitStart {
        initialization_type: &'static str,
        runtime_version: Box<str>,
        function_name: Box<str>,
        function_version: Box<str>,
    },
    /// `platform.initRuntimeDone`.
    InitRuntimeDone {
        initialization_type: &'static str,
        status: &'static str,
    },
    /// `platform.initReport`.
    InitReport {
        initialization_type: &'static str,
        status: &'static str,
        duration_ms: f64,
    },
    /// `platform.start`.
    Start { request_id: Text, version: Text },
    /// `platform.runtimeDone`.
    RuntimeDone {
        request_id: Text,
        status: Cow<'static, str>,
        duration_ms: f64,
    },
    /// `platform.report`.
    Report(Report),
    /// `platform.telemetrySubscription`.
    TelemetrySubscription { name: Box<str>, types: Vec<String> },
    /// `platform.logsDropped`.
    LogsDropped { records: u64, bytes: u64 },
}

/// `platform.report`'s record.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub request_id: Text,
    pub duration_ms: f64,
    pub billed_duration_ms: u64,
    pub memory_size_mb: u32,
    pub max_memory_used_mb: u64,
    pub init_duration_ms: Option<f64>,
    pub status: Cow<'static, str>,
    pub error_type: Option<Box<str>>,
}

const DROPPED_REASON: &str = "Some logs were dropped because the downstream consumer is slower than the logs production rate";

/// A string JSON writes as it is: no quote, backslash or control character (the bytes
/// serde_json escapes; everything else, UTF-8 included, it copies).
fn needs_no_escape(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\')
}

fn write_quoted(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    out.extend_from_slice(bytes);
    out.push(b'"');
}

/// `"..."` with JSON escapes (serde_json's, which a string without any is copied as is).
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    if needs_no_escape(s.as_bytes()) {
        write_quoted(out, s.as_bytes());
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// [`write_str`] of a [`Text`], from its bytes.
fn write_text(out: &mut Vec<u8>, t: &Text) {
    if needs_no_escape(t.as_bytes()) {
        write_quoted(out, t.as_bytes());
    } else {
        let _ = serde_json::to_writer(&mut *out, &**t);
    }
}

fn write_f64(out: &mut Vec<u8>, v: f64) {
    let _ = serde_json::to_writer(&mut *out, &v);
}

fn write_u64(out: &mut Vec<u8>, v: u64) {
    let _ = serde_json::to_writer(&mut *out, &v);
}

impl Platform {
    /// The item's `type`.
    pub fn ty(&self) -> &'static str {
        match self {
            Self::InitStart { .. } => "platform.initStart",
            Self::InitRuntimeDone { .. } => "platform.initRuntimeDone",
            Self::InitReport { .. } => "platform.initReport",
            Self::Start { .. } => "platform.start",
            Self::RuntimeDone { .. } => "platform.runtimeDone",
            Self::Report(_) => "platform.report",
            Self::TelemetrySubscription { .. } => "platform.telemetrySubscription",
            Self::LogsDropped { .. } => "platform.logsDropped",
        }
    }

    /// About the encoded record's size (for `maxBytes`), without encoding it.
    pub fn size_hint(&self) -> usize {
        match self {
            Self::InitStart {
                runtime_version,
                function_name,
                function_version,
                ..
            } => 110 + runtime_version.len() + function_name.len() + function_version.len(),
            Self::InitRuntimeDone { .. } => 70,
            Self::InitReport { .. } => 100,
            Self::Start {
                request_id,
                version,
            } => 28 + request_id.len() + version.len(),
            Self::RuntimeDone { request_id, .. } => 70 + request_id.len(),
            Self::Report(r) => {
                150 + r.request_id.len() + r.error_type.as_ref().map_or(0, |t| t.len() + 14)
            }
            Self::TelemetrySubscription { name, types } => {
                40 + name.len() + types.iter().map(|t| t.len() + 3).sum::<usize>()
            }
            Self::LogsDropped { .. } => 150,
        }
    }

    /// Appends the record's JSON object.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::InitStart {
                initialization_type,
                runtime_version,
                function_name,
                function_version,
            } => {
                out.extend_from_slice(br#"{"initializationType":"#);
                write_str(out, initialization_type);
                out.extend_from_slice(br#","phase":"init","runtimeVersion":"#);
                write_str(out, runtime_version);
                out.extend_from_slice(br#","functionName":"#);
                write_str(out, function_name);
                out.extend_from_slice(br#","functionVersion":"#);
                write_str(out, function_version);
                out.push(b'}');
            }
            Self::InitRuntimeDone {
                initialization_type,
                status,
            } => {
                out.extend_from_slice(br#"{"initializationType":"#);
                write_str(out, initialization_type);
                out.extend_from_slice(br#","phase":"init","status":"#);
                write_str(out, status);
                out.push(b'}');
            }
            Self::InitReport {
                initialization_type,
                status,
                duration_ms,
            } => {
                out.extend_from_slice(br#"{"initializationType":"#);
                write_str(out, initialization_type);
                out.extend_from_slice(br#","phase":"init","status":"#);
                write_str(out, status);
                out.extend_from_slice(br#","metrics":{"durationMs":"#);
                write_f64(out, *duration_ms);
                out.extend_from_slice(b"}}");
            }
            Self::Start {
                request_id,
                version,
            } => {
                out.extend_from_slice(br#"{"requestId":"#);
                write_text(out, request_id);
                out.extend_from_slice(br#","version":"#);
                write_text(out, version);
                out.push(b'}');
            }
            Self::RuntimeDone {
                request_id,
                status,
                duration_ms,
            } => {
                out.extend_from_slice(br#"{"requestId":"#);
                write_text(out, request_id);
                out.extend_from_slice(br#","status":"#);
                write_str(out, status);
                out.extend_from_slice(br#","metrics":{"durationMs":"#);
                write_f64(out, *duration_ms);
                out.extend_from_slice(b"}}");
            }
            Self::Report(r) => {
                out.extend_from_slice(br#"{"requestId":"#);
                write_text(out, &r.request_id);
                out.extend_from_slice(br#","metrics":{"durationMs":"#);
                write_f64(out, r.duration_ms);
                out.extend_from_slice(br#","billedDurationMs":"#);
                write_u64(out, r.billed_duration_ms);
                out.extend_from_slice(br#","memorySizeMB":"#);
                write_u64(out, u64::from(r.memory_size_mb));
                out.extend_from_slice(br#","maxMemoryUsedMB":"#);
                write_u64(out, r.max_memory_used_mb);
                if let Some(init) = r.init_duration_ms {
                    out.extend_from_slice(br#","initDurationMs":"#);
                    write_f64(out, init);
                }
                out.extend_from_slice(br#"},"status":"#);
                write_str(out, &r.status);
                if let Some(t) = &r.error_type {
                    out.extend_from_slice(br#","errorType":"#);
                    write_str(out, t);
                }
                out.push(b'}');
            }
            Self::TelemetrySubscription { name, types } => {
                out.extend_from_slice(br#"{"name":"#);
                write_str(out, name);
                out.extend_from_slice(br#","state":"Subscribed","types":["#);
                for (i, t) in types.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_str(out, t);
                }
                out.extend_from_slice(b"]}");
            }
            Self::LogsDropped { records, bytes } => {
                out.extend_from_slice(br#"{"reason":"#);
                write_str(out, DROPPED_REASON);
                out.extend_from_slice(br#","droppedRecords":"#);
                write_u64(out, *records);
                out.extend_from_slice(br#","droppedBytes":"#);
                write_u64(out, *bytes);
                out.push(b'}');
            }
        }
    }
}

/// Appends `{"time":"<ISO 8601>","type":"<type>","record":<record>}` of a platform record.
pub fn write_platform_item(out: &mut Vec<u8>, time_ms: i64, record: &Platform) {
    out.extend_from_slice(br#"{"time":""#);
    out.extend_from_slice(&iso_bytes(time_ms));
    out.extend_from_slice(br#"","type":""#);
    out.extend_from_slice(record.ty().as_bytes());
    out.extend_from_slice(br#"","record":"#);
    record.encode(out);
    out.push(b'}');
}

/// `YYYY-MM-DDThh:mm:ss.sssZ` of `ms` since the epoch (instants outside years 0-9999 are
/// written as the nearest end of that range).
pub fn iso_bytes(ms: i64) -> [u8; 24] {
    kindling_model::timefmt::iso8601_z_bytes(ms).unwrap_or(if ms < 0 {
        *b"0000-01-01T00:00:00.000Z"
    } else {
        *b"9999-12-31T23:59:59.999Z"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn encoded(r: &Platform) -> Value {
        let mut out = Vec::new();
        write_platform_item(&mut out, 1_586_545_592_563, r);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn records_have_lambdas_shapes_and_order() {
        let report = Platform::Report(Report {
            request_id: "r\"1".into(),
            duration_ms: 15.74,
            billed_duration_ms: 16,
            memory_size_mb: 128,
            max_memory_used_mb: 20,
            init_duration_ms: Some(100.0),
            status: "error".into(),
            error_type: Some("Runtime.ExitError".into()),
        });
        let mut out = Vec::new();
        write_platform_item(&mut out, 1_586_545_592_563, &report);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"time":"2020-04-10T19:06:32.563Z","type":"platform.report","record":{"requestId":"r\"1","metrics":{"durationMs":15.74,"billedDurationMs":16,"memorySizeMB":128,"maxMemoryUsedMB":20,"initDurationMs":100.0},"status":"error","errorType":"Runtime.ExitError"}}"#
        );
        let cases = [
            (
                Platform::InitStart {
                    initialization_type: "on-demand",
                    runtime_version: "provided".into(),
                    function_name: "f".into(),
                    function_version: "$LATEST".into(),
                },
                json!({"initializationType": "on-demand", "phase": "init", "runtimeVersion": "provided", "functionName": "f", "functionVersion": "$LATEST"}),
            ),
            (
                Platform::InitRuntimeDone {
                    initialization_type: "on-demand",
                    status: "success",
                },
                json!({"initializationType": "on-demand", "phase": "init", "status": "success"}),
            ),
            (
                Platform::InitReport {
                    initialization_type: "on-demand",
                    status: "success",
                    duration_ms: 1.5,
                },
                json!({"initializationType": "on-demand", "phase": "init", "status": "success", "metrics": {"durationMs": 1.5}}),
            ),
            (
                Platform::Start {
                    request_id: "r".into(),
                    version: "$LATEST".into(),
                },
                json!({"requestId": "r", "version": "$LATEST"}),
            ),
            (
                Platform::RuntimeDone {
                    request_id: "r".into(),
                    status: "success".into(),
                    duration_ms: 0.25,
                },
                json!({"requestId": "r", "status": "success", "metrics": {"durationMs": 0.25}}),
            ),
            (
                Platform::TelemetrySubscription {
                    name: "ext".into(),
                    types: vec!["platform".into(), "function".into()],
                },
                json!({"name": "ext", "state": "Subscribed", "types": ["platform", "function"]}),
            ),
            (
                Platform::LogsDropped {
                    records: 3,
                    bytes: 300,
                },
                json!({"reason": DROPPED_REASON, "droppedRecords": 3, "droppedBytes": 300}),
            ),
        ];
        for (record, expected) in cases {
            let item = encoded(&record);
            assert_eq!(item["type"], record.ty());
            assert_eq!(item["time"], "2020-04-10T19:06:32.563Z");
            // Same fields, same order.
            assert_eq!(item["record"].to_string(), expected.to_string());
        }
    }

    #[test]
    fn short_texts_are_inline_and_long_ones_whole() {
        let id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";
        assert!(matches!(Text::from(id).0, Repr::Inline { .. }));
        assert_eq!(&*Text::from(id), id);
        assert_eq!(&*Text::from(""), "");
        let long = "é".repeat(40);
        assert!(matches!(Text::from(long.as_str()).0, Repr::Heap(_)));
        assert_eq!(&*Text::from(long.as_str()), long);
        assert_eq!(Text::from("a"), Text::from("a"));
        assert_eq!(format!("{:?}", Text::from("a\"")), r#""a\"""#);
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let cases = [
            "",
            "plain $LATEST",
            "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
            "é ü 日本 \u{7f}",
            "a\"b",
            "back\\slash",
            "\u{1}\t\r\n\u{1f} ",
        ];
        for s in cases {
            let expected = serde_json::to_vec(s).unwrap();
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(out, expected, "{s:?}");
            out.clear();
            write_text(&mut out, &Text::from(s));
            assert_eq!(out, expected, "{s:?}");
            assert_eq!(Text::from(s).len(), s.len());
        }
        let long = "x\"".repeat(40);
        let mut out = Vec::new();
        write_text(&mut out, &Text::from(long.as_str()));
        assert_eq!(out, serde_json::to_vec(&long).unwrap());
    }

    #[test]
    fn iso_timestamps() {
        assert_eq!(&iso_bytes(0), b"1970-01-01T00:00:00.000Z");
        assert_eq!(&iso_bytes(951_782_400_999), b"2000-02-29T00:00:00.999Z");
    }
}
