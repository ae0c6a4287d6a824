//! Publish: which subscriptions match, the body each protocol gets, and the one transaction
//! that stores every delivery.

use std::collections::BTreeMap;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kindling_filter::Pattern;
use kindling_model::events::AsyncEvent;
use kindling_model::messaging::{AttributeValue, HttpDelivery, SubscriptionRecord, TopicRecord};
use kindling_model::timefmt::iso8601_z;
use kindling_store::messaging::Delivery;
use serde_json::{Map, Value, json};

use super::{MAX_PUBLISH_BYTES, PublishInput, PublishResult, TopicService};
use crate::error::{QueueError, TopicError};
use crate::message::{AttributeInput, SendInput, sha256_hex};
use crate::queues::{QueueService, now_ms};

impl TopicService {
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
pub(super) fn signature(fields: &[&str]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for f in fields {
        h.update(f.as_bytes());
        h.update(b"\n");
    }
    STANDARD.encode(h.finalize())
}

pub(super) fn cert_url(base: &str) -> String {
    format!("{base}/_kindling/sns/SimpleNotificationService-kindling.pem")
}

pub(super) fn url_encode(s: &str) -> String {
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

pub(super) fn structured(message: &str) -> Result<Map<String, Value>, TopicError> {
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

pub(super) fn filter_matches(
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
