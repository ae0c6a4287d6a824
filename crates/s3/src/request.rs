//! Reading what S3 requests say in their headers: object metadata, digests and checksums,
//! the payload's encoding.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http::HeaderMap;
use kindling_model::objects::{ChecksumAlgorithm, ObjectMeta};
use kindling_objects::digest::unhex;

use crate::error::S3Error;

/// Most bytes of user metadata (`x-amz-meta-*` names and values) an object may carry.
pub const MAX_USER_METADATA: usize = 2 * 1024;
/// Most tags on an object.
const MAX_OBJECT_TAGS: usize = 10;

/// The first value of a header as text, if present and valid.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// What `x-amz-content-sha256` says about the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentSha256 {
    /// Not sent (unsigned or presigned requests).
    Missing,
    /// The SHA-256 of a plain body.
    Hash([u8; 32]),
    /// `UNSIGNED-PAYLOAD`.
    Unsigned,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: aws-chunked, no chunk signatures.
    StreamingUnsigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`: aws-chunked with chunk signatures.
    StreamingSigned,
}

impl ContentSha256 {
    pub fn read(headers: &HeaderMap) -> Result<Self, S3Error> {
        let Some(v) = header(headers, "x-amz-content-sha256") else {
            return Ok(Self::Missing);
        };
        Ok(match v {
            "UNSIGNED-PAYLOAD" => Self::Unsigned,
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => Self::StreamingUnsigned,
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" | "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => {
                Self::StreamingSigned
            }
            v if v.len() == 64 => match unhex(v).and_then(|b| <[u8; 32]>::try_from(b).ok()) {
                Some(h) => Self::Hash(h),
                None => return Err(invalid_sha256()),
            },
            v if v.starts_with("STREAMING-AWS4-ECDSA-P256-SHA256") => {
                return Err(S3Error::NotImplemented(
                    "SigV4a (AWS4-ECDSA-P256-SHA256) streaming signatures".into(),
                ));
            }
            _ => return Err(invalid_sha256()),
        })
    }

    pub fn is_streaming(&self) -> bool {
        matches!(self, Self::StreamingUnsigned | Self::StreamingSigned)
    }
}

fn invalid_sha256() -> S3Error {
    S3Error::InvalidArgument(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, \
         STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER], or a valid sha256 value."
            .into(),
    )
}

/// `Content-MD5`, decoded; `InvalidDigest` when it is not base64 of 16 bytes.
pub fn content_md5(headers: &HeaderMap) -> Result<Option<[u8; 16]>, S3Error> {
    header(headers, "content-md5")
        .map(|v| {
            B64.decode(v)
                .ok()
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .ok_or(S3Error::InvalidDigest)
        })
        .transpose()
}

/// Decodes a base64 checksum value of `algorithm`.
pub fn decode_checksum(algorithm: ChecksumAlgorithm, value: &str) -> Result<Vec<u8>, S3Error> {
    B64.decode(value.trim())
        .ok()
        .filter(|b| b.len() == algorithm.digest_len())
        .ok_or_else(|| {
            S3Error::InvalidRequest(format!(
                "Value for {} header is invalid.",
                algorithm.header()
            ))
        })
}

/// The `x-amz-checksum-*` headers a request carries, decoded.
pub fn checksum_headers(headers: &HeaderMap) -> Result<Vec<(ChecksumAlgorithm, Vec<u8>)>, S3Error> {
    let mut out = Vec::new();
    for a in ChecksumAlgorithm::ALL {
        if let Some(v) = header(headers, a.header()) {
            out.push((a, decode_checksum(a, v)?));
        }
    }
    if out.len() > 1 {
        return Err(S3Error::InvalidRequest(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
                .into(),
        ));
    }
    Ok(out)
}

/// The algorithm named by `x-amz-sdk-checksum-algorithm` or `x-amz-checksum-algorithm`.
pub fn requested_algorithm(headers: &HeaderMap) -> Result<Option<ChecksumAlgorithm>, S3Error> {
    let Some(name) = header(headers, "x-amz-sdk-checksum-algorithm")
        .or_else(|| header(headers, "x-amz-checksum-algorithm"))
    else {
        return Ok(None);
    };
    ChecksumAlgorithm::parse(name).map(Some).ok_or_else(|| {
        S3Error::InvalidRequest(format!(
            "Checksum algorithm provided is unsupported. Please try again with any of the valid \
             types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256] (got '{name}')"
        ))
    })
}

/// The checksums `x-amz-trailer` announces.
pub fn trailer_algorithms(headers: &HeaderMap) -> Result<Vec<ChecksumAlgorithm>, S3Error> {
    let Some(v) = header(headers, "x-amz-trailer") else {
        return Ok(Vec::new());
    };
    v.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|name| {
            ChecksumAlgorithm::ALL
                .into_iter()
                .find(|a| a.header().eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    S3Error::InvalidRequest(format!("The trailing header {name} is not supported."))
                })
        })
        .collect()
}

/// A non-negative integer header.
pub fn u64_header(headers: &HeaderMap, name: &str) -> Result<Option<u64>, S3Error> {
    header(headers, name)
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                S3Error::InvalidArgument(format!("{name} must be a non-negative integer."))
            })
        })
        .transpose()
}

/// The metadata a PutObject / CreateMultipartUpload / CopyObject (REPLACE) sets.
pub fn object_meta(headers: &HeaderMap) -> Result<ObjectMeta, S3Error> {
    let get = |n: &str| header(headers, n).map(str::to_string);
    let mut user = BTreeMap::new();
    let mut user_bytes = 0usize;
    for (name, value) in headers {
        let Some(key) = name.as_str().strip_prefix("x-amz-meta-") else {
            continue;
        };
        let value = value.to_str().map_err(|_| {
            S3Error::InvalidArgument(format!(
                "The value of the metadata header x-amz-meta-{key} must be ASCII."
            ))
        })?;
        user_bytes += key.len() + value.len();
        user.insert(key.to_string(), value.trim().to_string());
    }
    if user_bytes > MAX_USER_METADATA {
        return Err(S3Error::MetadataTooLarge);
    }
    let content_encoding = get("content-encoding").and_then(|ce| {
        let rest: Vec<&str> = ce
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked"))
            .collect();
        (!rest.is_empty()).then(|| rest.join(","))
    });
    Ok(ObjectMeta {
        content_type: get("content-type"),
        content_encoding,
        content_disposition: get("content-disposition"),
        content_language: get("content-language"),
        cache_control: get("cache-control"),
        expires: get("expires"),
        user,
        tags: match header(headers, "x-amz-tagging") {
            Some(t) => parse_tag_query(t)?,
            None => BTreeMap::new(),
        },
        server_side_encryption: get("x-amz-server-side-encryption"),
        sse_kms_key_id: get("x-amz-server-side-encryption-aws-kms-key-id"),
        storage_class: get("x-amz-storage-class"),
        website_redirect_location: get("x-amz-website-redirect-location"),
    })
}

/// Tags in `x-amz-tagging`'s query-string form (`k1=v1&k2=v2`).
pub fn parse_tag_query(raw: &str) -> Result<BTreeMap<String, String>, S3Error> {
    let tags: BTreeMap<String, String> = crate::operation::Query::parse(Some(raw))?
        .pairs()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    check_tags(&tags, MAX_OBJECT_TAGS)?;
    Ok(tags)
}

/// Tag limits: keys 1-128 and values 0-256 characters, at most `max` tags.
pub fn check_tags(tags: &BTreeMap<String, String>, max: usize) -> Result<(), S3Error> {
    if tags.len() > max {
        return Err(S3Error::InvalidRequest(format!(
            "Object tags cannot be greater than {max}"
        )));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(S3Error::InvalidArgument(
                "The TagKey you have provided is invalid".into(),
            ));
        }
        if v.chars().count() > 256 {
            return Err(S3Error::InvalidArgument(
                "The TagValue you have provided is invalid".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn reads_metadata_digests_and_encodings() {
        let h = headers(&[
            ("content-type", "text/plain"),
            ("content-encoding", "aws-chunked,gzip"),
            ("x-amz-meta-Color", "red"),
            ("x-amz-tagging", "a=1&b=two%20words"),
            ("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg=="),
            ("x-amz-checksum-crc32", "AAAAAA=="),
            ("x-amz-sdk-checksum-algorithm", "crc32"),
            ("x-amz-trailer", "x-amz-checksum-crc64nvme"),
        ]);
        let m = object_meta(&h).unwrap();
        assert_eq!(m.content_type.as_deref(), Some("text/plain"));
        assert_eq!(m.content_encoding.as_deref(), Some("gzip"));
        assert_eq!(m.user.get("color").map(String::as_str), Some("red"));
        assert_eq!(m.tags.get("b").map(String::as_str), Some("two words"));
        assert!(content_md5(&h).unwrap().is_some());
        assert_eq!(checksum_headers(&h).unwrap()[0].0, ChecksumAlgorithm::Crc32);
        assert_eq!(
            requested_algorithm(&h).unwrap(),
            Some(ChecksumAlgorithm::Crc32)
        );
        assert_eq!(
            trailer_algorithms(&h).unwrap(),
            [ChecksumAlgorithm::Crc64Nvme]
        );
        let only_chunked = object_meta(&headers(&[("content-encoding", "aws-chunked")])).unwrap();
        assert_eq!(only_chunked.content_encoding, None);
    }

    #[test]
    fn refuses_malformed_values() {
        assert!(matches!(
            content_md5(&headers(&[("content-md5", "nope")])),
            Err(S3Error::InvalidDigest)
        ));
        assert!(checksum_headers(&headers(&[("x-amz-checksum-crc32", "AAAA")])).is_err());
        assert!(requested_algorithm(&headers(&[("x-amz-checksum-algorithm", "MD4")])).is_err());
        assert!(ContentSha256::read(&headers(&[("x-amz-content-sha256", "abc")])).is_err());
        assert_eq!(
            ContentSha256::read(&headers(&[(
                "x-amz-content-sha256",
                "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
            )]))
            .unwrap(),
            ContentSha256::StreamingUnsigned
        );
        let big = "v".repeat(MAX_USER_METADATA);
        assert!(matches!(
            object_meta(&headers(&[("x-amz-meta-big", &big)])),
            Err(S3Error::MetadataTooLarge)
        ));
        let many: String = (0..11).map(|i| format!("k{i}=v&")).collect();
        assert!(parse_tag_query(&many).is_err());
    }
}
