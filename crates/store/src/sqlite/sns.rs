//! SNS topics, subscriptions and pending HTTP deliveries.

use kindling_model::messaging::{HttpDelivery, NewMessage, SubscriptionRecord, TopicRecord};
use rusqlite::{Connection, params};

use super::rows::{record, records, to_json};
use crate::messaging::HttpBusy;
use crate::{Entity, Result, StoreError};

pub(super) fn create_topic(conn: &Connection, rec: &TopicRecord) -> Result<(TopicRecord, bool)> {
    if let Some(existing) = topic(conn, &rec.arn)? {
        return Ok((existing, false));
    }
    conn.execute(
        "INSERT INTO sns_topics (arn, record) VALUES (?1, ?2)",
        params![rec.arn, to_json(rec)?],
    )?;
    Ok((rec.clone(), true))
}

pub(super) fn topic(conn: &Connection, arn: &str) -> Result<Option<TopicRecord>> {
    record(conn, "SELECT record FROM sns_topics WHERE arn = ?1", [arn])
}

pub(super) fn topics(conn: &Connection) -> Result<Vec<TopicRecord>> {
    records(conn, "SELECT record FROM sns_topics ORDER BY arn", [])
}

pub(super) fn put_topic(conn: &Connection, rec: &TopicRecord) -> Result<()> {
    let n = conn.execute(
        "UPDATE sns_topics SET record = ?2 WHERE arn = ?1",
        params![rec.arn, to_json(rec)?],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(Entity::Topic));
    }
    Ok(())
}

pub(super) fn delete_topic(conn: &Connection, arn: &str) -> Result<bool> {
    conn.execute("DELETE FROM sns_subscriptions WHERE topic_arn = ?1", [arn])?;
    Ok(conn.execute("DELETE FROM sns_topics WHERE arn = ?1", [arn])? > 0)
}

pub(super) fn put_subscription(conn: &Connection, rec: &SubscriptionRecord) -> Result<()> {
    if topic(conn, &rec.topic_arn)?.is_none() {
        return Err(StoreError::NotFound(Entity::Topic));
    }
    // Keeps the original rowid (creation order) when replacing.
    let n = conn.execute(
        "UPDATE sns_subscriptions SET record = ?2 WHERE arn = ?1",
        params![rec.arn, to_json(rec)?],
    )?;
    if n == 0 {
        conn.execute(
            "INSERT INTO sns_subscriptions (arn, topic_arn, record) VALUES (?1, ?2, ?3)",
            params![rec.arn, rec.topic_arn, to_json(rec)?],
        )?;
    }
    Ok(())
}

pub(super) fn subscription(conn: &Connection, arn: &str) -> Result<Option<SubscriptionRecord>> {
    record(
        conn,
        "SELECT record FROM sns_subscriptions WHERE arn = ?1",
        [arn],
    )
}

pub(super) fn subscriptions(
    conn: &Connection,
    topic_arn: Option<&str>,
) -> Result<Vec<SubscriptionRecord>> {
    records(
        conn,
        "SELECT record FROM sns_subscriptions WHERE (?1 IS NULL OR topic_arn = ?1) ORDER BY rowid",
        [topic_arn],
    )
}

pub(super) fn delete_subscription(conn: &Connection, arn: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM sns_subscriptions WHERE arn = ?1", [arn])? > 0)
}

pub(super) fn insert_http(conn: &Connection, deliveries: &[HttpDelivery]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR REPLACE INTO sns_http_deliveries (id, not_before_ms, record) VALUES (?1, ?2, ?3)",
    )?;
    for d in deliveries {
        stmt.execute(params![d.id, d.not_before_ms, to_json(d)?])?;
    }
    Ok(())
}

pub(super) fn due_http(
    conn: &Connection,
    now_ms: i64,
    limit: usize,
    busy: &HttpBusy,
) -> Result<Vec<HttpDelivery>> {
    let (subscriptions, allowances) = busy.allowance_columns();
    // Each subscription's due rows are numbered oldest first; those past its allowance (the
    // default for a subscription not named) are left out.
    records(
        conn,
        "WITH allowance(subscription, n) AS (
             SELECT s.value, a.value FROM json_each(?4) s JOIN json_each(?5) a ON a.key = s.key),
         due AS (
             SELECT record, not_before_ms, id, json_extract(record, '$.subscription_arn') AS sub,
                    ROW_NUMBER() OVER (PARTITION BY json_extract(record, '$.subscription_arn')
                                       ORDER BY not_before_ms, id) AS nth
             FROM sns_http_deliveries WHERE not_before_ms <= ?1
                 AND id NOT IN (SELECT value FROM json_each(?3)))
         SELECT record FROM due LEFT JOIN allowance ON allowance.subscription = due.sub
         WHERE nth <= COALESCE(allowance.n, ?6)
         ORDER BY not_before_ms, id LIMIT ?2",
        params![
            now_ms,
            limit as i64,
            to_json(&busy.ids)?,
            to_json(&subscriptions)?,
            to_json(&allowances)?,
            busy.per_subscription_count(),
        ],
    )
}

pub(super) fn finish_http(
    conn: &Connection,
    id: &str,
    retry: Option<(u32, i64)>,
    dead_letter: Option<&(i64, NewMessage)>,
) -> Result<()> {
    match retry {
        Some((attempts, not_before_ms)) => {
            let Some(mut d) = record::<HttpDelivery>(
                conn,
                "SELECT record FROM sns_http_deliveries WHERE id = ?1",
                [id],
            )?
            else {
                return Ok(());
            };
            d.attempts = attempts;
            d.not_before_ms = not_before_ms;
            insert_http(conn, &[d])?;
        }
        None => {
            conn.execute("DELETE FROM sns_http_deliveries WHERE id = ?1", [id])?;
        }
    }
    if let Some((queue_id, m)) = dead_letter {
        super::sqs::insert(conn, *queue_id, m)?;
    }
    Ok(())
}
