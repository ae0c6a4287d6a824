//! Deployment packages: decoding, zip validation, size quotas and storage in the blob store.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use kindling_model::function::CodeInfo;
use kindling_model::limits;
use kindling_package::{Limits, PackageError};

use crate::ControlPlane;
use crate::code_source::{FetchError, ObjectSource};
use crate::error::{ControlError, Result};
use crate::input::CodeInput;

/// The zip bytes of a code input (`ZipFile`, or `S3Bucket`/`S3Key`/`S3ObjectVersion` read
/// from `source`), or the error Lambda gives for the other code sources.
pub(crate) fn zip_bytes(
    code: &CodeInput,
    operation: &str,
    source: Option<&dyn ObjectSource>,
) -> Result<Vec<u8>> {
    if code.image_uri.is_some() {
        return Err(ControlError::InvalidParameter(
            "Container images (ImageUri) are not supported by Kindling; deploy a .zip file archive."
                .into(),
        ));
    }
    package_bytes(
        code.zip_file.as_deref(),
        code.s3_bucket.as_deref(),
        code.s3_key.as_deref(),
        code.s3_object_version.as_deref(),
        operation,
        source,
    )
}

/// The zip of a function's code or a layer's content: base64 `ZipFile`, or an S3 object.
pub(crate) fn package_bytes(
    zip_file: Option<&str>,
    s3_bucket: Option<&str>,
    s3_key: Option<&str>,
    s3_version: Option<&str>,
    operation: &str,
    source: Option<&dyn ObjectSource>,
) -> Result<Vec<u8>> {
    match (zip_file, s3_bucket, s3_key) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ControlError::InvalidParameter(
            "Please provide either ZipFile or S3Bucket and S3Key, not both.".into(),
        )),
        (Some(b64), None, None) => decode(b64, operation),
        (None, Some(bucket), Some(key)) => fetch_s3(source, bucket, key, s3_version),
        (None, Some(_), None) | (None, None, Some(_)) => Err(ControlError::InvalidParameter(
            "Please provide both S3Bucket and S3Key for the deployment package.".into(),
        )),
        (None, None, None) => Err(ControlError::InvalidParameter(
            "Please provide a source for function code.".into(),
        )),
    }
}

/// Reads a package from S3 as Lambda does: a missing bucket, key or version is Lambda's
/// `InvalidParameterValueException` quoting S3's error.
fn fetch_s3(
    source: Option<&dyn ObjectSource>,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Result<Vec<u8>> {
    let Some(source) = source else {
        return Err(ControlError::InvalidParameter(
            "This server has no S3 store: upload the deployment package with ZipFile.".into(),
        ));
    };
    // A valid zip is never much larger than what it unpacks to.
    let max = limits::CODE_SIZE_UNZIPPED + 64 * 1024;
    source
        .fetch(bucket, key, version, max)
        .map_err(|e| match e {
            FetchError::TooLarge { .. } => unzipped_too_large(),
            FetchError::Failed(source) => ControlError::CodeSource(source),
            e => ControlError::InvalidParameter(format!(
                "Error occurred while GetObject. S3 Error Code: {}. S3 Error Message: {e}",
                e.s3_code()
            )),
        })
}

/// Decodes a base64 blob member and enforces the zipped-size quota.
pub(crate) fn decode(b64: &str, operation: &str) -> Result<Vec<u8>> {
    // Base64 grows 4/3: reject before decoding anything that cannot fit.
    if b64.len() as u64 > limits::CODE_SIZE_ZIPPED.div_ceil(3) * 4 {
        return Err(too_large(operation));
    }
    let bytes = B64.decode(b64.trim()).map_err(|_| {
        ControlError::InvalidParameter("Could not decode the base64 ZipFile.".into())
    })?;
    if bytes.len() as u64 > limits::CODE_SIZE_ZIPPED {
        return Err(too_large(operation));
    }
    Ok(bytes)
}

fn too_large(operation: &str) -> ControlError {
    ControlError::RequestEntityTooLarge(format!(
        "Request must be smaller than {} bytes for the {operation} operation",
        limits::MAX_CODE_REQUEST_BODY
    ))
}

/// Lambda's message for a package it cannot unzip.
const CANNOT_UNZIP: &str =
    "Could not unzip uploaded file. Please check your file, then try to upload again.";

/// Verifies a package completely (every entry decompressed, sizes and CRCs checked, names and
/// links safe; see `kindling-package`) and returns its real unzipped size, or Lambda's error.
/// CPU-bound: callers are on the blocking pool, and call it before taking the write lock.
pub(crate) fn verify_zip(bytes: &[u8]) -> Result<u64> {
    let limits = Limits::new(limits::CODE_SIZE_UNZIPPED);
    match kindling_package::verify_bytes(bytes, &limits) {
        Ok(v) => Ok(v.unzipped_size),
        Err(PackageError::TooLarge { .. }) => Err(unzipped_too_large()),
        Err(e) if e.is_invalid_package() => Err(ControlError::InvalidParameter(format!(
            "{CANNOT_UNZIP} ({e})"
        ))),
        Err(e) => Err(ControlError::Internal(format!("verifying a package: {e}"))),
    }
}

fn unzipped_too_large() -> ControlError {
    ControlError::InvalidParameter(format!(
        "Unzipped size must be smaller than {} bytes",
        limits::CODE_SIZE_UNZIPPED
    ))
}

/// Lambda's error for code plus layers over the unzipped quota.
pub(crate) fn check_unzipped(total: u64) -> Result<()> {
    if total > limits::CODE_SIZE_UNZIPPED {
        return Err(unzipped_too_large());
    }
    Ok(())
}

impl ControlPlane {
    /// Stores a zip that [`verify_zip`] accepted (`unzipped`: its real unzipped size)
    /// durably; returns its `CodeInfo`.
    pub(crate) fn store_code(&self, bytes: &[u8], unzipped: u64) -> Result<CodeInfo> {
        check_unzipped(unzipped)?;
        let usage = self.store().account_usage()?;
        if usage.total_code_size + bytes.len() as u64 > limits::TOTAL_CODE_SIZE {
            return Err(ControlError::CodeStorageExceeded(
                "Code storage limit exceeded.".into(),
            ));
        }
        let (id, digest) = self.blobs().put(bytes)?;
        Ok(CodeInfo {
            sha256: B64.encode(digest),
            size: bytes.len() as u64,
            unzipped_size: unzipped,
            blob: id.as_str().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use kindling_test_support::zip_of;

    #[test]
    fn rejects_non_zip_and_measures_zip() {
        match verify_zip(b"not a zip") {
            Err(ControlError::InvalidParameter(m)) => assert!(m.starts_with(CANNOT_UNZIP), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            verify_zip(&zip_of(&[("a.txt", &[b'x'; 1000])])).unwrap(),
            1000
        );
        assert!(check_unzipped(limits::CODE_SIZE_UNZIPPED + 1).is_err());
    }

    #[test]
    fn hostile_packages_get_lambdas_message() {
        for bad in [
            zip_of(&[("../evil.sh", b"x")]),
            zip_of(&[("/etc/cron.d/x", b"1")]),
            zip_of(&[("a", b"1"), ("a/b", b"2")]),
        ] {
            match verify_zip(&bad) {
                Err(ControlError::InvalidParameter(m)) => {
                    assert!(m.starts_with(CANNOT_UNZIP), "{m}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    struct OneObject;
    impl ObjectSource for OneObject {
        fn fetch(
            &self,
            bucket: &str,
            key: &str,
            version: Option<&str>,
            _max: u64,
        ) -> std::result::Result<Vec<u8>, FetchError> {
            match (bucket, key, version) {
                ("deploy", "app.zip", None | Some("v1")) => Ok(b"zip".to_vec()),
                ("deploy", "app.zip", Some(_)) => Err(FetchError::NoSuchVersion),
                ("deploy", _, _) => Err(FetchError::NoSuchKey),
                ("huge", _, _) => Err(FetchError::TooLarge { size: u64::MAX }),
                _ => Err(FetchError::NoSuchBucket),
            }
        }
    }

    #[test]
    fn s3_packages_come_from_the_object_source_with_lambdas_errors() {
        let src: Option<&dyn ObjectSource> = Some(&OneObject);
        let get = |b: Option<&str>, k: Option<&str>, v: Option<&str>| {
            package_bytes(None, b, k, v, "CreateFunction", src)
        };
        assert_eq!(get(Some("deploy"), Some("app.zip"), None).unwrap(), b"zip");
        assert_eq!(
            get(Some("deploy"), Some("app.zip"), Some("v1")).unwrap(),
            b"zip"
        );
        let message = |r: Result<Vec<u8>>| match r {
            Err(ControlError::InvalidParameter(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            message(get(Some("deploy"), Some("nope.zip"), None)),
            "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The \
             specified key does not exist."
        );
        assert!(
            message(get(Some("gone"), Some("k"), None)).contains("S3 Error Code: NoSuchBucket.")
        );
        assert!(
            message(get(Some("deploy"), Some("app.zip"), Some("v9"))).contains("NoSuchVersion")
        );
        assert!(message(get(Some("huge"), Some("k"), None)).starts_with("Unzipped size"));
        assert!(message(get(Some("deploy"), None, None)).contains("both S3Bucket and S3Key"));
        assert!(
            message(package_bytes(
                Some("AA=="),
                Some("deploy"),
                Some("k"),
                None,
                "x",
                src
            ))
            .contains("not both")
        );
        assert!(
            message(package_bytes(None, Some("b"), Some("k"), None, "x", None))
                .contains("no S3 store")
        );
    }

    #[test]
    fn enforces_the_zipped_quota_before_decoding() {
        let huge = "A".repeat((limits::CODE_SIZE_ZIPPED as usize / 3 + 10) * 4);
        assert!(matches!(
            decode(&huge, "CreateFunction"),
            Err(ControlError::RequestEntityTooLarge(_))
        ));
        assert!(matches!(
            decode("!!", "CreateFunction"),
            Err(ControlError::InvalidParameter(_))
        ));
    }
}
