//! The typed view of a (processed) template and its structural checks.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::error::{Result, TemplateError, format_err};
use crate::params::ParameterDecl;

pub const SAM_TRANSFORM: &str = "AWS::Serverless-2016-10-31";
pub const LANGUAGE_EXTENSIONS: &str = "AWS::LanguageExtensions";

const SECTIONS: &[&str] = &[
    "AWSTemplateFormatVersion",
    "Description",
    "Metadata",
    "Parameters",
    "Rules",
    "Mappings",
    "Conditions",
    "Transform",
    "Resources",
    "Outputs",
];

const RESOURCE_ATTRIBUTES: &[&str] = &[
    "Type",
    "Properties",
    "DependsOn",
    "Condition",
    "DeletionPolicy",
    "UpdateReplacePolicy",
    "Metadata",
    "CreationPolicy",
    "UpdatePolicy",
];

/// `DeletionPolicy` / `UpdateReplacePolicy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionPolicy {
    Delete,
    Retain,
    RetainExceptOnCreate,
    Snapshot,
}

impl RetentionPolicy {
    fn parse(value: &Value, attribute: &str, resource: &str) -> Result<Self> {
        match value.as_str() {
            Some("Delete") => Ok(Self::Delete),
            Some("Retain") => Ok(Self::Retain),
            Some("RetainExceptOnCreate") if attribute == "DeletionPolicy" => {
                Ok(Self::RetainExceptOnCreate)
            }
            Some("Snapshot") => Ok(Self::Snapshot),
            _ => Err(format_err(format!(
                "Unrecognized {attribute} {} for resource {resource}",
                crate::eval::display_value(value)
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delete => "Delete",
            Self::Retain => "Retain",
            Self::RetainExceptOnCreate => "RetainExceptOnCreate",
            Self::Snapshot => "Snapshot",
        }
    }
}

/// One entry of `Resources`.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub resource_type: String,
    /// `Properties` (empty when absent). Still holds intrinsic functions.
    pub properties: Map<String, Value>,
    pub depends_on: Vec<String>,
    pub condition: Option<String>,
    /// `Delete` when absent.
    pub deletion_policy: RetentionPolicy,
    /// `Delete` when absent.
    pub update_replace_policy: RetentionPolicy,
    pub metadata: Option<Value>,
    pub creation_policy: Option<Value>,
    pub update_policy: Option<Value>,
}

/// One entry of `Outputs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub value: Value,
    pub description: Option<Value>,
    pub condition: Option<String>,
    /// `Export.Name` (may hold intrinsics).
    pub export_name: Option<Value>,
}

/// A template after transforms: what the engine deploys.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub format_version: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<Value>,
    pub parameters: IndexMap<String, ParameterDecl>,
    pub rules: Option<Value>,
    pub mappings: Map<String, Value>,
    pub conditions: IndexMap<String, Value>,
    /// Transforms still declared (only `AWS::LanguageExtensions` survives processing).
    pub transforms: Vec<String>,
    pub resources: IndexMap<String, Resource>,
    pub outputs: IndexMap<String, Output>,
    /// The whole document as given (for `GetTemplate` and stored state).
    document: Value,
}

/// `Transform` as a list of names (string or list form).
pub fn declared_transforms(document: &Value) -> Result<Vec<String>> {
    match document.get("Transform") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                Value::Object(o) if o.contains_key("Name") => Err(format_err(
                    "Transform macros with parameters are not supported by Kindling".to_string(),
                )),
                _ => Err(format_err(
                    "Transform must be a string or a list of strings",
                )),
            })
            .collect(),
        Some(_) => Err(format_err(
            "Transform must be a string or a list of strings",
        )),
    }
}

fn string_field(map: &Map<String, Value>, key: &str, what: &str) -> Result<Option<String>> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(format_err(format!("{what} must be a string"))),
    }
}

fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>> {
    value
        .as_object()
        .ok_or_else(|| format_err(format!("{what} must be an object")))
}

impl Template {
    /// Reads a processed template (no SAM transform left) and checks its structure the way
    /// `ValidateTemplate` does: known sections, a non-empty `Resources`, a `Type` on every
    /// resource, known resource attributes, well-formed parameters and outputs.
    pub fn from_value(document: Value) -> Result<Self> {
        let top = object(&document, "Template")?;
        let unknown: Vec<&str> = top
            .keys()
            .map(String::as_str)
            .filter(|k| !SECTIONS.contains(k))
            .collect();
        if !unknown.is_empty() {
            return Err(format_err(format!(
                "Invalid template property or properties [{}]",
                unknown.join(", ")
            )));
        }
        let transforms = declared_transforms(&document)?;
        for t in &transforms {
            if t == SAM_TRANSFORM {
                return Err(format_err(
                    "The SAM transform must run before the template is read",
                ));
            }
            if t != LANGUAGE_EXTENSIONS {
                return Err(TemplateError::UnsupportedTransform(t.clone()));
            }
        }
        let format_version =
            string_field(top, "AWSTemplateFormatVersion", "AWSTemplateFormatVersion")?;
        if let Some(v) = &format_version
            && v != "2010-09-09"
        {
            return Err(format_err(format!(
                "'{v}' is not a supported value for AWSTemplateFormatVersion."
            )));
        }
        let description = string_field(top, "Description", "Description")?;
        if description.as_ref().is_some_and(|d| d.len() > 1024) {
            return Err(format_err(
                "Template description cannot exceed 1024 characters",
            ));
        }

        let mut parameters = IndexMap::new();
        if let Some(section) = top.get("Parameters") {
            for (name, decl) in object(section, "Parameters")? {
                parameters.insert(name.clone(), ParameterDecl::parse(name, decl)?);
            }
        }
        if parameters.len() > 200 {
            return Err(format_err(
                "Parameter count 201 is greater than max allowed 200",
            ));
        }

        let mut mappings = Map::new();
        if let Some(section) = top.get("Mappings") {
            for (name, map) in object(section, "Mappings")? {
                let inner = map.as_object().ok_or_else(|| {
                    format_err(format!("Every Mappings member {name} must be a map"))
                })?;
                for (top_key, second) in inner {
                    if !second.is_object() {
                        return Err(format_err(format!(
                            "Every Mappings attribute {top_key} in mapping {name} must be a map"
                        )));
                    }
                }
                mappings.insert(name.clone(), map.clone());
            }
        }

        let mut conditions = IndexMap::new();
        if let Some(section) = top.get("Conditions") {
            for (name, cond) in object(section, "Conditions")? {
                conditions.insert(name.clone(), cond.clone());
            }
        }

        let resources_section = match top.get("Resources") {
            Some(Value::Object(r)) if !r.is_empty() => r,
            _ => return Err(format_err("At least one Resources member must be defined.")),
        };
        let mut resources = IndexMap::new();
        for (id, raw) in resources_section {
            check_logical_id(id)?;
            resources.insert(id.clone(), Resource::parse(id, raw)?);
        }
        if resources.len() > 500 {
            return Err(format_err(format!(
                "Number of resources, {}, is greater than maximum allowed, 500",
                resources.len()
            )));
        }

        let mut outputs = IndexMap::new();
        if let Some(section) = top.get("Outputs") {
            for (name, raw) in object(section, "Outputs")? {
                check_logical_id(name)?;
                outputs.insert(name.clone(), Output::parse(name, raw)?);
            }
        }
        if outputs.len() > 200 {
            return Err(format_err("Output count is greater than max allowed 200"));
        }

        Ok(Self {
            format_version,
            description,
            metadata: top.get("Metadata").cloned(),
            parameters,
            rules: top.get("Rules").cloned(),
            mappings,
            conditions,
            transforms,
            resources,
            outputs,
            document,
        })
    }

    /// The document this template was read from (the processed template).
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// Whether `AWS::LanguageExtensions` is declared (enables `Fn::Length`, `Fn::ToJsonString`,
    /// `Fn::FindInMap` defaults).
    pub fn has_language_extensions(&self) -> bool {
        self.transforms.iter().any(|t| t == LANGUAGE_EXTENSIONS)
    }

    pub fn resource(&self, logical_id: &str) -> Option<&Resource> {
        self.resources.get(logical_id)
    }
}

fn check_logical_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 255 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format_err(format!(
            "Resource name {id} is non alphanumeric."
        )));
    }
    Ok(())
}

impl Resource {
    fn parse(id: &str, raw: &Value) -> Result<Self> {
        let map = raw.as_object().ok_or_else(|| {
            format_err(format!(
                "[/Resources/{id}] resource definition is malformed"
            ))
        })?;
        if let Some(bad) = map
            .keys()
            .find(|k| !RESOURCE_ATTRIBUTES.contains(&k.as_str()))
        {
            return Err(format_err(format!(
                "Invalid template resource property '{bad}'"
            )));
        }
        let resource_type = match map.get("Type") {
            Some(Value::String(t)) if !t.is_empty() => t.clone(),
            Some(_) => {
                return Err(format_err(format!(
                    "[/Resources/{id}/Type] Type must be a string"
                )));
            }
            None => {
                return Err(format_err(format!(
                    "[/Resources/{id}] Every Resources object must contain a Type member."
                )));
            }
        };
        let properties = match map.get("Properties") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(p)) => p.clone(),
            Some(_) => {
                return Err(format_err(format!(
                    "[/Resources/{id}/Properties] Properties must be an object"
                )));
            }
        };
        let depends_on = match map.get("DependsOn") {
            None => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str().map(str::to_string).ok_or_else(|| {
                        format_err(format!("[/Resources/{id}/DependsOn] DependsOn must be a string or a list of strings"))
                    })
                })
                .collect::<Result<_>>()?,
            Some(_) => {
                return Err(format_err(format!(
                    "[/Resources/{id}/DependsOn] DependsOn must be a string or a list of strings"
                )));
            }
        };
        let condition = match map.get("Condition") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(format_err(format!(
                    "[/Resources/{id}/Condition] Condition must be a string"
                )));
            }
        };
        let policy = |attr: &str| -> Result<RetentionPolicy> {
            map.get(attr).map_or(Ok(RetentionPolicy::Delete), |v| {
                RetentionPolicy::parse(v, attr, id)
            })
        };
        Ok(Self {
            resource_type,
            properties,
            depends_on,
            condition,
            deletion_policy: policy("DeletionPolicy")?,
            update_replace_policy: policy("UpdateReplacePolicy")?,
            metadata: map.get("Metadata").cloned(),
            creation_policy: map.get("CreationPolicy").cloned(),
            update_policy: map.get("UpdatePolicy").cloned(),
        })
    }
}

impl Output {
    fn parse(name: &str, raw: &Value) -> Result<Self> {
        let map = raw
            .as_object()
            .ok_or_else(|| format_err(format!("Output {name} is malformed")))?;
        if let Some(bad) = map
            .keys()
            .find(|k| !matches!(k.as_str(), "Value" | "Description" | "Condition" | "Export"))
        {
            return Err(format_err(format!("Invalid outputs property : [{bad}]")));
        }
        let value = map.get("Value").cloned().ok_or_else(|| {
            format_err(format!(
                "Every Outputs member must contain a Value object, the member '{name}' does not"
            ))
        })?;
        let condition = match map.get("Condition") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(format_err(format!(
                    "Output {name}: Condition must be a string"
                )));
            }
        };
        let export_name =
            match map.get("Export") {
                None => None,
                Some(Value::Object(e)) => Some(e.get("Name").cloned().ok_or_else(|| {
                    format_err(format!("Output {name}: Export must contain a Name"))
                })?),
                Some(_) => {
                    return Err(format_err(format!(
                        "Output {name}: Export must be an object"
                    )));
                }
            };
        Ok(Self {
            value,
            description: map.get("Description").cloned(),
            condition,
            export_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: Value) -> Result<Template> {
        Template::from_value(v)
    }

    #[test]
    fn reads_sections_in_order() {
        let t = read(json!({
            "AWSTemplateFormatVersion": "2010-09-09",
            "Resources": {
                "B": {"Type": "AWS::SQS::Queue", "DeletionPolicy": "Retain", "DependsOn": "A"},
                "A": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "t"}}
            },
            "Outputs": {"O": {"Value": {"Ref": "A"}, "Export": {"Name": "x"}}}
        }))
        .expect("valid");
        assert_eq!(t.resources.keys().collect::<Vec<_>>(), ["B", "A"]);
        assert_eq!(t.resources["B"].deletion_policy, RetentionPolicy::Retain);
        assert_eq!(t.resources["B"].depends_on, ["A"]);
        assert_eq!(t.outputs["O"].export_name, Some(json!("x")));
    }

    #[test]
    fn structural_errors_use_cloudformation_messages() {
        let msg = |v: Value| read(v).expect_err("invalid").to_string();
        assert_eq!(
            msg(json!({"Resources": {}})),
            "Template format error: At least one Resources member must be defined."
        );
        assert_eq!(
            msg(json!({"Resources": {"A": {"Type": "AWS::SNS::Topic"}}, "Foo": 1})),
            "Template format error: Invalid template property or properties [Foo]"
        );
        assert_eq!(
            msg(json!({"Resources": {"A": {"Properties": {}}}})),
            "Template format error: [/Resources/A] Every Resources object must contain a Type member."
        );
        assert_eq!(
            msg(json!({"Resources": {"A-b": {"Type": "AWS::SNS::Topic"}}})),
            "Template format error: Resource name A-b is non alphanumeric."
        );
        assert!(
            msg(json!({"Resources": {"A": {"Type": "AWS::SNS::Topic", "DeletionPolicy": "Keep"}}}))
                .contains("Unrecognized DeletionPolicy Keep")
        );
        assert!(
            msg(
                json!({"Transform": "Acme::Macro", "Resources": {"A": {"Type": "AWS::SNS::Topic"}}})
            )
            .contains("Unsupported transform Acme::Macro")
        );
    }
}
