//! SQS queues and messages.

use kindling_model::messaging::{NewMessage, QueueRecord, StoredMessage};
use rusqlite::{Connection, OptionalExtension, params};

use super::queue as async_queue;
use super::rows::{from_json, to_json};
use crate::messaging::{
    Delivery, MoveMessage, QueueCounts, QueueOp, QueueOpOutput, ReceiptRef, ReceiveOp, Received,
    SendOutcome, VisibilityRefusal,
};
use crate::sqs_receive::{self, ReceiveSql};
use crate::{Entity, Result, StoreError};

fn with_id(mut rec: QueueRecord, id: i64) -> QueueRecord {
    rec.id = id;
    rec
}

pub(super) fn create(conn: &Connection, rec: &QueueRecord) -> Result<(QueueRecord, bool)> {
    if let Some(existing) = get(conn, &rec.account, &rec.name)? {
        return Ok((existing, false));
    }
    conn.execute(
        "INSERT INTO sqs_queues (account, name, record) VALUES (?1, ?2, ?3)",
        params![rec.account, rec.name, to_json(rec)?],
    )?;
    let id = conn.last_insert_rowid();
    let rec = with_id(rec.clone(), id);
    conn.execute(
        "UPDATE sqs_queues SET record = ?2 WHERE id = ?1",
        params![id, to_json(&rec)?],
    )?;
    Ok((rec, true))
}

pub(super) fn get(conn: &Connection, account: &str, name: &str) -> Result<Option<QueueRecord>> {
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT id, record FROM sqs_queues WHERE account = ?1 AND name = ?2")?
        .query_row(params![account, name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(id, json)| from_json::<QueueRecord>(&json).map(|r| with_id(r, id)))
        .transpose()
}

pub(super) fn all(conn: &Connection) -> Result<Vec<QueueRecord>> {
    let mut stmt =
        conn.prepare_cached("SELECT id, record FROM sqs_queues ORDER BY account, name")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, json) = row?;
        out.push(with_id(from_json(&json)?, id));
    }
    Ok(out)
}

pub(super) fn put(conn: &Connection, rec: &QueueRecord) -> Result<()> {
    let n = conn.execute(
        "UPDATE sqs_queues SET record = ?2 WHERE id = ?1",
        params![rec.id, to_json(rec)?],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(Entity::Queue));
    }
    Ok(())
}

pub(super) fn delete(conn: &Connection, id: i64) -> Result<bool> {
    conn.execute("DELETE FROM sqs_messages WHERE queue_id = ?1", [id])?;
    conn.execute("DELETE FROM sqs_dedup WHERE queue_id = ?1", [id])?;
    Ok(conn.execute("DELETE FROM sqs_queues WHERE id = ?1", [id])? > 0)
}

pub(super) fn counts(conn: &Connection, id: i64, now_ms: i64) -> Result<QueueCounts> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE(SUM(visible_ms <= ?2), 0),
                    COALESCE(SUM(visible_ms > ?2 AND receive_count > 0), 0),
                    COALESCE(SUM(visible_ms > ?2 AND receive_count = 0), 0),
                    MIN(sent_ms)
             FROM sqs_messages WHERE queue_id = ?1",
        )?
        .query_row(params![id, now_ms], |r| {
            Ok(QueueCounts {
                visible: r.get::<_, i64>(0)? as u64,
                in_flight: r.get::<_, i64>(1)? as u64,
                delayed: r.get::<_, i64>(2)? as u64,
                oldest_sent_ms: r.get(3)?,
            })
        })?)
}

/// Runs each operation in a savepoint of the caller's transaction.
pub(super) fn apply(
    conn: &Connection,
    ops: &[QueueOp],
) -> Result<Vec<Result<QueueOpOutput, StoreError>>> {
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        conn.prepare_cached("SAVEPOINT op")?.execute([])?;
        let result = run(conn, op);
        if result.is_err() {
            conn.prepare_cached("ROLLBACK TO op")?.execute([])?;
        }
        conn.prepare_cached("RELEASE op")?.execute([])?;
        out.push(result);
    }
    Ok(out)
}

fn run(conn: &Connection, op: &QueueOp) -> Result<QueueOpOutput> {
    match op {
        QueueOp::Send { queue_id, messages } => {
            let mut outcomes = Vec::with_capacity(messages.len());
            for m in messages {
                outcomes.push(insert(conn, *queue_id, m)?);
            }
            Ok(QueueOpOutput::Sent(outcomes))
        }
        QueueOp::Receive(r) => receive(conn, r).map(QueueOpOutput::Received),
        QueueOp::Delete { queue_id, entries } => {
            let mut stmt = conn.prepare_cached(
                "DELETE FROM sqs_messages WHERE seq = ?1 AND queue_id = ?2 AND receipt = ?3",
            )?;
            let mut deleted = Vec::with_capacity(entries.len());
            for e in entries {
                deleted.push(stmt.execute(params![e.seq, queue_id, e.receipt])? > 0);
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
                out.push(change_visibility(conn, *queue_id, *now_ms, r, *visible_ms)?);
            }
            Ok(QueueOpOutput::Changed(out))
        }
        QueueOp::Deliver(d) => deliver(conn, d).map(|()| QueueOpOutput::Delivered),
    }
}

/// Inserts a message unless its FIFO deduplication key was seen within its window.
pub(super) fn insert(conn: &Connection, queue_id: i64, m: &NewMessage) -> Result<SendOutcome> {
    if let Some(key) = &m.dedup_key {
        let seen: Option<(String, i64)> = conn
            .prepare_cached(
                "SELECT message_id, seq FROM sqs_dedup
                 WHERE queue_id = ?1 AND dedup_key = ?2 AND until_ms > ?3",
            )?
            .query_row(params![queue_id, key, m.sent_ms], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        if let Some((message_id, seq)) = seen {
            return Ok(SendOutcome {
                seq,
                message_id,
                duplicate: true,
            });
        }
    }
    conn.prepare_cached(
        "INSERT INTO sqs_messages
           (queue_id, visible_ms, sent_ms, receive_count, receipt, first_receive_ms, group_id, record)
         VALUES (?1, ?2, ?3, ?4, '', ?5, ?6, ?7)",
    )?
    .execute(params![
        queue_id,
        m.visible_ms,
        m.sent_ms,
        m.receive_count,
        m.first_receive_ms,
        m.group_id,
        to_json(m)?
    ])?;
    let seq = conn.last_insert_rowid();
    if let Some(key) = &m.dedup_key {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO sqs_dedup (queue_id, dedup_key, message_id, seq, until_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![queue_id, key, m.message_id, seq, m.dedup_until_ms])?;
    }
    Ok(SendOutcome {
        seq,
        message_id: m.message_id.clone(),
        duplicate: false,
    })
}

fn row_message(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, u32, Option<i64>, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn decode(
    (seq, receive_count, first_receive_ms, receipt, record): (
        i64,
        u32,
        Option<i64>,
        String,
        String,
    ),
) -> Result<StoredMessage> {
    let mut message: NewMessage = from_json(&record)?;
    message.receive_count = receive_count;
    message.first_receive_ms = first_receive_ms;
    Ok(StoredMessage {
        seq,
        message,
        receipt,
    })
}

const COLUMNS: &str = "seq, receive_count, first_receive_ms, receipt, record";

fn candidates(conn: &Connection, r: &ReceiveOp, limit: usize) -> Result<Vec<StoredMessage>> {
    // Standard queues: receivable messages, earliest first. FIFO queues: a message is
    // receivable only when no message of its group is in flight and no earlier message of its
    // group is still invisible (delayed), so a group is delivered strictly in order.
    let sql = if r.fifo {
        format!(
            "SELECT {COLUMNS} FROM sqs_messages m
             WHERE m.queue_id = ?1 AND m.visible_ms <= ?2 AND m.sent_ms >= ?3
               AND NOT EXISTS (
                 SELECT 1 FROM sqs_messages b
                 WHERE b.queue_id = m.queue_id AND b.group_id IS m.group_id AND b.visible_ms > ?2
                   AND (b.receive_count > 0 OR b.seq < m.seq))
             ORDER BY m.seq LIMIT ?4"
        )
    } else {
        format!(
            "SELECT {COLUMNS} FROM sqs_messages
             WHERE queue_id = ?1 AND visible_ms <= ?2 AND sent_ms >= ?3
             ORDER BY visible_ms, seq LIMIT ?4"
        )
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![r.queue_id, r.now_ms, r.retention_cutoff_ms, limit as i64],
        row_message,
    )?;
    let mut out = Vec::new();
    for row in rows {
        out.push(decode(row?)?);
    }
    Ok(out)
}

fn receive(conn: &Connection, r: &ReceiveOp) -> Result<Received> {
    sqs_receive::receive(&mut Claim(conn), r)
}

/// A claim's statements on the writer's connection.
struct Claim<'a>(&'a Connection);

impl ReceiveSql for Claim<'_> {
    fn candidates(&mut self, r: &ReceiveOp, want: usize) -> Result<Vec<StoredMessage>> {
        candidates(self.0, r, want)
    }

    fn move_to_dead_letter(
        &mut self,
        seq: i64,
        dlq_queue_id: i64,
        moved: &NewMessage,
    ) -> Result<()> {
        insert(self.0, dlq_queue_id, moved)?;
        self.0
            .prepare_cached("DELETE FROM sqs_messages WHERE seq = ?1")?
            .execute([seq])?;
        Ok(())
    }

    fn mark_received(
        &mut self,
        seq: i64,
        receipt: &str,
        visible_ms: i64,
        first_receive_ms: i64,
    ) -> Result<()> {
        self.0
            .prepare_cached(
                "UPDATE sqs_messages SET receive_count = receive_count + 1, receipt = ?2,
                   visible_ms = ?3, first_receive_ms = ?4
                 WHERE seq = ?1",
            )?
            .execute(params![seq, receipt, visible_ms, first_receive_ms])?;
        Ok(())
    }

    fn next_visible_ms(&mut self, queue_id: i64, now_ms: i64) -> Result<Option<i64>> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT MIN(visible_ms) FROM sqs_messages WHERE queue_id = ?1 AND visible_ms > ?2",
            )?
            .query_row(params![queue_id, now_ms], |row| row.get(0))?)
    }
}

fn change_visibility(
    conn: &Connection,
    queue_id: i64,
    now_ms: i64,
    r: &ReceiptRef,
    visible_ms: i64,
) -> Result<Result<(), VisibilityRefusal>> {
    let n = conn
        .prepare_cached(
            "UPDATE sqs_messages SET visible_ms = ?4
             WHERE seq = ?1 AND queue_id = ?2 AND receipt = ?3 AND receive_count > 0
               AND visible_ms > ?5",
        )?
        .execute(params![r.seq, queue_id, r.receipt, visible_ms, now_ms])?;
    if n > 0 {
        return Ok(Ok(()));
    }
    let found: Option<String> = conn
        .prepare_cached("SELECT receipt FROM sqs_messages WHERE seq = ?1 AND queue_id = ?2")?
        .query_row(params![r.seq, queue_id], |row| row.get(0))
        .optional()?;
    Ok(Err(match found {
        Some(receipt) if receipt == r.receipt => VisibilityRefusal::NotInFlight,
        _ => VisibilityRefusal::Gone,
    }))
}

fn deliver(conn: &Connection, d: &Delivery) -> Result<()> {
    for (queue_id, m) in &d.messages {
        insert(conn, *queue_id, m)?;
    }
    async_queue::enqueue(conn, &d.events)?;
    super::sns::insert_http(conn, &d.http)?;
    if let Some(id) = &d.consume_letter {
        conn.execute("DELETE FROM dead_letters WHERE id = ?1", [id])?;
    }
    Ok(())
}

pub(super) fn purge(conn: &Connection, id: i64) -> Result<u64> {
    Ok(conn.execute("DELETE FROM sqs_messages WHERE queue_id = ?1", [id])? as u64)
}

pub(super) fn expire(conn: &Connection, id: i64, cutoff_ms: i64, now_ms: i64) -> Result<u64> {
    conn.execute(
        "DELETE FROM sqs_dedup WHERE queue_id = ?1 AND until_ms <= ?2",
        params![id, now_ms],
    )?;
    Ok(conn.execute(
        "DELETE FROM sqs_messages WHERE queue_id = ?1 AND sent_ms < ?2",
        params![id, cutoff_ms],
    )? as u64)
}

pub(super) fn peek(conn: &Connection, id: i64, limit: usize) -> Result<Vec<StoredMessage>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sqs_messages WHERE queue_id = ?1 ORDER BY seq LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![id, limit as i64], row_message)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(decode(row?)?);
    }
    Ok(out)
}

pub(super) fn move_messages(conn: &Connection, from: i64, moves: &[MoveMessage]) -> Result<u64> {
    let mut moved = 0;
    for m in moves {
        let n = conn.execute(
            "DELETE FROM sqs_messages WHERE seq = ?1 AND queue_id = ?2",
            params![m.seq, from],
        )?;
        if n > 0 {
            insert(conn, m.to_queue_id, &m.message)?;
            moved += 1;
        }
    }
    Ok(moved)
}

pub(super) fn put_move_task(
    conn: &Connection,
    handle: &str,
    source_arn: &str,
    started_ms: i64,
    record: &str,
) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO sqs_move_tasks (handle, source_arn, started_ms, record)
         VALUES (?1, ?2, ?3, ?4)",
        params![handle, source_arn, started_ms, record],
    )?;
    Ok(())
}

pub(super) fn move_tasks(conn: &Connection, source_arn: Option<&str>) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT record FROM sqs_move_tasks WHERE (?1 IS NULL OR source_arn = ?1)
         ORDER BY started_ms DESC",
    )?;
    let rows = stmt.query_map([source_arn], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
