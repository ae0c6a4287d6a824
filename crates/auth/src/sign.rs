//! Producing signatures: what a client does, for tests and tools that talk to a verifying
//! server. Uses the same canonicalization as the verifier.

use std::time::SystemTime;

use crate::canonical::query_pairs;
use crate::crypto::{hex, hmac_sha256, sha256_hex, signing_key};
use crate::time::{format_amz_date, unix_seconds};
use crate::verify::{ALGORITHM, Payload, Request, canonical_prefix};

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
