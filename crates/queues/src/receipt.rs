//! Receipt handles: which message (queue and position) and which receive of it, opaque to
//! clients.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kindling_store::messaging::ReceiptRef;

/// Encodes `<queue id>:<seq>:<receipt nonce>`.
pub fn encode(queue_id: i64, seq: i64, receipt: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{queue_id}:{seq}:{receipt}"))
}

/// Decodes a handle of queue `queue_id`; `None` when it is malformed or of another queue.
pub fn decode(queue_id: i64, handle: &str) -> Option<ReceiptRef> {
    let raw = URL_SAFE_NO_PAD.decode(handle.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut parts = text.splitn(3, ':');
    let q: i64 = parts.next()?.parse().ok()?;
    let seq: i64 = parts.next()?.parse().ok()?;
    let receipt = parts.next()?;
    (q == queue_id && !receipt.is_empty()).then(|| ReceiptRef {
        seq,
        receipt: receipt.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_queues() {
        let h = encode(7, 42, "abc");
        assert_eq!(
            decode(7, &h),
            Some(ReceiptRef {
                seq: 42,
                receipt: "abc".into()
            })
        );
        assert_eq!(decode(8, &h), None);
        assert_eq!(decode(7, "garbage!"), None);
    }
}
