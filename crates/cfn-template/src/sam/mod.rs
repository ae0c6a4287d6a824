//! The SAM transform (`AWS::Serverless-2016-10-31`): serverless resources → CloudFormation
//! resources with the logical ids samtranslator gives them.
//!
//! Supported: `AWS::Serverless::Function` (events Api, HttpApi, SQS, SNS, Schedule,
//! ScheduleV2, CloudWatchEvent/EventBridgeRule), `AWS::Serverless::Api`,
//! `AWS::Serverless::HttpApi`, `AWS::Serverless::LayerVersion`, and `Globals`. Anything else
//! (another serverless type, an unknown property, an event type or option not listed) is an
//! error naming it — never silently dropped.

mod api;
mod events;
mod function;
mod globals;
mod hash;
mod layer;
mod managed_policies;
mod policy_templates;
mod shifting;

use indexmap::IndexMap;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

use crate::error::{Result, TemplateError};

pub use hash::{logical_id_hash, python_json};
pub use shifting::{TrafficShifting, TrafficShiftingKind, traffic_shifting};

/// What the transform needs to know about where it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SamContext {
    /// `aws`, `aws-cn`, ... (written literally where samtranslator resolves the partition).
    pub partition: String,
    /// Parameter values (given or default), used where samtranslator resolves `Ref`s to
    /// parameters at transform time (code locations, alias names, deployment types).
    pub parameter_values: HashMap<String, Value>,
}

impl Default for SamContext {
    fn default() -> Self {
        Self {
            partition: "aws".to_string(),
            parameter_values: HashMap::new(),
        }
    }
}

impl SamContext {
    /// A context in `partition` with the stack's resolved parameter values.
    pub fn with_parameters(
        partition: &str,
        parameters: &crate::params::ResolvedParameters,
    ) -> Self {
        let parameter_values = parameters
            .values
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.raw.clone())))
            .collect();
        Self {
            partition: partition.to_string(),
            parameter_values,
        }
    }
}

/// `CodeUri`/`ContentUri` values that are local paths (to be packaged before deploying):
/// `(logical id, property, path)`.
pub fn local_code_paths(document: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let Some(resources) = document.get("Resources").and_then(Value::as_object) else {
        return out;
    };
    for (id, r) in resources {
        let Some(props) = r.get("Properties").and_then(Value::as_object) else {
            continue;
        };
        for key in ["CodeUri", "ContentUri", "DefinitionUri"] {
            if let Some(Value::String(s)) = props.get(key)
                && !s.starts_with("s3://")
            {
                out.push((id.clone(), key.to_string(), s.clone()));
            }
        }
    }
    out
}

/// Generated resources in output order.
pub(crate) type Resources = IndexMap<String, Value>;

/// Collects "Resource with id [X] is invalid. ..." problems across the whole template.
#[derive(Default)]
pub(crate) struct Problems(Vec<String>);

impl Problems {
    pub(crate) fn resource(&mut self, id: &str, msg: impl std::fmt::Display) {
        self.0
            .push(format!("Resource with id [{id}] is invalid. {msg}"));
    }
    pub(crate) fn event(&mut self, id: &str, event: &str, msg: impl std::fmt::Display) {
        self.0.push(format!(
            "Resource with id [{id}] is invalid. Event with id [{event}] is invalid. {msg}"
        ));
    }
    pub(crate) fn other(&mut self, msg: impl Into<String>) {
        self.0.push(msg.into());
    }
}

/// A problem found while translating one resource.
pub(crate) struct Invalid(pub String);

impl<T: Into<String>> From<T> for Invalid {
    fn from(s: T) -> Self {
        Self(s.into())
    }
}

pub(crate) type Translated<T> = std::result::Result<T, Invalid>;

pub(crate) fn r#ref(id: &str) -> Value {
    json!({ "Ref": id })
}

pub(crate) fn get_att(id: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [id, attribute] })
}

pub(crate) fn is_intrinsic(value: &Value) -> bool {
    value.as_object().is_some_and(|m| {
        m.len() == 1
            && m.keys()
                .all(|k| k == "Ref" || k == "Condition" || k.starts_with("Fn::"))
    })
}

pub(crate) fn resource(resource_type: &str, properties: Map<String, Value>) -> Value {
    json!({ "Type": resource_type, "Properties": Value::Object(properties) })
}

/// Replaces `Ref`s to known parameters by their values (what samtranslator does in code
/// locations and a few other places).
pub(crate) fn resolve_parameter_refs(value: &Value, ctx: &SamContext) -> Value {
    match value {
        Value::Object(m) if m.len() == 1 && m.contains_key("Ref") => {
            match m.get("Ref").and_then(Value::as_str) {
                Some(name) => match ctx.parameter_values.get(name) {
                    Some(v) => v.clone(),
                    None if name == "AWS::Partition" => Value::String(ctx.partition.clone()),
                    None => value.clone(),
                },
                None => value.clone(),
            }
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), resolve_parameter_refs(v, ctx)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| resolve_parameter_refs(v, ctx))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `s3://bucket/key?versionId=v` or `{Bucket, Key, Version}` → `{S3Bucket, S3Key[, S3ObjectVersion]}`
/// (with the given key names).
pub(crate) fn s3_location(
    value: &Value,
    property: &str,
    names: (&str, &str, &str),
) -> Translated<Map<String, Value>> {
    let mut out = Map::new();
    match value {
        Value::String(uri) => {
            let rest = uri.strip_prefix("s3://").ok_or_else(|| {
                format!("'{property}' is not a valid S3 Uri of the form 's3://bucket/key' with optional versionId query parameter.")
            })?;
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            let (bucket, key) = path.split_once('/').ok_or_else(|| {
                format!("'{property}' is not a valid S3 Uri of the form 's3://bucket/key' with optional versionId query parameter.")
            })?;
            if bucket.is_empty() || key.is_empty() {
                return Err(format!("'{property}' is not a valid S3 Uri of the form 's3://bucket/key' with optional versionId query parameter.").into());
            }
            out.insert(names.0.into(), Value::from(bucket));
            out.insert(names.1.into(), Value::from(key));
            if let Some(v) = query.split('&').find_map(|p| p.strip_prefix("versionId=")) {
                out.insert(names.2.into(), Value::from(v));
            }
        }
        Value::Object(m) if !is_intrinsic(value) => {
            let bucket = m.get("Bucket").ok_or_else(|| {
                format!("'{property}' requires Bucket and Key properties to be specified.")
            })?;
            let key = m.get("Key").ok_or_else(|| {
                format!("'{property}' requires Bucket and Key properties to be specified.")
            })?;
            out.insert(names.0.into(), bucket.clone());
            out.insert(names.1.into(), key.clone());
            if let Some(v) = m.get("Version") {
                out.insert(names.2.into(), v.clone());
            }
        }
        _ => {
            return Err(format!(
                "'{property}' requires Bucket and Key properties to be specified."
            )
            .into());
        }
    }
    Ok(out)
}

const SAM_TYPES: &[&str] = &[
    "AWS::Serverless::Function",
    "AWS::Serverless::Api",
    "AWS::Serverless::HttpApi",
    "AWS::Serverless::LayerVersion",
];

/// Runs the SAM transform on a whole document (with `Globals` and `Transform`).
pub fn transform(document: Value, ctx: &SamContext) -> Result<Value> {
    let Value::Object(mut top) = document else {
        return Err(crate::error::format_err(
            "Template must be a JSON object or a YAML mapping.",
        ));
    };
    let mut problems = Problems::default();
    let globals = match globals::Globals::parse(top.get("Globals")) {
        Ok(g) => g,
        Err(Invalid(msg)) => {
            problems.other(msg);
            globals::Globals::default()
        }
    };
    let Some(Value::Object(resources)) = top.get("Resources").cloned() else {
        return Err(TemplateError::Transform {
            problems: vec!["'Resources' section is required".to_string()],
        });
    };

    // Serverless resources with Globals applied.
    let mut sam: IndexMap<String, Map<String, Value>> = IndexMap::new();
    for (id, r) in &resources {
        let Some(t) = r.get("Type").and_then(Value::as_str) else {
            continue;
        };
        if t.starts_with("AWS::Serverless::") {
            if !SAM_TYPES.contains(&t) {
                problems.resource(
                    id,
                    format!("Resource type '{t}' is not supported by Kindling's SAM transform."),
                );
                continue;
            }
            let Some(map) = r.as_object() else { continue };
            match globals.apply(t, map) {
                Ok(m) => {
                    sam.insert(id.clone(), m);
                }
                Err(Invalid(msg)) => problems.resource(id, msg),
            }
        }
    }

    let mut out = Resources::new();
    let mut renames: HashMap<String, String> = HashMap::new();
    let mut api_routes = api::Routes::default();
    let mut deployment = function::DeploymentResources::default();

    // Layers first: their new logical ids are referenced by functions.
    for (id, r) in &sam {
        if r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::LayerVersion") {
            match layer::translate(id, r, ctx) {
                Ok((new_id, res)) => {
                    renames.insert(id.clone(), new_id.clone());
                    out.insert(new_id, res);
                }
                Err(Invalid(msg)) => problems.resource(id, msg),
            }
        }
    }

    for (id, r) in &resources {
        let Some(t) = r.get("Type").and_then(Value::as_str) else {
            out.insert(id.clone(), r.clone());
            continue;
        };
        match t {
            "AWS::Serverless::Function" => {
                let Some(props) = sam.get(id) else { continue };
                function::translate(
                    id,
                    props,
                    ctx,
                    &resources,
                    &mut out,
                    &mut api_routes,
                    &mut deployment,
                    &mut problems,
                );
            }
            "AWS::Serverless::Api"
            | "AWS::Serverless::HttpApi"
            | "AWS::Serverless::LayerVersion" => {}
            t if t.starts_with("AWS::Serverless::") => {}
            _ => {
                out.insert(id.clone(), r.clone());
            }
        }
    }

    let explicit: IndexMap<String, Map<String, Value>> = sam
        .iter()
        .filter(|(_, r)| {
            matches!(
                r.get("Type").and_then(Value::as_str),
                Some("AWS::Serverless::Api" | "AWS::Serverless::HttpApi")
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    api::translate_all(
        &explicit,
        &api_routes,
        ctx,
        &globals,
        &mut out,
        &mut problems,
    );
    deployment.finish(&mut out);

    if !problems.0.is_empty() {
        return Err(TemplateError::Transform {
            problems: problems.0,
        });
    }

    // Rebuild the document: same sections, generated resources, no Globals/Transform.
    let mut result = Map::new();
    for (k, v) in std::mem::take(&mut top) {
        match k.as_str() {
            "Globals" => {}
            "Transform" => {
                // Other transforms (AWS::LanguageExtensions) stay declared.
                let rest: Vec<Value> = match &v {
                    Value::Array(items) => items
                        .iter()
                        .filter(|t| t.as_str() != Some(crate::template::SAM_TRANSFORM))
                        .cloned()
                        .collect(),
                    _ => Vec::new(),
                };
                match rest.len() {
                    0 => {}
                    1 => {
                        result.insert(k, rest.into_iter().next().unwrap_or(Value::Null));
                    }
                    _ => {
                        result.insert(k, Value::Array(rest));
                    }
                }
            }
            "Resources" => {
                result.insert(k, Value::Object(out.clone().into_iter().collect()));
            }
            _ => {
                result.insert(k, v);
            }
        }
    }
    let mut doc = Value::Object(result);
    if !renames.is_empty() {
        rename_refs(&mut doc, &renames);
    }
    Ok(doc)
}

/// Points `Ref`s, `Fn::GetAtt`s and `${}` at renamed resources (SAM layers get hashed ids).
fn rename_refs(value: &mut Value, renames: &HashMap<String, String>) {
    match value {
        Value::Object(m) if m.len() == 1 => {
            if let Some(Value::String(target)) = m.get_mut("Ref") {
                if let Some(new) = renames.get(target.as_str()) {
                    *target = new.clone();
                }
                return;
            }
            if let Some(Value::Array(parts)) = m.get_mut("Fn::GetAtt") {
                if let Some(Value::String(target)) = parts.first_mut()
                    && let Some(new) = renames.get(target.as_str())
                {
                    *target = new.clone();
                }
                return;
            }
            if let Some(sub) = m.get_mut("Fn::Sub") {
                let text = match sub {
                    Value::String(s) => Some(s),
                    Value::Array(parts) => parts.first_mut().and_then(|p| match p {
                        Value::String(s) => Some(s),
                        _ => None,
                    }),
                    _ => None,
                };
                if let Some(s) = text {
                    for (old, new) in renames {
                        *s = s.replace(&format!("${{{old}}}"), &format!("${{{new}}}"));
                        *s = s.replace(&format!("${{{old}."), &format!("${{{new}."));
                    }
                }
            }
            for v in m.values_mut() {
                rename_refs(v, renames);
            }
        }
        Value::Object(m) => m.values_mut().for_each(|v| rename_refs(v, renames)),
        Value::Array(items) => items.iter_mut().for_each(|v| rename_refs(v, renames)),
        _ => {}
    }
}

/// Properties of a map that are not in `allowed` (for "not supported" errors).
pub(crate) fn check_properties(
    props: &Map<String, Value>,
    allowed: &[&str],
    what: &str,
) -> Translated<()> {
    let unknown: Vec<&str> = props
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{what} propert{} [{}] {} not supported by Kindling's SAM transform.",
            if unknown.len() == 1 { "y" } else { "ies" },
            unknown.join(", "),
            if unknown.len() == 1 { "is" } else { "are" }
        )
        .into())
    }
}
