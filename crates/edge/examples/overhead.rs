//! What the edge adds to a request, measured in one process: the same trivial service (a
//! small response with `x-amzn-requestid`) served over loopback by plain hyper HTTP/1.1 (what
//! `axum::serve` did) and by `kindling_edge::serve` (timers, limits, origin, output
//! rewrite), one keep-alive client sending small POSTs; and `read_body` (timeout, memory
//! budget) against `http_body_util`'s plain collect for a small body.
//!
//! `cargo run --release -p kindling-edge --example overhead [ROUNDS] [REQUESTS]`
//! Prints, per round, the server thread's CPU time and the client's wall time per request;
//! rounds alternate between the two servers so background load falls on both alike.

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use kindling_edge::{EdgeConfig, Rejection, RequestContext};
use nix::time::{ClockId, clock_gettime};

fn thread_cpu() -> Duration {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let limits = req
        .extensions()
        .get::<RequestContext>()
        .map(|c| c.body_limits.clone());
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = match limits {
        Some(l) => kindling_edge::read_body(req.into_body(), declared, 6 << 20, &l)
            .await
            .map(|b| b.bytes)
            .unwrap_or_default(),
        None => req
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default(),
    };
    let mut res = Response::new(Full::new(Bytes::from(format!("{{\"n\":{}}}", body.len()))));
    res.headers_mut().insert(
        "x-amzn-requestid",
        "0b1d5e4e-3c1c-4d4a-9c4e-000000000000".parse().unwrap(),
    );
    Ok(res)
}

/// Serves on a current-thread runtime in its own thread; returns the port and a handle that
/// reports the thread's CPU time when asked.
fn server(
    edge: bool,
) -> (
    u16,
    std::sync::mpsc::Sender<std::sync::mpsc::Sender<Duration>>,
) {
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let (ask_tx, ask_rx) = std::sync::mpsc::channel::<std::sync::mpsc::Sender<Duration>>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            port_tx.send(listener.local_addr().unwrap().port()).unwrap();
            tokio::spawn(async move {
                loop {
                    if let Ok(reply) = ask_rx.try_recv() {
                        let _ = reply.send(thread_cpu());
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            });
            if edge {
                let renderer: kindling_edge::Renderer =
                    Arc::new(|_: Rejection| Response::new(Bytes::from_static(b"{}")));
                let svc = tower::service_fn(handle);
                kindling_edge::serve(
                    listener,
                    svc,
                    EdgeConfig::default(),
                    renderer,
                    std::future::pending(),
                )
                .await;
            } else {
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    stream.set_nodelay(true).unwrap();
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(
                                TokioIo::new(stream),
                                hyper::service::service_fn(handle),
                            )
                            .await;
                    });
                }
            }
        });
    });
    (port_rx.recv().unwrap(), ask_tx)
}

fn cpu_of(ask: &std::sync::mpsc::Sender<std::sync::mpsc::Sender<Duration>>) -> Duration {
    let (tx, rx) = std::sync::mpsc::channel();
    ask.send(tx).unwrap();
    rx.recv().unwrap()
}

/// `n` sequential requests on one keep-alive connection; returns the wall time per request.
fn client(port: u16, n: usize) -> Duration {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    let req = b"POST /2015-03-31/functions/echo/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"hello\":\"you\"}\n";
    let mut buf = vec![0u8; 4096];
    let started = Instant::now();
    for _ in 0..n {
        s.write_all(req).unwrap();
        let mut got = 0;
        loop {
            got += s.read(&mut buf[got..]).unwrap();
            let text = &buf[..got];
            if let Some(end) = text.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&text[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().unwrap())
                    .unwrap();
                if got >= end + 4 + len {
                    break;
                }
            }
        }
    }
    started.elapsed() / n as u32
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let plain = server(false);
    let edge = server(true);
    client(plain.0, 2000);
    client(edge.0, 2000);
    let mut results: Vec<(&str, f64, f64)> = Vec::new();
    for round in 0..rounds {
        for (name, (port, ask)) in [("plain hyper", &plain), ("edge", &edge)] {
            let cpu0 = cpu_of(ask);
            let wall = client(*port, n);
            let cpu = (cpu_of(ask) - cpu0).as_secs_f64() * 1e6 / n as f64;
            let wall = wall.as_secs_f64() * 1e6;
            println!(
                "round {round}: {name:12} server CPU {cpu:6.2} us/request, client round trip {wall:6.1} us"
            );
            results.push((name, cpu, wall));
        }
    }
    for name in ["plain hyper", "edge"] {
        let mut cpu: Vec<f64> = results
            .iter()
            .filter(|r| r.0 == name)
            .map(|r| r.1)
            .collect();
        let mut wall: Vec<f64> = results
            .iter()
            .filter(|r| r.0 == name)
            .map(|r| r.2)
            .collect();
        cpu.sort_by(f64::total_cmp);
        wall.sort_by(f64::total_cmp);
        println!(
            "{name:12} median server CPU {:6.2} us/request (min {:6.2}), median round trip {:6.1} us",
            cpu[cpu.len() / 2],
            cpu[0],
            wall[wall.len() / 2]
        );
    }
}
