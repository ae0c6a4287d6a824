//! Function versions as stored, and `FunctionConfiguration` as Lambda renders it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::arn::{ArnContext, Qualifier};
use crate::timefmt::lambda_timestamp;

/// A layer version attached to a function version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LayerAttachment {
    pub arn: String,
    pub code_size: u64,
}

/// Logging configuration (`LoggingConfig`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoggingConfig {
    pub log_format: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_log_level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_log_level: Option<String>,
    pub log_group: String,
}

/// Everything a user configures on a function version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionSpec {
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub role: String,
    pub description: String,
    pub timeout: u32,
    pub memory_size: u32,
    /// `None` when the user never set `Environment`.
    pub environment: Option<BTreeMap<String, String>>,
    pub dead_letter_target: Option<String>,
    pub kms_key_arn: Option<String>,
    pub tracing_mode: String,
    pub layers: Vec<LayerAttachment>,
    pub architectures: Vec<String>,
    pub ephemeral_storage: u32,
    pub logging: LoggingConfig,
    pub vpc_config: Option<Value>,
    pub file_system_configs: Option<Value>,
    pub image_config: Option<Value>,
    pub snap_start_apply_on: String,
    pub package_type: String,
}

impl FunctionSpec {
    /// Lambda's defaults for a new zip function (Timeout 3, MemorySize 128, x86_64, 512 MB of
    /// /tmp, text logs to `/aws/lambda/<name>`), before the request's values are applied.
    pub fn lambda_defaults(function_name: &str) -> Self {
        Self {
            runtime: None,
            handler: None,
            role: String::new(),
            description: String::new(),
            timeout: 3,
            memory_size: 128,
            environment: None,
            dead_letter_target: None,
            kms_key_arn: None,
            tracing_mode: "PassThrough".into(),
            layers: vec![],
            architectures: vec!["x86_64".into()],
            ephemeral_storage: 512,
            logging: LoggingConfig {
                log_format: "Text".into(),
                application_log_level: None,
                system_log_level: None,
                log_group: format!("/aws/lambda/{function_name}"),
            },
            vpc_config: None,
            file_system_configs: None,
            image_config: None,
            snap_start_apply_on: "None".into(),
            package_type: "Zip".into(),
        }
    }
}

/// The deployment package of a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeInfo {
    /// Base64 of the raw SHA-256 of the zip (Lambda's `CodeSha256`).
    pub sha256: String,
    /// Size of the zip in bytes.
    pub size: u64,
    /// Total size of the unpacked files.
    pub unzipped_size: u64,
    /// Hex SHA-256 naming the zip in the blob store (empty for a container image).
    pub blob: String,
    /// The container image of a `PackageType: Image` version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageCode>,
}

/// A container image as resolved when the function was created or updated: pinned to its
/// digest, with the image's own start configuration (`ImageConfig` overrides apply on top).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageCode {
    /// `ImageUri` as given.
    pub image_uri: String,
    /// `ResolvedImageUri`: the same image by digest.
    pub resolved_image_uri: String,
    /// The image manifest's digest (`sha256:…`).
    pub manifest_digest: String,
    /// Layer digests (`sha256:…`), bottom first.
    pub layers: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: String,
    /// The image's `ENV`, in order.
    pub env: Vec<(String, String)>,
}

impl ImageCode {
    /// The command a version starts with: `ImageConfig`'s `EntryPoint`/`Command`/
    /// `WorkingDirectory` (a JSON object as stored) over the image's `ENTRYPOINT`/`CMD`/
    /// `WORKDIR`, as Lambda combines them: an overridden entry point drops the image's `CMD`
    /// unless `Command` is given too. Returns (argv, working directory).
    pub fn command(&self, overrides: Option<&Value>) -> (Vec<String>, String) {
        let list = |key: &str| -> Option<Vec<String>> {
            overrides?.get(key)?.as_array().map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
        };
        let entrypoint = list("EntryPoint");
        let cmd = list("Command");
        let argv = match (entrypoint, cmd) {
            (Some(e), Some(c)) => e.into_iter().chain(c).collect(),
            (Some(e), None) => e,
            (None, Some(c)) => self.entrypoint.iter().cloned().chain(c).collect(),
            (None, None) => self.entrypoint.iter().chain(&self.cmd).cloned().collect(),
        };
        let workdir = overrides
            .and_then(|o| o.get("WorkingDirectory"))
            .and_then(Value::as_str)
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| {
                if self.working_dir.is_empty() {
                    "/".to_string()
                } else {
                    self.working_dir.clone()
                }
            });
        (argv, workdir)
    }
}

/// Version number of a function version: `None` is `$LATEST`.
pub type VersionNumber = Option<u64>;

/// One version of a function (`$LATEST` or published) as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub function_name: String,
    pub version: VersionNumber,
    pub spec: FunctionSpec,
    pub code: CodeInfo,
    pub revision_id: String,
    pub last_modified_ms: i64,
}

impl VersionRecord {
    pub fn qualifier(&self) -> Qualifier {
        self.version.map_or(Qualifier::Latest, Qualifier::Version)
    }

    /// `$LATEST` or the decimal version number.
    pub fn version_label(&self) -> String {
        self.qualifier().to_string()
    }
}

/// Which moment of the lifecycle a rendering describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The response to CreateFunction: `Pending`, no `LastUpdateStatus`.
    Creating,
    /// The response to an update: `Active`, `LastUpdateStatus: InProgress`.
    Updating,
    /// Any later read: `Active`, `LastUpdateStatus: Successful`.
    Settled,
    /// A ListFunctions item: no state fields at all.
    Listed,
}

/// Wire shape of `FunctionConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionConfiguration {
    pub function_name: String,
    pub function_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    pub code_size: u64,
    pub description: String,
    pub timeout: u32,
    pub memory_size: u32,
    pub last_modified: String,
    pub code_sha256: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_config: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_config: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Value>,
    #[serde(rename = "KMSKeyArn", skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    pub tracing_config: Value,
    pub revision_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<LayerAttachment>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_reason_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_update_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_update_status_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_update_status_reason_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_system_configs: Option<Value>,
    pub package_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_config_response: Option<Value>,
    pub architectures: Vec<String>,
    pub ephemeral_storage: Value,
    pub snap_start: Value,
    pub logging_config: LoggingConfig,
}

impl FunctionConfiguration {
    /// Renders a stored version. `qualified_arn` selects `...:function:f:$LATEST` over the bare
    /// function ARN for `$LATEST` (published versions are always qualified).
    pub fn render(
        rec: &VersionRecord,
        ctx: &ArnContext,
        qualified_arn: bool,
        phase: Phase,
    ) -> Self {
        let spec = &rec.spec;
        let function_arn = if rec.version.is_some() || qualified_arn {
            ctx.qualified_arn(&rec.function_name, &rec.qualifier())
        } else {
            ctx.function_arn(&rec.function_name)
        };
        let (state, state_reason, state_reason_code, last_update) = match phase {
            Phase::Creating => (
                Some("Pending"),
                Some("The function is being created."),
                Some("Creating"),
                None,
            ),
            Phase::Updating => (Some("Active"), None, None, Some("InProgress")),
            Phase::Settled => (Some("Active"), None, None, Some("Successful")),
            Phase::Listed => (None, None, None, None),
        };
        Self {
            function_name: rec.function_name.clone(),
            function_arn,
            runtime: spec.runtime.clone(),
            role: spec.role.clone(),
            handler: spec.handler.clone(),
            code_size: rec.code.size,
            description: spec.description.clone(),
            timeout: spec.timeout,
            memory_size: spec.memory_size,
            last_modified: lambda_timestamp(rec.last_modified_ms),
            code_sha256: rec.code.sha256.clone(),
            version: rec.version_label(),
            vpc_config: spec.vpc_config.clone(),
            dead_letter_config: spec
                .dead_letter_target
                .as_ref()
                .map(|t| serde_json::json!({ "TargetArn": t })),
            environment: spec
                .environment
                .as_ref()
                .map(|vars| serde_json::json!({ "Variables": vars })),
            kms_key_arn: spec.kms_key_arn.clone(),
            tracing_config: serde_json::json!({ "Mode": spec.tracing_mode }),
            revision_id: rec.revision_id.clone(),
            layers: (!spec.layers.is_empty()).then(|| spec.layers.clone()),
            state: state.map(str::to_string),
            state_reason: state_reason.map(str::to_string),
            state_reason_code: state_reason_code.map(str::to_string),
            last_update_status: last_update.map(str::to_string),
            last_update_status_reason: None,
            last_update_status_reason_code: None,
            file_system_configs: spec.file_system_configs.clone(),
            package_type: spec.package_type.clone(),
            image_config_response: spec
                .image_config
                .as_ref()
                .map(|c| serde_json::json!({ "ImageConfig": c })),
            architectures: spec.architectures.clone(),
            ephemeral_storage: serde_json::json!({ "Size": spec.ephemeral_storage }),
            snap_start: serde_json::json!({
                "ApplyOn": spec.snap_start_apply_on,
                "OptimizationStatus": "Off",
            }),
            logging_config: spec.logging.clone(),
        }
    }
}

/// The function-level (not per-version) record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionMeta {
    pub name: String,
    pub created_ms: i64,
    pub tags: BTreeMap<String, String>,
    pub reserved_concurrency: Option<u32>,
    /// Highest version number ever published (numbers are never reused).
    pub last_version: u64,
    /// Provisioned concurrency configurations by qualifier (a version number or an alias
    /// name). Kept in the function-level record (already serialized whole), so adding them
    /// needs no schema change; records written before they existed read as empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub provisioned: BTreeMap<String, ProvisionedConfig>,
}

/// One PutProvisionedConcurrencyConfig, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisionedConfig {
    /// `ProvisionedConcurrentExecutions` requested.
    pub requested: u32,
    /// When it was put (milliseconds since the epoch).
    pub last_modified_ms: i64,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample() -> VersionRecord {
        VersionRecord {
            function_name: "hello".into(),
            version: None,
            spec: FunctionSpec {
                runtime: Some("python3.12".into()),
                handler: Some("app.handler".into()),
                role: "arn:aws:iam::123456789012:role/exec".into(),
                ..FunctionSpec::lambda_defaults("hello")
            },
            code: CodeInfo {
                sha256: "abc=".into(),
                size: 512,
                unzipped_size: 1024,
                blob: "00".repeat(32),
                image: None,
            },
            revision_id: "r1".into(),
            last_modified_ms: 1_714_564_800_000,
        }
    }

    #[test]
    fn image_commands_combine_like_lambda() {
        let img = ImageCode {
            entrypoint: vec!["/lambda-entrypoint.sh".into()],
            cmd: vec!["app.handler".into()],
            working_dir: "/var/task".into(),
            ..Default::default()
        };
        let (argv, wd) = img.command(None);
        assert_eq!(argv, ["/lambda-entrypoint.sh", "app.handler"]);
        assert_eq!(wd, "/var/task");
        let o = serde_json::json!({"Command": ["other.handler"], "WorkingDirectory": "/app"});
        assert_eq!(
            img.command(Some(&o)),
            (
                vec![
                    "/lambda-entrypoint.sh".to_string(),
                    "other.handler".to_string()
                ],
                "/app".to_string()
            )
        );
        let o = serde_json::json!({"EntryPoint": ["/bootstrap"]});
        assert_eq!(img.command(Some(&o)).0, ["/bootstrap"]);
        let o = serde_json::json!({"EntryPoint": ["/bin/x"], "Command": ["a"]});
        assert_eq!(img.command(Some(&o)).0, ["/bin/x", "a"]);
        assert_eq!(ImageCode::default().command(None).1, "/");
    }

    #[test]
    fn renders_like_aws() {
        let ctx = ArnContext::new("us-east-1", "123456789012");
        let json = serde_json::to_value(FunctionConfiguration::render(
            &sample(),
            &ctx,
            false,
            Phase::Settled,
        ))
        .unwrap();
        assert_eq!(
            json["FunctionArn"],
            "arn:aws:lambda:us-east-1:123456789012:function:hello"
        );
        assert_eq!(json["LastModified"], "2024-05-01T12:00:00.000+0000");
        assert_eq!(json["TracingConfig"]["Mode"], "PassThrough");
        assert_eq!(json["State"], "Active");
        assert_eq!(json["LastUpdateStatus"], "Successful");
        assert_eq!(json["EphemeralStorage"]["Size"], 512);
        assert!(json.get("Environment").is_none());
        assert!(json.get("Layers").is_none());

        let created = serde_json::to_value(FunctionConfiguration::render(
            &sample(),
            &ctx,
            false,
            Phase::Creating,
        ))
        .unwrap();
        assert_eq!(created["State"], "Pending");
        assert!(created.get("LastUpdateStatus").is_none());

        let mut v1 = sample();
        v1.version = Some(1);
        let json = serde_json::to_value(FunctionConfiguration::render(
            &v1,
            &ctx,
            false,
            Phase::Listed,
        ))
        .unwrap();
        assert_eq!(
            json["FunctionArn"],
            "arn:aws:lambda:us-east-1:123456789012:function:hello:1"
        );
        assert_eq!(json["Version"], "1");
        assert!(json.get("State").is_none());
    }
}
