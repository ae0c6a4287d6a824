//! [`QueueStore`] on PostgreSQL. Queues, topics and subscriptions are control-plane writes
//! (serializable, retried on conflicts). Message traffic runs `READ COMMITTED` with row locks
//! (`FOR UPDATE SKIP LOCKED` claims): nodes sending and receiving at once neither abort nor wait
//! for each other. Sends and publishes commit durably; claims, deletes and visibility changes
//! commit with `synchronous_commit = off` when the caller does not ask for durability (the
//! relaxed writer's role on SQLite: a crash of the database loses at most the last few such
//! commits, which makes messages receivable again, at-least-once).

use super::connections::Tx;
use kindling_model::events::{AsyncEvent, DeadLetter};
use kindling_model::messaging::{
    HttpDelivery, NewMessage, QueueRecord, StoredMessage, SubscriptionRecord, TopicRecord,
};

use super::{PgStore, sns, sqs};
use crate::messaging::{HttpBusy, MoveMessage, QueueCounts, QueueOp, QueueOpOutput, QueueStore};
use crate::{Result, StoreError};

/// Makes the current transaction's commit asynchronous (not waiting for the WAL flush).
pub(super) fn relaxed(tx: &mut Tx<'_>) -> Result<()> {
    tx.execute("SET LOCAL synchronous_commit = off", &[])?;
    Ok(())
}

impl QueueStore for PgStore {
    fn create_queue(&self, rec: &QueueRecord) -> Result<(QueueRecord, bool)> {
        self.write(|c| sqs::create(c, rec))
    }

    fn queue(&self, account: &str, name: &str) -> Result<Option<QueueRecord>> {
        self.read(|c| sqs::get(c, account, name))
    }

    fn queues(&self) -> Result<Vec<QueueRecord>> {
        self.read(sqs::all)
    }

    fn put_queue(&self, rec: &QueueRecord) -> Result<()> {
        self.write(|c| sqs::put(c, rec))
    }

    fn delete_queue(&self, id: i64) -> Result<bool> {
        self.write(|c| sqs::delete(c, id))
    }

    fn queue_counts(&self, id: i64, now_ms: i64) -> Result<QueueCounts> {
        self.read(|c| sqs::counts(c, id, now_ms))
    }

    fn apply_queue_ops(
        &self,
        ops: &[QueueOp],
        durable: bool,
    ) -> Result<Vec<Result<QueueOpOutput, StoreError>>> {
        self.queue(|c| {
            if !durable {
                relaxed(c)?;
            }
            sqs::apply(c, ops)
        })
    }

    /// Commits made with `synchronous_commit = off` are durable once any later synchronous
    /// commit is: WAL is flushed in order. A transaction that takes a transaction id writes a
    /// commit record, so committing it waits for the flush of everything before it.
    fn sync_queue_ops(&self) -> Result<()> {
        self.queue(|c| {
            c.execute("SELECT txid_current()", &[])?;
            Ok(())
        })
    }

    fn purge_queue(&self, id: i64) -> Result<u64> {
        self.queue(|c| {
            relaxed(c)?;
            sqs::purge(c, id)
        })
    }

    fn expire_messages(&self, id: i64, cutoff_ms: i64, now_ms: i64) -> Result<u64> {
        self.queue(|c| {
            relaxed(c)?;
            sqs::expire(c, id, cutoff_ms, now_ms)
        })
    }

    fn peek_messages(&self, id: i64, limit: usize) -> Result<Vec<StoredMessage>> {
        self.read(|c| sqs::peek(c, id, limit))
    }

    fn move_messages(&self, from_queue_id: i64, moves: &[MoveMessage]) -> Result<u64> {
        self.queue(|c| sqs::move_messages(c, from_queue_id, moves))
    }

    fn redrive_messages(&self, queue_id: i64, seqs: &[i64], events: &[AsyncEvent]) -> Result<u64> {
        self.queue(|c| {
            let n = sqs::delete_seqs(c, queue_id, seqs)?;
            super::queue::enqueue(c, events)?;
            Ok(n)
        })
    }

    fn put_move_task(
        &self,
        handle: &str,
        source_arn: &str,
        started_ms: i64,
        record: &str,
    ) -> Result<()> {
        self.queue(|c| {
            relaxed(c)?;
            sqs::put_move_task(c, handle, source_arn, started_ms, record)
        })
    }

    fn move_tasks(&self, source_arn: Option<&str>) -> Result<Vec<String>> {
        self.read(|c| sqs::move_tasks(c, source_arn))
    }

    fn create_topic(&self, rec: &TopicRecord) -> Result<(TopicRecord, bool)> {
        self.write(|c| sns::create_topic(c, rec))
    }

    fn topic(&self, arn: &str) -> Result<Option<TopicRecord>> {
        self.read(|c| sns::topic(c, arn))
    }

    fn topics(&self) -> Result<Vec<TopicRecord>> {
        self.read(sns::topics)
    }

    fn put_topic(&self, rec: &TopicRecord) -> Result<()> {
        self.write(|c| sns::put_topic(c, rec))
    }

    fn delete_topic(&self, arn: &str) -> Result<bool> {
        self.write(|c| sns::delete_topic(c, arn))
    }

    fn put_subscription(&self, rec: &SubscriptionRecord) -> Result<()> {
        self.write(|c| sns::put_subscription(c, rec))
    }

    fn subscription(&self, arn: &str) -> Result<Option<SubscriptionRecord>> {
        self.read(|c| sns::subscription(c, arn))
    }

    fn subscriptions(&self, topic_arn: Option<&str>) -> Result<Vec<SubscriptionRecord>> {
        self.read(|c| sns::subscriptions(c, topic_arn))
    }

    fn delete_subscription(&self, arn: &str) -> Result<bool> {
        self.write(|c| sns::delete_subscription(c, arn))
    }

    fn due_http_deliveries(
        &self,
        now_ms: i64,
        limit: usize,
        busy: &HttpBusy,
    ) -> Result<Vec<HttpDelivery>> {
        self.queue(|c| sns::due_http(c, now_ms, limit, busy))
    }

    fn finish_http_delivery(
        &self,
        id: &str,
        retry: Option<(u32, i64)>,
        dead_letter: Option<(i64, NewMessage)>,
    ) -> Result<()> {
        self.queue(|c| sns::finish_http(c, id, retry, dead_letter.as_ref()))
    }

    fn drop_letter(&self, id: &str) -> Result<()> {
        self.queue(|c| {
            c.execute("DELETE FROM dead_letters WHERE id = $1", &[&id])?;
            Ok(())
        })
    }

    fn queue_letters(&self, limit: usize) -> Result<Vec<DeadLetter>> {
        self.read(|c| {
            super::rows::records(
                c,
                "SELECT record FROM dead_letters
                 WHERE (record::jsonb ->> 'target_arn') LIKE 'arn:%:sqs:%'
                    OR (record::jsonb ->> 'target_arn') LIKE 'arn:%:sns:%'
                 ORDER BY created_ms, id LIMIT $1",
                &[&super::records::limit(limit)],
            )
        })
    }
}
