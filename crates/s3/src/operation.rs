//! The operation table: method, bucket/key and subresource query parameters → operation.

use http::{HeaderMap, Method};

use crate::error::S3Error;

/// Every S3 operation Kindling serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ListBuckets,
    CreateBucket,
    HeadBucket,
    DeleteBucket,
    GetBucketLocation,
    GetBucketVersioning,
    PutBucketVersioning,
    GetBucketPolicy,
    PutBucketPolicy,
    DeleteBucketPolicy,
    GetBucketTagging,
    PutBucketTagging,
    DeleteBucketTagging,
    GetBucketEncryption,
    PutBucketEncryption,
    DeleteBucketEncryption,
    GetPublicAccessBlock,
    PutPublicAccessBlock,
    DeletePublicAccessBlock,
    ListObjects,
    ListObjectsV2,
    ListMultipartUploads,
    DeleteObjects,
    PutObject,
    CopyObject,
    GetObject,
    HeadObject,
    DeleteObject,
    GetObjectTagging,
    PutObjectTagging,
    DeleteObjectTagging,
    CreateMultipartUpload,
    UploadPart,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
}

impl Operation {
    /// Whether the operation streams its request body into an object (the body is not
    /// read before the handler runs).
    pub fn streams_body(self) -> bool {
        matches!(self, Self::PutObject | Self::UploadPart)
    }
}

/// The decoded query parameters of a request.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Result<Self, S3Error> {
        let mut pairs = Vec::new();
        for part in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| S3Error::InvalidUri)
            };
            pairs.push((dec(k)?, dec(v)?));
        }
        Ok(Self { pairs })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }
}

/// Bucket subresources Kindling does not serve: answered `NotImplemented` (rather than
/// mistaken for another operation).
const UNSUPPORTED_BUCKET: &[&str] = &[
    "acl",
    "accelerate",
    "analytics",
    "cors",
    "intelligent-tiering",
    "inventory",
    "lifecycle",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policyStatus",
    "replication",
    "requestPayment",
    "website",
    "versions",
];

const UNSUPPORTED_OBJECT: &[&str] = &[
    "acl",
    "attributes",
    "legal-hold",
    "restore",
    "retention",
    "select",
    "torrent",
    "renameObject",
];

/// Which operation a request is.
pub fn classify(
    method: &Method,
    bucket: Option<&str>,
    key: &str,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Operation, S3Error> {
    use Operation as Op;
    let Some(_bucket) = bucket else {
        return match *method {
            Method::GET => Ok(Op::ListBuckets),
            _ => Err(S3Error::MethodNotAllowed),
        };
    };
    if key.is_empty() {
        if let Some(name) = UNSUPPORTED_BUCKET.iter().find(|s| query.has(s)) {
            return Err(S3Error::NotImplemented(format!(
                "The bucket subresource '{name}'"
            )));
        }
        let sub = |name: &str| query.has(name);
        return Ok(match *method {
            Method::PUT if sub("versioning") => Op::PutBucketVersioning,
            Method::PUT if sub("policy") => Op::PutBucketPolicy,
            Method::PUT if sub("tagging") => Op::PutBucketTagging,
            Method::PUT if sub("encryption") => Op::PutBucketEncryption,
            Method::PUT if sub("publicAccessBlock") => Op::PutPublicAccessBlock,
            Method::PUT => Op::CreateBucket,
            Method::HEAD => Op::HeadBucket,
            Method::GET if sub("location") => Op::GetBucketLocation,
            Method::GET if sub("versioning") => Op::GetBucketVersioning,
            Method::GET if sub("policy") => Op::GetBucketPolicy,
            Method::GET if sub("tagging") => Op::GetBucketTagging,
            Method::GET if sub("encryption") => Op::GetBucketEncryption,
            Method::GET if sub("publicAccessBlock") => Op::GetPublicAccessBlock,
            Method::GET if sub("uploads") => Op::ListMultipartUploads,
            Method::GET if query.get("list-type") == Some("2") => Op::ListObjectsV2,
            Method::GET => Op::ListObjects,
            Method::DELETE if sub("policy") => Op::DeleteBucketPolicy,
            Method::DELETE if sub("tagging") => Op::DeleteBucketTagging,
            Method::DELETE if sub("encryption") => Op::DeleteBucketEncryption,
            Method::DELETE if sub("publicAccessBlock") => Op::DeletePublicAccessBlock,
            Method::DELETE => Op::DeleteBucket,
            Method::POST if sub("delete") => Op::DeleteObjects,
            _ => return Err(S3Error::MethodNotAllowed),
        });
    }
    if let Some(name) = UNSUPPORTED_OBJECT.iter().find(|s| query.has(s)) {
        return Err(S3Error::NotImplemented(format!(
            "The object subresource '{name}'"
        )));
    }
    let sub = |name: &str| query.has(name);
    let copy = headers.contains_key("x-amz-copy-source");
    Ok(match *method {
        Method::PUT if sub("uploadId") && sub("partNumber") => {
            if copy {
                return Err(S3Error::NotImplemented("UploadPartCopy".into()));
            }
            Op::UploadPart
        }
        Method::PUT if sub("tagging") => Op::PutObjectTagging,
        Method::PUT if copy => Op::CopyObject,
        Method::PUT => Op::PutObject,
        Method::GET if sub("uploadId") => Op::ListParts,
        Method::GET if sub("tagging") => Op::GetObjectTagging,
        Method::GET => Op::GetObject,
        Method::HEAD => Op::HeadObject,
        Method::DELETE if sub("uploadId") => Op::AbortMultipartUpload,
        Method::DELETE if sub("tagging") => Op::DeleteObjectTagging,
        Method::DELETE => Op::DeleteObject,
        Method::POST if sub("uploads") => Op::CreateMultipartUpload,
        Method::POST if sub("uploadId") => Op::CompleteMultipartUpload,
        _ => return Err(S3Error::MethodNotAllowed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(
        method: Method,
        bucket: Option<&str>,
        key: &str,
        query: &str,
    ) -> Result<Operation, S3Error> {
        classify(
            &method,
            bucket,
            key,
            &Query::parse(Some(query)).unwrap(),
            &HeaderMap::new(),
        )
    }

    #[test]
    fn maps_requests_to_operations() {
        use Operation as Op;
        let b = Some("bkt");
        for (method, bucket, key, query, want) in [
            (Method::GET, None, "", "", Op::ListBuckets),
            (Method::PUT, b, "", "", Op::CreateBucket),
            (Method::PUT, b, "", "versioning", Op::PutBucketVersioning),
            (Method::GET, b, "", "location", Op::GetBucketLocation),
            (
                Method::GET,
                b,
                "",
                "list-type=2&prefix=a",
                Op::ListObjectsV2,
            ),
            (
                Method::GET,
                b,
                "",
                "prefix=a&encoding-type=url",
                Op::ListObjects,
            ),
            (Method::GET, b, "", "uploads", Op::ListMultipartUploads),
            (Method::POST, b, "", "delete", Op::DeleteObjects),
            (Method::DELETE, b, "", "", Op::DeleteBucket),
            (Method::PUT, b, "k", "", Op::PutObject),
            (
                Method::PUT,
                b,
                "k",
                "partNumber=1&uploadId=u",
                Op::UploadPart,
            ),
            (Method::POST, b, "k", "uploads", Op::CreateMultipartUpload),
            (
                Method::POST,
                b,
                "k",
                "uploadId=u",
                Op::CompleteMultipartUpload,
            ),
            (
                Method::DELETE,
                b,
                "k",
                "uploadId=u",
                Op::AbortMultipartUpload,
            ),
            (Method::GET, b, "k", "uploadId=u", Op::ListParts),
            (Method::GET, b, "k", "tagging", Op::GetObjectTagging),
            (Method::HEAD, b, "k", "", Op::HeadObject),
        ] {
            assert_eq!(
                op(method.clone(), bucket, key, query).unwrap(),
                want,
                "{method} {query}"
            );
        }
        assert!(matches!(
            op(Method::POST, None, "", ""),
            Err(S3Error::MethodNotAllowed)
        ));
        assert!(matches!(
            op(Method::PATCH, b, "k", ""),
            Err(S3Error::MethodNotAllowed)
        ));
        assert!(matches!(
            op(Method::GET, b, "", "cors"),
            Err(S3Error::NotImplemented(_))
        ));
        let mut copy = HeaderMap::new();
        copy.insert("x-amz-copy-source", "src/k".parse().unwrap());
        assert_eq!(
            classify(&Method::PUT, b, "k", &Query::default(), &copy).unwrap(),
            Op::CopyObject
        );
    }
}
