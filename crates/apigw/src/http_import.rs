//! ImportApi and ReimportApi for HTTP APIs: an OpenAPI 3 document (JSON or YAML) → routes and
//! their `AWS_PROXY` integrations, the way SAM's `AWS::Serverless::HttpApi` and CloudFormation's
//! `AWS::ApiGatewayV2::Api` `Body` define them:
//! `x-amazon-apigateway-integration` (`type: aws_proxy`, `uri`, `payloadFormatVersion`,
//! `timeoutInMillis`) on each operation, `x-amazon-apigateway-any-method` for `ANY`, the path
//! `/$default` for the `$default` route, and `x-amazon-apigateway-cors` for the API's CORS.

use std::collections::BTreeMap;

use kindling_model::ArnContext;
use serde_json::Value;

use crate::error::{ApigwError, Result};
use crate::http_api::{Cors, HttpApiDoc, Integration, Route, parse_route_key};
use crate::openapi::{document, invalid};
use crate::service::{ApiGateway, Kind};
use crate::{ids, target};

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

/// What an OpenAPI 3 document defines for an HTTP API.
#[derive(Debug, Clone, Default)]
pub struct ImportedHttp {
    pub name: Option<String>,
    pub description: Option<String>,
    pub version: Option<String>,
    pub cors: Option<Cors>,
    pub routes: Vec<Route>,
    pub integrations: Vec<Integration>,
    pub warnings: Vec<String>,
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses and checks an OpenAPI 3 document for an HTTP API.
pub fn parse(body: &[u8], ctx: &ArnContext, fail_on_warnings: bool) -> Result<ImportedHttp> {
    let doc = document(body)?;
    let Some(root) = doc.as_object() else {
        return Err(invalid("The API definition must be an object."));
    };
    match text(root.get("openapi")) {
        Some(v) if v.starts_with("3.") => {}
        Some(v) => {
            return Err(invalid(format!(
                "Unsupported openapi version '{v}': HTTP APIs import OpenAPI 3.x."
            )));
        }
        None => {
            return Err(invalid(
                "HTTP APIs import OpenAPI 3.x: the document has no \"openapi\": \"3.x\".",
            ));
        }
    }
    let info = root.get("info");
    let mut out = ImportedHttp {
        name: text(info.and_then(|i| i.get("title"))).filter(|t| !t.is_empty()),
        description: text(info.and_then(|i| i.get("description"))),
        version: text(info.and_then(|i| i.get("version"))),
        ..ImportedHttp::default()
    };
    if let Some(c) = root.get("x-amazon-apigateway-cors") {
        out.cors = Some(
            serde_json::from_value(c.clone())
                .map_err(|e| invalid(format!("Malformed x-amazon-apigateway-cors: {e}")))?,
        );
    }
    let empty = serde_json::Map::new();
    let paths = match root.get("paths") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => return Err(invalid("\"paths\" must be an object.")),
    };
    // One integration per distinct target, as API Gateway's import makes them.
    let mut by_spec: BTreeMap<(String, String, i64), String> = BTreeMap::new();
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            return Err(invalid(format!("Path {path} must be an object.")));
        };
        for (key, op) in item {
            let Some((_, method)) = OPERATIONS.iter().find(|(k, _)| k == key) else {
                continue;
            };
            let route_key = if path == "/$default" {
                "$default".to_string()
            } else {
                format!("{method} {path}")
            };
            parse_route_key(&route_key)
                .map_err(|e| invalid(format!("Invalid path {path}: {e}")))?;
            if out.routes.iter().any(|r| r.route_key == route_key) {
                return Err(invalid(format!("Duplicate route {route_key}.")));
            }
            let target = match op.get("x-amazon-apigateway-integration") {
                None => {
                    out.warnings.push(format!(
                        "No x-amazon-apigateway-integration for {route_key}."
                    ));
                    None
                }
                Some(i) => {
                    let spec = integration_spec(i, ctx, &route_key)?;
                    let id = by_spec.entry(spec.clone()).or_insert_with(|| {
                        let id = ids::child_id();
                        out.integrations.push(Integration {
                            integration_id: id.clone(),
                            integration_type: "AWS_PROXY".into(),
                            integration_uri: Some(spec.0.clone()),
                            integration_method: Some("POST".into()),
                            payload_format_version: spec.1.clone(),
                            timeout_in_millis: spec.2,
                            connection_type: "INTERNET".into(),
                            description: None,
                            credentials_arn: text(i.get("credentials")),
                            request_parameters: None,
                            response_parameters: None,
                            api_gateway_managed: false,
                        });
                        id
                    });
                    Some(format!("integrations/{id}"))
                }
            };
            out.routes.push(Route {
                route_id: ids::child_id(),
                route_key,
                target,
                authorization_type: "NONE".into(),
                api_key_required: false,
                authorizer_id: None,
                authorization_scopes: None,
                operation_name: text(op.get("operationId")),
                request_parameters: None,
                request_models: None,
                api_gateway_managed: false,
            });
        }
    }
    if fail_on_warnings && !out.warnings.is_empty() {
        return Err(invalid(out.warnings.join("\n\t")));
    }
    Ok(out)
}

/// (uri, payload format version, timeout) of one operation's integration.
fn integration_spec(i: &Value, ctx: &ArnContext, route: &str) -> Result<(String, String, i64)> {
    let kind = text(i.get("type")).unwrap_or_default().to_ascii_uppercase();
    if kind != "AWS_PROXY" {
        return Err(invalid(format!(
            "Kindling imports aws_proxy integrations to Lambda functions; type '{kind}' for {route} is not supported."
        )));
    }
    let uri = text(i.get("uri"))
        .ok_or_else(|| invalid(format!("The integration for {route} has no uri.")))?;
    target::parse(&uri, ctx).map_err(|e| invalid(format!("{e} (route {route})")))?;
    let version = text(i.get("payloadFormatVersion")).unwrap_or_else(|| "2.0".into());
    if version != "1.0" && version != "2.0" {
        return Err(invalid(format!(
            "Invalid payloadFormatVersion '{version}' for {route}: must be 1.0 or 2.0."
        )));
    }
    let timeout = match i.get("timeoutInMillis") {
        None => 30_000,
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .filter(|t| crate::http_api::TIMEOUT_RANGE.contains(t))
            .ok_or_else(|| {
                invalid(format!(
                    "Invalid timeoutInMillis for {route}: between 50 and 30000."
                ))
            })?,
    };
    Ok((uri, version, timeout))
}

impl ApiGateway {
    /// ImportApi: a new HTTP API from an OpenAPI 3 document (no stage: create one).
    pub fn import_http_api(&self, body: &[u8], fail_on_warnings: bool) -> Result<HttpApiDoc> {
        let imported = parse(body, self.arn(), fail_on_warnings)?;
        let name = imported
            .name
            .clone()
            .ok_or_else(|| invalid("the document has no info.title to name the API."))?;
        let mut doc = self.create_http_api(crate::http_api::ApiInput {
            name: Some(name),
            protocol_type: Some("HTTP".into()),
            description: imported.description.clone(),
            version: imported.version.clone(),
            cors_configuration: imported.cors.clone(),
            ..Default::default()
        })?;
        let api_id = doc.api.api_id.clone();
        doc = self.reimport(&api_id, imported)?;
        Ok(doc)
    }

    /// ReimportApi: the document's routes and integrations replace the API's.
    pub fn reimport_http_api(
        &self,
        api_id: &str,
        body: &[u8],
        fail_on_warnings: bool,
    ) -> Result<HttpApiDoc> {
        let imported = parse(body, self.arn(), fail_on_warnings)?;
        self.reimport(api_id, imported)
    }

    fn reimport(&self, api_id: &str, imported: ImportedHttp) -> Result<HttpApiDoc> {
        self.update(api_id, Kind::Http, |doc: &mut HttpApiDoc| {
            if let Some(n) = &imported.name {
                doc.api.name.clone_from(n);
            }
            if imported.description.is_some() {
                doc.api.description.clone_from(&imported.description);
            }
            if imported.version.is_some() {
                doc.api.version.clone_from(&imported.version);
            }
            if imported.cors.is_some() {
                doc.api.cors_configuration.clone_from(&imported.cors);
            }
            doc.routes.clone_from(&imported.routes);
            doc.integrations.clone_from(&imported.integrations);
            doc.changed();
            Ok::<HttpApiDoc, ApigwError>(doc.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sam_http_api_body() {
        let ctx = ArnContext::new("us-east-1", "000000000000");
        let uri = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:000000000000:function:Fn/invocations";
        let yaml = format!(
            "openapi: 3.0.1\ninfo: {{title: sam, version: '1.0'}}\nx-amazon-apigateway-cors: {{allowOrigins: ['*']}}\npaths:\n  /pets/{{id}}:\n    get:\n      x-amazon-apigateway-integration: {{type: aws_proxy, httpMethod: POST, uri: '{uri}', payloadFormatVersion: '2.0'}}\n  /$default:\n    x-amazon-apigateway-any-method:\n      isDefaultRoute: true\n      x-amazon-apigateway-integration: {{type: aws_proxy, httpMethod: POST, uri: '{uri}', payloadFormatVersion: 1.0}}\n"
        );
        let i = parse(yaml.as_bytes(), &ctx, false).expect("parses");
        let keys: Vec<&str> = i.routes.iter().map(|r| r.route_key.as_str()).collect();
        assert_eq!(keys, vec!["GET /pets/{id}", "$default"]);
        assert_eq!(i.integrations.len(), 2);
        assert_eq!(i.integrations[1].payload_format_version, "1.0");
        assert!(i.cors.is_some());
        assert!(parse(b"swagger: '2.0'\n", &ctx, false).is_err());
        assert!(
            parse(
                b"openapi: 3.0.1\npaths:\n  /a:\n    get:\n      x-amazon-apigateway-integration: {type: http_proxy, uri: 'http://x'}\n",
                &ctx,
                false
            )
            .is_err()
        );
    }
}
