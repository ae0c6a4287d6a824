//! `AWS::Serverless::LayerVersion` → `AWS::Lambda::LayerVersion` named `<Id><hash>`.

use serde_json::{Map, Value, json};

use super::{
    SamContext, Translated, check_properties, hash::logical_id_hash, resolve_parameter_refs,
    s3_location,
};

const PROPERTIES: &[&str] = &[
    "LayerName",
    "Description",
    "ContentUri",
    "CompatibleRuntimes",
    "CompatibleArchitectures",
    "LicenseInfo",
    "RetentionPolicy",
    "PublishLambdaVersion",
];

pub(crate) fn translate(
    id: &str,
    resource: &Map<String, Value>,
    ctx: &SamContext,
) -> Translated<(String, Value)> {
    let mut props = resource
        .get("Properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    check_properties(&props, PROPERTIES, "LayerVersion")?;
    for key in ["LayerName", "LicenseInfo", "Description", "RetentionPolicy"] {
        if let Some(v) = props.get(key) {
            let resolved = resolve_parameter_refs(v, ctx);
            props.insert(key.to_string(), resolved);
        }
    }
    // The hash covers the resource as written (Type, Properties, Condition, DependsOn), not
    // its DeletionPolicy, UpdateReplacePolicy or Metadata.
    let mut hashed = Map::new();
    hashed.insert("Type".into(), Value::from("AWS::Serverless::LayerVersion"));
    hashed.insert("Properties".into(), Value::Object(props.clone()));
    for attr in ["Condition", "DependsOn"] {
        if let Some(v) = resource.get(attr) {
            hashed.insert(attr.into(), v.clone());
        }
    }
    let new_id = format!(
        "{id}{}",
        logical_id_hash(&json!({ id: Value::Object(hashed) }))
    );

    let deletion_policy = match resource.get("DeletionPolicy") {
        Some(p) => p.clone(),
        None => match props.get("RetentionPolicy") {
            None => Value::from("Retain"),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("retain") => Value::from("Retain"),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("delete") => Value::from("Delete"),
            Some(_) => {
                return Err(
                    "'RetentionPolicy' must be one of the following values: [Retain, Delete]"
                        .into(),
                );
            }
        },
    };
    let content = props
        .get("ContentUri")
        .ok_or("Missing required property 'ContentUri'.")?;
    let content = s3_location(
        &resolve_parameter_refs(content, ctx),
        "ContentUri",
        ("S3Bucket", "S3Key", "S3ObjectVersion"),
    )?;
    let mut out = Map::new();
    out.insert("Content".into(), Value::Object(content));
    for key in [
        "Description",
        "LayerName",
        "LicenseInfo",
        "CompatibleArchitectures",
        "CompatibleRuntimes",
    ] {
        if let Some(v) = props.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    if !out.contains_key("LayerName") {
        out.insert("LayerName".into(), Value::from(id));
    }
    let mut res = Map::new();
    res.insert("Type".into(), Value::from("AWS::Lambda::LayerVersion"));
    res.insert("DeletionPolicy".into(), deletion_policy);
    for attr in ["Condition", "DependsOn", "UpdateReplacePolicy", "Metadata"] {
        if let Some(v) = resource.get(attr) {
            res.insert(attr.into(), v.clone());
        }
    }
    res.insert("Properties".into(), Value::Object(out));
    Ok((new_id, Value::Object(res)))
}
