//! Change planning: what a change set shows between the deployed stack and a new template.

use serde_json::{Map, Value};

use crate::error::{Result, format_err};
use crate::eval::is_known;
use crate::types::{self, RequiresRecreation};

/// CloudFormation's status reason for a change set without changes.
pub const NO_CHANGES_REASON: &str = "The submitted information didn't contain changes. Submit different information to create a change set.";

/// A resource as deployed (its properties as they were applied, fully resolved).
#[derive(Debug, Clone, PartialEq)]
pub struct DeployedResource {
    pub logical_id: String,
    pub resource_type: String,
    pub physical_id: Option<String>,
    pub properties: Map<String, Value>,
    pub metadata: Option<Value>,
}

/// A resource of the new template, its properties evaluated in preview mode (unknown
/// values are [`crate::KNOWN_AFTER_APPLY`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedResource {
    pub logical_id: String,
    pub resource_type: String,
    pub properties: Map<String, Value>,
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeAction {
    Add,
    Modify,
    Remove,
}

impl ChangeAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "Add",
            Self::Modify => "Modify",
            Self::Remove => "Remove",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replacement {
    True,
    False,
    Conditional,
}

impl Replacement {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Conditional => "Conditional",
        }
    }
}

/// One entry of `ResourceChange.Details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeDetail {
    /// `Properties` or `Metadata`.
    pub attribute: &'static str,
    /// The property name (for `Properties`).
    pub name: Option<String>,
    pub requires_recreation: RequiresRecreation,
    /// `Static` when the new value is known, `Dynamic` when it is known only after apply.
    pub evaluation: &'static str,
    /// `DirectModification` (static) or `ResourceAttribute` (depends on other resources).
    pub change_source: &'static str,
}

/// One change of a change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceChange {
    pub action: ChangeAction,
    pub logical_id: String,
    pub physical_id: Option<String>,
    pub resource_type: String,
    /// Only for `Modify`.
    pub replacement: Option<Replacement>,
    /// `Properties`, `Metadata`.
    pub scope: Vec<&'static str>,
    pub details: Vec<ChangeDetail>,
}

/// Scalars compare by their text (CloudFormation coerces `"5"` and `5` alike).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        (Value::Object(_) | Value::Array(_), _) | (_, Value::Object(_) | Value::Array(_)) => false,
        _ => {
            crate::eval::scalar_string(a) == crate::eval::scalar_string(b)
                && a.is_null() == b.is_null()
        }
    }
}

/// The changes from `deployed` to `planned`: additions and modifications in the new
/// template's order, then removals in the deployed order. An empty list means "no changes"
/// (the engine answers with [`NO_CHANGES_REASON`] when parameters, outputs and the rest
/// of the template are unchanged too).
pub fn plan_changes(
    deployed: &[DeployedResource],
    planned: &[PlannedResource],
) -> Result<Vec<ResourceChange>> {
    let mut changes = Vec::new();
    let retyped: Vec<&str> = planned
        .iter()
        .filter(|p| {
            deployed
                .iter()
                .any(|d| d.logical_id == p.logical_id && d.resource_type != p.resource_type)
        })
        .map(|p| p.logical_id.as_str())
        .collect();
    if !retyped.is_empty() {
        return Err(format_err(format!(
            "Update of resource type is not permitted. The new template modifies resource type of the following resources: [{}]",
            retyped.join(", ")
        )));
    }
    for new in planned {
        let Some(old) = deployed.iter().find(|d| d.logical_id == new.logical_id) else {
            changes.push(ResourceChange {
                action: ChangeAction::Add,
                logical_id: new.logical_id.clone(),
                physical_id: None,
                resource_type: new.resource_type.clone(),
                replacement: None,
                scope: Vec::new(),
                details: Vec::new(),
            });
            continue;
        };
        let spec = types::resource_type(&new.resource_type);
        let mut details = Vec::new();
        let mut names: Vec<&String> = new.properties.keys().collect();
        for k in old.properties.keys() {
            if !new.properties.contains_key(k) {
                names.push(k);
            }
        }
        for name in names {
            let before = old.properties.get(name).unwrap_or(&Value::Null);
            let after = new.properties.get(name).unwrap_or(&Value::Null);
            let known = is_known(after);
            if known && same(before, after) {
                continue;
            }
            let requires = spec.map_or(RequiresRecreation::Never, |s| s.requires_recreation(name));
            details.push(ChangeDetail {
                attribute: "Properties",
                name: Some(name.clone()),
                requires_recreation: requires,
                evaluation: if known { "Static" } else { "Dynamic" },
                change_source: if known {
                    "DirectModification"
                } else {
                    "ResourceAttribute"
                },
            });
        }
        let mut scope = Vec::new();
        if !details.is_empty() {
            scope.push("Properties");
        }
        if !same(
            old.metadata.as_ref().unwrap_or(&Value::Null),
            new.metadata.as_ref().unwrap_or(&Value::Null),
        ) {
            scope.push("Metadata");
            details.push(ChangeDetail {
                attribute: "Metadata",
                name: None,
                requires_recreation: RequiresRecreation::Never,
                evaluation: "Static",
                change_source: "DirectModification",
            });
        }
        if details.is_empty() {
            continue;
        }
        let replacement = if details.iter().any(|d| {
            d.requires_recreation == RequiresRecreation::Always && d.evaluation == "Static"
        }) {
            Replacement::True
        } else if details
            .iter()
            .any(|d| d.requires_recreation != RequiresRecreation::Never)
        {
            Replacement::Conditional
        } else {
            Replacement::False
        };
        changes.push(ResourceChange {
            action: ChangeAction::Modify,
            logical_id: new.logical_id.clone(),
            physical_id: old.physical_id.clone(),
            resource_type: new.resource_type.clone(),
            replacement: Some(replacement),
            scope,
            details,
        });
    }
    for old in deployed {
        if !planned.iter().any(|p| p.logical_id == old.logical_id) {
            changes.push(ResourceChange {
                action: ChangeAction::Remove,
                logical_id: old.logical_id.clone(),
                physical_id: old.physical_id.clone(),
                resource_type: old.resource_type.clone(),
                replacement: None,
                scope: Vec::new(),
                details: Vec::new(),
            });
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KNOWN_AFTER_APPLY;
    use serde_json::json;

    fn deployed(id: &str, t: &str, props: Value) -> DeployedResource {
        DeployedResource {
            logical_id: id.into(),
            resource_type: t.into(),
            physical_id: Some(format!("phys-{id}")),
            properties: props.as_object().cloned().unwrap_or_default(),
            metadata: None,
        }
    }

    fn planned(id: &str, t: &str, props: Value) -> PlannedResource {
        PlannedResource {
            logical_id: id.into(),
            resource_type: t.into(),
            properties: props.as_object().cloned().unwrap_or_default(),
            metadata: None,
        }
    }

    #[test]
    fn add_modify_remove_and_replacement() {
        let old = vec![
            deployed(
                "Q",
                "AWS::SQS::Queue",
                json!({"QueueName": "a", "VisibilityTimeout": 30}),
            ),
            deployed("T", "AWS::SNS::Topic", json!({})),
            deployed("F", "AWS::Lambda::Function", json!({"MemorySize": 128})),
            deployed("B", "AWS::S3::Bucket", json!({"BucketName": "x"})),
        ];
        let new = vec![
            planned(
                "Q",
                "AWS::SQS::Queue",
                json!({"QueueName": "b", "VisibilityTimeout": "30"}),
            ),
            planned("F", "AWS::Lambda::Function", json!({"MemorySize": 256})),
            planned(
                "B",
                "AWS::S3::Bucket",
                json!({"BucketName": KNOWN_AFTER_APPLY}),
            ),
            planned("N", "AWS::SQS::Queue", json!({})),
        ];
        let changes = plan_changes(&old, &new).expect("plan");
        let summary: Vec<(&str, &str, Option<&str>)> = changes
            .iter()
            .map(|c| {
                (
                    c.action.as_str(),
                    c.logical_id.as_str(),
                    c.replacement.map(Replacement::as_str),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("Modify", "Q", Some("True")),
                ("Modify", "F", Some("False")),
                ("Modify", "B", Some("Conditional")),
                ("Add", "N", None),
                ("Remove", "T", None),
            ]
        );
        assert_eq!(
            changes[0].details.len(),
            1,
            "VisibilityTimeout 30 vs \"30\" is no change"
        );
        assert_eq!(changes[0].details[0].name.as_deref(), Some("QueueName"));
        assert_eq!(changes[2].details[0].evaluation, "Dynamic");
    }

    #[test]
    fn no_changes() {
        let old = vec![deployed("Q", "AWS::SQS::Queue", json!({"QueueName": "a"}))];
        let new = vec![planned("Q", "AWS::SQS::Queue", json!({"QueueName": "a"}))];
        assert!(plan_changes(&old, &new).expect("plan").is_empty());
        let retype = vec![planned("Q", "AWS::SNS::Topic", json!({}))];
        assert!(plan_changes(&old, &retype).is_err());
    }
}
