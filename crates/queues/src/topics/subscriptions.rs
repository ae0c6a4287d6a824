//! Subscriptions: subscribe, confirm, unsubscribe, list, attributes.

use std::collections::BTreeMap;
use std::sync::Arc;

use kindling_filter::Pattern;
use kindling_model::messaging::{HttpDelivery, SubscriptionRecord};
use kindling_model::timefmt::iso8601_z;
use kindling_store::messaging::Delivery;
use serde_json::{Value, json};

use super::publish::{cert_url, signature, url_encode};
use super::{
    DEFAULT_DELIVERY_POLICY, PROTOCOLS, SUBSCRIPTION_ATTRIBUTES, SubscribeInput, TopicService,
    blocking,
};
use crate::error::TopicError;
use crate::message::sha256_hex;
use crate::names;
use crate::queues::now_ms;

impl TopicService {
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

    pub(super) async fn subscriptions_of(
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
}

/// Checks a subscription attribute; `None` removes it.
pub(super) fn normalize_subscription_attribute(
    name: &str,
    value: &str,
) -> Result<Option<String>, TopicError> {
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
