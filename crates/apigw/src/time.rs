//! Timestamps: v2 shows ISO 8601 (`2026-12-06T04:47:01.000Z`), v1 epoch seconds.

use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// ISO 8601 UTC, as API Gateway v2 shows `createdDate`.
pub(crate) fn iso8601(epoch_ms: i64) -> String {
    kindling_model::timefmt::iso8601_z(epoch_ms)
}

/// Epoch seconds, as API Gateway v1 shows `createdDate`.
pub(crate) fn epoch_seconds(epoch_ms: i64) -> f64 {
    (epoch_ms / 1000) as f64
}
