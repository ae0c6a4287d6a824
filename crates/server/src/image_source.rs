//! Lambda's `ImageUri` resolved in Kindling's own registry: the adapter between the control
//! plane's `ImageSource` and `kindling-registry`.

use std::path::PathBuf;
use std::sync::Arc;

use kindling_control::{ImageSource, ImageSourceError, ResolvedImage};
use kindling_model::function::ImageCode;
use kindling_oci::manifest::oci_architecture;
use kindling_oci::{Digest, ImageRef};
use kindling_registry::{ResolveError, Storage};

/// The registry as the control plane's image source.
pub struct RegistryImages(pub Arc<Storage>);

impl ImageSource for RegistryImages {
    fn resolve(
        &self,
        image_uri: &str,
        architecture: &str,
        max_unpacked: u64,
    ) -> Result<ResolvedImage, ImageSourceError> {
        let r = ImageRef::parse(image_uri).map_err(|e| ImageSourceError::Invalid(e.to_string()))?;
        let resolved = self
            .0
            .resolve(
                &r.repository,
                &r.reference,
                oci_architecture(architecture),
                max_unpacked,
            )
            .map_err(|e| match e {
                ResolveError::NotFound(why) => ImageSourceError::Invalid(format!(
                    "Source image {image_uri} does not exist. Provide a valid source image. ({why})"
                )),
                ResolveError::Invalid(why) => ImageSourceError::Invalid(format!(
                    "Source image {image_uri} is not valid: {why}"
                )),
                ResolveError::Io(why) => ImageSourceError::Failed(why),
            })?;
        let config = resolved.config;
        let env = config
            .env
            .unwrap_or_default()
            .into_iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv, String::new()),
            })
            .collect();
        Ok(ResolvedImage {
            code: ImageCode {
                image_uri: image_uri.to_string(),
                resolved_image_uri: r.resolved(&resolved.reference_digest),
                manifest_digest: resolved.manifest_digest.to_string(),
                layers: resolved.layers.iter().map(|(d, _)| d.to_string()).collect(),
                entrypoint: config.entrypoint.unwrap_or_default(),
                cmd: config.cmd.unwrap_or_default(),
                working_dir: config.working_dir.unwrap_or_default(),
                env,
            },
            unpacked_size: resolved.unpacked_size,
        })
    }

    fn layer_path(&self, digest: &str) -> Option<PathBuf> {
        let d = Digest::parse(digest).ok()?;
        let path = self.0.blob_path(&d);
        path.is_file().then_some(path)
    }
}
