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
        None => kindling_model::trace::new_header(epoch_secs(), random_bytes(), random_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
