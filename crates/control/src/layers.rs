//! Layers: publishing, reading, listing and deleting layer versions.

use kindling_model::layer::{LayerVersionRecord, LayerVersionRef, parse_layer_name};
use kindling_model::runtime;
use kindling_model::validate::Violations;

use crate::code::{package_bytes, verify_zip};
use crate::error::{ControlError, Result};
use crate::input::PublishLayerVersion;
use crate::paginate::{Page, page_size, paginate};
use crate::{ControlPlane, now_ms};

/// One layer with its newest matching version (a ListLayers item).
#[derive(Debug, Clone)]
pub struct LayerView {
    pub name: String,
    pub latest: LayerVersionRecord,
}

pub type LayerList = Page<LayerView>;
pub type LayerVersionList = Page<LayerVersionRecord>;

const LAYER_NAME_PATTERN: &str =
    "(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+";

/// Filters of ListLayers / ListLayerVersions.
fn matches(rec: &LayerVersionRecord, rt: Option<&str>, arch: Option<&str>) -> bool {
    rt.is_none_or(|r| rec.compatible_runtimes.iter().any(|c| c == r))
        && arch.is_none_or(|a| rec.compatible_architectures.iter().any(|c| c == a))
}

fn filter_violations(rt: Option<&str>, arch: Option<&str>) -> Result<()> {
    let mut v = Violations::new();
    if let Some(r) = rt {
        v.one_of(r, "compatibleRuntime", runtime::ALL_RUNTIMES);
    }
    if let Some(a) = arch {
        v.one_of(a, "compatibleArchitecture", &["x86_64", "arm64"]);
    }
    v.message()
        .map_or(Ok(()), |m| Err(ControlError::Validation(m)))
}

/// A layer version number from a path: a number of at least 1.
fn layer_version_number(raw: &str) -> Result<u64> {
    let n: i64 = raw.parse().map_err(|_| {
        ControlError::Validation(format!(
            "1 validation error detected: Value '{raw}' at 'versionNumber' failed to satisfy constraint: Member must be a number"
        ))
    })?;
    if n < 1 {
        return Err(ControlError::InvalidParameter(
            "Layer Version Cannot be less than 1".into(),
        ));
    }
    Ok(n as u64)
}

impl ControlPlane {
    fn layer_name(&self, raw: &str) -> Result<String> {
        parse_layer_name(raw).ok_or_else(|| {
            let mut v = Violations::new();
            v.add(
                raw,
                "layerName",
                &format!("Member must satisfy regular expression pattern: {LAYER_NAME_PATTERN}"),
            );
            ControlError::Validation(v.message().unwrap_or_default())
        })
    }

    fn layer_missing(&self) -> ControlError {
        ControlError::NotFound("The resource you requested does not exist.".into())
    }

    /// PublishLayerVersion.
    pub fn publish_layer_version(
        &self,
        raw: &str,
        req: PublishLayerVersion,
    ) -> Result<LayerVersionRecord> {
        let name = self.layer_name(raw)?;
        let mut v = Violations::new();
        if req.content.is_none() {
            v.add("null", "content", "Member must not be null");
        }
        if let Some(d) = &req.description {
            v.string(d, "description", 0, 256, None);
        }
        if let Some(l) = &req.license_info {
            v.string(l, "licenseInfo", 0, 512, None);
        }
        let runtimes = req.compatible_runtimes.unwrap_or_default();
        if runtimes.len() > 15 {
            v.add(
                format!("{runtimes:?}"),
                "compatibleRuntimes",
                "Member must have length less than or equal to 15",
            );
        }
        for r in &runtimes {
            v.one_of(r, "compatibleRuntimes", runtime::ALL_RUNTIMES);
        }
        let archs = req.compatible_architectures.unwrap_or_default();
        if archs.len() > 2 {
            v.add(
                format!("{archs:?}"),
                "compatibleArchitectures",
                "Member must have length less than or equal to 2",
            );
        }
        for a in &archs {
            v.one_of(a, "compatibleArchitectures", &["x86_64", "arm64"]);
        }
        if let Some(m) = v.message() {
            return Err(ControlError::Validation(m));
        }
        let content = req.content.unwrap_or_default();
        if content.zip_file.is_none() && content.s3_bucket.is_none() && content.s3_key.is_none() {
            return Err(ControlError::InvalidParameter(
                "Please provide a source for the layer content.".into(),
            ));
        }
        let zip = package_bytes(
            content.zip_file.as_deref(),
            content.s3_bucket.as_deref(),
            content.s3_key.as_deref(),
            content.s3_object_version.as_deref(),
            "PublishLayerVersion",
            self.code_source(),
        )?;
        let unzipped = verify_zip(&zip)?;
        let _guard = self.lock();
        let code = self.store_code(&zip, unzipped)?;
        let mut rec = LayerVersionRecord {
            name,
            version: 0,
            description: req.description.unwrap_or_default(),
            created_ms: now_ms(),
            compatible_runtimes: runtimes,
            compatible_architectures: archs,
            license_info: req.license_info,
            code,
        };
        rec.version = self.store().publish_layer_version(&rec)?;
        tracing::info!(layer = %rec.name, version = rec.version, "layer version published");
        Ok(rec)
    }

    /// GetLayerVersion.
    pub fn get_layer_version(&self, raw: &str, version: &str) -> Result<LayerVersionRecord> {
        let name = self.layer_name(raw)?;
        let version = layer_version_number(version)?;
        self.store()
            .layer_version(&name, version, false)?
            .ok_or_else(|| self.layer_missing())
    }

    /// GetLayerVersionByArn.
    pub fn get_layer_version_by_arn(&self, arn: &str) -> Result<LayerVersionRecord> {
        let r = LayerVersionRef::parse(arn).ok_or_else(|| {
            ControlError::Validation(format!(
                "1 validation error detected: Value '{arn}' at 'arn' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{{12}}:layer:[a-zA-Z0-9-_]+:[0-9]+"
            ))
        })?;
        if r.region != self.arn().region || r.account_id != self.arn().account_id {
            return Err(self.layer_missing());
        }
        self.store()
            .layer_version(&r.name, r.version, false)?
            .ok_or_else(|| self.layer_missing())
    }

    /// ListLayerVersions (newest first).
    pub fn list_layer_versions(
        &self,
        raw: &str,
        compatible_runtime: Option<&str>,
        compatible_architecture: Option<&str>,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<LayerVersionList> {
        let name = self.layer_name(raw)?;
        filter_violations(compatible_runtime, compatible_architecture)?;
        let size = page_size(max_items, 50, 50)?;
        let versions: Vec<LayerVersionRecord> = self
            .store()
            .layer_versions(&name)?
            .into_iter()
            .filter(|l| matches(l, compatible_runtime, compatible_architecture))
            .collect();
        // Newest first: an inverted zero-padded key keeps the ordering ascending for paginate.
        Ok(paginate(
            versions,
            |l| format!("{:020}", u64::MAX - l.version),
            marker,
            size,
        ))
    }

    /// ListLayers: each layer with its newest version matching the filters.
    pub fn list_layers(
        &self,
        compatible_runtime: Option<&str>,
        compatible_architecture: Option<&str>,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<LayerList> {
        filter_violations(compatible_runtime, compatible_architecture)?;
        let size = page_size(max_items, 50, 50)?;
        let mut layers = Vec::new();
        for name in self.store().layer_names()? {
            if let Some(latest) = self
                .store()
                .layer_versions(&name)?
                .into_iter()
                .find(|l| matches(l, compatible_runtime, compatible_architecture))
            {
                layers.push(LayerView { name, latest });
            }
        }
        Ok(paginate(layers, |l| l.name.clone(), marker, size))
    }

    /// DeleteLayerVersion (idempotent; functions using it keep working).
    pub fn delete_layer_version(&self, raw: &str, version: &str) -> Result<()> {
        let name = self.layer_name(raw)?;
        let version = layer_version_number(version)?;
        let _guard = self.lock();
        Ok(self.store().delete_layer_version(&name, version)?)
    }
}
