//! Connections served at once are capped per Runtime API: each is a descriptor of the server's
//! process, which a function must not be able to exhaust.

mod support;

use support::*;

/// The cap (`server::MAX_CONNECTIONS`, not public).
const CAP: usize = 64;

/// A request on `conn` answered: the connection is served.
async fn served(conn: &mut Conn) -> bool {
    conn.try_write_raw(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        && conn.read_response().await.is_ok_and(|r| r.status == 200)
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_and_places_come_back() {
    let api = start(config()).await;
    let addr = api.local_addr();
    let mut held = Vec::new();
    for _ in 0..CAP {
        let mut c = Conn::connect(addr).await;
        assert!(soon(served(&mut c)).await, "a connection within the cap");
        held.push(c);
    }
    let mut extra = Conn::connect(addr).await;
    assert!(
        !soon(served(&mut extra)).await,
        "the connection past the cap is served"
    );
    // One closed: its place is taken by the next connection.
    drop(held.pop());
    // (The closed connection's task ends a moment after the close.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let mut again = Conn::connect(addr).await;
        if soon(served(&mut again)).await {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a place freed by a closed connection is not given again"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The held connections still work.
    for c in &mut held {
        assert!(soon(served(c)).await);
    }
}

/// Connections that can be served on `addr` now, up to `max`, held open.
async fn take_all(addr: std::net::SocketAddr, max: usize) -> Vec<Conn> {
    let mut held = Vec::new();
    for _ in 0..max {
        let mut c = Conn::connect(addr).await;
        if !soon(served(&mut c)).await {
            break;
        }
        held.push(c);
    }
    held
}

#[tokio::test]
async fn environments_share_one_budget_beyond_their_guaranteed_places() {
    use kindling_runtime_api::connections::{ConnectionBudget, GUARANTEED};
    let budget = std::sync::Arc::new(ConnectionBudget::new(5));
    let mut cfg = config();
    cfg.connections = std::sync::Arc::clone(&budget);
    let (a, b) = (start(cfg.clone()).await, start(cfg).await);
    let held_a = take_all(a.local_addr(), CAP).await;
    assert_eq!(
        held_a.len(),
        GUARANTEED + 5,
        "A: its own and the whole budget"
    );
    assert_eq!(budget.used(), 5);
    let held_b = take_all(b.local_addr(), CAP).await;
    assert_eq!(
        held_b.len(),
        GUARANTEED,
        "B: its own places are kept for it"
    );
    // A's connections closed: their places of the budget come back for B.
    drop(held_a);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while budget.used() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "places of closed connections are not given back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let more_b = take_all(b.local_addr(), CAP).await;
    assert_eq!(more_b.len(), 5);
    drop(held_b);
}
