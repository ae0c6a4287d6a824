//! SNS topics, subscriptions and pending HTTP deliveries on PostgreSQL.

use super::connections::Tx;
use kindling_model::messaging::{HttpDelivery, NewMessage, SubscriptionRecord, TopicRecord};

use super::records::limit;
use super::rows::{record, records, to_json};
use crate::messaging::HttpBusy;
use crate::{Entity, Result, StoreError};

pub(super) fn create_topic(tx: &mut Tx<'_>, rec: &TopicRecord) -> Result<(TopicRecord, bool)> {
    let n = tx.execute(
        "INSERT INTO sns_topics (arn, record) VALUES ($1, $2) ON CONFLICT (arn) DO NOTHING",
        &[&rec.arn, &to_json(rec)?],
    )?;
    if n == 1 {
        return Ok((rec.clone(), true));
    }
    topic(tx, &rec.arn)?
        .map(|existing| (existing, false))
        .ok_or(StoreError::NotFound(Entity::Topic))
}

pub(super) fn topic(tx: &mut Tx<'_>, arn: &str) -> Result<Option<TopicRecord>> {
    record(tx, "SELECT record FROM sns_topics WHERE arn = $1", &[&arn])
}

pub(super) fn topics(tx: &mut Tx<'_>) -> Result<Vec<TopicRecord>> {
    records(tx, "SELECT record FROM sns_topics ORDER BY arn", &[])
}

pub(super) fn put_topic(tx: &mut Tx<'_>, rec: &TopicRecord) -> Result<()> {
    let n = tx.execute(
        "UPDATE sns_topics SET record = $2 WHERE arn = $1",
        &[&rec.arn, &to_json(rec)?],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(Entity::Topic));
    }
    Ok(())
}

pub(super) fn delete_topic(tx: &mut Tx<'_>, arn: &str) -> Result<bool> {
    // Subscriptions go with the topic (ON DELETE CASCADE).
    Ok(tx.execute("DELETE FROM sns_topics WHERE arn = $1", &[&arn])? > 0)
}

pub(super) fn put_subscription(tx: &mut Tx<'_>, rec: &SubscriptionRecord) -> Result<()> {
    // Locks the topic so that it cannot be deleted before the subscription is stored.
    if tx
        .query_opt(
            "SELECT 1 FROM sns_topics WHERE arn = $1 FOR KEY SHARE",
            &[&rec.topic_arn],
        )?
        .is_none()
    {
        return Err(StoreError::NotFound(Entity::Topic));
    }
    // Keeps the original `seq` (creation order) when replacing.
    tx.execute(
        "INSERT INTO sns_subscriptions (arn, topic_arn, record) VALUES ($1, $2, $3)
         ON CONFLICT (arn) DO UPDATE SET record = excluded.record",
        &[&rec.arn, &rec.topic_arn, &to_json(rec)?],
    )?;
    Ok(())
}

pub(super) fn subscription(tx: &mut Tx<'_>, arn: &str) -> Result<Option<SubscriptionRecord>> {
    record(
        tx,
        "SELECT record FROM sns_subscriptions WHERE arn = $1",
        &[&arn],
    )
}

pub(super) fn subscriptions(
    tx: &mut Tx<'_>,
    topic_arn: Option<&str>,
) -> Result<Vec<SubscriptionRecord>> {
    records(
        tx,
        "SELECT record FROM sns_subscriptions WHERE ($1::TEXT IS NULL OR topic_arn = $1)
         ORDER BY seq",
        &[&topic_arn],
    )
}

pub(super) fn delete_subscription(tx: &mut Tx<'_>, arn: &str) -> Result<bool> {
    Ok(tx.execute("DELETE FROM sns_subscriptions WHERE arn = $1", &[&arn])? > 0)
}

pub(super) fn insert_http(tx: &mut Tx<'_>, deliveries: &[HttpDelivery]) -> Result<()> {
    if deliveries.is_empty() {
        return Ok(());
    }
    for d in deliveries {
        tx.execute(
            "INSERT INTO sns_http_deliveries (id, not_before_ms, record) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET not_before_ms = excluded.not_before_ms,
                 record = excluded.record",
            &[&d.id, &d.not_before_ms, &to_json(d)?],
        )?;
    }
    Ok(())
}

/// How long deliveries handed to one node are hidden from the others (an attempt's timeout
/// with a margin); a node that dies meanwhile leaves them to the others after this.
const HTTP_RESERVATION_MS: i64 = 60_000;

/// Due deliveries, reserved for the caller: several nodes deliver at once, each POST is made
/// by one of them (`FOR UPDATE SKIP LOCKED`). The records keep their attempt count and time;
/// only the row's due time moves, until the caller finishes the delivery. Each subscription's
/// due rows are numbered oldest first and those past its allowance are never locked nor
/// reserved (a row locked by another node is skipped: fewer, never more, per subscription).
pub(super) fn due_http(
    tx: &mut Tx<'_>,
    now_ms: i64,
    n: usize,
    busy: &HttpBusy,
) -> Result<Vec<HttpDelivery>> {
    let (subscriptions, allowances) = busy.allowance_columns();
    let mut due: Vec<HttpDelivery> = records(
        tx,
        "UPDATE sns_http_deliveries SET not_before_ms = $1 + $3
         WHERE id IN (
             SELECT id FROM sns_http_deliveries
             WHERE not_before_ms <= $1
               AND id IN (
                   SELECT ranked.id FROM (
                       SELECT d.id, COALESCE(a.n, $7) AS allowance,
                              ROW_NUMBER() OVER (PARTITION BY d.record::jsonb ->> 'subscription_arn'
                                                 ORDER BY d.not_before_ms, d.id) AS nth
                       FROM sns_http_deliveries d
                       LEFT JOIN unnest($5::text[], $6::bigint[]) AS a(subscription, n)
                              ON a.subscription = (d.record::jsonb ->> 'subscription_arn')
                       WHERE d.not_before_ms <= $1 AND NOT (d.id = ANY($4))) ranked
                   WHERE ranked.nth <= ranked.allowance)
             ORDER BY not_before_ms, id LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING record",
        &[
            &now_ms,
            &limit(n),
            &HTTP_RESERVATION_MS,
            &busy.ids,
            &subscriptions,
            &allowances,
            &busy.per_subscription_count(),
        ],
    )?;
    due.sort_by_key(|d| d.not_before_ms);
    Ok(due)
}

pub(super) fn finish_http(
    tx: &mut Tx<'_>,
    id: &str,
    retry: Option<(u32, i64)>,
    dead_letter: Option<&(i64, NewMessage)>,
) -> Result<()> {
    match retry {
        Some((attempts, not_before_ms)) => {
            let Some(mut d) = record::<HttpDelivery>(
                tx,
                "SELECT record FROM sns_http_deliveries WHERE id = $1 FOR UPDATE",
                &[&id],
            )?
            else {
                return Ok(());
            };
            d.attempts = attempts;
            d.not_before_ms = not_before_ms;
            insert_http(tx, &[d])?;
        }
        None => {
            tx.execute("DELETE FROM sns_http_deliveries WHERE id = $1", &[&id])?;
        }
    }
    if let Some((queue_id, m)) = dead_letter {
        super::sqs::insert(tx, *queue_id, m)?;
    }
    Ok(())
}
