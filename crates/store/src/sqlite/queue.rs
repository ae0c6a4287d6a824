//! The asynchronous-invocation queue and the built-in dead-letter store.

use kindling_model::events::{AsyncEvent, DeadLetter};
use rusqlite::{Connection, params};

use super::rows::{records, to_json};
use crate::{QueueStat, Result};

pub(super) fn enqueue(conn: &Connection, events: &[AsyncEvent]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO async_events
           (id, function_name, qualifier, payload, enqueued_ms, attempts, not_before_ms, last_result,
            trace_header)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for e in events {
        stmt.execute(params![
            e.id,
            e.function_name,
            e.qualifier.as_deref().unwrap_or(""),
            e.payload,
            e.enqueued_ms,
            e.attempts,
            e.not_before_ms,
            e.last_result,
            e.trace_header,
        ])?;
    }
    Ok(())
}

/// Leases due events round-robin across functions: the first due event of every function,
/// then the second of every function, and so on.
pub(super) fn lease(
    conn: &Connection,
    owner: &str,
    now_ms: i64,
    lease_ms: i64,
    limit: usize,
) -> Result<Vec<AsyncEvent>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, function_name, qualifier, payload, enqueued_ms, attempts, not_before_ms, last_result,
                trace_header
         FROM (
           SELECT *, ROW_NUMBER() OVER (
               PARTITION BY function_name ORDER BY not_before_ms, enqueued_ms) AS turn
           FROM async_events
           WHERE not_before_ms <= ?1 AND (lease_owner IS NULL OR lease_until_ms < ?1)
         )
         ORDER BY turn, not_before_ms, enqueued_ms
         LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now_ms, limit as i64], |r| {
        let qualifier: String = r.get(2)?;
        Ok(AsyncEvent {
            id: r.get(0)?,
            function_name: r.get(1)?,
            qualifier: (!qualifier.is_empty()).then_some(qualifier),
            payload: r.get(3)?,
            enqueued_ms: r.get(4)?,
            attempts: r.get(5)?,
            not_before_ms: r.get(6)?,
            last_result: r.get(7)?,
            trace_header: r.get(8)?,
        })
    })?;
    let events = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    let mut update = conn.prepare_cached(
        "UPDATE async_events SET lease_owner = ?2, lease_until_ms = ?3 WHERE id = ?1",
    )?;
    for e in &events {
        update.execute(params![e.id, owner, now_ms + lease_ms])?;
    }
    Ok(events)
}

pub(super) fn reschedule(
    conn: &Connection,
    id: &str,
    owner: &str,
    attempts: u32,
    not_before_ms: i64,
    last_result: Option<&str>,
) -> Result<()> {
    conn.execute(
        "UPDATE async_events SET attempts = ?3, not_before_ms = ?4, last_result = ?5,
           lease_owner = NULL, lease_until_ms = NULL
         WHERE id = ?1 AND lease_owner = ?2",
        params![id, owner, attempts, not_before_ms, last_result],
    )?;
    Ok(())
}

/// Removes the event if `owner` still holds its lease, storing what it produced with it.
pub(super) fn finish(
    conn: &Connection,
    id: &str,
    owner: &str,
    letters: &[DeadLetter],
    follow_ups: &[AsyncEvent],
) -> Result<()> {
    let n = conn.execute(
        "DELETE FROM async_events WHERE id = ?1 AND lease_owner = ?2",
        params![id, owner],
    )?;
    if n == 1 {
        insert_letters(conn, letters)?;
        enqueue(conn, follow_ups)?;
    }
    Ok(())
}

pub(super) fn release(conn: &Connection, owner: &str) -> Result<u64> {
    Ok(conn.execute(
        "UPDATE async_events SET lease_owner = NULL, lease_until_ms = NULL WHERE lease_owner = ?1",
        [owner],
    )? as u64)
}

pub(super) fn next_due(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn.query_row(
        "SELECT MIN(not_before_ms) FROM async_events WHERE lease_owner IS NULL",
        [],
        |r| r.get(0),
    )?)
}

pub(super) fn dead_letters(
    conn: &Connection,
    queue: Option<&str>,
    limit: usize,
) -> Result<Vec<DeadLetter>> {
    records(
        conn,
        "SELECT record FROM dead_letters WHERE (?1 IS NULL OR queue = ?1)
         ORDER BY created_ms, id LIMIT ?2",
        params![queue, limit as i64],
    )
}

/// Deletes dead letters and enqueues events in one transaction.
pub(super) fn redrive(
    conn: &Connection,
    letter_ids: &[String],
    events: &[AsyncEvent],
) -> Result<()> {
    let mut delete = conn.prepare_cached("DELETE FROM dead_letters WHERE id = ?1")?;
    for id in letter_ids {
        delete.execute([id])?;
    }
    enqueue(conn, events)
}

fn insert_letters(conn: &Connection, letters: &[DeadLetter]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR REPLACE INTO dead_letters (id, queue, created_ms, record) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for l in letters {
        stmt.execute(params![l.id, l.queue, l.created_ms, to_json(l)?])?;
    }
    Ok(())
}

pub(super) fn stats(conn: &Connection) -> Result<Vec<QueueStat>> {
    let mut stmt = conn.prepare(
        "SELECT function_name, COUNT(*), SUM(lease_owner IS NOT NULL), MIN(enqueued_ms)
         FROM async_events GROUP BY function_name ORDER BY function_name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(QueueStat {
            function_name: r.get(0)?,
            depth: r.get::<_, i64>(1)? as u64,
            in_flight: r.get::<_, i64>(2)? as u64,
            oldest_enqueued_ms: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
