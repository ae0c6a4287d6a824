//! API Gateway's request time: `02/Jan/2026:03:04:05 +0000`.

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Formats milliseconds since the epoch (UTC) the way `requestContext.time` (2.0) and
/// `requestContext.requestTime` (1.0) show it. Times before 1970 are clamped to the epoch.
pub fn request_time(epoch_ms: i64) -> String {
    let secs = epoch_ms.max(0) / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{day:02}/{}/{year:04}:{:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_api_gateway() {
        assert_eq!(request_time(0), "01/Jan/1970:00:00:00 +0000");
        // 2020-03-12T19:03:58.390Z
        assert_eq!(
            request_time(1_584_039_838_390),
            "12/Mar/2020:19:03:58 +0000"
        );
        // 2024-02-29T23:59:59Z (leap day)
        assert_eq!(
            request_time(1_709_251_199_000),
            "29/Feb/2024:23:59:59 +0000"
        );
        // 2026-01-02T03:04:05Z
        assert_eq!(
            request_time(1_767_323_045_000),
            "02/Jan/2026:03:04:05 +0000"
        );
        assert_eq!(request_time(-5), "01/Jan/1970:00:00:00 +0000");
    }
}
