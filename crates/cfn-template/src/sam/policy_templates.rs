//! SAM policy templates (`- SQSPollerPolicy: {QueueName: ...}` in `Policies`): the common
//! ones, expanded to the same policy documents samtranslator writes. The statements are in
//! `policy_templates.json` (see its `_source`).

use serde_json::{Map, Value};
use std::sync::OnceLock;

use super::Translated;

const DATA: &str = include_str!("policy_templates.json");

fn templates() -> &'static Map<String, Value> {
    static TEMPLATES: OnceLock<Map<String, Value>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        serde_json::from_str::<Value>(DATA)
            .ok()
            .and_then(|v| v.get("Templates").and_then(Value::as_object).cloned())
            .unwrap_or_default()
    })
}

/// Whether `name` is a policy template this transform knows.
pub(crate) fn is_known(name: &str) -> bool {
    templates().contains_key(name)
}

/// The policy document of a policy template with its parameters filled in.
pub(crate) fn expand(name: &str, arguments: &Value) -> Translated<Value> {
    let Some(template) = templates().get(name) else {
        return Err(format!(
            "Policy template '{name}' is not supported by Kindling's SAM transform."
        )
        .into());
    };
    let arguments = match arguments {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => {
            return Err(
                format!("Parameters of policy template '{name}' must be a dictionary.").into(),
            );
        }
    };
    let parameters: Vec<&str> = template
        .get("Parameters")
        .and_then(Value::as_array)
        .map(|p| p.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let missing: Vec<&str> = parameters
        .iter()
        .copied()
        .filter(|p| !arguments.contains_key(*p))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "Missing parameter(s) [{}] of policy template '{name}'.",
            missing.join(", ")
        )
        .into());
    }
    if let Some(extra) = arguments.keys().find(|k| !parameters.contains(&k.as_str())) {
        return Err(format!("Policy template '{name}' has no parameter '{extra}'.").into());
    }
    let definition = template.get("Definition").cloned().unwrap_or(Value::Null);
    Ok(substitute(&definition, &arguments))
}

fn substitute(value: &Value, arguments: &Map<String, Value>) -> Value {
    match value {
        Value::Object(m) if m.len() == 1 => {
            if let Some(Value::String(name)) = m.get("Ref")
                && let Some(arg) = arguments.get(name)
            {
                return arg.clone();
            }
            Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), substitute(v, arguments)))
                    .collect(),
            )
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), substitute(v, arguments)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| substitute(v, arguments)).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expands_parameters() {
        let doc = expand(
            "SQSPollerPolicy",
            &json!({"QueueName": {"Fn::GetAtt": ["Q", "QueueName"]}}),
        )
        .ok()
        .unwrap_or_default();
        assert_eq!(
            doc["Statement"][0]["Resource"]["Fn::Sub"][1],
            json!({"queueName": {"Fn::GetAtt": ["Q", "QueueName"]}})
        );
        assert!(expand("SQSPollerPolicy", &json!({})).is_err());
        assert!(expand("SQSPollerPolicy", &json!({"QueueName": "q", "Extra": 1})).is_err());
        assert!(expand("NoSuchPolicy", &json!({})).is_err());
        assert!(expand("CloudWatchPutMetricPolicy", &json!({})).is_ok());
        assert_eq!(templates().len(), 21);
    }
}
