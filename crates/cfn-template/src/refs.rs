//! What a piece of a template refers to: `Ref`, `Fn::GetAtt`, `${...}` in `Fn::Sub`,
//! condition names and mapping names. Used by validation and the dependency graph.

use serde_json::Value;
use std::collections::HashMap;

/// A piece of an `Fn::Sub` string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubPart {
    Literal(String),
    /// `${Name}` or `${Resource.Attribute}`
    Variable(String),
}

/// Splits an `Fn::Sub` string; `${!Text}` is the literal `${Text}`.
pub fn parse_sub(text: &str) -> Vec<SubPart> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        literal.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                if let Some(lit) = name.strip_prefix('!') {
                    literal.push_str("${");
                    literal.push_str(lit);
                    literal.push('}');
                } else {
                    if !literal.is_empty() {
                        parts.push(SubPart::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(SubPart::Variable(name.trim().to_string()));
                }
                rest = &after[end + 1..];
            }
            None => {
                literal.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(SubPart::Literal(literal));
    }
    parts
}

/// Names referred to by a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    /// Targets of `Ref` and of `${Name}` (parameters, pseudo parameters or resources).
    pub refs: Vec<String>,
    /// Targets of `Fn::GetAtt` and `${Resource.Attribute}`.
    pub get_atts: Vec<(String, String)>,
    /// Conditions named by `Fn::If` (and `Condition` inside the Conditions block).
    pub conditions: Vec<String>,
    /// Literal mapping names of `Fn::FindInMap`.
    pub mappings: Vec<String>,
}

impl References {
    /// Every logical name referred to as a resource candidate (`Ref` and `GetAtt` targets).
    pub fn targets(&self) -> impl Iterator<Item = &str> {
        self.refs
            .iter()
            .map(String::as_str)
            .chain(self.get_atts.iter().map(|(r, _)| r.as_str()))
    }
}

/// Collects references. With `conditions`, only the taken branch of each `Fn::If` counts
/// (a resource whose condition is false may be named in a branch that is not taken).
/// `in_conditions_block` makes `{"Condition": "X"}` a condition reference.
pub fn collect(
    value: &Value,
    conditions: Option<&HashMap<String, bool>>,
    in_conditions_block: bool,
    out: &mut References,
) {
    match value {
        Value::Array(items) => {
            for item in items {
                collect(item, conditions, in_conditions_block, out);
            }
        }
        Value::Object(map) if map.len() == 1 => {
            let Some((key, arg)) = map.iter().next() else {
                return;
            };
            match (key.as_str(), arg) {
                ("Ref", Value::String(name)) => out.refs.push(name.clone()),
                ("Fn::GetAtt", Value::Array(parts)) if !parts.is_empty() => {
                    if let Some(resource) = parts[0].as_str() {
                        let attribute = parts
                            .get(1)
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        out.get_atts.push((resource.to_string(), attribute));
                    }
                    for part in &parts[1..] {
                        collect(part, conditions, in_conditions_block, out);
                    }
                }
                ("Fn::GetAtt", Value::String(s)) => {
                    let (r, a) = s.split_once('.').unwrap_or((s.as_str(), ""));
                    out.get_atts.push((r.to_string(), a.to_string()));
                }
                ("Fn::Sub", Value::String(s)) => sub_refs(s, &[], out),
                ("Fn::Sub", Value::Array(parts)) => {
                    let vars: Vec<&str> = parts
                        .get(1)
                        .and_then(Value::as_object)
                        .map(|m| m.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    if let Some(Value::String(s)) = parts.first() {
                        sub_refs(s, &vars, out);
                    } else if let Some(first) = parts.first() {
                        collect(first, conditions, in_conditions_block, out);
                    }
                    if let Some(v) = parts.get(1) {
                        collect(v, conditions, in_conditions_block, out);
                    }
                }
                ("Fn::If", Value::Array(parts)) if parts.len() == 3 => {
                    let name = parts[0].as_str();
                    if let Some(n) = name {
                        out.conditions.push(n.to_string());
                    }
                    match (name, conditions) {
                        (Some(n), Some(known)) if known.contains_key(n) => {
                            let branch = if known[n] { &parts[1] } else { &parts[2] };
                            collect(branch, conditions, in_conditions_block, out);
                        }
                        _ => {
                            collect(&parts[1], conditions, in_conditions_block, out);
                            collect(&parts[2], conditions, in_conditions_block, out);
                        }
                    }
                }
                ("Condition", Value::String(name)) if in_conditions_block => {
                    out.conditions.push(name.clone())
                }
                ("Fn::FindInMap", Value::Array(parts)) => {
                    if let Some(Value::String(m)) = parts.first() {
                        out.mappings.push(m.clone());
                    }
                    for part in parts {
                        collect(part, conditions, in_conditions_block, out);
                    }
                }
                (_, arg) => collect(arg, conditions, in_conditions_block, out),
            }
        }
        Value::Object(map) => {
            for v in map.values() {
                collect(v, conditions, in_conditions_block, out);
            }
        }
        _ => {}
    }
}

fn sub_refs(text: &str, local_vars: &[&str], out: &mut References) {
    for part in parse_sub(text) {
        if let SubPart::Variable(name) = part {
            if local_vars.contains(&name.as_str()) {
                continue;
            }
            match name.split_once('.') {
                Some((r, a)) if !name.starts_with("AWS::") => {
                    out.get_atts.push((r.to_string(), a.to_string()))
                }
                _ => out.refs.push(name),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sub_parsing() {
        assert_eq!(
            parse_sub("a${X}b${!Lit}c${R.Arn}"),
            vec![
                SubPart::Literal("a".into()),
                SubPart::Variable("X".into()),
                SubPart::Literal("b${Lit}c".into()),
                SubPart::Variable("R.Arn".into()),
            ]
        );
        assert_eq!(
            parse_sub("no vars ${"),
            vec![SubPart::Literal("no vars ${".into())]
        );
    }

    #[test]
    fn collects_everything() {
        let v = json!({
            "A": {"Ref": "P"},
            "B": {"Fn::GetAtt": ["R", "Arn"]},
            "C": {"Fn::Sub": ["${x}-${AWS::Region}-${Q.Url}", {"x": {"Ref": "S"}}]},
            "D": {"Fn::If": ["Cond", {"Ref": "T"}, {"Ref": "U"}]},
            "E": {"Fn::FindInMap": ["M", {"Ref": "P"}, "k"]},
            "F": {"Fn::GetAtt": "Z.Outputs.X"}
        });
        let mut r = References::default();
        collect(&v, None, false, &mut r);
        assert_eq!(r.refs, ["P", "AWS::Region", "S", "T", "U", "P"]);
        assert_eq!(
            r.get_atts,
            [
                ("R".into(), "Arn".into()),
                ("Q".into(), "Url".into()),
                ("Z".into(), "Outputs.X".into())
            ]
        );
        assert_eq!(r.conditions, ["Cond"]);
        assert_eq!(r.mappings, ["M"]);

        let known: HashMap<String, bool> = [("Cond".to_string(), false)].into_iter().collect();
        let mut r = References::default();
        collect(&v["D"], Some(&known), false, &mut r);
        assert_eq!(r.refs, ["U"]);
    }
}
