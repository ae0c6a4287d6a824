//! `Globals`: properties shared by every serverless resource of a type.

use serde_json::{Map, Value};

use super::{Invalid, Translated, is_intrinsic};

const FUNCTION: &[&str] = &[
    "Handler",
    "Runtime",
    "CodeUri",
    "DeadLetterQueue",
    "Description",
    "MemorySize",
    "Timeout",
    "VpcConfig",
    "Environment",
    "Tags",
    "PropagateTags",
    "Tracing",
    "KmsKeyArn",
    "AutoPublishAlias",
    "AutoPublishAliasAllProperties",
    "Layers",
    "DeploymentPreference",
    "RolePath",
    "PermissionsBoundary",
    "ReservedConcurrentExecutions",
    "ProvisionedConcurrencyConfig",
    "AssumeRolePolicyDocument",
    "EventInvokeConfig",
    "FileSystemConfigs",
    "CodeSigningConfigArn",
    "Architectures",
    "SnapStart",
    "EphemeralStorage",
    "FunctionUrlConfig",
    "RuntimeManagementConfig",
    "LoggingConfig",
    "RecursiveLoop",
    "SourceKMSKeyArn",
    "AutoPublishCodeSha256",
];
const API: &[&str] = &[
    "Auth",
    "Name",
    "DefinitionUri",
    "CacheClusterEnabled",
    "CacheClusterSize",
    "MergeDefinitions",
    "Variables",
    "EndpointConfiguration",
    "MethodSettings",
    "BinaryMediaTypes",
    "MinimumCompressionSize",
    "Cors",
    "GatewayResponses",
    "AccessLogSetting",
    "CanarySetting",
    "TracingEnabled",
    "OpenApiVersion",
    "Domain",
    "AlwaysDeploy",
    "PropagateTags",
];
const HTTP_API: &[&str] = &[
    "Auth",
    "AccessLogSettings",
    "StageVariables",
    "Tags",
    "CorsConfiguration",
    "DefaultRouteSettings",
    "Domain",
    "RouteSettings",
    "FailOnWarnings",
    "PropagateTags",
];

/// The parsed `Globals` section.
#[derive(Debug, Default)]
pub(crate) struct Globals {
    function: Map<String, Value>,
    api: Map<String, Value>,
    http_api: Map<String, Value>,
}

impl Globals {
    pub(crate) fn parse(section: Option<&Value>) -> Translated<Self> {
        let Some(section) = section else {
            return Ok(Self::default());
        };
        let map = section.as_object().ok_or_else(|| {
            Invalid::from("'Globals' section is invalid. 'Globals' must be a dictionary.")
        })?;
        let mut g = Self::default();
        for (kind, props) in map {
            let (allowed, slot) = match kind.as_str() {
                "Function" => (FUNCTION, &mut g.function),
                "Api" => (API, &mut g.api),
                "HttpApi" => (HTTP_API, &mut g.http_api),
                other => {
                    return Err(format!(
                        "'Globals' section is invalid. '{other}' is not supported by Kindling's SAM transform. Must be one of the following values - [Function, Api, HttpApi]"
                    )
                    .into());
                }
            };
            let props = props.as_object().ok_or_else(|| {
                Invalid::from(format!(
                    "'Globals' section is invalid. '{kind}' must be a dictionary."
                ))
            })?;
            for (name, value) in props {
                if !allowed.contains(&name.as_str()) {
                    return Err(format!(
                        "'Globals' section is invalid. '{name}' is not a supported property of '{kind}'. Must be one of the following values - [{}]",
                        allowed.join(", ")
                    )
                    .into());
                }
                slot.insert(name.clone(), value.clone());
            }
        }
        Ok(g)
    }

    pub(crate) fn api(&self) -> &Map<String, Value> {
        &self.api
    }

    /// A serverless resource's properties with the globals of its type merged in.
    pub(crate) fn apply(
        &self,
        resource_type: &str,
        resource: &Map<String, Value>,
    ) -> Translated<Map<String, Value>> {
        let globals = match resource_type {
            "AWS::Serverless::Function" => &self.function,
            "AWS::Serverless::Api" => &self.api,
            "AWS::Serverless::HttpApi" => &self.http_api,
            _ => return Ok(resource.clone()),
        };
        let ignore = match resource.get("IgnoreGlobals") {
            None => Vec::new(),
            Some(Value::String(s)) if s == "*" => globals.keys().cloned().collect(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Some(_) => {
                return Err("'IgnoreGlobals' must be '*' or a list of property names.".into());
            }
        };
        let mut out = resource.clone();
        out.remove("IgnoreGlobals");
        let mut props = match resource.get("Properties") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(p)) => p.clone(),
            Some(_) => return Err("'Properties' must be a dictionary.".into()),
        };
        for (name, global) in globals {
            if ignore.contains(name) {
                continue;
            }
            let merged = match props.get(name) {
                Some(local) => merge(global, local),
                None => global.clone(),
            };
            props.insert(name.clone(), merged);
        }
        out.insert("Properties".to_string(), Value::Object(props));
        Ok(out)
    }
}

/// Global and local values: maps merge (local keys win), lists concatenate (global first),
/// anything else (including intrinsic functions and type mismatches) takes the local value.
pub(crate) fn merge(global: &Value, local: &Value) -> Value {
    if is_intrinsic(global) || is_intrinsic(local) {
        return local.clone();
    }
    match (global, local) {
        (Value::Object(g), Value::Object(l)) => {
            let mut out = g.clone();
            for (k, lv) in l {
                let v = match g.get(k) {
                    Some(gv) => merge(gv, lv),
                    None => lv.clone(),
                };
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        (Value::Array(g), Value::Array(l)) => {
            Value::Array(g.iter().chain(l.iter()).cloned().collect())
        }
        _ => local.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_rules() {
        assert_eq!(merge(&json!(1), &json!(2)), json!(2));
        assert_eq!(
            merge(
                &json!({"a": 1, "b": {"c": 1}}),
                &json!({"b": {"d": 2}, "e": 3})
            ),
            json!({"a": 1, "b": {"c": 1, "d": 2}, "e": 3})
        );
        assert_eq!(merge(&json!(["a"]), &json!(["b"])), json!(["a", "b"]));
        assert_eq!(
            merge(&json!({"a": 1}), &json!({"Ref": "X"})),
            json!({"Ref": "X"})
        );
        assert_eq!(merge(&json!({"a": 1}), &json!("s")), json!("s"));
    }

    #[test]
    fn unsupported_globals_are_named() {
        let err = Globals::parse(Some(&json!({"Function": {"Events": {}}})))
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        assert!(
            err.contains("'Events' is not a supported property of 'Function'"),
            "{err}"
        );
        let err = Globals::parse(Some(&json!({"StateMachine": {}})))
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        assert!(err.contains("'StateMachine' is not supported"), "{err}");
    }

    #[test]
    fn ignore_globals() {
        let g = Globals::parse(Some(
            &json!({"Function": {"Timeout": 3, "MemorySize": 128}}),
        ))
        .ok()
        .unwrap_or_default();
        let r = json!({"Type": "AWS::Serverless::Function", "IgnoreGlobals": ["Timeout"], "Properties": {}});
        let out = g
            .apply("AWS::Serverless::Function", r.as_object().expect("map"))
            .ok()
            .unwrap_or_default();
        assert_eq!(out["Properties"], json!({"MemorySize": 128}));
        assert!(!out.contains_key("IgnoreGlobals"));
    }
}
