//! REST APIs (`AWS::ApiGateway::RestApi/Resource/Method/Deployment/Stage`).

use kindling_apigw::error::ApigwError;
use kindling_apigw::rest_api as v1;
use serde_json::{Map, Value};

use super::{body, call, delete_call, fail_on_warnings, string_map, wire_input};
use crate::handlers::props::{document, required, string, tags, text};
use crate::handlers::{Kindling, Outcome, generated};
use crate::provider::{ProvisionError, Provisioned, ResourceContext};

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
