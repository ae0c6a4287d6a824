//! Resolving an image for a function: tag → manifest (an index picks the function's
//! platform) → config and layers, every blob verified against its digest and every layer
//! walked (decompressed, parsed, checked) without unpacking, so a missing or corrupt image is
//! refused when the function is created, not when it first runs.

use std::path::PathBuf;

use kindling_oci::manifest::{self, ParsedManifest};
use kindling_oci::unpack::{Layer, UnpackLimits, verify_layers};
use kindling_oci::{Digest, Reference, RuntimeConfig};

use crate::error::RegistryError;
use crate::storage::{Storage, sha256_file};

/// An image ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The image manifest's digest (for an index: the chosen platform's manifest).
    pub manifest_digest: Digest,
    /// The digest the reference named (the index's, when it named one).
    pub reference_digest: Digest,
    pub config: RuntimeConfig,
    /// Layers in order, with their compressed sizes.
    pub layers: Vec<(Digest, u64)>,
    /// Bytes of file data once unpacked.
    pub unpacked_size: u64,
}

/// Why an image cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No such repository, tag, manifest or blob.
    #[error("{0}")]
    NotFound(String),
    /// The image is there but unusable (corrupt layer, wrong platform, too large...).
    #[error("{0}")]
    Invalid(String),
    /// The host failed.
    #[error("{0}")]
    Io(String),
}

fn from_registry(e: RegistryError) -> ResolveError {
    match e {
        RegistryError::Internal(m) => ResolveError::Io(m),
        other => ResolveError::Invalid(other.to_string()),
    }
}

impl Storage {
    /// Resolves `repo:reference` for `architecture` (OCI name, `amd64`), verifying every blob
    /// and layer; at most `max_unpacked` bytes once unpacked. Blocking and CPU-heavy.
    pub fn resolve(
        &self,
        repo: &str,
        reference: &Reference,
        architecture: &str,
        max_unpacked: u64,
    ) -> Result<ResolvedImage, ResolveError> {
        let (reference_digest, media_type, bytes) = self
            .manifest(repo, reference)
            .map_err(from_registry)?
            .ok_or_else(|| ResolveError::NotFound(format!("{repo}:{reference} does not exist")))?;
        let mut parsed = manifest::parse_manifest(&bytes, Some(&media_type))
            .map_err(|e| ResolveError::Invalid(e.to_string()))?;
        let mut manifest_digest = reference_digest.clone();
        if let ParsedManifest::Index { manifests, .. } = &parsed {
            let chosen = manifest::select_platform(manifests, architecture).ok_or_else(|| {
                ResolveError::Invalid(format!(
                    "the image index has no manifest for linux/{architecture}"
                ))
            })?;
            let (d, t, b) = self
                .manifest(repo, &Reference::Digest(chosen.digest.clone()))
                .map_err(from_registry)?
                .ok_or_else(|| {
                    ResolveError::NotFound(format!("manifest {} is missing", chosen.digest))
                })?;
            manifest_digest = d;
            parsed = manifest::parse_manifest(&b, Some(&t))
                .map_err(|e| ResolveError::Invalid(e.to_string()))?;
        }
        let ParsedManifest::Image { config, layers, .. } = parsed else {
            return Err(ResolveError::Invalid("an index inside an index".into()));
        };
        if config.size > manifest::MAX_CONFIG {
            return Err(ResolveError::Invalid(format!(
                "the image config has {} bytes; at most {}",
                config.size,
                manifest::MAX_CONFIG
            )));
        }
        let config_path = self.verified_blob(repo, &config.digest, config.size)?;
        let config_bytes =
            std::fs::read(&config_path).map_err(|e| ResolveError::Io(e.to_string()))?;
        let image_config = manifest::parse_config(&config_bytes)
            .map_err(|e| ResolveError::Invalid(e.to_string()))?;
        if !image_config.architecture.is_empty() && image_config.architecture != architecture {
            return Err(ResolveError::Invalid(format!(
                "the image is for {}; the function's architecture needs {architecture}",
                image_config.architecture
            )));
        }
        let mut paths: Vec<PathBuf> = Vec::with_capacity(layers.len());
        for layer in &layers {
            if !manifest::LAYER_TYPES.contains(&layer.media_type.as_str()) {
                return Err(ResolveError::Invalid(format!(
                    "layer {} has media type {}, which Kindling cannot unpack",
                    layer.digest, layer.media_type
                )));
            }
            // Hashed while it is walked below.
            paths.push(self.present_blob(repo, &layer.digest, layer.size)?);
        }
        let refs: Vec<Layer<'_>> = paths
            .iter()
            .zip(&layers)
            .map(|(path, l)| Layer {
                path,
                digest: Some(&l.digest),
            })
            .collect();
        let stats = verify_layers(&refs, &UnpackLimits::new(max_unpacked)).map_err(|e| {
            if e.is_invalid_image() {
                ResolveError::Invalid(e.to_string())
            } else {
                ResolveError::Io(e.to_string())
            }
        })?;
        Ok(ResolvedImage {
            manifest_digest,
            reference_digest,
            config: image_config.config.unwrap_or_default(),
            layers: layers.into_iter().map(|l| (l.digest, l.size)).collect(),
            unpacked_size: stats.bytes,
        })
    }

    /// The path of a blob `repo` holds, after checking its size and re-hashing it.
    fn verified_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<PathBuf, ResolveError> {
        let path = self.present_blob(repo, digest, size)?;
        let actual = sha256_file(&path).map_err(|e| ResolveError::Io(e.to_string()))?;
        if &actual != digest {
            return Err(ResolveError::Invalid(format!(
                "blob {digest} is corrupt: its content hashes to {actual}"
            )));
        }
        Ok(path)
    }

    /// The path of a blob `repo` holds, after checking its size.
    fn present_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<PathBuf, ResolveError> {
        let stored = self
            .blob_in_repo(repo, digest)
            .ok_or_else(|| ResolveError::NotFound(format!("blob {digest} of {repo} is missing")))?;
        if stored != size {
            return Err(ResolveError::Invalid(format!(
                "blob {digest} has {stored} bytes; the manifest says {size}"
            )));
        }
        Ok(self.blob_path(digest))
    }
}
