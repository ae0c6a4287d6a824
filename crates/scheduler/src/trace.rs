//! Trace headers for invocations: an incoming `X-Amzn-Trace-Id` is continued (same Root, a new
//! Parent for the invocation's segment), else a new trace is started. Parsing and formatting
//! are the model's; this adds the clock and the random bits.

use std::time::{SystemTime, UNIX_EPOCH};

use kindling_model::trace::TraceHeader;

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    for b in &mut out {
        *b = fastrand::u8(..);
    }
    out
}

/// Appends the lower-case hex of `bytes` to `out`.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// Length of a new trace's header: `Root=1-` 8 hex `-` 24 hex `;Parent=` 16 hex `;Sampled=0`.
const NEW_HEADER_LEN: usize = 7 + 8 + 1 + 24 + 8 + 16 + 10;

/// The header of a new trace, the very text of `TraceHeader::new(..).to_string()`, built in
/// one allocation of its exact length: every invocation without an incoming trace starts one
/// (no intermediate fields, no formatting machinery, and a string the Runtime API's and the
/// Invoke answer's headers take without a copy).
fn new_trace_header(epoch_secs: u64, root_bits: [u8; 12], parent_bits: [u8; 8]) -> String {
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

fn epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn new_trace() -> TraceHeader {
    TraceHeader::new(epoch_secs(), random_bytes(), random_bytes())
}

/// The header to store with an accepted event: `incoming` as sent when it is a valid trace
/// header (normalized), else a new trace. Every attempt of the event continues it.
pub fn accept_trace_header(incoming: Option<&str>) -> String {
    incoming
        .and_then(|h| TraceHeader::parse(h).ok())
        .unwrap_or_else(new_trace)
        .to_string()
}

/// The header an invocation runs with (`Lambda-Runtime-Trace-Id`): `incoming` continued with a
/// new Parent, or a new trace when there is none or it is not a valid trace header.
pub fn invocation_trace_header(incoming: Option<&str>) -> String {
    match incoming.and_then(|h| TraceHeader::parse(h).ok()) {
        Some(h) => h.continued(random_bytes()).to_string(),
        // The common case (no incoming header) in one allocation of the header's length.
        None => new_trace_header(epoch_secs(), random_bytes(), random_bytes()),
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
            let direct = new_trace_header(secs, root, parent);
            assert_eq!(direct, TraceHeader::new(secs, root, parent).to_string());
            assert_eq!(direct.len(), NEW_HEADER_LEN);
            assert_eq!(direct.capacity(), NEW_HEADER_LEN, "no spare capacity");
        }
    }

    #[test]
    fn continues_or_starts_traces() {
        let incoming = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:0";
        let h = TraceHeader::parse(&invocation_trace_header(Some(incoming))).unwrap();
        assert_eq!(h.root(), "1-5759e988-bd862e3fe1be46a994272793");
        assert_ne!(h.parent(), Some("53995c3f42cd8ad8"));
        assert!(h.sampled());
        assert_eq!(h.extra_fields(), ["Lineage=a87bd80c:0"]);

        for incoming in [None, Some("garbage"), Some("")] {
            let a = TraceHeader::parse(&invocation_trace_header(incoming)).unwrap();
            let b = TraceHeader::parse(&invocation_trace_header(incoming)).unwrap();
            assert_ne!(a.root(), b.root(), "a new trace each time");
            assert!(a.parent().is_some() && !a.sampled());
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let secs = u64::from_str_radix(&a.root()[2..10], 16).unwrap();
            assert!(now.abs_diff(secs) < 5, "the Root carries the epoch seconds");
        }
        assert_eq!(accept_trace_header(Some(incoming)), incoming);
        assert!(TraceHeader::parse(&accept_trace_header(None)).is_ok());
    }
}
