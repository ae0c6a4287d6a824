//! Load generation: a single keep-alive client for latency, N concurrent keep-alive clients for
//! throughput. Every loop is bounded by a request count and a wall-clock deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::http::Conn;
use crate::procfs::{CpuSnap, CpuUse};

/// Outcome counts and latencies of one measurement.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Latencies of successful (200, no function error) requests, in nanoseconds, sorted.
    pub lat_ns: Vec<u64>,
    pub ok: u64,
    pub throttled: u64,
    pub function_errors: u64,
    /// Other HTTP statuses and transport errors.
    pub errors: u64,
    pub first_error: Option<String>,
    /// Requests sent, warm-up and after the window included (throughput runs).
    pub sent: u64,
    pub elapsed: Duration,
    pub cpu: CpuUse,
}

impl Stats {
    /// Pools another repetition into this one (latencies, counts, time and CPU add up).
    pub fn pool(&mut self, o: Stats) {
        self.elapsed += o.elapsed;
        self.cpu.add(&o.cpu);
        self.merge(o);
        self.finish();
    }

    fn merge(&mut self, o: Stats) {
        self.lat_ns.extend(o.lat_ns);
        self.ok += o.ok;
        self.sent += o.sent;
        self.throttled += o.throttled;
        self.function_errors += o.function_errors;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
    }

    fn finish(&mut self) {
        self.lat_ns.sort_unstable();
    }

    /// Nearest-rank percentile in microseconds.
    pub fn pct_us(&self, p: f64) -> f64 {
        if self.lat_ns.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.lat_ns.len() as f64).ceil() as usize;
        self.lat_ns[rank.clamp(1, self.lat_ns.len()) - 1] as f64 / 1000.0
    }

    pub fn max_us(&self) -> f64 {
        self.lat_ns
            .last()
            .map(|v| *v as f64 / 1000.0)
            .unwrap_or(f64::NAN)
    }

    pub fn mean_us(&self) -> f64 {
        if self.lat_ns.is_empty() {
            return f64::NAN;
        }
        self.lat_ns.iter().sum::<u64>() as f64 / self.lat_ns.len() as f64 / 1000.0
    }

    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// Count of requests slower than `us`.
    pub fn slower_than(&self, us: u64) -> usize {
        let ns = us * 1000;
        self.lat_ns.len() - self.lat_ns.partition_point(|v| *v <= ns)
    }
}

/// What to send.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// `POST` for invokes; function URLs are also measured with `GET`.
    pub method: &'static str,
    pub path: String,
    pub body: Bytes,
    /// The body every answer must have (`None`: the request body, an echo).
    pub expect: Option<Bytes>,
    /// PID of the server whose CPU (and children's CPU) is accounted.
    pub server_pid: i32,
}

impl Target {
    fn expected(&self) -> &Bytes {
        self.expect.as_ref().unwrap_or(&self.body)
    }
}

fn same_json(a: &[u8], b: &[u8]) -> bool {
    match (
        serde_json::from_slice::<serde_json::Value>(a),
        serde_json::from_slice::<serde_json::Value>(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn classify(
    stats: &mut Stats,
    res: Result<crate::http::Reply, crate::http::Error>,
    expect: &Bytes,
) -> bool {
    match res {
        Ok(r) if r.status == 200 && r.header("x-amz-function-error").is_none() => {
            if r.body != *expect && !same_json(&r.body, expect) {
                stats.errors += 1;
                if stats.first_error.is_none() {
                    stats.first_error = Some(format!("unexpected body: {}", r.text()));
                }
                return false;
            }
            stats.ok += 1;
            true
        }
        Ok(r) if r.status == 200 => {
            stats.function_errors += 1;
            if stats.first_error.is_none() {
                stats.first_error = Some(format!("function error: {}", r.text()));
            }
            false
        }
        Ok(r) if r.status == 429 => {
            stats.throttled += 1;
            false
        }
        Ok(r) => {
            stats.errors += 1;
            if stats.first_error.is_none() {
                stats.first_error = Some(format!("HTTP {}: {}", r.status, r.text()));
            }
            false
        }
        Err(e) => {
            stats.errors += 1;
            if stats.first_error.is_none() {
                stats.first_error = Some(format!("transport: {e}"));
            }
            false
        }
    }
}

/// Single client, one keep-alive connection, `warmup` unrecorded requests then `n` recorded ones,
/// on a current-thread runtime (no cross-thread wake-ups in the client).
pub fn latency(t: &Target, warmup: usize, n: usize, max_time: Duration) -> Stats {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let mut stats = Stats::default();
        let mut conn = match Conn::connect(t.addr).await {
            Ok(c) => c,
            Err(e) => {
                stats.errors = 1;
                stats.first_error = Some(format!("connect: {e}"));
                return stats;
            }
        };
        let deadline = Instant::now() + max_time;
        let mut scratch = Stats::default();
        for _ in 0..warmup {
            let r = conn.request(t.method, &t.path, &[], t.body.clone()).await;
            let failed_transport = r.is_err();
            classify(&mut scratch, r, t.expected());
            if failed_transport && let Ok(c) = Conn::connect(t.addr).await {
                conn = c;
            }
            if Instant::now() > deadline {
                break;
            }
        }
        stats.lat_ns.reserve(n);
        let cpu0 = CpuSnap::take(t.server_pid);
        let start = Instant::now();
        for _ in 0..n {
            let t0 = Instant::now();
            let r = conn.request(t.method, &t.path, &[], t.body.clone()).await;
            let dt = t0.elapsed();
            let failed_transport = r.is_err();
            if classify(&mut stats, r, t.expected()) {
                stats.lat_ns.push(dt.as_nanos() as u64);
            }
            if failed_transport && let Ok(c) = Conn::connect(t.addr).await {
                conn = c;
            }
            if Instant::now() > deadline {
                break;
            }
        }
        stats.elapsed = start.elapsed();
        stats.cpu = CpuUse::between(&cpu0, &CpuSnap::take(t.server_pid));
        stats.finish();
        stats
    })
}

/// `conns` clients, each with its own keep-alive connection, sending back to back. All run for
/// `warmup`, then requests started and finished within the next `measure` are recorded.
pub fn throughput(
    t: &Target,
    conns: usize,
    threads: usize,
    warmup: Duration,
    measure: Duration,
    max_requests_per_conn: u64,
) -> Stats {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let t0 = Instant::now() + Duration::from_millis(200);
        let start = t0 + warmup;
        let end = start + measure;
        let snap = Arc::new(tokio::sync::Mutex::new(None::<(CpuSnap, CpuSnap)>));
        // A timer task takes CPU snapshots exactly at the window's edges.
        let pid = t.server_pid;
        let snapper = {
            let snap = snap.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(start.into()).await;
                let a = CpuSnap::take(pid);
                tokio::time::sleep_until(end.into()).await;
                let b = CpuSnap::take(pid);
                *snap.lock().await = Some((a, b));
            })
        };
        let mut handles = Vec::new();
        for _ in 0..conns {
            let t = t.clone();
            handles.push(tokio::spawn(async move {
                let mut stats = Stats::default();
                let mut conn = match Conn::connect(t.addr).await {
                    Ok(c) => c,
                    Err(e) => {
                        stats.errors = 1;
                        stats.first_error = Some(format!("connect: {e}"));
                        return stats;
                    }
                };
                tokio::time::sleep_until(t0.into()).await;
                let mut warm = Stats::default();
                let mut sent = 0u64;
                while sent < max_requests_per_conn {
                    let s = Instant::now();
                    if s >= end {
                        break;
                    }
                    sent += 1;
                    let r = conn.request(t.method, &t.path, &[], t.body.clone()).await;
                    let e = Instant::now();
                    let failed_transport = r.is_err();
                    if s >= start && e <= end {
                        if classify(&mut stats, r, t.expected()) {
                            stats.lat_ns.push((e - s).as_nanos() as u64);
                        }
                    } else {
                        classify(&mut warm, r, t.expected());
                    }
                    if failed_transport {
                        match Conn::connect(t.addr).await {
                            Ok(c) => conn = c,
                            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                    }
                }
                stats.sent = sent;
                stats
            }));
        }
        let mut total = Stats::default();
        for h in handles {
            if let Ok(s) = h.await {
                total.merge(s);
            }
        }
        let _ = snapper.await;
        total.elapsed = measure;
        if let Some((a, b)) = *snap.lock().await {
            total.cpu = CpuUse::between(&a, &b);
        }
        total.finish();
        total
    })
}
