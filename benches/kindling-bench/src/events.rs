//! `kindling-bench events`: Event (asynchronous) invokes sent back to back on `--conns`
//! keep-alive connections spread round-robin over one or more nodes (`--addrs a,b,c`), for
//! `--secs` after `--warmup-ms`. Prints one line: accepted (202) count and rate, 202 latency
//! percentiles, other answers. The caller measures CPU and database activity around it
//! (benches/cluster.py). Every event has a distinct id in its body.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::http::{Conn, Error};

/// Outcome of one run.
pub struct EventStats {
    /// 202 answers within the measured window.
    pub accepted: u64,
    /// 202 answers in all, warm-up included (events the nodes must run).
    pub accepted_total: u64,
    pub other: u64,
    pub first_error: Option<String>,
    pub lat_ns: Vec<u64>,
    pub elapsed: Duration,
}

impl EventStats {
    fn pct_us(&self, p: f64) -> f64 {
        if self.lat_ns.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.lat_ns.len() as f64).ceil() as usize;
        self.lat_ns[rank.clamp(1, self.lat_ns.len()) - 1] as f64 / 1000.0
    }
}

pub fn run(
    addrs: &[SocketAddr],
    path: &str,
    conns: usize,
    threads: usize,
    warmup: Duration,
    measure: Duration,
) -> Result<EventStats, Error> {
    if addrs.is_empty() {
        return Err("--addrs needs at least one HOST:PORT".into());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    Ok(rt.block_on(async {
        let t0 = Instant::now() + Duration::from_millis(200);
        let start = t0 + warmup;
        let end = start + measure;
        let mut handles = Vec::new();
        for c in 0..conns {
            let addr = addrs[c % addrs.len()];
            let path = path.to_string();
            handles.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let (mut total, mut other) = (0u64, 0u64);
                let mut first_error = None;
                let mut conn = match Conn::connect(addr).await {
                    Ok(c) => c,
                    Err(e) => return (lat, 0, 1, Some(format!("connect {addr}: {e}"))),
                };
                tokio::time::sleep_until(t0.into()).await;
                let mut i = 0u64;
                loop {
                    let s = Instant::now();
                    if s >= end {
                        break;
                    }
                    i += 1;
                    let body = Bytes::from(format!("{{\"bench\":\"cluster\",\"id\":\"{c}-{i}\"}}"));
                    let r = conn
                        .request("POST", &path, &[("x-amz-invocation-type", "Event")], body)
                        .await;
                    let e = Instant::now();
                    match r {
                        Ok(r) if r.status == 202 => {
                            total += 1;
                            if s >= start && e <= end {
                                lat.push((e - s).as_nanos() as u64);
                            }
                        }
                        Ok(r) => {
                            other += 1;
                            first_error.get_or_insert_with(|| {
                                format!("HTTP {} from {addr}: {}", r.status, r.text())
                            });
                        }
                        Err(err) => {
                            other += 1;
                            first_error.get_or_insert_with(|| format!("transport {addr}: {err}"));
                            match Conn::connect(addr).await {
                                Ok(c) => conn = c,
                                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                            }
                        }
                    }
                }
                (lat, total, other, first_error)
            }));
        }
        let mut stats = EventStats {
            accepted: 0,
            accepted_total: 0,
            other: 0,
            first_error: None,
            lat_ns: Vec::new(),
            elapsed: measure,
        };
        for h in handles {
            if let Ok((lat, total, other, err)) = h.await {
                stats.accepted += lat.len() as u64;
                stats.lat_ns.extend(lat);
                stats.accepted_total += total;
                stats.other += other;
                if stats.first_error.is_none() {
                    stats.first_error = err;
                }
            }
        }
        stats.lat_ns.sort_unstable();
        stats
    }))
}

/// The line `kindling-bench events` prints (parsed by benches/cluster.py).
pub fn line(s: &EventStats) -> String {
    format!(
        "accepted={} accepted_total={} other={} rate={:.0} p50={:.1}us p99={:.1}us {}",
        s.accepted,
        s.accepted_total,
        s.other,
        s.accepted as f64 / s.elapsed.as_secs_f64(),
        s.pct_us(50.0),
        s.pct_us(99.0),
        s.first_error.as_deref().unwrap_or("")
    )
}
