//! Aliases: named pointers to a version, with optional weighted routing to a second version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::arn::{ArnContext, Qualifier};

/// An alias as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasRecord {
    pub function_name: String,
    pub name: String,
    /// `$LATEST` or a version number.
    pub function_version: String,
    pub description: String,
    /// `AdditionalVersionWeights`: version number -> share of traffic (0..1).
    pub weights: BTreeMap<String, f64>,
    pub revision_id: String,
}

/// Wire shape of `AliasConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasConfiguration {
    pub alias_arn: String,
    pub name: String,
    pub function_version: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_config: Option<Value>,
    pub revision_id: String,
}

impl AliasConfiguration {
    pub fn render(rec: &AliasRecord, ctx: &ArnContext) -> Self {
        Self {
            alias_arn: ctx.qualified_arn(&rec.function_name, &Qualifier::Alias(rec.name.clone())),
            name: rec.name.clone(),
            function_version: rec.function_version.clone(),
            description: rec.description.clone(),
            routing_config: (!rec.weights.is_empty())
                .then(|| serde_json::json!({ "AdditionalVersionWeights": rec.weights })),
            revision_id: rec.revision_id.clone(),
        }
    }
}
