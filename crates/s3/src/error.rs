//! Every S3 error, and the one place that renders them: S3's `<Error>` document with the
//! code and status clients match on (no body for HEAD and 304).

use kindling_objects::ObjectError;
use kindling_protocol::WireError;
use kindling_protocol::rest::xml_error_response;

use crate::chunked::ChunkError;

/// A failed S3 request.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error(
        "The XML you provided was not well-formed or did not validate against our published schema"
    )]
    MalformedXml,
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("Couldn't parse the specified URI.")]
    InvalidUri,
    #[error("The specified method is not allowed against this resource.")]
    MethodNotAllowed,
    #[error("{0} is not implemented by Kindling.")]
    NotImplemented(String),
    #[error("At least one of the pre-conditions you specified did not hold")]
    PreconditionFailed,
    #[error("Not Modified")]
    NotModified,
    #[error("The requested range is not satisfiable")]
    InvalidRange { size: u64 },
    #[error("You must provide the Content-Length HTTP header.")]
    MissingContentLength,
    #[error("The Content-MD5 you specified was invalid.")]
    InvalidDigest,
    #[error("Your metadata headers exceed the maximum allowed metadata size.")]
    MetadataTooLarge,
    #[error("The body of the request is not valid aws-chunked encoding: {0}")]
    Chunked(ChunkError),
    #[error(
        "Your socket connection to the server was not read from or written to within the timeout period."
    )]
    RequestTimeout,
    #[error("The request body could not be read.")]
    BodyRead(#[source] axum::Error),
    /// A signature check failed (`SignatureDoesNotMatch`, `InvalidAccessKeyId`,
    /// `AccessDenied`...), with AWS's message.
    #[error("{message}")]
    Auth {
        code: &'static str,
        status: u16,
        message: String,
    },
    /// A request body that cannot be the XML document the operation takes, or is too large.
    #[error("Your request was too big.")]
    MaxMessageLengthExceeded,
}

impl S3Error {
    /// The elements S3 adds to the error document (`BucketName`, `Key`, ...).
    fn extra(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Object(e) => match e {
                ObjectError::NoSuchBucket { bucket }
                | ObjectError::BucketAlreadyOwnedByYou { bucket }
                | ObjectError::BucketNotEmpty { bucket }
                | ObjectError::NoSuchBucketPolicy { bucket }
                | ObjectError::NoEncryptionConfiguration { bucket }
                | ObjectError::NoPublicAccessBlock { bucket }
                | ObjectError::NoSuchTagSet { bucket }
                | ObjectError::InvalidBucketName { bucket, .. } => {
                    vec![("BucketName", bucket.clone())]
                }
                ObjectError::NoSuchKey { key } => vec![("Key", key.clone())],
                ObjectError::NoSuchVersion { key, version_id } => {
                    vec![("Key", key.clone()), ("VersionId", version_id.clone())]
                }
                ObjectError::NoSuchUpload { upload_id } => vec![("UploadId", upload_id.clone())],
                ObjectError::EntityTooLarge { size, max } => vec![
                    ("ProposedSize", size.to_string()),
                    ("MaxSizeAllowed", max.to_string()),
                ],
                ObjectError::EntityTooSmall { part_number, size } => vec![
                    ("PartNumber", part_number.to_string()),
                    ("ProposedSize", size.to_string()),
                    (
                        "MinSizeAllowed",
                        kindling_objects::MIN_PART_SIZE.to_string(),
                    ),
                ],
                ObjectError::InvalidPart { part_number } => {
                    vec![("PartNumber", part_number.to_string())]
                }
                ObjectError::IncompleteBody { expected, received } => vec![
                    ("ExpectedLength", expected.to_string()),
                    ("ReceivedLength", received.to_string()),
                ],
                ObjectError::InvalidLocationConstraint { constraint }
                | ObjectError::IllegalLocationConstraint { constraint } => {
                    vec![("LocationConstraint", constraint.clone())]
                }
                _ => Vec::new(),
            },
            Self::InvalidRange { size } => vec![("ActualObjectSize", size.to_string())],
            _ => Vec::new(),
        }
    }

    /// Whether the server, not the client, failed (logged with its causes).
    pub fn is_internal(&self) -> bool {
        match self {
            Self::Object(e) => e.is_internal(),
            _ => false,
        }
    }
}

impl WireError for S3Error {
    fn status(&self) -> u16 {
        match self {
            Self::Object(e) => match e {
                ObjectError::NoSuchBucket { .. }
                | ObjectError::NoSuchKey { .. }
                | ObjectError::NoSuchVersion { .. }
                | ObjectError::NoSuchUpload { .. }
                | ObjectError::NoSuchBucketPolicy { .. }
                | ObjectError::NoEncryptionConfiguration { .. }
                | ObjectError::NoPublicAccessBlock { .. }
                | ObjectError::NoSuchTagSet { .. } => 404,
                ObjectError::BucketAlreadyOwnedByYou { .. }
                | ObjectError::BucketNotEmpty { .. } => 409,
                ObjectError::InvalidBucketName { .. }
                | ObjectError::TooManyBuckets { .. }
                | ObjectError::KeyTooLong { .. }
                | ObjectError::InvalidArgument(_)
                | ObjectError::InvalidRequest(_)
                | ObjectError::EntityTooLarge { .. }
                | ObjectError::EntityTooSmall { .. }
                | ObjectError::InvalidPart { .. }
                | ObjectError::InvalidPartOrder
                | ObjectError::IncompleteBody { .. }
                | ObjectError::BadDigest
                | ObjectError::ChecksumMismatch { .. }
                | ObjectError::ContentSha256Mismatch
                | ObjectError::IllegalLocationConstraint { .. }
                | ObjectError::InvalidLocationConstraint { .. } => 400,
                ObjectError::Store(_)
                | ObjectError::Io(_)
                | ObjectError::Task(_)
                | ObjectError::MissingData { .. } => 500,
            },
            Self::MalformedXml
            | Self::InvalidArgument(_)
            | Self::InvalidRequest(_)
            | Self::InvalidUri
            | Self::InvalidDigest
            | Self::MetadataTooLarge
            | Self::Chunked(_)
            | Self::RequestTimeout
            | Self::BodyRead(_)
            | Self::MaxMessageLengthExceeded => 400,
            Self::MethodNotAllowed => 405,
            Self::NotImplemented(_) => 501,
            Self::PreconditionFailed => 412,
            Self::NotModified => 304,
            Self::InvalidRange { .. } => 416,
            Self::MissingContentLength => 411,
            Self::Auth { status, .. } => *status,
        }
    }

    fn code(&self) -> &str {
        match self {
            Self::Object(e) => match e {
                ObjectError::NoSuchBucket { .. } => "NoSuchBucket",
                ObjectError::NoSuchKey { .. } => "NoSuchKey",
                ObjectError::NoSuchVersion { .. } => "NoSuchVersion",
                ObjectError::NoSuchUpload { .. } => "NoSuchUpload",
                ObjectError::NoSuchBucketPolicy { .. } => "NoSuchBucketPolicy",
                ObjectError::NoEncryptionConfiguration { .. } => {
                    "ServerSideEncryptionConfigurationNotFoundError"
                }
                ObjectError::NoPublicAccessBlock { .. } => "NoSuchPublicAccessBlockConfiguration",
                ObjectError::NoSuchTagSet { .. } => "NoSuchTagSet",
                ObjectError::BucketAlreadyOwnedByYou { .. } => "BucketAlreadyOwnedByYou",
                ObjectError::BucketNotEmpty { .. } => "BucketNotEmpty",
                ObjectError::TooManyBuckets { .. } => "TooManyBuckets",
                ObjectError::InvalidBucketName { .. } => "InvalidBucketName",
                ObjectError::KeyTooLong { .. } => "KeyTooLongError",
                ObjectError::InvalidArgument(_) => "InvalidArgument",
                ObjectError::InvalidRequest(_) => "InvalidRequest",
                ObjectError::EntityTooLarge { .. } => "EntityTooLarge",
                ObjectError::EntityTooSmall { .. } => "EntityTooSmall",
                ObjectError::InvalidPart { .. } => "InvalidPart",
                ObjectError::InvalidPartOrder => "InvalidPartOrder",
                ObjectError::IncompleteBody { .. } => "IncompleteBody",
                ObjectError::BadDigest | ObjectError::ChecksumMismatch { .. } => "BadDigest",
                ObjectError::ContentSha256Mismatch => "XAmzContentSHA256Mismatch",
                ObjectError::IllegalLocationConstraint { .. } => {
                    "IllegalLocationConstraintException"
                }
                ObjectError::InvalidLocationConstraint { .. } => "InvalidLocationConstraint",
                ObjectError::Store(_)
                | ObjectError::Io(_)
                | ObjectError::Task(_)
                | ObjectError::MissingData { .. } => "InternalError",
            },
            Self::MalformedXml => "MalformedXML",
            Self::InvalidArgument(_) => "InvalidArgument",
            Self::InvalidRequest(_) | Self::Chunked(_) | Self::BodyRead(_) => "InvalidRequest",
            Self::InvalidUri => "InvalidURI",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::NotImplemented(_) => "NotImplemented",
            Self::PreconditionFailed => "PreconditionFailed",
            Self::NotModified => "NotModified",
            Self::InvalidRange { .. } => "InvalidRange",
            Self::MissingContentLength => "MissingContentLength",
            Self::InvalidDigest => "InvalidDigest",
            Self::MetadataTooLarge => "MetadataTooLarge",
            Self::RequestTimeout => "RequestTimeout",
            Self::MaxMessageLengthExceeded => "MaxMessageLengthExceeded",
            Self::Auth { code, .. } => code,
        }
    }

    fn message(&self) -> String {
        if self.is_internal() {
            return "We encountered an internal error. Please try again.".into();
        }
        self.to_string()
    }
}

/// The HTTP response for an error: S3's document, or no body for HEAD requests and 304.
pub fn error_response(err: &S3Error, request_id: &str, head: bool) -> axum::response::Response {
    if err.is_internal() {
        tracing::error!(error = %err, sources = %sources(err), "S3 request failed");
    }
    let extra = err.extra();
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = xml_error_response(err, request_id, &extra);
    let (mut parts, body) = res.into_parts();
    if let S3Error::InvalidRange { size } = err
        && let Ok(v) = http::HeaderValue::from_str(&format!("bytes */{size}"))
    {
        parts.headers.insert(http::header::CONTENT_RANGE, v);
    }
    crate::response::common_headers(&mut parts.headers, request_id);
    if head || matches!(err, S3Error::NotModified) {
        parts.headers.remove(http::header::CONTENT_TYPE);
        return axum::response::Response::from_parts(parts, axum::body::Body::empty());
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(body))
}

/// The chain of causes of an error, for logs.
fn sources(err: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut cur = err.source();
    while let Some(e) = cur {
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}

impl From<ChunkError> for S3Error {
    fn from(e: ChunkError) -> Self {
        match e {
            ChunkError::SignatureMismatch => Self::Auth {
                code: "SignatureDoesNotMatch",
                status: 403,
                message: "The request signature we calculated does not match the signature you \
                          provided. Check your key and signing method."
                    .into(),
            },
            ChunkError::LengthMismatch { declared, decoded } => {
                Self::Object(ObjectError::IncompleteBody {
                    expected: declared,
                    received: decoded,
                })
            }
            e => Self::Chunked(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn too_many_buckets_is_s3s_400_document() {
        let err = S3Error::Object(ObjectError::TooManyBuckets { max: 10_000 });
        let res = error_response(&err, "req-1", false);
        assert_eq!(res.status(), 400);
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("<Code>TooManyBuckets</Code>"), "{body}");
        assert!(
            body.contains(
                "<Message>You have attempted to create more buckets than allowed</Message>"
            ),
            "{body}"
        );
    }
}
