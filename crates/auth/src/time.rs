//! The two timestamp forms SigV4 meets: ISO 8601 basic (`20240101T000000Z`, in `X-Amz-Date`)
//! and the HTTP `Date` header (`Mon, 01 Jan 2024 00:00:00 GMT`). Times are Unix seconds, UTC.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (negative before it).
pub(crate) fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month and day 1-based).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Years start in March so that the leap day is the last day of a year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let march_month = i64::from((month + 9) % 12);
    let day_of_year = (153 * march_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are small and positive by construction.
    (year, month as u32, day as u32)
}

/// Unix seconds of a UTC date and time, or `None` when a field is out of range.
fn to_unix(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Option<i64> {
    if !(1..=12).contains(&month) || day == 0 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    // Rejects the 30th of February and friends.
    if civil_from_days(days) != (year, month, day) {
        return None;
    }
    Some(days * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u32, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

/// Parses `YYYYMMDD'T'HHMMSS'Z'`.
pub(crate) fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    to_unix(
        i64::from(digits(&b[0..4])?),
        digits(&b[4..6])?,
        digits(&b[6..8])?,
        digits(&b[9..11])?,
        digits(&b[11..13])?,
        digits(&b[13..15])?,
    )
}

/// Formats Unix seconds as `YYYYMMDD'T'HHMMSS'Z'`.
pub(crate) fn format_amz_date(unix: i64) -> String {
    let (year, month, day) = civil_from_days(unix.div_euclid(86_400));
    let secs = unix.rem_euclid(86_400);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Parses an HTTP date in the IMF-fixdate shape (`Mon, 01 Jan 2024 00:00:00 GMT`); the zone
/// may also be `UTC`, `+0000` or `-0000` (Python's `formatdate` writes the last).
pub(crate) fn parse_http_date(s: &str) -> Option<i64> {
    let mut parts = s.split_ascii_whitespace();
    let weekday = parts.next()?;
    if !weekday.ends_with(',') {
        return None;
    }
    let day = digits(parts.next()?.as_bytes())?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year = digits(parts.next()?.as_bytes())?;
    let mut clock = parts.next()?.split(':');
    let hour = digits(clock.next()?.as_bytes())?;
    let minute = digits(clock.next()?.as_bytes())?;
    let second = digits(clock.next()?.as_bytes())?;
    if clock.next().is_some() {
        return None;
    }
    if !matches!(parts.next()?, "GMT" | "UTC" | "+0000" | "-0000") || parts.next().is_some() {
        return None;
    }
    to_unix(i64::from(year), month, day, hour, minute, second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_round_trip() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20240101T000000Z"), Some(1_704_067_200));
        assert_eq!(parse_amz_date("20240229T235959Z"), Some(1_709_251_199));
        assert_eq!(format_amz_date(1_704_067_200), "20240101T000000Z");
        assert_eq!(format_amz_date(1_709_251_199), "20240229T235959Z");
        assert_eq!(format_amz_date(-1), "19691231T235959Z");
        // Every day of four centuries, including 2000 (leap) and 2100 (not).
        let start = days_from_civil(1900, 1, 1);
        for d in start..start + 146_097 {
            let (y, m, day) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, day), d);
            let text = format_amz_date(d * 86_400 + 3_723);
            assert_eq!(parse_amz_date(&text), Some(d * 86_400 + 3_723), "{text}");
        }
    }

    #[test]
    fn bad_amz_dates() {
        for bad in [
            "",
            "20240101T000000",
            "20240101 000000Z",
            "2024010T0000000Z",
            "20230229T000000Z",
            "20240230T000000Z",
            "20241301T000000Z",
            "20240100T000000Z",
            "20240101T240000Z",
            "20240101T006000Z",
            "20240101T000060Z",
            "2024-1-1T00000Z",
            "+0240101T000000Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Mon, 01 Jan 2024 00:00:00 GMT"),
            Some(1_704_067_200)
        );
        assert_eq!(
            parse_http_date("Mon, 01 Jan 2024 00:00:01 -0000"),
            Some(1_704_067_201)
        );
        assert_eq!(parse_http_date("Mon, 01 Jan 2024 00:00:00 +0100"), None);
        assert_eq!(parse_http_date("Mon 01 Jan 2024 00:00:00 GMT"), None);
        assert_eq!(parse_http_date("Mon, 31 Feb 2024 00:00:00 GMT"), None);
        assert_eq!(parse_http_date("20240101T000000Z"), None);
    }

    #[test]
    fn unix_seconds_of_system_time() {
        use std::time::Duration;
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_secs(5)), 5);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), -5);
    }
}
