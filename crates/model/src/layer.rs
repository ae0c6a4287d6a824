//! Layer versions as stored and as Lambda renders them.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::arn::ArnContext;
use crate::function::CodeInfo;
use crate::timefmt::lambda_timestamp;

/// One published layer version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerVersionRecord {
    pub name: String,
    pub version: u64,
    pub description: String,
    pub created_ms: i64,
    pub compatible_runtimes: Vec<String>,
    pub compatible_architectures: Vec<String>,
    pub license_info: Option<String>,
    pub code: CodeInfo,
}

impl LayerVersionRecord {
    /// The `LatestMatchingVersion` / `LayerVersions` list item shape.
    pub fn list_item(&self, ctx: &ArnContext) -> Value {
        let mut item = json!({
            "LayerVersionArn": ctx.layer_version_arn(&self.name, self.version),
            "Version": self.version,
            "Description": self.description,
            "CreatedDate": lambda_timestamp(self.created_ms),
        });
        self.add_optional(&mut item);
        item
    }

    /// The GetLayerVersion / PublishLayerVersion response; `location` is the download URL.
    pub fn full(&self, ctx: &ArnContext, location: &str) -> Value {
        let mut item = json!({
            "Content": {
                "Location": location,
                "CodeSha256": self.code.sha256,
                "CodeSize": self.code.size,
            },
            "LayerArn": ctx.layer_arn(&self.name),
            "LayerVersionArn": ctx.layer_version_arn(&self.name, self.version),
            "Description": self.description,
            "CreatedDate": lambda_timestamp(self.created_ms),
            "Version": self.version,
        });
        self.add_optional(&mut item);
        item
    }

    fn add_optional(&self, item: &mut Value) {
        if !self.compatible_runtimes.is_empty() {
            item["CompatibleRuntimes"] = json!(self.compatible_runtimes);
        }
        if !self.compatible_architectures.is_empty() {
            item["CompatibleArchitectures"] = json!(self.compatible_architectures);
        }
        if let Some(license) = &self.license_info {
            item["LicenseInfo"] = json!(license);
        }
    }
}

/// A parsed layer version ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerVersionRef {
    pub region: String,
    pub account_id: String,
    pub name: String,
    pub version: u64,
}

impl LayerVersionRef {
    /// Parses `arn:<partition>:lambda:<region>:<account>:layer:<name>:<version>`.
    pub fn parse(arn: &str) -> Option<Self> {
        let parts: Vec<&str> = arn.split(':').collect();
        match parts.as_slice() {
            [
                "arn",
                partition,
                "lambda",
                region,
                account,
                "layer",
                name,
                version,
            ] if !partition.is_empty()
                && !region.is_empty()
                && account.len() == 12
                && crate::validate::is_digits(account)
                && crate::validate::is_name_chars(name)
                && crate::validate::is_digits(version) =>
            {
                Some(Self {
                    region: (*region).to_string(),
                    account_id: (*account).to_string(),
                    name: (*name).to_string(),
                    version: version.parse().ok()?,
                })
            }
            _ => None,
        }
    }
}

/// A layer name given as a bare name or a layer ARN (`LayerName` pattern).
pub fn parse_layer_name(s: &str) -> Option<String> {
    if crate::validate::is_name_chars(s) && s.len() <= 140 {
        return Some(s.to_string());
    }
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "lambda", _, account, "layer", name]
            if account.len() == 12 && crate::validate::is_name_chars(name) =>
        {
            Some((*name).to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_layer_refs() {
        let r =
            LayerVersionRef::parse("arn:aws:lambda:us-east-1:123456789012:layer:deps:4").unwrap();
        assert_eq!(r.name, "deps");
        assert_eq!(r.version, 4);
        assert!(
            LayerVersionRef::parse("arn:aws:lambda:us-east-1:123456789012:layer:deps").is_none()
        );
        assert!(LayerVersionRef::parse("deps:4").is_none());
        assert_eq!(parse_layer_name("deps").as_deref(), Some("deps"));
        assert_eq!(
            parse_layer_name("arn:aws:lambda:us-east-1:123456789012:layer:deps").as_deref(),
            Some("deps")
        );
        assert!(parse_layer_name("bad name").is_none());
    }
}
