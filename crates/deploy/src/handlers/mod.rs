//! Resource handlers over Kindling's own services, called in-process: Lambda (control
//! plane), SQS and SNS (queues), S3 (objects), API Gateway (REST and HTTP APIs), EventBridge
//! rules and schedules (cron); IAM is recorded only (Kindling has no IAM).

mod apigw;
mod iam;
mod lambda;
mod messaging;
mod props;
mod provisioned;
mod s3;
mod schedules;
mod shifting;

use std::sync::Arc;

use kindling_control::ControlPlane;
use kindling_objects::Objects;
use kindling_queues::TopicService;
use serde_json::{Map, Value};

pub use provisioned::ProvisionedConcurrency;

use crate::provider::{BoxFuture, Provider, ProvisionError, Provisioned, ResourceContext};

/// Provisions resources with Kindling's services.
#[derive(Clone)]
pub struct Kindling {
    pub control: Arc<ControlPlane>,
    pub topics: TopicService,
    pub objects: Objects,
    pub account_id: String,
    pub region: String,
    /// `http://host:port` of Kindling's endpoint (queue URLs, confirmation URLs).
    pub base_url: String,
    /// The schedule runner (EventBridge rules and Scheduler schedules), if any.
    pub cron: Option<kindling_cron::Cron>,
    /// Event source mappings, if any.
    pub esm: Option<kindling_esm::Mappings>,
    /// API Gateway (REST and HTTP APIs), if any.
    pub apigw: Option<Arc<kindling_apigw::ApiGateway>>,
    /// How long one minute of a traffic shifting configuration lasts (60 s; tests shorten it).
    pub shift_minute: std::time::Duration,
    /// The data plane's provisioned concurrency (`None`: configurations are stored only).
    pub provisioned: Option<Arc<dyn ProvisionedConcurrency>>,
}

type Outcome = Result<Provisioned, ProvisionError>;

/// Runs a blocking control-plane call off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ProvisionError> + Send + 'static,
) -> Result<T, ProvisionError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ProvisionError::new(format!("internal error: {e}")))?
}

const TYPES: &[&str] = &[
    "AWS::Lambda::Function",
    "AWS::Lambda::Version",
    "AWS::Lambda::Alias",
    "AWS::Lambda::Permission",
    "AWS::Lambda::LayerVersion",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::SQS::Queue",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::Topic",
    "AWS::SNS::Subscription",
    "AWS::SNS::TopicPolicy",
    "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy",
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::CloudFormation::WaitConditionHandle",
    "AWS::Events::Rule",
    "AWS::Scheduler::Schedule",
    "AWS::Lambda::Url",
    "AWS::Lambda::EventSourceMapping",
    "AWS::CodeDeploy::Application",
    "AWS::CodeDeploy::DeploymentGroup",
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Stage",
    "AWS::ApiGatewayV2::Route",
    "AWS::ApiGatewayV2::Integration",
    "AWS::ApiGatewayV2::Deployment",
    "AWS::ApiGateway::RestApi",
    "AWS::ApiGateway::Resource",
    "AWS::ApiGateway::Method",
    "AWS::ApiGateway::Deployment",
    "AWS::ApiGateway::Stage",
];

impl Provider for Kindling {
    fn supports(&self, resource_type: &str) -> bool {
        TYPES.contains(&resource_type)
    }

    fn requires_replacement(
        &self,
        resource_type: &str,
        old: &Map<String, Value>,
        new: &Map<String, Value>,
    ) -> bool {
        match resource_type {
            // Subscriptions, policies and layer versions are re-made on any change.
            "AWS::SNS::Subscription"
            | "AWS::Lambda::Permission"
            | "AWS::Lambda::LayerVersion"
            | "AWS::ApiGateway::Resource"
            | "AWS::ApiGateway::Deployment"
            | "AWS::ApiGatewayV2::Deployment" => old != new,
            _ => false,
        }
    }

    fn expected_physical_id(
        &self,
        ctx: &ResourceContext,
        props: &Map<String, Value>,
    ) -> Option<String> {
        match ctx.resource_type.as_str() {
            "AWS::Lambda::Function" => Some(lambda::function_name(ctx, props)),
            "AWS::SQS::Queue" => Some(messaging::queue_url(
                self,
                &messaging::queue_name(ctx, props),
            )),
            "AWS::SNS::Topic" => Some(
                self.topics
                    .topic_arn(&self.account_id, &messaging::topic_name(ctx, props)),
            ),
            "AWS::S3::Bucket" => Some(s3::bucket_name(ctx, props)),
            _ => None,
        }
    }

    fn create<'a>(
        &'a self,
        ctx: &'a ResourceContext,
        props: &'a Map<String, Value>,
    ) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match ctx.resource_type.as_str() {
                "AWS::Lambda::Function" => lambda::create_function(self, ctx, props).await,
                "AWS::Lambda::Version" => lambda::create_version(self, props).await,
                "AWS::Lambda::Alias" => lambda::create_alias(self, props).await,
                "AWS::Lambda::Permission" => lambda::add_permission(self, ctx, props).await,
                "AWS::Lambda::LayerVersion" => lambda::publish_layer(self, ctx, props).await,
                "AWS::Lambda::EventInvokeConfig" => {
                    lambda::put_invoke_config(self, ctx, props).await
                }
                "AWS::SQS::Queue" => messaging::create_queue(self, ctx, props).await,
                "AWS::SQS::QueuePolicy" => {
                    messaging::put_queue_policy(self, ctx, props, false).await
                }
                "AWS::SNS::Topic" => messaging::create_topic(self, ctx, props).await,
                "AWS::SNS::Subscription" => messaging::subscribe(self, props).await,
                "AWS::S3::Bucket" => s3::create_bucket(self, ctx, props).await,
                "AWS::Lambda::Url" => lambda::create_url(self, props).await,
                "AWS::Lambda::EventSourceMapping" => lambda::create_mapping(self, props).await,
                "AWS::Events::Rule" => schedules::put_rule(self, ctx, props, None).await,
                "AWS::Scheduler::Schedule" => schedules::put_schedule(self, ctx, props, None).await,
                "AWS::ApiGatewayV2::Api" => apigw::create_http_api(self, ctx, props).await,
                "AWS::ApiGatewayV2::Stage" => apigw::create_stage(self, props).await,
                "AWS::ApiGatewayV2::Route" => apigw::create_route(self, props).await,
                "AWS::ApiGatewayV2::Integration" => apigw::create_integration(self, props).await,
                "AWS::ApiGatewayV2::Deployment" => apigw::create_deployment(self, props).await,
                "AWS::ApiGateway::RestApi" => apigw::create_rest_api(self, ctx, props).await,
                "AWS::ApiGateway::Resource" => apigw::create_resource(self, props).await,
                "AWS::ApiGateway::Method" => apigw::put_method(self, ctx, props, None).await,
                "AWS::ApiGateway::Deployment" => apigw::create_rest_deployment(self, props).await,
                "AWS::ApiGateway::Stage" => apigw::create_rest_stage(self, ctx, props).await,
                "AWS::IAM::Role" | "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => {
                    Ok(iam::record(self, ctx, props, None))
                }
                "AWS::SNS::TopicPolicy" | "AWS::S3::BucketPolicy" => Ok(recorded(ctx, props)),
                "AWS::CodeDeploy::Application" | "AWS::CodeDeploy::DeploymentGroup" => {
                    Ok(shifting::recorded(ctx, props, None))
                }
                "AWS::CloudFormation::WaitConditionHandle" => Ok(Provisioned::named(format!(
                    "{}/wait-condition/{}",
                    self.base_url, ctx.physical_name
                ))),
                other => Err(unsupported(other)),
            }
        })
    }

    fn update<'a>(
        &'a self,
        ctx: &'a ResourceContext,
        physical_id: &'a str,
        old: &'a Map<String, Value>,
        new: &'a Map<String, Value>,
    ) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match ctx.resource_type.as_str() {
                "AWS::Lambda::Function" => {
                    lambda::update_function(self, physical_id, old, new).await
                }
                "AWS::Lambda::Alias" => match &ctx.traffic_shifting {
                    Some(t) => shifting::shift_alias(self, t, physical_id, old, new).await,
                    None => lambda::update_alias(self, physical_id, old, new).await,
                },
                "AWS::Lambda::EventInvokeConfig" => {
                    lambda::update_invoke_config(self, physical_id, new).await
                }
                "AWS::Lambda::Version" => lambda::update_version(self, physical_id, old, new).await,
                "AWS::SQS::Queue" => messaging::update_queue(self, physical_id, old, new).await,
                "AWS::SQS::QueuePolicy" => {
                    messaging::put_queue_policy(self, ctx, old, true).await?;
                    let mut p = messaging::put_queue_policy(self, ctx, new, false).await?;
                    p.physical_id = physical_id.to_string();
                    p.ref_value = Value::String(physical_id.to_string());
                    Ok(p)
                }
                "AWS::SNS::Topic" => messaging::update_topic(self, physical_id, new).await,
                "AWS::S3::Bucket" => Ok(s3::outcome(self, physical_id)),
                "AWS::Lambda::Url" => lambda::update_url(self, new).await,
                "AWS::Lambda::EventSourceMapping" => {
                    lambda::update_mapping(self, physical_id, new).await
                }
                "AWS::Events::Rule" => schedules::put_rule(self, ctx, new, Some(physical_id)).await,
                "AWS::Scheduler::Schedule" => {
                    schedules::put_schedule(self, ctx, new, Some(physical_id)).await
                }
                "AWS::ApiGatewayV2::Api" => {
                    apigw::update_http_api(self, physical_id, old, new).await
                }
                "AWS::ApiGatewayV2::Stage" => apigw::update_stage(self, physical_id, new).await,
                "AWS::ApiGatewayV2::Route" => apigw::update_route(self, physical_id, new).await,
                "AWS::ApiGatewayV2::Integration" => {
                    apigw::update_integration(self, physical_id, new).await
                }
                "AWS::ApiGateway::RestApi" => {
                    apigw::update_rest_api(self, physical_id, old, new).await
                }
                "AWS::ApiGateway::Method" => {
                    apigw::put_method(self, ctx, new, Some(physical_id)).await
                }
                "AWS::ApiGateway::Stage" => {
                    apigw::update_rest_stage(self, physical_id, old, new).await
                }
                "AWS::IAM::Role" | "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => {
                    Ok(iam::record(self, ctx, new, Some(physical_id)))
                }
                "AWS::SNS::TopicPolicy" | "AWS::S3::BucketPolicy" => {
                    Ok(Provisioned::named(physical_id))
                }
                "AWS::CodeDeploy::Application" | "AWS::CodeDeploy::DeploymentGroup" => {
                    Ok(shifting::recorded(ctx, new, Some(physical_id)))
                }
                "AWS::CloudFormation::WaitConditionHandle" => Ok(Provisioned::named(physical_id)),
                other => Err(unsupported(other)),
            }
        })
    }

    fn delete<'a>(
        &'a self,
        ctx: &'a ResourceContext,
        physical_id: &'a str,
        props: &'a Map<String, Value>,
    ) -> BoxFuture<'a, Result<(), ProvisionError>> {
        Box::pin(async move {
            match ctx.resource_type.as_str() {
                "AWS::Lambda::Function" => lambda::delete_function(self, physical_id).await,
                "AWS::Lambda::Version" => lambda::delete_version(self, physical_id).await,
                "AWS::Lambda::Alias" => lambda::delete_alias(self, physical_id).await,
                "AWS::Lambda::Permission" => {
                    lambda::remove_permission(self, physical_id, props).await
                }
                "AWS::Lambda::LayerVersion" => lambda::delete_layer(self, physical_id).await,
                "AWS::Lambda::EventInvokeConfig" => lambda::delete_invoke_config(self, props).await,
                "AWS::SQS::Queue" => messaging::delete_queue(self, physical_id).await,
                "AWS::SQS::QueuePolicy" => messaging::put_queue_policy(self, ctx, props, true)
                    .await
                    .map(|_| ()),
                "AWS::SNS::Topic" => messaging::delete_topic(self, physical_id).await,
                "AWS::SNS::Subscription" => messaging::unsubscribe(self, physical_id).await,
                "AWS::S3::Bucket" => s3::delete_bucket(self, physical_id).await,
                "AWS::Lambda::Url" => lambda::delete_url(self, props).await,
                "AWS::Lambda::EventSourceMapping" => {
                    lambda::delete_mapping(self, physical_id).await
                }
                "AWS::Events::Rule" => schedules::delete_rule(self, physical_id, props).await,
                "AWS::Scheduler::Schedule" => {
                    schedules::delete_schedule(self, physical_id, props).await
                }
                "AWS::ApiGatewayV2::Api" => apigw::delete_http_api(self, physical_id).await,
                "AWS::ApiGatewayV2::Stage" => apigw::delete_stage(self, physical_id, props).await,
                "AWS::ApiGatewayV2::Route" => apigw::delete_route(self, physical_id, props).await,
                "AWS::ApiGatewayV2::Integration" => {
                    apigw::delete_integration(self, physical_id, props).await
                }
                "AWS::ApiGatewayV2::Deployment" => {
                    apigw::delete_deployment(self, physical_id, props).await
                }
                "AWS::ApiGateway::RestApi" => apigw::delete_rest_api(self, physical_id).await,
                "AWS::ApiGateway::Resource" => {
                    apigw::delete_resource(self, physical_id, props).await
                }
                "AWS::ApiGateway::Method" => apigw::delete_method(self, props).await,
                "AWS::ApiGateway::Stage" => {
                    apigw::delete_rest_stage(self, physical_id, props).await
                }
                // REST API deployments go with their API (API Gateway keeps no delete of a
                // deployment a stage may still serve).
                _ => Ok(()),
            }
        })
    }
}

fn unsupported(t: &str) -> ProvisionError {
    ProvisionError::new(format!("Resource type {t} is not supported by Kindling"))
}

/// A resource Kindling records without acting on it (its id is generated).
fn recorded(ctx: &ResourceContext, _props: &Map<String, Value>) -> Provisioned {
    Provisioned::named(ctx.physical_name.clone())
}

/// A generated name within `max` characters (`{stack}-{logical}-{suffix}`, the front cut).
pub(crate) fn generated(ctx: &ResourceContext, max: usize) -> String {
    let name = &ctx.physical_name;
    if name.len() <= max {
        return name.clone();
    }
    let suffix = &name[name.len() - 14..];
    let head: String = name[..name.len() - 14].chars().take(max - 14).collect();
    format!("{head}{suffix}")
}
