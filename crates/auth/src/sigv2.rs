//! S3's legacy query-string authentication (signature version 2): the presigned URLs boto3
//! and the aws CLI make by default for S3 (`?AWSAccessKeyId=…&Signature=…&Expires=…`).
//!
//! String to sign: `<METHOD>\n<Content-MD5>\n<Content-Type>\n<Expires>\n` + the request's
//! `x-amz-*` headers (`name:value\n`, sorted) + the canonical resource: `/<bucket>/<key>` as
//! sent, and the sub-resources S3 signs (`?uploadId=…&versionId=…`, sorted). The signature
//! is base64 of HMAC-SHA1 under the secret key.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha1::{Digest, Sha1};

use crate::canonical::{percent_decode, query_pairs};
use crate::crypto::constant_time_eq;
use crate::error::AuthError;
use crate::time::unix_seconds;
use crate::verify::{Request, VerifiedIdentity, Verifier};

/// The query parameters S3 includes in the canonical resource (botocore's list).
const SIGNED_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "cors",
    "defaultObjectAcl",
    "location",
    "logging",
    "partNumber",
    "policy",
    "requestPayment",
    "torrent",
    "versioning",
    "versionId",
    "versions",
    "website",
    "uploads",
    "uploadId",
    "response-content-type",
    "response-content-language",
    "response-expires",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "delete",
    "lifecycle",
    "tagging",
    "restore",
    "storageClass",
    "notification",
    "replication",
    "analytics",
    "metrics",
    "inventory",
    "select",
    "select-type",
    "object-lock",
];

fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha1::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha1::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Whether a query string carries SigV2 query authentication.
pub fn is_s3_v2_query(raw_query: &str) -> bool {
    let names: Vec<&str> = raw_query
        .split('&')
        .map(|p| p.split_once('=').map_or(p, |(k, _)| k))
        .collect();
    names.contains(&"AWSAccessKeyId") && names.contains(&"Signature")
}

fn header<'a>(request: &Request<'a>, name: &str) -> Option<&'a [u8]> {
    request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

impl Verifier {
    /// Verifies an S3 presigned URL of signature version 2. `bucket_prefix` is the bucket of
    /// a virtual-hosted request (whose path lacks it); `None` for path-style.
    pub fn verify_s3_v2_query(
        &self,
        request: &Request<'_>,
        bucket_prefix: Option<&str>,
        now: SystemTime,
    ) -> Result<VerifiedIdentity, AuthError> {
        let pairs = query_pairs(request.query, false);
        let param = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k.as_slice() == name.as_bytes())
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        let (Some(key_id), Some(signature), Some(expires)) = (
            param("AWSAccessKeyId"),
            param("Signature"),
            param("Expires"),
        ) else {
            return Err(AuthError::IncompleteSignature(
                "Query-string authentication requires the AWSAccessKeyId, Signature and \
                 Expires parameters."
                    .into(),
            ));
        };
        let expires_at: i64 = expires.parse().map_err(|_| {
            AuthError::IncompleteSignature(format!(
                "Invalid date (should be seconds since epoch): {expires}"
            ))
        })?;
        if expires_at < unix_seconds(now) {
            return Err(AuthError::SignatureExpired("Request has expired".into()));
        }
        let secret = self
            .credentials()
            .get(&key_id)
            .ok_or(AuthError::UnrecognizedClient)?;
        let token = param("x-amz-security-token").or_else(|| {
            header(request, "x-amz-security-token").map(|v| String::from_utf8_lossy(v).into_owned())
        });
        let token_ok = match (&secret.session_token, &token) {
            (None, None) => true,
            (Some(a), Some(b)) => constant_time_eq(a.as_bytes(), b.as_bytes()),
            _ => false,
        };
        if !token_ok {
            return Err(AuthError::UnrecognizedClient);
        }

        // x-amz-* headers, lowercased, sorted. One sent twice would be signed with its values
        // joined while the service reads the first: refused, as in SigV4.
        let mut amz: Vec<(String, String)> = Vec::new();
        for (i, (name, value)) in request.headers.iter().enumerate() {
            let lower = name.to_ascii_lowercase();
            let signed = lower.starts_with("x-amz-") || lower == "content-md5";
            if signed
                && request.headers[..i]
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                return Err(AuthError::IncompleteSignature(format!(
                    "The header '{lower}' appears more than once; a signed header must be sent \
                     once."
                )));
            }
            if !lower.starts_with("x-amz-") {
                continue;
            }
            let value = String::from_utf8_lossy(value).trim().to_string();
            amz.push((lower, value));
        }
        amz.sort();
        let mut resource = String::new();
        if let Some(bucket) = bucket_prefix {
            resource.push('/');
            resource.push_str(bucket);
        }
        resource.push_str(if request.path.is_empty() {
            "/"
        } else {
            request.path
        });
        // A path-style bucket (`/bucket`): botocore, as S3, signs `/bucket/`.
        let bucket_only = bucket_prefix.is_none()
            && request
                .path
                .strip_prefix('/')
                .is_some_and(|b| !b.is_empty() && !b.contains('/'));
        let mut sub = String::new();
        let mut subresources: Vec<(String, Option<String>)> = request
            .query
            .split('&')
            .filter_map(|p| {
                let (k, v) = match p.split_once('=') {
                    Some((k, v)) => (k, Some(v)),
                    None => (p, None),
                };
                SIGNED_SUBRESOURCES.contains(&k).then(|| {
                    (
                        k.to_string(),
                        v.map(|v| {
                            String::from_utf8_lossy(&percent_decode(v.as_bytes(), false))
                                .into_owned()
                        }),
                    )
                })
            })
            .collect();
        if !subresources.is_empty() {
            subresources.sort_by(|a, b| a.0.cmp(&b.0));
            sub.push('?');
            let parts: Vec<String> = subresources
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{k}={v}"),
                    None => k.clone(),
                })
                .collect();
            sub.push_str(&parts.join("&"));
        }
        let mut resources = vec![format!("{resource}{sub}")];
        if bucket_only {
            resources.push(format!("{resource}/{sub}"));
        }
        let text = |name: &str| {
            header(request, name)
                .map(|v| String::from_utf8_lossy(v).trim().to_string())
                .unwrap_or_default()
        };
        let md5 = text("content-md5");
        let amz_lines: String = amz.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let provided = B64.decode(signature.trim()).unwrap_or_default();
        // The Content-Type the client sends may not be the one it signed (a presigned URL
        // signed without one, used by a client that adds one): both readings need the secret.
        let readings = resources
            .iter()
            .flat_map(|r| [(r, text("content-type")), (r, String::new())]);
        for (resource, content_type) in readings {
            let sts = format!(
                "{}\n{md5}\n{content_type}\n{expires}\n{amz_lines}{resource}",
                request.method.to_ascii_uppercase()
            );
            let expected = hmac_sha1(secret.secret_access_key.as_bytes(), sts.as_bytes());
            if constant_time_eq(&expected, &provided) {
                return Ok(VerifiedIdentity {
                    access_key_id: key_id,
                    session: None,
                });
            }
        }
        Err(AuthError::SignatureDoesNotMatch)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::credentials::Credentials;
    use crate::verify::Payload;

    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        let mac = hmac_sha1(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            crate::crypto::hex(&mac),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    /// AWS's documented example (bucket `johnsmith`): GET /photos/puppy.jpg, Expires 1175139620.
    #[test]
    fn verifies_the_documented_presigned_url() {
        let verifier = Verifier::new(Credentials::new().with_key(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ))
        .with_service("s3");
        let query = "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1175139620&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D";
        let request = Request {
            method: "GET",
            path: "/photos/puppy.jpg",
            query,
            headers: &[("host", b"johnsmith.s3.amazonaws.com")],
            payload: Payload::Bytes(b""),
        };
        let before = UNIX_EPOCH + Duration::from_secs(1_175_139_000);
        let id = verifier
            .verify_s3_v2_query(&request, Some("johnsmith"), before)
            .unwrap();
        assert_eq!(id.access_key_id, "AKIAIOSFODNN7EXAMPLE");
        let after = UNIX_EPOCH + Duration::from_secs(1_175_139_621);
        assert!(matches!(
            verifier.verify_s3_v2_query(&request, Some("johnsmith"), after),
            Err(AuthError::SignatureExpired(_))
        ));
        let tampered = Request {
            path: "/photos/kitten.jpg",
            ..request
        };
        assert_eq!(
            verifier.verify_s3_v2_query(&tampered, Some("johnsmith"), before),
            Err(AuthError::SignatureDoesNotMatch)
        );
        assert!(is_s3_v2_query(query));
        assert!(!is_s3_v2_query("X-Amz-Signature=a"));
    }

    /// botocore presigns a path-style bucket URL (`/bucket?AWSAccessKeyId=...`, a ListObjects
    /// or DeleteBucket) over the resource `/bucket/`, as S3 canonicalizes it.
    #[test]
    fn a_path_style_bucket_is_signed_with_its_slash() {
        let verifier =
            Verifier::new(Credentials::new().with_key("AKID", "secret")).with_service("s3");
        let mac = hmac_sha1(b"secret", b"DELETE\n\n\n1175139620\n/bucket/");
        let mut signature = Vec::new();
        crate::canonical::encode_into(&mut signature, B64.encode(mac).as_bytes());
        let query = format!(
            "AWSAccessKeyId=AKID&Signature={}&Expires=1175139620",
            String::from_utf8(signature).unwrap()
        );
        let request = Request {
            method: "DELETE",
            path: "/bucket",
            query: &query,
            headers: &[("host", b"127.0.0.1:9001")],
            payload: Payload::Bytes(b""),
        };
        let before = UNIX_EPOCH + Duration::from_secs(1_175_139_000);
        assert!(verifier.verify_s3_v2_query(&request, None, before).is_ok());
        let other = Request {
            path: "/other",
            ..request
        };
        assert_eq!(
            verifier.verify_s3_v2_query(&other, None, before),
            Err(AuthError::SignatureDoesNotMatch)
        );
    }

    /// A header signed with two values joined (`x-amz-meta-a: 1,2`) and replayed as two
    /// headers would verify while the service reads `1`.
    #[test]
    fn signed_headers_sent_twice_are_refused() {
        let verifier =
            Verifier::new(Credentials::new().with_key("AKID", "secret")).with_service("s3");
        let mac = hmac_sha1(
            b"secret",
            b"PUT\n\n\n1175139620\nx-amz-meta-a:1,2\n/bucket/key",
        );
        let mut signature = Vec::new();
        crate::canonical::encode_into(&mut signature, B64.encode(mac).as_bytes());
        let query = format!(
            "AWSAccessKeyId=AKID&Signature={}&Expires=1175139620",
            String::from_utf8(signature).unwrap()
        );
        let before = UNIX_EPOCH + Duration::from_secs(1_175_139_000);
        let one = Request {
            method: "PUT",
            path: "/bucket/key",
            query: &query,
            headers: &[("host", b"127.0.0.1:9001"), ("x-amz-meta-a", b"1,2")],
            payload: Payload::Bytes(b""),
        };
        assert!(verifier.verify_s3_v2_query(&one, None, before).is_ok());
        let twice = Request {
            headers: &[
                ("host", b"127.0.0.1:9001"),
                ("x-amz-meta-a", b"1"),
                ("X-Amz-Meta-A", b"2"),
            ],
            ..one
        };
        assert!(matches!(
            verifier.verify_s3_v2_query(&twice, None, before),
            Err(AuthError::IncompleteSignature(m)) if m.contains("x-amz-meta-a")
        ));
    }
}
