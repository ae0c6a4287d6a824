//! One connection: origin lookup, hyper's HTTP/1.1 with the edge's limits, graceful shutdown
//! and lingering close.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Either, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::rewrite::{HeadQueue, Rewrite};
use crate::slots::Slot;
use crate::{BodyLimits, EdgeConfig, Origin, Rejection, Renderer, RequestContext};

/// How long, at most, the input of a closing connection is read and dropped.
const LINGER: Duration = Duration::from_secs(5);
/// A lingering connection that sends nothing for this long is closed at once.
const LINGER_IDLE: Duration = Duration::from_secs(1);

/// How long a connection asked to make room may take to close before it is dropped, while it
/// is still in its first request head.
const SHED_GRACE: Duration = Duration::from_millis(50);

/// How long a connection asked to make room may take to flush the answer it already gave
/// before it is dropped (a client that never reads would otherwise hold its slot forever).
#[cfg(not(test))]
const SHED_FLUSH: Duration = Duration::from_secs(5);
#[cfg(test)]
const SHED_FLUSH: Duration = Duration::from_secs(2);

/// What every connection of one server shares.
pub(crate) struct Shared {
    pub requests: Arc<Semaphore>,
    pub body_limits: BodyLimits,
    pub renderer: Renderer,
    pub config: EdgeConfig,
}

/// The connection's origin: one `sock_diag` lookup when environment users are configured.
/// A lookup that fails counts as an environment (the stricter rules apply).
pub(crate) fn origin(
    stream: &TcpStream,
    peer: SocketAddr,
    environment_uids: Option<&RangeInclusive<u32>>,
) -> Origin {
    let Some(uids) = environment_uids else {
        return Origin::Other;
    };
    let owner = stream
        .local_addr()
        .and_then(|local| kindling_peer::socket_owner(peer, local));
    match owner {
        Ok(Some(uid)) if uids.contains(&uid) => Origin::Environment { uid },
        Ok(_) => Origin::Other,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "cannot tell who owns a connection; treating it as an execution environment's");
            Origin::Environment { uid: u32::MAX }
        }
    }
}

type EdgeBody<B> = Either<B, Either<Full<Bytes>, Empty<Bytes>>>;

pub(crate) async fn serve_connection<S, B>(
    stream: TcpStream,
    origin: Origin,
    peer: SocketAddr,
    service: S,
    shared: Arc<Shared>,
    slot: Slot,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
    // A second handle on the socket, kept for the lingering close after hyper is done.
    let (stream, linger) = match duplicate(stream) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!(error = %e, "cannot duplicate a connection's socket");
            return;
        }
    };
    let heads: HeadQueue = Arc::new(Mutex::new(VecDeque::new()));
    let io = Rewrite::new(
        TokioIo::new(stream),
        Arc::clone(&heads),
        shared.config.marker_header,
        Arc::clone(&shared.renderer),
    );
    let slot = Arc::new(slot);
    let svc = {
        let shared = Arc::clone(&shared);
        let slot = Arc::clone(&slot);
        hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let shared = Arc::clone(&shared);
            let service = service.clone();
            // Busy until the response body is dropped (sent, or the connection gone).
            let busy = slot.busy();
            let is_head = req.method() == Method::HEAD;
            let refuse_head = is_head && !head_served(&req, &shared.config.head_services);
            heads
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_back(is_head);
            let answer = async move {
                if refuse_head {
                    let (mut parts, _) =
                        (shared.renderer)(Rejection::MethodNotAllowed).into_parts();
                    parts.headers.remove(http::header::CONTENT_LENGTH);
                    let empty: EdgeBody<B> = Either::Right(Either::Right(Empty::new()));
                    return Ok::<_, Infallible>(Response::from_parts(parts, empty));
                }
                let Ok(permit) = Arc::clone(&shared.requests).try_acquire_owned() else {
                    let res = (shared.renderer)(Rejection::Busy);
                    return Ok(
                        res.map(|b| -> EdgeBody<B> { Either::Right(Either::Left(Full::new(b))) })
                    );
                };
                req.extensions_mut().insert(RequestContext {
                    origin,
                    peer: Some(peer),
                    body_limits: shared.body_limits.clone(),
                });
                let res = service.oneshot(req).await?;
                drop(permit);
                Ok(res.map(|b| -> EdgeBody<B> { Either::Left(b) }))
            };
            async move {
                let res = answer.await?;
                // The guard lives in the body's frame hook, so it is dropped with the body.
                let keep = move |_: &http_body::Frame<Bytes>| busy.keep();
                Ok::<_, Infallible>(res.map(|b| b.inspect_frame(keep)))
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.header_read_timeout)
        .max_header_size(shared.config.max_header_bytes)
        .keep_alive(true);
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    // How long the lingering close waits for the client's next bytes: a connection closed to
    // make room lingers only while the client is still sending (a body it was refused), not
    // the usual second an idle keep-alive client would hold the slot a newcomer waits for.
    let mut linger_idle = LINGER_IDLE;
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
        () = slot.shed_requested() => {
            conn.as_mut().graceful_shutdown();
            tracing::debug!(%peer, "idle connection asked to close to make room for a new one");
            if slot.has_started() {
                // An answer may still sit in hyper's write buffer (the response body is gone
                // once its last frame is queued): hyper flushes it, then closes by itself,
                // within SHED_FLUSH or the connection is dropped (no lingering: the client
                // is not reading).
                linger_idle = SHED_GRACE;
                match tokio::time::timeout(SHED_FLUSH, conn.as_mut()).await {
                    Ok(r) => r,
                    Err(_) => {
                        tracing::debug!(%peer, "connection asked to close did not flush its answer in time; dropped");
                        return;
                    }
                }
            } else {
                // Still in its first head: hyper closes at once a connection that has not
                // sent a byte; a partial head is dropped here unless it completes meanwhile
                // (that request is then answered first). Nothing was sent: no lingering,
                // the slot is for the connection waiting for it.
                let early = tokio::select! {
                    r = conn.as_mut() => Some(r),
                    () = tokio::time::sleep(SHED_GRACE) => None,
                };
                match early {
                    _ if !slot.has_started() => return,
                    Some(r) => r,
                    None => conn.as_mut().await,
                }
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
    linger_close(linger, &slot, linger_idle).await;
}

async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn duplicate(stream: TcpStream) -> std::io::Result<(TcpStream, std::net::TcpStream)> {
    let std = stream.into_std()?;
    let copy = std.try_clone()?;
    Ok((TcpStream::from_std(std)?, copy))
}

/// Sends FIN, then reads and drops what the client still sends (for at most [`LINGER`], while
/// it sends something at least every `idle_for`), so
/// that closing with unread input does not reset the connection under the client's feet
/// before it read the answer. A connection asked to close to make room meanwhile stops at once
/// (its slot is for a new connection); one asked before it lingers as usual, as it answered a
/// request since.
async fn linger_close(socket: std::net::TcpStream, slot: &Slot, idle_for: Duration) {
    let _ = socket.shutdown(std::net::Shutdown::Write);
    let Ok(mut socket) = TcpStream::from_std(socket) else {
        return;
    };
    let asked_before = slot.was_shed();
    let deadline = tokio::time::Instant::now() + LINGER;
    let mut sink = [0u8; 16 * 1024];
    loop {
        let idle = tokio::time::Instant::now() + idle_for;
        let read = tokio::time::timeout_at(deadline.min(idle), socket.read(&mut sink));
        tokio::select! {
            r = read => match r {
                Ok(Ok(n)) if n > 0 => continue,
                _ => break,
            },
            () = slot.shed_requested(), if !asked_before => break,
        }
    }
}

/// Whether a `HEAD` request is for one of `services` (S3), as the dispatch table decides.
fn head_served<B>(req: &Request<B>, services: &[crate::ServiceId]) -> bool {
    if services.is_empty() {
        return false;
    }
    let head = crate::RequestHead {
        method: req.method(),
        path: req.uri().path(),
        query: req.uri().query(),
        headers: req.headers(),
    };
    matches!(
        crate::classify(&head, &|id| services.contains(&id)),
        crate::Decision::Service(id) if services.contains(&id)
    )
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::Renderer;

    /// 32 MiB: more than the loopback's socket buffers hold.
    const SIZE: usize = 32 << 20;

    async fn read_all(stream: &mut TcpStream) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 256 * 1024];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
                _ => return got,
            }
        }
    }

    fn body_len(response: &[u8]) -> usize {
        let head = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(response.len(), |i| i + 4);
        response.len() - head
    }

    /// A server with room for one connection whose every answer is SIZE bytes: its address,
    /// what stops it, and its task.
    async fn one_slot_server() -> (
        std::net::SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = EdgeConfig {
            max_connections: 1,
            ..EdgeConfig::default()
        };
        let renderer: Renderer = Arc::new(|_| {
            Response::builder()
                .status(503)
                .header("x-amzn-requestid", "e")
                .body(Bytes::new())
                .unwrap()
        });
        let service = tower::service_fn(|_: Request<Incoming>| async {
            Ok::<_, Infallible>(
                Response::builder()
                    .header("x-amzn-requestid", "r")
                    .body(Full::new(Bytes::from(vec![7u8; SIZE])))
                    .unwrap(),
            )
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(crate::serve(listener, service, config, renderer, async {
            let _ = stopped.await;
        }));
        (addr, stop, server)
    }

    /// A keep-alive connection whose request's answer has started to arrive (and is left
    /// unread).
    async fn answer_started(addr: std::net::SocketAddr) -> TcpStream {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut peek = [0u8; 1];
        tokio::time::timeout(Duration::from_secs(5), s.peek(&mut peek))
            .await
            .expect("the answer starts")
            .unwrap();
        s
    }

    /// A new client's one request (`connection: close`) and all it reads back.
    async fn newcomer(addr: std::net::SocketAddr) -> Vec<u8> {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        read_all(&mut s).await
    }

    #[tokio::test]
    async fn a_connection_closed_to_make_room_still_sends_its_whole_answer() {
        let (addr, stop, server) = one_slot_server().await;
        // A slow reader: its answer is queued (the body is gone, the connection idle) but
        // mostly unsent.
        let mut slow = answer_started(addr).await;
        // A new connection: the slow one, idle, is asked to close.
        let newcomer = tokio::spawn(newcomer(addr));
        // Well past SHED_GRACE.
        tokio::time::sleep(SHED_GRACE * 4).await;
        let got = read_all(&mut slow).await;
        assert!(got.starts_with(b"HTTP/1.1 200"));
        assert_eq!(body_len(&got), SIZE, "the whole answer");
        let got = tokio::time::timeout(Duration::from_secs(20), newcomer)
            .await
            .unwrap()
            .unwrap();
        assert!(got.starts_with(b"HTTP/1.1 200"), "the newcomer served then");
        assert_eq!(body_len(&got), SIZE);
        let _ = stop.send(());
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_connection_closed_to_make_room_that_is_never_read_frees_its_slot() {
        let (addr, stop, server) = one_slot_server().await;
        // A client that asks for a large answer and never reads it (zero window).
        let stuck = answer_started(addr).await;
        // The newcomer is served once the stuck one is dropped, within SHED_FLUSH.
        let newcomer = tokio::spawn(newcomer(addr));
        let got = tokio::time::timeout(SHED_FLUSH + Duration::from_secs(3), newcomer)
            .await
            .expect("the stuck connection's slot is freed")
            .unwrap();
        assert!(got.starts_with(b"HTTP/1.1 200"), "the newcomer served");
        assert_eq!(body_len(&got), SIZE);
        drop(stuck);
        let _ = stop.send(());
        server.await.unwrap();
    }
    /// REVIEW: a request that starts on a connection in the instant it is asked to close
    /// (the client reused its idle keep-alive connection) is cut at SHED_FLUSH.
    #[tokio::test]
    async fn review_a_request_started_as_its_connection_is_asked_to_close_is_answered() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let mut outcomes = Vec::new();
        for attempt in 0..20 {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let config = EdgeConfig {
                max_connections: 1,
                ..EdgeConfig::default()
            };
            let renderer: Renderer = Arc::new(|_| {
                Response::builder()
                    .status(503)
                    .header("x-amzn-requestid", "e")
                    .body(Bytes::new())
                    .unwrap()
            });
            let slow_started = Arc::new(AtomicUsize::new(0));
            let counter = Arc::clone(&slow_started);
            let service = tower::service_fn(move |req: Request<Incoming>| {
                let counter = Arc::clone(&counter);
                async move {
                    if req.uri().path() == "/slow" {
                        counter.fetch_add(1, Ordering::SeqCst);
                        // An invocation longer than SHED_FLUSH.
                        tokio::time::sleep(SHED_FLUSH * 2).await;
                    }
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header("x-amzn-requestid", "r")
                            .body(Full::new(Bytes::from_static(b"done")))
                            .unwrap(),
                    )
                }
            });
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(crate::serve(listener, service, config, renderer, async {
                let _ = stopped.await;
            }));
            // A keep-alive client: one answered request, the connection idle.
            let mut a = TcpStream::connect(addr).await.unwrap();
            a.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut first = Vec::new();
            while !first.ends_with(b"done") {
                let n = a.read(&mut buf).await.unwrap();
                assert!(n > 0);
                first.extend_from_slice(&buf[..n]);
            }
            // A newcomer arrives as the client reuses its connection for a long request.
            let b = std::net::TcpStream::connect(addr).unwrap();
            a.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
            let got = read_all(&mut a).await;
            let started = slow_started.load(Ordering::SeqCst) > 0;
            let answered = got.starts_with(b"HTTP/1.1 200");
            outcomes.push((attempt, started, answered));
            drop(b);
            let _ = stop.send(());
            server.await.unwrap();
            assert!(
                !started || answered,
                "attempt {attempt}: the request was taken (its service ran) but the connection was \
                 closed without an answer after SHED_FLUSH; outcomes {outcomes:?}"
            );
        }
        eprintln!("outcomes (attempt, service started, answered): {outcomes:?}");
    }
    /// REVIEW: a slow but steady reader of an answer is cut at SHED_FLUSH when asked to close.
    #[tokio::test]
    async fn review_a_slow_steady_reader_gets_its_whole_answer() {
        let (addr, stop, server) = one_slot_server().await;
        let mut slow = answer_started(addr).await;
        let newcomer = tokio::spawn(newcomer(addr));
        // About 8 MiB/s: 32 MiB in ~4 s, longer than SHED_FLUSH (2 s in tests).
        let mut got = Vec::new();
        let mut buf = vec![0u8; 256 * 1024];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match tokio::time::timeout_at(deadline, slow.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
                _ => break,
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        assert_eq!(body_len(&got), SIZE, "the whole answer, read at a steady pace (got {} bytes)", got.len());
        let _ = newcomer.await;
        let _ = stop.send(());
        server.await.unwrap();
    }

    /// REVIEW: a head completed just after its connection was asked to close, whose answer is
    /// never read, holds the slot for good (the first-head path has no SHED_FLUSH bound, and a
    /// connection asked once is never asked again).
    #[tokio::test]
    async fn review_a_head_completed_after_the_close_request_never_read_frees_its_slot() {
        let (addr, stop, server) = one_slot_server().await;
        let mut a = TcpStream::connect(addr).await.unwrap();
        a.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let newcomer = tokio::spawn(newcomer(addr));
        tokio::time::sleep(Duration::from_millis(10)).await;
        a.write_all(b"\r\n").await.unwrap();
        let got = tokio::time::timeout(SHED_FLUSH + Duration::from_secs(5), newcomer).await;
        assert!(got.is_ok(), "the newcomer still waits: a holds the only slot");
        drop(a);
        let _ = stop.send(());
        server.await.unwrap();
    }
}
