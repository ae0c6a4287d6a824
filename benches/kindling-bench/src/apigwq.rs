//! `kindling-bench apigw`: the API Gateway front door's cost. One Kindling, the warm Rust echo
//! function (`lambda_runtime`), and in the same run, in alternating turns:
//! - **Invoke**: `POST /2015-03-31/functions/echo-rs/invocations` with `{}`;
//! - **HTTP API**: `GET /execute-api/<api-id>/bench` through a quick-created HTTP API (route
//!   `$default`, payload format 2.0, permission check, event built, the function's inferred
//!   result mapped back).
//!
//! Single-client latency (p50/p90/p99) over keep-alive connections, then throughput at several
//! client counts. The overhead is the difference of the two rows.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;

use crate::http::{Conn, Error};
use crate::server::{Api, start_kindling};

#[derive(Clone)]
struct Route {
    label: &'static str,
    method: &'static str,
    path: String,
    body: Bytes,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p / 100.0).round() as usize]
}

async fn once(conn: &mut Conn, r: &Route) -> Result<(), Error> {
    let reply = conn.request(r.method, &r.path, &[], r.body.clone()).await?;
    if reply.status != 200 || reply.header("x-amz-function-error").is_some() {
        return Err(format!("{}: HTTP {} {}", r.label, reply.status, reply.text()).into());
    }
    Ok(())
}

async fn post_json(conn: &mut Conn, path: &str, body: Value) -> Result<Value, Error> {
    let r = conn.post(path, Bytes::from(body.to_string())).await?;
    if !(200..300).contains(&r.status) {
        return Err(format!("POST {path}: HTTP {} {}", r.status, r.text()).into());
    }
    Ok(serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

/// Latencies (µs) of `n` requests on one connection after `warmup`.
fn latency(addr: SocketAddr, r: &Route, warmup: usize, n: usize) -> Result<Vec<f64>, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut conn = Conn::connect(addr).await?;
        for _ in 0..warmup {
            once(&mut conn, r).await?;
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            once(&mut conn, r).await?;
            out.push(t.elapsed().as_secs_f64() * 1e6);
        }
        Ok(out)
    })
}

/// Requests per second with `conns` keep-alive clients for `secs`; (ok, errors).
fn throughput(addr: SocketAddr, r: &Route, conns: usize, secs: f64) -> Result<(f64, u64), Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let ok = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let warm_until = Instant::now() + Duration::from_millis(300);
        let end = warm_until + Duration::from_secs_f64(secs);
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (r, ok, errors) = (r.clone(), Arc::clone(&ok), Arc::clone(&errors));
            tasks.push(tokio::spawn(async move {
                let Ok(mut conn) = Conn::connect(addr).await else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                loop {
                    let now = Instant::now();
                    if now >= end {
                        break;
                    }
                    let res = once(&mut conn, &r).await;
                    if Instant::now() < warm_until || Instant::now() > end {
                        continue;
                    }
                    match res {
                        Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        Ok((
            ok.load(Ordering::Relaxed) as f64 / secs,
            errors.load(Ordering::Relaxed),
        ))
    })
}

pub struct Plan<'a> {
    pub isolation: &'a str,
    pub reps: usize,
    pub n: usize,
    pub conns: &'a [usize],
    pub secs: f64,
    pub rev: &'a str,
}

pub fn run(kindling: &Path, rust_fn: &[u8], work: &Path, plan: &Plan<'_>) -> Result<String, Error> {
    let srv = start_kindling(kindling, plan.isolation, 300, work, "apigw", &[])?;
    let addr = srv.addr;
    let api_id = crate::block_on(async {
        let mut api = Api::wait_ready(addr, Duration::from_secs(20)).await?;
        api.create_function(
            "echo-rs",
            "provided.al2023",
            "bootstrap",
            &crate::rust_zip(rust_fn, "echo-rs"),
            128,
        )
        .await?;
        let mut conn = Conn::connect(addr).await?;
        post_json(
            &mut conn,
            "/2015-03-31/functions/echo-rs/policy",
            serde_json::json!({"StatementId": "apigw", "Action": "lambda:InvokeFunction",
                               "Principal": "apigateway.amazonaws.com"}),
        )
        .await?;
        let api = post_json(
            &mut conn,
            "/v2/apis",
            serde_json::json!({"name": "bench", "protocolType": "HTTP",
                               "target": "arn:aws:lambda:us-east-1:000000000000:function:echo-rs"}),
        )
        .await?;
        api["apiId"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Error::from(format!("CreateApi answered {api}")))
    })?;
    let routes = [
        Route {
            label: "Invoke (direct)",
            method: "POST",
            path: "/2015-03-31/functions/echo-rs/invocations".into(),
            body: Bytes::from_static(b"{}"),
        },
        Route {
            label: "HTTP API GET",
            method: "GET",
            path: format!("/execute-api/{api_id}/bench"),
            body: Bytes::new(),
        },
    ];
    let mut lat: Vec<Vec<f64>> = vec![Vec::new(); routes.len()];
    for rep in 0..plan.reps {
        for (i, r) in routes.iter().enumerate() {
            let warmup = if rep == 0 { 300 } else { 50 };
            lat[i].extend(latency(addr, r, warmup, plan.n)?);
        }
    }
    let mut tput: Vec<Vec<(usize, f64, u64)>> = vec![Vec::new(); routes.len()];
    for &c in plan.conns {
        for (i, r) in routes.iter().enumerate() {
            let (rps, errors) = throughput(addr, r, c, plan.secs)?;
            tput[i].push((c, rps, errors));
        }
    }
    drop(srv);

    let mut out = String::new();
    out.push_str(&format!(
        "API Gateway front door: HTTP API GET vs direct Invoke, warm Rust echo (lambda_runtime), \
         isolation {}, kindling {}\n\n",
        plan.isolation, plan.rev
    ));
    out.push_str(&format!(
        "Latency, 1 client, keep-alive, {} x {} requests (µs)\n",
        plan.reps, plan.n
    ));
    out.push_str("                    p50      p90      p99\n");
    let mut p50 = Vec::new();
    for (i, r) in routes.iter().enumerate() {
        let mut v = lat[i].clone();
        v.sort_by(f64::total_cmp);
        p50.push(pct(&v, 50.0));
        out.push_str(&format!(
            "{:<16} {:>8.1} {:>8.1} {:>8.1}\n",
            r.label,
            pct(&v, 50.0),
            pct(&v, 90.0),
            pct(&v, 99.0)
        ));
    }
    out.push_str(&format!(
        "front-door overhead at p50: {:.1} µs (target ≤ 15 µs)\n\n",
        p50[1] - p50[0]
    ));
    out.push_str(&format!(
        "Throughput, {:.0} s per row (requests/s)\n",
        plan.secs
    ));
    out.push_str("clients   Invoke   HTTP API   HTTP API / Invoke   errors\n");
    for (j, &c) in plan.conns.iter().enumerate() {
        let (_, a, ea) = tput[0][j];
        let (_, b, eb) = tput[1][j];
        out.push_str(&format!(
            "{c:>7} {a:>8.0} {b:>10.0} {:>18.1}%   {}\n",
            100.0 * b / a.max(1.0),
            ea + eb
        ));
    }
    out.push_str("(target: the HTTP API keeps ≥ 90 % of Invoke's throughput)\n");
    Ok(out)
}
