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

/// An image's manifest digest and its layer files with their digests, bottom first.
pub type ImageLayers = (String, Vec<(PathBuf, String)>);

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

/// Most bytes of an `ImageConfig`'s strings together (the bound `kindling_oci::manifest`
/// puts on an image's own `Entrypoint`, `Cmd`, `WorkingDir`, `Env` and `User`).
const MAX_IMAGE_CONFIG_BYTES: usize = 64 * 1024;

/// Lambda's `ImageConfig` limits: checks the members' shapes. Like the image's own config
/// (`kindling_oci::manifest`), strings have no NUL byte (no process could be started with
/// one) and `EntryPoint`, `Command` and `WorkingDirectory` hold at most
/// [`MAX_IMAGE_CONFIG_BYTES`] together.
pub(crate) fn check_image_config(config: &serde_json::Value) -> Result<()> {
    let invalid = |m: &str| Err(ControlError::InvalidParameter(m.to_string()));
    let Some(obj) = config.as_object() else {
        return invalid("ImageConfig must be an object.");
    };
    let max = MAX_IMAGE_CONFIG_BYTES;
    let mut total = 0usize;
    for (key, value) in obj {
        let strings: Vec<&str> = match value {
            serde_json::Value::String(s) => vec![s.as_str()],
            serde_json::Value::Array(items) => items.iter().filter_map(|i| i.as_str()).collect(),
            _ => Vec::new(),
        };
        if strings.iter().any(|s| s.contains('\0')) {
            return invalid(&format!(
                "ImageConfig.{key} must not contain a NUL character."
            ));
        }
        total = strings.iter().fold(total, |t, s| t.saturating_add(s.len()));
        if total > max {
            return invalid(&format!(
                "ImageConfig's EntryPoint, Command and WorkingDirectory must hold at most {max} \
                 bytes together."
            ));
        }
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
    ) -> Result<Option<ImageLayers>> {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kindling_model::ArnContext;
    use kindling_store::{BlobStore, SqliteStore};

    use super::*;
    use crate::input::{ConfigInput, CreateFunction, UpdateFunctionCode};
    use crate::{ControlConfig, ControlPlane};

    /// Two images: `good:v1` and `good:v2`; everything else is missing.
    struct Images;

    impl ImageSource for Images {
        fn resolve(
            &self,
            uri: &str,
            architecture: &str,
            _max: u64,
        ) -> std::result::Result<ResolvedImage, ImageSourceError> {
            let tag = uri.rsplit(':').next().unwrap_or_default();
            if !uri.contains("/good:") || architecture != "x86_64" {
                return Err(ImageSourceError::Invalid(format!(
                    "Source image {uri} does not exist."
                )));
            }
            Ok(ResolvedImage {
                code: ImageCode {
                    image_uri: uri.into(),
                    resolved_image_uri: format!("127.0.0.1:1/good@sha256:{}", "a".repeat(64)),
                    manifest_digest: format!("sha256:{}", tag.repeat(32)),
                    layers: vec![format!("sha256:{}", "b".repeat(64))],
                    entrypoint: vec!["/bootstrap".into()],
                    ..Default::default()
                },
                unpacked_size: 1234,
            })
        }

        fn layer_path(&self, _digest: &str) -> Option<PathBuf> {
            Some("/layers/b".into())
        }
    }

    fn plane() -> (ControlPlane, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let plane = ControlPlane::new(
            Arc::new(SqliteStore::in_memory().unwrap()),
            BlobStore::open(dir.path()).unwrap(),
            ControlConfig {
                arn: ArnContext::new("us-east-1", "000000000000"),
                account_concurrency: 1000,
                min_unreserved_concurrency: 100,
            },
        )
        .with_image_source(Arc::new(Images));
        (plane, dir)
    }

    fn create(plane: &ControlPlane, name: &str, uri: &str, config: ConfigInput) -> Result<()> {
        plane
            .create_function(CreateFunction {
                function_name: Some(name.into()),
                package_type: Some("Image".into()),
                code: Some(CodeInput {
                    image_uri: Some(uri.into()),
                    ..Default::default()
                }),
                config: ConfigInput {
                    role: Some("arn:aws:iam::000000000000:role/r".into()),
                    ..config
                },
                ..Default::default()
            })
            .map(|_| ())
    }

    fn message(r: Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(ControlError::InvalidParameter(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn image_config_strings_are_bounded_and_without_nul() {
        use serde_json::json;
        let big = "a".repeat(40 * 1024);
        for (config, ok) in [
            (
                json!({"EntryPoint": ["/bin/app"], "Command": ["x"], "WorkingDirectory": "/"}),
                true,
            ),
            (json!({"EntryPoint": [big.clone()]}), true),
            (json!({"EntryPoint": ["/bin/a\u{0}pp"]}), false),
            (json!({"Command": ["ok", "n\u{0}"]}), false),
            (json!({"WorkingDirectory": "/\u{0}"}), false),
            (
                json!({"EntryPoint": [big.clone()], "Command": [big]}),
                false,
            ),
            (json!({"Command": vec!["a"; 1501]}), false),
            (json!({"WorkingDirectory": "a".repeat(1001)}), false),
        ] {
            let r = check_image_config(&config);
            assert_eq!(r.is_ok(), ok, "{r:?}");
            if let Err(e) = r {
                assert!(matches!(e, ControlError::InvalidParameter(_)), "{e:?}");
            }
        }
    }

    #[test]
    fn image_functions_pin_the_digest_and_refuse_zip_settings() {
        let (p, _dir) = plane();
        create(&p, "f", "127.0.0.1:1/good:v1", ConfigInput::default()).unwrap();
        let rec = p.get_function("f", None).unwrap().version;
        assert_eq!(rec.spec.package_type, "Image");
        assert_eq!(rec.code.size, 0);
        assert_eq!(rec.code.sha256, "v1".repeat(32));
        assert_eq!(rec.code.unzipped_size, 1234);
        assert!(rec.spec.runtime.is_none());
        let (digest, layers) = p.image_layers(&rec).unwrap().unwrap();
        assert_eq!(digest, format!("sha256:{}", "v1".repeat(32)));
        assert_eq!(layers.len(), 1);

        let missing = create(&p, "g", "127.0.0.1:1/none:v1", ConfigInput::default());
        assert!(message(missing).contains("does not exist"));
        for (config, word) in [
            (
                ConfigInput {
                    runtime: Some("python3.12".into()),
                    ..Default::default()
                },
                "Runtime",
            ),
            (
                ConfigInput {
                    handler: Some("a.b".into()),
                    ..Default::default()
                },
                "Handler",
            ),
            (
                ConfigInput {
                    layers: Some(vec![]),
                    ..Default::default()
                },
                "Layers",
            ),
            (
                ConfigInput {
                    image_config: Some(serde_json::json!({"EntryPoint": "not a list"})),
                    ..Default::default()
                },
                "EntryPoint",
            ),
        ] {
            let m = message(create(&p, "h", "127.0.0.1:1/good:v1", config));
            assert!(m.contains(word), "{m}");
        }
        assert!(p.get_function("h", None).is_err(), "nothing created");

        // UpdateFunctionCode: a new image; a zip is refused for an image function.
        let (next, _) = p
            .update_function_code(
                "f",
                UpdateFunctionCode {
                    code: CodeInput {
                        image_uri: Some("127.0.0.1:1/good:v2".into()),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(next.code.sha256, "v2".repeat(32));
        let zip = p.update_function_code(
            "f",
            UpdateFunctionCode {
                code: CodeInput {
                    zip_file: Some("UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        assert!(message(zip).contains("ImageUri"));
    }
}
