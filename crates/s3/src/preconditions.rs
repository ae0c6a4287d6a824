//! Conditional reads (`If-Match`, `If-None-Match`, `If-Modified-Since`,
//! `If-Unmodified-Since`, as RFC 7232 and S3 evaluate them) and byte ranges (`Range`).

use http::HeaderMap;
use kindling_model::objects::ObjectRecord;
use kindling_protocol::time::parse_http_date;

use crate::error::S3Error;
use crate::request::header;

/// Whether an `If-Match`/`If-None-Match` list names `etag` (or is `*`).
fn etag_listed(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/").trim_matches('"') == etag)
}

/// Checks a GET/HEAD's conditions against the object: `PreconditionFailed` (412) or
/// `NotModified` (304) when one fails.
pub fn check(headers: &HeaderMap, rec: &ObjectRecord) -> Result<(), S3Error> {
    let modified_s = rec.last_modified_ms.div_euclid(1000);
    let if_match = header(headers, "if-match");
    if let Some(list) = if_match
        && !etag_listed(list, &rec.etag)
    {
        return Err(S3Error::PreconditionFailed);
    }
    if if_match.is_none()
        && let Some(since) = header(headers, "if-unmodified-since").and_then(parse_http_date)
        && modified_s > since.div_euclid(1000)
    {
        return Err(S3Error::PreconditionFailed);
    }
    let if_none_match = header(headers, "if-none-match");
    if let Some(list) = if_none_match
        && etag_listed(list, &rec.etag)
    {
        return Err(S3Error::NotModified);
    }
    if if_none_match.is_none()
        && let Some(since) = header(headers, "if-modified-since").and_then(parse_http_date)
        && modified_s <= since.div_euclid(1000)
    {
        return Err(S3Error::NotModified);
    }
    Ok(())
}

/// The byte range `Range` asks of an object of `size` bytes: `None` for the whole object
/// (no header, or one S3 ignores: not `bytes=`, several ranges), `InvalidRange` when it
/// cannot be satisfied. Inclusive start, exclusive end.
pub fn range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, S3Error> {
    let Some(spec) = header(headers, "range") else {
        return Ok(None);
    };
    let Some(spec) = spec.strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (first, last) = spec.split_once('-').ok_or(S3Error::InvalidRange { size })?;
    let (first, last) = (first.trim(), last.trim());
    let num = |s: &str| s.parse::<u64>().map_err(|_| S3Error::InvalidRange { size });
    let (start, end) = match (first.is_empty(), last.is_empty()) {
        (true, true) => return Err(S3Error::InvalidRange { size }),
        // Suffix: the last N bytes.
        (true, false) => {
            let n = num(last)?;
            if n == 0 || size == 0 {
                return Err(S3Error::InvalidRange { size });
            }
            (size.saturating_sub(n), size)
        }
        (false, true) => (num(first)?, size),
        (false, false) => {
            let (a, b) = (num(first)?, num(last)?);
            if b < a {
                return Ok(None);
            }
            (a, b.saturating_add(1).min(size))
        }
    };
    if start >= size {
        return Err(S3Error::InvalidRange { size });
    }
    Ok(Some((start, end)))
}

#[cfg(test)]
mod tests {
    use kindling_model::objects::ObjectMeta;
    use kindling_protocol::time::http_date;

    use super::*;

    fn rec() -> ObjectRecord {
        ObjectRecord {
            bucket: "b".into(),
            key: "k".into(),
            blob: "x".into(),
            size: 10,
            etag: "abc".into(),
            last_modified_ms: 1_700_000_000_500,
            version_id: None,
            meta: ObjectMeta::default(),
            checksum: None,
            parts: None,
        }
    }

    fn h(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn conditions_follow_rfc_7232() {
        let r = rec();
        let at = http_date(r.last_modified_ms);
        let before = http_date(r.last_modified_ms - 60_000);
        assert!(check(&h(&[("if-match", "\"abc\"".into())]), &r).is_ok());
        assert!(check(&h(&[("if-match", "*".into())]), &r).is_ok());
        assert!(matches!(
            check(&h(&[("if-match", "\"zzz\"".into())]), &r),
            Err(S3Error::PreconditionFailed)
        ));
        assert!(matches!(
            check(&h(&[("if-none-match", "\"abc\"".into())]), &r),
            Err(S3Error::NotModified)
        ));
        assert!(check(&h(&[("if-none-match", "\"zzz\"".into())]), &r).is_ok());
        assert!(matches!(
            check(&h(&[("if-modified-since", at.clone())]), &r),
            Err(S3Error::NotModified)
        ));
        assert!(check(&h(&[("if-modified-since", before.clone())]), &r).is_ok());
        assert!(matches!(
            check(&h(&[("if-unmodified-since", before.clone())]), &r),
            Err(S3Error::PreconditionFailed)
        ));
        assert!(check(&h(&[("if-unmodified-since", at.clone())]), &r).is_ok());
        // If-Match wins over If-Unmodified-Since; If-None-Match over If-Modified-Since.
        assert!(
            check(
                &h(&[
                    ("if-match", "\"abc\"".into()),
                    ("if-unmodified-since", before)
                ]),
                &r
            )
            .is_ok()
        );
        assert!(
            check(
                &h(&[
                    ("if-none-match", "\"zzz\"".into()),
                    ("if-modified-since", at)
                ]),
                &r
            )
            .is_ok()
        );
        // Unparseable dates are ignored.
        assert!(check(&h(&[("if-modified-since", "yesterday".into())]), &r).is_ok());
    }

    #[test]
    fn ranges_of_a_ten_byte_object() {
        let r = |s: &str| range(&h(&[("range", s.to_string())]), 10);
        assert_eq!(r("bytes=0-4").unwrap(), Some((0, 5)));
        assert_eq!(r("bytes=5-").unwrap(), Some((5, 10)));
        assert_eq!(r("bytes=-3").unwrap(), Some((7, 10)));
        assert_eq!(r("bytes=-30").unwrap(), Some((0, 10)));
        assert_eq!(r("bytes=8-100").unwrap(), Some((8, 10)));
        assert_eq!(r("bytes=0-1,4-5").unwrap(), None);
        assert_eq!(r("items=0-1").unwrap(), None);
        assert_eq!(r("bytes=5-2").unwrap(), None);
        for bad in [
            "bytes=10-",
            "bytes=-0",
            "bytes=x-1",
            "bytes=-",
            "bytes=99999999999999999999-",
        ] {
            assert!(
                matches!(r(bad), Err(S3Error::InvalidRange { size: 10 })),
                "{bad}"
            );
        }
        assert_eq!(range(&HeaderMap::new(), 10).unwrap(), None);
        assert!(range(&h(&[("range", "bytes=0-0".into())]), 0).is_err());
    }
}
