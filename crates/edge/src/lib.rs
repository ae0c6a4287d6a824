//! Kindling's one endpoint in front of every AWS service it serves: everything about a
//! connection that is not one API's business.
//!
//! * **Dispatch**: which service a request is for, the way AWS clients tell them apart, in
//!   one table ([`dispatch`]); the server mounts each service's router behind it.
//! * **Limits**: at most [`EdgeConfig::max_connections`] open connections (past that, a new
//!   one closes the connection idle the longest; it waits in the kernel's backlog only while
//!   every connection has a request in progress), at most
//!   [`EdgeConfig::max_connections_per_ip`] of them from one remote address ([`slots`]; one
//!   past it while all of that address's are busy is answered
//!   [`Rejection::TooManyConnections`] from a bounded number of tasks, `refuse.rs`, and
//!   closed), and [`EdgeConfig::max_requests`] requests in progress (past
//!   that, a request is answered with [`Rejection::Busy`] at once). Request bodies are read
//!   with [`read_body`]: a size limit per operation, an idle timeout (a body that stops
//!   arriving, such as one whose `Content-Length` lies, is cut) and a server-wide budget of
//!   buffered body bytes ([`EdgeConfig::max_body_memory`]).
//! * **Timeouts**: the request head must arrive within [`EdgeConfig::header_read_timeout`]
//!   (this also closes keep-alive connections idle that long); a slow or stalled head closes
//!   the connection without an answer. An answer whose client reads nothing of it for 60 s
//!   (5 s on a connection asked to make room) drops the connection (`stall.rs`): only write
//!   stalls count, never a slow reader's progress or a slow producer's pauses.
//! * **Origin**: with [`EdgeConfig::environment_uids`], each accepted connection's peer socket
//!   owner is asked of the kernel once (`kindling-peer`); every request carries its [`Origin`]
//!   in a [`RequestContext`] extension, so the API can hold requests from inside execution environments to
//!   their own credentials.
//! * **Malformed requests**: hyper answers a request it cannot parse (bad request line, raw
//!   bytes in the target, a negative `Content-Length`, a URI or head too long) with a bare
//!   status and no body. The connection's I/O is wrapped ([`rewrite`]) so that such an answer
//!   is replaced by the API's own error format ([`Rejection::Malformed`]): every response the
//!   server sends is in the API's wire format.
//! * **Closing**: when the server closes a connection whose client is still sending (a body
//!   refused before it was read), the rest of the input is read and dropped for a short while
//!   (lingering close), so the client sees the answer instead of a reset.
//!
//! * **Hot routes**: a service may register a [`HotRoute`] that serves its busiest requests
//!   (Lambda's `Invoke`, function URL calls) straight from the dispatch decision, below its
//!   router and middleware layers ([`hot`]); everything else reaches the router unchanged.
//!
//! Knows no API's wire format: the service and the error renderer are passed in.

mod body;
pub mod browser;
mod conn;
pub mod dispatch;
pub mod gate;
pub mod hot;
mod refuse;
mod rewrite;
mod services;
mod slots;
mod stall;

use std::convert::Infallible;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use body::{BodyError, BodyLimits, BufferedBody, file_body, read_body};
pub use dispatch::{Decision, RequestHead, ServiceId, classify, classify_form};
pub use hot::{Declined, HotFuture, HotRoute, new_request_id};
pub use services::Services;

/// Where a connection comes from, as far as the edge can tell; in every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The peer socket belongs to a user of [`EdgeConfig::environment_uids`]: a process inside
    /// an execution environment.
    Environment { uid: u32 },
    /// Anything else (another local user, another host, or no owner check configured).
    Other,
}

/// What the edge tells the service about each request, in its extensions.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub origin: Origin,
    /// The client's address (`None` when the request did not come through the listener).
    pub peer: Option<std::net::SocketAddr>,
    /// Bounds for reading the body with [`read_body`].
    pub body_limits: BodyLimits,
}

/// Why the edge answers a request itself; the renderer turns it into the API's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// hyper could not parse the request (400), its URI is too long (414) or its head too
    /// large (431).
    Malformed(StatusCode),
    /// [`EdgeConfig::max_requests`] requests are already in progress.
    Busy,
    /// A method the edge never serves (`HEAD`: no operation has one; answered without body).
    MethodNotAllowed,
    /// A new connection's remote address already holds its
    /// [`EdgeConfig::max_connections_per_ip`] connections none of them idle, or twice that
    /// counting the ones closing: answered before its
    /// request is read, meant as `503 Service Unavailable` (the edge adds `Retry-After: 1` and
    /// `Connection: close`, and closes the connection).
    TooManyConnections,
}

/// Renders the edge's own answers in the API's wire format. The response must carry the
/// API's marker header ([`EdgeConfig::marker_header`]).
pub type Renderer = Arc<dyn Fn(Rejection) -> Response<Bytes> + Send + Sync>;

/// Settings of the edge.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Time a client has to send a complete request head (and the longest a keep-alive
    /// connection may stay idle).
    pub header_read_timeout: Duration,
    /// Longest pause while a request body is being read before the request is cut.
    pub body_idle_timeout: Duration,
    /// Slowest a request body may arrive on average, in bytes per second, after twice
    /// `body_idle_timeout` of grace (time waiting for `max_body_memory` not counted); 0: no
    /// average rate.
    pub body_min_rate: u64,
    /// Open connections at once. A connection arriving when all are taken closes the one
    /// idle the longest (waiting for its first request head, or between requests); it waits
    /// in the kernel's backlog only while every connection has a request in progress.
    pub max_connections: usize,
    /// Open connections at once from one remote address (the loopback has no cap of its
    /// own): one beyond it closes that address's connection idle the longest, or, when all of
    /// them are busy, is answered [`Rejection::TooManyConnections`] (`503`, `Retry-After: 1`)
    /// and closed. 0: no cap.
    pub max_connections_per_ip: usize,
    /// Requests in progress at once.
    pub max_requests: usize,
    /// Bytes of request bodies buffered at once, server-wide.
    pub max_body_memory: usize,
    /// Largest request head (request line and headers).
    pub max_header_bytes: usize,
    /// Users whose connections are [`Origin::Environment`]; `None`: no lookup at all.
    pub environment_uids: Option<RangeInclusive<u32>>,
    /// A header (lowercase) that every response of the service carries: responses without
    /// it are hyper's own.
    pub marker_header: &'static str,
    /// Services whose `HEAD` requests are passed on (S3's HeadObject and HeadBucket), as the
    /// dispatch table decides; every other `HEAD` is answered [`Rejection::MethodNotAllowed`].
    pub head_services: Vec<ServiceId>,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(10),
            body_min_rate: body::MIN_BODY_RATE,
            max_connections: 1024,
            max_connections_per_ip: 256,
            max_requests: 2048,
            max_body_memory: 512 * 1024 * 1024,
            max_header_bytes: 64 * 1024,
            environment_uids: None,
            marker_header: "x-amzn-requestid",
            head_services: Vec::new(),
        }
    }
}

/// What the edge serves: a cloneable service that answers every request (its errors are
/// its answers) with a body of `B`.
pub trait EdgeService<B>:
    tower::Service<
        Request<Incoming>,
        Response = Response<B>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S, B> EdgeService<B> for S
where
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
}

/// A response body the edge can send.
pub trait ResponseBody:
    http_body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
    + Send
    + 'static
{
}

impl<B> ResponseBody for B
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
}

/// Serves `service` on `listener` until `shutdown` resolves, then stops accepting, asks every
/// connection to finish its request in progress and close, and returns when all are gone.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    config: EdgeConfig,
    renderer: Renderer,
    shutdown: impl std::future::Future<Output = ()>,
) where
    S: EdgeService<B>,
    B: ResponseBody,
{
    serve_with_relayed(listener, None, service, config, renderer, shutdown).await;
}

/// A connection accepted elsewhere (inside an execution environment's own network namespace)
/// and handed to the edge with its origin.
pub type Relayed = (tokio::net::TcpStream, Origin);

/// As [`serve`], also serving the connections that arrive on `relayed` (with the origin they
/// come with), under the same limits.
pub async fn serve_with_relayed<S, B>(
    listener: TcpListener,
    relayed: Option<tokio::sync::mpsc::Receiver<Relayed>>,
    service: S,
    config: EdgeConfig,
    renderer: Renderer,
    shutdown: impl std::future::Future<Output = ()>,
) where
    S: EdgeService<B>,
    B: ResponseBody,
{
    let slots = slots::Slots::new(config.max_connections, config.max_connections_per_ip);
    accept_loop(
        listener, relayed, service, config, renderer, shutdown, slots,
    )
    .await;
}

/// [`serve_with_relayed`] with the connection slots given (tests count the loopback's).
async fn accept_loop<S, B>(
    listener: TcpListener,
    mut relayed: Option<tokio::sync::mpsc::Receiver<Relayed>>,
    service: S,
    config: EdgeConfig,
    renderer: Renderer,
    shutdown: impl std::future::Future<Output = ()>,
    slots: Arc<slots::Slots>,
) where
    S: EdgeService<B>,
    B: ResponseBody,
{
    let refusals = refuse::Refusals::new(Arc::clone(&renderer));
    let shared = Arc::new(conn::Shared {
        requests: Arc::new(Semaphore::new(config.max_requests)),
        body_limits: BodyLimits::new(config.body_idle_timeout, config.max_body_memory)
            .with_min_rate(config.body_min_rate),
        renderer,
        config: config.clone(),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let next_relayed = async {
            match relayed.as_mut() {
                Some(r) => r.recv().await,
                None => std::future::pending().await,
            }
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => Ok(accepted),
            r = next_relayed => Err(r),
        };
        let (stream, origin, peer) = match accepted {
            Ok(Ok((stream, peer))) => {
                let origin = conn::origin(&stream, peer, shared.config.environment_uids.as_ref());
                (stream, origin, peer)
            }
            Ok(Err(e)) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(Some((stream, origin))) => {
                // The peer as seen inside the environment's namespace (its loopback).
                let Ok(peer) = stream.peer_addr() else {
                    continue;
                };
                (stream, origin, peer)
            }
            Err(None) => {
                relayed = None;
                continue;
            }
        };
        // At the limit, the connection idle the longest makes room; the new one waits (and
        // the ones after it in the kernel's backlog) only while every connection is busy.
        let slot = match slots.admit(peer.ip(), &mut shutdown).await {
            Some(slots::Admission::Admitted(slot)) => slot,
            Some(slots::Admission::Refused) => {
                tracing::debug!(%peer, "connection refused: its address holds its cap of busy connections, or twice it with closing ones");
                // Answered 503 from a task of its own (or closed at once when too many
                // refusals are being answered): the loop never waits on this client.
                refusals.refuse(stream);
                continue;
            }
            None => break,
        };
        let service = service.clone();
        let shared = Arc::clone(&shared);
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            conn::serve_connection(stream, origin, peer, service, shared, slot, stop).await;
        });
    }
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it is gone.
    slots.drained().await;
}
