//! POSTs over one HTTP/1.1 connection kept alive between batches (as the OTel SDKs' exporters
//! do; the Telemetry API's deliveries use it too), with hyper's client connection API
//! (`hyper::client::conn::http1` over a tokio `TcpStream`): a new connection only when there
//! is none, or the receiver closed the last one (hyper tells: the connection's task ended, or
//! the answer was cut). A POST on a kept connection that the receiver had closed meanwhile is
//! sent once more on a new connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Why a POST got no answer.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The path, `Host` or content type cannot be sent in a request.
    #[error("not a valid request target: {0}")]
    Target(String),
    #[error("could not connect to {host}:{port}: {source}")]
    Connect {
        host: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("HTTP exchange failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("the receiver did not answer within {0:?}")]
    TimedOut(Duration),
}

/// Opens the TCP connection POSTs go over, given the target's host and port, when it must
/// not be Kindling's own `TcpStream::connect` (say, a listener inside an environment's network
/// namespace).
pub type Dial = Arc<
    dyn Fn(&str, u16) -> Pin<Box<dyn Future<Output = std::io::Result<TcpStream>> + Send>>
        + Send
        + Sync,
>;

/// Where batches go, and the connection kept between them.
pub struct Connection {
    host: String,
    port: u16,
    /// `None`: `TcpStream::connect` from Kindling's own network.
    dial: Option<Dial>,
    /// Longest one POST (connecting, sending, reading the answer, resending) may take.
    timeout: Duration,
    /// The request's path and headers, checked once.
    template: Result<Template, String>,
    builder: http1::Builder,
    kept: Option<Kept>,
}

struct Template {
    uri: Uri,
    host: HeaderValue,
    content_type: HeaderValue,
}

/// A connection: the handle requests are sent with and the task that drives it (aborted when
/// the connection is given up).
struct Kept {
    sender: http1::SendRequest<Full<Bytes>>,
    task: JoinHandle<()>,
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where a [`Connection`] POSTs.
pub struct Target<'a> {
    /// Connected to.
    pub host: &'a str,
    pub port: u16,
    /// The `Host` header.
    pub authority: &'a str,
    pub path: &'a str,
    pub content_type: &'a str,
    pub timeout: Duration,
}

impl Connection {
    /// A target that cannot be sent (say, a path with a space) makes every POST fail with
    /// [`PostError::Target`].
    pub fn new(t: &Target<'_>) -> Self {
        let template = (|| {
            Ok(Template {
                uri: t
                    .path
                    .parse::<Uri>()
                    .map_err(|e| format!("{}: {e}", t.path))?,
                host: HeaderValue::from_str(t.authority)
                    .map_err(|e| format!("{}: {e}", t.authority))?,
                content_type: HeaderValue::from_str(t.content_type)
                    .map_err(|e| format!("{}: {e}", t.content_type))?,
            })
        })();
        let mut builder = http1::Builder::new();
        // `Host`, `Content-Type`, `Content-Length`, as the receivers' own clients write them.
        builder.title_case_headers(true);
        Self {
            host: t.host.to_string(),
            port: t.port,
            dial: None,
            timeout: t.timeout,
            template,
            builder,
            kept: None,
        }
    }

    /// Connections are opened with `dial` instead of from Kindling's own network.
    pub fn dialing(mut self, dial: Dial) -> Self {
        self.dial = Some(dial);
        self
    }

    /// One POST of `body`; the status code of the answer (whose body is read and discarded).
    pub async fn post(&mut self, body: &[u8]) -> Result<u16, PostError> {
        let body = Bytes::copy_from_slice(body);
        match tokio::time::timeout(self.timeout, self.exchange(body)).await {
            Ok(r) => r,
            // The connection was taken out of `self.kept` for the exchange: it is dropped
            // with the exchange, and the next POST connects anew.
            Err(_) => Err(PostError::TimedOut(self.timeout)),
        }
    }

    async fn exchange(&mut self, body: Bytes) -> Result<u16, PostError> {
        let t = self
            .template
            .as_ref()
            .map_err(|e| PostError::Target(e.clone()))?;
        if let Some(mut kept) = self.kept.take() {
            match send(&mut kept, t, body.clone()).await {
                Ok(status) => {
                    self.keep(kept);
                    return Ok(status);
                }
                Err(e) if stale(&e) => {
                    tracing::trace!(error = %e, "the receiver closed the kept connection");
                }
                Err(e) => return Err(e.into()),
            }
        }
        let tcp = match &self.dial {
            Some(dial) => dial(&self.host, self.port).await,
            None => TcpStream::connect((self.host.as_str(), self.port)).await,
        };
        let tcp = tcp
            .and_then(|s| s.set_nodelay(true).map(|()| s))
            .map_err(|source| PostError::Connect {
                host: self.host.clone(),
                port: self.port,
                source,
            })?;
        let (sender, conn) = self.builder.handshake(TokioIo::new(tcp)).await?;
        let task = tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, "kept connection ended");
            }
        });
        let mut kept = Kept { sender, task };
        let status = send(&mut kept, t, body).await?;
        self.keep(kept);
        Ok(status)
    }

    /// Keeps a connection for the next POST unless it is already closed (`Connection:
    /// close`, or an answer hyper could not read to its end).
    fn keep(&mut self, kept: Kept) {
        if !kept.sender.is_closed() {
            self.kept = Some(kept);
        }
    }
}

/// Sends the request on `kept` and reads the whole answer.
async fn send(kept: &mut Kept, t: &Template, body: Bytes) -> Result<u16, hyper::Error> {
    kept.sender.ready().await?;
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = t.uri.clone();
    let headers = req.headers_mut();
    headers.insert(HOST, t.host.clone());
    headers.insert(CONTENT_TYPE, t.content_type.clone());
    // hyper adds `Content-Length` (the body's exact size).
    let answer = kept.sender.send_request(req).await?;
    let status = answer.status().as_u16();
    let mut rest = answer.into_body();
    while let Some(frame) = rest.frame().await {
        if frame.is_err() {
            // The answer was cut: its status stands, the connection is closed (not kept).
            break;
        }
    }
    Ok(status)
}

/// Whether an error on a kept connection means the receiver had closed it (so the request is
/// sent again on a new one), rather than a bad answer.
fn stale(e: &hyper::Error) -> bool {
    !(e.is_parse() || e.is_parse_status() || e.is_parse_too_large() || e.is_user())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    fn connection_target(port: u16) -> Target<'static> {
        Target {
            host: "127.0.0.1",
            port,
            authority: "collector:4318",
            path: "/v1/traces",
            content_type: "application/x-protobuf",
            timeout: Duration::from_secs(10),
        }
    }

    fn connection(port: u16) -> Connection {
        Connection::new(&connection_target(port))
    }

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    /// A collector that answers `answers` requests on each connection it accepts with
    /// `answer`, then closes it; hands over each request's body and the connection it came on.
    async fn collector(
        answers: usize,
        answer: &'static [u8],
    ) -> (u16, tokio::sync::mpsc::UnboundedReceiver<(usize, Vec<u8>)>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            for conn in 0.. {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = Vec::new();
                for _ in 0..answers {
                    let body = loop {
                        if let Some(i) = find(&buf, b"\r\n\r\n") {
                            let text = String::from_utf8_lossy(&buf[..i]).to_string();
                            assert!(
                                text.starts_with(
                                    "POST /v1/traces HTTP/1.1\r\nHost: collector:4318\r\n"
                                ),
                                "{text}"
                            );
                            assert!(
                                text.contains("\r\nContent-Type: application/x-protobuf"),
                                "{text}"
                            );
                            let len: usize = text
                                .lines()
                                .find_map(|l| l.strip_prefix("Content-Length: "))
                                .unwrap()
                                .parse()
                                .unwrap();
                            if buf.len() >= i + 4 + len {
                                let body = buf[i + 4..i + 4 + len].to_vec();
                                buf.drain(..i + 4 + len);
                                break Some(body);
                            }
                        }
                        if s.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                            break None;
                        }
                    };
                    let Some(body) = body else { break };
                    tx.send((conn, body)).unwrap();
                    s.write_all(answer).await.unwrap();
                }
            }
        });
        (port, rx)
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    #[tokio::test]
    async fn posts_share_one_connection() {
        let (port, mut bodies) = collector(usize::MAX, OK).await;
        let mut c = connection(port);
        for n in 0..5u8 {
            assert_eq!(c.post(&[n; 3]).await.unwrap(), 200);
            assert_eq!(bodies.recv().await.unwrap(), (0, vec![n; 3]));
        }
    }

    #[tokio::test]
    async fn a_dialing_connection_connects_only_through_its_dial() {
        let (port, mut bodies) = collector(1, OK).await;
        let dialed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = Arc::clone(&dialed);
        // The target names a port nobody listens on; the dial goes to the collector.
        let dial: Dial = Arc::new(move |host: &str, asked: u16| {
            seen.lock().unwrap().push((host.to_string(), asked));
            Box::pin(TcpStream::connect(("127.0.0.1", port)))
        });
        let mut c = connection(1).dialing(dial);
        for n in 0..2u8 {
            assert_eq!(c.post(&[n]).await.unwrap(), 200);
            assert_eq!(bodies.recv().await.unwrap(), (usize::from(n), vec![n]));
        }
        // One dial per connection (the collector closes each after one answer).
        assert_eq!(
            *dialed.lock().unwrap(),
            [("127.0.0.1".to_string(), 1), ("127.0.0.1".to_string(), 1)]
        );
    }

    #[tokio::test]
    async fn chunked_answers_keep_the_connection() {
        let (port, mut bodies) = collector(
            usize::MAX,
            b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        )
        .await;
        let mut c = connection(port);
        for n in 0..3u8 {
            assert_eq!(c.post(&[n]).await.unwrap(), 202);
            assert_eq!(bodies.recv().await.unwrap(), (0, vec![n]));
        }
    }

    #[tokio::test]
    async fn a_connection_the_collector_closed_is_replaced() {
        // One answer per connection, then the collector closes it without saying so.
        let (port, mut bodies) = collector(1, OK).await;
        let mut c = connection(port);
        for n in 0..4u8 {
            assert_eq!(c.post(&[n]).await.unwrap(), 200);
            assert_eq!(bodies.recv().await.unwrap(), (usize::from(n), vec![n]));
        }
    }

    #[tokio::test]
    async fn connection_close_is_honoured() {
        let (port, mut bodies) = collector(
            usize::MAX,
            b"HTTP/1.1 400 Bad\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        let mut c = connection(port);
        for n in 0..3u8 {
            assert_eq!(c.post(&[n]).await.unwrap(), 400);
            assert_eq!(bodies.recv().await.unwrap(), (usize::from(n), vec![n]));
        }
    }

    #[tokio::test]
    async fn a_receiver_that_never_answers_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut c = Connection::new(&Target {
            timeout: Duration::from_millis(200),
            ..connection_target(port)
        });
        // Accepted (by the kernel's backlog), never read or answered.
        let e = c.post(b"x").await.unwrap_err();
        assert!(matches!(e, PostError::TimedOut(_)), "{e}");
        drop(listener);
    }

    #[tokio::test]
    async fn nobody_listening_is_an_error() {
        let mut c = connection(9);
        assert!(matches!(
            c.post(b"x").await,
            Err(PostError::Connect { port: 9, .. })
        ));
    }

    #[tokio::test]
    async fn a_target_that_cannot_be_sent_is_an_error() {
        let mut c = Connection::new(&Target {
            path: "/v1/ traces",
            ..connection_target(9)
        });
        assert!(matches!(c.post(b"x").await, Err(PostError::Target(_))));
    }
}
