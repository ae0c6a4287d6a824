//! Messages: send, receive (long polling), delete, visibility, purge, deliveries and retention.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kindling_model::messaging::{AttributeValue, NewMessage, QueueRecord, StoredMessage};
use kindling_store::messaging::{
    Delivery, QueueOp, QueueOpOutput, ReceiveOp, RedriveTarget, VisibilityRefusal,
};
use tokio::sync::Notify;

use crate::attributes::{self, RedrivePolicy};
use crate::digest::md5_of_attributes;
use crate::error::QueueError;
use crate::message::{self, SendInput, SendRules};
use crate::receipt;

use super::{
    EntryResult, MAX_WAIT_SECONDS, QueueService, ReceiveInput, ReceivedMessage, SendResult,
    attribute_selected, blocking, check_batch, lock, now_ms, selected_system_attributes,
    sequence_number,
};

impl QueueService {
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

    pub(super) fn waiter(&self, queue_id: i64) -> Arc<Notify> {
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
}
