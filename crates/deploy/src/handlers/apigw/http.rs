//! HTTP APIs (`AWS::ApiGatewayV2::Api/Stage/Route/Integration/Deployment`).

use kindling_apigw::error::ApigwError;
use kindling_apigw::http_api as v2;
use serde_json::{Map, Value};

use super::{body, call, delete_call, fail_on_warnings, string_map, wire_input};
use crate::handlers::props::{required, string, tags};
use crate::handlers::{Kindling, Outcome, generated};
use crate::provider::{ProvisionError, Provisioned, ResourceContext};

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
