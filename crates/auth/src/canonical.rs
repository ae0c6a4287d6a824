//! The pieces of SigV4's canonical request, computed from the request as received.
//!
//! * URI: the raw path with `.`/`..` and empty segments removed, then every byte outside
//!   RFC 3986's unreserved set (and `/`) percent-encoded. The raw path is already encoded by the
//!   client, so `%3A` becomes `%253A`: the "double encoding" every service except S3 uses
//!   (what botocore, the AWS Rust SDK and AWS JS SDK v3 all compute for Lambda).
//! * Query: each `name=value` pair percent-decoded and re-encoded (unreserved kept, everything
//!   else `%XX` in upper case), sorted by encoded name, then by encoded value.
//! * Headers: lowercase names, values trimmed with inner whitespace runs collapsed to one space,
//!   repeated headers joined with `,`, in the order of `SignedHeaders`.

/// RFC 3986 unreserved characters: never percent-encoded.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Appends `bytes` percent-encoded: unreserved bytes as they are, all others as `%XX`.
pub(crate) fn encode_into(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if is_unreserved(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[
                b'%',
                DIGITS[usize::from(b >> 4)],
                DIGITS[usize::from(b & 0x0f)],
            ]);
        }
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `s`; a `%` not followed by two hex digits stays literal. With
/// `plus_as_space`, `+` decodes to a space (HTML-form style), otherwise it stays `+`.
pub(crate) fn percent_decode(s: &[u8], plus_as_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b == b'%'
            && let (Some(high), Some(low)) = (
                s.get(i + 1).copied().and_then(hex_value),
                s.get(i + 2).copied().and_then(hex_value),
            )
        {
            out.push(high << 4 | low);
            i += 3;
            continue;
        }
        out.push(if plus_as_space && b == b'+' { b' ' } else { b });
        i += 1;
    }
    out
}

/// Whether a path ends in a dot segment (`/.` or `/..`), the one case where signers disagree
/// on the canonical URI: botocore and AWS JS SDK v3 drop the trailing slash
/// (`/a/b/.` → `/a/b`), the AWS Rust SDK keeps it as RFC 3986 says (`/a/b/`).
pub(crate) fn ends_with_dot_segment(raw_path: &str) -> bool {
    raw_path.ends_with("/.") || raw_path.ends_with("/..")
}

/// Appends the canonical URI of a raw (as received, percent-encoded) path. With
/// `dot_keeps_slash`, a final dot segment leaves a trailing slash (the AWS Rust SDK's reading).
pub(crate) fn canonical_uri(out: &mut Vec<u8>, raw_path: &str, dot_keeps_slash: bool) {
    let path = raw_path.as_bytes();
    if path.is_empty() {
        out.push(b'/');
        return;
    }
    let mut segments: Vec<&[u8]> = Vec::new();
    for segment in path.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    if path[0] == b'/' {
        out.push(b'/');
    }
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        encode_into(out, segment);
    }
    let trailing_slash =
        path.ends_with(b"/") || (dot_keeps_slash && ends_with_dot_segment(raw_path));
    if trailing_slash && !segments.is_empty() {
        out.push(b'/');
    }
}

/// How the canonical URI is read from the raw path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UriReading {
    /// Every service but S3: dot segments removed, encoded once more; `dot_keeps_slash` as
    /// in [`canonical_uri`].
    Normalized { dot_keeps_slash: bool },
    /// S3, as botocore signs it: the path exactly as sent.
    S3AsSent,
    /// S3, as SDKs that encode from the decoded key sign it: each byte outside the
    /// unreserved set and `/` encoded once (so `!`, `(`, `'` become `%21`...).
    S3Reencoded,
}

/// Appends the canonical URI of `raw_path` under `reading`.
pub(crate) fn canonical_uri_as(out: &mut Vec<u8>, raw_path: &str, reading: UriReading) {
    match reading {
        UriReading::Normalized { dot_keeps_slash } => canonical_uri(out, raw_path, dot_keeps_slash),
        UriReading::S3AsSent => {
            if raw_path.is_empty() {
                out.push(b'/');
            } else {
                out.extend_from_slice(raw_path.as_bytes());
            }
        }
        UriReading::S3Reencoded => {
            let decoded = percent_decode(raw_path.as_bytes(), false);
            if decoded.is_empty() {
                out.push(b'/');
            }
            for (i, segment) in decoded.split(|&b| b == b'/').enumerate() {
                if i > 0 {
                    out.push(b'/');
                }
                encode_into(out, segment);
            }
        }
    }
}

/// The decoded `(name, value)` pairs of a raw query string, in order; empty pairs
/// (`a=1&&b=2`) are skipped and a pair without `=` has an empty value.
pub(crate) fn query_pairs(raw_query: &str, plus_as_space: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(name.as_bytes(), plus_as_space),
                percent_decode(value.as_bytes(), plus_as_space),
            )
        })
        .collect()
}

/// Appends the canonical query string of decoded pairs, leaving out pairs named `skip`
/// (`X-Amz-Signature` in a presigned URL).
pub(crate) fn canonical_query(
    out: &mut Vec<u8>,
    pairs: &[(Vec<u8>, Vec<u8>)],
    skip: Option<&[u8]>,
) {
    let mut encoded: Vec<(Vec<u8>, Vec<u8>)> = pairs
        .iter()
        .filter(|(name, _)| Some(name.as_slice()) != skip)
        .map(|(name, value)| {
            let mut n = Vec::with_capacity(name.len());
            encode_into(&mut n, name);
            let mut v = Vec::with_capacity(value.len());
            encode_into(&mut v, value);
            (n, v)
        })
        .collect();
    encoded.sort_unstable();
    for (i, (name, value)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(name);
        out.push(b'=');
        out.extend_from_slice(value);
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Appends a header value trimmed, with each inner run of whitespace collapsed to one space.
fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let mut first = true;
    for word in value.split(|&b| is_space(b)).filter(|w| !w.is_empty()) {
        if !first {
            out.push(b' ');
        }
        out.extend_from_slice(word);
        first = false;
    }
}

/// Appends the canonical headers block (`name:value\n` per signed header) for the lowercase
/// `signed` names, reading values from `headers` (names compared case-insensitively).
pub(crate) fn canonical_headers(out: &mut Vec<u8>, signed: &[&str], headers: &[(&str, &[u8])]) {
    for name in signed {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut first = true;
        for (_, value) in headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
            if !first {
                out.push(b',');
            }
            push_trimmed(out, value);
            first = false;
        }
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(path: &str) -> String {
        uri_with(path, false)
    }

    fn uri_with(path: &str, dot_keeps_slash: bool) -> String {
        let mut out = Vec::new();
        canonical_uri(&mut out, path, dot_keeps_slash);
        String::from_utf8(out).expect("ascii")
    }

    fn query(raw: &str, plus_as_space: bool) -> String {
        let mut out = Vec::new();
        canonical_query(
            &mut out,
            &query_pairs(raw, plus_as_space),
            Some(b"X-Amz-Signature"),
        );
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn uri_is_encoded_once_more() {
        assert_eq!(uri(""), "/");
        assert_eq!(uri("/"), "/");
        assert_eq!(
            uri("/2015-03-31/functions/my-fn%3Aprod/invocations"),
            "/2015-03-31/functions/my-fn%253Aprod/invocations"
        );
        assert_eq!(uri("/a b/c:d/~x_y.z-"), "/a%20b/c%3Ad/~x_y.z-");
        assert_eq!(uri("/functions/"), "/functions/");
        assert_eq!(uri("/a//b/./c/../d"), "/a/b/d");
        assert_eq!(uri("/.."), "/");
        assert_eq!(uri("/%2F"), "/%252F");
        assert_eq!(uri("*"), "%2A");
    }

    #[test]
    fn final_dot_segments() {
        assert_eq!(uri("/a/b/."), "/a/b");
        assert_eq!(uri_with("/a/b/.", true), "/a/b/");
        assert_eq!(uri("/a/b/.."), "/a");
        assert_eq!(uri_with("/a/b/..", true), "/a/");
        assert_eq!(uri_with("/a/..", true), "/");
        assert_eq!(uri_with("/a/b", true), "/a/b");
        assert!(ends_with_dot_segment("/x/.."));
        assert!(!ends_with_dot_segment("/x/.y"));
    }

    #[test]
    fn query_is_sorted_and_reencoded() {
        assert_eq!(query("", false), "");
        assert_eq!(
            query("tagKeys=b&tagKeys=a&Marker=x%2fy&MaxItems=10", false),
            "Marker=x%2Fy&MaxItems=10&tagKeys=a&tagKeys=b"
        );
        assert_eq!(query("a&b=&c=%zz&d=~*'", false), "a=&b=&c=%25zz&d=~%2A%27");
        assert_eq!(query("a=b+c", false), "a=b%2Bc");
        assert_eq!(query("a=b+c", true), "a=b%20c");
        assert_eq!(query("a=1&&b=2", false), "a=1&b=2");
        assert_eq!(query("x=1&X-Amz-Signature=abc", false), "x=1");
        // Sorting is by encoded bytes: upper case before lower case, name before value.
        assert_eq!(query("b=1&a=2&B=3&a=1", false), "B=3&a=1&a=2&b=1");
        assert_eq!(query("%C3%A9=%E2%98%83", false), "%C3%A9=%E2%98%83");
    }

    #[test]
    fn headers_are_trimmed_and_joined() {
        let headers: &[(&str, &[u8])] = &[
            ("Host", b"example.com"),
            ("X-Multi", b"  a   b \t c "),
            ("x-multi", b"second"),
            ("X-Other", b"ignored"),
        ];
        let mut out = Vec::new();
        canonical_headers(&mut out, &["host", "x-absent", "x-multi"], headers);
        assert_eq!(
            String::from_utf8(out).expect("ascii"),
            "host:example.com\nx-absent:\nx-multi:a b c,second\n"
        );
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode(b"%41%4a%4A%", false), b"AJJ%");
        assert_eq!(percent_decode(b"%4", false), b"%4");
        assert_eq!(percent_decode(b"a+b", true), b"a b");
    }
}
