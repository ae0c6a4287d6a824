//! `kindling-bench sqs`: SQS throughput and latency of Kindling next to `moto_server`, with the
//! SQS JSON 1.0 protocol on keep-alive connections:
//! - SendMessage: messages acknowledged per second (Kindling answers only after the group
//!   commit's fsync) and latency, at several concurrency levels;
//! - ReceiveMessage(10) + DeleteMessageBatch: messages received and deleted per second, from a
//!   pre-filled queue.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};

use crate::http::{Conn, Error};

const BODY: &str = "{\"order\":12345,\"items\":[1,2,3],\"note\":\"a typical small message body\"}";

/// An unverified SigV4 header naming the `sqs` scope (neither server checks signatures here).
const AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host;x-amz-date, Signature=0";

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p / 100.0).round() as usize]
}

/// A keep-alive connection that reconnects when the server closed it (moto_server's werkzeug
/// closes connections; Kindling keeps them).
struct Client {
    addr: SocketAddr,
    conn: Option<Conn>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Result<Client, Error> {
        Ok(Client {
            addr,
            conn: Some(Conn::connect(addr).await?),
        })
    }
}

async fn call(client: &mut Client, op: &str, body: &Value) -> Result<Value, Error> {
    for attempt in 0..2 {
        let mut conn = match client.conn.take() {
            Some(c) => c,
            None => Conn::connect(client.addr).await?,
        };
        match call_once(&mut conn, op, body).await {
            Ok(v) => {
                client.conn = Some(conn);
                return Ok(v);
            }
            // A closed connection: reconnect once (the request never reached the server's
            // handler, or the server closes after every answer).
            Err(e) if attempt == 0 && e.to_string().contains("closed") => continue,
            Err(e) => {
                client.conn = Some(conn);
                return Err(e);
            }
        }
    }
    Err("connection closed twice".into())
}

async fn call_once(conn: &mut Conn, op: &str, body: &Value) -> Result<Value, Error> {
    let target = format!("AmazonSQS.{op}");
    let r = conn
        .request(
            "POST",
            "/",
            &[
                ("x-amz-target", &target),
                ("content-type", "application/x-amz-json-1.0"),
                // moto_server tells services apart by the credential scope (as SDKs sign).
                ("authorization", AUTHORIZATION),
            ],
            Bytes::from(body.to_string()),
        )
        .await?;
    if r.status != 200 {
        return Err(format!("{op}: HTTP {} {}", r.status, r.text()).into());
    }
    if r.body.is_empty() {
        return Ok(json!({}));
    }
    Ok(serde_json::from_slice(&r.body)?)
}

/// One server's figures.
pub struct SqsFigures {
    /// (conns, sends/s, p50 ms, p99 ms, errors)
    pub sends: Vec<(usize, f64, f64, f64, u64)>,
    /// (conns, messages received+deleted/s, receive p50 ms, errors)
    pub drains: Vec<(usize, f64, f64, u64)>,
}

async fn create_queue(addr: SocketAddr, name: &str) -> Result<String, Error> {
    let _ = Conn::connect_retry(addr, Duration::from_secs(30)).await?;
    let mut c = Client::connect(addr).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match call(&mut c, "CreateQueue", &json!({"QueueName": name})).await {
            Ok(v) => return Ok(v["QueueUrl"].as_str().ok_or("no QueueUrl")?.to_string()),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => return Err(e),
        }
    }
}

async fn sends(addr: SocketAddr, url: &str, conns: usize, secs: f64) -> (f64, f64, f64, u64) {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let Ok(mut conn) = Client::connect(addr).await else {
                return (lat, 1u64);
            };
            let body = json!({"QueueUrl": url, "MessageBody": BODY});
            let mut bad = 0;
            while Instant::now() < end {
                let t0 = Instant::now();
                match call(&mut conn, "SendMessage", &body).await {
                    Ok(v) if v.get("MessageId").is_some() => {
                        lat.push(t0.elapsed().as_secs_f64() * 1000.0)
                    }
                    _ => bad += 1,
                }
            }
            (lat, bad)
        }));
    }
    let started = Instant::now();
    let (mut all, mut bad) = (Vec::new(), 0);
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

/// Fills the queue with `n` messages (SendMessageBatch of 10 on 16 connections).
async fn fill(addr: SocketAddr, url: &str, n: usize) -> Result<(), Error> {
    let batches = n.div_ceil(10);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (url, next) = (url.to_string(), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut conn = Client::connect(addr).await?;
            let entries: Vec<Value> = (0..10)
                .map(|i| json!({"Id": format!("e{i}"), "MessageBody": BODY}))
                .collect();
            let body = json!({"QueueUrl": url, "Entries": entries});
            while (next.fetch_add(1, Ordering::Relaxed) as usize) < batches {
                call(&mut conn, "SendMessageBatch", &body).await?;
            }
            Ok::<(), Error>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

async fn drain(addr: SocketAddr, url: &str, conns: usize, secs: f64) -> (f64, f64, u64) {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let deleted = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (url, deleted) = (url.to_string(), Arc::clone(&deleted));
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let Ok(mut conn) = Client::connect(addr).await else {
                return (lat, 1u64);
            };
            let mut bad = 0;
            let receive = json!({"QueueUrl": url, "MaxNumberOfMessages": 10, "VisibilityTimeout": 120});
            while Instant::now() < end {
                let t0 = Instant::now();
                let Ok(got) = call(&mut conn, "ReceiveMessage", &receive).await else {
                    bad += 1;
                    continue;
                };
                lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                let messages = got["Messages"].as_array().cloned().unwrap_or_default();
                if messages.is_empty() {
                    break;
                }
                let entries: Vec<Value> = messages
                    .iter()
                    .enumerate()
                    .map(|(i, m)| json!({"Id": format!("d{i}"), "ReceiptHandle": m["ReceiptHandle"]}))
                    .collect();
                match call(&mut conn, "DeleteMessageBatch", &json!({"QueueUrl": url, "Entries": entries})).await {
                    Ok(r) => {
                        let ok = r["Successful"].as_array().map_or(0, Vec::len);
                        deleted.fetch_add(ok as u64, Ordering::Relaxed);
                    }
                    Err(_) => bad += 1,
                }
            }
            (lat, bad)
        }));
    }
    let started = Instant::now();
    let (mut all, mut bad) = (Vec::new(), 0);
    for t in tasks {
        if let Ok((l, b)) = t.await {
            all.extend(l);
            bad += b;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    (
        deleted.load(Ordering::Relaxed) as f64 / elapsed,
        pct(&all, 50.0),
        bad,
    )
}

/// Measures one server. `fill_per_conn_sec` sizes the pre-filled queue for the drain runs.
pub fn measure(
    addr: SocketAddr,
    conns: &[usize],
    secs: f64,
    drain_fill: usize,
) -> Result<SqsFigures, Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let url = create_queue(addr, "bench-send").await?;
        let mut figures = SqsFigures {
            sends: Vec::new(),
            drains: Vec::new(),
        };
        sends(addr, &url, 4, 0.5).await;
        for &c in conns {
            let (rate, p50, p99, bad) = sends(addr, &url, c, secs).await;
            figures.sends.push((c, rate, p50, p99, bad));
        }
        for (i, &c) in conns.iter().enumerate() {
            let url = create_queue(addr, &format!("bench-drain-{i}")).await?;
            fill(addr, &url, drain_fill).await?;
            let (rate, p50, bad) = drain(addr, &url, c, secs).await;
            figures.drains.push((c, rate, p50, bad));
        }
        Ok(figures)
    })
}

/// The report: both servers side by side, and the targets.
pub fn report(rev: &str, kindling: &SqsFigures, moto: Option<&SqsFigures>, secs: f64) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "SQS benchmark (Kindling {rev}; JSON 1.0 over keep-alive connections; {secs:.0} s per row)\n\n"
    ));
    out.push_str("SendMessage (Kindling answers after the group commit's fsync)\n");
    out.push_str("server     conns    sends/s   p50 ms   p99 ms  errors\n");
    let rows = |out: &mut String, name: &str, f: &SqsFigures| {
        for (c, rate, p50, p99, bad) in &f.sends {
            out.push_str(&format!(
                "{name:<10} {c:>5} {rate:>10.0} {p50:>8.2} {p99:>8.2} {bad:>7}\n"
            ));
        }
    };
    rows(&mut out, "kindling", kindling);
    if let Some(m) = moto {
        rows(&mut out, "moto", m);
    }
    out.push_str("\nReceiveMessage(10) + DeleteMessageBatch from a pre-filled queue\n");
    out.push_str("server     conns  msgs/s   receive p50 ms  errors\n");
    let drains = |out: &mut String, name: &str, f: &SqsFigures| {
        for (c, rate, p50, bad) in &f.drains {
            out.push_str(&format!(
                "{name:<10} {c:>5} {rate:>7.0} {p50:>16.2} {bad:>7}\n"
            ));
        }
    };
    drains(&mut out, "kindling", kindling);
    if let Some(m) = moto {
        drains(&mut out, "moto", m);
    }
    let best_send = kindling.sends.iter().map(|r| r.1).fold(0.0, f64::max);
    let best_drain = kindling.drains.iter().map(|r| r.1).fold(0.0, f64::max);
    out.push_str("\nTargets (2 cores): 10x LocalStack (480 sends/s, 2,200 received+deleted/s) and 100x moto\n");
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    out.push_str(&format!(
        "  sends/s      {best_send:>8.0}  >= 4,800 (10x LocalStack) {}",
        verdict(best_send >= 4_800.0)
    ));
    if let Some(m) = moto {
        let mb = m.sends.iter().map(|r| r.1).fold(0.0, f64::max);
        out.push_str(&format!(
            "; moto best {mb:.0}/s -> {:.0}x {}",
            best_send / mb.max(1e-9),
            verdict(best_send >= 100.0 * mb)
        ));
    }
    out.push('\n');
    out.push_str(&format!(
        "  recv+del/s   {best_drain:>8.0}  >= 22,000 (10x LocalStack) {}",
        verdict(best_drain >= 22_000.0)
    ));
    if let Some(m) = moto {
        let mb = m.drains.iter().map(|r| r.1).fold(0.0, f64::max);
        out.push_str(&format!(
            "; moto best {mb:.0}/s -> {:.0}x {}",
            best_drain / mb.max(1e-9),
            verdict(best_drain >= 100.0 * mb)
        ));
    }
    out.push('\n');
    out
}
