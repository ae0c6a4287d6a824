//! The listener: accepts connections (TCP_NODELAY on each), checks who is connecting when
//! the config asks for it, and serves HTTP/1.1 with keep-alive on each in its own task. The
//! tasks live in a `JoinSet` owned by the accept task, so aborting that one task closes every
//! connection. At most [`MAX_CONNECTIONS`] admitted connections are served at once: each is a
//! descriptor of Kindling's own process, so a function holding thousands would exhaust
//! Kindling's (its own processes' limits do not bound the sum); one past the cap is closed at
//! once.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::routes;
use crate::state::Shared;

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Admitted connections served at once. A runtime keeps one (its `/next` and answers), each
/// extension one or two (at most 10 extensions): far below, and far below Kindling's own
/// descriptor budget per environment.
pub(crate) const MAX_CONNECTIONS: usize = 64;

pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    // Counted after admission, so connections another user is refused (a function probing
    // another environment's port) never take this environment's places.
    let served = Arc::new(AtomicUsize::new(0));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::trace!(%peer, "runtime api connection");
                    let shared = Arc::clone(&shared);
                    let served = Arc::clone(&served);
                    connections.spawn(async move {
                        if !admitted(&stream, peer, shared.config.allowed_peer_uid) {
                            return;
                        }
                        let Some(_place) = Place::take(&served) else {
                            // Debug level: the function can try again and again.
                            tracing::debug!(%peer, "runtime api connection refused: {MAX_CONNECTIONS} already open");
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

/// One of the [`MAX_CONNECTIONS`] places, given back when dropped.
struct Place(Arc<AtomicUsize>);

impl Place {
    fn take(served: &Arc<AtomicUsize>) -> Option<Self> {
        served
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_CONNECTIONS).then_some(n + 1)
            })
            .ok()
            .map(|_| Place(Arc::clone(served)))
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
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
