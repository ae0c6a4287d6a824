//! Membership and ownership on PostgreSQL (several nodes' views of one database).

use kindling_model::events::AsyncEvent;

use crate::Store;
use crate::nodes::{GrantRequest, NodeStore, UNRESERVED_SCOPE, function_scope};
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

fn ask(scope: &str, limit: u32, demand: u32, keep: u32) -> GrantRequest {
    GrantRequest {
        scope: scope.into(),
        limit,
        demand,
        keep,
    }
}

fn granted(s: &impl NodeStore, node: &str, inc: i64, req: GrantRequest) -> (u32, u32) {
    let g = s.sync_grants(node, inc, &[req]).unwrap().unwrap();
    (g[0].granted, g[0].target)
}

fn held(s: &impl NodeStore, scope: &str) -> Vec<(String, u32)> {
    s.concurrency_grants()
        .unwrap()
        .into_iter()
        .filter(|g| g.scope == scope)
        .map(|g| (g.node_id, g.granted))
        .collect()
}

#[test]
fn concurrency_grants_move_to_the_demand_and_never_exceed_the_limit() {
    let db = super::postgres();
    let s = db.store();
    for n in ["a", "b", "c"] {
        s.register_node(n, "x", 0).unwrap();
    }
    let u = UNRESERVED_SCOPE;
    // Idle: an equal part each, the remainder stays free.
    assert_eq!(granted(s, "a", 1, ask(u, 10, 0, 0)), (3, 3));
    assert_eq!(granted(s, "b", 1, ask(u, 10, 0, 0)), (3, 3));
    assert_eq!(granted(s, "c", 1, ask(u, 10, 0, 0)), (3, 3));
    // All demand on A: it takes the free slot at once, its share is the whole limit.
    assert_eq!(granted(s, "a", 1, ask(u, 10, 20, 3)), (4, 10));
    // B and C learn their share is now 0; they give back at their next round (their
    // grants never drop below what they keep: what they have in flight).
    assert_eq!(granted(s, "b", 1, ask(u, 10, 0, 3)), (3, 0));
    assert_eq!(granted(s, "b", 1, ask(u, 10, 0, 0)), (0, 0));
    // C still runs one: that is its share under contention (water-filling).
    assert_eq!(granted(s, "c", 1, ask(u, 10, 1, 1)), (1, 1));
    assert_eq!(granted(s, "a", 1, ask(u, 10, 20, 4)), (9, 9));
    assert_eq!(granted(s, "c", 1, ask(u, 10, 0, 0)), (0, 0));
    assert_eq!(granted(s, "a", 1, ask(u, 10, 20, 9)), (10, 10));
    // Asking to keep more than is stored keeps what is stored.
    assert_eq!(granted(s, "b", 1, ask(u, 10, 0, 7)), (0, 0));
    // A function's reserved concurrency is a scope of its own.
    let f = function_scope("f");
    assert_eq!(granted(s, "b", 1, ask(&f, 2, 1, 0)), (1, 1));
    assert_eq!(granted(s, "c", 1, ask(&f, 2, 5, 0)), (1, 1));
    assert_eq!(held(s, &f), [("b".into(), 1), ("c".into(), 1)]);
    // A request of nothing deletes the node's grant.
    assert_eq!(granted(s, "b", 1, ask(&f, 0, 0, 0)), (0, 0));
    assert_eq!(held(s, &f), [("c".to_string(), 1)]);

    // A dies: its grants are freed in the transaction that declares it dead.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(s.heartbeat("b", 1, 0).unwrap());
    assert!(s.heartbeat("c", 1, 0).unwrap());
    assert_eq!(s.reap_dead_nodes(200).unwrap(), vec!["a".to_string()]);
    assert_eq!(held(s, u), [("b".into(), 0), ("c".into(), 0)]);
    assert!(
        s.sync_grants("a", 1, &[ask(u, 10, 1, 0)])
            .unwrap()
            .is_none()
    );
    assert_eq!(granted(s, "b", 1, ask(u, 10, 30, 0)), (10, 10));
    // Leaving frees them at once; so does registering again.
    s.leave_node("b", 1).unwrap();
    assert_eq!(held(s, u), [("c".to_string(), 0)]);
    assert_eq!(granted(s, "c", 1, ask(u, 10, 30, 0)), (10, 10));
    assert_eq!(s.register_node("c", "x", 0).unwrap().incarnation, 2);
    assert!(held(s, u).is_empty());
}

#[test]
fn concurrent_grant_changes_never_exceed_the_limit() {
    let db = super::postgres();
    let s = db.store();
    let nodes = ["a", "b", "c"];
    for n in nodes {
        s.register_node(n, "x", 0).unwrap();
    }
    let limit = 7;
    let done = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for (i, node) in nodes.iter().enumerate() {
            let done = &done;
            scope.spawn(move || {
                let mut keep = 0;
                let mut target = 0;
                for round in 0..40u32 {
                    // A node whose demand changes every round, giving back down to its share.
                    let demand = (round * (i as u32 + 3)) % 11;
                    keep = keep.min(target.max(demand.min(keep)));
                    let g = s
                        .sync_grants(node, 1, &[ask(UNRESERVED_SCOPE, limit, demand, keep)])
                        .unwrap()
                        .unwrap();
                    assert!(g[0].granted >= keep, "the grant fell below what is kept");
                    (keep, target) = (g[0].granted, g[0].target);
                }
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            });
        }
        scope.spawn(|| {
            while done.load(std::sync::atomic::Ordering::Relaxed) < nodes.len() {
                let total: u32 = held(s, UNRESERVED_SCOPE).iter().map(|(_, g)| g).sum();
                assert!(total <= limit, "grants add up to {total} > {limit}");
            }
        });
    });
    let total: u32 = held(s, UNRESERVED_SCOPE).iter().map(|(_, g)| g).sum();
    assert!(total <= limit);
}

/// A stack whose operation's owner is no longer a live node is adopted by a live node (once,
/// with a new revision, so the former owner's next save is refused); a live owner's stack is
/// never taken, and a dead node adopts nothing.
#[test]
fn a_dead_nodes_stack_operations_are_adopted() {
    use crate::StoreError;
    use crate::stacks::{StackRow, StackStore};

    let db = super::postgres();
    let s = db.store();
    s.register_node("a", "127.0.0.1:1", 0).unwrap();
    s.register_node("b", "127.0.0.1:2", 0).unwrap();
    let row = |id: &str, owner: Option<&str>| StackRow {
        stack_id: id.into(),
        name: id.into(),
        status: "UPDATE_IN_PROGRESS".into(),
        updated_ms: 1,
        document: "{}".into(),
        revision: 0,
        owner: owner.map(str::to_string),
    };
    s.save_stack(&row("of-a", Some("a")), &[]).unwrap();
    s.save_stack(&row("of-b", Some("b")), &[]).unwrap();
    s.save_stack(&row("of-gone", Some("never-registered")), &[])
        .unwrap();
    s.save_stack(&row("idle", None), &[]).unwrap();

    // Everyone alive: only the stack of a node that never registered is an orphan.
    assert_eq!(s.adopt_orphaned_stacks("b").unwrap(), vec!["of-gone"]);
    assert!(s.adopt_orphaned_stacks("a").unwrap().is_empty());

    // A dies: B adopts its stack; A's write at the revision it knew is refused.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(s.heartbeat("b", 1, 0).unwrap());
    assert_eq!(s.reap_dead_nodes(200).unwrap(), vec!["a".to_string()]);
    assert!(
        s.adopt_orphaned_stacks("a").unwrap().is_empty(),
        "a dead node adopts nothing"
    );
    assert_eq!(s.adopt_orphaned_stacks("b").unwrap(), vec!["of-a"]);
    assert!(s.adopt_orphaned_stacks("b").unwrap().is_empty());
    let late = StackRow {
        revision: 1,
        status: "UPDATE_COMPLETE".into(),
        ..row("of-a", None)
    };
    assert!(matches!(
        s.save_stack(&late, &[]),
        Err(StoreError::RevisionMismatch)
    ));
    let stacks = s.stacks().unwrap();
    let owners: Vec<(&str, Option<&str>, i64)> = stacks
        .iter()
        .map(|r| (r.stack_id.as_str(), r.owner.as_deref(), r.revision))
        .collect();
    assert_eq!(
        owners,
        [
            ("of-a", Some("b"), 2),
            ("of-b", Some("b"), 1),
            ("of-gone", Some("b"), 2),
            ("idle", None, 1)
        ]
    );
}

/// A Kafka position is written only by the mapping's owner at its current epoch: once another
/// node took the mapping over, the deposed owner's late write (an older position) is refused.
#[test]
fn a_stream_position_is_written_only_under_its_current_epoch() {
    use crate::mappings::MappingStore;

    let db = super::postgres();
    let s = db.store();
    super::mappings::create_function(s, "f");
    s.create_mapping(&super::mappings::sample("m", "f"))
        .unwrap();
    s.register_node("a", "x", 0).unwrap();
    s.register_node("b", "y", 0).unwrap();
    let r = vec!["esm:m".to_string()];
    let epoch = s.claim_resources("a", 1, &r, 1).unwrap().unwrap()[0].1;
    assert!(
        s.set_source_position_owned("m", "t-0", 10, &r[0], "a", epoch)
            .unwrap()
    );
    assert!(
        !s.set_source_position_owned("m", "t-0", 99, &r[0], "b", epoch)
            .unwrap(),
        "a node that does not own the mapping writes nothing"
    );
    // B takes over after A left and moves on; A's late write under the old epoch is refused.
    s.leave_node("a", 1).unwrap();
    let b_epoch = s.claim_resources("b", 1, &r, 1).unwrap().unwrap()[0].1;
    assert!(b_epoch > epoch);
    assert!(
        s.set_source_position_owned("m", "t-0", 20, &r[0], "b", b_epoch)
            .unwrap()
    );
    assert!(
        !s.set_source_position_owned("m", "t-0", 11, &r[0], "a", epoch)
            .unwrap()
    );
    assert_eq!(s.source_positions("m").unwrap(), vec![("t-0".into(), 20)]);
}
