//! The listener: accepts connections (TCP_NODELAY on each), checks who is connecting when
//! the config asks for it, and serves HTTP/1.1 with keep-alive on each in its own task. The
//! tasks live in a `JoinSet` owned by the accept task, so aborting that one task closes every
//! connection. Admitted connections are served within the environment's places
//! ([`crate::connections`]: a few of its own, more from the budget all environments share, at
//! most [`MAX_CONNECTIONS`]): each is a descriptor of Kindling's own process, so a function
//! holding thousands would exhaust Kindling's (its own processes' limits do not bound the
//! sum); a connection without a place is closed at once, unanswered.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::connections::{GUARANTEED, MAX_CONNECTIONS, Places};
use crate::routes;
use crate::state::Shared;

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    // Counted after admission, so connections another user is refused (a function probing
    // another environment's port) never take this environment's places.
    let places = Places::new(Arc::clone(&shared.config.connections));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::trace!(%peer, "runtime api connection");
                    let shared = Arc::clone(&shared);
                    let places = Arc::clone(&places);
                    connections.spawn(async move {
                        if !admitted(&stream, peer, shared.config.allowed_peer_uid) {
                            return;
                        }
                        let Some(_place) = places.take() else {
                            // Dropping the stream closes it. Debug level: the function can try
                            // again and again.
                            tracing::debug!(%peer, "runtime api connection refused: its places are taken ({MAX_CONNECTIONS} at most, beyond {GUARANTEED} from the shared budget)");
                            return;
                        };
                        serve_connection(stream, shared).await;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "runtime api accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// True when the connection may be served: no check is configured, or the peer's socket is
/// owned by `allowed_uid`. Runs once per connection (runtimes keep theirs alive), on the
/// connection's own task; the lookup (a netlink query answered synchronously, or a procfs
/// read) never waits for I/O.
fn admitted(stream: &TcpStream, peer: SocketAddr, allowed_uid: Option<u32>) -> bool {
    let Some(allowed) = allowed_uid else {
        return true;
    };
    let owner = stream
        .local_addr()
        .and_then(|local| kindling_peer::socket_owner(peer, local));
    match owner {
        Ok(Some(uid)) if uid == allowed => true,
        Ok(owner) => {
            // Debug level: whoever is refused can connect again and again.
            tracing::debug!(%peer, ?owner, allowed, "runtime api connection refused: not the environment's user");
            false
        }
        Err(e) => {
            tracing::debug!(%peer, error = %e, "runtime api connection refused: cannot tell its owner");
            false
        }
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::warn!(error = %e, "cannot set TCP_NODELAY on a runtime api connection");
    }
    let service = service_fn(move |req| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(routes::handle(&shared, req).await) }
    });
    let result = http1::Builder::new()
        // Header names as Lambda writes them (`Lambda-Runtime-Aws-Request-Id`), for clients
        // that match them case-sensitively (e.g. `grep` in shell extensions).
        .title_case_headers(true)
        .keep_alive(true)
        // No timeouts: a frozen or idle runtime keeps its connection, and `/next` waits forever.
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "runtime api connection ended with an error");
    }
}
