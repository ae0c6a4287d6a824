//! Lambda's two timestamp styles: `2020-04-10T19:06:32.563+0000` strings and epoch-second numbers.

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DDThh:mm:ss.sss+0000`.
pub fn lambda_timestamp(epoch_ms: i64) -> String {
    let secs = epoch_ms.div_euclid(1000);
    let millis = epoch_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}+0000",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// Formats milliseconds since the epoch as ISO-8601 UTC with a `Z` (used in event records).
pub fn iso8601_z(epoch_ms: i64) -> String {
    let mut s = lambda_timestamp(epoch_ms);
    s.truncate(s.len() - "+0000".len());
    s.push('Z');
    s
}

/// [`iso8601_z`] written into a fixed buffer (`YYYY-MM-DDTHH:MM:SS.mmmZ`, 24 bytes) without
/// allocating, for the log lines every invocation writes; `None` for years outside 0..=9999
/// (callers fall back to [`iso8601_z`]).
pub fn iso8601_z_bytes(epoch_ms: i64) -> Option<[u8; 24]> {
    let secs = epoch_ms.div_euclid(1000);
    let millis = epoch_ms.rem_euclid(1000) as u32;
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let y = u32::try_from(y).ok().filter(|y| *y <= 9999)?;
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: u32| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y);
    put(5, 2, m);
    put(8, 2, d);
    put(11, 2, sod / 3600);
    put(14, 2, (sod % 3600) / 60);
    put(17, 2, sod % 60);
    put(20, 3, millis);
    Some(out)
}

/// Epoch seconds with a millisecond fraction, the `Date` shape of ESM / event-invoke-config.
pub fn epoch_seconds(epoch_ms: i64) -> f64 {
    epoch_ms as f64 / 1000.0
}

/// Converts days since 1970-01-01 to a (year, month, day) civil date (proleptic Gregorian).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(lambda_timestamp(0), "1970-01-01T00:00:00.000+0000");
        assert_eq!(
            lambda_timestamp(1_586_545_592_563),
            "2020-04-10T19:06:32.563+0000"
        );
        assert_eq!(
            lambda_timestamp(951_782_400_000),
            "2000-02-29T00:00:00.000+0000"
        );
        assert_eq!(iso8601_z(1_586_545_592_563), "2020-04-10T19:06:32.563Z");
        assert_eq!(epoch_seconds(1_573_686_021_479), 1_573_686_021.479);
    }

    #[test]
    fn fixed_buffer_form_matches_the_string_form() {
        let mut ms: i64 = 0;
        // Every field's carry, leap days and the century rules, up to year 9999.
        while ms < 253_402_300_799_999 {
            let bytes = iso8601_z_bytes(ms).unwrap();
            assert_eq!(std::str::from_utf8(&bytes).unwrap(), iso8601_z(ms), "{ms}");
            ms = ms * 3 + 7_919;
        }
        for ms in [
            0,
            999,
            1_000,
            86_399_999,
            951_782_400_000,
            253_402_300_799_999,
        ] {
            let bytes = iso8601_z_bytes(ms).unwrap();
            assert_eq!(std::str::from_utf8(&bytes).unwrap(), iso8601_z(ms));
        }
        assert_eq!(iso8601_z_bytes(253_402_300_800_000), None);
        assert_eq!(iso8601_z_bytes(-62_167_219_200_001), None);
    }
}
