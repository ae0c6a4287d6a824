//! Resource handlers over Kindling's own services, called in-process: Lambda (control
//! plane), SQS and SNS (queues), S3 (objects); IAM is recorded only (Kindling has no IAM).

mod iam;
mod lambda;
mod messaging;
mod props;
mod s3;
mod schedules;

use std::sync::Arc;

use kindling_control::ControlPlane;
use kindling_objects::Objects;
use kindling_queues::TopicService;
use serde_json::{Map, Value};

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
            "AWS::SNS::Subscription" | "AWS::Lambda::Permission" | "AWS::Lambda::LayerVersion" => {
                old != new
            }
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
                "AWS::IAM::Role" | "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => {
                    Ok(iam::record(self, ctx, props, None))
                }
                "AWS::SNS::TopicPolicy" | "AWS::S3::BucketPolicy" => Ok(recorded(ctx, props)),
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
                "AWS::Lambda::Alias" => lambda::update_alias(self, physical_id, new).await,
                "AWS::Lambda::EventInvokeConfig" => {
                    lambda::update_invoke_config(self, physical_id, new).await
                }
                "AWS::Lambda::Version" => lambda::version_outcome(self, physical_id),
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
                "AWS::IAM::Role" | "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => {
                    Ok(iam::record(self, ctx, new, Some(physical_id)))
                }
                "AWS::SNS::TopicPolicy" | "AWS::S3::BucketPolicy" => {
                    Ok(Provisioned::named(physical_id))
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
