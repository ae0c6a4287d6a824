//! OpenAPI 3 and Swagger 2 documents (JSON or YAML) → the resources and methods of a REST API,
//! with their `x-amazon-apigateway-integration`s.
//!
//! What is read: `info.title` / `info.description` / `info.version`, `paths` with their
//! operations (`get`, `post`, ... and `x-amazon-apigateway-any-method` for `ANY`),
//! each operation's `operationId`, `parameters` (path, query and header ones become the
//! method's request parameters), `responses` (their status codes) and its integration, and
//! `x-amazon-apigateway-binary-media-types`. Everything else is ignored.

use std::collections::BTreeMap;

use kindling_model::ArnContext;
use serde_json::{Map, Value};

use crate::error::{ApigwError, Result};
use crate::rest_api::{IntegrationInput, Method, build_integration, check_media_type};
use crate::routing::PathTemplate;

/// Largest document accepted (API Gateway's import limit).
pub const MAX_DOCUMENT: usize = 6 * 1024 * 1024;

/// What a document defines.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    pub name: Option<String>,
    pub description: Option<String>,
    pub version: Option<String>,
    pub binary_media_types: Vec<String>,
    /// Paths in document order with their methods by name (`GET`, `ANY`...).
    pub paths: Vec<(String, BTreeMap<String, Method>)>,
    pub warnings: Vec<String>,
}

const OPERATIONS: &[(&str, &str)] = &[
    ("get", "GET"),
    ("post", "POST"),
    ("put", "PUT"),
    ("delete", "DELETE"),
    ("patch", "PATCH"),
    ("head", "HEAD"),
    ("options", "OPTIONS"),
    ("x-amazon-apigateway-any-method", "ANY"),
];

fn invalid(detail: impl std::fmt::Display) -> ApigwError {
    ApigwError::BadRequest(format!("Errors found during import:\n\t{detail}"))
}

/// Parses and checks a document.
pub fn parse(body: &[u8], ctx: &ArnContext, fail_on_warnings: bool) -> Result<Imported> {
    if body.len() > MAX_DOCUMENT {
        return Err(invalid(format!(
            "The API definition is larger than {MAX_DOCUMENT} bytes."
        )));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| invalid("The API definition is not UTF-8 text (JSON or YAML)."))?;
    if text.trim().is_empty() {
        return Err(invalid("The API definition is empty."));
    }
    let doc = kindling_cfn_template::parse_document(text).map_err(|e| {
        let msg = e.to_string();
        let msg = msg
            .strip_prefix("Template format error: ")
            .unwrap_or(&msg)
            .to_string();
        invalid(format!(
            "Unable to parse the API definition as JSON or YAML: {msg}"
        ))
    })?;
    from_value(&doc, ctx, fail_on_warnings)
}

fn version_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn from_value(
    doc: &Value,
    ctx: &ArnContext,
    fail_on_warnings: bool,
) -> Result<Imported> {
    let Some(root) = doc.as_object() else {
        return Err(invalid("The API definition must be an object."));
    };
    let swagger = root.get("swagger").and_then(version_text);
    let openapi = root.get("openapi").and_then(version_text);
    match (&swagger, &openapi) {
        (Some(s), None) if s == "2.0" || s == "2" => {}
        (None, Some(o)) if o.starts_with("3.") => {}
        (Some(s), None) => {
            return Err(invalid(format!(
                "Unsupported swagger version '{s}': Swagger 2.0 and OpenAPI 3.x are supported."
            )));
        }
        (None, Some(o)) => {
            return Err(invalid(format!(
                "Unsupported openapi version '{o}': Swagger 2.0 and OpenAPI 3.x are supported."
            )));
        }
        (None, None) => {
            return Err(invalid(
                "The document declares neither \"swagger\": \"2.0\" nor \"openapi\": \"3.x\".",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(invalid(
                "The document declares both \"swagger\" and \"openapi\".",
            ));
        }
    }
    let info = root.get("info").and_then(Value::as_object);
    let text = |k: &str| info.and_then(|i| i.get(k)).and_then(version_text);
    let mut out = Imported {
        name: text("title").filter(|t| !t.is_empty()),
        description: text("description"),
        version: text("version"),
        ..Imported::default()
    };
    if let Some(types) = root.get("x-amazon-apigateway-binary-media-types") {
        let list = types
            .as_array()
            .ok_or_else(|| invalid("x-amazon-apigateway-binary-media-types must be a list."))?;
        for t in list {
            let t = t.as_str().ok_or_else(|| {
                invalid("x-amazon-apigateway-binary-media-types must be a list of strings.")
            })?;
            check_media_type(t).map_err(|e| invalid(e.to_string()))?;
            out.binary_media_types.push(t.to_string());
        }
    }
    let paths = match root.get("paths") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(invalid("\"paths\" must be an object.")),
    };
    for (path, item) in &paths {
        PathTemplate::parse(path).map_err(|e| invalid(format!("Invalid path {path}: {e}")))?;
        let Some(item) = item.as_object() else {
            return Err(invalid(format!("Path {path} must be an object.")));
        };
        let mut methods = BTreeMap::new();
        for (key, op) in item {
            let Some((_, name)) = OPERATIONS.iter().find(|(k, _)| k == key) else {
                if key.starts_with("x-")
                    || matches!(
                        key.as_str(),
                        "parameters" | "summary" | "description" | "servers" | "$ref" | "trace"
                    )
                {
                    continue;
                }
                out.warnings
                    .push(format!("Ignored unknown key '{key}' at path {path}."));
                continue;
            };
            let where_ = format!(" for {name} {path}");
            methods.insert(
                (*name).to_string(),
                method(name, op, &where_, ctx, &mut out.warnings)?,
            );
        }
        out.paths.push((path.clone(), methods));
    }
    if fail_on_warnings && !out.warnings.is_empty() {
        return Err(invalid(out.warnings.join("\n\t")));
    }
    Ok(out)
}

fn method(
    name: &str,
    op: &Value,
    where_: &str,
    ctx: &ArnContext,
    warnings: &mut Vec<String>,
) -> Result<Method> {
    let Some(op) = op.as_object() else {
        return Err(invalid(format!("The operation{where_} must be an object.")));
    };
    let mut params = BTreeMap::new();
    for p in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(loc), Some(pname)) = (
            p.get("in").and_then(Value::as_str),
            p.get("name").and_then(Value::as_str),
        ) else {
            continue;
        };
        let loc = match loc {
            "path" => "path",
            "query" => "querystring",
            "header" => "header",
            _ => continue,
        };
        let required = p
            .get("required")
            .and_then(Value::as_bool)
            .unwrap_or(loc == "path");
        params.insert(format!("method.request.{loc}.{pname}"), required);
    }
    let responses = op.get("responses").and_then(Value::as_object).map(|r| {
        Value::Object(
            r.keys()
                .filter(|k| k.len() == 3 && k.bytes().all(|b| b.is_ascii_digit()))
                .map(|k| (k.clone(), serde_json::json!({ "statusCode": k })))
                .collect(),
        )
    });
    let integration = match op.get("x-amazon-apigateway-integration") {
        None => {
            warnings.push(format!("No x-amazon-apigateway-integration{where_}."));
            None
        }
        Some(i) => {
            let input: IntegrationInput = serde_json::from_value(i.clone()).map_err(|e| {
                invalid(format!(
                    "Malformed x-amazon-apigateway-integration{where_}: {e}"
                ))
            })?;
            let mut built =
                build_integration(input, ctx, where_).map_err(|e| invalid(e.to_string()))?;
            if let Some(r) = i.get("responses").and_then(Value::as_object) {
                built.integration_responses = Some(mock_responses(r));
            }
            Some(built)
        }
    };
    Ok(Method {
        http_method: name.to_string(),
        authorization_type: "NONE".into(),
        api_key_required: false,
        authorizer_id: None,
        operation_name: op
            .get("operationId")
            .and_then(Value::as_str)
            .map(str::to_string),
        request_parameters: (!params.is_empty()).then_some(params),
        request_models: None,
        method_responses: responses.filter(|r| r.as_object().is_some_and(|m| !m.is_empty())),
        method_integration: integration,
    })
}

/// An integration's `responses` (MOCK integrations answering CORS preflights) in the API's
/// `integrationResponses` shape: status code → response parameters.
fn mock_responses(r: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for (pattern, resp) in r {
        let status = resp
            .get("statusCode")
            .and_then(version_text)
            .unwrap_or_else(|| "200".into());
        out.insert(
            status.clone(),
            serde_json::json!({
                "statusCode": status,
                "selectionPattern": if pattern == "default" { Value::Null } else { Value::String(pattern.clone()) },
                "responseParameters": resp.get("responseParameters").cloned().unwrap_or(Value::Null),
                "responseTemplates": resp.get("responseTemplates").cloned().unwrap_or(Value::Null),
            }),
        );
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ArnContext {
        ArnContext::new("us-east-1", "000000000000")
    }

    const URI: &str = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:000000000000:function:Fn/invocations";

    #[test]
    fn swagger_yaml_with_proxy_and_any() {
        let yaml = format!(
            "swagger: \"2.0\"\ninfo:\n  title: pets\n  version: '1'\nx-amazon-apigateway-binary-media-types: ['image/png']\npaths:\n  /pets/{{id}}:\n    get:\n      operationId: getPet\n      parameters:\n        - name: id\n          in: path\n          required: true\n      responses:\n        '200': {{}}\n      x-amazon-apigateway-integration:\n        type: aws_proxy\n        httpMethod: POST\n        uri: {URI}\n  /{{proxy+}}:\n    x-amazon-apigateway-any-method:\n      x-amazon-apigateway-integration:\n        type: aws_proxy\n        httpMethod: POST\n        uri: {URI}\n"
        );
        let i = parse(yaml.as_bytes(), &ctx(), false).expect("parses");
        assert_eq!(i.name.as_deref(), Some("pets"));
        assert_eq!(i.binary_media_types, vec!["image/png"]);
        assert_eq!(i.paths.len(), 2);
        let get = &i.paths[0].1["GET"];
        assert_eq!(get.operation_name.as_deref(), Some("getPet"));
        let integ = get.method_integration.as_ref().expect("integration");
        assert_eq!(integ.kind, "AWS_PROXY");
        assert_eq!(integ.timeout_in_millis, 29_000);
        assert!(get.request_parameters.as_ref().expect("params")["method.request.path.id"]);
        assert!(i.paths[1].1.contains_key("ANY"));
    }

    #[test]
    fn openapi3_json() {
        let doc = serde_json::json!({
            "openapi": "3.0.1",
            "info": {"title": "t"},
            "paths": {"/": {"get": {"x-amazon-apigateway-integration": {"type": "AWS_PROXY", "uri": URI, "httpMethod": "POST"}}}}
        });
        let i = parse(doc.to_string().as_bytes(), &ctx(), false).expect("parses");
        assert_eq!(i.paths[0].0, "/");
    }

    #[test]
    fn bad_documents_are_explained() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("{", "Unable to parse"),
            ("[1]", "must be"),
            ("{\"info\": {}}", "neither"),
            ("{\"swagger\": \"1.2\"}", "Unsupported swagger version"),
            (
                "{\"openapi\": \"3.0.0\", \"paths\": []}",
                "\"paths\" must be an object",
            ),
            (
                "{\"openapi\": \"3.0.0\", \"paths\": {\"pets\": {}}}",
                "Invalid path pets",
            ),
            (
                "{\"openapi\": \"3.0.0\", \"paths\": {\"/{proxy+}/x\": {}}}",
                "greedy",
            ),
            (
                "{\"openapi\": \"3.0.0\", \"paths\": {\"/a\": {\"get\": {\"x-amazon-apigateway-integration\": {\"type\": \"aws_proxy\", \"uri\": \"nope\"}}}}}",
                "Invalid integration URI",
            ),
            (
                "{\"openapi\": \"3.0.0\", \"paths\": {\"/a\": {\"get\": {\"x-amazon-apigateway-integration\": {\"type\": \"http_proxy\", \"uri\": \"http://x\"}}}}}",
                "not supported",
            ),
            (
                "{\"openapi\": \"3.0.0\", \"paths\": {\"/a\": {\"get\": {\"x-amazon-apigateway-integration\": {\"type\": \"aws_proxy\", \"uri\": 5}}}}}",
                "Malformed x-amazon-apigateway-integration",
            ),
        ];
        for (doc, want) in cases {
            let err = parse(doc.as_bytes(), &ctx(), false)
                .expect_err(doc)
                .to_string();
            assert!(err.contains(want), "{doc}: {err}");
            assert!(err.starts_with("Errors found during import"), "{err}");
        }
        // A method without an integration is a warning: fatal only with failonwarnings.
        let doc = "{\"openapi\": \"3.0.0\", \"info\": {\"title\": \"t\"}, \"paths\": {\"/a\": {\"get\": {}}}}";
        assert_eq!(
            parse(doc.as_bytes(), &ctx(), false)
                .expect("lenient")
                .warnings
                .len(),
            1
        );
        assert!(parse(doc.as_bytes(), &ctx(), true).is_err());
    }
}
