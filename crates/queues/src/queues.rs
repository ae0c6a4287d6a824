//! The SQS domain: one method per operation, typed inputs and outputs, no wire format.
//!
//! A poller (event source mappings) uses the same surface as the wire: [`QueueService::receive`]
//! claims up to ten messages with a visibility timeout and waits (long polling) until a message
//! is receivable or the wait ends; [`QueueService::delete_batch`] removes what was handled and
//! [`QueueService::change_visibility_batch`] returns the rest early (timeout 0). FIFO queues
//! hand out each message group in order, one batch of a group at a time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kindling_model::messaging::{AttributeValue, NewMessage, QueueRecord, StoredMessage};
use kindling_store::messaging::{
    Delivery, MoveMessage, QueueOp, QueueOpOutput, ReceiveOp, RedriveTarget, VisibilityRefusal,
};
use kindling_store::{QueueStore, StoreError};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::attributes::{self, RedrivePolicy};
use crate::commit::Committer;
use crate::digest::md5_of_attributes;
use crate::error::QueueError;
use crate::message::{self, SendInput, SendRules};
use crate::names;
use crate::receipt;

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Settings passed in by the binary.
#[derive(Debug, Clone)]
pub struct QueuesConfig {
    pub region: String,
    pub account_id: String,
    /// Most operations committed in one transaction.
    pub batch_max: usize,
    /// Set when other nodes share the store: how long a cached queue record is trusted (their
    /// writes do not reach this node's cache) and how often a long poll looks again (their
    /// sends do not wake this node's receivers). `None`: this node is the only writer.
    pub refresh: Option<Duration>,
}

/// The result of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    pub message_id: String,
    pub md5_body: String,
    pub md5_attributes: Option<String>,
    pub md5_system_attributes: Option<String>,
    pub sequence_number: Option<String>,
}

/// A receive request.
#[derive(Debug, Clone, Default)]
pub struct ReceiveInput {
    pub max_messages: Option<i64>,
    pub visibility_timeout: Option<i64>,
    pub wait_seconds: Option<i64>,
    /// System attributes to return (`All` or names), from `AttributeNames` and
    /// `MessageSystemAttributeNames`.
    pub system_attribute_names: Vec<String>,
    /// Message attributes to return: `All`, `.*`, names or prefixes `foo.*`.
    pub message_attribute_names: Vec<String>,
}

/// A received message, as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt_handle: String,
    pub md5_body: String,
    pub body: String,
    pub attributes: BTreeMap<String, String>,
    pub md5_attributes: Option<String>,
    pub message_attributes: BTreeMap<String, AttributeValue>,
}

/// One entry of a batch: its id and its own outcome.
pub type EntryResult<T> = (String, Result<T, QueueError>);

/// Message system attributes a receive may ask for.
const SYSTEM_ATTRIBUTES: &[&str] = &[
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageDeduplicationId",
    "MessageGroupId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
];

/// The SQS domain. Cheap to clone.
#[derive(Clone)]
pub struct QueueService {
    inner: Arc<Inner>,
}

struct Inner {
    config: QueuesConfig,
    store: Arc<dyn QueueStore>,
    committer: Committer,
    /// Queue records by (account, name), with when they were read.
    cache: Mutex<HashMap<(String, String), CachedQueue>>,
    waiters: Arc<Mutex<HashMap<i64, Arc<Notify>>>>,
    deleted: Mutex<HashMap<(String, String), i64>>,
    purged: Mutex<HashMap<i64, i64>>,
    moves: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// Dead letters and destination records that could not be delivered, by (function, kind).
    undelivered: kindling_metrics::Family<(String, &'static str), kindling_metrics::Counter>,
}

/// A queue record and when it was read from the store.
type CachedQueue = (Arc<QueueRecord>, std::time::Instant);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs a store call off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, QueueError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(QueueError::from),
        Err(_) => Err(QueueError::Stopped),
    }
}

/// The longest a long poll waits.
const MAX_WAIT_SECONDS: i64 = 20;

impl QueueService {
    pub fn new(config: QueuesConfig, store: Arc<dyn QueueStore>) -> std::io::Result<Self> {
        let waiters: Arc<Mutex<HashMap<i64, Arc<Notify>>>> = Arc::default();
        let wake = Arc::clone(&waiters);
        let committer = Committer::start(
            Arc::clone(&store),
            config.batch_max,
            Arc::new(move |ops, results| wake_receivers(&wake, ops, results)),
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                store,
                committer,
                cache: Mutex::default(),
                waiters,
                deleted: Mutex::default(),
                purged: Mutex::default(),
                moves: Mutex::default(),
                undelivered: kindling_metrics::Family::new(kindling_metrics::Counter::default),
            }),
        })
    }

    /// Counts a dead letter (`dead_letter`) or destination record (`destination`) of
    /// `function` that could not be delivered (Lambda's `DeadLetterErrors` and
    /// `DestinationDeliveryFailures`).
    pub fn count_undelivered(&self, function: &str, kind: &'static str) {
        self.inner
            .undelivered
            .get(&(function.to_string(), kind))
            .inc();
    }

    /// Undelivered records so far: ((function, kind), count).
    pub fn undelivered(&self) -> Vec<((String, &'static str), u64)> {
        self.inner
            .undelivered
            .members()
            .into_iter()
            .map(|(k, c)| (k, c.get()))
            .collect()
    }

    pub fn config(&self) -> &QueuesConfig {
        &self.inner.config
    }

    pub fn store(&self) -> &Arc<dyn QueueStore> {
        &self.inner.store
    }

    pub fn queue_arn(&self, q: &QueueRecord) -> String {
        format!(
            "arn:aws:sqs:{}:{}:{}",
            self.inner.config.region, q.account, q.name
        )
    }

    // ---------------------------------------------------------------- queues

    /// Finds a queue (cached; the cache is refreshed by this node's writes, and read again
    /// after `refresh` when other nodes write too).
    pub async fn queue(&self, account: &str, name: &str) -> Result<Arc<QueueRecord>, QueueError> {
        let key = (account.to_string(), name.to_string());
        if let Some((q, read)) = lock(&self.inner.cache).get(&key)
            && self.inner.config.refresh.is_none_or(|d| read.elapsed() < d)
        {
            return Ok(Arc::clone(q));
        }
        let store = Arc::clone(&self.inner.store);
        let (a, n) = key.clone();
        let found = blocking(move || store.queue(&a, &n)).await?;
        let Some(found) = found else {
            lock(&self.inner.cache).remove(&key);
            return Err(QueueError::QueueDoesNotExist);
        };
        let q = Arc::new(found);
        self.cache(key, &q);
        Ok(q)
    }

    /// Finds a queue by ARN.
    pub async fn queue_by_arn(&self, arn: &str) -> Result<Arc<QueueRecord>, QueueError> {
        let (_, account, name) =
            names::parse_queue_arn(arn).ok_or(QueueError::QueueDoesNotExist)?;
        self.queue(account, name).await
    }

    fn cache(&self, key: (String, String), q: &Arc<QueueRecord>) {
        lock(&self.inner.cache).insert(key, (Arc::clone(q), std::time::Instant::now()));
    }

    fn forget(&self, q: &QueueRecord) {
        lock(&self.inner.cache).remove(&(q.account.clone(), q.name.clone()));
    }

    /// CreateQueue: idempotent for the same attributes, `QueueNameExists` otherwise.
    pub async fn create_queue(
        &self,
        account: &str,
        name: &str,
        attrs: BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
    ) -> Result<Arc<QueueRecord>, QueueError> {
        let fifo_attr = match attrs.get("FifoQueue").map(|v| v.to_ascii_lowercase()) {
            None => None,
            Some(v) if v == "true" => Some(true),
            Some(v) if v == "false" => Some(false),
            Some(_) => {
                return Err(QueueError::InvalidAttributeValue(
                    "Invalid value for the parameter FifoQueue.".into(),
                ));
            }
        };
        let fifo = fifo_attr.unwrap_or(false);
        if !names::valid_queue_name(name, fifo) {
            return Err(QueueError::invalid(if name.ends_with(".fifo") && !fifo {
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, or \
                 underscores, must end with .fifo suffix and be 1 to 80 in length. Set the \
                 FifoQueue attribute to true to create a FIFO queue."
            } else {
                "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in \
                 length"
            }));
        }
        let mut normalized = attributes::defaults(fifo);
        let mut given = BTreeMap::new();
        for (k, v) in &attrs {
            if k == "FifoQueue" {
                continue;
            }
            let value = attributes::normalize(k, v, fifo)?;
            given.insert(k.clone(), value.clone());
            if value.is_empty() {
                normalized.remove(k);
            } else {
                normalized.insert(k.clone(), value);
            }
        }
        check_tags(&tags, name)?;
        if let Some(arn) = normalized.get("RedrivePolicy").cloned() {
            self.check_dead_letter_target(account, name, fifo, &arn)
                .await?;
        }
        let key = (account.to_string(), name.to_string());
        if let Some(at) = lock(&self.inner.deleted).get(&key)
            && now_ms() - at < 60_000
        {
            return Err(QueueError::QueueDeletedRecently);
        }
        let now = now_ms();
        let rec = QueueRecord {
            id: 0,
            account: account.to_string(),
            name: name.to_string(),
            fifo,
            attributes: normalized,
            tags,
            created_ms: now,
            modified_ms: now,
        };
        let store = Arc::clone(&self.inner.store);
        let (stored, created) = blocking(move || store.create_queue(&rec)).await?;
        if !created {
            for (k, v) in &given {
                let existing = stored.attributes.get(k).map_or("", String::as_str);
                if existing != v {
                    return Err(QueueError::QueueNameExists(k.clone()));
                }
            }
            if fifo_attr.is_some() && stored.fifo != fifo {
                return Err(QueueError::QueueNameExists("FifoQueue".into()));
            }
        }
        let stored = Arc::new(stored);
        self.cache(key, &stored);
        Ok(stored)
    }

    async fn check_dead_letter_target(
        &self,
        account: &str,
        name: &str,
        fifo: bool,
        policy: &str,
    ) -> Result<(), QueueError> {
        let Some(p) = RedrivePolicy::parse(policy) else {
            return Ok(());
        };
        let bad = |reason: &str| {
            QueueError::invalid(format!(
                "Value {policy} for parameter RedrivePolicy is invalid. Reason: {reason}"
            ))
        };
        let target = self
            .queue_by_arn(&p.dead_letter_target_arn)
            .await
            .map_err(|_| bad("Dead letter target does not exist."))?;
        if target.fifo != fifo {
            return Err(bad(
                "Dead-letter queue must be same type of queue as the source.",
            ));
        }
        let source_arn = format!("arn:aws:sqs:{}:{account}:{name}", self.inner.config.region);
        if !attributes::redrive_allowed(
            target
                .attributes
                .get("RedriveAllowPolicy")
                .map(String::as_str),
            &source_arn,
        ) {
            return Err(bad(
                "Dead letter target's RedriveAllowPolicy does not allow this queue.",
            ));
        }
        Ok(())
    }

    /// ListQueues: names with `prefix`, by name; pages only when `max` is given.
    pub async fn list_queues(
        &self,
        account: &str,
        prefix: Option<&str>,
        max: Option<i64>,
        next_token: Option<&str>,
    ) -> Result<(Vec<Arc<QueueRecord>>, Option<String>), QueueError> {
        let all = self.all_queues().await?;
        let listed = all
            .into_iter()
            .filter(|q| q.account == account && prefix.is_none_or(|p| q.name.starts_with(p)))
            .collect();
        page(listed, max, next_token)
    }

    async fn all_queues(&self) -> Result<Vec<Arc<QueueRecord>>, QueueError> {
        let store = Arc::clone(&self.inner.store);
        Ok(blocking(move || store.queues())
            .await?
            .into_iter()
            .map(Arc::new)
            .collect())
    }

    pub async fn delete_queue(&self, q: &QueueRecord) -> Result<(), QueueError> {
        let store = Arc::clone(&self.inner.store);
        let id = q.id;
        blocking(move || store.delete_queue(id)).await?;
        self.forget(q);
        lock(&self.inner.deleted).insert((q.account.clone(), q.name.clone()), now_ms());
        if let Some(n) = lock(&self.inner.waiters).remove(&q.id) {
            n.notify_waiters();
        }
        Ok(())
    }

    /// GetQueueAttributes: `All` or names (unknown names are refused).
    pub async fn get_attributes(
        &self,
        q: &QueueRecord,
        names: &[String],
    ) -> Result<BTreeMap<String, String>, QueueError> {
        let all = names.iter().any(|n| n == "All");
        for n in names {
            let known = n == "All"
                || n == "FifoQueue"
                || attributes::READ_ONLY.contains(&n.as_str())
                || attributes::normalize(n, "", true).map_or_else(
                    |e| !matches!(e, QueueError::InvalidAttributeName(_)),
                    |_| true,
                );
            if !known {
                return Err(QueueError::InvalidAttributeName(n.clone()));
            }
        }
        let wanted = |n: &str| all || names.iter().any(|x| x == n);
        let mut out = BTreeMap::new();
        for (k, v) in &q.attributes {
            if wanted(k) && !v.is_empty() {
                out.insert(k.clone(), v.clone());
            }
        }
        if wanted("QueueArn") {
            out.insert("QueueArn".into(), self.queue_arn(q));
        }
        if wanted("CreatedTimestamp") {
            out.insert("CreatedTimestamp".into(), (q.created_ms / 1000).to_string());
        }
        if wanted("LastModifiedTimestamp") {
            out.insert(
                "LastModifiedTimestamp".into(),
                (q.modified_ms / 1000).to_string(),
            );
        }
        if [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        .iter()
        .any(|n| wanted(n))
        {
            let store = Arc::clone(&self.inner.store);
            let id = q.id;
            let counts = blocking(move || store.queue_counts(id, now_ms())).await?;
            for (name, n) in [
                ("ApproximateNumberOfMessages", counts.visible),
                ("ApproximateNumberOfMessagesNotVisible", counts.in_flight),
                ("ApproximateNumberOfMessagesDelayed", counts.delayed),
            ] {
                if wanted(name) {
                    out.insert(name.into(), n.to_string());
                }
            }
        }
        Ok(out)
    }

    /// SetQueueAttributes.
    pub async fn set_attributes(
        &self,
        q: &QueueRecord,
        attrs: BTreeMap<String, String>,
    ) -> Result<(), QueueError> {
        let mut rec = self.queue(&q.account, &q.name).await?.as_ref().clone();
        for (k, v) in &attrs {
            if k == "FifoQueue" {
                return Err(QueueError::InvalidAttributeValue(
                    "Invalid value for the parameter FifoQueue. Reason: Modifying queue type \
                     is not supported."
                        .into(),
                ));
            }
            let value = attributes::normalize(k, v, rec.fifo)?;
            if k == "RedrivePolicy" && !value.is_empty() {
                self.check_dead_letter_target(&rec.account, &rec.name, rec.fifo, &value)
                    .await?;
            }
            if value.is_empty() {
                rec.attributes.remove(k);
            } else {
                rec.attributes.insert(k.clone(), value);
            }
        }
        rec.modified_ms = now_ms();
        self.put(rec).await
    }

    async fn put(&self, rec: QueueRecord) -> Result<(), QueueError> {
        let store = Arc::clone(&self.inner.store);
        let stored = rec.clone();
        blocking(move || store.put_queue(&stored))
            .await
            .map_err(|e| match e {
                QueueError::Store(s) if matches!(*s, StoreError::NotFound(_)) => {
                    QueueError::QueueDoesNotExist
                }
                other => other,
            })?;
        self.cache((rec.account.clone(), rec.name.clone()), &Arc::new(rec));
        Ok(())
    }

    pub async fn tag(
        &self,
        q: &QueueRecord,
        tags: BTreeMap<String, String>,
    ) -> Result<(), QueueError> {
        let mut rec = self.queue(&q.account, &q.name).await?.as_ref().clone();
        rec.tags.extend(tags);
        check_tags(&rec.tags, &rec.name)?;
        self.put(rec).await
    }

    pub async fn untag(&self, q: &QueueRecord, keys: &[String]) -> Result<(), QueueError> {
        let mut rec = self.queue(&q.account, &q.name).await?.as_ref().clone();
        for k in keys {
            rec.tags.remove(k);
        }
        self.put(rec).await
    }

    /// ListDeadLetterSourceQueues: queues whose redrive policy targets `q`.
    pub async fn dead_letter_sources(
        &self,
        q: &QueueRecord,
        max: Option<i64>,
        next_token: Option<&str>,
    ) -> Result<(Vec<Arc<QueueRecord>>, Option<String>), QueueError> {
        let arn = self.queue_arn(q);
        let sources = self
            .all_queues()
            .await?
            .into_iter()
            .filter(|s| {
                s.attributes
                    .get("RedrivePolicy")
                    .and_then(|p| RedrivePolicy::parse(p))
                    .is_some_and(|p| p.dead_letter_target_arn == arn)
            })
            .collect();
        page(sources, max, next_token)
    }

    // ---------------------------------------------------------------- messages

    fn rules(q: &QueueRecord) -> SendRules {
        let a = &q.attributes;
        SendRules {
            fifo: q.fifo,
            max_size: attributes::number(
                a,
                "MaximumMessageSize",
                attributes::MAX_MESSAGE_SIZE as i64,
            ) as usize,
            queue_delay: attributes::number(a, "DelaySeconds", 0),
            content_dedup: a
                .get("ContentBasedDeduplication")
                .is_some_and(|v| v == "true"),
            dedup_per_group: a
                .get("DeduplicationScope")
                .is_some_and(|v| v == "messageGroup"),
        }
    }

    /// Builds a message for `q` (validated against its settings); also used for deliveries.
    pub fn build_message(
        q: &QueueRecord,
        input: &SendInput,
        sender_id: &str,
        now: i64,
    ) -> Result<(NewMessage, usize), QueueError> {
        message::build(
            input,
            &Self::rules(q),
            uuid::Uuid::new_v4().to_string(),
            sender_id,
            now,
        )
    }

    fn send_result(m: &NewMessage, outcome_id: String, seq: i64, fifo: bool) -> SendResult {
        SendResult {
            message_id: outcome_id,
            md5_body: m.md5_body.clone(),
            md5_attributes: m.md5_attributes.clone(),
            md5_system_attributes: m.md5_system_attributes.clone(),
            sequence_number: fifo.then(|| sequence_number(seq)),
        }
    }

    /// SendMessage: answered once the message is on disk.
    pub async fn send(
        &self,
        q: &QueueRecord,
        input: &SendInput,
        sender_id: &str,
    ) -> Result<SendResult, QueueError> {
        let (m, _) = Self::build_message(q, input, sender_id, now_ms())?;
        let out = self
            .inner
            .committer
            .submit(QueueOp::Send {
                queue_id: q.id,
                messages: vec![m.clone()],
            })
            .await?;
        match out {
            QueueOpOutput::Sent(outcomes) if outcomes.len() == 1 => {
                let o = &outcomes[0];
                Ok(Self::send_result(&m, o.message_id.clone(), o.seq, q.fifo))
            }
            _ => Err(QueueError::Stopped),
        }
    }

    /// SendMessageBatch: valid entries are stored together (in order); invalid ones fail alone.
    pub async fn send_batch(
        &self,
        q: &QueueRecord,
        entries: Vec<(String, SendInput)>,
        sender_id: &str,
    ) -> Result<Vec<EntryResult<SendResult>>, QueueError> {
        check_batch(
            entries.iter().map(|(id, _)| id.as_str()),
            "SendMessageBatchRequestEntry",
        )?;
        let now = now_ms();
        let rules = Self::rules(q);
        let mut total = 0;
        let mut built = Vec::with_capacity(entries.len());
        for (id, input) in &entries {
            let b = Self::build_message(q, input, sender_id, now);
            if let Ok((_, size)) = &b {
                total += size;
            }
            built.push((id.clone(), b.map(|(m, _)| m)));
        }
        if total > rules.max_size {
            return Err(QueueError::BatchRequestTooLong {
                limit: rules.max_size,
                sent: total,
            });
        }
        let messages: Vec<NewMessage> = built
            .iter()
            .filter_map(|(_, b)| b.as_ref().ok().cloned())
            .collect();
        let mut outcomes = if messages.is_empty() {
            Vec::new()
        } else {
            match self
                .inner
                .committer
                .submit(QueueOp::Send {
                    queue_id: q.id,
                    messages,
                })
                .await?
            {
                QueueOpOutput::Sent(o) => o,
                _ => return Err(QueueError::Stopped),
            }
        }
        .into_iter();
        let mut out = Vec::with_capacity(built.len());
        for (id, b) in built {
            out.push(match b {
                Ok(m) => match outcomes.next() {
                    Some(o) => (id, Ok(Self::send_result(&m, o.message_id, o.seq, q.fifo))),
                    None => (id, Err(QueueError::Stopped)),
                },
                Err(e) => (id, Err(e)),
            });
        }
        Ok(out)
    }

    fn redrive_of(&self, q: &QueueRecord) -> Option<RedrivePolicy> {
        q.attributes
            .get("RedrivePolicy")
            .and_then(|p| RedrivePolicy::parse(p))
    }

    /// ReceiveMessage: claims up to `max_messages` (1-10), waiting up to `wait_seconds`
    /// (default: the queue's `ReceiveMessageWaitTimeSeconds`) for one to be receivable.
    pub async fn receive(
        &self,
        q: &QueueRecord,
        input: &ReceiveInput,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let max = input.max_messages.unwrap_or(1);
        if !(1..=10).contains(&max) {
            return Err(QueueError::invalid(format!(
                "Value {max} for parameter MaxNumberOfMessages is invalid. Reason: Must be \
                 between 1 and 10, if provided."
            )));
        }
        let visibility = match input.visibility_timeout {
            Some(v) if !(0..=43_200).contains(&v) => {
                return Err(QueueError::invalid(format!(
                    "Value {v} for parameter VisibilityTimeout is invalid. Reason: Must be \
                     between 0 and 43200, if provided."
                )));
            }
            Some(v) => v,
            None => attributes::number(&q.attributes, "VisibilityTimeout", 30),
        };
        let wait = match input.wait_seconds {
            Some(w) if !(0..=MAX_WAIT_SECONDS).contains(&w) => {
                return Err(QueueError::invalid(format!(
                    "Value {w} for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 \
                     and <= 20, if provided."
                )));
            }
            Some(w) => w,
            None => attributes::number(&q.attributes, "ReceiveMessageWaitTimeSeconds", 0),
        };
        let system_names = selected_system_attributes(&input.system_attribute_names)?;
        let redrive = match self.redrive_of(q) {
            Some(p) => match self.queue_by_arn(&p.dead_letter_target_arn).await {
                Ok(dlq) => Some(RedriveTarget {
                    queue_id: dlq.id,
                    max_receive_count: p.max_receive_count,
                    source_arn: self.queue_arn(q),
                }),
                Err(_) => None,
            },
            None => None,
        };
        let retention = attributes::number(&q.attributes, "MessageRetentionPeriod", 345_600);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(wait as u64);
        let notify = self.waiter(q.id);
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = now_ms();
            let op = QueueOp::Receive(ReceiveOp {
                queue_id: q.id,
                fifo: q.fifo,
                now_ms: now,
                max: max as usize,
                visibility_ms: visibility * 1000,
                retention_cutoff_ms: now - retention * 1000,
                receipt: uuid::Uuid::new_v4().simple().to_string(),
                redrive: redrive.clone(),
            });
            let QueueOpOutput::Received(got) = self.inner.committer.submit(op).await? else {
                return Err(QueueError::Stopped);
            };
            if !got.messages.is_empty() {
                return Ok(got
                    .messages
                    .into_iter()
                    .map(|m| self.render(q, m, &system_names, &input.message_attribute_names))
                    .collect());
            }
            let now_instant = tokio::time::Instant::now();
            if now_instant >= deadline {
                return Ok(Vec::new());
            }
            let mut wake_at = deadline;
            if let Some(every) = self.inner.config.refresh {
                wake_at = wake_at.min(now_instant + every);
            }
            if let Some(next) = got.next_visible_ms {
                let ahead = Duration::from_millis((next - now_ms()).max(0) as u64);
                wake_at = wake_at.min(now_instant + ahead);
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }

    /// Wakes long-polling receivers of a queue (after a write outside the message writer).
    pub fn wake(&self, queue_id: Option<i64>) {
        if let Some(id) = queue_id
            && let Some(n) = lock(&self.inner.waiters).get(&id)
        {
            n.notify_waiters();
        }
    }

    fn waiter(&self, queue_id: i64) -> Arc<Notify> {
        Arc::clone(lock(&self.inner.waiters).entry(queue_id).or_default())
    }

    /// A claimed message as ReceiveMessage returns it (its fields moved, not copied).
    fn render(
        &self,
        q: &QueueRecord,
        s: StoredMessage,
        system_names: &HashSet<&'static str>,
        attribute_names: &[String],
    ) -> ReceivedMessage {
        let StoredMessage {
            seq,
            message: m,
            receipt,
        } = s;
        let mut attrs = BTreeMap::new();
        let mut put = |name: &'static str, value: Option<String>| {
            if let Some(v) = value
                && system_names.contains(name)
            {
                attrs.insert(name.to_string(), v);
            }
        };
        put("SenderId", Some(m.sender_id));
        put("SentTimestamp", Some(m.sent_ms.to_string()));
        put("ApproximateReceiveCount", Some(m.receive_count.to_string()));
        put(
            "ApproximateFirstReceiveTimestamp",
            m.first_receive_ms.map(|t| t.to_string()),
        );
        if q.fifo {
            put("SequenceNumber", Some(sequence_number(seq)));
            put("MessageDeduplicationId", m.dedup_id);
        }
        put("MessageGroupId", m.group_id);
        put(
            "AWSTraceHeader",
            m.system_attributes
                .get("AWSTraceHeader")
                .and_then(|v| v.string_value.clone()),
        );
        put("DeadLetterQueueSourceArn", m.dead_letter_source_arn);
        let all = m.attributes.len();
        let message_attributes: BTreeMap<String, AttributeValue> = m
            .attributes
            .into_iter()
            .filter(|(name, _)| attribute_selected(name, attribute_names))
            .collect();
        // Every attribute selected: the digest is the one computed at send time.
        let md5_attributes = if message_attributes.len() == all && m.md5_attributes.is_some() {
            m.md5_attributes
        } else {
            md5_of_attributes(&message_attributes)
        };
        ReceivedMessage {
            message_id: m.message_id,
            receipt_handle: receipt::encode(q.id, seq, &receipt),
            md5_body: m.md5_body,
            body: m.body,
            attributes: attrs,
            md5_attributes,
            message_attributes,
        }
    }

    fn decode_handle(
        q: &QueueRecord,
        handle: &str,
    ) -> Result<kindling_store::messaging::ReceiptRef, QueueError> {
        receipt::decode(q.id, handle)
            .ok_or_else(|| QueueError::ReceiptHandleIsInvalid(handle.to_string()))
    }

    /// DeleteMessage: a stale receipt (the message was received again since) deletes nothing
    /// and still succeeds, as on SQS.
    pub async fn delete(&self, q: &QueueRecord, handle: &str) -> Result<(), QueueError> {
        let r = Self::decode_handle(q, handle)?;
        self.inner
            .committer
            .submit(QueueOp::Delete {
                queue_id: q.id,
                entries: vec![r],
            })
            .await?;
        Ok(())
    }

    pub async fn delete_batch(
        &self,
        q: &QueueRecord,
        entries: Vec<(String, String)>,
    ) -> Result<Vec<EntryResult<()>>, QueueError> {
        check_batch(
            entries.iter().map(|(id, _)| id.as_str()),
            "DeleteMessageBatchRequestEntry",
        )?;
        let decoded: Vec<(String, Result<_, QueueError>)> = entries
            .iter()
            .map(|(id, h)| (id.clone(), Self::decode_handle(q, h)))
            .collect();
        let refs: Vec<_> = decoded
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok().cloned())
            .collect();
        if !refs.is_empty() {
            self.inner
                .committer
                .submit(QueueOp::Delete {
                    queue_id: q.id,
                    entries: refs,
                })
                .await?;
        }
        Ok(decoded
            .into_iter()
            .map(|(id, r)| (id, r.map(|_| ())))
            .collect())
    }

    fn check_visibility(timeout: i64) -> Result<(), QueueError> {
        if !(0..=43_200).contains(&timeout) {
            return Err(QueueError::invalid(format!(
                "Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Must be \
                 between 0 and 43200."
            )));
        }
        Ok(())
    }

    fn refusal(r: VisibilityRefusal, handle: &str) -> QueueError {
        match r {
            VisibilityRefusal::NotInFlight => QueueError::MessageNotInflight,
            VisibilityRefusal::Gone => QueueError::invalid(format!(
                "Value {handle} for parameter ReceiptHandle is invalid. Reason: Message does not \
                 exist or is not available for visibility timeout change."
            )),
        }
    }

    pub async fn change_visibility(
        &self,
        q: &QueueRecord,
        handle: &str,
        timeout: i64,
    ) -> Result<(), QueueError> {
        let mut out = self
            .change_visibility_batch(q, vec![("1".into(), handle.to_string(), timeout)])
            .await?;
        match out.pop() {
            Some((_, r)) => r,
            None => Err(QueueError::Stopped),
        }
    }

    pub async fn change_visibility_batch(
        &self,
        q: &QueueRecord,
        entries: Vec<(String, String, i64)>,
    ) -> Result<Vec<EntryResult<()>>, QueueError> {
        check_batch(
            entries.iter().map(|(id, _, _)| id.as_str()),
            "ChangeMessageVisibilityBatchRequestEntry",
        )?;
        let now = now_ms();
        let checked: Vec<(String, String, Result<_, QueueError>)> = entries
            .into_iter()
            .map(|(id, h, t)| {
                let r = Self::check_visibility(t)
                    .and_then(|()| Self::decode_handle(q, &h))
                    .map(|r| (r, now + t * 1000));
                (id, h, r)
            })
            .collect();
        let valid: Vec<_> = checked
            .iter()
            .filter_map(|(_, _, r)| r.as_ref().ok().cloned())
            .collect();
        let mut results = if valid.is_empty() {
            Vec::new()
        } else {
            match self
                .inner
                .committer
                .submit(QueueOp::ChangeVisibility {
                    queue_id: q.id,
                    now_ms: now,
                    entries: valid,
                })
                .await?
            {
                QueueOpOutput::Changed(c) => c,
                _ => return Err(QueueError::Stopped),
            }
        }
        .into_iter();
        Ok(checked
            .into_iter()
            .map(|(id, h, r)| {
                let r = match r {
                    Ok(_) => match results.next() {
                        Some(Ok(())) => Ok(()),
                        Some(Err(refusal)) => Err(Self::refusal(refusal, &h)),
                        None => Err(QueueError::Stopped),
                    },
                    Err(e) => Err(e),
                };
                (id, r)
            })
            .collect())
    }

    /// PurgeQueue: once per 60 seconds per queue.
    pub async fn purge(&self, q: &QueueRecord) -> Result<(), QueueError> {
        let now = now_ms();
        {
            let mut purged = lock(&self.inner.purged);
            if let Some(at) = purged.get(&q.id)
                && now - at < 60_000
            {
                return Err(QueueError::PurgeQueueInProgress(q.name.clone()));
            }
            purged.insert(q.id, now);
        }
        let store = Arc::clone(&self.inner.store);
        let id = q.id;
        blocking(move || store.purge_queue(id)).await?;
        Ok(())
    }

    /// Stores what a publish or a forwarded record produces, durably, in one transaction.
    pub async fn deliver(&self, delivery: Delivery) -> Result<(), QueueError> {
        self.inner
            .committer
            .submit(QueueOp::Deliver(delivery))
            .await
            .map(|_| ())
    }

    /// Like [`Self::deliver`], from a plain thread.
    pub fn deliver_blocking(&self, delivery: Delivery) -> Result<(), QueueError> {
        self.inner
            .committer
            .submit_blocking(QueueOp::Deliver(delivery))
            .map(|_| ())
    }

    /// Deletes messages past their queue's retention period every `interval`, for as long as
    /// the runtime runs.
    pub async fn sweep_retention(&self, interval: Duration) {
        loop {
            tokio::time::sleep(interval).await;
            let Ok(queues) = self.all_queues().await else {
                continue;
            };
            for q in queues {
                let retention =
                    attributes::number(&q.attributes, "MessageRetentionPeriod", 345_600);
                let store = Arc::clone(&self.inner.store);
                let now = now_ms();
                let id = q.id;
                match blocking(move || store.expire_messages(id, now - retention * 1000, now)).await
                {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::debug!(queue = %q.name, expired = n, "retention expired messages")
                    }
                    Err(e) => tracing::warn!(
                        error = &e as &dyn std::error::Error,
                        "retention sweep failed"
                    ),
                }
            }
        }
    }

    // ---------------------------------------------------------------- move tasks

    /// StartMessageMoveTask: moves messages out of a dead-letter queue, back to the queues
    /// they came from (or to `destination_arn`), at most `rate` per second.
    pub async fn start_move_task(
        &self,
        source_arn: &str,
        destination_arn: Option<&str>,
        rate: Option<i64>,
    ) -> Result<String, QueueError> {
        let source = self.queue_by_arn(source_arn).await.map_err(|_| {
            QueueError::ResourceNotFound(
                "The resource that you specified for the SourceArn parameter doesn't exist.".into(),
            )
        })?;
        if let Some(r) = rate
            && !(1..=500).contains(&r)
        {
            return Err(QueueError::invalid(
                "Value for parameter MaxNumberOfMessagesPerSecond is invalid. Reason: must be \
                 between 1 and 500.",
            ));
        }
        let (sources, _) = self.dead_letter_sources(&source, None, None).await?;
        if sources.is_empty() {
            return Err(QueueError::invalid(
                "Source queue must be configured as a Dead Letter Queue.",
            ));
        }
        if let Some(d) = destination_arn {
            self.queue_by_arn(d).await.map_err(|_| {
                QueueError::ResourceNotFound(
                    "The resource that you specified for the DestinationArn parameter doesn't \
                     exist."
                        .into(),
                )
            })?;
        }
        let running = self
            .move_task_records(Some(source_arn))
            .await?
            .into_iter()
            .any(|t| t["Status"] == "RUNNING" || t["Status"] == "CANCELLING");
        if running {
            return Err(QueueError::UnsupportedOperation(
                "There is already a task running. Only one active task is allowed for each \
                 source queue arn at a given time."
                    .into(),
            ));
        }
        let handle = STANDARD.encode(
            json!({"taskId": uuid::Uuid::new_v4().to_string(), "sourceArn": source_arn})
                .to_string(),
        );
        let store = Arc::clone(&self.inner.store);
        let id = source.id;
        let to_move = blocking(move || store.queue_counts(id, i64::MAX)).await?;
        let to_move = to_move.visible + to_move.in_flight + to_move.delayed;
        let mut record = json!({
            "TaskHandle": handle,
            "Status": "RUNNING",
            "SourceArn": source_arn,
            "ApproximateNumberOfMessagesMoved": 0,
            "ApproximateNumberOfMessagesToMove": to_move,
            "StartedTimestamp": now_ms(),
        });
        if let Some(d) = destination_arn {
            record["DestinationArn"] = json!(d);
        }
        if let Some(r) = rate {
            record["MaxNumberOfMessagesPerSecond"] = json!(r);
        }
        self.save_task(&record).await?;
        let cancel = Arc::new(AtomicBool::new(false));
        lock(&self.inner.moves).insert(handle.clone(), Arc::clone(&cancel));
        let this = self.clone();
        let destination = destination_arn.map(str::to_string);
        tokio::spawn(async move {
            this.run_move_task(source, destination, rate, to_move, record, cancel)
                .await;
        });
        Ok(handle)
    }

    async fn save_task(&self, record: &Value) -> Result<(), QueueError> {
        let store = Arc::clone(&self.inner.store);
        let handle = record["TaskHandle"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let source = record["SourceArn"].as_str().unwrap_or_default().to_string();
        let started = record["StartedTimestamp"].as_i64().unwrap_or_default();
        let text = record.to_string();
        blocking(move || store.put_move_task(&handle, &source, started, &text)).await
    }

    async fn run_move_task(
        &self,
        source: Arc<QueueRecord>,
        destination: Option<String>,
        rate: Option<i64>,
        to_move: u64,
        mut record: Value,
        cancel: Arc<AtomicBool>,
    ) {
        let batch = rate.map_or(100, |r| r.clamp(1, 100)) as usize;
        let mut moved_total: u64 = 0;
        let status = loop {
            if cancel.load(Ordering::Relaxed) {
                break ("CANCELLED", None);
            }
            // At most the messages the source held when the task started: a queue that is its
            // own destination (or its own dead-letter queue) gets every message back at once,
            // and the task would otherwise move the same messages forever.
            let left = to_move.saturating_sub(moved_total);
            if left == 0 {
                break ("COMPLETED", None);
            }
            let batch = batch.min(usize::try_from(left).unwrap_or(usize::MAX));
            let started = tokio::time::Instant::now();
            let store = Arc::clone(&self.inner.store);
            let id = source.id;
            let messages = match blocking(move || store.peek_messages(id, batch)).await {
                Ok(m) => m,
                Err(e) => break ("FAILED", Some(e.to_string())),
            };
            if messages.is_empty() {
                break ("COMPLETED", None);
            }
            let mut moves = Vec::new();
            let mut failure = None;
            for s in messages {
                let target = destination
                    .clone()
                    .or_else(|| s.message.dead_letter_source_arn.clone());
                let Some(target) = target else {
                    failure = Some("A message has no source queue to return to.".to_string());
                    break;
                };
                match self.queue_by_arn(&target).await {
                    Ok(dest) => {
                        let mut m = s.message.clone();
                        m.receive_count = 0;
                        m.first_receive_ms = None;
                        m.dead_letter_source_arn = None;
                        m.visible_ms = now_ms();
                        m.dedup_key = None;
                        moves.push(MoveMessage {
                            seq: s.seq,
                            to_queue_id: dest.id,
                            message: m,
                        });
                    }
                    Err(_) => {
                        failure = Some(format!("Destination queue {target} does not exist."));
                        break;
                    }
                }
            }
            if !moves.is_empty() {
                let store = Arc::clone(&self.inner.store);
                let id = source.id;
                let dests: HashSet<i64> = moves.iter().map(|m| m.to_queue_id).collect();
                match blocking(move || store.move_messages(id, &moves)).await {
                    Ok(n) => moved_total += n,
                    Err(e) => break ("FAILED", Some(e.to_string())),
                }
                for d in dests {
                    self.waiter(d).notify_waiters();
                }
                record["ApproximateNumberOfMessagesMoved"] = json!(moved_total);
                let _ = self.save_task(&record).await;
            }
            if let Some(f) = failure {
                break ("FAILED", Some(f));
            }
            if let Some(r) = rate {
                let per_batch = Duration::from_secs_f64(batch as f64 / r as f64);
                tokio::time::sleep_until(started + per_batch).await;
            }
        };
        record["Status"] = json!(status.0);
        record["ApproximateNumberOfMessagesMoved"] = json!(moved_total);
        if let Some(reason) = status.1 {
            record["FailureReason"] = json!(reason);
        }
        if let Err(e) = self.save_task(&record).await {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "could not record a message move task"
            );
        }
        if let Some(h) = record["TaskHandle"].as_str() {
            lock(&self.inner.moves).remove(h);
        }
    }

    async fn move_task_records(&self, source_arn: Option<&str>) -> Result<Vec<Value>, QueueError> {
        let store = Arc::clone(&self.inner.store);
        let source = source_arn.map(str::to_string);
        let texts = blocking(move || store.move_tasks(source.as_deref())).await?;
        Ok(texts
            .iter()
            .filter_map(|t| serde_json::from_str(t).ok())
            .collect())
    }

    /// ListMessageMoveTasks: the newest `max` (1-10, default 1) tasks of a source.
    pub async fn list_move_tasks(
        &self,
        source_arn: &str,
        max: Option<i64>,
    ) -> Result<Vec<Value>, QueueError> {
        let max = max.unwrap_or(1);
        if !(1..=10).contains(&max) {
            return Err(QueueError::invalid(
                "Value for parameter MaxResults is invalid. Reason: must be between 1 and 10.",
            ));
        }
        self.queue_by_arn(source_arn).await.map_err(|_| {
            QueueError::ResourceNotFound(
                "The resource that you specified for the SourceArn parameter doesn't exist.".into(),
            )
        })?;
        let mut tasks = self.move_task_records(Some(source_arn)).await?;
        tasks.truncate(max as usize);
        Ok(tasks)
    }

    /// CancelMessageMoveTask: returns the messages moved so far.
    pub async fn cancel_move_task(&self, handle: &str) -> Result<u64, QueueError> {
        let flag = lock(&self.inner.moves).get(handle).cloned();
        let Some(flag) = flag else {
            return Err(QueueError::ResourceNotFound(
                "Task does not exist or is not running.".into(),
            ));
        };
        flag.store(true, Ordering::Relaxed);
        let tasks = self.move_task_records(None).await?;
        let moved = tasks
            .iter()
            .find(|t| t["TaskHandle"] == handle)
            .and_then(|t| t["ApproximateNumberOfMessagesMoved"].as_u64())
            .unwrap_or(0);
        Ok(moved)
    }

    /// Marks tasks a previous run left RUNNING as failed (they stop with the process).
    pub async fn fail_interrupted_move_tasks(&self) -> Result<(), QueueError> {
        for mut t in self.move_task_records(None).await? {
            if t["Status"] == "RUNNING" || t["Status"] == "CANCELLING" {
                t["Status"] = json!("FAILED");
                t["FailureReason"] = json!("The task was interrupted by a restart of Kindling.");
                self.save_task(&t).await?;
            }
        }
        Ok(())
    }
}

/// Wakes long-polling receivers of queues that just got receivable messages.
fn wake_receivers(
    waiters: &Mutex<HashMap<i64, Arc<Notify>>>,
    ops: &[QueueOp],
    results: &[Result<QueueOpOutput, QueueError>],
) {
    let mut woken = HashSet::new();
    for (op, result) in ops.iter().zip(results) {
        if result.is_err() {
            continue;
        }
        match (op, result) {
            // A delete can unblock a FIFO group: its next message becomes receivable.
            (QueueOp::Send { queue_id, .. }, _)
            | (QueueOp::Delete { queue_id, .. }, _)
            | (QueueOp::ChangeVisibility { queue_id, .. }, _) => {
                woken.insert(*queue_id);
            }
            (QueueOp::Deliver(d), _) => woken.extend(d.messages.iter().map(|(q, _)| *q)),
            (QueueOp::Receive(r), Ok(QueueOpOutput::Received(got))) if got.moved > 0 => {
                if let Some(t) = &r.redrive {
                    woken.insert(t.queue_id);
                }
            }
            _ => {}
        }
    }
    if woken.is_empty() {
        return;
    }
    let waiters = lock(waiters);
    for id in woken {
        if let Some(n) = waiters.get(&id) {
            n.notify_waiters();
        }
    }
}

/// FIFO sequence numbers: 20-digit decimal strings, increasing with the store position.
pub fn sequence_number(seq: i64) -> String {
    (18_000_000_000_000_000_000u128 + seq.max(0) as u128).to_string()
}

fn selected_system_attributes(names: &[String]) -> Result<HashSet<&'static str>, QueueError> {
    let mut out = HashSet::new();
    for n in names {
        if n == "All" {
            out.extend(SYSTEM_ATTRIBUTES.iter().copied());
        } else if let Some(known) = SYSTEM_ATTRIBUTES.iter().find(|s| **s == n.as_str()) {
            out.insert(*known);
        } else if !attributes::READ_ONLY.contains(&n.as_str())
            && attributes::normalize(n, "", true)
                .is_err_and(|e| matches!(e, QueueError::InvalidAttributeName(_)))
            && n != "FifoQueue"
        {
            return Err(QueueError::InvalidAttributeName(n.clone()));
        }
    }
    Ok(out)
}

fn attribute_selected(name: &str, wanted: &[String]) -> bool {
    wanted.iter().any(|w| {
        w == "All"
            || w == ".*"
            || w == name
            || w.strip_suffix(".*")
                .is_some_and(|prefix| name.starts_with(&format!("{prefix}.")))
    })
}

fn check_tags(tags: &BTreeMap<String, String>, queue: &str) -> Result<(), QueueError> {
    if tags.len() > 50 {
        return Err(QueueError::invalid(format!(
            "Too many tags added for queue {queue}."
        )));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(QueueError::invalid(format!(
                "Tag key must be 1 to 128 characters and its value at most 256: {k}"
            )));
        }
    }
    Ok(())
}

/// Checks a batch's entry ids: 1-10 entries, each id valid and distinct.
pub fn check_batch<'a>(
    ids: impl ExactSizeIterator<Item = &'a str>,
    entry: &'static str,
) -> Result<(), QueueError> {
    let n = ids.len();
    if n == 0 {
        return Err(QueueError::EmptyBatchRequest(entry));
    }
    if n > 10 {
        return Err(QueueError::TooManyEntriesInBatchRequest(n));
    }
    let mut seen = HashSet::new();
    for id in ids {
        if id.is_empty()
            || id.len() > 80
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(QueueError::InvalidBatchEntryId(id.to_string()));
        }
        if !seen.insert(id) {
            return Err(QueueError::BatchEntryIdsNotDistinct(id.to_string()));
        }
    }
    Ok(())
}

/// Pages a name-ordered list: `max` 1-1000 (none: up to 1000, no token), the token being the
/// last name returned.
fn page(
    items: Vec<Arc<QueueRecord>>,
    max: Option<i64>,
    next_token: Option<&str>,
) -> Result<(Vec<Arc<QueueRecord>>, Option<String>), QueueError> {
    if let Some(m) = max
        && !(1..=1000).contains(&m)
    {
        return Err(QueueError::invalid(format!(
            "Value {m} for parameter MaxResults is invalid. Reason: MaxResults must be an \
             integer between 1 and 1000."
        )));
    }
    let after = match next_token.filter(|t| !t.is_empty()) {
        Some(t) => Some(
            STANDARD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| QueueError::invalid("Invalid NextToken value."))?,
        ),
        None => None,
    };
    let mut rest: Vec<Arc<QueueRecord>> = items
        .into_iter()
        .filter(|q| after.as_ref().is_none_or(|a| q.name.as_str() > a.as_str()))
        .collect();
    let limit = max.unwrap_or(1000) as usize;
    let more = rest.len() > limit;
    rest.truncate(limit);
    let token = (more && max.is_some())
        .then(|| rest.last().map(|q| STANDARD.encode(&q.name)))
        .flatten();
    Ok((rest, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_ids_and_attribute_selection() {
        assert!(check_batch(["a", "b"].into_iter(), "E").is_ok());
        assert!(matches!(
            check_batch(std::iter::empty(), "E"),
            Err(QueueError::EmptyBatchRequest(_))
        ));
        assert!(matches!(
            check_batch(["a", "a"].into_iter(), "E"),
            Err(QueueError::BatchEntryIdsNotDistinct(_))
        ));
        assert!(matches!(
            check_batch(["a b"].into_iter(), "E"),
            Err(QueueError::InvalidBatchEntryId(_))
        ));
        let ids: Vec<String> = (0..11).map(|i| i.to_string()).collect();
        assert!(matches!(
            check_batch(ids.iter().map(String::as_str), "E"),
            Err(QueueError::TooManyEntriesInBatchRequest(11))
        ));
        assert!(attribute_selected("foo.bar", &["foo.*".into()]));
        assert!(!attribute_selected("foobar", &["foo.*".into()]));
        assert!(attribute_selected("x", &["All".into()]));
        assert!(sequence_number(2) > sequence_number(1));
        assert_eq!(sequence_number(1).len(), 20);
    }
}
