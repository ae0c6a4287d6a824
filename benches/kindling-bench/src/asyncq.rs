//! `kindling-bench async`: asynchronous invocation — Event invokes accepted per second (each
//! 202 only after the event is durably committed), and the latency from sending an Event
//! invoke to the function starting to run when the queue is idle.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::http::{Conn, Error};
use crate::server::{Api, invoke_path, make_zip, start_kindling};

/// On each event the function connects to the bench's listener and sends the event's id, so
/// the bench sees the moment the function runs.
const PING_APP: &str = "import socket\n\n\ndef handler(event, context):\n    if 'port' in event:\n        with socket.create_connection(('127.0.0.1', event['port'])) as s:\n            s.sendall(str(event['id']).encode())\n    return event\n";

/// A function that keeps its one environment busy (for measuring the intake alone).
const SLEEP_APP: &str =
    "import time\n\n\ndef handler(event, context):\n    time.sleep(5)\n    return event\n";

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p / 100.0).round() as usize]
}

/// Sends Event invokes on `conns` keep-alive connections for `secs`; returns (accepted/s,
/// p50 ms, p99 ms, non-202 answers).
async fn accept_rate(
    addr: SocketAddr,
    path: &str,
    conns: usize,
    secs: f64,
) -> (f64, f64, f64, u64) {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for c in 0..conns {
        let path = path.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut bad = 0u64;
            let Ok(mut conn) = Conn::connect(addr).await else {
                return (lat, 1);
            };
            let mut i = 0u64;
            while Instant::now() < end {
                let body = Bytes::from(format!("{{\"id\":\"{c}-{i}\"}}"));
                i += 1;
                let t0 = Instant::now();
                match conn
                    .request("POST", &path, &[("x-amz-invocation-type", "Event")], body)
                    .await
                {
                    Ok(r) if r.status == 202 => lat.push(t0.elapsed().as_secs_f64() * 1000.0),
                    _ => bad += 1,
                }
            }
            (lat, bad)
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    let mut bad = 0;
    for t in tasks {
        if let Ok((l, b)) = t.await {
            all.extend(l);
            bad += b;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    (
        all.len() as f64 / elapsed,
        pct(&all, 50.0),
        pct(&all, 99.0),
        bad,
    )
}

/// Runs the async benchmark against a fresh Kindling; returns the report text.
pub fn run(
    kindling: &Path,
    work: &Path,
    isolation: &str,
    conns: &[usize],
    secs: f64,
    samples: usize,
) -> Result<String, Error> {
    let mut m = start_kindling(
        kindling,
        isolation,
        300,
        work,
        &format!("async-{isolation}"),
        &[],
    )?;
    let addr = m.addr;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut out = String::new();
    let result: Result<(), Error> = rt.block_on(async {
        let mut api = Api::wait_ready(addr, Duration::from_secs(20)).await?;
        let zip = make_zip(&[("app.py", 0o644, PING_APP.as_bytes())]);
        api.create_function("async-ping", "python3.11", "app.handler", &zip, 128).await?;
        let path = invoke_path("async-ping");

        // 1. Latency from sending the Event invoke to the function running, queue idle.
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(false)?;
        let port = listener.local_addr()?.port();
        let mut conn = Conn::connect(addr).await?;
        let mut to_start = Vec::new();
        let mut to_202 = Vec::new();
        for i in 0..samples + 1 {
            let body = Bytes::from(format!("{{\"id\":{i},\"port\":{port}}}"));
            let t0 = Instant::now();
            let r = conn.request("POST", &path, &[("x-amz-invocation-type", "Event")], body).await?;
            let accepted = t0.elapsed();
            if r.status != 202 {
                return Err(format!("Event invoke answered {}", r.status).into());
            }
            let l = listener.try_clone()?;
            let ran = tokio::task::spawn_blocking(move || l.accept().map(|_| Instant::now())).await??;
            if i > 0 {
                // The first sample includes the cold start.
                to_202.push(accepted.as_secs_f64() * 1000.0);
                to_start.push((ran - t0).as_secs_f64() * 1000.0);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        to_202.sort_by(f64::total_cmp);
        to_start.sort_by(f64::total_cmp);
        out.push_str(&format!(
            "ASYNC (Event) INVOCATION - kindling --isolation {isolation}, python3.11 function\n\
             202 (durably queued) latency, idle: p50 {:.2} ms  p90 {:.2} ms   ({} samples)\n\
             send -> function running, idle:   p50 {:.2} ms  p90 {:.2} ms\n",
            pct(&to_202, 50.0),
            pct(&to_202, 90.0),
            to_202.len(),
            pct(&to_start, 50.0),
            pct(&to_start, 90.0)
        ));

        // 2. Accepted events per second (the queue drains in parallel).
        out.push_str("accepted Event invokes/s (each 202 after a durable, fsync'd commit):\n");
        for &c in conns {
            let (rate, p50, p99, bad) = accept_rate(addr, &path, c, secs).await;
            out.push_str(&format!(
                "  {c:>3} connections: {rate:>8.0} events/s   202 p50 {p50:.2} ms  p99 {p99:.2} ms  non-202 {bad}\n"
            ));
        }
        Ok(())
    });
    m.stop();
    result?;

    // 3. The intake alone: one async worker and a function that sleeps, so that draining the
    // queue takes no CPU from accepting.
    let mut m = start_kindling(
        kindling,
        isolation,
        300,
        work,
        &format!("async-intake-{isolation}"),
        &[("KINDLING_ASYNC_WORKERS", "1")],
    )?;
    let addr = m.addr;
    let result: Result<(), Error> = rt.block_on(async {
        let mut api = Api::wait_ready(addr, Duration::from_secs(20)).await?;
        let zip = make_zip(&[("app.py", 0o644, SLEEP_APP.as_bytes())]);
        api.create_function("async-sleep", "python3.11", "app.handler", &zip, 128).await?;
        let path = invoke_path("async-sleep");
        out.push_str("accepted Event invokes/s, intake alone (1 async worker, the function sleeps):\n");
        for &c in conns {
            let (rate, p50, p99, bad) = accept_rate(addr, &path, c, secs).await;
            out.push_str(&format!(
                "  {c:>3} connections: {rate:>8.0} events/s   202 p50 {p50:.2} ms  p99 {p99:.2} ms  non-202 {bad}\n"
            ));
        }
        Ok(())
    });
    m.stop();
    result?;
    Ok(out)
}
