//! Queues and topics as stored: SQS queues and their messages, SNS topics, subscriptions and
//! pending HTTP deliveries. Pure data; the rules live in `kindling-queues`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One SQS queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRecord {
    /// Store-assigned key (stable for the queue's life; a re-created queue gets a new one).
    pub id: i64,
    pub account: String,
    pub name: String,
    pub fifo: bool,
    /// Settable attributes, normalized (`VisibilityTimeout` → `"30"`), defaults included.
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub created_ms: i64,
    pub modified_ms: i64,
}

/// A message attribute value (`DataType` `String`/`Number`/`Binary`, custom suffixes allowed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeValue {
    pub data_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_value: Option<Vec<u8>>,
}

/// A message to add to a queue (sent, published, moved or delivered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    pub message_id: String,
    pub body: String,
    pub attributes: BTreeMap<String, AttributeValue>,
    /// Sent system attributes (`AWSTraceHeader`).
    pub system_attributes: BTreeMap<String, AttributeValue>,
    pub md5_body: String,
    pub md5_attributes: Option<String>,
    pub md5_system_attributes: Option<String>,
    pub sender_id: String,
    pub sent_ms: i64,
    /// When it first becomes receivable (sent time plus delay).
    pub visible_ms: i64,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    /// FIFO deduplication: the key (scope and id) and when it stops counting.
    pub dedup_key: Option<String>,
    pub dedup_until_ms: i64,
    /// Set on messages moved to a dead-letter queue.
    pub dead_letter_source_arn: Option<String>,
    /// Receives so far (kept when a message moves back from a dead-letter queue: 0).
    pub receive_count: u32,
    pub first_receive_ms: Option<i64>,
}

/// A message as it is in a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Position in the store (FIFO order, sequence number and receipt handles derive from it).
    pub seq: i64,
    pub message: NewMessage,
    /// The receipt nonce of the latest receive ("" before the first).
    pub receipt: String,
}

/// An SNS topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub arn: String,
    pub account: String,
    pub name: String,
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub created_ms: i64,
}

/// An SNS subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    pub arn: String,
    pub topic_arn: String,
    pub protocol: String,
    pub endpoint: String,
    pub owner: String,
    pub attributes: BTreeMap<String, String>,
    pub confirmed: bool,
    /// The confirmation token of a pending subscription.
    pub token: Option<String>,
    /// Base URL of the server as the subscriber's client reached it (`http://host:port`), for
    /// `SubscribeURL` / `UnsubscribeURL`.
    pub base_url: String,
}

/// An HTTP(S) POST SNS owes a subscriber, until it succeeds or its retries run out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpDelivery {
    pub id: String,
    pub subscription_arn: String,
    pub endpoint: String,
    /// `Notification`, `SubscriptionConfirmation` or `UnsubscribeConfirmation`.
    pub message_type: String,
    pub message_id: String,
    pub topic_arn: String,
    pub body: String,
    pub attempts: u32,
    pub not_before_ms: i64,
    pub created_ms: i64,
}
