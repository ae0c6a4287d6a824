//! HTTP(S) deliveries of SNS: confirmations and notifications POSTed to subscribed endpoints,
//! retried with SNS's default policy (3 immediate retries, 2 after 1 s, then backing off up to
//! 20 s; 10 attempts in all), then sent to the subscription's dead-letter queue or dropped.
//! The pending POSTs are rows of the store, so a restart resumes them. `https` endpoints are
//! verified against the Mozilla roots, except on the loopback (development servers with
//! self-signed certificates), where the certificate is not checked.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
/// Of those, the slots only a subscription with nothing in flight may take (one each): however
/// many slow subscriptions hold the others, one that has a message and nothing under way gets
/// it sent.
const RESERVED: usize = 64;
/// Most POSTs in flight to one subscription, however well its endpoint answers.
const PER_SUBSCRIPTION: usize = 16;
/// POSTs in flight a subscription may start with (and goes back to once it has nothing in
/// flight and no failure against it): it earns more, one per POST answered with success, up
/// to [`PER_SUBSCRIPTION`]; a refusal or error halves it, a timeout takes it down to 1.
const INITIAL_WINDOW: usize = 4;
/// Most slots held at once by subscriptions whose endpoint recently failed or timed out.
const FAILING_SHARE: usize = MAX_IN_FLIGHT / 2;
/// How long a subscription with nothing in flight is remembered after its last outcome (a
/// failing one, whose window is kept until it succeeds): then it starts over like a new one,
/// so subscriptions deleted or no longer sent to do not stay in the windows (and in what every
/// fetch sends the store) for good.
const FORGET_AFTER: Duration = Duration::from_secs(300);
/// Most rows taken from the store at once.
const FETCH: usize = 32;
/// How often the store is looked at when nothing woke the loop.
const POLL: Duration = Duration::from_millis(500);

/// Sends due deliveries until the process ends. They flow continuously: due rows are taken
/// as slots free, never a row already in flight, at most [`MAX_IN_FLIGHT`] in all and at most
/// its window each (see [`INITIAL_WINDOW`]), the last [`RESERVED`] slots kept for
/// subscriptions with nothing in flight, so hanging endpoints delay only their own deliveries.
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
        let room = flight.room();
        let mut more_due = false;
        if room > 0 {
            let store = Arc::clone(topics.store());
            flight.forget_idle(Instant::now());
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
                    let (task, outcome) = match done {
                        Ok((task, outcome)) => (task, outcome),
                        Err(e) => {
                            // Its row stays in the store and is retried when due.
                            tracing::error!(error = %e, "an SNS HTTP delivery task failed");
                            (e.id(), Outcome::Failed)
                        }
                    };
                    if flight.finish(task, outcome) || more_due {
                        break;
                    }
                }
            }
        }
    }
}

/// How a POST ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Delivered,
    /// Refused (not 2xx), or the connection failed.
    Failed,
    /// No answer within the client's timeout.
    TimedOut,
}

/// The deliveries this node is making (row ids, by task), and per subscription how many and
/// how many it may have (its window).
#[derive(Default)]
struct InFlight {
    tasks: HashMap<tokio::task::Id, (String, String)>,
    ids: HashSet<String>,
    subscriptions: HashMap<String, Window>,
    /// POSTs in flight of subscriptions whose window is below [`INITIAL_WINDOW`].
    failing: usize,
}

/// One subscription's POSTs in flight and its window. Kept while either differs from a
/// subscription never seen (nothing in flight, [`INITIAL_WINDOW`]).
#[derive(Debug, Clone, Copy)]
struct Window {
    in_flight: usize,
    size: usize,
    /// When its last POST ended (or, before any did, its first started).
    last: Instant,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            in_flight: 0,
            size: INITIAL_WINDOW,
            last: Instant::now(),
        }
    }
}

impl Window {
    fn failing(&self) -> bool {
        self.size < INITIAL_WINDOW
    }
}

impl InFlight {
    fn total(&self) -> usize {
        self.tasks.len()
    }

    /// How many rows to take from the store now: up to the reserved slots while any other is
    /// free (what [`Self::busy`] allows then may all go to subscriptions already sending),
    /// then into them.
    fn room(&self) -> usize {
        let total = self.total();
        let limit = if total < MAX_IN_FLIGHT - RESERVED {
            MAX_IN_FLIGHT - RESERVED
        } else {
            MAX_IN_FLIGHT
        };
        limit.saturating_sub(total).min(FETCH)
    }

    /// Counts in the delivery `(row id, subscription)` that `task` makes.
    fn start(&mut self, task: tokio::task::Id, key: (String, String)) {
        self.ids.insert(key.0.clone());
        let w = self.subscriptions.entry(key.1.clone()).or_default();
        w.in_flight += 1;
        if w.failing() {
            self.failing += 1;
        }
        self.tasks.insert(task, key);
    }

    /// Counts a finished delivery out (its outcome is stored) and adjusts its subscription's
    /// window; whether that may have freed room the store was being asked to hold back.
    fn finish(&mut self, task: tokio::task::Id, outcome: Outcome) -> bool {
        let Some((id, subscription)) = self.tasks.remove(&task) else {
            return false;
        };
        self.ids.remove(&id);
        let total = self.total();
        let Some(w) = self.subscriptions.get_mut(&subscription) else {
            return false;
        };
        let was_held = w.in_flight >= w.size
            || total + 1 >= MAX_IN_FLIGHT - RESERVED
            || (w.failing() && self.failing >= FAILING_SHARE);
        let was_failing = w.failing();
        w.in_flight -= 1;
        w.last = Instant::now();
        w.size = match outcome {
            Outcome::Delivered => (w.size + 1).min(PER_SUBSCRIPTION),
            Outcome::Failed => (w.size / 2).max(1),
            Outcome::TimedOut => 1,
        };
        // The failing count follows each POST's subscription as it is now.
        match (was_failing, w.failing()) {
            (true, false) => self.failing -= w.in_flight + 1,
            (false, true) => self.failing += w.in_flight,
            (true, true) => self.failing -= 1,
            (false, false) => {}
        }
        if w.in_flight == 0 && !w.failing() {
            // Nothing to remember: it starts over like a new one.
            self.subscriptions.remove(&subscription);
        }
        was_held
    }

    /// Forgets the subscriptions with nothing in flight whose last POST ended
    /// [`FORGET_AFTER`] before `now` (they hold nothing of the failing share).
    fn forget_idle(&mut self, now: Instant) {
        self.subscriptions
            .retain(|_, w| w.in_flight > 0 || now.saturating_duration_since(w.last) < FORGET_AFTER);
    }

    /// What the store must not return: the rows in flight, and more rows of a subscription
    /// than its window has room for; none of one with something in flight once only the
    /// reserved slots are left, and one each of those with nothing in flight; of failing
    /// ones, no more in all than what their share has left.
    fn busy(&self) -> HttpBusy {
        let general = self.total() < MAX_IN_FLIGHT - RESERVED;
        let mut failing_room = FAILING_SHARE.saturating_sub(self.failing);
        HttpBusy {
            ids: self.ids.iter().cloned().collect(),
            per_subscription: if general { INITIAL_WINDOW } else { 1 },
            allowances: self
                .subscriptions
                .iter()
                .map(|(s, w)| {
                    let mut n = if w.in_flight == 0 {
                        if general { w.size } else { 1 }
                    } else if general {
                        w.size.saturating_sub(w.in_flight)
                    } else {
                        0
                    };
                    if w.failing() {
                        n = n.min(failing_room);
                        failing_room -= n;
                    }
                    (s.clone(), n)
                })
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

async fn deliver(topics: &TopicService, clients: &Clients, d: HttpDelivery) -> Outcome {
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
    let outcome = match req.send().await {
        Ok(res) if res.status().is_success() => Outcome::Delivered,
        Ok(res) => {
            tracing::info!(endpoint = %d.endpoint, status = %res.status(), "SNS HTTP delivery refused");
            Outcome::Failed
        }
        Err(e) => {
            tracing::info!(endpoint = %d.endpoint, error = %e, "SNS HTTP delivery failed");
            if e.is_timeout() {
                Outcome::TimedOut
            } else {
                Outcome::Failed
            }
        }
    };
    let ok = outcome == Outcome::Delivered;
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
    outcome
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Task ids for the bookkeeping (only a running runtime hands them out).
    fn ids(n: usize) -> Vec<tokio::task::Id> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            (0..n).map(|_| set.spawn(async {}).id()).collect()
        })
    }

    fn allowance(busy: &HttpBusy, sub: &str) -> usize {
        busy.allowances
            .iter()
            .find(|(s, _)| s == sub)
            .map_or(busy.per_subscription, |(_, n)| *n)
    }

    #[test]
    fn a_window_grows_with_successes_and_shrinks_with_failures() {
        let mut ids = ids(64).into_iter();
        let mut f = InFlight::default();
        assert_eq!(
            allowance(&f.busy(), "a"),
            INITIAL_WINDOW,
            "a new subscription"
        );
        let mut next = |f: &mut InFlight, n: usize| -> Vec<tokio::task::Id> {
            (0..n)
                .map(|i| {
                    let id = ids.next().unwrap();
                    f.start(id, (format!("row-{id}-{i}"), "a".to_string()));
                    id
                })
                .collect()
        };
        let first = next(&mut f, INITIAL_WINDOW);
        assert_eq!(allowance(&f.busy(), "a"), 0, "its window is full");
        for id in &first[..2] {
            f.finish(*id, Outcome::Delivered);
        }
        // Two in flight, window 6: four more.
        assert_eq!(allowance(&f.busy(), "a"), 4);
        f.finish(first[2], Outcome::Failed);
        // One in flight, window 3: failing now.
        assert_eq!(allowance(&f.busy(), "a"), 2);
        assert_eq!(f.failing, 1);
        f.finish(first[3], Outcome::TimedOut);
        assert_eq!(allowance(&f.busy(), "a"), 1, "a timeout leaves one");
        assert_eq!(f.failing, 0, "nothing of it in flight");
        // It earns its window back one success at a time, and is forgotten once it has.
        for _ in 0..INITIAL_WINDOW - 1 {
            let id = next(&mut f, 1)[0];
            assert_eq!(f.failing, 1);
            f.finish(id, Outcome::Delivered);
        }
        assert!(f.subscriptions.is_empty() && f.failing == 0);
        assert_eq!(allowance(&f.busy(), "a"), INITIAL_WINDOW);
    }

    #[test]
    fn hanging_subscriptions_leave_slots_to_one_with_nothing_in_flight() {
        let mut f = InFlight::default();
        let all = ids(MAX_IN_FLIGHT + 1);
        let mut ids = all.into_iter();
        // Hanging subscriptions fill their windows until only the reserved slots are left.
        let mut n = 0;
        while f.room() > 0 && f.total() < MAX_IN_FLIGHT - RESERVED {
            let sub = format!("hanging-{}", n / INITIAL_WINDOW);
            let busy = f.busy();
            assert!(allowance(&busy, &sub) > 0);
            f.start(ids.next().unwrap(), (format!("row-{n}"), sub));
            n += 1;
        }
        assert_eq!(f.total(), MAX_IN_FLIGHT - RESERVED);
        let busy = f.busy();
        assert_eq!(allowance(&busy, "hanging-0"), 0, "one sending gets no more");
        assert_eq!(
            allowance(&busy, "healthy"),
            1,
            "one with nothing in flight gets one"
        );
        assert_eq!(f.room(), FETCH.min(RESERVED));
        // Even with every reserved slot taken by others with nothing in flight, the others'
        // windows never reach past MAX_IN_FLIGHT.
        for i in 0..RESERVED {
            f.start(
                ids.next().unwrap(),
                (format!("idle-row-{i}"), format!("idle-{i}")),
            );
        }
        assert_eq!(f.room(), 0);
    }

    #[test]
    fn failing_subscriptions_hold_at_most_their_share() {
        let mut f = InFlight::default();
        let all = ids(FAILING_SHARE * 2 + 8);
        let mut ids = all.into_iter();
        // Subscriptions whose endpoint timed out once, each back at one POST in flight.
        for i in 0..FAILING_SHARE {
            let sub = format!("failing-{i}");
            let id = ids.next().unwrap();
            f.start(id, (format!("first-{i}"), sub.clone()));
            f.finish(id, Outcome::TimedOut);
            f.start(ids.next().unwrap(), (format!("again-{i}"), sub));
        }
        assert_eq!(f.failing, FAILING_SHARE);
        let busy = f.busy();
        assert_eq!(allowance(&busy, "failing-0"), 0);
        assert_eq!(allowance(&busy, "healthy"), INITIAL_WINDOW);
    }

    #[test]
    fn failing_allowances_together_stay_within_the_share() {
        let mut f = InFlight::default();
        let all = ids(FAILING_SHARE * 2 + 8);
        let mut ids = all.into_iter();
        // Many failing subscriptions with nothing in flight (each allowed one POST) and a
        // few failing ones sending: what the store may return of them all fits the share.
        for i in 0..FAILING_SHARE * 2 {
            let sub = format!("failing-{i}");
            let id = ids.next().unwrap();
            f.start(id, (format!("first-{i}"), sub.clone()));
            f.finish(id, Outcome::TimedOut);
            if i < 8 {
                f.start(ids.next().unwrap(), (format!("again-{i}"), sub));
            }
        }
        assert_eq!(f.failing, 8);
        let busy = f.busy();
        let failing: usize = busy
            .allowances
            .iter()
            .filter(|(s, _)| s.starts_with("failing-"))
            .map(|(_, n)| n)
            .sum();
        assert_eq!(failing, FAILING_SHARE - 8);
    }

    #[test]
    fn idle_subscriptions_are_forgotten_after_a_while() {
        let mut f = InFlight::default();
        let all = ids(4);
        let mut ids = all.into_iter();
        let gone = ids.next().unwrap();
        f.start(gone, ("row-1".into(), "deleted".into()));
        f.finish(gone, Outcome::Failed);
        let sending = ids.next().unwrap();
        f.start(sending, ("row-2".into(), "hanging".into()));
        let now = Instant::now();
        f.forget_idle(now);
        assert_eq!(f.subscriptions.len(), 2, "remembered for a while");
        f.forget_idle(now + FORGET_AFTER);
        assert!(
            f.subscriptions.contains_key("hanging") && !f.subscriptions.contains_key("deleted"),
            "one with something in flight is kept"
        );
        assert_eq!(
            allowance(&f.busy(), "deleted"),
            INITIAL_WINDOW,
            "starts over"
        );
    }
}
