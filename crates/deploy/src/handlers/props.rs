//! Reading CloudFormation property values (which may be strings where APIs want numbers,
//! and the other way round).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::provider::ProvisionError;

/// A scalar as text (`5`, `"5"`, `true`).
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn string(props: &Map<String, Value>, key: &str) -> Option<String> {
    props.get(key).and_then(text)
}

/// A number, also from its text.
pub fn number(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `[{Key, Value}]` tags as a map.
pub fn tags(props: &Map<String, Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match props.get("Tags") {
        Some(Value::Array(list)) => {
            for t in list {
                if let (Some(k), Some(v)) =
                    (t.get("Key").and_then(text), t.get("Value").and_then(text))
                {
                    out.insert(k, v);
                }
            }
        }
        Some(Value::Object(map)) => {
            for (k, v) in map {
                if let Some(v) = text(v) {
                    out.insert(k.clone(), v);
                }
            }
        }
        _ => {}
    }
    out
}

/// A JSON document property (object or text) as text.
pub fn document(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn required(props: &Map<String, Value>, key: &str) -> Result<String, ProvisionError> {
    string(props, key)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ProvisionError::new(format!("Property {key} cannot be empty.")))
}
