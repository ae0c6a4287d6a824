//! HTTP(S) deliveries of SNS: confirmations and notifications POSTed to subscribed endpoints,
//! retried with SNS's default policy (3 immediate retries, 2 after 1 s, then backing off up to
//! 20 s; 10 attempts in all), then sent to the subscription's dead-letter queue or dropped.
//! The pending POSTs are rows of the store, so a restart resumes them. `https` endpoints are
//! verified against the Mozilla roots, except on the loopback (development servers with
//! self-signed certificates), where the certificate is not checked.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kindling_model::messaging::HttpDelivery;
use kindling_store::messaging::HttpBusy;
use serde_json::Value;

use crate::message::SendInput;
use crate::queues::{QueueService, now_ms};
use crate::topics::TopicService;

/// Delay in seconds before attempt `n + 1` after `n` failures.
const RETRY_DELAYS: [u64; 9] = [0, 0, 0, 1, 1, 2, 4, 8, 16];

/// Most POSTs in flight at once.
const MAX_IN_FLIGHT: usize = 256;
/// Most POSTs in flight to one subscription (the store returns no more of its rows than it
/// has room for): a hanging endpoint holds at most this many slots, the others keep flowing.
const PER_SUBSCRIPTION: usize = 16;
/// Most rows taken from the store at once.
const FETCH: usize = 32;
/// How often the store is looked at when nothing woke the loop.
const POLL: Duration = Duration::from_millis(500);

/// Sends due deliveries until the process ends. They flow continuously: due rows are taken
/// as slots free (at most [`MAX_IN_FLIGHT`], [`PER_SUBSCRIPTION`] each), never a row already in
/// flight, so a hanging endpoint delays only its own deliveries.
pub async fn run(topics: TopicService) {
    let build = |loopback: bool| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .danger_accept_invalid_certs(loopback)
            .build()
    };
    let clients = match (build(false), build(true)) {
        (Ok(verified), Ok(loopback)) => Arc::new(Clients { verified, loopback }),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "SNS HTTP deliveries disabled: no HTTP client");
            return;
        }
    };
    let wake = Arc::clone(topics.http_wake());
    let mut flight = InFlight::default();
    let mut running = tokio::task::JoinSet::new();
    loop {
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let room = MAX_IN_FLIGHT.saturating_sub(running.len()).min(FETCH);
        let mut more_due = false;
        if room > 0 {
            let store = Arc::clone(topics.store());
            let busy = flight.busy();
            let due = tokio::task::spawn_blocking(move || {
                store.due_http_deliveries(now_ms(), room, &busy)
            })
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
            more_due = due.len() == room;
            for d in due {
                if flight.ids.contains(&d.id) {
                    continue;
                }
                let key = (d.id.clone(), d.subscription_arn.clone());
                let (topics, clients) = (topics.clone(), Arc::clone(&clients));
                let task = running.spawn(async move { deliver(&topics, &clients, d).await });
                flight.start(task.id(), key);
            }
        }
        if more_due && running.len() < MAX_IN_FLIGHT {
            continue;
        }
        // Waits for a wake-up, the poll interval, or a finished POST that frees what was
        // holding rows back (a full set of slots, or a subscription at its limit).
        let poll = tokio::time::sleep(POLL);
        tokio::pin!(poll);
        loop {
            tokio::select! {
                () = &mut notified => break,
                () = &mut poll => break,
                Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                    let task = match done {
                        Ok((task, ())) => task,
                        Err(e) => {
                            // Its row stays in the store and is retried when due.
                            tracing::error!(error = %e, "an SNS HTTP delivery task failed");
                            e.id()
                        }
                    };
                    if flight.finish(task) || more_due {
                        break;
                    }
                }
            }
        }
    }
}

/// The deliveries this node is making (row ids, by task) and how many per subscription.
#[derive(Default)]
struct InFlight {
    tasks: HashMap<tokio::task::Id, (String, String)>,
    ids: HashSet<String>,
    per_subscription: HashMap<String, usize>,
}

impl InFlight {
    /// Counts in the delivery `(row id, subscription)` that `task` makes.
    fn start(&mut self, task: tokio::task::Id, key: (String, String)) {
        self.ids.insert(key.0.clone());
        *self.per_subscription.entry(key.1.clone()).or_default() += 1;
        self.tasks.insert(task, key);
    }

    /// Counts a finished delivery out (its outcome is stored); whether that freed room the
    /// store was being asked to hold back (all slots taken, or its subscription at its limit).
    fn finish(&mut self, task: tokio::task::Id) -> bool {
        let Some((id, subscription)) = self.tasks.remove(&task) else {
            return false;
        };
        self.ids.remove(&id);
        let Some(n) = self.per_subscription.get_mut(&subscription) else {
            return false;
        };
        let was_held = *n >= PER_SUBSCRIPTION || self.tasks.len() + 1 >= MAX_IN_FLIGHT;
        *n -= 1;
        if *n == 0 {
            self.per_subscription.remove(&subscription);
        }
        was_held
    }

    /// What the store must not return: the rows in flight, and more rows of a subscription
    /// than it has room for (none of one at its limit).
    fn busy(&self) -> HttpBusy {
        HttpBusy {
            ids: self.ids.iter().cloned().collect(),
            per_subscription: PER_SUBSCRIPTION,
            allowances: self
                .per_subscription
                .iter()
                .map(|(s, n)| (s.clone(), PER_SUBSCRIPTION.saturating_sub(*n)))
                .collect(),
        }
    }
}

/// A verifying client, and one for loopback endpoints that accepts any certificate.
struct Clients {
    verified: reqwest::Client,
    loopback: reqwest::Client,
}

impl Clients {
    fn for_endpoint(&self, endpoint: &str) -> &reqwest::Client {
        let loopback = reqwest::Url::parse(endpoint).ok().is_some_and(|u| {
            let host = u.host_str().unwrap_or_default();
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            match bare.parse::<std::net::IpAddr>() {
                Ok(ip) => ip.is_loopback(),
                Err(_) => host == "localhost" || host.ends_with(".localhost"),
            }
        });
        if loopback {
            &self.loopback
        } else {
            &self.verified
        }
    }
}

async fn deliver(topics: &TopicService, clients: &Clients, d: HttpDelivery) {
    let client = clients.for_endpoint(&d.endpoint);
    let raw = d.message_type == "Notification" && !d.body.starts_with("{\"Type\"");
    let mut req = client
        .post(&d.endpoint)
        .header("content-type", "text/plain; charset=UTF-8")
        .header("x-amz-sns-message-type", &d.message_type)
        .header("x-amz-sns-message-id", &d.message_id)
        .header("x-amz-sns-topic-arn", &d.topic_arn)
        .header("user-agent", "Amazon Simple Notification Service Agent")
        .body(d.body.clone());
    if d.message_type == "Notification" {
        req = req.header("x-amz-sns-subscription-arn", &d.subscription_arn);
    }
    if raw {
        req = req.header("x-amz-sns-rawdelivery", "true");
    }
    let ok = match req.send().await {
        Ok(res) if res.status().is_success() => true,
        Ok(res) => {
            tracing::info!(endpoint = %d.endpoint, status = %res.status(), "SNS HTTP delivery refused");
            false
        }
        Err(e) => {
            tracing::info!(endpoint = %d.endpoint, error = %e, "SNS HTTP delivery failed");
            false
        }
    };
    let attempts = d.attempts + 1;
    let (retry, dead_letter) = if ok {
        (None, None)
    } else if let Some(delay) = RETRY_DELAYS.get(attempts as usize - 1) {
        (Some((attempts, now_ms() + (*delay as i64) * 1000)), None)
    } else {
        tracing::warn!(endpoint = %d.endpoint, subscription = %d.subscription_arn, "SNS HTTP delivery gave up after {attempts} attempts");
        (None, dead_letter_for(topics, &d).await)
    };
    let store = Arc::clone(topics.store());
    let id = d.id.clone();
    let dlq_queue = dead_letter.as_ref().map(|(q, _)| *q);
    let result =
        tokio::task::spawn_blocking(move || store.finish_http_delivery(&id, retry, dead_letter))
            .await;
    if !matches!(result, Ok(Ok(()))) {
        tracing::error!(delivery = %d.id, "could not record an SNS HTTP delivery's outcome");
    }
    if dlq_queue.is_some() {
        topics.queues().wake(dlq_queue);
    }
}

/// The message for the subscription's dead-letter queue, if it has one that exists.
async fn dead_letter_for(
    topics: &TopicService,
    d: &HttpDelivery,
) -> Option<(i64, kindling_model::messaging::NewMessage)> {
    let sub = topics.subscription(&d.subscription_arn).await.ok()?;
    let policy: Value = serde_json::from_str(sub.attributes.get("RedrivePolicy")?).ok()?;
    let arn = policy.get("deadLetterTargetArn")?.as_str()?;
    let q = topics.queues().queue_by_arn(arn).await.ok()?;
    let mut attributes = BTreeMap::new();
    attributes.insert(
        "ErrorCode".to_string(),
        crate::message::AttributeInput {
            data_type: Some("String".into()),
            string_value: Some("EndpointUnavailable".into()),
            ..Default::default()
        },
    );
    let input = SendInput {
        body: d.body.clone(),
        attributes,
        group_id: q.fifo.then(|| "sns-dead-letters".to_string()),
        dedup_id: q.fifo.then(|| d.id.clone()),
        ..SendInput::default()
    };
    match QueueService::build_message(&q, &input, &sub.owner, now_ms()) {
        Ok((m, _)) => Some((q.id, m)),
        Err(e) => {
            tracing::warn!(error = %e, "SNS dead-letter message refused by its queue");
            None
        }
    }
}
