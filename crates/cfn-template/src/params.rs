//! Parameter declarations, the values given for them and CloudFormation's checks.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::error::{ParameterError, Result};

/// What `NoEcho` parameters show in describe calls.
pub const MASKED_VALUE: &str = "****";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParameterType {
    String,
    Number,
    /// `List<Number>`
    NumberList,
    CommaDelimitedList,
    /// `AWS::EC2::Subnet::Id` and the like: validated as strings here.
    AwsSpecific(String),
    /// `List<AWS::EC2::Subnet::Id>` and the like.
    AwsSpecificList(String),
    /// `AWS::SSM::Parameter::Value<...>` / `AWS::SSM::Parameter::Name`: needs an SSM store.
    Ssm(String),
}

impl ParameterType {
    fn parse(type_name: &str) -> Result<Self, ParameterError> {
        Ok(match type_name {
            "String" => Self::String,
            "Number" => Self::Number,
            "List<Number>" => Self::NumberList,
            "CommaDelimitedList" => Self::CommaDelimitedList,
            t if t.starts_with("AWS::SSM::Parameter::") => Self::Ssm(t.to_string()),
            t if t.starts_with("List<AWS::") && t.ends_with('>') => {
                Self::AwsSpecificList(t.to_string())
            }
            t if t.starts_with("AWS::") => Self::AwsSpecific(t.to_string()),
            t => {
                return Err(ParameterError::UnrecognizedType {
                    type_name: t.to_string(),
                });
            }
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Self::String => "String",
            Self::Number => "Number",
            Self::NumberList => "List<Number>",
            Self::CommaDelimitedList => "CommaDelimitedList",
            Self::AwsSpecific(t) | Self::AwsSpecificList(t) | Self::Ssm(t) => t,
        }
    }

    pub fn is_list(&self) -> bool {
        matches!(
            self,
            Self::NumberList | Self::CommaDelimitedList | Self::AwsSpecificList(_)
        )
    }
}

/// One entry of `Parameters`.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterDecl {
    pub parameter_type: ParameterType,
    pub default: Option<String>,
    pub allowed_values: Vec<String>,
    pub allowed_pattern: Option<String>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub min_value: Option<f64>,
    pub max_value: Option<f64>,
    pub no_echo: bool,
    pub description: Option<String>,
    pub constraint_description: Option<String>,
}

const PARAMETER_PROPERTIES: &[&str] = &[
    "Type",
    "Default",
    "AllowedValues",
    "AllowedPattern",
    "MinLength",
    "MaxLength",
    "MinValue",
    "MaxValue",
    "NoEcho",
    "Description",
    "ConstraintDescription",
];

/// A scalar as CloudFormation's string form (`2` → "2", `true` → "true").
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl ParameterDecl {
    pub(crate) fn parse(name: &str, raw: &Value) -> Result<Self> {
        let invalid = |problem: &str| ParameterError::Invalid {
            name: name.to_string(),
            problem: problem.to_string(),
        };
        let map: &Map<String, Value> = raw
            .as_object()
            .ok_or_else(|| invalid("must be an object"))?;
        if let Some(bad) = map
            .keys()
            .find(|k| !PARAMETER_PROPERTIES.contains(&k.as_str()))
        {
            return Err(ParameterError::UnknownProperty {
                name: name.to_string(),
                property: bad.clone(),
            }
            .into());
        }
        let type_name =
            map.get("Type")
                .and_then(Value::as_str)
                .ok_or_else(|| ParameterError::MissingType {
                    name: name.to_string(),
                })?;
        let parameter_type = ParameterType::parse(type_name)?;
        let default = match map.get("Default") {
            None => None,
            Some(Value::Array(items)) if parameter_type.is_list() => Some(
                items
                    .iter()
                    .map(scalar_text)
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| invalid("has an invalid Default"))?
                    .join(","),
            ),
            Some(v) => Some(scalar_text(v).ok_or_else(|| invalid("has an invalid Default"))?),
        };
        let allowed_values = match map.get("AllowedValues") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(scalar_text)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid("has invalid AllowedValues"))?,
            Some(_) => return Err(invalid("AllowedValues must be a list").into()),
        };
        let text = |key: &str| -> Result<Option<String>> {
            map.get(key).map_or(Ok(None), |v| {
                scalar_text(v)
                    .map(Some)
                    .ok_or_else(|| invalid(&format!("{key} must be a string")).into())
            })
        };
        let number = |key: &str| -> Result<Option<f64>> {
            map.get(key).map_or(Ok(None), |v| {
                scalar_text(v)
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .map(Some)
                    .ok_or_else(|| invalid(&format!("{key} must be a number")).into())
            })
        };
        let length = |key: &str| -> Result<Option<u64>> {
            Ok(number(key)?.map(|f| if f < 0.0 { 0 } else { f as u64 }))
        };
        let no_echo = match map.get("NoEcho") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            Some(_) => return Err(invalid("NoEcho must be a boolean").into()),
        };
        let allowed_pattern = text("AllowedPattern")?;
        if let Some(p) = &allowed_pattern {
            compile_pattern(p).map_err(|_| {
                invalid("has an AllowedPattern that is not a valid regular expression")
            })?;
        }
        Ok(Self {
            parameter_type,
            default,
            allowed_values,
            allowed_pattern,
            min_length: length("MinLength")?,
            max_length: length("MaxLength")?,
            min_value: number("MinValue")?,
            max_value: number("MaxValue")?,
            no_echo,
            description: text("Description")?,
            constraint_description: text("ConstraintDescription")?,
        })
    }

    /// Checks a value against the declaration's type and constraints.
    pub fn check(&self, name: &str, value: &str) -> Result<ParameterValue, ParameterError> {
        let fail = |problem: String| {
            let problem = match &self.constraint_description {
                Some(desc) => format!("failed to satisfy constraint: {desc}"),
                None => problem,
            };
            ParameterError::Invalid {
                name: name.to_string(),
                problem,
            }
        };
        match &self.parameter_type {
            ParameterType::Ssm(t) => {
                return Err(ParameterError::UnsupportedType {
                    name: name.to_string(),
                    type_name: t.clone(),
                });
            }
            ParameterType::Number => {
                let n = value
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| ParameterError::Invalid {
                        name: name.to_string(),
                        problem: "must be a number".to_string(),
                    })?;
                self.check_number(n, fail)?;
            }
            ParameterType::NumberList => {
                for item in split_list(value) {
                    let n = item.parse::<f64>().map_err(|_| ParameterError::Invalid {
                        name: name.to_string(),
                        problem: "must be a list of numbers".to_string(),
                    })?;
                    self.check_number(n, fail)?;
                }
            }
            _ => {}
        }
        let items: Vec<String> = if self.parameter_type.is_list() {
            split_list(value)
        } else {
            vec![value.to_string()]
        };
        for item in &items {
            if !self.allowed_values.is_empty() && !self.allowed_values.iter().any(|a| a == item) {
                return Err(fail("must be one of AllowedValues".to_string()));
            }
            if let Some(pattern) = &self.allowed_pattern {
                let re = compile_pattern(pattern)
                    .map_err(|_| fail(format!("must match pattern {pattern}")))?;
                if !re.is_match(item) {
                    return Err(fail(format!("must match pattern {pattern}")));
                }
            }
            let len = item.chars().count() as u64;
            if let Some(min) = self.min_length
                && len < min
            {
                return Err(fail(format!("must contain at least {min} characters")));
            }
            if let Some(max) = self.max_length
                && len > max
            {
                return Err(fail(format!("must contain at most {max} characters")));
            }
        }
        Ok(if self.parameter_type.is_list() {
            ParameterValue::List(items)
        } else {
            ParameterValue::String(value.to_string())
        })
    }

    fn check_number(
        &self,
        n: f64,
        fail: impl Fn(String) -> ParameterError,
    ) -> Result<(), ParameterError> {
        if let Some(min) = self.min_value
            && n < min
        {
            return Err(fail(format!(
                "must be a number not less than {}",
                fmt_num(min)
            )));
        }
        if let Some(max) = self.max_value
            && n > max
        {
            return Err(fail(format!(
                "must be a number not greater than {}",
                fmt_num(max)
            )));
        }
        Ok(())
    }
}

fn fmt_num(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

fn compile_pattern(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
}

/// Splits a list parameter's text on commas, trimming each member.
pub fn split_list(value: &str) -> Vec<String> {
    if value.is_empty() {
        return Vec::new();
    }
    value.split(',').map(|s| s.trim().to_string()).collect()
}

/// A parameter's value as `Ref` sees it: list types are lists of strings, everything else a
/// string (`Ref` of a `Number` parameter is a string too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParameterValue {
    String(String),
    List(Vec<String>),
}

impl ParameterValue {
    pub fn to_value(&self) -> Value {
        match self {
            Self::String(s) => Value::String(s.clone()),
            Self::List(items) => Value::Array(items.iter().cloned().map(Value::String).collect()),
        }
    }
}

/// A value given in `Parameters` of CreateStack/UpdateStack/CreateChangeSet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParameterInput {
    pub key: String,
    pub value: Option<String>,
    pub use_previous_value: bool,
}

/// One resolved parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedParameter {
    /// The text given or defaulted (what `DescribeStacks` stores).
    pub raw: String,
    pub value: ParameterValue,
    pub no_echo: bool,
}

impl ResolvedParameter {
    /// The value describe calls show (`****` for `NoEcho`).
    pub fn display_value(&self) -> &str {
        if self.no_echo {
            MASKED_VALUE
        } else {
            &self.raw
        }
    }
}

/// Every parameter of a template with its value, in declaration order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedParameters {
    pub values: IndexMap<String, ResolvedParameter>,
}

impl ResolvedParameters {
    pub fn get(&self, name: &str) -> Option<&ResolvedParameter> {
        self.values.get(name)
    }

    /// `(key, raw)` pairs to remember for `UsePreviousValue` on the next update.
    pub fn raw_values(&self) -> IndexMap<String, String> {
        self.values
            .iter()
            .map(|(k, v)| (k.clone(), v.raw.clone()))
            .collect()
    }
}

/// Resolves the parameters of a template: given values, else previous values (when
/// `UsePreviousValue`), else defaults; then checks every constraint.
pub fn resolve_parameters(
    declarations: &IndexMap<String, ParameterDecl>,
    inputs: &[ParameterInput],
    previous: Option<&IndexMap<String, String>>,
) -> Result<ResolvedParameters> {
    let unknown: Vec<String> = inputs
        .iter()
        .filter(|i| !declarations.contains_key(&i.key))
        .map(|i| i.key.clone())
        .collect();
    if !unknown.is_empty() {
        return Err(ParameterError::Unknown(unknown).into());
    }
    let mut missing = Vec::new();
    let mut values = IndexMap::new();
    for (name, decl) in declarations {
        let input = inputs.iter().rev().find(|i| &i.key == name);
        let raw = match input {
            Some(ParameterInput {
                use_previous_value: true,
                ..
            }) => {
                match previous.and_then(|p| p.get(name)) {
                    Some(v) => Some(v.clone()),
                    None => {
                        return Err(ParameterError::Invalid {
                        name: name.clone(),
                        problem: "cannot use UsePreviousValue: the stack has no previous value for it".to_string(),
                    }
                    .into());
                    }
                }
            }
            Some(ParameterInput { value: Some(v), .. }) => Some(v.clone()),
            _ => decl.default.clone(),
        };
        let Some(raw) = raw else {
            missing.push(name.clone());
            continue;
        };
        let value = decl.check(name, &raw)?;
        values.insert(
            name.clone(),
            ResolvedParameter {
                raw,
                value,
                no_echo: decl.no_echo,
            },
        );
    }
    if !missing.is_empty() {
        return Err(ParameterError::MissingValues(missing).into());
    }
    Ok(ResolvedParameters { values })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decls(v: Value) -> IndexMap<String, ParameterDecl> {
        v.as_object()
            .expect("object")
            .iter()
            .map(|(k, d)| (k.clone(), ParameterDecl::parse(k, d).expect("decl")))
            .collect()
    }

    fn input(key: &str, value: &str) -> ParameterInput {
        ParameterInput {
            key: key.into(),
            value: Some(value.into()),
            use_previous_value: false,
        }
    }

    fn err(d: &IndexMap<String, ParameterDecl>, inputs: &[ParameterInput]) -> String {
        resolve_parameters(d, inputs, None)
            .expect_err("invalid")
            .to_string()
    }

    #[test]
    fn defaults_overrides_and_types() {
        let d = decls(json!({
            "Env": {"Type": "String", "Default": "dev"},
            "Count": {"Type": "Number", "Default": 2},
            "Subnets": {"Type": "CommaDelimitedList", "Default": "a, b ,c"},
            "Ports": {"Type": "List<Number>", "Default": "80,443"},
            "Vpc": {"Type": "AWS::EC2::VPC::Id", "Default": "vpc-1"},
            "Secret": {"Type": "String", "NoEcho": true, "Default": "s3cr3t"}
        }));
        let r = resolve_parameters(&d, &[input("Env", "prod")], None).expect("valid");
        assert_eq!(
            r.get("Env").map(|p| p.value.to_value()),
            Some(json!("prod"))
        );
        assert_eq!(r.get("Count").map(|p| p.value.to_value()), Some(json!("2")));
        assert_eq!(
            r.get("Subnets").map(|p| p.value.to_value()),
            Some(json!(["a", "b", "c"]))
        );
        assert_eq!(
            r.get("Ports").map(|p| p.value.to_value()),
            Some(json!(["80", "443"]))
        );
        assert_eq!(
            r.get("Vpc").map(|p| p.value.to_value()),
            Some(json!("vpc-1"))
        );
        assert_eq!(
            r.get("Secret").map(ResolvedParameter::display_value),
            Some(MASKED_VALUE)
        );
    }

    #[test]
    fn constraint_messages() {
        let d = decls(json!({
            "Env": {"Type": "String", "AllowedValues": ["dev", "prod"]},
            "Name": {"Type": "String", "AllowedPattern": "[a-z]+", "MinLength": 2, "MaxLength": 4, "Default": "ab"},
            "Count": {"Type": "Number", "MinValue": 1, "MaxValue": 5, "Default": 2},
            "Desc": {"Type": "String", "AllowedPattern": "[0-9]+", "ConstraintDescription": "digits only", "Default": "1"}
        }));
        assert_eq!(err(&d, &[]), "Parameters: [Env] must have values");
        assert_eq!(
            err(&d, &[input("Env", "qa")]),
            "Parameter 'Env' must be one of AllowedValues"
        );
        assert_eq!(
            err(&d, &[input("Env", "dev"), input("Name", "AB")]),
            "Parameter 'Name' must match pattern [a-z]+"
        );
        assert_eq!(
            err(&d, &[input("Env", "dev"), input("Name", "a")]),
            "Parameter 'Name' must contain at least 2 characters"
        );
        assert_eq!(
            err(&d, &[input("Env", "dev"), input("Name", "abcde")]),
            "Parameter 'Name' must contain at most 4 characters"
        );
        assert_eq!(
            err(&d, &[input("Env", "dev"), input("Count", "x")]),
            "Parameter 'Count' must be a number"
        );
        assert_eq!(
            err(&d, &[input("Env", "dev"), input("Count", "0")]),
            "Parameter 'Count' must be a number not less than 1"
        );
        assert_eq!(
            err(&d, &[input("Env", "dev"), input("Count", "6")]),
            "Parameter 'Count' must be a number not greater than 5"
        );
        assert_eq!(
            err(&d, &[input("Env", "dev"), input("Desc", "x")]),
            "Parameter 'Desc' failed to satisfy constraint: digits only"
        );
        assert_eq!(
            err(&d, &[input("Nope", "x")]),
            "Parameters: [Nope] do not exist in the template"
        );
    }

    #[test]
    fn use_previous_value_and_unsupported_types() {
        let d = decls(json!({"Env": {"Type": "String"}}));
        let prev: IndexMap<String, String> = [("Env".to_string(), "old".to_string())]
            .into_iter()
            .collect();
        let keep = ParameterInput {
            key: "Env".into(),
            value: None,
            use_previous_value: true,
        };
        let r = resolve_parameters(&d, std::slice::from_ref(&keep), Some(&prev)).expect("previous");
        assert_eq!(r.get("Env").map(|p| p.raw.as_str()), Some("old"));
        assert!(resolve_parameters(&d, &[keep], None).is_err());

        let d =
            decls(json!({"P": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/a"}}));
        assert!(err(&d, &[]).contains("not supported by Kindling"));
        let bad = ParameterDecl::parse("P", &json!({"Type": "Strin"})).expect_err("bad type");
        assert_eq!(
            bad.to_string(),
            "Template format error: Unrecognized parameter type: Strin"
        );
    }
}
