//! Lambda's recursive loop detection: the `Lineage` field of the X-Ray trace header counts how
//! many times an event (the messages a function sends while handling it, and so on) has
//! invoked each function. Entries are `<id>:<count>` separated by `|`, where `<id>` is 8 hex
//! digits naming the function (`Lineage=a87bd80c:3`); a leading version (`1:a87bd80c:3`) is
//! accepted. Once an event has invoked the same function [`MAX_INVOCATIONS`] times, Lambda
//! stops the next invocation (unless the function's `RecursiveLoop` is `Allow`).
//!
//! Pure: ids are a 32-bit FNV-1a hash of the function's unqualified ARN.

use crate::trace::TraceHeader;

/// Invocations of one function by one chain of events before the next one is stopped.
pub const MAX_INVOCATIONS: u32 = 16;

/// The field's name in the trace header.
pub const FIELD: &str = "Lineage";

/// The 8-hex-digit id of a function in lineage entries.
pub fn function_id(function_arn: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for b in function_arn.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("{hash:08x}")
}

/// Entries of a `Lineage` value; botocore percent-encodes `|` as `%7C` when it forwards
/// `_X_AMZN_TRACE_ID`, so both separate entries.
fn entries(value: &str) -> impl Iterator<Item = (&str, u32)> {
    value
        .split(['|'])
        .flat_map(|e| e.split("%7C"))
        .flat_map(|e| e.split("%7c"))
        .filter_map(|entry| {
            let mut parts = entry.trim().rsplit(':');
            let count = parts.next()?.parse().ok()?;
            let id = parts.next()?;
            Some((id, count))
        })
}

/// How many times the event behind `header` has invoked the function `id`.
pub fn count(header: &TraceHeader, id: &str) -> u32 {
    header
        .field(FIELD)
        .map(|v| entries(v).filter(|(i, _)| *i == id).map(|(_, c)| c).max())
        .unwrap_or_default()
        .unwrap_or(0)
}

/// The header of one more invocation of `id`: its count raised to `count`, other functions'
/// entries kept.
pub fn with_count(header: &TraceHeader, id: &str, count: u32) -> TraceHeader {
    let mut out: Vec<String> = header
        .field(FIELD)
        .map(|v| {
            entries(v)
                .filter(|(i, _)| *i != id)
                .map(|(i, c)| format!("{i}:{c}"))
                .collect()
        })
        .unwrap_or_default();
    out.push(format!("{id}:{count}"));
    header.with_field(FIELD, &out.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_per_function_and_survive_other_entries() {
        let id = function_id("arn:aws:lambda:us-east-1:123456789012:function:f");
        assert_eq!(id.len(), 8);
        let h = TraceHeader::parse(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
        )
        .unwrap();
        assert_eq!(count(&h, &id), 0);
        let h1 = with_count(&h, &id, 1);
        assert_eq!(count(&h1, &id), 1);
        let h2 = with_count(&with_count(&h1, "0badf00d", 4), &id, 2);
        assert_eq!(count(&h2, &id), 2);
        assert_eq!(count(&h2, "0badf00d"), 4);
        assert!(
            h2.to_string()
                .ends_with(&format!(";Lineage=0badf00d:4|{id}:2"))
        );
        let versioned = TraceHeader::parse(&format!(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Lineage=1:{id}:7"
        ))
        .unwrap();
        assert_eq!(count(&versioned, &id), 7);
    }
}
