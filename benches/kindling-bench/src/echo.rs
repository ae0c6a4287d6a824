//! Reference servers that set the floor for Kindling's figures on this machine: a bare HTTP/1.1
//! echo (one hop) and a forwarding proxy in front of such an echo (two hops, the shape of
//! client -> Kindling -> runtime). Both are single-threaded tokio + hyper, TCP_NODELAY, keep-alive.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::http::{Conn, Error};

/// Serves until killed. With `upstream`, every request body is forwarded to `upstream` (one
/// upstream keep-alive connection per client connection) and its answer returned; without it,
/// the body is echoed.
pub fn serve(port: u16, upstream: Option<SocketAddr>) -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(async move {
                let up = match upstream {
                    Some(a) => match Conn::connect(a).await {
                        Ok(c) => Some(std::sync::Arc::new(tokio::sync::Mutex::new(c))),
                        Err(_) => return,
                    },
                    None => None,
                };
                let svc = service_fn(move |req: Request<Incoming>| {
                    let up = up.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let out = match up {
                            Some(c) => match c.lock().await.post(&path, body).await {
                                Ok(r) => r.body,
                                Err(_) => Bytes::from_static(b"upstream error"),
                            },
                            None => body,
                        };
                        let mut res = Response::new(Full::new(out));
                        res.headers_mut().insert(
                            "content-type",
                            hyper::header::HeaderValue::from_static("application/json"),
                        );
                        Ok::<_, Infallible>(res)
                    }
                });
                let _ = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}

/// Command line to start a reference server as a child process of the bench.
pub fn command(port: u16, upstream_port: Option<u16>) -> Command {
    let exe = std::env::current_exe().expect("current exe");
    let mut cmd = Command::new(exe);
    cmd.arg("echo-serve").arg("--port").arg(port.to_string());
    if let Some(u) = upstream_port {
        cmd.arg("--upstream").arg(format!("127.0.0.1:{u}"));
        // The proxy starts the echo server as its own child (so that its CPU is "children").
        cmd.arg("--spawn-upstream");
    }
    cmd.stdin(Stdio::null());
    cmd
}
