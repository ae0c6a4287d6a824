//! SQS queues and messages on PostgreSQL.
//!
//! Several nodes receive from one queue at once: a standard queue's claim selects its rows
//! `FOR UPDATE SKIP LOCKED`, so two claims never return the same message and neither waits for
//! the other. A FIFO queue's claim first locks its queue row (`FOR NO KEY UPDATE`, which sends do
//! not wait for): whether a message is receivable depends on the other messages of its group,
//! which row locks alone cannot protect, so FIFO claims of one queue take turns.

use kindling_model::messaging::{NewMessage, QueueRecord, StoredMessage};
use postgres::Row;

use super::connections::Tx;

use super::records::limit;
use super::rows::{from_json, to_json};
use crate::messaging::{
    MoveMessage, QueueCounts, QueueOp, QueueOpOutput, ReceiptRef, ReceiveOp, Received, SendOutcome,
    VisibilityRefusal,
};
use crate::sqs_receive::{self, ReceiveSql};
use crate::{Entity, Result, StoreError};

fn with_id(mut rec: QueueRecord, id: i64) -> QueueRecord {
    rec.id = id;
    rec
}

pub(super) fn create(tx: &mut Tx<'_>, rec: &QueueRecord) -> Result<(QueueRecord, bool)> {
    // Two nodes creating the same queue at once: the second waits for the first's key and
    // then returns its queue.
    let inserted = tx.query_opt(
        "INSERT INTO sqs_queues (account, name, record) VALUES ($1, $2, $3)
         ON CONFLICT (account, name) DO NOTHING RETURNING id",
        &[&rec.account, &rec.name, &to_json(rec)?],
    )?;
    let Some(row) = inserted else {
        return get(tx, &rec.account, &rec.name)?
            .map(|existing| (existing, false))
            .ok_or(StoreError::NotFound(Entity::Queue));
    };
    let id: i64 = row.get(0);
    let rec = with_id(rec.clone(), id);
    tx.execute(
        "UPDATE sqs_queues SET record = $2 WHERE id = $1",
        &[&id, &to_json(&rec)?],
    )?;
    Ok((rec, true))
}

pub(super) fn get(tx: &mut Tx<'_>, account: &str, name: &str) -> Result<Option<QueueRecord>> {
    tx.query_opt(
        "SELECT id, record FROM sqs_queues WHERE account = $1 AND name = $2",
        &[&account, &name],
    )?
    .map(|row| from_json::<QueueRecord>(row.get::<_, &str>(1)).map(|r| with_id(r, row.get(0))))
    .transpose()
}

pub(super) fn all(tx: &mut Tx<'_>) -> Result<Vec<QueueRecord>> {
    tx.query(
        "SELECT id, record FROM sqs_queues ORDER BY account, name",
        &[],
    )?
    .iter()
    .map(|row| from_json::<QueueRecord>(row.get::<_, &str>(1)).map(|r| with_id(r, row.get(0))))
    .collect()
}

pub(super) fn put(tx: &mut Tx<'_>, rec: &QueueRecord) -> Result<()> {
    let n = tx.execute(
        "UPDATE sqs_queues SET record = $2 WHERE id = $1",
        &[&rec.id, &to_json(rec)?],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(Entity::Queue));
    }
    Ok(())
}

pub(super) fn delete(tx: &mut Tx<'_>, id: i64) -> Result<bool> {
    // Messages and deduplication ids go with the queue (ON DELETE CASCADE).
    Ok(tx.execute("DELETE FROM sqs_queues WHERE id = $1", &[&id])? > 0)
}

pub(super) fn counts(tx: &mut Tx<'_>, id: i64, now_ms: i64) -> Result<QueueCounts> {
    let row = tx.query_one(
        "SELECT COUNT(*) FILTER (WHERE visible_ms <= $2),
                COUNT(*) FILTER (WHERE visible_ms > $2 AND receive_count > 0),
                COUNT(*) FILTER (WHERE visible_ms > $2 AND receive_count = 0),
                MIN(sent_ms)
         FROM sqs_messages WHERE queue_id = $1",
        &[&id, &now_ms],
    )?;
    Ok(QueueCounts {
        visible: row.get::<_, i64>(0) as u64,
        in_flight: row.get::<_, i64>(1) as u64,
        delayed: row.get::<_, i64>(2) as u64,
        oldest_sent_ms: row.get(3),
    })
}

/// Runs each operation in a savepoint of the caller's transaction: a failed one changes
/// nothing and the others still commit.
pub(super) fn apply(
    tx: &mut Tx<'_>,
    ops: &[QueueOp],
) -> Result<Vec<Result<QueueOpOutput, StoreError>>> {
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        tx.execute("SAVEPOINT op", &[])?;
        let result = run(tx, op);
        if result.is_err() {
            tx.execute("ROLLBACK TO SAVEPOINT op", &[])?;
        }
        tx.execute("RELEASE SAVEPOINT op", &[])?;
        out.push(result);
    }
    Ok(out)
}

fn run(tx: &mut Tx<'_>, op: &QueueOp) -> Result<QueueOpOutput> {
    match op {
        QueueOp::Send { queue_id, messages } => {
            let mut outcomes = Vec::with_capacity(messages.len());
            for m in messages {
                outcomes.push(insert(tx, *queue_id, m)?);
            }
            Ok(QueueOpOutput::Sent(outcomes))
        }
        QueueOp::Receive(r) => receive(tx, r).map(QueueOpOutput::Received),
        QueueOp::Delete { queue_id, entries } => {
            let mut deleted = Vec::with_capacity(entries.len());
            for e in entries {
                deleted.push(
                    tx.execute(
                        "DELETE FROM sqs_messages
                         WHERE seq = $1 AND queue_id = $2 AND receipt = $3",
                        &[&e.seq, queue_id, &e.receipt],
                    )? > 0,
                );
            }
            Ok(QueueOpOutput::Deleted(deleted))
        }
        QueueOp::ChangeVisibility {
            queue_id,
            now_ms,
            entries,
        } => {
            let mut out = Vec::with_capacity(entries.len());
            for (r, visible_ms) in entries {
                out.push(change_visibility(tx, *queue_id, *now_ms, r, *visible_ms)?);
            }
            Ok(QueueOpOutput::Changed(out))
        }
        QueueOp::Deliver(d) => {
            for (queue_id, m) in &d.messages {
                insert(tx, *queue_id, m)?;
            }
            super::queue::enqueue(tx, &d.events)?;
            super::sns::insert_http(tx, &d.http)?;
            if let Some(id) = &d.consume_letter {
                tx.execute("DELETE FROM dead_letters WHERE id = $1", &[id])?;
            }
            Ok(QueueOpOutput::Delivered)
        }
    }
}

/// Inserts a message unless its FIFO deduplication key is live. The key is claimed first (an
/// upsert that only takes an expired key): of two sends of one key at once, the second waits
/// for the first's commit and then finds the key taken.
pub(super) fn insert(tx: &mut Tx<'_>, queue_id: i64, m: &NewMessage) -> Result<SendOutcome> {
    let seq: i64 = tx
        .query_one(
            "SELECT nextval(pg_get_serial_sequence('sqs_messages', 'seq'))",
            &[],
        )?
        .get(0);
    if let Some(key) = &m.dedup_key {
        let claimed = tx.query_opt(
            "INSERT INTO sqs_dedup (queue_id, dedup_key, message_id, seq, until_ms)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (queue_id, dedup_key) DO UPDATE
               SET message_id = excluded.message_id, seq = excluded.seq,
                   until_ms = excluded.until_ms
               WHERE sqs_dedup.until_ms <= $6
             RETURNING seq",
            &[
                &queue_id,
                key,
                &m.message_id,
                &seq,
                &m.dedup_until_ms,
                &m.sent_ms,
            ],
        )?;
        if claimed.is_none() {
            let row = tx.query_one(
                "SELECT message_id, seq FROM sqs_dedup WHERE queue_id = $1 AND dedup_key = $2",
                &[&queue_id, key],
            )?;
            return Ok(SendOutcome {
                seq: row.get(1),
                message_id: row.get(0),
                duplicate: true,
            });
        }
    }
    tx.execute(
        "INSERT INTO sqs_messages
           (seq, queue_id, visible_ms, sent_ms, receive_count, receipt, first_receive_ms,
            group_id, record)
         VALUES ($1, $2, $3, $4, $5, '', $6, $7, $8)",
        &[
            &seq,
            &queue_id,
            &m.visible_ms,
            &m.sent_ms,
            &count(m.receive_count),
            &m.first_receive_ms,
            &m.group_id,
            &to_json(m)?,
        ],
    )?;
    Ok(SendOutcome {
        seq,
        message_id: m.message_id.clone(),
        duplicate: false,
    })
}

fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn decode(row: &Row) -> Result<StoredMessage> {
    let mut message: NewMessage = from_json(row.get::<_, &str>(4))?;
    message.receive_count = u32::try_from(row.get::<_, i32>(1)).unwrap_or(0);
    message.first_receive_ms = row.get(2);
    Ok(StoredMessage {
        seq: row.get(0),
        message,
        receipt: row.get(3),
    })
}

fn candidates(tx: &mut Tx<'_>, r: &ReceiveOp, want: usize) -> Result<Vec<StoredMessage>> {
    // Standard queues: receivable messages, earliest first, skipping those another claim holds.
    // FIFO queues (claims serialized by the queue lock): a message is receivable only when no
    // message of its group is in flight and no earlier message of its group is still invisible.
    let sql = if r.fifo {
        "SELECT seq, receive_count, first_receive_ms, receipt, record FROM sqs_messages m
         WHERE m.queue_id = $1 AND m.visible_ms <= $2 AND m.sent_ms >= $3
           AND NOT EXISTS (
             SELECT 1 FROM sqs_messages b
             WHERE b.queue_id = m.queue_id AND b.group_id IS NOT DISTINCT FROM m.group_id
               AND b.visible_ms > $2 AND (b.receive_count > 0 OR b.seq < m.seq))
         ORDER BY m.seq LIMIT $4 FOR UPDATE"
    } else {
        "SELECT seq, receive_count, first_receive_ms, receipt, record FROM sqs_messages
         WHERE queue_id = $1 AND visible_ms <= $2 AND sent_ms >= $3
         ORDER BY visible_ms, seq LIMIT $4 FOR UPDATE SKIP LOCKED"
    };
    tx.query(
        sql,
        &[&r.queue_id, &r.now_ms, &r.retention_cutoff_ms, &limit(want)],
    )?
    .iter()
    .map(decode)
    .collect()
}

fn receive(tx: &mut Tx<'_>, r: &ReceiveOp) -> Result<Received> {
    if r.fifo {
        tx.execute(
            "SELECT 1 FROM sqs_queues WHERE id = $1 FOR NO KEY UPDATE",
            &[&r.queue_id],
        )?;
    }
    sqs_receive::receive(tx, r)
}

impl ReceiveSql for Tx<'_> {
    fn candidates(&mut self, r: &ReceiveOp, want: usize) -> Result<Vec<StoredMessage>> {
        candidates(self, r, want)
    }

    fn move_to_dead_letter(
        &mut self,
        seq: i64,
        dlq_queue_id: i64,
        moved: &NewMessage,
    ) -> Result<()> {
        insert(self, dlq_queue_id, moved)?;
        self.execute("DELETE FROM sqs_messages WHERE seq = $1", &[&seq])?;
        Ok(())
    }

    fn mark_received(
        &mut self,
        seq: i64,
        receipt: &str,
        visible_ms: i64,
        first_receive_ms: i64,
    ) -> Result<()> {
        self.execute(
            "UPDATE sqs_messages SET receive_count = receive_count + 1, receipt = $2,
               visible_ms = $3, first_receive_ms = $4
             WHERE seq = $1",
            &[&seq, &receipt, &visible_ms, &first_receive_ms],
        )?;
        Ok(())
    }

    fn next_visible_ms(&mut self, queue_id: i64, now_ms: i64) -> Result<Option<i64>> {
        Ok(self
            .query_one(
                "SELECT MIN(visible_ms) FROM sqs_messages WHERE queue_id = $1 AND visible_ms > $2",
                &[&queue_id, &now_ms],
            )?
            .get(0))
    }
}

fn change_visibility(
    tx: &mut Tx<'_>,
    queue_id: i64,
    now_ms: i64,
    r: &ReceiptRef,
    visible_ms: i64,
) -> Result<Result<(), VisibilityRefusal>> {
    let n = tx.execute(
        "UPDATE sqs_messages SET visible_ms = $4
         WHERE seq = $1 AND queue_id = $2 AND receipt = $3 AND receive_count > 0
           AND visible_ms > $5",
        &[&r.seq, &queue_id, &r.receipt, &visible_ms, &now_ms],
    )?;
    if n > 0 {
        return Ok(Ok(()));
    }
    let found: Option<String> = tx
        .query_opt(
            "SELECT receipt FROM sqs_messages WHERE seq = $1 AND queue_id = $2",
            &[&r.seq, &queue_id],
        )?
        .map(|row| row.get(0));
    Ok(Err(match found {
        Some(receipt) if receipt == r.receipt => VisibilityRefusal::NotInFlight,
        _ => VisibilityRefusal::Gone,
    }))
}

pub(super) fn purge(tx: &mut Tx<'_>, id: i64) -> Result<u64> {
    tx.execute("DELETE FROM sqs_messages WHERE queue_id = $1", &[&id])
}

pub(super) fn expire(tx: &mut Tx<'_>, id: i64, cutoff_ms: i64, now_ms: i64) -> Result<u64> {
    tx.execute(
        "DELETE FROM sqs_dedup WHERE queue_id = $1 AND until_ms <= $2",
        &[&id, &now_ms],
    )?;
    tx.execute(
        "DELETE FROM sqs_messages WHERE queue_id = $1 AND sent_ms < $2",
        &[&id, &cutoff_ms],
    )
}

pub(super) fn peek(tx: &mut Tx<'_>, id: i64, n: usize) -> Result<Vec<StoredMessage>> {
    tx.query(
        "SELECT seq, receive_count, first_receive_ms, receipt, record FROM sqs_messages
         WHERE queue_id = $1 ORDER BY seq LIMIT $2",
        &[&id, &limit(n)],
    )?
    .iter()
    .map(decode)
    .collect()
}

pub(super) fn move_messages(tx: &mut Tx<'_>, from: i64, moves: &[MoveMessage]) -> Result<u64> {
    let mut moved = 0;
    for m in moves {
        let n = tx.execute(
            "DELETE FROM sqs_messages WHERE seq = $1 AND queue_id = $2",
            &[&m.seq, &from],
        )?;
        if n > 0 {
            insert(tx, m.to_queue_id, &m.message)?;
            moved += 1;
        }
    }
    Ok(moved)
}

pub(super) fn delete_seqs(tx: &mut Tx<'_>, queue_id: i64, seqs: &[i64]) -> Result<u64> {
    tx.execute(
        "DELETE FROM sqs_messages WHERE queue_id = $1 AND seq = ANY($2)",
        &[&queue_id, &seqs],
    )
}

pub(super) fn put_move_task(
    tx: &mut Tx<'_>,
    handle: &str,
    source_arn: &str,
    started_ms: i64,
    record: &str,
) -> Result<()> {
    tx.execute(
        "INSERT INTO sqs_move_tasks (handle, source_arn, started_ms, record)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (handle) DO UPDATE SET source_arn = excluded.source_arn,
             started_ms = excluded.started_ms, record = excluded.record",
        &[&handle, &source_arn, &started_ms, &record],
    )?;
    Ok(())
}

pub(super) fn move_tasks(tx: &mut Tx<'_>, source_arn: Option<&str>) -> Result<Vec<String>> {
    super::records::strings(
        tx,
        "SELECT record FROM sqs_move_tasks WHERE ($1::TEXT IS NULL OR source_arn = $1)
         ORDER BY started_ms DESC",
        &[&source_arn],
    )
}
