//! Membership and ownership on PostgreSQL (several nodes' views of one database).

use kindling_model::events::AsyncEvent;

use crate::Store;
use crate::nodes::NodeStore;
use crate::stacks::ScheduleStore;

fn event(id: &str) -> AsyncEvent {
    AsyncEvent {
        id: id.into(),
        function_name: "f".into(),
        qualifier: None,
        payload: b"{}".to_vec(),
        enqueued_ms: 1,
        attempts: 0,
        not_before_ms: 1,
        last_result: None,
        trace_header: None,
    }
}

#[test]
fn a_dead_node_is_reaped_and_what_it_held_is_freed() {
    let db = super::postgres();
    let s = db.store();
    let a = s.register_node("a", "127.0.0.1:1", 0).unwrap();
    let b = s.register_node("b", "127.0.0.1:2", 0).unwrap();
    assert_eq!((a.incarnation, b.incarnation), (1, 1));
    assert!(s.heartbeat("a", 1, 7).unwrap());
    assert!(
        !s.heartbeat("a", 2, 0).unwrap(),
        "a stale incarnation is not alive"
    );

    // A takes both resources (it is alone in its share), B none: nothing is taken from a
    // live owner.
    let res = vec!["esm:m1".to_string(), "esm:m2".to_string()];
    let owned_a = s.claim_resources("a", 1, &res, 2).unwrap().unwrap();
    assert_eq!(owned_a, vec![("esm:m1".into(), 1), ("esm:m2".into(), 1)]);
    assert_eq!(s.claim_resources("b", 1, &res, 1).unwrap().unwrap(), vec![]);
    s.enqueue_events(&[event("e1"), event("e2")]).unwrap();
    assert_eq!(s.lease_events("a", 10, 1_000_000, 10).unwrap().len(), 2);

    // A's heartbeats stop: B declares it dead; its events and resources are free.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(s.heartbeat("b", 1, 0).unwrap());
    assert_eq!(s.reap_dead_nodes(200).unwrap(), vec!["a".to_string()]);
    assert!(s.reap_dead_nodes(200).unwrap().is_empty());
    let nodes = s.nodes().unwrap();
    assert_eq!(
        nodes
            .iter()
            .map(|n| (n.node_id.as_str(), n.alive))
            .collect::<Vec<_>>(),
        [("b", true), ("a", false)]
    );
    assert_eq!(nodes[1].load, 7);
    assert_eq!(s.lease_events("b", 20, 1_000_000, 10).unwrap().len(), 2);
    let owned_b = s.claim_resources("b", 1, &res, 2).unwrap().unwrap();
    assert_eq!(owned_b, vec![("esm:m1".into(), 2), ("esm:m2".into(), 2)]);
    let nodes = s.nodes().unwrap();
    assert_eq!((nodes[0].owned, nodes[0].leased_events), (2, 2));

    // A dead node may not claim nor heartbeat; registering again gives a new incarnation.
    assert!(s.claim_resources("a", 1, &res, 2).unwrap().is_none());
    assert!(!s.heartbeat("a", 1, 0).unwrap());
    assert_eq!(
        s.register_node("a", "127.0.0.1:1", 0).unwrap().incarnation,
        2
    );
    assert_eq!(s.claim_resources("a", 2, &res, 2).unwrap().unwrap(), vec![]);

    // A clean leave frees at once.
    s.leave_node("b", 1).unwrap();
    let owned = s.claim_resources("a", 2, &res, 2).unwrap().unwrap();
    assert_eq!(owned, vec![("esm:m1".into(), 3), ("esm:m2".into(), 3)]);
    let leases = s.resource_leases().unwrap();
    assert!(
        leases
            .iter()
            .all(|l| l.owner.as_deref() == Some("a") && l.epoch == 3)
    );
}

#[test]
fn a_schedule_is_written_only_under_its_current_epoch() {
    let db = super::postgres();
    let s = db.store();
    s.put_schedule("arn:r", "{\"v\":0}").unwrap();
    s.register_node("a", "x", 0).unwrap();
    s.register_node("b", "y", 0).unwrap();
    let r = vec!["schedule:arn:r".to_string()];
    let epoch = s.claim_resources("a", 1, &r, 1).unwrap().unwrap()[0].1;
    assert!(
        s.put_schedule_owned("arn:r", "{\"v\":1}", &r[0], "a", epoch)
            .unwrap()
    );
    assert!(
        !s.put_schedule_owned("arn:r", "{\"v\":9}", &r[0], "b", epoch)
            .unwrap()
    );
    // B takes over after A left; A's late write under the old epoch is refused.
    s.leave_node("a", 1).unwrap();
    let b_epoch = s.claim_resources("b", 1, &r, 1).unwrap().unwrap()[0].1;
    assert!(b_epoch > epoch);
    assert!(
        !s.put_schedule_owned("arn:r", "{\"v\":2}", &r[0], "a", epoch)
            .unwrap()
    );
    assert!(
        s.put_schedule_owned("arn:r", "{\"v\":3}", &r[0], "b", b_epoch)
            .unwrap()
    );
    s.release_resources("b", &[(r[0].clone(), b_epoch)])
        .unwrap();
    assert_eq!(s.resource_leases().unwrap()[0].owner, None);
    assert_eq!(s.schedules().unwrap(), vec!["{\"v\":3}"]);
}
