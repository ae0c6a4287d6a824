//! Lambda's `Code.S3Bucket`/`S3Key` read from Kindling's own object store: the adapter
//! between the control plane's `ObjectSource` and `kindling-objects`.

use kindling_control::{FetchError, ObjectSource};
use kindling_objects::{ObjectError, Objects};

/// The object store as the control plane's package source.
pub struct S3CodeSource(pub Objects);

impl ObjectSource for S3CodeSource {
    fn fetch(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        max_bytes: u64,
    ) -> Result<Vec<u8>, FetchError> {
        match self.0.read_object_blocking(bucket, key, version, max_bytes) {
            Ok((_, bytes)) => Ok(bytes),
            Err(ObjectError::NoSuchBucket { .. } | ObjectError::InvalidBucketName { .. }) => {
                Err(FetchError::NoSuchBucket)
            }
            Err(
                ObjectError::NoSuchKey { .. }
                | ObjectError::KeyTooLong { .. }
                | ObjectError::InvalidArgument(_),
            ) => Err(FetchError::NoSuchKey),
            Err(ObjectError::NoSuchVersion { .. }) => Err(FetchError::NoSuchVersion),
            Err(ObjectError::EntityTooLarge { size, .. }) => Err(FetchError::TooLarge { size }),
            Err(e) => Err(FetchError::Failed(Box::new(e))),
        }
    }
}
