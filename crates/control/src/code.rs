//! Deployment packages: decoding, zip validation, size quotas and storage in the blob store.

use std::io::Cursor;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use kindling_model::function::CodeInfo;
use kindling_model::limits;

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

/// Total uncompressed size of a zip, or Lambda's error when it is not a readable zip.
pub(crate) fn unzipped_size(bytes: &[u8]) -> Result<u64> {
    let bad = || {
        ControlError::InvalidParameter(
            "Could not unzip uploaded file. Please check your file, then try to upload again."
                .into(),
        )
    };
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|_| bad())?;
    let mut total = 0u64;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|_| bad())?;
        if entry.enclosed_name().is_none() {
            return Err(ControlError::InvalidParameter(format!(
                "Could not unzip uploaded file: entry '{}' escapes the archive.",
                entry.name()
            )));
        }
        total = total.saturating_add(entry.size());
    }
    Ok(total)
}

/// Lambda's error for code plus layers over the unzipped quota.
pub(crate) fn check_unzipped(total: u64) -> Result<()> {
    if total > limits::CODE_SIZE_UNZIPPED {
        return Err(ControlError::InvalidParameter(format!(
            "Unzipped size must be smaller than {} bytes",
            limits::CODE_SIZE_UNZIPPED
        )));
    }
    Ok(())
}

impl ControlPlane {
    /// Validates a zip and stores it durably; returns its `CodeInfo`.
    pub(crate) fn store_code(&self, bytes: &[u8]) -> Result<CodeInfo> {
        let unzipped = unzipped_size(bytes)?;
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

    #[test]
    fn rejects_non_zip_and_measures_zip() {
        assert!(matches!(
            unzipped_size(b"not a zip"),
            Err(ControlError::InvalidParameter(_))
        ));
        let mut buf = Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            w.start_file("a.txt", zip::write::SimpleFileOptions::default())
                .unwrap();
            std::io::Write::write_all(&mut w, &[b'x'; 1000]).unwrap();
            w.finish().unwrap();
        }
        assert_eq!(unzipped_size(buf.get_ref()).unwrap(), 1000);
        assert!(check_unzipped(limits::CODE_SIZE_UNZIPPED + 1).is_err());
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
