//! A deliberately small HTTP/1.1 client over a raw `TcpStream` (keep-alive, Content-Length or
//! chunked bodies), so tests see exactly what goes over the wire, plus shared helpers.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kindling_runtime_api::{RuntimeApi, RuntimeApiConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Generous upper bound for anything that should happen "soon".
pub const SOON: Duration = Duration::from_secs(10);
/// How long a long poll must stay unanswered to count as blocking.
pub const STILL_PENDING: Duration = Duration::from_millis(250);

pub const NEXT: &str = "/2018-06-01/runtime/invocation/next";
pub const REGISTER: &str = "/2020-01-01/extension/register";
pub const EXT_NEXT: &str = "/2020-01-01/extension/event/next";

pub fn config() -> RuntimeApiConfig {
    let mut config = RuntimeApiConfig::new("my-function", "$LATEST", "123456789012");
    config.handler = Some("index.handler".into());
    config
}

pub async fn start(config: RuntimeApiConfig) -> Arc<RuntimeApi> {
    Arc::new(
        RuntimeApi::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config)
            .await
            .expect("bind"),
    )
}

pub fn response_path(id: &str) -> String {
    format!("/2018-06-01/runtime/invocation/{id}/response")
}

pub fn error_path(id: &str) -> String {
    format!("/2018-06-01/runtime/invocation/{id}/error")
}

/// Awaits `fut`, failing the test if it takes longer than [`SOON`].
pub async fn soon<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(SOON, fut).await.expect("timed out")
}

/// True if `fut` is still unfinished after [`STILL_PENDING`].
pub async fn stays_pending<F: Future + Unpin>(fut: &mut F) -> bool {
    tokio::time::timeout(STILL_PENDING, fut).await.is_err()
}

/// Polls `check` until it is true, failing the test after [`SOON`].
pub async fn eventually(check: impl FnMut() -> bool, what: &str) {
    kindling_test_support::eventually_async(what, SOON, check).await;
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names exactly as received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

pub struct Conn {
    stream: BufReader<TcpStream>,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream: BufReader::new(stream),
        }
    }

    /// Writes a request with a `Content-Length` body.
    pub async fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || method != "GET" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        self.write_raw(&bytes).await;
    }

    pub async fn write_raw(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).await.expect("write");
    }

    /// Writes raw bytes, returning false if the peer has closed the connection.
    pub async fn try_write_raw(&mut self, bytes: &[u8]) -> bool {
        self.stream.get_mut().write_all(bytes).await.is_ok()
    }

    pub async fn read_response(&mut self) -> std::io::Result<HttpResponse> {
        let mut line = String::new();
        if self.stream.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("header line");
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let mut res = HttpResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if res
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            loop {
                let mut size = String::new();
                self.stream.read_line(&mut size).await?;
                let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
                let mut chunk = vec![0; size + 2];
                self.stream.read_exact(&mut chunk).await?;
                if size == 0 {
                    break;
                }
                res.body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(len) = res.header("content-length") {
            let mut body = vec![0; len.parse().expect("content-length")];
            self.stream.read_exact(&mut body).await?;
            res.body = body;
        }
        Ok(res)
    }

    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        self.send(method, path, headers, body).await;
        soon(self.read_response()).await.expect("response")
    }

    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        self.request("GET", path, headers, b"").await
    }

    pub async fn post(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        self.request("POST", path, headers, body).await
    }
}

/// Registers an extension over a fresh connection; returns its identifier.
pub async fn register(addr: SocketAddr, name: &str, events: &[&str]) -> String {
    let body = serde_json::json!({ "events": events }).to_string();
    let res = Conn::connect(addr)
        .await
        .post(
            REGISTER,
            &[("Lambda-Extension-Name", name)],
            body.as_bytes(),
        )
        .await;
    assert_eq!(
        res.status,
        200,
        "register: {}",
        String::from_utf8_lossy(&res.body)
    );
    res.header("Lambda-Extension-Identifier")
        .expect("identifier")
        .to_owned()
}

/// Starts a long poll on a fresh connection in its own task.
pub fn spawn_get(
    addr: SocketAddr,
    path: &'static str,
    headers: Vec<(String, String)>,
) -> tokio::task::JoinHandle<(Conn, HttpResponse)> {
    tokio::spawn(async move {
        let mut conn = Conn::connect(addr).await;
        let h: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        conn.send("GET", path, &h, b"").await;
        let res = conn.read_response().await.expect("response");
        (conn, res)
    })
}

/// Starts the runtime's `/next` long poll in its own task.
pub fn spawn_next(addr: SocketAddr) -> tokio::task::JoinHandle<(Conn, HttpResponse)> {
    spawn_get(addr, NEXT, Vec::new())
}

/// Starts an extension's `/extension/event/next` long poll in its own task.
pub fn spawn_ext_next(addr: SocketAddr, id: &str) -> tokio::task::JoinHandle<(Conn, HttpResponse)> {
    spawn_get(
        addr,
        EXT_NEXT,
        vec![("Lambda-Extension-Identifier".into(), id.into())],
    )
}
