//! The SQS domain: one method per operation, typed inputs and outputs, no wire format.
//!
//! A poller (event source mappings) uses the same surface as the wire: [`QueueService::receive`]
//! claims up to ten messages with a visibility timeout and waits (long polling) until a message
//! is receivable or the wait ends; [`QueueService::delete_batch`] removes what was handled and
//! [`QueueService::change_visibility_batch`] returns the rest early (timeout 0). FIFO queues
//! hand out each message group in order, one batch of a group at a time.
//!
//! Here: the service, its queues (create, list, delete, attributes, tags) and helpers shared by
//! the operations; messages in [`messages`], message move tasks in [`move_tasks`].

mod messages;
mod move_tasks;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kindling_model::messaging::{AttributeValue, QueueRecord};
use kindling_store::messaging::{QueueOp, QueueOpOutput};
use kindling_store::{QueueStore, StoreError};
use tokio::sync::Notify;

use crate::attributes::{self, RedrivePolicy};
use crate::commit::Committer;
use crate::error::QueueError;
use crate::names;

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
