//! The asynchronous-invocation queue and the built-in dead-letter store.
//!
//! Nodes lease with `FOR UPDATE SKIP LOCKED`: two nodes leasing at once take different events
//! and neither waits for the other. Every statement here is one round trip: accepting a batch
//! of events is one `INSERT ... SELECT FROM unnest(...)` (group commit), leasing one
//! `UPDATE ... RETURNING` over the locked rows, finishing an event that produced nothing to
//! store one lease-fenced `DELETE` committed on its own (no `BEGIN`/`COMMIT` around it).

use kindling_model::events::{AsyncEvent, DeadLetter};
use postgres::Row;

use super::connections::Tx;
use super::rows::{int, records, to_json};
use crate::{QueueStat, Result};

pub(super) fn enqueue(tx: &mut Tx<'_>, events: &[AsyncEvent]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let functions: Vec<&str> = events.iter().map(|e| e.function_name.as_str()).collect();
    let qualifiers: Vec<&str> = events
        .iter()
        .map(|e| e.qualifier.as_deref().unwrap_or(""))
        .collect();
    let payloads: Vec<&[u8]> = events.iter().map(|e| e.payload.as_slice()).collect();
    let enqueued: Vec<i64> = events.iter().map(|e| e.enqueued_ms).collect();
    let attempts: Vec<i64> = events.iter().map(|e| i64::from(e.attempts)).collect();
    let not_before: Vec<i64> = events.iter().map(|e| e.not_before_ms).collect();
    let last_results: Vec<Option<&str>> = events.iter().map(|e| e.last_result.as_deref()).collect();
    let traces: Vec<Option<&str>> = events.iter().map(|e| e.trace_header.as_deref()).collect();
    tx.execute(
        "INSERT INTO async_events
           (id, function_name, qualifier, payload, enqueued_ms, attempts, not_before_ms,
            last_result, trace_header)
         SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BYTEA[], $5::BIGINT[],
                              $6::BIGINT[], $7::BIGINT[], $8::TEXT[], $9::TEXT[])
         ON CONFLICT (id) DO NOTHING",
        &[
            &ids,
            &functions,
            &qualifiers,
            &payloads,
            &enqueued,
            &attempts,
            &not_before,
            &last_results,
            &traces,
        ],
    )?;
    Ok(())
}

fn event(r: &Row) -> AsyncEvent {
    let qualifier: String = r.get(2);
    AsyncEvent {
        id: r.get(0),
        function_name: r.get(1),
        qualifier: (!qualifier.is_empty()).then_some(qualifier),
        payload: r.get(3),
        enqueued_ms: r.get(4),
        attempts: u32::try_from(r.get::<_, i64>(5)).unwrap_or(u32::MAX),
        not_before_ms: r.get(6),
        last_result: r.get(7),
        trace_header: r.get(8),
    }
}

/// Leases due events round-robin across functions: the first due event of every function,
/// then the second of every function, and so on. Each function's candidates are its `limit`
/// oldest due events not locked by another node's lease in progress.
pub(super) fn lease(
    tx: &mut Tx<'_>,
    owner: &str,
    now_ms: i64,
    lease_ms: i64,
    limit: usize,
) -> Result<Vec<AsyncEvent>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let rows = tx.query(
        "WITH candidates AS (
           SELECT c.id, c.not_before_ms, c.enqueued_ms,
                  ROW_NUMBER() OVER (PARTITION BY f.function_name
                                     ORDER BY c.not_before_ms, c.enqueued_ms) AS turn
           FROM (SELECT DISTINCT function_name FROM async_events
                 WHERE not_before_ms <= $1 AND (lease_owner IS NULL OR lease_until_ms < $1)) f
           CROSS JOIN LATERAL (
             SELECT id, not_before_ms, enqueued_ms FROM async_events e
             WHERE e.function_name = f.function_name AND e.not_before_ms <= $1
               AND (e.lease_owner IS NULL OR e.lease_until_ms < $1)
             ORDER BY e.not_before_ms, e.enqueued_ms
             LIMIT $2
             FOR UPDATE SKIP LOCKED
           ) c
         ), chosen AS (
           SELECT id, turn FROM candidates ORDER BY turn, not_before_ms, enqueued_ms LIMIT $2
         )
         UPDATE async_events e SET lease_owner = $3, lease_until_ms = $4
         FROM chosen WHERE e.id = chosen.id
         RETURNING e.id, e.function_name, e.qualifier, e.payload, e.enqueued_ms, e.attempts,
                   e.not_before_ms, e.last_result, e.trace_header, chosen.turn",
        &[
            &now_ms,
            &int(limit as u64),
            &owner,
            &now_ms.saturating_add(lease_ms),
        ],
    )?;
    let mut leased: Vec<(i64, AsyncEvent)> = rows.iter().map(|r| (r.get(9), event(r))).collect();
    leased.sort_by(|(ta, a), (tb, b)| {
        (ta, a.not_before_ms, a.enqueued_ms).cmp(&(tb, b.not_before_ms, b.enqueued_ms))
    });
    Ok(leased.into_iter().map(|(_, e)| e).collect())
}

pub(super) fn reschedule(
    tx: &mut Tx<'_>,
    id: &str,
    owner: &str,
    attempts: u32,
    not_before_ms: i64,
    last_result: Option<&str>,
) -> Result<()> {
    tx.execute(
        "UPDATE async_events SET attempts = $3, not_before_ms = $4, last_result = $5,
           lease_owner = NULL, lease_until_ms = NULL
         WHERE id = $1 AND lease_owner = $2",
        &[
            &id,
            &owner,
            &i64::from(attempts),
            &not_before_ms,
            &last_result,
        ],
    )?;
    Ok(())
}

/// Deletes event `$1` if node `$2` still holds its lease: a node whose lease expired and was
/// taken by another node deletes nothing (the other node's run finishes the event).
pub(super) const DELETE_LEASED: &str =
    "DELETE FROM async_events WHERE id = $1 AND lease_owner = $2";

/// Removes the event if `owner` still holds its lease, storing what it produced with it.
pub(super) fn finish(
    tx: &mut Tx<'_>,
    id: &str,
    owner: &str,
    letters: &[DeadLetter],
    follow_ups: &[AsyncEvent],
) -> Result<()> {
    let n = tx.execute(DELETE_LEASED, &[&id, &owner])?;
    if n == 1 {
        insert_letters(tx, letters)?;
        enqueue(tx, follow_ups)?;
    }
    Ok(())
}

pub(super) fn release(tx: &mut Tx<'_>, owner: &str) -> Result<u64> {
    tx.execute(
        "UPDATE async_events SET lease_owner = NULL, lease_until_ms = NULL WHERE lease_owner = $1",
        &[&owner],
    )
}

pub(super) fn next_due(tx: &mut Tx<'_>) -> Result<Option<i64>> {
    Ok(tx
        .query_one(
            "SELECT MIN(not_before_ms) FROM async_events WHERE lease_owner IS NULL",
            &[],
        )?
        .get(0))
}

pub(super) fn dead_letters(
    tx: &mut Tx<'_>,
    queue: Option<&str>,
    limit: usize,
) -> Result<Vec<DeadLetter>> {
    records(
        tx,
        "SELECT record FROM dead_letters WHERE ($1::TEXT IS NULL OR queue = $1)
         ORDER BY created_ms, id LIMIT $2",
        &[&queue, &int(limit as u64)],
    )
}

/// Deletes dead letters and enqueues events in one transaction.
pub(super) fn redrive(tx: &mut Tx<'_>, letter_ids: &[String], events: &[AsyncEvent]) -> Result<()> {
    tx.execute(
        "DELETE FROM dead_letters WHERE id = ANY($1)",
        &[&letter_ids],
    )?;
    enqueue(tx, events)
}

fn insert_letters(tx: &mut Tx<'_>, letters: &[DeadLetter]) -> Result<()> {
    for l in letters {
        tx.execute(
            "INSERT INTO dead_letters (id, queue, created_ms, record) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET queue = excluded.queue,
               created_ms = excluded.created_ms, record = excluded.record",
            &[&l.id, &l.queue, &l.created_ms, &to_json(l)?],
        )?;
    }
    Ok(())
}

pub(super) fn stats(tx: &mut Tx<'_>) -> Result<Vec<QueueStat>> {
    Ok(tx
        .query(
            "SELECT function_name, COUNT(*), COUNT(lease_owner), MIN(enqueued_ms)
             FROM async_events GROUP BY function_name ORDER BY function_name",
            &[],
        )?
        .iter()
        .map(|r| QueueStat {
            function_name: r.get(0),
            depth: r.get::<_, i64>(1).max(0) as u64,
            in_flight: r.get::<_, i64>(2).max(0) as u64,
            oldest_enqueued_ms: r.get(3),
        })
        .collect())
}
