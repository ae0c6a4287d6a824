//! POSTs over one HTTP/1.1 connection kept alive between batches (as the OTel SDKs' exporters
//! do; the Telemetry API's deliveries use it too): a new connection only when there is none,
//! the receiver closed the last one, or an answer could not be read to its end. A POST on a
//! kept connection that the receiver had closed meanwhile (it answers nothing) is sent once
//! more on a new connection.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest answer head read.
const MAX_HEAD: usize = 64 * 1024;

/// Where batches go, and the connection kept between them.
pub struct Connection {
    host: String,
    port: u16,
    /// Longest one POST (connecting, sending, reading the answer) may take.
    timeout: Duration,
    /// `POST … Content-Length: ` (the length and the blank line follow).
    head: String,
    stream: Option<TcpStream>,
    /// The answer's bytes (reused).
    answer: Vec<u8>,
}

/// How an exchange ended.
enum Failure {
    /// Nothing came back on a kept connection: the collector had closed it (sent again).
    Stale(io::Error),
    Failed(io::Error),
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
    pub fn new(t: &Target<'_>) -> Self {
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {}\r\nContent-Length: ",
            t.path, t.authority, t.content_type
        );
        Self {
            host: t.host.to_string(),
            port: t.port,
            timeout: t.timeout,
            head,
            stream: None,
            answer: Vec::new(),
        }
    }

    /// One POST of `body`; the status code of the answer.
    pub async fn post(&mut self, body: &[u8]) -> io::Result<u16> {
        match tokio::time::timeout(self.timeout, self.exchange(body)).await {
            Ok(r) => r,
            Err(_) => {
                self.stream = None;
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the receiver is too slow",
                ))
            }
        }
    }

    async fn exchange(&mut self, body: &[u8]) -> io::Result<u16> {
        if let Some(mut s) = self.stream.take() {
            match self.on(&mut s, body, true).await {
                Ok((status, keep)) => {
                    if keep {
                        self.stream = Some(s);
                    }
                    return Ok(status);
                }
                Err(Failure::Stale(e)) => {
                    tracing::trace!(error = %e, "the receiver closed the kept connection");
                }
                Err(Failure::Failed(e)) => return Err(e),
            }
        }
        let mut s = TcpStream::connect((self.host.as_str(), self.port)).await?;
        s.set_nodelay(true)?;
        match self.on(&mut s, body, false).await {
            Ok((status, keep)) => {
                if keep {
                    self.stream = Some(s);
                }
                Ok(status)
            }
            Err(Failure::Stale(e) | Failure::Failed(e)) => Err(e),
        }
    }

    /// Sends the request on `s` and reads the whole answer: its status, and whether the
    /// connection can carry the next request.
    async fn on(
        &mut self,
        s: &mut TcpStream,
        body: &[u8],
        reused: bool,
    ) -> Result<(u16, bool), Failure> {
        let mut head = String::with_capacity(self.head.len() + 24);
        head.push_str(&self.head);
        head.push_str(&body.len().to_string());
        head.push_str("\r\n\r\n");
        let sent = async {
            s.write_all(head.as_bytes()).await?;
            s.write_all(body).await
        }
        .await;
        if let Err(e) = sent {
            return Err(if reused {
                Failure::Stale(e)
            } else {
                Failure::Failed(e)
            });
        }
        self.answer.clear();
        let end = loop {
            if let Some(i) = find(&self.answer, b"\r\n\r\n") {
                break i + 4;
            }
            if self.answer.len() > MAX_HEAD {
                return Err(Failure::Failed(io::Error::other("answer head too long")));
            }
            match read_more(s, &mut self.answer).await {
                Ok(0) | Err(_) if reused && self.answer.is_empty() => {
                    return Err(Failure::Stale(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "closed before answering",
                    )));
                }
                Ok(0) => {
                    return Err(Failure::Failed(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the answer ended early",
                    )));
                }
                Ok(_) => {}
                Err(e) => return Err(Failure::Failed(e)),
            }
        };
        let head = Head::parse(&self.answer[..end])
            .ok_or_else(|| Failure::Failed(io::Error::other("not an HTTP answer")))?;
        let mut have = self.answer.len() - end;
        match head.length {
            Some(len) => {
                while have < len {
                    self.answer.clear();
                    match read_more(s, &mut self.answer).await {
                        Ok(0) => return Ok((head.status, false)),
                        Ok(n) => have += n,
                        Err(_) => return Ok((head.status, false)),
                    }
                }
                Ok((head.status, head.keep_alive && have == len))
            }
            None => {
                // No length (chunked, or until the end): read it all, then a new connection.
                self.answer.clear();
                while let Ok(n) = read_more(s, &mut self.answer).await {
                    if n == 0 {
                        break;
                    }
                    self.answer.clear();
                }
                Ok((head.status, false))
            }
        }
    }
}

async fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.reserve(4096);
    s.read_buf(buf).await
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What an answer's head says.
struct Head {
    status: u16,
    /// `Content-Length` (0 for answers that have no body).
    length: Option<usize>,
    keep_alive: bool,
}

impl Head {
    fn parse(head: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(head).ok()?;
        let mut lines = text.split("\r\n");
        let status_line = lines.next()?;
        let status: u16 = status_line
            .strip_prefix("HTTP/1.")?
            .get(2..5)?
            .parse()
            .ok()?;
        let mut length = None;
        let mut chunked = false;
        let mut keep_alive = status_line.starts_with("HTTP/1.1");
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse().ok()?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = true;
            } else if name.eq_ignore_ascii_case("connection") {
                keep_alive = !value.eq_ignore_ascii_case("close");
            }
        }
        if status == 204 || status == 304 || (100..200).contains(&status) {
            length = Some(0);
        }
        if chunked {
            length = None;
        }
        Some(Self {
            status,
            length,
            keep_alive,
        })
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    fn connection(port: u16) -> Connection {
        Connection::new(&Target {
            host: "127.0.0.1",
            port,
            authority: "collector:4318",
            path: "/v1/traces",
            content_type: "application/x-protobuf",
            timeout: Duration::from_secs(10),
        })
    }

    #[test]
    fn answer_heads() {
        let h = Head::parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n").unwrap();
        assert_eq!((h.status, h.length, h.keep_alive), (200, Some(2), true));
        let h = Head::parse(b"HTTP/1.1 400 Bad\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
            .unwrap();
        assert_eq!((h.status, h.length, h.keep_alive), (400, Some(0), false));
        let h = Head::parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        assert_eq!(h.length, None);
        let h = Head::parse(b"HTTP/1.0 204 No Content\r\n\r\n").unwrap();
        assert_eq!((h.status, h.length, h.keep_alive), (204, Some(0), false));
        assert!(Head::parse(b"SSH-2.0\r\n\r\n").is_none());
    }

    /// A collector that answers `answers` requests on each connection it accepts (its body
    /// "ok"), then closes it; hands over each request's body and the connection it came on.
    async fn collector(
        answers: usize,
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
                            assert!(text.starts_with(
                                "POST /v1/traces HTTP/1.1\r\nHost: collector:4318\r\n"
                            ));
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
                    s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .await
                        .unwrap();
                }
            }
        });
        (port, rx)
    }

    #[tokio::test]
    async fn posts_share_one_connection() {
        let (port, mut bodies) = collector(usize::MAX).await;
        let mut c = connection(port);
        for n in 0..5u8 {
            assert_eq!(c.post(&[n; 3]).await.unwrap(), 200);
            assert_eq!(bodies.recv().await.unwrap(), (0, vec![n; 3]));
        }
    }

    #[tokio::test]
    async fn a_connection_the_collector_closed_is_replaced() {
        // One answer per connection, then the collector closes it without saying so.
        let (port, mut bodies) = collector(1).await;
        let mut c = connection(port);
        for n in 0..4u8 {
            assert_eq!(c.post(&[n]).await.unwrap(), 200);
            assert_eq!(bodies.recv().await.unwrap(), (usize::from(n), vec![n]));
        }
    }

    #[tokio::test]
    async fn nobody_listening_is_an_error() {
        let mut c = connection(9);
        assert!(c.post(b"x").await.is_err());
    }
}
