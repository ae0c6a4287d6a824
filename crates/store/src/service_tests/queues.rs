use std::collections::BTreeMap;

use kindling_model::messaging::{
    HttpDelivery, NewMessage, QueueRecord, SubscriptionRecord, TopicRecord,
};

use super::on_both;
use crate::messaging::{
    Delivery, HttpBusy, MoveMessage, QueueOp, QueueOpOutput, QueueStore, ReceiptRef, ReceiveOp,
    RedriveTarget, VisibilityRefusal,
};
use crate::{Entity, StoreError};

pub(super) fn queue(store: &impl QueueStore, name: &str, fifo: bool) -> i64 {
    let rec = QueueRecord {
        id: 0,
        account: "000000000000".into(),
        name: name.into(),
        fifo,
        attributes: BTreeMap::new(),
        tags: BTreeMap::new(),
        created_ms: 0,
        modified_ms: 0,
    };
    store.create_queue(&rec).unwrap().0.id
}

pub(super) fn msg(body: &str, group: Option<&str>, dedup: Option<&str>) -> NewMessage {
    NewMessage {
        message_id: format!("id-{body}"),
        body: body.into(),
        attributes: BTreeMap::new(),
        system_attributes: BTreeMap::new(),
        md5_body: String::new(),
        md5_attributes: None,
        md5_system_attributes: None,
        sender_id: "s".into(),
        sent_ms: 1_000,
        visible_ms: 1_000,
        group_id: group.map(str::to_string),
        dedup_id: dedup.map(str::to_string),
        dedup_key: dedup.map(|d| format!("q:{d}")),
        dedup_until_ms: 301_000,
        dead_letter_source_arn: None,
        receive_count: 0,
        first_receive_ms: None,
    }
}

pub(super) fn one(store: &impl QueueStore, op: QueueOp) -> Result<QueueOpOutput, StoreError> {
    store
        .apply_queue_ops(&[op], true)
        .unwrap()
        .into_iter()
        .next()
        .unwrap()
}

pub(super) fn receive(queue_id: i64, fifo: bool, now: i64, max: usize) -> QueueOp {
    QueueOp::Receive(ReceiveOp {
        queue_id,
        fifo,
        now_ms: now,
        max,
        visibility_ms: 30_000,
        retention_cutoff_ms: 0,
        receipt: format!("r{now}"),
        redrive: None,
    })
}

pub(super) fn bodies(out: QueueOpOutput) -> Vec<String> {
    match out {
        QueueOpOutput::Received(r) => r.messages.into_iter().map(|m| m.message.body).collect(),
        other => panic!("{other:?}"),
    }
}

fn fifo_claims_keep_group_order_and_block_groups_in_flight(store: &impl QueueStore) {
    let q = queue(store, "q.fifo", true);
    let messages = vec![
        msg("a1", Some("a"), Some("1")),
        msg("a2", Some("a"), Some("2")),
        msg("b1", Some("b"), Some("3")),
        msg("dup", Some("a"), Some("1")),
    ];
    let QueueOpOutput::Sent(sent) = one(
        store,
        QueueOp::Send {
            queue_id: q,
            messages,
        },
    )
    .unwrap() else {
        panic!()
    };
    assert!(sent[3].duplicate && sent[3].message_id == "id-a1");
    assert_eq!(
        bodies(one(store, receive(q, true, 2_000, 1)).unwrap()),
        ["a1"]
    );
    // a2 waits for a1; b1 is free.
    assert_eq!(
        bodies(one(store, receive(q, true, 2_001, 10)).unwrap()),
        ["b1"]
    );
    assert!(bodies(one(store, receive(q, true, 2_002, 10)).unwrap()).is_empty());
    // After the visibility timeout, the group goes on from a1 again.
    assert_eq!(
        bodies(one(store, receive(q, true, 40_000, 10)).unwrap()),
        ["a1", "a2", "b1"]
    );
}

fn failed_operations_roll_back_alone_and_receipts_are_checked(store: &impl QueueStore) {
    let q = queue(store, "q", false);
    let bad = QueueOp::Send {
        queue_id: 999,
        messages: vec![msg("x", None, None)],
    };
    let good = QueueOp::Send {
        queue_id: q,
        messages: vec![msg("y", None, None)],
    };
    let results = store.apply_queue_ops(&[bad, good], true).unwrap();
    assert!(
        matches!(
            results[0],
            Err(StoreError::Constraint(_) | StoreError::PgConstraint(_))
        ),
        "{:?}",
        results[0]
    );
    assert!(results[1].is_ok());
    let QueueOpOutput::Received(got) = one(store, receive(q, false, 2_000, 10)).unwrap() else {
        panic!()
    };
    let seq = got.messages[0].seq;
    let stale = ReceiptRef {
        seq,
        receipt: "old".into(),
    };
    let current = ReceiptRef {
        seq,
        receipt: "r2000".into(),
    };
    let change = |r: ReceiptRef, now| QueueOp::ChangeVisibility {
        queue_id: q,
        now_ms: now,
        entries: vec![(r, now)],
    };
    assert_eq!(
        one(store, change(stale.clone(), 2_001)).unwrap(),
        QueueOpOutput::Changed(vec![Err(VisibilityRefusal::Gone)])
    );
    assert_eq!(
        one(store, change(current.clone(), 2_001)).unwrap(),
        QueueOpOutput::Changed(vec![Ok(())])
    );
    assert_eq!(
        one(store, change(current.clone(), 2_002)).unwrap(),
        QueueOpOutput::Changed(vec![Err(VisibilityRefusal::NotInFlight)])
    );
    let delete = |r: ReceiptRef| QueueOp::Delete {
        queue_id: q,
        entries: vec![r],
    };
    assert_eq!(
        one(store, delete(stale)).unwrap(),
        QueueOpOutput::Deleted(vec![false])
    );
    assert_eq!(
        one(store, delete(current)).unwrap(),
        QueueOpOutput::Deleted(vec![true])
    );
    assert_eq!(store.queue_counts(q, 3_000).unwrap().visible, 0);
}

fn receives_past_the_limit_move_messages_to_the_dead_letter_queue(store: &impl QueueStore) {
    let q = queue(store, "src", false);
    let dlq = queue(store, "dlq", false);
    one(
        store,
        QueueOp::Send {
            queue_id: q,
            messages: vec![msg("m", None, None)],
        },
    )
    .unwrap();
    let redrive = |now: i64| {
        QueueOp::Receive(ReceiveOp {
            queue_id: q,
            fifo: false,
            now_ms: now,
            max: 1,
            visibility_ms: 0,
            retention_cutoff_ms: 0,
            receipt: format!("r{now}"),
            redrive: Some(RedriveTarget {
                queue_id: dlq,
                max_receive_count: 2,
                source_arn: "arn:src".into(),
            }),
        })
    };
    assert_eq!(bodies(one(store, redrive(2_000)).unwrap()), ["m"]);
    assert_eq!(bodies(one(store, redrive(2_001)).unwrap()), ["m"]);
    let QueueOpOutput::Received(r) = one(store, redrive(2_002)).unwrap() else {
        panic!()
    };
    assert!(r.messages.is_empty());
    assert_eq!(r.moved, 1);
    let moved = store.peek_messages(dlq, 10).unwrap();
    assert_eq!(moved[0].message.message_id, "id-m");
    assert_eq!(
        moved[0].message.dead_letter_source_arn.as_deref(),
        Some("arn:src")
    );
    assert_eq!(moved[0].message.receive_count, 0);
}

fn topic(arn: &str) -> TopicRecord {
    TopicRecord {
        arn: arn.into(),
        account: "000000000000".into(),
        name: arn.rsplit(':').next().unwrap_or_default().into(),
        attributes: BTreeMap::new(),
        tags: BTreeMap::new(),
        created_ms: 1,
    }
}

fn subscription(arn: &str, topic_arn: &str) -> SubscriptionRecord {
    SubscriptionRecord {
        arn: arn.into(),
        topic_arn: topic_arn.into(),
        protocol: "http".into(),
        endpoint: "http://127.0.0.1:1/".into(),
        owner: "000000000000".into(),
        attributes: BTreeMap::new(),
        confirmed: true,
        token: None,
        base_url: String::new(),
    }
}

fn http(id: &str, not_before_ms: i64) -> HttpDelivery {
    HttpDelivery {
        id: id.into(),
        subscription_arn: "arn:sub".into(),
        endpoint: "http://127.0.0.1:1/".into(),
        message_type: "Notification".into(),
        message_id: id.into(),
        topic_arn: "arn:aws:sns:us-east-1:000000000000:t".into(),
        body: "{}".into(),
        attempts: 0,
        not_before_ms,
        created_ms: 1,
    }
}

fn topics_subscriptions_and_http_deliveries(store: &impl QueueStore) {
    let t = "arn:aws:sns:us-east-1:000000000000:t";
    assert!(store.create_topic(&topic(t)).unwrap().1);
    let (again, created) = store.create_topic(&topic(t)).unwrap();
    assert!(!created && again.arn == t);
    assert!(matches!(
        store.put_subscription(&subscription("s0", "arn:nope")),
        Err(StoreError::NotFound(Entity::Topic))
    ));
    store.put_subscription(&subscription("s2", t)).unwrap();
    store.put_subscription(&subscription("s1", t)).unwrap();
    let mut replaced = subscription("s2", t);
    replaced.confirmed = false;
    store.put_subscription(&replaced).unwrap();
    // Creation order, a replaced subscription keeping its place.
    let subs = store.subscriptions(Some(t)).unwrap();
    assert_eq!(
        subs.iter().map(|s| s.arn.as_str()).collect::<Vec<_>>(),
        ["s2", "s1"]
    );
    assert!(!subs[0].confirmed);
    assert_eq!(store.subscriptions(None).unwrap().len(), 2);

    let q = queue(store, "dlq", false);
    let delivery = Delivery {
        messages: vec![(q, msg("fanned", None, None))],
        events: vec![],
        http: vec![http("h1", 5), http("h2", 50)],
        consume_letter: None,
    };
    one(store, QueueOp::Deliver(delivery)).unwrap();
    assert_eq!(store.peek_messages(q, 10).unwrap().len(), 1);
    let none = HttpBusy::default();
    let due = store.due_http_deliveries(10, 10, &none).unwrap();
    assert_eq!(
        due.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["h1"]
    );
    store
        .finish_http_delivery("h1", Some((1, 100)), None)
        .unwrap();
    assert!(
        store
            .due_http_deliveries(60, 10, &none)
            .unwrap()
            .iter()
            .all(|d| d.id == "h2")
    );
    let retried = store.due_http_deliveries(100, 10, &none).unwrap();
    let h1 = retried.iter().find(|d| d.id == "h1").unwrap();
    assert_eq!((h1.attempts, h1.not_before_ms), (1, 100));
    store
        .finish_http_delivery("h1", None, Some((q, msg("dead", None, None))))
        .unwrap();
    assert_eq!(store.peek_messages(q, 10).unwrap().len(), 2);
    let left = store.due_http_deliveries(1_000_000, 10, &none).unwrap();
    assert_eq!(
        left.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["h2"]
    );
    // What the caller has in hand (deliveries in flight, subscriptions at their limit) is
    // left out, and the rest is still found behind it.
    let mut other = http("h3", 5);
    other.subscription_arn = "s-other".into();
    let more = Delivery {
        messages: vec![],
        events: vec![],
        http: vec![http("h4", 5), http("h5", 6), other],
        consume_letter: None,
    };
    one(store, QueueOp::Deliver(more)).unwrap();
    // (A shared store reserves what it returns: each call looks later than the last.)
    let ids = |now_ms: i64, busy: &HttpBusy| {
        let mut due = store
            .due_http_deliveries(now_ms, 10, busy)
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect::<Vec<_>>();
        due.sort();
        due
    };
    let in_flight = HttpBusy {
        ids: vec!["h2".into(), "h4".into()],
        ..HttpBusy::default()
    };
    assert_eq!(ids(2_000_000, &in_flight), ["h3", "h5"]);
    let saturated = HttpBusy {
        allowances: vec![(http("x", 0).subscription_arn, 0)],
        ..HttpBusy::default()
    };
    assert_eq!(ids(3_000_000, &saturated), ["h3"]);

    assert!(store.delete_topic(t).unwrap());
    assert!(store.subscriptions(None).unwrap().is_empty());
    assert!(!store.delete_topic(t).unwrap());
    assert!(store.delete_queue(q).unwrap());
    assert!(store.queue("000000000000", "dlq").unwrap().is_none());
}

fn queues_are_created_once_and_purged_expired_and_moved(store: &impl QueueStore) {
    let a = queue(store, "a", false);
    assert_eq!(
        queue(store, "a", false),
        a,
        "the existing queue is returned"
    );
    let b = queue(store, "b", false);
    let names: Vec<String> = store
        .queues()
        .unwrap()
        .into_iter()
        .map(|q| q.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
    let mut old = msg("old", None, None);
    old.sent_ms = 10;
    let sent = one(
        store,
        QueueOp::Send {
            queue_id: a,
            messages: vec![old, msg("m1", None, None), msg("m2", None, None)],
        },
    )
    .unwrap();
    let QueueOpOutput::Sent(sent) = sent else {
        panic!("{sent:?}")
    };
    assert!(sent[0].seq < sent[1].seq && sent[1].seq < sent[2].seq);
    let counts = store.queue_counts(a, 2_000).unwrap();
    assert_eq!((counts.visible, counts.oldest_sent_ms), (3, Some(10)));
    assert_eq!(store.expire_messages(a, 500, 2_000).unwrap(), 1);
    let moved = store
        .move_messages(
            a,
            &[MoveMessage {
                seq: sent[1].seq,
                to_queue_id: b,
                message: msg("m1", None, None),
            }],
        )
        .unwrap();
    assert_eq!(moved, 1);
    assert_eq!(store.peek_messages(b, 10).unwrap()[0].message.body, "m1");
    store.put_move_task("h", "arn:a", 5, "{\"n\":1}").unwrap();
    store.put_move_task("h2", "arn:b", 6, "{\"n\":2}").unwrap();
    assert_eq!(store.move_tasks(Some("arn:a")).unwrap(), ["{\"n\":1}"]);
    assert_eq!(store.move_tasks(None).unwrap().len(), 2);
    assert_eq!(store.purge_queue(a).unwrap(), 1);
    assert_eq!(store.queue_counts(a, 2_000).unwrap().visible, 0);
}

/// A fetch of due HTTP deliveries never returns more rows of a subscription than the caller
/// allows (its oldest ones), and the rows held back stay due (a shared store reserves only
/// what it returns).
fn http_fetches_keep_to_each_subscriptions_allowance(store: &impl QueueStore) {
    let row = |sub: &str, i: i64, offset: i64| {
        let mut d = http(&format!("{sub}{i:02}"), 10 + i * 3 + offset);
        d.subscription_arn = sub.into();
        d
    };
    let mut rows: Vec<HttpDelivery> = (0..40).map(|i| row("a", i, 0)).collect();
    rows.extend((0..40).map(|i| row("b", i, 1)));
    rows.extend((0..5).map(|i| row("c", i, 2)));
    let all: std::collections::BTreeSet<String> = rows.iter().map(|d| d.id.clone()).collect();
    one(
        store,
        QueueOp::Deliver(Delivery {
            messages: vec![],
            events: vec![],
            http: rows,
            consume_letter: None,
        }),
    )
    .unwrap();
    let per_sub = |due: &[HttpDelivery], sub: &str| {
        let mut ids: Vec<String> = due
            .iter()
            .filter(|d| d.subscription_arn == sub)
            .map(|d| d.id.clone())
            .collect();
        ids.sort();
        ids
    };
    let mut seen = std::collections::BTreeSet::new();
    // "a" has 13 in flight (3 more allowed), "b" 16 (none), "c" none (the default 16).
    let busy = HttpBusy {
        ids: vec![],
        per_subscription: 16,
        allowances: vec![("a".into(), 3), ("b".into(), 0)],
    };
    let due = store.due_http_deliveries(1_000, 100, &busy).unwrap();
    assert_eq!(
        per_sub(&due, "a"),
        ["a00", "a01", "a02"],
        "the oldest 3 of a"
    );
    assert!(per_sub(&due, "b").is_empty());
    assert_eq!(per_sub(&due, "c").len(), 5);
    assert_eq!(due.len(), 8);
    assert!(
        due.windows(2)
            .all(|w| w[0].not_before_ms <= w[1].not_before_ms)
    );
    seen.extend(due.into_iter().map(|d| d.id));
    // Nothing in flight: at most 16 of each, and within the fetch's limit.
    let busy = HttpBusy {
        per_subscription: 16,
        ..HttpBusy::default()
    };
    let due = store.due_http_deliveries(1_000, 100, &busy).unwrap();
    assert_eq!(per_sub(&due, "a").len(), 16);
    assert_eq!(per_sub(&due, "b").len(), 16);
    assert!(per_sub(&due, "c").len() <= 5);
    seen.extend(due.into_iter().map(|d| d.id));
    let busy = HttpBusy {
        per_subscription: 4,
        ..HttpBusy::default()
    };
    let due = store.due_http_deliveries(1_000, 6, &busy).unwrap();
    assert_eq!(due.len(), 6);
    for sub in ["a", "b", "c"] {
        assert!(per_sub(&due, sub).len() <= 4, "{sub}: {due:?}");
    }
    seen.extend(due.into_iter().map(|d| d.id));
    // Every row not returned yet is still due: none was reserved and then held back.
    let due = store
        .due_http_deliveries(1_000, 1_000, &HttpBusy::default())
        .unwrap();
    seen.extend(due.into_iter().map(|d| d.id));
    assert_eq!(seen, all);
}

on_both!(
    fifo_claims_keep_group_order_and_block_groups_in_flight,
    failed_operations_roll_back_alone_and_receipts_are_checked,
    receives_past_the_limit_move_messages_to_the_dead_letter_queue,
    topics_subscriptions_and_http_deliveries,
    http_fetches_keep_to_each_subscriptions_allowance,
    queues_are_created_once_and_purged_expired_and_moved,
);

/// Several nodes receiving from one queue at once never get the same message, and none is
/// left behind (`FOR UPDATE SKIP LOCKED`).
#[test]
fn concurrent_receivers_share_a_queue_without_duplicates() {
    let db = super::postgres();
    let s = db.store();
    let q = queue(s, "busy", false);
    let messages: Vec<NewMessage> = (0..200)
        .map(|i| msg(&format!("m{i}"), None, None))
        .collect();
    one(
        s,
        QueueOp::Send {
            queue_id: q,
            messages,
        },
    )
    .unwrap();
    let got: Vec<Vec<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|w| {
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    for round in 0..100 {
                        let op = QueueOp::Receive(ReceiveOp {
                            queue_id: q,
                            fifo: false,
                            now_ms: 2_000,
                            max: 3,
                            visibility_ms: 60_000,
                            retention_cutoff_ms: 0,
                            receipt: format!("w{w}r{round}"),
                            redrive: None,
                        });
                        let got = bodies(one(s, op).unwrap());
                        if got.is_empty() {
                            break;
                        }
                        mine.extend(got);
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<String> = got.concat();
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(total, 200, "every message received once: {total}");
    assert_eq!(all.len(), 200);
}

/// Two sends of one FIFO deduplication id at once store one message.
#[test]
fn concurrent_duplicate_sends_store_one_message() {
    let db = super::postgres();
    let s = db.store();
    let q = queue(s, "d.fifo", true);
    let outcomes: Vec<bool> = std::thread::scope(|scope| {
        let hs: Vec<_> = (0..6)
            .map(|i| {
                scope.spawn(move || {
                    let mut m = msg(&format!("d{i}"), Some("g"), Some("same"));
                    m.message_id = format!("id-{i}");
                    match one(
                        s,
                        QueueOp::Send {
                            queue_id: q,
                            messages: vec![m],
                        },
                    )
                    .unwrap()
                    {
                        QueueOpOutput::Sent(o) => o[0].duplicate,
                        other => panic!("{other:?}"),
                    }
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(outcomes.iter().filter(|d| !**d).count(), 1, "{outcomes:?}");
    assert_eq!(s.peek_messages(q, 10).unwrap().len(), 1);
}
