//! Container-image code (`PackageType: Image`): the image is resolved by an [`ImageSource`]
//! (Kindling's registry, wired by the server) when the function is created or its code
//! updated, pinned to its digest, and every layer verified then, so a missing or corrupt
//! image is Lambda's `InvalidParameterValueException` at once rather than a failed start.

use std::path::PathBuf;

use kindling_model::function::{CodeInfo, ImageCode};

use crate::ControlPlane;
use crate::error::{ControlError, Result};
use crate::input::CodeInput;

/// Lambda's limit on a container image's unpacked size (10 GB).
pub const IMAGE_SIZE_UNPACKED: u64 = 10 * 1024 * 1024 * 1024;

/// An image found and verified.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub code: ImageCode,
    /// Bytes of file data once unpacked.
    pub unpacked_size: u64,
}

/// Why an image cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageSourceError {
    /// The user's mistake (no such image, corrupt layer, wrong platform...): the message is
    /// Lambda's `InvalidParameterValueException`'s.
    #[error("{0}")]
    Invalid(String),
    /// The host failed.
    #[error("{0}")]
    Failed(String),
}

/// Where container images come from.
pub trait ImageSource: Send + Sync {
    /// Resolves `image_uri` for `architecture` (`x86_64`, `arm64`), verifying every blob and
    /// layer, at most `max_unpacked` bytes once unpacked. Blocking.
    fn resolve(
        &self,
        image_uri: &str,
        architecture: &str,
        max_unpacked: u64,
    ) -> std::result::Result<ResolvedImage, ImageSourceError>;

    /// The file of a layer by digest (`sha256:…`).
    fn layer_path(&self, digest: &str) -> Option<PathBuf>;
}

/// Lambda's `ImageConfig` limits: checks the members' shapes.
pub(crate) fn check_image_config(config: &serde_json::Value) -> Result<()> {
    let invalid = |m: &str| Err(ControlError::InvalidParameter(m.to_string()));
    let Some(obj) = config.as_object() else {
        return invalid("ImageConfig must be an object.");
    };
    for (key, value) in obj {
        match key.as_str() {
            "EntryPoint" | "Command" => {
                let Some(items) = value.as_array() else {
                    return invalid(&format!("ImageConfig.{key} must be a list of strings."));
                };
                if items.len() > 1500 || items.iter().any(|i| !i.is_string()) {
                    return invalid(&format!(
                        "ImageConfig.{key} must be a list of at most 1500 strings."
                    ));
                }
            }
            "WorkingDirectory" => match value.as_str() {
                Some(w) if w.len() <= 1000 => {}
                _ => {
                    return invalid(
                        "ImageConfig.WorkingDirectory must be a string of at most 1000 characters.",
                    );
                }
            },
            _ => {}
        }
    }
    Ok(())
}

impl ControlPlane {
    /// The image a code input names, resolved and verified (blocking, CPU-heavy).
    pub(crate) fn resolve_image(
        &self,
        code: &CodeInput,
        architecture: &str,
    ) -> Result<(CodeInfo, u64)> {
        if code.zip_file.is_some() || code.s3_bucket.is_some() || code.s3_key.is_some() {
            return Err(ControlError::InvalidParameter(
                "Please provide ImageUri when updating a function with packageType Image.".into(),
            ));
        }
        let Some(uri) = code.image_uri.as_deref() else {
            return Err(ControlError::InvalidParameter(
                "Please provide ImageUri when updating a function with packageType Image.".into(),
            ));
        };
        let Some(source) = self.image_source() else {
            return Err(ControlError::InvalidParameter(
                "This server has no container registry: deploy a .zip file archive.".into(),
            ));
        };
        let resolved = source
            .resolve(uri, architecture, IMAGE_SIZE_UNPACKED)
            .map_err(|e| match e {
                ImageSourceError::Invalid(m) => ControlError::InvalidParameter(m),
                ImageSourceError::Failed(m) => {
                    ControlError::Internal(format!("resolving {uri}: {m}"))
                }
            })?;
        let hex = resolved
            .code
            .manifest_digest
            .strip_prefix("sha256:")
            .unwrap_or(&resolved.code.manifest_digest)
            .to_string();
        Ok((
            CodeInfo {
                sha256: hex,
                size: 0,
                unzipped_size: resolved.unpacked_size,
                blob: String::new(),
                image: Some(resolved.code),
            },
            resolved.unpacked_size,
        ))
    }

    /// The layer files of an image version with their digests (`None` for a zip version).
    pub fn image_layers(
        &self,
        rec: &kindling_model::function::VersionRecord,
    ) -> Result<Option<(String, Vec<(PathBuf, String)>)>> {
        let Some(image) = &rec.code.image else {
            return Ok(None);
        };
        let paths = self.image_layer_paths(image)?;
        Ok(Some((
            image.manifest_digest.clone(),
            paths
                .into_iter()
                .zip(image.layers.iter().cloned())
                .collect(),
        )))
    }

    /// The layer files of an image version.
    pub(crate) fn image_layer_paths(&self, image: &ImageCode) -> Result<Vec<PathBuf>> {
        let source = self
            .image_source()
            .ok_or_else(|| ControlError::Internal("an image function without a registry".into()))?;
        image
            .layers
            .iter()
            .map(|d| {
                source.layer_path(d).ok_or_else(|| {
                    ControlError::InvalidParameter(format!(
                        "Layer {d} of image {} is missing from the registry.",
                        image.image_uri
                    ))
                })
            })
            .collect()
    }
}
