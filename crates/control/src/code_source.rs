//! Where deployment packages named by `S3Bucket`/`S3Key` come from: an [`ObjectSource`] the
//! binary passes in (Kindling's own S3-compatible store), so the control plane knows no
//! storage beyond this trait.

/// Reads an object's bytes for the control plane (called on the blocking pool).
pub trait ObjectSource: Send + Sync {
    /// The bytes of `bucket`/`key` (at `version`, if given), at most `max_bytes`.
    fn fetch(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        max_bytes: u64,
    ) -> Result<Vec<u8>, FetchError>;
}

/// Why an object could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("The specified bucket does not exist")]
    NoSuchBucket,
    #[error("The specified key does not exist.")]
    NoSuchKey,
    #[error("The specified version does not exist.")]
    NoSuchVersion,
    /// The object is larger than the caller accepts.
    #[error("the object is {size} bytes")]
    TooLarge { size: u64 },
    /// The object store itself failed.
    #[error("the object store failed")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl FetchError {
    /// S3's error code, as Lambda quotes it.
    pub fn s3_code(&self) -> &'static str {
        match self {
            Self::NoSuchBucket => "NoSuchBucket",
            Self::NoSuchKey => "NoSuchKey",
            Self::NoSuchVersion => "NoSuchVersion",
            Self::TooLarge { .. } => "EntityTooLarge",
            Self::Failed(_) => "InternalError",
        }
    }
}
