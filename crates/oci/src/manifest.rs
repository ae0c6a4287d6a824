//! Manifests, image indexes and image configs: the JSON documents of an image, validated
//! before the registry stores them and before a function uses them.

use serde::Deserialize;

use crate::digest::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Layer media types Kindling can unpack (tar, gzip-compressed or not).
pub const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// Largest manifest accepted (the distribution spec's recommended minimum to support).
pub const MAX_MANIFEST: usize = 4 * 1024 * 1024;
/// Largest image config blob read (it is read whole, at CreateFunction).
pub const MAX_CONFIG: u64 = 4 * 1024 * 1024;
/// Most bytes of `Entrypoint`, `Cmd`, `WorkingDir`, `Env` and `User` together: they are kept
/// with the function's configuration and given to every environment.
pub const MAX_RUNTIME_CONFIG: usize = 64 * 1024;
/// Most layers in one image (Docker's overlay limit is 127).
pub const MAX_LAYERS: usize = 127;

/// Why a manifest or config was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    #[error("manifest media type {0:?} is not supported")]
    MediaType(String),
    #[error("manifest schemaVersion must be 2")]
    SchemaVersion,
    #[error("the manifest's mediaType {body:?} differs from its Content-Type {header:?}")]
    MediaTypeMismatch { body: String, header: String },
    #[error("{0}")]
    Invalid(String),
}

/// A content descriptor (`mediaType`, `digest`, `size`), with a platform in an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// `(os, architecture, variant)` of an index entry.
    pub platform: Option<(String, String, Option<String>)>,
}

/// What a manifest is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedManifest {
    /// An image: its config and layers, in order.
    Image {
        media_type: String,
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    /// An image index (manifest list): images for several platforms.
    Index {
        media_type: String,
        manifests: Vec<Descriptor>,
    },
}

impl ParsedManifest {
    pub fn media_type(&self) -> &str {
        match self {
            Self::Image { media_type, .. } | Self::Index { media_type, .. } => media_type,
        }
    }

    /// Every blob or manifest the document refers to.
    pub fn references(&self) -> Vec<&Descriptor> {
        match self {
            Self::Image { config, layers, .. } => std::iter::once(config).chain(layers).collect(),
            Self::Index { manifests, .. } => manifests.iter().collect(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: Option<String>,
    size: Option<i64>,
    platform: Option<RawPlatform>,
}

#[derive(Deserialize)]
struct RawPlatform {
    os: Option<String>,
    architecture: Option<String>,
    variant: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
}

fn descriptor(raw: RawDescriptor, what: &str) -> Result<Descriptor, ManifestError> {
    let invalid = |m: String| ManifestError::Invalid(m);
    let media_type = raw
        .media_type
        .ok_or_else(|| invalid(format!("{what} has no mediaType")))?;
    let digest = raw
        .digest
        .ok_or_else(|| invalid(format!("{what} has no digest")))?;
    let digest = Digest::parse(&digest).map_err(|e| invalid(format!("{what}: {e}")))?;
    let size = raw
        .size
        .and_then(|s| u64::try_from(s).ok())
        .ok_or_else(|| invalid(format!("{what} has no valid size")))?;
    let platform = raw.platform.map(|p| {
        (
            p.os.unwrap_or_default(),
            p.architecture.unwrap_or_default(),
            p.variant,
        )
    });
    Ok(Descriptor {
        media_type,
        digest,
        size,
        platform,
    })
}

/// Parses and validates a manifest as pushed with `content_type` (its `Content-Type`, if
/// any): the media type is the body's `mediaType`, else the header's.
pub fn parse_manifest(
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<ParsedManifest, ManifestError> {
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
        .filter(|c| !c.is_empty() && c != "application/json" && c != "application/octet-stream");
    let media_type = match (&raw.media_type, &header) {
        (Some(body), Some(header)) if body != header => {
            return Err(ManifestError::MediaTypeMismatch {
                body: body.clone(),
                header: header.clone(),
            });
        }
        (Some(t), _) | (None, Some(t)) => t.clone(),
        // An OCI manifest may omit mediaType: tell it by its members.
        (None, None) if raw.manifests.is_some() => OCI_INDEX.to_string(),
        (None, None) => OCI_MANIFEST.to_string(),
    };
    if media_type == DOCKER_SCHEMA1 || media_type == DOCKER_SCHEMA1_SIGNED {
        return Err(ManifestError::MediaType(format!(
            "{media_type} (Docker image manifest schema 1 is deprecated; push with schema 2 or OCI)"
        )));
    }
    if raw.schema_version != Some(2) {
        return Err(ManifestError::SchemaVersion);
    }
    match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let config = raw
                .config
                .ok_or_else(|| ManifestError::Invalid("an image manifest needs a config".into()))?;
            let config = descriptor(config, "config")?;
            let layers = raw.layers.unwrap_or_default();
            if layers.len() > MAX_LAYERS {
                return Err(ManifestError::Invalid(format!(
                    "{} layers; at most {MAX_LAYERS}",
                    layers.len()
                )));
            }
            let layers = layers
                .into_iter()
                .enumerate()
                .map(|(i, l)| descriptor(l, &format!("layer {i}")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ParsedManifest::Image {
                media_type,
                config,
                layers,
            })
        }
        OCI_INDEX | DOCKER_LIST => {
            let manifests = raw
                .manifests
                .ok_or_else(|| ManifestError::Invalid("an index needs manifests".into()))?
                .into_iter()
                .enumerate()
                .map(|(i, m)| descriptor(m, &format!("manifest {i}")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ParsedManifest::Index {
                media_type,
                manifests,
            })
        }
        other => Err(ManifestError::MediaType(other.to_string())),
    }
}

/// The parts of an image config a function runs with (`config` of the config blob).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeConfig {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub user: Option<String>,
}

/// An image config blob.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub config: Option<RuntimeConfig>,
}

/// Parses an image config blob.
pub fn parse_config(bytes: &[u8]) -> Result<ImageConfig, ManifestError> {
    let config: ImageConfig = serde_json::from_slice(bytes)
        .map_err(|e| ManifestError::Json(format!("image config: {e}")))?;
    if !config.os.is_empty() && config.os != "linux" {
        return Err(ManifestError::Invalid(format!(
            "the image is for {}; Lambda runs linux images",
            config.os
        )));
    }
    if let Some(rc) = &config.config {
        let strings = rc
            .entrypoint
            .iter()
            .chain(&rc.cmd)
            .chain(&rc.env)
            .flatten()
            .chain(&rc.working_dir)
            .chain(&rc.user);
        let mut total = 0usize;
        for text in strings {
            if text.contains('\0') {
                return Err(ManifestError::Invalid(format!(
                    "the image config has a NUL byte in {text:?}"
                )));
            }
            total = total.saturating_add(text.len() + 1);
        }
        if total > MAX_RUNTIME_CONFIG {
            return Err(ManifestError::Invalid(format!(
                "the image config's Entrypoint, Cmd, WorkingDir, Env and User hold more than \
                 {MAX_RUNTIME_CONFIG} bytes"
            )));
        }
    }
    Ok(config)
}

/// The OCI architecture name of a Lambda architecture (`x86_64` → `amd64`).
pub fn oci_architecture(lambda: &str) -> &str {
    match lambda {
        "x86_64" => "amd64",
        "arm64" => "arm64",
        other => other,
    }
}

/// The entry of an index for linux on `architecture` (OCI name).
pub fn select_platform<'a>(
    manifests: &'a [Descriptor],
    architecture: &str,
) -> Option<&'a Descriptor> {
    manifests.iter().find(|m| {
        m.platform
            .as_ref()
            .is_some_and(|(os, arch, _)| os == "linux" && arch == architecture)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(data: &[u8]) -> String {
        Digest::of(data).to_string()
    }

    #[test]
    fn image_manifests_in_both_dialects() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
            "config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{}","size":2}},
            "layers":[{{"mediaType":"{}","digest":"{}","size":3}}]}}"#,
            d(b"{}"),
            LAYER_TYPES[4],
            d(b"abc")
        );
        let m = parse_manifest(body.as_bytes(), Some(DOCKER_MANIFEST)).unwrap();
        assert_eq!(m.media_type(), DOCKER_MANIFEST);
        assert_eq!(m.references().len(), 2);
        let oci = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":2}},"layers":[]}}"#,
            d(b"{}")
        );
        assert_eq!(
            parse_manifest(oci.as_bytes(), None).unwrap().media_type(),
            OCI_MANIFEST
        );
        assert!(matches!(
            parse_manifest(body.as_bytes(), Some(OCI_MANIFEST)),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
    }

    #[test]
    fn bad_manifests_say_why() {
        assert!(matches!(
            parse_manifest(b"{", None),
            Err(ManifestError::Json(_))
        ));
        assert!(matches!(
            parse_manifest(br#"{"schemaVersion":1}"#, None),
            Err(ManifestError::SchemaVersion)
        ));
        assert!(matches!(
            parse_manifest(br#"{"schemaVersion":1}"#, Some(DOCKER_SCHEMA1_SIGNED)),
            Err(ManifestError::MediaType(_))
        ));
        let bad_digest = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"sha256:xyz","size":2}}}}"#
        );
        assert!(matches!(
            parse_manifest(bad_digest.as_bytes(), None),
            Err(ManifestError::Invalid(_))
        ));
    }

    #[test]
    fn indexes_pick_the_platform() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
            {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"arm64"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
            d(b"a"),
            d(b"b")
        );
        let ParsedManifest::Index { manifests, .. } =
            parse_manifest(body.as_bytes(), None).unwrap()
        else {
            panic!("an index")
        };
        assert_eq!(
            select_platform(&manifests, oci_architecture("x86_64"))
                .unwrap()
                .digest,
            Digest::of(b"b")
        );
        assert!(select_platform(&manifests, "s390x").is_none());
    }

    #[test]
    fn configs() {
        let c = parse_config(
            br#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bootstrap"],"Env":["A=1"],"WorkingDir":"/var/task"}}"#,
        )
        .unwrap();
        let rc = c.config.unwrap();
        assert_eq!(rc.entrypoint.unwrap(), vec!["/bootstrap".to_string()]);
        assert_eq!(rc.working_dir.as_deref(), Some("/var/task"));
        assert!(parse_config(br#"{"os":"windows"}"#).is_err());
        // Values that would only fail when an environment starts, or bloat the function.
        let nul = br#"{"config":{"Entrypoint":["/bin/sh\u0000-c"]}}"#;
        assert!(matches!(parse_config(nul), Err(ManifestError::Invalid(_))));
        let huge = format!(
            r#"{{"config":{{"WorkingDir":"/{}"}}}}"#,
            "a".repeat(MAX_RUNTIME_CONFIG)
        );
        assert!(matches!(
            parse_config(huge.as_bytes()),
            Err(ManifestError::Invalid(_))
        ));
    }
}
