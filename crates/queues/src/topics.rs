//! The SNS domain: topics, subscriptions, filter policies and the fan-out of a publish.
//!
//! A publish computes every delivery first (which subscriptions match, the body each protocol
//! gets) and stores them all in one durable transaction through the queue writer: messages
//! for subscribed queues, asynchronous Lambda invocations (the events queue's own table, read
//! by its dispatcher) and pending HTTP POSTs (sent by [`crate::http`]). After a 200 nothing
//! of it can be lost.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kindling_filter::Pattern;
use kindling_model::events::AsyncEvent;
use kindling_model::messaging::{AttributeValue, HttpDelivery, SubscriptionRecord, TopicRecord};
use kindling_model::timefmt::iso8601_z;
use kindling_store::messaging::Delivery;
use kindling_store::{QueueStore, StoreError};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use crate::error::{QueueError, TopicError};
use crate::message::{AttributeInput, SendInput, sha256_hex};
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

    // ---------------------------------------------------------------- subscriptions

    pub async fn subscribe(&self, input: SubscribeInput) -> Result<String, TopicError> {
        let topic = self.topic(&input.topic_arn).await?;
        let protocol = input.protocol.to_ascii_lowercase();
        if !PROTOCOLS.contains(&protocol.as_str()) {
            return Err(TopicError::invalid(format!(
                "Invalid protocol type: {} (Kindling delivers to http, https, sqs and lambda)",
                input.protocol
            )));
        }
        let endpoint = input
            .endpoint
            .clone()
            .filter(|e| !e.is_empty())
            .ok_or_else(|| TopicError::invalid("Invalid parameter: Endpoint"))?;
        match protocol.as_str() {
            "sqs" if names::parse_queue_arn(&endpoint).is_none() => {
                return Err(TopicError::invalid("SQS endpoint ARN"));
            }
            "lambda"
                if !endpoint.starts_with("arn:")
                    || kindling_model::FunctionRef::parse(&endpoint, true).is_err() =>
            {
                return Err(TopicError::invalid("Lambda endpoint ARN"));
            }
            "http" if !endpoint.starts_with("http://") => {
                return Err(TopicError::invalid(
                    "Endpoint must match the specified protocol",
                ));
            }
            "https" if !endpoint.starts_with("https://") => {
                return Err(TopicError::invalid(
                    "Endpoint must match the specified protocol",
                ));
            }
            _ => {}
        }
        let mut attributes = BTreeMap::new();
        for (k, v) in &input.attributes {
            if let Some(v) = normalize_subscription_attribute(k, v)? {
                attributes.insert(k.clone(), v);
            }
        }
        let existing = self.subscriptions_of(Some(&topic.arn)).await?;
        if let Some(s) = existing
            .iter()
            .find(|s| s.protocol == protocol && s.endpoint == endpoint)
        {
            if !input.attributes.is_empty() && s.attributes != attributes {
                return Err(TopicError::invalid(
                    "Attributes Reason: Subscription already exists with different attributes",
                ));
            }
            return Ok(if s.confirmed || input.return_subscription_arn {
                s.arn.clone()
            } else {
                "pending confirmation".into()
            });
        }
        let pending = matches!(protocol.as_str(), "http" | "https");
        let rec = SubscriptionRecord {
            arn: format!("{}:{}", topic.arn, uuid::Uuid::new_v4()),
            topic_arn: topic.arn.clone(),
            protocol: protocol.clone(),
            endpoint,
            owner: topic.account.clone(),
            attributes,
            confirmed: !pending,
            token: pending.then(|| sha256_hex(uuid::Uuid::new_v4().as_bytes())),
            base_url: input.base_url.trim_end_matches('/').to_string(),
        };
        let store = Arc::clone(&self.inner.store);
        let stored = rec.clone();
        blocking(move || store.put_subscription(&stored)).await?;
        if pending {
            let d = self.confirmation(&rec);
            self.inner
                .queues
                .deliver(Delivery {
                    http: vec![d],
                    ..Delivery::default()
                })
                .await
                .map_err(TopicError::Queue)?;
            self.inner.http_wake.notify_one();
        }
        Ok(if pending && !input.return_subscription_arn {
            "pending confirmation".into()
        } else {
            rec.arn
        })
    }

    fn confirmation(&self, s: &SubscriptionRecord) -> HttpDelivery {
        let now = now_ms();
        let message_id = uuid::Uuid::new_v4().to_string();
        let token = s.token.clone().unwrap_or_default();
        let subscribe_url = format!(
            "{}/?Action=ConfirmSubscription&Version=2010-03-31&TopicArn={}&Token={}",
            s.base_url,
            url_encode(&s.topic_arn),
            token
        );
        let body = json!({
            "Type": "SubscriptionConfirmation",
            "MessageId": message_id,
            "Token": token,
            "TopicArn": s.topic_arn,
            "Message": format!(
                "You have chosen to subscribe to the topic {}.\nTo confirm the subscription, \
                 visit the SubscribeURL included in this message.",
                s.topic_arn
            ),
            "SubscribeURL": subscribe_url,
            "Timestamp": iso8601_z(now),
            "SignatureVersion": "1",
            "Signature": signature(&[&message_id, &s.topic_arn]),
            "SigningCertURL": cert_url(&s.base_url),
        });
        HttpDelivery {
            id: uuid::Uuid::new_v4().to_string(),
            subscription_arn: s.arn.clone(),
            endpoint: s.endpoint.clone(),
            message_type: "SubscriptionConfirmation".into(),
            message_id,
            topic_arn: s.topic_arn.clone(),
            body: body.to_string(),
            attempts: 0,
            not_before_ms: now,
            created_ms: now,
        }
    }

    pub async fn confirm_subscription(
        &self,
        topic_arn: &str,
        token: &str,
    ) -> Result<String, TopicError> {
        self.topic(topic_arn).await?;
        let subs = self.subscriptions_of(Some(topic_arn)).await?;
        let Some(mut s) = subs.into_iter().find(|s| s.token.as_deref() == Some(token)) else {
            return Err(TopicError::invalid("Invalid token"));
        };
        if !s.confirmed {
            s.confirmed = true;
            let store = Arc::clone(&self.inner.store);
            let stored = s.clone();
            blocking(move || store.put_subscription(&stored)).await?;
        }
        Ok(s.arn)
    }

    pub async fn unsubscribe(&self, arn: &str) -> Result<(), TopicError> {
        if !arn.starts_with("arn:aws:sns:") {
            return Err(TopicError::invalid("SubscriptionArn"));
        }
        let store = Arc::clone(&self.inner.store);
        let arn = arn.to_string();
        blocking(move || store.delete_subscription(&arn)).await?;
        Ok(())
    }

    async fn subscriptions_of(
        &self,
        topic_arn: Option<&str>,
    ) -> Result<Vec<SubscriptionRecord>, TopicError> {
        let store = Arc::clone(&self.inner.store);
        let topic = topic_arn.map(str::to_string);
        blocking(move || store.subscriptions(topic.as_deref())).await
    }

    /// ListSubscriptions / ListSubscriptionsByTopic: 100 per page.
    pub async fn list_subscriptions(
        &self,
        account: &str,
        topic_arn: Option<&str>,
        next_token: Option<&str>,
    ) -> Result<(Vec<SubscriptionRecord>, Option<String>), TopicError> {
        if let Some(t) = topic_arn {
            self.topic(t).await?;
        }
        let subs: Vec<SubscriptionRecord> = self
            .subscriptions_of(topic_arn)
            .await?
            .into_iter()
            .filter(|s| s.owner == account)
            .collect();
        let start = match next_token.filter(|t| !t.is_empty()) {
            Some(t) => t
                .parse::<usize>()
                .map_err(|_| TopicError::invalid("NextToken"))?,
            None => 0,
        };
        let end = (start + 100).min(subs.len());
        let token = (end < subs.len()).then(|| end.to_string());
        Ok((
            subs.get(start..end).map(<[_]>::to_vec).unwrap_or_default(),
            token,
        ))
    }

    pub async fn subscription(&self, arn: &str) -> Result<SubscriptionRecord, TopicError> {
        let store = Arc::clone(&self.inner.store);
        let a = arn.to_string();
        blocking(move || store.subscription(&a))
            .await?
            .ok_or_else(|| TopicError::NotFound("Subscription does not exist".into()))
    }

    pub async fn subscription_attributes(
        &self,
        arn: &str,
    ) -> Result<BTreeMap<String, String>, TopicError> {
        let s = self.subscription(arn).await?;
        let mut out = BTreeMap::new();
        out.insert("SubscriptionArn".into(), s.arn.clone());
        out.insert("TopicArn".into(), s.topic_arn.clone());
        out.insert("Owner".into(), s.owner.clone());
        out.insert("Protocol".into(), s.protocol.clone());
        out.insert("Endpoint".into(), s.endpoint.clone());
        out.insert(
            "ConfirmationWasAuthenticated".into(),
            s.confirmed.to_string(),
        );
        out.insert("PendingConfirmation".into(), (!s.confirmed).to_string());
        out.insert("RawMessageDelivery".into(), "false".into());
        if matches!(s.protocol.as_str(), "http" | "https") {
            out.insert(
                "EffectiveDeliveryPolicy".into(),
                DEFAULT_DELIVERY_POLICY.into(),
            );
        }
        for (k, v) in &s.attributes {
            out.insert(k.clone(), v.clone());
        }
        if s.attributes.contains_key("FilterPolicy")
            && !s.attributes.contains_key("FilterPolicyScope")
        {
            out.insert("FilterPolicyScope".into(), "MessageAttributes".into());
        }
        Ok(out)
    }

    pub async fn set_subscription_attribute(
        &self,
        arn: &str,
        name: &str,
        value: &str,
    ) -> Result<(), TopicError> {
        let mut s = self.subscription(arn).await?;
        match normalize_subscription_attribute(name, value)? {
            Some(v) => {
                s.attributes.insert(name.to_string(), v);
            }
            None => {
                s.attributes.remove(name);
            }
        }
        let store = Arc::clone(&self.inner.store);
        blocking(move || store.put_subscription(&s)).await
    }

    // ---------------------------------------------------------------- publish

    pub async fn publish(&self, input: &PublishInput) -> Result<PublishResult, TopicError> {
        let (result, delivery) = self.prepare(input).await?;
        self.commit(delivery).await?;
        Ok(result)
    }

    /// PublishBatch: entries validated alone; the valid ones stored in one transaction.
    pub async fn publish_batch(
        &self,
        topic_arn: &str,
        entries: Vec<(String, PublishInput)>,
    ) -> Result<Vec<(String, Result<PublishResult, TopicError>)>, TopicError> {
        if entries.is_empty() {
            return Err(TopicError::EmptyBatchRequest);
        }
        if entries.len() > 10 {
            return Err(TopicError::TooManyEntriesInBatchRequest);
        }
        let mut seen = std::collections::HashSet::new();
        let mut total = 0;
        for (id, e) in &entries {
            if id.is_empty()
                || id.len() > 80
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(TopicError::InvalidBatchEntryId);
            }
            if !seen.insert(id.clone()) {
                return Err(TopicError::BatchEntryIdsNotDistinct);
            }
            total += e.message.as_ref().map_or(0, String::len);
        }
        if total > MAX_PUBLISH_BYTES {
            return Err(TopicError::BatchRequestTooLong);
        }
        self.topic(topic_arn).await?;
        let mut all = Delivery::default();
        let mut out = Vec::new();
        for (id, mut e) in entries {
            e.topic_arn = Some(topic_arn.to_string());
            match self.prepare(&e).await {
                Ok((r, d)) => {
                    all.messages.extend(d.messages);
                    all.events.extend(d.events);
                    all.http.extend(d.http);
                    out.push((id, Ok(r)));
                }
                Err(err) if err.is_internal() => return Err(err),
                Err(err) => out.push((id, Err(err))),
            }
        }
        self.commit(all).await?;
        Ok(out)
    }

    async fn commit(&self, delivery: Delivery) -> Result<(), TopicError> {
        let (events, http) = (!delivery.events.is_empty(), !delivery.http.is_empty());
        self.inner
            .queues
            .deliver(delivery)
            .await
            .map_err(TopicError::Queue)?;
        self.after_commit(events, http);
        Ok(())
    }

    pub(crate) fn after_commit(&self, events: bool, http: bool) {
        if http {
            self.inner.http_wake.notify_one();
        }
        if events && let Some(wake) = self.inner.events_wake.get() {
            wake();
        }
    }

    /// Validates a publish and computes its deliveries.
    pub(crate) async fn prepare(
        &self,
        input: &PublishInput,
    ) -> Result<(PublishResult, Delivery), TopicError> {
        if input.phone_number.is_some() {
            return Err(TopicError::invalid(
                "PhoneNumber Reason: Kindling does not send SMS; publish to a topic",
            ));
        }
        let arn = match (&input.topic_arn, &input.target_arn) {
            (Some(t), None) | (None, Some(t)) => t.clone(),
            (Some(_), Some(_)) => {
                return Err(TopicError::invalid(
                    "Only one of TopicArn or TargetArn may be given",
                ));
            }
            (None, None) => {
                return Err(TopicError::invalid(
                    "TopicArn or TargetArn Reason: no value for required parameter",
                ));
            }
        };
        let topic = self.topic(&arn).await?;
        let message = input
            .message
            .clone()
            .filter(|m| !m.is_empty())
            .ok_or_else(|| TopicError::invalid("Empty message"))?;
        if message.len() > MAX_PUBLISH_BYTES {
            return Err(TopicError::invalid("Message too long"));
        }
        if let Some(s) = &input.subject
            && (s.is_empty() || s.chars().count() >= 100 || s.contains(['\n', '\r']))
        {
            return Err(TopicError::invalid("Subject"));
        }
        let per_protocol = match input.message_structure.as_deref() {
            None => None,
            Some("json") => Some(structured(&message)?),
            Some(other) => {
                return Err(TopicError::invalid(format!("MessageStructure: {other}")));
            }
        };
        let attributes = sns_attributes(&input.attributes)?;
        let fifo = topic
            .attributes
            .get("FifoTopic")
            .is_some_and(|v| v == "true");
        let mut sequence_number = None;
        let mut dedup_id = input.dedup_id.clone();
        if fifo {
            let Some(_) = &input.group_id else {
                return Err(TopicError::invalid(
                    "The MessageGroupId parameter is required for FIFO topics",
                ));
            };
            if dedup_id.is_none() {
                if topic
                    .attributes
                    .get("ContentBasedDeduplication")
                    .is_some_and(|v| v == "true")
                {
                    dedup_id = Some(sha256_hex(message.as_bytes()));
                } else {
                    return Err(TopicError::invalid(
                        "The topic should either have ContentBasedDeduplication enabled or \
                         MessageDeduplicationId provided explicitly",
                    ));
                }
            }
            sequence_number = Some(format!(
                "{}",
                10_000_000_000_000_000_000u128
                    + u128::from(self.inner.sequence.fetch_add(1, Ordering::Relaxed))
            ));
        } else if input.dedup_id.is_some() {
            return Err(TopicError::invalid(
                "MessageDeduplicationId Reason: The request includes MessageDeduplicationId \
                 parameter that is not valid for this topic type",
            ));
        }
        let now = now_ms();
        let message_id = uuid::Uuid::new_v4().to_string();
        if let (true, Some(d)) = (fifo, &dedup_id) {
            let mut seen = self
                .inner
                .fifo_dedup
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            seen.retain(|_, (_, _, until)| *until > now);
            let key = (topic.arn.clone(), d.clone());
            if let Some((id, seq, _)) = seen.get(&key) {
                return Ok((
                    PublishResult {
                        message_id: id.clone(),
                        sequence_number: Some(seq.clone()),
                    },
                    Delivery::default(),
                ));
            }
            seen.insert(
                key,
                (
                    message_id.clone(),
                    sequence_number.clone().unwrap_or_default(),
                    now + crate::message::DEDUP_WINDOW_MS,
                ),
            );
        }
        let publish = Published {
            topic: &topic,
            message_id: &message_id,
            message: &message,
            per_protocol: per_protocol.as_ref(),
            subject: input.subject.as_deref(),
            attributes: &attributes,
            group_id: input.group_id.as_deref(),
            dedup_id: dedup_id.as_deref(),
            sequence_number: sequence_number.as_deref(),
            trace_header: input.trace_header.as_deref(),
            now,
        };
        let subs = self.subscriptions_of(Some(&topic.arn)).await?;
        let mut delivery = Delivery::default();
        for s in subs.iter().filter(|s| s.confirmed) {
            if !filter_matches(s, &message, &attributes) {
                continue;
            }
            self.fan_out(&publish, s, &mut delivery).await;
        }
        Ok((
            PublishResult {
                message_id,
                sequence_number,
            },
            delivery,
        ))
    }

    async fn fan_out(&self, p: &Published<'_>, s: &SubscriptionRecord, out: &mut Delivery) {
        let text = p.text_for(&s.protocol);
        let raw = s
            .attributes
            .get("RawMessageDelivery")
            .is_some_and(|v| v == "true");
        match s.protocol.as_str() {
            "sqs" => {
                let body = if raw {
                    text.to_string()
                } else {
                    p.envelope(s, text, false).to_string()
                };
                let attributes = if raw {
                    p.attributes.clone()
                } else {
                    BTreeMap::new()
                };
                let dead_letter =
                    redrive_target(s).map(|arn| (arn, body.clone(), attributes.clone()));
                match self.queue_message(&s.endpoint, body, attributes, p).await {
                    Ok(Some(m)) => out.messages.push(m),
                    // The subscribed queue does not exist: the delivery fails, and goes to the
                    // subscription's dead-letter queue when it has one.
                    Ok(None) => {
                        if let Some((dlq, body, attributes)) = dead_letter
                            && let Ok(Some(m)) = self.queue_message(&dlq, body, attributes, p).await
                        {
                            out.messages.push(m);
                        }
                    }
                    Err(e) => tracing::warn!(
                        subscription = %s.arn,
                        error = &e as &dyn std::error::Error,
                        "SNS could not deliver to its SQS subscriber"
                    ),
                }
            }
            "lambda" => {
                let Ok(r) = kindling_model::FunctionRef::parse(&s.endpoint, true) else {
                    return;
                };
                let event = json!({"Records": [{
                    "EventSource": "aws:sns",
                    "EventVersion": "1.0",
                    "EventSubscriptionArn": s.arn,
                    "Sns": p.envelope(s, text, true),
                }]});
                out.events.push(AsyncEvent {
                    id: uuid::Uuid::new_v4().to_string(),
                    function_name: r.name,
                    qualifier: r.qualifier.map(|q| q.to_string()),
                    payload: event.to_string().into_bytes(),
                    enqueued_ms: p.now,
                    attempts: 0,
                    not_before_ms: p.now,
                    last_result: None,
                    trace_header: p.trace_header.map(str::to_string),
                });
            }
            _ => {
                let body = if raw {
                    text.to_string()
                } else {
                    p.envelope(s, text, false).to_string()
                };
                out.http.push(HttpDelivery {
                    id: uuid::Uuid::new_v4().to_string(),
                    subscription_arn: s.arn.clone(),
                    endpoint: s.endpoint.clone(),
                    message_type: "Notification".into(),
                    message_id: p.message_id.to_string(),
                    topic_arn: p.topic.arn.clone(),
                    body,
                    attempts: 0,
                    not_before_ms: p.now,
                    created_ms: p.now,
                });
            }
        }
    }

    /// A message for the queue `queue_arn` (`None` when the queue does not exist: the
    /// delivery fails, as SNS's does, and goes to the subscription's dead-letter queue if it
    /// has one — handled by the caller logging it).
    async fn queue_message(
        &self,
        queue_arn: &str,
        body: String,
        attributes: BTreeMap<String, AttributeValue>,
        p: &Published<'_>,
    ) -> Result<Option<(i64, kindling_model::messaging::NewMessage)>, QueueError> {
        let q = match self.inner.queues.queue_by_arn(queue_arn).await {
            Ok(q) => q,
            Err(QueueError::QueueDoesNotExist) => {
                tracing::warn!(queue = queue_arn, topic = %p.topic.arn, "SNS subscriber queue does not exist; message not delivered");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let input = SendInput {
            body,
            attributes: attributes
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        AttributeInput {
                            data_type: Some(v.data_type),
                            string_value: v.string_value,
                            binary_value: v.binary_value,
                            has_list_values: false,
                        },
                    )
                })
                .collect(),
            group_id: if q.fifo {
                p.group_id.map(str::to_string)
            } else {
                None
            },
            dedup_id: if q.fifo {
                p.dedup_id.map(str::to_string)
            } else {
                None
            },
            system_attributes: p
                .trace_header
                .map(|h| {
                    BTreeMap::from([(
                        "AWSTraceHeader".to_string(),
                        AttributeInput {
                            data_type: Some("String".into()),
                            string_value: Some(h.to_string()),
                            ..AttributeInput::default()
                        },
                    )])
                })
                .unwrap_or_default(),
            ..SendInput::default()
        };
        let (m, _) = QueueService::build_message(&q, &input, &p.topic.account, p.now)?;
        Ok(Some((q.id, m)))
    }
}

/// The subscription's dead-letter queue (`RedrivePolicy.deadLetterTargetArn`).
fn redrive_target(s: &SubscriptionRecord) -> Option<String> {
    let policy: Value = serde_json::from_str(s.attributes.get("RedrivePolicy")?).ok()?;
    policy
        .get("deadLetterTargetArn")?
        .as_str()
        .map(str::to_string)
}

/// One publish, as its deliveries need it.
struct Published<'a> {
    topic: &'a TopicRecord,
    message_id: &'a str,
    message: &'a str,
    per_protocol: Option<&'a Map<String, Value>>,
    subject: Option<&'a str>,
    attributes: &'a BTreeMap<String, AttributeValue>,
    group_id: Option<&'a str>,
    dedup_id: Option<&'a str>,
    sequence_number: Option<&'a str>,
    trace_header: Option<&'a str>,
    now: i64,
}

impl Published<'_> {
    /// The message text a protocol gets (`MessageStructure=json`: its key, else `default`).
    fn text_for(&self, protocol: &str) -> &str {
        match self.per_protocol {
            Some(map) => map
                .get(protocol)
                .and_then(Value::as_str)
                .or_else(|| map.get("default").and_then(Value::as_str))
                .unwrap_or(self.message),
            None => self.message,
        }
    }

    /// The JSON notification (`lambda`: the spelling of the Lambda event's `Sns` object).
    fn envelope(&self, s: &SubscriptionRecord, text: &str, lambda: bool) -> Value {
        let mut v = Map::new();
        v.insert("Type".into(), json!("Notification"));
        v.insert("MessageId".into(), json!(self.message_id));
        if let Some(seq) = self.sequence_number {
            v.insert("SequenceNumber".into(), json!(seq));
        }
        v.insert("TopicArn".into(), json!(self.topic.arn));
        match self.subject {
            Some(subject) => {
                v.insert("Subject".into(), json!(subject));
            }
            None if lambda => {
                v.insert("Subject".into(), Value::Null);
            }
            None => {}
        }
        v.insert("Message".into(), json!(text));
        let timestamp = iso8601_z(self.now);
        v.insert("Timestamp".into(), json!(timestamp));
        v.insert("SignatureVersion".into(), json!("1"));
        v.insert(
            "Signature".into(),
            json!(signature(&[
                self.message_id,
                &self.topic.arn,
                text,
                &timestamp
            ])),
        );
        let unsubscribe = format!(
            "{}/?Action=Unsubscribe&Version=2010-03-31&SubscriptionArn={}",
            s.base_url,
            url_encode(&s.arn)
        );
        if lambda {
            v.insert("SigningCertUrl".into(), json!(cert_url(&s.base_url)));
            v.insert("UnsubscribeUrl".into(), json!(unsubscribe));
        } else {
            v.insert("SigningCertURL".into(), json!(cert_url(&s.base_url)));
            v.insert("UnsubscribeURL".into(), json!(unsubscribe));
        }
        if lambda || !self.attributes.is_empty() {
            let attrs: Map<String, Value> = self
                .attributes
                .iter()
                .map(|(k, a)| {
                    let value = match (&a.string_value, &a.binary_value) {
                        (Some(s), _) => s.clone(),
                        (None, Some(b)) => STANDARD.encode(b),
                        (None, None) => String::new(),
                    };
                    (k.clone(), json!({"Type": a.data_type, "Value": value}))
                })
                .collect();
            v.insert("MessageAttributes".into(), Value::Object(attrs));
        }
        Value::Object(v)
    }
}

/// SNS signs notifications with a key whose certificate it serves at `SigningCertURL`.
/// Kindling does not hold such a key: the signature is a SHA-256 digest of the signed fields
/// (base64), which proves nothing and cannot be verified against a certificate (none is
/// served). See ARCHITECTURE ("SNS message signatures").
fn signature(fields: &[&str]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for f in fields {
        h.update(f.as_bytes());
        h.update(b"\n");
    }
    STANDARD.encode(h.finalize())
}

fn cert_url(base: &str) -> String {
    format!("{base}/_kindling/sns/SimpleNotificationService-kindling.pem")
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn structured(message: &str) -> Result<Map<String, Value>, TopicError> {
    let bad = || TopicError::invalid("Message Structure - No default entry in JSON message body");
    match serde_json::from_str::<Value>(message) {
        Ok(Value::Object(map)) if map.get("default").is_some_and(Value::is_string) => Ok(map),
        Ok(Value::Object(_)) => Err(bad()),
        _ => Err(TopicError::invalid(
            "Message Structure - JSON message body failed to parse",
        )),
    }
}

/// Validates SNS message attributes (≤ 10; String, String.Array, Number, Binary).
fn sns_attributes(
    attrs: &BTreeMap<String, AttributeInput>,
) -> Result<BTreeMap<String, AttributeValue>, TopicError> {
    if attrs.len() > 10 {
        return Err(TopicError::InvalidParameterValue(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [10].",
            attrs.len()
        )));
    }
    let mut out = BTreeMap::new();
    for (name, a) in attrs {
        let invalid = |m: String| TopicError::InvalidParameterValue(m);
        if name.is_empty()
            || name.len() > 256
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            || name.starts_with('.')
            || name.ends_with('.')
            || name.contains("..")
            || name.to_ascii_lowercase().starts_with("aws.")
            || name.to_ascii_lowercase().starts_with("amazon.")
        {
            return Err(invalid(format!(
                "The message attribute name '{name}' is invalid."
            )));
        }
        let data_type = a.data_type.clone().unwrap_or_default();
        let base = data_type.split('.').next().unwrap_or_default();
        if !matches!(base, "String" | "Number" | "Binary") {
            return Err(invalid(format!(
                "The message attribute '{name}' has an invalid message attribute type, the set \
                 of supported type prefixes is Binary, Number, and String."
            )));
        }
        let missing = || {
            invalid(format!(
                "The message attribute '{name}' must contain non-empty message attribute value \
                 for message attribute type '{data_type}'."
            ))
        };
        let v = if base == "Binary" {
            AttributeValue {
                data_type: data_type.clone(),
                string_value: None,
                binary_value: Some(
                    a.binary_value
                        .clone()
                        .filter(|b| !b.is_empty())
                        .ok_or_else(missing)?,
                ),
            }
        } else {
            let s = a
                .string_value
                .clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(missing)?;
            if base == "Number" && s.trim().parse::<f64>().is_err() {
                return Err(invalid(format!(
                    "Could not cast message attribute '{name}' value to number."
                )));
            }
            if data_type == "String.Array"
                && !matches!(serde_json::from_str::<Value>(&s), Ok(Value::Array(_)))
            {
                return Err(invalid(format!(
                    "The message attribute '{name}' with type 'String.Array' must be a JSON array."
                )));
            }
            AttributeValue {
                data_type: data_type.clone(),
                string_value: Some(s),
                binary_value: None,
            }
        };
        out.insert(name.clone(), v);
    }
    Ok(out)
}

/// Message attributes as the filter policy sees them.
fn attribute_document(attrs: &BTreeMap<String, AttributeValue>) -> Value {
    let mut doc = Map::new();
    for (k, a) in attrs {
        let Some(s) = &a.string_value else {
            continue;
        };
        let v = if a.data_type.starts_with("Number") {
            s.trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| json!(s), Value::Number)
        } else if a.data_type == "String.Array" {
            serde_json::from_str(s).unwrap_or_else(|_| json!(s))
        } else {
            json!(s)
        };
        doc.insert(k.clone(), v);
    }
    Value::Object(doc)
}

fn filter_matches(
    s: &SubscriptionRecord,
    message: &str,
    attrs: &BTreeMap<String, AttributeValue>,
) -> bool {
    let Some(policy) = s.attributes.get("FilterPolicy").filter(|p| !p.is_empty()) else {
        return true;
    };
    let Ok(pattern) = Pattern::parse_str(policy) else {
        return false;
    };
    if s.attributes
        .get("FilterPolicyScope")
        .is_some_and(|v| v == "MessageBody")
    {
        match serde_json::from_str::<Value>(message) {
            Ok(doc @ Value::Object(_)) => pattern.matches(&doc),
            _ => false,
        }
    } else {
        pattern.matches(&attribute_document(attrs))
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

/// Checks a subscription attribute; `None` removes it.
fn normalize_subscription_attribute(name: &str, value: &str) -> Result<Option<String>, TopicError> {
    if !SUBSCRIPTION_ATTRIBUTES.contains(&name) {
        return Err(TopicError::invalid("AttributeName"));
    }
    match name {
        "RawMessageDelivery" => match value.to_ascii_lowercase().as_str() {
            "true" => Ok(Some("true".into())),
            "false" => Ok(Some("false".into())),
            _ => Err(TopicError::invalid(
                "Attributes Reason: RawMessageDelivery: Invalid value",
            )),
        },
        "FilterPolicyScope" => match value {
            "MessageAttributes" | "MessageBody" => Ok(Some(value.into())),
            _ => Err(TopicError::invalid(
                "Attributes Reason: FilterPolicyScope: Invalid value [must be MessageAttributes or MessageBody]",
            )),
        },
        "FilterPolicy" => {
            if value.trim().is_empty() || value.trim() == "{}" {
                return Ok(None);
            }
            let p = Pattern::parse_str(value)
                .map_err(|e| TopicError::invalid(format!("FilterPolicy: {e}")))?;
            let (keys, combinations) = p.complexity();
            if keys > 5 {
                return Err(TopicError::FilterPolicyLimitExceeded(
                    "FilterPolicy: Filter policy can not have more than 5 keys".into(),
                ));
            }
            if combinations > 150 {
                return Err(TopicError::FilterPolicyLimitExceeded(format!(
                    "FilterPolicy: Filter policy is too complex ({combinations} combinations; at most 150)"
                )));
            }
            Ok(Some(value.to_string()))
        }
        "RedrivePolicy" => {
            if value.trim().is_empty() {
                return Ok(None);
            }
            let target = serde_json::from_str::<Value>(value)
                .ok()
                .and_then(|v| {
                    v.get("deadLetterTargetArn")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .filter(|a| names::parse_queue_arn(a).is_some())
                .ok_or_else(|| {
                    TopicError::invalid(
                        "RedrivePolicy: deadLetterTargetArn must be an SQS queue ARN",
                    )
                })?;
            Ok(Some(json!({"deadLetterTargetArn": target}).to_string()))
        }
        "DeliveryPolicy" | "ReplayPolicy"
            if !value.is_empty() && serde_json::from_str::<Value>(value).is_err() =>
        {
            Err(TopicError::invalid(format!("{name}: invalid JSON")))
        }
        _ => Ok((!value.is_empty()).then(|| value.to_string())),
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
