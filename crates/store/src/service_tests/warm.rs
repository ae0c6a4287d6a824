//! Advertised warm invoke targets on PostgreSQL: only a live node's current incarnation
//! counts, and the route token is made once.

use crate::nodes::NodeStore;

fn targets(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

#[test]
fn only_live_current_incarnations_advertise_warm_targets() {
    let db = super::postgres();
    let s = db.store();
    s.register_node("a", "127.0.0.1:1", 0).unwrap();
    s.register_node("b", "127.0.0.1:2", 0).unwrap();
    assert!(
        s.advertise_warm("a", 1, &targets(&["f:$LATEST:r1", "g:1:r2"]))
            .unwrap()
    );
    assert!(s.advertise_warm("b", 1, &targets(&[])).unwrap());
    assert!(
        !s.advertise_warm("b", 7, &targets(&["x:1:r"])).unwrap(),
        "a stale incarnation writes nothing"
    );
    let warm = s.warm_nodes().unwrap();
    assert_eq!(warm.len(), 1, "b advertises nothing: {warm:?}");
    assert_eq!(
        (warm[0].node_id.as_str(), warm[0].address.as_str()),
        ("a", "127.0.0.1:1")
    );
    assert_eq!(warm[0].targets, targets(&["f:$LATEST:r1", "g:1:r2"]));

    // Rewritten whole.
    assert!(s.advertise_warm("a", 1, &targets(&["g:1:r2"])).unwrap());
    assert_eq!(s.warm_nodes().unwrap()[0].targets, targets(&["g:1:r2"]));

    // A restarted node (a new incarnation) advertises nothing until it writes again.
    s.register_node("a", "127.0.0.1:1", 0).unwrap();
    assert!(s.warm_nodes().unwrap().is_empty());
    assert!(
        s.advertise_warm("a", 2, &targets(&["f:$LATEST:r3"]))
            .unwrap()
    );
    assert_eq!(s.warm_nodes().unwrap().len(), 1);

    // A node that left (or was declared dead) advertises nothing.
    s.leave_node("a", 2).unwrap();
    assert!(s.warm_nodes().unwrap().is_empty());
    assert!(
        !s.advertise_warm("a", 2, &targets(&["f:$LATEST:r3"]))
            .unwrap()
    );

    // Every node reads the same route token.
    let token = s.route_token().unwrap();
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(db.store().route_token().unwrap(), token);
}
