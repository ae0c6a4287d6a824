//! Request members: the query protocol's flattened form turned into the JSON protocol's shape
//! (one input shape for both protocols), and typed reads of members with SQS's errors.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kindling_protocol::query::Params;
use kindling_queues::{AttributeInput, QueueError, SendInput};
use serde_json::{Map, Value, json};

/// Converts a query-protocol form into the JSON protocol's input of operation `action`.
pub fn from_query(action: &str, p: &Params) -> Value {
    let mut out = Map::new();
    for (k, v) in p.pairs() {
        if !k.contains('.') && k != "Action" && k != "Version" {
            out.insert(k.to_string(), json!(v));
        }
    }
    let attrs: Vec<(String, String)> = p
        .string_map("Attribute", "Name", "Value")
        .into_iter()
        .chain(p.string_map("Attributes", "key", "value"))
        .collect();
    if !attrs.is_empty() {
        out.insert("Attributes".into(), string_map(attrs));
    }
    let tags: Vec<(String, String)> = p
        .string_map("Tag", "Key", "Value")
        .into_iter()
        .chain(p.string_map("Tags", "key", "value"))
        .collect();
    if !tags.is_empty() {
        let key = if action == "CreateQueue" {
            "tags"
        } else {
            "Tags"
        };
        out.insert(key.into(), string_map(tags));
    }
    for (form, member) in [
        ("TagKey", "TagKeys"),
        ("AttributeName", "AttributeNames"),
        ("MessageSystemAttributeName", "MessageSystemAttributeNames"),
        ("MessageAttributeName", "MessageAttributeNames"),
        ("AttributeNames", "AttributeNames"),
        ("MessageAttributeNames", "MessageAttributeNames"),
        ("TagKeys", "TagKeys"),
    ] {
        let list = p.list(form);
        if !list.is_empty() {
            out.insert(member.into(), json!(list));
        }
    }
    message_attributes(p, &mut out);
    for form in [
        "SendMessageBatchRequestEntry",
        "DeleteMessageBatchRequestEntry",
        "ChangeMessageVisibilityBatchRequestEntry",
        "Entries",
    ] {
        let entries = p.indexed(form);
        if !entries.is_empty() {
            let list: Vec<Value> = entries
                .iter()
                .map(|e| {
                    let mut m = Map::new();
                    for (k, v) in e.pairs() {
                        if !k.contains('.') {
                            m.insert(k.to_string(), json!(v));
                        }
                    }
                    message_attributes(e, &mut m);
                    Value::Object(m)
                })
                .collect();
            out.insert("Entries".into(), Value::Array(list));
        }
    }
    Value::Object(out)
}

fn string_map(pairs: Vec<(String, String)>) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k, json!(v))).collect())
}

/// `MessageAttribute.N.Name` + `.Value.{DataType,StringValue,BinaryValue,…}` (and the system
/// attributes) into JSON maps.
fn message_attributes(p: &Params, out: &mut Map<String, Value>) {
    for (form, member) in [
        ("MessageAttribute", "MessageAttributes"),
        ("MessageSystemAttribute", "MessageSystemAttributes"),
        ("MessageAttributes", "MessageAttributes"),
    ] {
        let items = p.indexed(form);
        if items.is_empty() {
            continue;
        }
        let mut map = Map::new();
        for item in items {
            let Some(name) = item.get("Name").map(str::to_string) else {
                continue;
            };
            let v = item.sub("Value");
            let mut value = Map::new();
            for field in ["DataType", "StringValue", "BinaryValue"] {
                if let Some(x) = v.get(field) {
                    value.insert(field.into(), json!(x));
                }
            }
            for (list, key) in [
                ("StringListValue", "StringListValues"),
                ("BinaryListValue", "BinaryListValues"),
            ] {
                let values = v.list(list);
                if !values.is_empty() {
                    value.insert(key.into(), json!(values));
                }
            }
            map.insert(name, Value::Object(value));
        }
        out.insert(member.into(), Value::Object(map));
    }
}

/// A string member.
pub fn string(v: &Value, name: &str) -> Result<Option<String>, QueueError> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(QueueError::invalid(format!(
            "Value {other} for parameter {name} is invalid. Reason: must be a string."
        ))),
    }
}

/// A required string member.
pub fn required(v: &Value, name: &str) -> Result<String, QueueError> {
    string(v, name)?.ok_or_else(|| QueueError::MissingParameter(name.to_string()))
}

/// An integer member (a JSON number, or a numeric string as the query protocol sends).
pub fn int(v: &Value, name: &str) -> Result<Option<i64>, QueueError> {
    let bad = |x: &dyn std::fmt::Display| {
        QueueError::invalid(format!(
            "Value {x} for parameter {name} is invalid. Reason: must be an integer."
        ))
    };
    match v.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| bad(n)),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad(s)),
        Some(other) => Err(bad(other)),
    }
}

/// A list of strings.
pub fn strings(v: &Value, name: &str) -> Result<Vec<String>, QueueError> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_string).ok_or_else(|| {
                    QueueError::invalid(format!("Parameter {name} must be a list of strings."))
                })
            })
            .collect(),
        Some(_) => Err(QueueError::invalid(format!(
            "Parameter {name} must be a list of strings."
        ))),
    }
}

/// A map of strings (attribute values: numbers and booleans are taken as their text).
pub fn string_map_of(v: &Value, name: &str) -> Result<BTreeMap<String, String>, QueueError> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, x)| {
                let s = match x {
                    Value::String(s) => s.clone(),
                    Value::Number(_) | Value::Bool(_) => x.to_string(),
                    _ => {
                        return Err(QueueError::invalid(format!(
                            "Value for {name}.{k} must be a string."
                        )));
                    }
                };
                Ok((k.clone(), s))
            })
            .collect(),
        Some(_) => Err(QueueError::invalid(format!(
            "Parameter {name} must be a map."
        ))),
    }
}

/// A list of objects (batch entries).
pub fn entries(v: &Value) -> Result<Vec<Value>, QueueError> {
    match v.get("Entries") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(_) => Err(QueueError::invalid("Parameter Entries must be a list.")),
    }
}

fn attribute_map(v: &Value, name: &str) -> Result<BTreeMap<String, AttributeInput>, QueueError> {
    let Some(Value::Object(map)) = v.get(name) else {
        return match v.get(name) {
            None | Some(Value::Null) => Ok(BTreeMap::new()),
            Some(_) => Err(QueueError::invalid(format!(
                "Parameter {name} must be a map."
            ))),
        };
    };
    let mut out = BTreeMap::new();
    for (k, a) in map {
        let binary = match string(a, "BinaryValue")? {
            Some(b) => Some(STANDARD.decode(b.trim()).map_err(|_| {
                QueueError::invalid(format!(
                    "The message attribute '{k}' has a BinaryValue that is not valid base64."
                ))
            })?),
            None => None,
        };
        let has_lists = ["StringListValues", "BinaryListValues"].iter().any(|l| {
            a.get(*l)
                .and_then(Value::as_array)
                .is_some_and(|x| !x.is_empty())
        });
        out.insert(
            k.clone(),
            AttributeInput {
                data_type: string(a, "DataType")?,
                string_value: string(a, "StringValue")?,
                binary_value: binary,
                has_list_values: has_lists,
            },
        );
    }
    Ok(out)
}

/// A SendMessage input (or one SendMessageBatch entry).
pub fn send_input(v: &Value) -> Result<SendInput, QueueError> {
    Ok(SendInput {
        body: required(v, "MessageBody")?,
        delay_seconds: int(v, "DelaySeconds")?,
        attributes: attribute_map(v, "MessageAttributes")?,
        system_attributes: attribute_map(v, "MessageSystemAttributes")?,
        group_id: string(v, "MessageGroupId")?,
        dedup_id: string(v, "MessageDeduplicationId")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_forms_become_json_inputs() {
        let p = Params::parse(
            b"Action=SendMessageBatch&QueueUrl=u\
              &SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=x\
              &SendMessageBatchRequestEntry.1.DelaySeconds=3\
              &SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=k\
              &SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=String\
              &SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue=v\
              &Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=5&AttributeName.1=All",
        )
        .unwrap();
        let v = from_query("SendMessageBatch", &p);
        assert_eq!(v["QueueUrl"], "u");
        assert_eq!(v["Attributes"]["VisibilityTimeout"], "5");
        assert_eq!(v["AttributeNames"], json!(["All"]));
        let e = &entries(&v).unwrap()[0];
        let input = send_input(e).unwrap();
        assert_eq!(input.delay_seconds, Some(3));
        assert_eq!(input.attributes["k"].string_value.as_deref(), Some("v"));
        assert!(int(&json!({"N": "x"}), "N").is_err());
    }
}
