//! API Gateway resources over Kindling's API Gateway domain, called in-process: HTTP APIs
//! (`AWS::ApiGatewayV2::Api/Stage/Route/Integration/Deployment`) and REST APIs
//! (`AWS::ApiGateway::RestApi/Resource/Method/Deployment/Stage`), including OpenAPI bodies
//! (`Body`, `BodyS3Location`: what SAM generates for implicit and explicit APIs).
//!
//! `Ref` and `Fn::GetAtt` are CloudFormation's: an API's id (`ApiId`, `RestApiId`,
//! `RootResourceId`), a stage's name, a route's, integration's, deployment's or resource's id.
//! `ApiEndpoint` is the URL Kindling serves the API at (the DNS-free path form
//! `http://<host:port>/execute-api/<api-id>`, as Kindling's GetApi shows it); the host form
//! `<api-id>.execute-api.<region>.amazonaws.com` reaches the same API when a request's `Host`
//! says so.

use std::collections::BTreeMap;
use std::sync::Arc;

use kindling_apigw::ApiGateway;
use kindling_apigw::error::ApigwError;
use kindling_apigw::http_api as v2;
use kindling_apigw::rest_api as v1;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::props::{document, required, string, tags, text};
use super::{Kindling, Outcome, blocking, generated};
use crate::provider::{ProvisionError, Provisioned, ResourceContext};

fn service(k: &Kindling) -> Result<Arc<ApiGateway>, ProvisionError> {
    k.apigw
        .clone()
        .ok_or_else(|| ProvisionError::new("this Kindling serves no API Gateway"))
}

fn fail(e: ApigwError) -> ProvisionError {
    ProvisionError::new(e.to_string())
}

/// Runs a domain call on the blocking pool.
async fn call<T: Send + 'static>(
    k: &Kindling,
    f: impl FnOnce(&ApiGateway) -> Result<T, ApigwError> + Send + 'static,
) -> Result<T, ProvisionError> {
    let svc = service(k)?;
    blocking(move || f(&svc).map_err(fail)).await
}

/// A delete that finds the thing gone already succeeds.
async fn delete_call(
    k: &Kindling,
    what: &str,
    f: impl FnOnce(&ApiGateway) -> Result<(), ApigwError> + Send + 'static,
) -> Result<(), ProvisionError> {
    let svc = service(k)?;
    let what = what.to_string();
    blocking(move || match f(&svc) {
        Ok(()) => Ok(()),
        Err(ApigwError::NotFound(_)) => {
            tracing::debug!(what, "already deleted");
            Ok(())
        }
        Err(e) => Err(fail(e)),
    })
    .await
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_lowercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// CloudFormation's properties as the wire's camelCase input: top-level keys (and the keys
/// of the `nested` objects) lower-cased at their first letter; `ints` and `bools` accepted as
/// text too; `skip` left out (handled by the caller).
fn wire_input<T: DeserializeOwned>(
    props: &Map<String, Value>,
    nested: &[&str],
    ints: &[&str],
    bools: &[&str],
    skip: &[&str],
) -> Result<T, ProvisionError> {
    fn coerce(key: &str, v: &Value, ints: &[&str], bools: &[&str]) -> Value {
        match v {
            Value::String(s) if ints.contains(&key) => {
                s.trim().parse::<i64>().map_or(v.clone(), Value::from)
            }
            Value::String(s) if bools.contains(&key) => match s.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => v.clone(),
            },
            _ => v.clone(),
        }
    }
    let mut out = Map::new();
    for (key, value) in props {
        if skip.contains(&key.as_str()) {
            continue;
        }
        let value = match value {
            Value::Object(inner) if nested.contains(&key.as_str()) => Value::Object(
                inner
                    .iter()
                    .map(|(k, v)| (lower_first(k), coerce(k, v, ints, bools)))
                    .collect(),
            ),
            other => coerce(key, other, ints, bools),
        };
        out.insert(lower_first(key), value);
    }
    serde_json::from_value(Value::Object(out))
        .map_err(|e| ProvisionError::new(format!("Properties validation failed: {e}")))
}

fn string_map(props: &Map<String, Value>, key: &str) -> Option<BTreeMap<String, String>> {
    props.get(key).and_then(Value::as_object).map(|m| {
        m.iter()
            .filter_map(|(k, v)| text(v).map(|v| (k.clone(), v)))
            .collect()
    })
}

/// The OpenAPI document of `Body` (object or text) or `BodyS3Location`, if any.
async fn body(k: &Kindling, props: &Map<String, Value>) -> Result<Option<Vec<u8>>, ProvisionError> {
    if let Some(b) = props.get("Body") {
        return Ok(Some(document(b).into_bytes()));
    }
    let Some(loc) = props.get("BodyS3Location") else {
        return Ok(None);
    };
    let bucket = loc
        .get("Bucket")
        .and_then(text)
        .ok_or_else(|| ProvisionError::new("BodyS3Location needs a Bucket"))?;
    let key = loc
        .get("Key")
        .and_then(text)
        .ok_or_else(|| ProvisionError::new("BodyS3Location needs a Key"))?;
    let (_, bytes) = k
        .objects
        .read_object(&bucket, &key, 10 * 1024 * 1024)
        .await
        .map_err(|e| ProvisionError::new(format!("BodyS3Location s3://{bucket}/{key}: {e}")))?;
    Ok(Some(bytes))
}

fn fail_on_warnings(props: &Map<String, Value>) -> bool {
    string(props, "FailOnWarnings").is_some_and(|v| v == "true")
}

// ---- HTTP APIs (v2) ----

const API_SKIP: &[&str] = &[
    "Body",
    "BodyS3Location",
    "BasePath",
    "FailOnWarnings",
    "Tags",
];

fn api_outcome(k: &Kindling, id: &str) -> Provisioned {
    Provisioned::named(id)
        .attr("ApiId", id)
        .attr("ApiEndpoint", format!("{}/execute-api/{id}", k.base_url))
}

pub async fn create_http_api(
    k: &Kindling,
    ctx: &ResourceContext,
    props: &Map<String, Value>,
) -> Outcome {
    let mut input: v2::ApiInput = wire_input(
        props,
        &["CorsConfiguration"],
        &["MaxAge"],
        &["AllowCredentials"],
        API_SKIP,
    )?;
    input.tags = Some(tags(props));
    let body = body(k, props).await?;
    let id = match body {
        Some(body) => {
            let warnings = fail_on_warnings(props);
            call(k, move |s| {
                let doc = s.import_http_api(&body, warnings)?;
                let id = doc.api.api_id.clone();
                // Properties given beside the body override the document's.
                let overrides = v2::ApiInput {
                    name: input.name,
                    description: input.description,
                    cors_configuration: input.cors_configuration,
                    disable_execute_api_endpoint: input.disable_execute_api_endpoint,
                    disable_schema_validation: input.disable_schema_validation,
                    version: input.version,
                    ..Default::default()
                };
                if let Err(e) = s.update_http_api(&id, overrides) {
                    let _ = s.delete_http_api(&id);
                    return Err(e);
                }
                Ok(id)
            })
            .await?
        }
        None => {
            if input.name.is_none() {
                input.name = Some(generated(ctx, 128));
            }
            call(k, move |s| s.create_http_api(input).map(|d| d.api.api_id)).await?
        }
    };
    Ok(api_outcome(k, &id))
}

pub async fn update_http_api(
    k: &Kindling,
    id: &str,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> Outcome {
    let mut input: v2::ApiInput = wire_input(
        new,
        &["CorsConfiguration"],
        &["MaxAge"],
        &["AllowCredentials"],
        API_SKIP,
    )?;
    input.protocol_type = None;
    input.tags = None;
    let changed_body = old.get("Body") != new.get("Body")
        || old.get("BodyS3Location") != new.get("BodyS3Location");
    let body = if changed_body {
        body(k, new).await?
    } else {
        None
    };
    let warnings = fail_on_warnings(new);
    let api_id = id.to_string();
    call(k, move |s| {
        if let Some(body) = body {
            s.reimport_http_api(&api_id, &body, warnings)?;
        }
        s.update_http_api(&api_id, input)?;
        Ok(())
    })
    .await?;
    Ok(api_outcome(k, id))
}

pub async fn delete_http_api(k: &Kindling, id: &str) -> Result<(), ProvisionError> {
    let id = id.to_string();
    delete_call(k, "api", move |s| s.delete_http_api(&id)).await
}

pub async fn create_stage(k: &Kindling, props: &Map<String, Value>) -> Outcome {
    let api = required(props, "ApiId")?;
    let mut input: v2::StageInput = wire_input(
        props,
        &["DefaultRouteSettings"],
        &["ThrottlingBurstLimit"],
        &["AutoDeploy", "DetailedMetricsEnabled", "DataTraceEnabled"],
        &[
            "ApiId",
            "Tags",
            "StageVariables",
            "AccessLogSettings",
            "ClientCertificateId",
            "AccessPolicyId",
        ],
    )?;
    input.stage_variables = string_map(props, "StageVariables");
    input.tags = Some(tags(props));
    let stage = call(k, move |s| s.create_stage(&api, input)).await?;
    Ok(Provisioned::named(stage.stage_name))
}

pub async fn update_stage(k: &Kindling, name: &str, props: &Map<String, Value>) -> Outcome {
    let api = required(props, "ApiId")?;
    let mut input: v2::StageInput = wire_input(
        props,
        &["DefaultRouteSettings"],
        &["ThrottlingBurstLimit"],
        &["AutoDeploy", "DetailedMetricsEnabled", "DataTraceEnabled"],
        &[
            "ApiId",
            "Tags",
            "StageVariables",
            "AccessLogSettings",
            "ClientCertificateId",
            "AccessPolicyId",
            "StageName",
        ],
    )?;
    input.stage_variables = Some(string_map(props, "StageVariables").unwrap_or_default());
    if input.auto_deploy.is_none() {
        input.auto_deploy = Some(false);
    }
    let n = name.to_string();
    call(k, move |s| s.update_stage(&api, &n, input)).await?;
    Ok(Provisioned::named(name))
}

pub async fn delete_stage(
    k: &Kindling,
    name: &str,
    props: &Map<String, Value>,
) -> Result<(), ProvisionError> {
    let api = required(props, "ApiId")?;
    let n = name.to_string();
    delete_call(k, "stage", move |s| s.delete_stage(&api, &n)).await
}

fn route_input(props: &Map<String, Value>) -> Result<v2::RouteInput, ProvisionError> {
    wire_input(
        props,
        &[],
        &[],
        &["ApiKeyRequired"],
        &[
            "ApiId",
            "RouteResponseSelectionExpression",
            "ModelSelectionExpression",
        ],
    )
}

pub async fn create_route(k: &Kindling, props: &Map<String, Value>) -> Outcome {
    let api = required(props, "ApiId")?;
    let input = route_input(props)?;
    let route = call(k, move |s| s.create_route(&api, input)).await?;
    Ok(Provisioned::named(&route.route_id).attr("RouteId", route.route_id))
}

pub async fn update_route(k: &Kindling, id: &str, props: &Map<String, Value>) -> Outcome {
    let api = required(props, "ApiId")?;
    let input = route_input(props)?;
    let rid = id.to_string();
    call(k, move |s| s.update_route(&api, &rid, input)).await?;
    Ok(Provisioned::named(id).attr("RouteId", id))
}

pub async fn delete_route(
    k: &Kindling,
    id: &str,
    props: &Map<String, Value>,
) -> Result<(), ProvisionError> {
    let api = required(props, "ApiId")?;
    let rid = id.to_string();
    delete_call(k, "route", move |s| s.delete_route(&api, &rid)).await
}

fn integration_input(props: &Map<String, Value>) -> Result<v2::IntegrationInput, ProvisionError> {
    wire_input(
        props,
        &[],
        &["TimeoutInMillis"],
        &[],
        &[
            "ApiId",
            "PassthroughBehavior",
            "TemplateSelectionExpression",
            "ContentHandlingStrategy",
            "IntegrationSubtype",
            "TlsConfig",
            "ConnectionId",
            "RequestTemplates",
            "ResponseParameters",
        ],
    )
}

pub async fn create_integration(k: &Kindling, props: &Map<String, Value>) -> Outcome {
    let api = required(props, "ApiId")?;
    let input = integration_input(props)?;
    let i = call(k, move |s| s.create_integration(&api, input)).await?;
    Ok(Provisioned::named(&i.integration_id).attr("IntegrationId", i.integration_id))
}

pub async fn update_integration(k: &Kindling, id: &str, props: &Map<String, Value>) -> Outcome {
    let api = required(props, "ApiId")?;
    let input = integration_input(props)?;
    let iid = id.to_string();
    call(k, move |s| s.update_integration(&api, &iid, input)).await?;
    Ok(Provisioned::named(id).attr("IntegrationId", id))
}

pub async fn delete_integration(
    k: &Kindling,
    id: &str,
    props: &Map<String, Value>,
) -> Result<(), ProvisionError> {
    let api = required(props, "ApiId")?;
    let iid = id.to_string();
    delete_call(k, "integration", move |s| s.delete_integration(&api, &iid)).await
}

pub async fn create_deployment(k: &Kindling, props: &Map<String, Value>) -> Outcome {
    let api = required(props, "ApiId")?;
    let input = v2::DeploymentInput {
        stage_name: string(props, "StageName"),
        description: string(props, "Description"),
    };
    let d = call(k, move |s| s.create_deployment(&api, input)).await?;
    Ok(Provisioned::named(&d.deployment_id).attr("DeploymentId", d.deployment_id))
}

pub async fn delete_deployment(
    k: &Kindling,
    id: &str,
    props: &Map<String, Value>,
) -> Result<(), ProvisionError> {
    let api = required(props, "ApiId")?;
    let did = id.to_string();
    delete_call(k, "deployment", move |s| {
        match s.delete_deployment(&api, &did) {
            // A deployment a stage still serves goes with its API.
            Err(ApigwError::BadRequest(_) | ApigwError::Conflict(_)) => Ok(()),
            other => other,
        }
    })
    .await
}

// ---- REST APIs (v1) ----

fn rest_outcome(api: &v1::RestApi) -> Provisioned {
    Provisioned::named(&api.id)
        .attr("RestApiId", api.id.clone())
        .attr("RootResourceId", api.root_resource_id.clone())
}

fn patch(op: &str, path: &str, value: Option<String>) -> v1::PatchOperation {
    v1::PatchOperation {
        op: op.into(),
        path: path.into(),
        value,
        from: None,
    }
}

fn binary_types(props: &Map<String, Value>) -> Vec<String> {
    props
        .get("BinaryMediaTypes")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(text).collect())
        .unwrap_or_default()
}

/// Patches making the API's name, description and binary media types the properties'.
fn rest_overrides(props: &Map<String, Value>, current: &v1::RestApi) -> Vec<v1::PatchOperation> {
    let mut ops = Vec::new();
    if let Some(n) = string(props, "Name") {
        ops.push(patch("replace", "/name", Some(n)));
    }
    if let Some(d) = string(props, "Description") {
        ops.push(patch("replace", "/description", Some(d)));
    }
    if let Some(v) = string(props, "DisableExecuteApiEndpoint") {
        ops.push(patch("replace", "/disableExecuteApiEndpoint", Some(v)));
    }
    let wanted = binary_types(props);
    for t in &wanted {
        if !current.binary_media_types.contains(t) {
            ops.push(patch(
                "add",
                &format!("/binaryMediaTypes/{}", escape(t)),
                None,
            ));
        }
    }
    for t in &current.binary_media_types {
        if !wanted.contains(t) && props.contains_key("BinaryMediaTypes") {
            ops.push(patch(
                "remove",
                &format!("/binaryMediaTypes/{}", escape(t)),
                None,
            ));
        }
    }
    ops
}

fn escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

pub async fn create_rest_api(
    k: &Kindling,
    ctx: &ResourceContext,
    props: &Map<String, Value>,
) -> Outcome {
    let body = body(k, props).await?;
    let warnings = fail_on_warnings(props);
    let api = match body {
        Some(body) => {
            let props = props.clone();
            call(k, move |s| {
                let api = s.import_rest_api(&body, warnings)?;
                let ops = rest_overrides(&props, &api);
                if ops.is_empty() {
                    return Ok(api);
                }
                s.update_rest_api(&api.id, ops).inspect_err(|_| {
                    let _ = s.delete_rest_api(&api.id);
                })
            })
            .await?
        }
        None => {
            let mut input: v1::RestApiInput = wire_input(
                props,
                &[],
                &["MinimumCompressionSize"],
                &["DisableExecuteApiEndpoint"],
                &[
                    "Tags",
                    "Parameters",
                    "FailOnWarnings",
                    "Mode",
                    "ApiKeySourceType",
                    "Policy",
                ],
            )?;
            if input.name.is_none() {
                input.name = Some(generated(ctx, 128));
            }
            input.api_key_source = string(props, "ApiKeySourceType");
            input.policy = props.get("Policy").map(document);
            input.tags = Some(tags(props));
            call(k, move |s| s.create_rest_api(input)).await?
        }
    };
    Ok(rest_outcome(&api))
}

pub async fn update_rest_api(
    k: &Kindling,
    id: &str,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> Outcome {
    let changed_body = old.get("Body") != new.get("Body")
        || old.get("BodyS3Location") != new.get("BodyS3Location");
    let body = if changed_body {
        body(k, new).await?
    } else {
        None
    };
    let mode = match string(new, "Mode").as_deref() {
        Some("merge") => v1::PutMode::Merge,
        _ => v1::PutMode::Overwrite,
    };
    let warnings = fail_on_warnings(new);
    let api_id = id.to_string();
    let props = new.clone();
    let api = call(k, move |s| {
        let mut api = match body {
            Some(body) => s.put_rest_api(&api_id, &body, mode, warnings)?,
            None => s.get_rest_api(&api_id)?,
        };
        let ops = rest_overrides(&props, &api);
        if !ops.is_empty() {
            api = s.update_rest_api(&api_id, ops)?;
        }
        Ok(api)
    })
    .await?;
    Ok(rest_outcome(&api))
}

pub async fn delete_rest_api(k: &Kindling, id: &str) -> Result<(), ProvisionError> {
    let id = id.to_string();
    delete_call(k, "rest api", move |s| s.delete_rest_api(&id)).await
}

pub async fn create_resource(k: &Kindling, props: &Map<String, Value>) -> Outcome {
    let api = required(props, "RestApiId")?;
    let parent = required(props, "ParentId")?;
    let part = required(props, "PathPart")?;
    let r = call(k, move |s| s.create_resource(&api, &parent, Some(part))).await?;
    Ok(Provisioned::named(&r.id).attr("ResourceId", r.id))
}

pub async fn delete_resource(
    k: &Kindling,
    id: &str,
    props: &Map<String, Value>,
) -> Result<(), ProvisionError> {
    let api = required(props, "RestApiId")?;
    let rid = id.to_string();
    delete_call(k, "resource", move |s| s.delete_resource(&api, &rid)).await
}

/// PutMethod and PutIntegration of an `AWS::ApiGateway::Method` (replacing what is there).
pub async fn put_method(
    k: &Kindling,
    ctx: &ResourceContext,
    props: &Map<String, Value>,
    existing: Option<&str>,
) -> Outcome {
    let api = required(props, "RestApiId")?;
    let resource = required(props, "ResourceId")?;
    let method = required(props, "HttpMethod")?.to_ascii_uppercase();
    let input: v1::MethodInput = wire_input(
        props,
        &[],
        &[],
        &["ApiKeyRequired"],
        &[
            "RestApiId",
            "ResourceId",
            "HttpMethod",
            "Integration",
            "MethodResponses",
            "AuthorizationScopes",
            "RequestValidatorId",
            "RequestParameters",
            "RequestModels",
        ],
    )?;
    let integration = match props.get("Integration").and_then(Value::as_object) {
        None => None,
        Some(i) => {
            let mut i = i.clone();
            if let Some(m) = i.remove("IntegrationHttpMethod") {
                i.insert("HttpMethod".into(), m);
            }
            Some(wire_input::<v1::IntegrationInput>(
                &i,
                &[],
                &["TimeoutInMillis"],
                &[],
                &[
                    "IntegrationResponses",
                    "RequestTemplates",
                    "RequestParameters",
                    "CacheKeyParameters",
                    "CacheNamespace",
                ],
            )?)
        }
    };
    call(k, move |s| {
        match s.delete_method(&api, &resource, &method) {
            Ok(()) | Err(ApigwError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        s.put_method(&api, &resource, &method, input)?;
        if let Some(i) = integration
            && let Err(e) = s.put_integration(&api, &resource, &method, i)
        {
            let _ = s.delete_method(&api, &resource, &method);
            return Err(e);
        }
        Ok(())
    })
    .await?;
    Ok(Provisioned::named(
        existing.map_or_else(|| generated(ctx, 64), str::to_string),
    ))
}

pub async fn delete_method(k: &Kindling, props: &Map<String, Value>) -> Result<(), ProvisionError> {
    let api = required(props, "RestApiId")?;
    let resource = required(props, "ResourceId")?;
    let method = required(props, "HttpMethod")?.to_ascii_uppercase();
    delete_call(k, "method", move |s| {
        s.delete_method(&api, &resource, &method)
    })
    .await
}

pub async fn create_rest_deployment(k: &Kindling, props: &Map<String, Value>) -> Outcome {
    let api = required(props, "RestApiId")?;
    let stage = props.get("StageDescription").and_then(Value::as_object);
    let input = v1::DeploymentInput {
        stage_name: string(props, "StageName"),
        stage_description: stage.and_then(|s| string(s, "Description")),
        description: string(props, "Description"),
        variables: stage.and_then(|s| string_map(s, "Variables")),
        tracing_enabled: stage
            .and_then(|s| string(s, "TracingEnabled"))
            .map(|v| v == "true"),
    };
    let d = call(k, move |s| s.create_rest_deployment(&api, input)).await?;
    Ok(Provisioned::named(&d.id).attr("DeploymentId", d.id))
}

fn stage_input(props: &Map<String, Value>) -> v1::StageInput {
    v1::StageInput {
        stage_name: string(props, "StageName"),
        deployment_id: string(props, "DeploymentId"),
        description: string(props, "Description"),
        variables: string_map(props, "Variables"),
        tracing_enabled: string(props, "TracingEnabled").map(|v| v == "true"),
        tags: Some(tags(props)),
    }
}

pub async fn create_rest_stage(
    k: &Kindling,
    ctx: &ResourceContext,
    props: &Map<String, Value>,
) -> Outcome {
    let api = required(props, "RestApiId")?;
    let mut input = stage_input(props);
    if input.stage_name.is_none() {
        input.stage_name = Some(generated(ctx, 128).replace('.', "-"));
    }
    let stage = call(k, move |s| s.create_rest_stage(&api, input)).await?;
    Ok(Provisioned::named(stage.stage_name))
}

pub async fn update_rest_stage(
    k: &Kindling,
    name: &str,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> Outcome {
    let api = required(new, "RestApiId")?;
    let input = stage_input(new);
    let mut ops = Vec::new();
    if let Some(d) = input.deployment_id {
        ops.push(patch("replace", "/deploymentId", Some(d)));
    }
    ops.push(patch(
        "replace",
        "/description",
        Some(input.description.unwrap_or_default()),
    ));
    ops.push(patch(
        "replace",
        "/tracingEnabled",
        Some(input.tracing_enabled.unwrap_or(false).to_string()),
    ));
    let wanted = input.variables.unwrap_or_default();
    for (key, v) in &wanted {
        ops.push(patch(
            "replace",
            &format!("/variables/{}", escape(key)),
            Some(v.clone()),
        ));
    }
    for key in string_map(old, "Variables").unwrap_or_default().keys() {
        if !wanted.contains_key(key) {
            ops.push(patch(
                "remove",
                &format!("/variables/{}", escape(key)),
                None,
            ));
        }
    }
    let n = name.to_string();
    call(k, move |s| s.update_rest_stage(&api, &n, ops)).await?;
    Ok(Provisioned::named(name))
}

pub async fn delete_rest_stage(
    k: &Kindling,
    name: &str,
    props: &Map<String, Value>,
) -> Result<(), ProvisionError> {
    let api = required(props, "RestApiId")?;
    let n = name.to_string();
    delete_call(k, "stage", move |s| s.delete_rest_stage(&api, &n)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn properties_become_wire_inputs() {
        let props = json!({
            "Name": "a", "ProtocolType": "HTTP", "Target": "arn:aws:lambda:us-east-1:1:function:f",
            "CorsConfiguration": {"AllowOrigins": ["*"], "MaxAge": "60"},
            "Tags": {"k": "v"}
        });
        let input: v2::ApiInput = wire_input(
            props.as_object().expect("object"),
            &["CorsConfiguration"],
            &["MaxAge"],
            &[],
            API_SKIP,
        )
        .expect("input");
        assert_eq!(input.name.as_deref(), Some("a"));
        assert_eq!(
            input.target.as_deref(),
            Some("arn:aws:lambda:us-east-1:1:function:f")
        );
        let cors = input.cors_configuration.expect("cors");
        assert_eq!(cors.max_age, Some(60));
        assert_eq!(cors.allow_origins, Some(vec!["*".to_string()]));

        let integration = json!({"ApiId": "x", "IntegrationType": "AWS_PROXY",
            "IntegrationUri": "u", "PayloadFormatVersion": "2.0", "TimeoutInMillis": "5000"});
        let i = integration_input(integration.as_object().expect("object")).expect("input");
        assert_eq!(i.timeout_in_millis, Some(5000));
        assert_eq!(i.payload_format_version.as_deref(), Some("2.0"));

        let bad = json!({"Name": 5});
        assert!(
            wire_input::<v2::ApiInput>(bad.as_object().expect("object"), &[], &[], &[], &[])
                .is_err()
        );
    }
}
