//! The object store's errors: one variant per answer S3 gives, failures keeping their cause.

use kindling_model::objects::ChecksumAlgorithm;
use kindling_store::StoreError;

pub type Result<T, E = ObjectError> = std::result::Result<T, E>;

/// Why an object-store operation failed. The wire crate maps each variant to S3's code and
/// status in one place.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("The specified bucket does not exist")]
    NoSuchBucket { bucket: String },
    #[error("The specified key does not exist.")]
    NoSuchKey { key: String },
    #[error("The specified version does not exist.")]
    NoSuchVersion { key: String, version_id: String },
    #[error(
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )]
    NoSuchUpload { upload_id: String },
    #[error("The bucket policy does not exist")]
    NoSuchBucketPolicy { bucket: String },
    #[error("The server side encryption configuration was not found")]
    NoEncryptionConfiguration { bucket: String },
    #[error("The public access block configuration was not found")]
    NoPublicAccessBlock { bucket: String },
    #[error("The TagSet does not exist")]
    NoSuchTagSet { bucket: String },
    #[error("Your previous request to create the named bucket succeeded and you already own it.")]
    BucketAlreadyOwnedByYou { bucket: String },
    #[error("You have attempted to create more buckets than allowed")]
    TooManyBuckets { max: usize },
    #[error("The bucket you tried to delete is not empty")]
    BucketNotEmpty { bucket: String },
    #[error("The specified bucket is not valid. {reason}")]
    InvalidBucketName {
        bucket: String,
        reason: &'static str,
    },
    #[error("Your key is too long ({len} bytes; the limit is 1024).")]
    KeyTooLong { len: usize },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("Your proposed upload exceeds the maximum allowed size")]
    EntityTooLarge { size: u64, max: u64 },
    #[error("Your proposed upload is smaller than the minimum allowed size")]
    EntityTooSmall { part_number: u32, size: u64 },
    #[error(
        "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
    )]
    InvalidPart { part_number: u32 },
    #[error("The list of parts was not in ascending order. Parts must be ordered by part number.")]
    InvalidPartOrder,
    #[error("You did not provide the number of bytes specified by the Content-Length HTTP header.")]
    IncompleteBody { expected: u64, received: u64 },
    #[error("The Content-MD5 you specified did not match what we received.")]
    BadDigest,
    #[error("The {} you specified did not match the calculated checksum.", .algorithm.as_str())]
    ChecksumMismatch { algorithm: ChecksumAlgorithm },
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch,
    #[error(
        "The location constraint is incompatible for the region specific endpoint this request was sent to."
    )]
    IllegalLocationConstraint { constraint: String },
    #[error("The specified location-constraint is not valid")]
    InvalidLocationConstraint { constraint: String },
    /// The metadata store failed; the cause is the source.
    #[error("the object metadata store failed")]
    Store(#[source] StoreError),
    /// Reading or writing object files failed; the cause is the source.
    #[error("the object files could not be read or written")]
    Io(#[source] std::io::Error),
    /// A blocking task of the store was cancelled or panicked.
    #[error("an object store task did not finish")]
    Task(#[source] tokio::task::JoinError),
    /// The stored state contradicts itself (a record without its file): logged, not shown.
    #[error("object {bucket}/{key} has no data file")]
    MissingData { bucket: String, key: String },
}

impl ObjectError {
    /// True for the store's own failures (answered as 500, logged with their cause).
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Self::Store(_) | Self::Io(_) | Self::Task(_) | Self::MissingData { .. }
        )
    }
}

impl From<StoreError> for ObjectError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnstorableText(_) => {
                Self::InvalidArgument(kindling_store::UNSTORABLE_TEXT.into())
            }
            e => Self::Store(e),
        }
    }
}

impl From<std::io::Error> for ObjectError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<tokio::task::JoinError> for ObjectError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::Task(e)
    }
}
