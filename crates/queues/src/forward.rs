//! Destination records and dead letters of asynchronous invocations, into queues and topics.
//!
//! The events worker writes what a finished event produces into the store's outbox (the
//! `dead_letters` table) in the same transaction that removes the event. This forwarder moves
//! each record whose target is an SQS queue or SNS topic into it: the message (or the topic's
//! whole fan-out) is inserted and the record deleted in ONE transaction, so a record is
//! delivered exactly once. A target that does not exist is a failed delivery, as on Lambda:
//! logged, and the record dropped. At start-up ([`Mode::Migrate`]) records left by earlier
//! versions (the built-in dead-letter store) go to queues of their names, created if missing.

use std::collections::BTreeMap;
use std::sync::Arc;

use kindling_model::events::DeadLetter;
use kindling_store::messaging::Delivery;
use serde_json::Value;

use crate::error::QueueError;
use crate::message::{AttributeInput, SendInput};
use crate::names;
use crate::queues::{QueueService, now_ms};
use crate::topics::{PublishInput, TopicService};

/// How targets that do not exist are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Live deliveries: a missing target fails the delivery (logged, record dropped).
    Deliver,
    /// Start-up migration: a missing target becomes a queue of that name.
    Migrate,
}

/// Forwards every pending SQS/SNS record once; returns how many were handled.
pub async fn forward_once(topics: &TopicService, mode: Mode) -> usize {
    let store = Arc::clone(topics.queues().store());
    let letters = match tokio::task::spawn_blocking(move || store.queue_letters(256)).await {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            tracing::error!(
                error = &e as &dyn std::error::Error,
                "could not read destination records"
            );
            return 0;
        }
        Err(_) => return 0,
    };
    let mut handled = 0;
    for letter in letters {
        let result = forward(topics, &letter, mode).await;
        match result {
            Ok(true) => handled += 1,
            Ok(false) => {}
            Err(e) => tracing::error!(
                record = %letter.id,
                error = &e as &dyn std::error::Error,
                "could not forward a destination record"
            ),
        }
    }
    handled
}

/// Forwards records every `interval` until the process ends.
pub async fn run(topics: TopicService, interval: std::time::Duration) {
    loop {
        if forward_once(&topics, Mode::Deliver).await == 0 {
            tokio::time::sleep(interval).await;
        }
    }
}

fn attributes_of(letter: &DeadLetter) -> BTreeMap<String, AttributeInput> {
    let mut out = BTreeMap::new();
    if let Value::Object(map) = &letter.attributes {
        for (k, v) in map {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let data_type = if k == "ErrorCode" { "Number" } else { "String" };
            out.insert(
                k.clone(),
                AttributeInput {
                    data_type: Some(data_type.into()),
                    string_value: Some(text),
                    ..AttributeInput::default()
                },
            );
        }
    }
    out
}

async fn forward(
    topics: &TopicService,
    letter: &DeadLetter,
    mode: Mode,
) -> Result<bool, QueueError> {
    let queues = topics.queues();
    let (account, is_topic) =
        if let Some((_, account, _)) = names::parse_queue_arn(&letter.target_arn) {
            (account.to_string(), false)
        } else if let Some((_, account, _)) = names::parse_topic_arn(&letter.target_arn) {
            (account.to_string(), true)
        } else {
            return Ok(false);
        };
    let body = letter.body.to_string();
    if is_topic {
        match topics.topic(&letter.target_arn).await {
            Ok(_) => {
                let input = PublishInput {
                    topic_arn: Some(letter.target_arn.clone()),
                    message: Some(body),
                    attributes: attributes_of(letter),
                    trace_header: letter.trace_header.clone(),
                    ..PublishInput::default()
                };
                return match topics.prepare(&input).await {
                    Ok((_, mut delivery)) => {
                        let (events, http) =
                            (!delivery.events.is_empty(), !delivery.http.is_empty());
                        delivery.consume_letter = Some(letter.id.clone());
                        queues.deliver(delivery).await?;
                        topics.after_commit(events, http);
                        Ok(true)
                    }
                    Err(e) if e.is_internal() => Err(QueueError::Stopped),
                    Err(e) => {
                        tracing::warn!(record = %letter.id, topic = %letter.target_arn, error = %e, "destination record refused by its topic; dropped");
                        drop_letter(queues, letter).await?;
                        Ok(true)
                    }
                };
            }
            Err(_) if mode == Mode::Deliver => {
                tracing::warn!(record = %letter.id, topic = %letter.target_arn, "destination topic does not exist; the record is not delivered");
                drop_letter(queues, letter).await?;
                return Ok(true);
            }
            Err(_) => {}
        }
    }
    let queue = match queues.queue(&account, &letter.queue).await {
        Ok(q) => q,
        Err(QueueError::QueueDoesNotExist) if mode == Mode::Migrate => {
            tracing::info!(queue = %letter.queue, "creating a queue for records of the former dead-letter store");
            queues
                .create_queue(&account, &letter.queue, BTreeMap::new(), BTreeMap::new())
                .await?
        }
        Err(QueueError::QueueDoesNotExist) => {
            tracing::warn!(record = %letter.id, queue = %letter.target_arn, "destination queue does not exist; the record is not delivered");
            drop_letter(queues, letter).await?;
            return Ok(true);
        }
        Err(e) => return Err(e),
    };
    let input = SendInput {
        body,
        attributes: attributes_of(letter),
        system_attributes: letter
            .trace_header
            .as_ref()
            .map(|t| {
                BTreeMap::from([(
                    "AWSTraceHeader".to_string(),
                    AttributeInput {
                        data_type: Some("String".into()),
                        string_value: Some(t.clone()),
                        ..AttributeInput::default()
                    },
                )])
            })
            .unwrap_or_default(),
        ..SendInput::default()
    };
    let message = match QueueService::build_message(&queue, &input, &account, now_ms()) {
        Ok((m, _)) => m,
        Err(e) => {
            tracing::warn!(record = %letter.id, queue = %letter.queue, error = %e, "destination record refused by its queue (Lambda delivers only to standard queues); dropped");
            drop_letter(queues, letter).await?;
            return Ok(true);
        }
    };
    queues
        .deliver(Delivery {
            messages: vec![(queue.id, message)],
            consume_letter: Some(letter.id.clone()),
            ..Delivery::default()
        })
        .await?;
    Ok(true)
}

async fn drop_letter(queues: &QueueService, letter: &DeadLetter) -> Result<(), QueueError> {
    let store = Arc::clone(queues.store());
    let id = letter.id.clone();
    match tokio::task::spawn_blocking(move || store.drop_letter(&id)).await {
        Ok(r) => r.map_err(QueueError::from),
        Err(_) => Err(QueueError::Stopped),
    }
}
