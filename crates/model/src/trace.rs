//! The X-Ray trace header Lambda gives every invocation (`X-Amzn-Trace-Id` on Invoke,
//! `Lambda-Runtime-Trace-Id` on the Runtime API, `_X_AMZN_TRACE_ID` in the runtime):
//! `Root=1-<8 hex epoch seconds>-<24 hex>;Parent=<16 hex>;Sampled=0|1`, plus fields of other
//! services (such as `Lineage=`, which Lambda's recursion detection reads), kept verbatim.
//!
//! Pure: the caller supplies the clock reading and the random bits.

use std::fmt;

/// Extra fields (beyond Root, Parent, Sampled) kept when continuing a header, in bytes: a
/// client cannot grow every downstream header and stored event without bound.
pub const MAX_EXTRA_FIELDS_LEN: usize = 1024;

/// Why a header value is not a usable trace header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceHeaderError {
    #[error("the trace header has no Root field")]
    MissingRoot,
    #[error("the trace header's Root {0:?} is not 1-<8 hex>-<24 hex> (not all zero)")]
    InvalidRoot(String),
    #[error("the trace header's Parent {0:?} is not 16 hex digits")]
    InvalidParent(String),
    #[error("the trace header field {0:?} is not key=value")]
    InvalidField(String),
}

/// A parsed trace header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeader {
    /// `1-<8 hex>-<24 hex>`.
    root: String,
    /// 16 hex digits: the id of the calling segment.
    parent: Option<String>,
    /// `Sampled=1`; `Sampled=0`, `?` or absent are not sampled.
    sampled: bool,
    /// Other fields as `key=value`, in their original order.
    extra: Vec<String>,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// All `0`: the W3C trace context's (and OTLP's) invalid id (trace or span).
fn all_zero(s: &str) -> bool {
    s.bytes().all(|b| b == b'0')
}

/// `1-<8 hex>-<24 hex>`, not all zero (its 32 digits are the OpenTelemetry trace id, and an
/// all-zero one is invalid there).
fn valid_root(root: &str) -> bool {
    let mut parts = root.split('-');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some("1"), Some(time), Some(id), None)
            if is_hex(time, 8) && is_hex(id, 24) && !(all_zero(time) && all_zero(id))
    )
}

/// Appends the lower-case hex of `bytes` to `out`.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// Lower-case hex of `bytes`, in one allocation (this runs for every invocation).
fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

/// Length of a new trace's header: `Root=1-` 8 hex `-` 24 hex `;Parent=` 16 hex `;Sampled=0`.
pub const NEW_HEADER_LEN: usize = 7 + 8 + 1 + 24 + 8 + 16 + 10;

/// The header of a new trace, the very text of `TraceHeader::new(..).to_string()`, built in
/// one allocation of its exact length: every invocation without an incoming trace starts one
/// (no intermediate fields, no formatting machinery).
pub fn new_header(epoch_secs: u64, root_bits: [u8; 12], parent_bits: [u8; 8]) -> String {
    let mut out = String::with_capacity(NEW_HEADER_LEN);
    out.push_str("Root=1-");
    let secs = (epoch_secs & 0xffff_ffff) as u32;
    push_hex(&mut out, &secs.to_be_bytes());
    out.push('-');
    push_hex(&mut out, &root_bits);
    out.push_str(";Parent=");
    push_hex(&mut out, &parent_bits);
    out.push_str(";Sampled=0");
    out
}

/// The value of field `key` of a header Kindling wrote (or one already accepted), read in
/// place without parsing or validating the rest.
pub fn header_field<'h>(header: &'h str, key: &str) -> Option<&'h str> {
    header.split(';').find_map(|field| {
        let (k, v) = field.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

impl TraceHeader {
    /// A new trace: its Root from the epoch seconds and 96 random bits, a Parent segment id
    /// from 64 random bits, not sampled (Kindling records no traces).
    pub fn new(epoch_secs: u64, root_bits: [u8; 12], parent_bits: [u8; 8]) -> Self {
        Self {
            root: format!("1-{:08x}-{}", epoch_secs & 0xffff_ffff, hex(&root_bits)),
            parent: Some(hex(&parent_bits)),
            sampled: false,
            extra: Vec::new(),
        }
    }

    /// Parses a header value (`;`-separated `key=value` fields; keys are case-sensitive, as
    /// X-Ray writes them; spaces around fields are ignored).
    pub fn parse(value: &str) -> Result<Self, TraceHeaderError> {
        let mut root = None;
        let mut parent = None;
        let mut sampled = false;
        let mut extra = Vec::new();
        let mut extra_len = 0;
        for field in value.split(';').map(str::trim).filter(|f| !f.is_empty()) {
            let Some((key, val)) = field.split_once('=') else {
                return Err(TraceHeaderError::InvalidField(field.to_string()));
            };
            match key.trim() {
                "Root" if valid_root(val.trim()) => root = Some(val.trim().to_string()),
                "Root" => return Err(TraceHeaderError::InvalidRoot(val.to_string())),
                // An all-zero span id is invalid (W3C, OTLP): no parent, the rest kept.
                "Parent" if is_hex(val.trim(), 16) => {
                    parent = (!all_zero(val.trim())).then(|| val.trim().to_string());
                }
                "Parent" => return Err(TraceHeaderError::InvalidParent(val.to_string())),
                "Sampled" => sampled = val.trim() == "1",
                "" => return Err(TraceHeaderError::InvalidField(field.to_string())),
                _ if extra_len + field.len() < MAX_EXTRA_FIELDS_LEN => {
                    extra_len += field.len() + 1;
                    extra.push(field.to_string());
                }
                _ => {}
            }
        }
        let root = root.ok_or(TraceHeaderError::MissingRoot)?;
        Ok(Self {
            root,
            parent,
            sampled,
            extra,
        })
    }

    /// The same trace (Root, sampling decision and other fields) seen from a new segment:
    /// `parent_bits` become the Parent.
    pub fn continued(&self, parent_bits: [u8; 8]) -> Self {
        Self {
            parent: Some(hex(&parent_bits)),
            ..self.clone()
        }
    }

    /// `1-<8 hex>-<24 hex>`.
    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn parent(&self) -> Option<&str> {
        self.parent.as_deref()
    }

    pub fn sampled(&self) -> bool {
        self.sampled
    }

    /// The fields other than Root, Parent and Sampled, as `key=value`.
    pub fn extra_fields(&self) -> &[String] {
        &self.extra
    }

    /// The value of another service's field (`Lineage`), if present.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.extra.iter().find_map(|f| {
            let (k, v) = f.split_once('=')?;
            (k.trim() == key).then(|| v.trim())
        })
    }

    /// The same header with `key=value` replacing that field (or appended).
    pub fn with_field(&self, key: &str, value: &str) -> Self {
        let mut out = self.clone();
        let field = format!("{key}={value}");
        match out
            .extra
            .iter_mut()
            .find(|f| f.split_once('=').is_some_and(|(k, _)| k.trim() == key))
        {
            Some(f) => *f = field,
            None => out.extra.push(field),
        }
        out
    }
}

impl fmt::Display for TraceHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Root={}", self.root)?;
        if let Some(parent) = &self.parent {
            write!(f, ";Parent={parent}")?;
        }
        write!(f, ";Sampled={}", u8::from(self.sampled))?;
        for field in &self.extra {
            write!(f, ";{field}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_header_is_the_new_traces_text_in_one_exact_allocation() {
        for (secs, root, parent) in [
            (0x5bef_4de7_u64, [0xad; 12], [0x9a; 8]),
            (0, [0; 12], [0; 8]),
            (0x1_0000_0001, [0xff; 12], [1, 2, 3, 4, 5, 6, 7, 8]),
        ] {
            let direct = new_header(secs, root, parent);
            assert_eq!(direct, TraceHeader::new(secs, root, parent).to_string());
            assert_eq!(direct.len(), NEW_HEADER_LEN);
            assert_eq!(direct.capacity(), NEW_HEADER_LEN, "no spare capacity");
        }
    }

    #[test]
    fn header_fields_in_place() {
        let h = " Root=1-5759e988-bd862e3fe1be46a994272793; Parent=53995c3f42cd8ad8;Sampled=1";
        assert_eq!(
            header_field(h, "Root"),
            Some("1-5759e988-bd862e3fe1be46a994272793")
        );
        assert_eq!(header_field(h, "Parent"), Some("53995c3f42cd8ad8"));
        assert_eq!(header_field(h, "Lineage"), None);
        assert_eq!(header_field("garbage", "Root"), None);
    }

    #[test]
    fn new_traces_have_xrays_format() {
        let h = TraceHeader::new(0x5bef_4de7, [0xad; 12], [0x9a; 8]);
        assert_eq!(
            h.to_string(),
            "Root=1-5bef4de7-adadadadadadadadadadadad;Parent=9a9a9a9a9a9a9a9a;Sampled=0"
        );
        assert_eq!(TraceHeader::parse(&h.to_string()), Ok(h));
    }

    #[test]
    fn hex_is_two_lower_case_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xf0, 0xff, 0x5a]), "000ff0ff5a");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn continuing_keeps_root_sampling_and_other_fields() {
        let incoming = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:0";
        let h = TraceHeader::parse(incoming).unwrap();
        assert_eq!(h.root(), "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(h.parent(), Some("53995c3f42cd8ad8"));
        assert!(h.sampled());
        let next = h.continued([1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            next.to_string(),
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0102030405060708;Sampled=1;Lineage=a87bd80c:0"
        );
    }

    #[test]
    fn parses_partial_and_spaced_headers() {
        let h =
            TraceHeader::parse(" Root=1-5759e988-bd862e3fe1be46a994272793 ; Sampled=? ;").unwrap();
        assert_eq!(h.parent(), None);
        assert!(!h.sampled());
        assert_eq!(
            h.to_string(),
            "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0"
        );
        // Order does not matter.
        let h = TraceHeader::parse("Sampled=1;Self=1-abc;Root=1-5759e988-bd862e3fe1be46a994272793")
            .unwrap();
        assert_eq!(
            h.to_string(),
            "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1;Self=1-abc"
        );
    }

    #[test]
    fn rejects_what_is_not_a_trace_header() {
        assert_eq!(
            TraceHeader::parse("Parent=53995c3f42cd8ad8"),
            Err(TraceHeaderError::MissingRoot)
        );
        assert_eq!(TraceHeader::parse(""), Err(TraceHeaderError::MissingRoot));
        assert!(matches!(
            TraceHeader::parse("Root=2-5759e988-bd862e3fe1be46a994272793"),
            Err(TraceHeaderError::InvalidRoot(_))
        ));
        assert!(matches!(
            TraceHeader::parse("Root=1-5759e98-bd862e3fe1be46a994272793"),
            Err(TraceHeaderError::InvalidRoot(_))
        ));
        assert!(matches!(
            TraceHeader::parse("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=xyz"),
            Err(TraceHeaderError::InvalidParent(_))
        ));
        // An all-zero trace id is invalid trace context (W3C, OTLP): the caller gets a new trace.
        assert!(matches!(
            TraceHeader::parse("Root=1-00000000-000000000000000000000000"),
            Err(TraceHeaderError::InvalidRoot(_))
        ));
        // An all-zero Parent is no parent; the Root, the sampling decision and the other
        // fields (Lineage: recursive loop detection) are kept.
        let h = TraceHeader::parse(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000000;Sampled=1;Lineage=a:1",
        )
        .unwrap();
        assert_eq!(h.root(), "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(h.parent(), None);
        assert!(h.sampled());
        assert_eq!(h.field("Lineage"), Some("a:1"));
        assert!(TraceHeader::parse("Root=1-00000000-000000000000000000000001").is_ok());
        assert!(TraceHeader::parse("Root=1-00000001-000000000000000000000000").is_ok());
        assert!(matches!(
            TraceHeader::parse("Root=1-5759e988-bd862e3fe1be46a994272793;junk"),
            Err(TraceHeaderError::InvalidField(_))
        ));
    }

    #[test]
    fn extra_fields_are_bounded() {
        let long = format!(
            "Root=1-5759e988-bd862e3fe1be46a994272793;A={};B=kept?;C=1",
            "x".repeat(MAX_EXTRA_FIELDS_LEN)
        );
        let h = TraceHeader::parse(&long).unwrap();
        assert_eq!(h.extra_fields(), ["B=kept?", "C=1"]);
    }
}
