//! Timestamp formats of the protocols: ISO 8601 in XML bodies (query, rest-xml), RFC 7231 in
//! HTTP headers (`Last-Modified`), epoch seconds in JSON bodies.

use kindling_model::timefmt;

/// `2026-12-06T01:10:59.123Z` (query and rest-xml bodies).
pub fn iso8601(epoch_ms: i64) -> String {
    timefmt::iso8601_z(epoch_ms)
}

/// `Sun, 06 Dec 2026 01:10:59 GMT` (HTTP date headers).
pub fn http_date(epoch_ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = epoch_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = timefmt::civil_from_days(days);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// Epoch seconds with a millisecond fraction (JSON protocol timestamps).
pub fn epoch_seconds(epoch_ms: i64) -> f64 {
    timefmt::epoch_seconds(epoch_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_each_style() {
        // 2026-12-06T01:10:59.123Z, a Sunday.
        let ms = 1_796_519_459_123;
        assert_eq!(iso8601(ms), "2026-12-06T01:10:59.123Z");
        assert_eq!(http_date(ms), "Sun, 06 Dec 2026 01:10:59 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert!((epoch_seconds(1500) - 1.5).abs() < f64::EPSILON);
    }
}
