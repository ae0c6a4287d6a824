//! Producing signatures: what a client does, for tests and tools that talk to a verifying
//! server. Uses the same canonicalization as the verifier.

use std::time::SystemTime;

use crate::canonical::{encode_into, query_pairs};
use crate::crypto::{hex, hmac_sha256, sha256_hex, signing_key};
use crate::time::{format_amz_date, unix_seconds};
use crate::verify::{ALGORITHM, Payload, Request, UNSIGNED_PAYLOAD, canonical_prefix};

/// Who signs, for which scope, and when.
#[derive(Debug, Clone, Copy)]
pub struct SigningParams<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub time: SystemTime,
}

/// The `X-Amz-Date` value for `time` (`20240101T000000Z`).
pub fn amz_date(time: SystemTime) -> String {
    format_amz_date(unix_seconds(time))
}

/// The `Authorization` header value for `request`. Every header in `request.headers` except
/// `authorization` is signed, so they must already include `host`, `x-amz-date` set to
/// [`amz_date`]`(params.time)`, and `x-amz-security-token` when a session token is used. The
/// payload hash is `x-amz-content-sha256` when that header is present, like botocore does.
pub fn authorization_header(request: &Request<'_>, params: &SigningParams<'_>) -> String {
    let mut names: Vec<String> = request
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .filter(|n| n != "authorization")
        .collect();
    names.sort_unstable();
    names.dedup();
    let signed: Vec<&str> = names.iter().map(String::as_str).collect();
    let signed_headers = signed.join(";");

    let payload_hash = match request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-content-sha256"))
    {
        Some((_, v)) => String::from_utf8_lossy(v).trim().to_string(),
        None => match request.payload {
            Payload::Bytes(body) => sha256_hex(body),
            Payload::Sha256Hex(h) => h.to_ascii_lowercase(),
        },
    };
    let mut canonical = canonical_prefix(
        request,
        false,
        &query_pairs(request.query, false),
        None,
        &signed,
        &signed_headers,
    );
    canonical.extend_from_slice(payload_hash.as_bytes());

    let timestamp = amz_date(params.time);
    let day = &timestamp[..8];
    let scope = format!("{day}/{}/{}/aws4_request", params.region, params.service);
    let string_to_sign = format!(
        "{ALGORITHM}\n{timestamp}\n{scope}\n{}",
        sha256_hex(&canonical)
    );
    let key = signing_key(params.secret_access_key, day, params.region, params.service);
    let signature = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));
    format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        params.access_key_id
    )
}

/// The query string (without `?`) that presigns `GET`-style access to `path` at `host`, as S3
/// presigned URLs do: `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
/// `X-Amz-SignedHeaders=host` and `X-Amz-Signature`, payload `UNSIGNED-PAYLOAD`. `path` is the
/// path as it will be sent (already percent-encoded); `expires_secs` counts from
/// `params.time`. A [`Verifier`](crate::Verifier) with the same key, service and
/// `allow_unsigned_payload(true)` accepts the URL until it expires.
pub fn presigned_query(
    method: &str,
    host: &str,
    path: &str,
    params: &SigningParams<'_>,
    expires_secs: u64,
) -> String {
    let timestamp = amz_date(params.time);
    let day = &timestamp[..8];
    let scope = format!("{day}/{}/{}/aws4_request", params.region, params.service);
    let credential = format!("{}/{scope}", params.access_key_id);
    let mut query = Vec::with_capacity(256);
    for (i, (name, value)) in [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", credential.as_str()),
        ("X-Amz-Date", timestamp.as_str()),
        ("X-Amz-Expires", &expires_secs.to_string()),
        ("X-Amz-SignedHeaders", "host"),
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            query.push(b'&');
        }
        query.extend_from_slice(name.as_bytes());
        query.push(b'=');
        encode_into(&mut query, value.as_bytes());
    }
    // Only ASCII went in.
    let query = String::from_utf8_lossy(&query).into_owned();
    let host_header: [(&str, &[u8]); 1] = [("host", host.as_bytes())];
    let request = Request {
        method,
        path,
        query: &query,
        headers: &host_header,
        payload: Payload::Sha256Hex(UNSIGNED_PAYLOAD),
    };
    let mut canonical = canonical_prefix(
        &request,
        false,
        &query_pairs(&query, false),
        None,
        &["host"],
        "host",
    );
    canonical.extend_from_slice(UNSIGNED_PAYLOAD.as_bytes());
    let string_to_sign = format!(
        "{ALGORITHM}\n{timestamp}\n{scope}\n{}",
        sha256_hex(&canonical)
    );
    let key = signing_key(params.secret_access_key, day, params.region, params.service);
    let signature = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));
    format!("{query}&X-Amz-Signature={signature}")
}
