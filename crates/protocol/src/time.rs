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

/// Reads an RFC 7231 IMF-fixdate (`Sun, 06 Dec 2026 01:10:59 GMT`, as in `If-Modified-Since`)
/// into epoch milliseconds; `None` for anything else (HTTP says to ignore such dates).
pub fn parse_http_date(value: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (_, rest) = value.trim().split_once(", ")?;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let num = |s: &str, len: usize| -> Option<i64> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let d = num(day, 2)?;
    let m = MONTHS.iter().position(|x| x == month)? as i64 + 1;
    let y = num(year, 4)?;
    let hms: Vec<&str> = time.split(':').collect();
    let [h, mi, s] = hms.as_slice() else {
        return None;
    };
    let (h, mi, s) = (num(h, 2)?, num(mi, 2)?, num(s, 2)?);
    if !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    Some((days * 86_400 + h * 3600 + mi * 60 + s) * 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

    #[test]
    fn reads_http_dates_back() {
        for ms in [0, 1_796_519_459_000, 951_782_400_000, 4_102_444_800_000] {
            assert_eq!(
                parse_http_date(&http_date(ms)),
                Some(ms),
                "{}",
                http_date(ms)
            );
        }
        for bad in [
            "",
            "yesterday",
            "Sun, 6 Dec 2026 01:10:59 GMT",
            "Sun, 06 Dec 2026 01:10:59 UTC",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }
}
