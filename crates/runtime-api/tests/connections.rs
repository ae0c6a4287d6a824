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
