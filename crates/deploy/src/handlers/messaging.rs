//! AWS::SQS::Queue/QueuePolicy and AWS::SNS::Topic/Subscription over the queue domain.

use std::collections::BTreeMap;

use kindling_queues::{QueueError, SubscribeInput, TopicError};
use serde_json::{Map, Value};

use super::props::{document, string, tags, text};
use super::{Kindling, Outcome, generated};
use crate::provider::{ProvisionError, Provisioned, ResourceContext};

const QUEUE_ATTRIBUTES: &[&str] = &[
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
];

fn fifo(props: &Map<String, Value>) -> bool {
    string(props, "FifoQueue").is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

pub fn queue_name(ctx: &ResourceContext, props: &Map<String, Value>) -> String {
    match string(props, "QueueName") {
        Some(n) => n,
        None if fifo(props) => format!("{}.fifo", generated(ctx, 75)),
        None => generated(ctx, 80),
    }
}

pub fn queue_url(k: &Kindling, name: &str) -> String {
    format!("{}/{}/{name}", k.base_url, k.account_id)
}

fn queue_attributes(props: &Map<String, Value>) -> BTreeMap<String, String> {
    QUEUE_ATTRIBUTES
        .iter()
        .filter_map(|key| {
            let v = props.get(*key)?;
            let value = match v {
                Value::Object(_) | Value::Array(_) => document(v),
                other => text(other)?,
            };
            Some(((*key).to_string(), value))
        })
        .collect()
}

fn queue_err(e: QueueError) -> ProvisionError {
    ProvisionError::new(e.to_string())
}

fn queue_outcome(k: &Kindling, name: &str) -> Provisioned {
    let url = queue_url(k, name);
    Provisioned::named(url.clone())
        .attr(
            "Arn",
            format!("arn:aws:sqs:{}:{}:{name}", k.region, k.account_id),
        )
        .attr("QueueName", name)
        .attr("QueueUrl", url)
}

pub async fn create_queue(
    k: &Kindling,
    ctx: &ResourceContext,
    props: &Map<String, Value>,
) -> Outcome {
    let name = queue_name(ctx, props);
    let queues = k.topics.queues();
    queues
        .create_queue(&k.account_id, &name, queue_attributes(props), tags(props))
        .await
        .map_err(queue_err)?;
    Ok(queue_outcome(k, &name))
}

/// SQS's default for an attribute (empty: none).
fn queue_default(key: &str) -> &'static str {
    match key {
        "DelaySeconds" | "ReceiveMessageWaitTimeSeconds" => "0",
        "MaximumMessageSize" => "1048576",
        "MessageRetentionPeriod" => "345600",
        "VisibilityTimeout" => "30",
        _ => "",
    }
}

/// The queue name in a queue URL (its last segment).
fn name_in_url(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

pub async fn update_queue(
    k: &Kindling,
    url: &str,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> Outcome {
    let name = name_in_url(url).to_string();
    let queues = k.topics.queues();
    let q = queues
        .queue(&k.account_id, &name)
        .await
        .map_err(queue_err)?;
    let mut attrs = queue_attributes(new);
    attrs.remove("FifoQueue");
    // Attributes the template dropped go back to their defaults.
    for key in queue_attributes(old).keys() {
        if !attrs.contains_key(key) && key != "FifoQueue" {
            attrs.insert(key.clone(), queue_default(key).to_string());
        }
    }
    queues.set_attributes(&q, attrs).await.map_err(queue_err)?;
    Ok(queue_outcome(k, &name))
}

pub async fn delete_queue(k: &Kindling, url: &str) -> Result<(), ProvisionError> {
    let queues = k.topics.queues();
    match queues.queue(&k.account_id, name_in_url(url)).await {
        Ok(q) => queues.delete_queue(&q).await.map_err(queue_err),
        Err(QueueError::QueueDoesNotExist) => Ok(()),
        Err(e) => Err(queue_err(e)),
    }
}

/// Sets (or with `remove`, clears) the `Policy` of every queue a QueuePolicy lists.
pub async fn put_queue_policy(
    k: &Kindling,
    ctx: &ResourceContext,
    props: &Map<String, Value>,
    remove: bool,
) -> Outcome {
    let policy = if remove {
        String::new()
    } else {
        props
            .get("PolicyDocument")
            .map(document)
            .unwrap_or_default()
    };
    let queues = k.topics.queues();
    for url in props
        .get("Queues")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(text)
    {
        match queues.queue(&k.account_id, name_in_url(&url)).await {
            Ok(q) => {
                let attrs = BTreeMap::from([("Policy".to_string(), policy.clone())]);
                queues.set_attributes(&q, attrs).await.map_err(queue_err)?;
            }
            Err(QueueError::QueueDoesNotExist) if remove => {}
            Err(e) => return Err(queue_err(e)),
        }
    }
    Ok(Provisioned::named(ctx.physical_name.clone()).attr("Id", ctx.physical_name.clone()))
}

pub fn topic_name(ctx: &ResourceContext, props: &Map<String, Value>) -> String {
    match string(props, "TopicName") {
        Some(n) => n,
        None if string(props, "FifoTopic").is_some_and(|v| v == "true") => {
            format!("{}.fifo", generated(ctx, 251))
        }
        None => generated(ctx, 256),
    }
}

fn topic_err(e: TopicError) -> ProvisionError {
    ProvisionError::new(e.to_string())
}

fn topic_outcome(arn: &str) -> Provisioned {
    let name = arn.rsplit(':').next().unwrap_or(arn).to_string();
    Provisioned::named(arn)
        .attr("TopicArn", arn)
        .attr("TopicName", name)
}

pub async fn create_topic(
    k: &Kindling,
    ctx: &ResourceContext,
    props: &Map<String, Value>,
) -> Outcome {
    let name = topic_name(ctx, props);
    let mut attrs = BTreeMap::new();
    for key in [
        "DisplayName",
        "FifoTopic",
        "ContentBasedDeduplication",
        "KmsMasterKeyId",
    ] {
        if let Some(v) = string(props, key) {
            attrs.insert(key.to_string(), v);
        }
    }
    let arn = k
        .topics
        .create_topic(&k.account_id, &name, attrs, tags(props))
        .await
        .map_err(topic_err)?;
    for s in props
        .get("Subscription")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut sub = Map::new();
        sub.insert("TopicArn".into(), Value::String(arn.clone()));
        if let Some(p) = s.get("Protocol") {
            sub.insert("Protocol".into(), p.clone());
        }
        if let Some(e) = s.get("Endpoint") {
            sub.insert("Endpoint".into(), e.clone());
        }
        subscribe(k, &sub).await?;
    }
    Ok(topic_outcome(&arn))
}

pub async fn update_topic(k: &Kindling, arn: &str, props: &Map<String, Value>) -> Outcome {
    let display = string(props, "DisplayName").unwrap_or_default();
    k.topics
        .set_topic_attribute(arn, "DisplayName", &display)
        .await
        .map_err(topic_err)?;
    Ok(topic_outcome(arn))
}

pub async fn delete_topic(k: &Kindling, arn: &str) -> Result<(), ProvisionError> {
    match k.topics.delete_topic(arn).await {
        Ok(()) | Err(TopicError::NotFound(_)) => Ok(()),
        Err(e) => Err(topic_err(e)),
    }
}

pub async fn subscribe(k: &Kindling, props: &Map<String, Value>) -> Outcome {
    let mut attributes = BTreeMap::new();
    for key in [
        "FilterPolicy",
        "FilterPolicyScope",
        "RawMessageDelivery",
        "RedrivePolicy",
        "DeliveryPolicy",
    ] {
        if let Some(v) = props.get(key) {
            let value = match v {
                Value::Object(_) | Value::Array(_) => document(v),
                other => text(other).unwrap_or_default(),
            };
            attributes.insert(key.to_string(), value);
        }
    }
    let input = SubscribeInput {
        topic_arn: super::props::required(props, "TopicArn")?,
        protocol: super::props::required(props, "Protocol")?,
        endpoint: string(props, "Endpoint"),
        attributes,
        return_subscription_arn: true,
        base_url: k.base_url.clone(),
    };
    let arn = k.topics.subscribe(input).await.map_err(topic_err)?;
    Ok(Provisioned::named(arn.clone()).attr("Arn", arn))
}

pub async fn unsubscribe(k: &Kindling, arn: &str) -> Result<(), ProvisionError> {
    match k.topics.unsubscribe(arn).await {
        Ok(()) | Err(TopicError::NotFound(_)) => Ok(()),
        Err(e) => Err(topic_err(e)),
    }
}
