//! The SNS domain: topics, subscriptions, filter policies and the fan-out of a publish.
//!
//! A publish computes every delivery first (which subscriptions match, the body each protocol
//! gets) and stores them all in one durable transaction through the queue writer: messages
//! for subscribed queues, asynchronous Lambda invocations (the events queue's own table, read
//! by its dispatcher) and pending HTTP POSTs (sent by [`crate::http`]). After a 200 nothing
//! of it can be lost.
//!
//! Here: the service, its topics (create, delete, list, attributes, tags) and helpers shared by
//! the operations; subscriptions in [`subscriptions`], publishing in [`publish`].

mod publish;
mod subscriptions;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};

use kindling_model::messaging::TopicRecord;
use kindling_store::{QueueStore, StoreError};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::error::{QueueError, TopicError};
use crate::message::AttributeInput;
use crate::names;
use crate::queues::{QueueService, now_ms};

/// Settable topic attributes.
const TOPIC_ATTRIBUTES: &[&str] = &[
    "DisplayName",
    "Policy",
    "DeliveryPolicy",
    "KmsMasterKeyId",
    "SignatureVersion",
    "TracingConfig",
    "FifoTopic",
    "ContentBasedDeduplication",
    "ArchivePolicy",
    "FifoThroughputScope",
    "DataProtectionPolicy",
];

/// Settable subscription attributes.
const SUBSCRIPTION_ATTRIBUTES: &[&str] = &[
    "DeliveryPolicy",
    "FilterPolicy",
    "FilterPolicyScope",
    "RawMessageDelivery",
    "RedrivePolicy",
    "SubscriptionRoleArn",
    "ReplayPolicy",
];

/// Protocols Kindling delivers to.
const PROTOCOLS: &[&str] = &["http", "https", "sqs", "lambda"];

/// Largest message a publish may carry.
pub const MAX_PUBLISH_BYTES: usize = 262_144;

/// A Subscribe request.
#[derive(Debug, Clone, Default)]
pub struct SubscribeInput {
    pub topic_arn: String,
    pub protocol: String,
    pub endpoint: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub return_subscription_arn: bool,
    /// `http://host:port` as the client reached the server (for confirmation URLs).
    pub base_url: String,
}

/// A Publish request (or one PublishBatch entry).
#[derive(Debug, Clone, Default)]
pub struct PublishInput {
    pub topic_arn: Option<String>,
    pub target_arn: Option<String>,
    pub phone_number: Option<String>,
    pub message: Option<String>,
    pub subject: Option<String>,
    pub message_structure: Option<String>,
    pub attributes: BTreeMap<String, AttributeInput>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    /// The publisher's `X-Amzn-Trace-Id`: continued by Lambda subscribers' invocations and kept
    /// as SQS subscribers' `AWSTraceHeader` (recursive loop detection reads its `Lineage`).
    pub trace_header: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishResult {
    pub message_id: String,
    pub sequence_number: Option<String>,
}

type SeenPublish = (String, String, i64);

/// The SNS domain. Cheap to clone.
#[derive(Clone)]
pub struct TopicService {
    inner: Arc<Inner>,
}

struct Inner {
    queues: QueueService,
    store: Arc<dyn QueueStore>,
    http_wake: Arc<Notify>,
    events_wake: OnceLock<Arc<dyn Fn() + Send + Sync>>,
    sequence: AtomicU64,
    /// (topic ARN, deduplication id) → (message id, sequence number, until).
    fifo_dedup: Mutex<HashMap<(String, String), SeenPublish>>,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, TopicError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(TopicError::from),
        Err(_) => Err(TopicError::Queue(QueueError::Stopped)),
    }
}

fn not_found() -> TopicError {
    TopicError::NotFound("Topic does not exist".into())
}

impl TopicService {
    pub fn new(queues: QueueService) -> Self {
        let store = Arc::clone(queues.store());
        Self {
            inner: Arc::new(Inner {
                queues,
                store,
                http_wake: Arc::new(Notify::new()),
                events_wake: OnceLock::new(),
                sequence: AtomicU64::new(now_ms().max(0) as u64 * 1000),
                fifo_dedup: Mutex::default(),
            }),
        }
    }

    /// Called after a publish stored asynchronous invocations (wakes their dispatcher).
    pub fn on_async_events(&self, wake: Arc<dyn Fn() + Send + Sync>) {
        let _ = self.inner.events_wake.set(wake);
    }

    pub fn queues(&self) -> &QueueService {
        &self.inner.queues
    }

    pub(crate) fn store(&self) -> &Arc<dyn QueueStore> {
        &self.inner.store
    }

    pub(crate) fn http_wake(&self) -> &Arc<Notify> {
        &self.inner.http_wake
    }

    fn region(&self) -> &str {
        &self.inner.queues.config().region
    }

    pub fn topic_arn(&self, account: &str, name: &str) -> String {
        format!("arn:aws:sns:{}:{account}:{name}", self.region())
    }

    // ---------------------------------------------------------------- topics

    pub async fn create_topic(
        &self,
        account: &str,
        name: &str,
        attrs: BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
    ) -> Result<String, TopicError> {
        let fifo = attrs
            .get("FifoTopic")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if !names::valid_topic_name(name, fifo) {
            return Err(TopicError::invalid(if name.ends_with(".fifo") {
                "Topic Name: Fifo Topic names must end with .fifo and must be made up of only \
                 uppercase and lowercase ASCII letters, numbers, underscores, and hyphens, and \
                 must be between 1 and 256 characters long."
            } else {
                "Topic Name"
            }));
        }
        let mut normalized = BTreeMap::new();
        for (k, v) in &attrs {
            normalized.insert(k.clone(), normalize_topic_attribute(k, v, fifo)?);
        }
        check_tags(&tags)?;
        let arn = self.topic_arn(account, name);
        let rec = TopicRecord {
            arn: arn.clone(),
            account: account.to_string(),
            name: name.to_string(),
            attributes: normalized.clone(),
            tags,
            created_ms: now_ms(),
        };
        let store = Arc::clone(&self.inner.store);
        let (existing, created) = blocking(move || store.create_topic(&rec)).await?;
        if !created {
            for (k, v) in &normalized {
                if existing.attributes.get(k) != Some(v) {
                    return Err(TopicError::invalid(
                        "Attributes Reason: Topic already exists with different attributes",
                    ));
                }
            }
        }
        Ok(arn)
    }

    pub async fn topic(&self, arn: &str) -> Result<TopicRecord, TopicError> {
        if names::parse_topic_arn(arn).is_none() {
            return Err(TopicError::invalid("TopicArn"));
        }
        let store = Arc::clone(&self.inner.store);
        let arn = arn.to_string();
        blocking(move || store.topic(&arn))
            .await?
            .ok_or_else(not_found)
    }

    pub async fn delete_topic(&self, arn: &str) -> Result<(), TopicError> {
        if names::parse_topic_arn(arn).is_none() {
            return Err(TopicError::invalid("TopicArn"));
        }
        let store = Arc::clone(&self.inner.store);
        let arn = arn.to_string();
        blocking(move || store.delete_topic(&arn)).await?;
        Ok(())
    }

    /// ListTopics: 100 per page; the token is the last ARN returned.
    pub async fn list_topics(
        &self,
        account: &str,
        next_token: Option<&str>,
    ) -> Result<(Vec<String>, Option<String>), TopicError> {
        let store = Arc::clone(&self.inner.store);
        let arns: Vec<String> = blocking(move || store.topics())
            .await?
            .into_iter()
            .filter(|t| t.account == account)
            .map(|t| t.arn)
            .collect();
        page(arns, next_token, 100)
    }

    pub async fn topic_attributes(
        &self,
        arn: &str,
    ) -> Result<BTreeMap<String, String>, TopicError> {
        let t = self.topic(arn).await?;
        let subs = self.subscriptions_of(Some(arn)).await?;
        let confirmed = subs.iter().filter(|s| s.confirmed).count();
        let mut out = BTreeMap::new();
        out.insert("TopicArn".into(), t.arn.clone());
        out.insert("Owner".into(), t.account.clone());
        out.insert("DisplayName".into(), String::new());
        out.insert("Policy".into(), default_policy(&t));
        out.insert(
            "EffectiveDeliveryPolicy".into(),
            DEFAULT_DELIVERY_POLICY.into(),
        );
        out.insert("SubscriptionsConfirmed".into(), confirmed.to_string());
        out.insert(
            "SubscriptionsPending".into(),
            (subs.len() - confirmed).to_string(),
        );
        out.insert("SubscriptionsDeleted".into(), "0".into());
        for (k, v) in &t.attributes {
            out.insert(k.clone(), v.clone());
        }
        Ok(out)
    }

    pub async fn set_topic_attribute(
        &self,
        arn: &str,
        name: &str,
        value: &str,
    ) -> Result<(), TopicError> {
        let mut t = self.topic(arn).await?;
        let fifo = t.attributes.get("FifoTopic").is_some_and(|v| v == "true");
        if name == "FifoTopic" {
            return Err(TopicError::invalid("AttributeName"));
        }
        let v = normalize_topic_attribute(name, value, fifo)?;
        t.attributes.insert(name.to_string(), v);
        let store = Arc::clone(&self.inner.store);
        blocking(move || store.put_topic(&t)).await
    }

    pub async fn tag(&self, arn: &str, tags: BTreeMap<String, String>) -> Result<(), TopicError> {
        let mut t = self.tagged(arn).await?;
        t.tags.extend(tags);
        check_tags(&t.tags)?;
        let store = Arc::clone(&self.inner.store);
        blocking(move || store.put_topic(&t)).await
    }

    pub async fn untag(&self, arn: &str, keys: &[String]) -> Result<(), TopicError> {
        let mut t = self.tagged(arn).await?;
        for k in keys {
            t.tags.remove(k);
        }
        let store = Arc::clone(&self.inner.store);
        blocking(move || store.put_topic(&t)).await
    }

    pub async fn tags(&self, arn: &str) -> Result<BTreeMap<String, String>, TopicError> {
        Ok(self.tagged(arn).await?.tags)
    }

    async fn tagged(&self, arn: &str) -> Result<TopicRecord, TopicError> {
        self.topic(arn)
            .await
            .map_err(|_| TopicError::ResourceNotFound("Resource does not exist".into()))
    }
}

fn normalize_topic_attribute(name: &str, value: &str, fifo: bool) -> Result<String, TopicError> {
    if !TOPIC_ATTRIBUTES.contains(&name) {
        return Err(TopicError::invalid("AttributeName"));
    }
    let bool_value = |v: &str| match v.to_ascii_lowercase().as_str() {
        "true" => Ok("true".to_string()),
        "false" => Ok("false".to_string()),
        _ => Err(TopicError::invalid(format!(
            "Attributes Reason: {name}: invalid value"
        ))),
    };
    match name {
        "FifoTopic" => bool_value(value),
        "ContentBasedDeduplication" if !fifo => Err(TopicError::invalid(
            "Attributes Reason: Content-based deduplication can only be set for FIFO topics",
        )),
        "ContentBasedDeduplication" => bool_value(value),
        "SignatureVersion" if value != "1" && value != "2" => Err(TopicError::invalid(
            "Attributes Reason: SignatureVersion must be 1 or 2",
        )),
        "TracingConfig" if value != "PassThrough" && value != "Active" => Err(TopicError::invalid(
            "Attributes Reason: TracingConfig must be PassThrough or Active",
        )),
        "Policy" | "DeliveryPolicy" | "ArchivePolicy" | "DataProtectionPolicy"
            if !value.is_empty() && serde_json::from_str::<Value>(value).is_err() =>
        {
            Err(TopicError::invalid(format!(
                "Attributes Reason: {name}: invalid JSON"
            )))
        }
        _ => Ok(value.to_string()),
    }
}

fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), TopicError> {
    if tags.len() > 50 {
        return Err(TopicError::invalid(
            "Tags Reason: Could not complete request: tag quota of per resource exceeded",
        ));
    }
    if tags.keys().any(|k| k.is_empty() || k.len() > 128) || tags.values().any(|v| v.len() > 256) {
        return Err(TopicError::invalid("Tags"));
    }
    Ok(())
}

fn page(
    items: Vec<String>,
    next_token: Option<&str>,
    size: usize,
) -> Result<(Vec<String>, Option<String>), TopicError> {
    let rest: Vec<String> = match next_token.filter(|t| !t.is_empty()) {
        Some(t) => items.into_iter().filter(|a| a.as_str() > t).collect(),
        None => items,
    };
    let more = rest.len() > size;
    let page: Vec<String> = rest.into_iter().take(size).collect();
    let token = more.then(|| page.last().cloned()).flatten();
    Ok((page, token))
}

const DEFAULT_DELIVERY_POLICY: &str = r#"{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":1,"maxDelayTarget":20,"numRetries":10,"numMaxDelayRetries":0,"numNoDelayRetries":3,"numMinDelayRetries":2,"backoffFunction":"exponential"},"disableSubscriptionOverrides":false}}"#;

fn default_policy(t: &TopicRecord) -> String {
    json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission",
                       "SNS:RemovePermission", "SNS:DeleteTopic", "SNS:Subscribe",
                       "SNS:ListSubscriptionsByTopic", "SNS:Publish"],
            "Resource": t.arn,
            "Condition": {"StringEquals": {"AWS:SourceOwner": t.account}},
        }],
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use kindling_model::messaging::{AttributeValue, SubscriptionRecord};

    use super::publish::{filter_matches, structured};
    use super::subscriptions::normalize_subscription_attribute;
    use super::*;

    fn sub(attrs: &[(&str, &str)]) -> SubscriptionRecord {
        SubscriptionRecord {
            arn: "a".into(),
            topic_arn: "t".into(),
            protocol: "sqs".into(),
            endpoint: "e".into(),
            owner: "o".into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            confirmed: true,
            token: None,
            base_url: "http://x".into(),
        }
    }

    fn s(t: &str, v: &str) -> AttributeValue {
        AttributeValue {
            data_type: t.into(),
            string_value: Some(v.into()),
            binary_value: None,
        }
    }

    #[test]
    fn filter_policies_in_both_scopes() {
        let mut attrs = BTreeMap::new();
        attrs.insert("color".to_string(), s("String", "red"));
        attrs.insert("size".to_string(), s("Number", "5"));
        attrs.insert("tags".to_string(), s("String.Array", r#"["a","b"]"#));
        let by_attr = sub(&[(
            "FilterPolicy",
            r#"{"color":["red"],"size":[{"numeric":[">",3]}],"tags":["b"]}"#,
        )]);
        assert!(filter_matches(&by_attr, "x", &attrs));
        let miss = sub(&[("FilterPolicy", r#"{"color":["blue"]}"#)]);
        assert!(!filter_matches(&miss, "x", &attrs));
        let by_body = sub(&[
            (
                "FilterPolicy",
                r#"{"order":{"total":[{"numeric":[">=",100]}]}}"#,
            ),
            ("FilterPolicyScope", "MessageBody"),
        ]);
        assert!(filter_matches(
            &by_body,
            r#"{"order":{"total":150}}"#,
            &BTreeMap::new()
        ));
        assert!(!filter_matches(
            &by_body,
            r#"{"order":{"total":50}}"#,
            &BTreeMap::new()
        ));
        assert!(!filter_matches(&by_body, "not json", &BTreeMap::new()));
    }

    #[test]
    fn subscription_attributes_are_checked() {
        assert!(normalize_subscription_attribute("Bogus", "x").is_err());
        assert!(matches!(
            normalize_subscription_attribute(
                "FilterPolicy",
                r#"{"a":[1],"b":[1],"c":[1],"d":[1],"e":[1],"f":[1]}"#
            ),
            Err(TopicError::FilterPolicyLimitExceeded(_))
        ));
        assert_eq!(
            normalize_subscription_attribute("RawMessageDelivery", "TRUE").unwrap(),
            Some("true".into())
        );
        assert!(structured(r#"{"sqs":"x"}"#).is_err());
        assert!(structured(r#"{"default":"x","sqs":"y"}"#).is_ok());
    }
}
