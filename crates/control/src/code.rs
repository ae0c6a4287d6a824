//! Deployment packages: decoding, zip validation, size quotas and storage in the blob store.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use kindling_model::function::CodeInfo;
use kindling_model::limits;
use kindling_package::{Limits, PackageError};

use crate::ControlPlane;
use crate::error::{ControlError, Result};
use crate::input::CodeInput;

/// The zip bytes of a code input, or the error Lambda gives for the other code sources.
pub(crate) fn zip_bytes(code: &CodeInput, operation: &str) -> Result<Vec<u8>> {
    if code.image_uri.is_some() {
        return Err(ControlError::InvalidParameter(
            "Container images (ImageUri) are not supported by Kindling; deploy a .zip file archive."
                .into(),
        ));
    }
    if code.s3_bucket.is_some() || code.s3_key.is_some() {
        return Err(ControlError::InvalidParameter(
            "Kindling has no S3: upload the deployment package with ZipFile.".into(),
        ));
    }
    let Some(b64) = &code.zip_file else {
        return Err(ControlError::InvalidParameter(
            "Please provide a source for function code.".into(),
        ));
    };
    decode(b64, operation)
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

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            for (name, data) in files {
                w.start_file(*name, zip::write::SimpleFileOptions::default())
                    .unwrap();
                std::io::Write::write_all(&mut w, data).unwrap();
            }
            w.finish().unwrap();
        }
        buf.into_inner()
    }

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
