//! `kindling-bench urls`: HTTP GET through a function URL and through an HTTP API (quick
//! create: `$default` route, payload 2.0) to a warm `lambda_http` Rust function, each next to
//! direct `Invoke` of the same function with the payload 2.0 event that front door sends, and
//! next to `cargo lambda watch`'s function-URL emulation serving the very same binary — one
//! run, servers up at once and measured in turns.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::load::{self, Stats, Target};
use crate::server::{Api, Managed, invoke_path, start_cargo_lambda, start_kindling};
use crate::{Args, Error, block_on, progress, rust_zip, tempdir};

const FUNCTION: &str = "http-rs";

/// The event the URL sends for `GET /hello` (what `Invoke` gets in the comparison), so both
/// paths run the same function code on the same input.
fn url_event(url_id: &str) -> String {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/hello", "rawQueryString": "",
        "headers": {"host": "127.0.0.1"},
        "requestContext": {
            "accountId": "000000000000", "apiId": url_id, "authentication": null, "authorizer": null,
            "domainName": format!("{url_id}.lambda-url.us-east-1.on.aws"), "domainPrefix": url_id,
            "http": {"method": "GET", "path": "/hello", "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": null},
            "requestId": "bench", "routeKey": "$default", "stage": "$default",
            "time": "06/Dec/2026:00:00:00 +0000", "timeEpoch": 1796515200000_i64
        },
        "pathParameters": null, "isBase64Encoded": false, "stageVariables": null
    })
    .to_string()
}

/// The event the HTTP API sends for `GET /execute-api/<api-id>/hello` (what `Invoke` gets in
/// the comparison).
fn api_event(api_id: &str) -> String {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/hello", "rawQueryString": "",
        "headers": {"host": "127.0.0.1", "x-forwarded-for": "127.0.0.1",
                    "x-forwarded-port": "80", "x-forwarded-proto": "http"},
        "requestContext": {
            "accountId": "000000000000", "apiId": api_id,
            "domainName": "127.0.0.1", "domainPrefix": "127",
            "http": {"method": "GET", "path": "/hello", "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": ""},
            "requestId": "bench", "routeKey": "$default", "stage": "$default",
            "time": "06/Dec/2026:00:00:00 +0000", "timeEpoch": 1796515200000_i64
        },
        "isBase64Encoded": false
    })
    .to_string()
}

struct Subject {
    label: &'static str,
    target: Target,
}

fn first_answer(t: &Target) -> Result<Bytes, Error> {
    let mut t = t.clone();
    t.expect = Some(Bytes::new());
    let r = block_on(async {
        let mut c = crate::http::Conn::connect_retry(t.addr, Duration::from_secs(300)).await?;
        c.request(t.method, &t.path, &[], t.body.clone()).await
    })?;
    if r.status != 200 {
        return Err(format!("{} {}: HTTP {} {}", t.method, t.path, r.status, r.text()).into());
    }
    Ok(r.body)
}

fn wait_cargo_lambda(srv: &Managed, path: &str) -> Result<(), Error> {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let r = block_on(async {
            let mut c = crate::http::Conn::connect_retry(srv.addr, Duration::from_secs(30)).await?;
            c.get(path).await
        });
        match r {
            Ok(r) if r.status == 200 => return Ok(()),
            _ if std::time::Instant::now() > deadline => {
                return Err(format!(
                    "cargo lambda watch never answered {path}\n{}",
                    srv.log_tail()
                )
                .into());
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn pooled(reps: &[Stats]) -> Stats {
    let mut all = Stats::default();
    for r in reps {
        all.pool(r.clone());
    }
    all
}

fn per(total: f64, s: &Stats) -> f64 {
    total / s.ok.max(1) as f64
}

pub fn run_urls(a: &Args) -> Result<(), Error> {
    let kindling = a.path("kindling").ok_or("--kindling BIN is required")?;
    let http_fn_path = a
        .path("http-fn")
        .ok_or("--http-fn BIN is required (lambda_http function)")?;
    let http_fn = std::fs::read(&http_fn_path)?;
    let quick = a.flags.contains("quick");
    let reps: usize = a.num("reps", if quick { 1 } else { 3 });
    let n: usize = a.num("n", if quick { 1000 } else { 3000 });
    let warmup: usize = a.num("warmup", 300);
    let conns: Vec<usize> = a
        .list("conns", "1,4,16")
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    let isolation = a.get("isolation").unwrap_or("process").to_string();
    let tp_measure = Duration::from_millis(a.num("tp-measure-ms", 2000));
    let work = tempdir()?;

    progress(&format!("kindling {isolation}: starting"));
    let mut srv = start_kindling(&kindling, &isolation, 600, &work, "urls", &[])?;
    let mut api = block_on(Api::wait_ready(srv.addr, Duration::from_secs(30)))
        .map_err(|e| format!("{e}\n{}", srv.log_tail()))?;
    block_on(api.create_function(
        FUNCTION,
        "provided.al2023",
        "bootstrap",
        &rust_zip(&http_fn, FUNCTION),
        128,
    ))?;
    let created = block_on(api.conn.post(
        &format!("/2021-10-31/functions/{FUNCTION}/url"),
        Bytes::from_static(br#"{"AuthType":"NONE"}"#),
    ))?;
    if created.status != 201 {
        return Err(format!(
            "CreateFunctionUrlConfig: HTTP {} {}",
            created.status,
            created.text()
        )
        .into());
    }
    let url: Value = serde_json::from_slice(&created.body)?;
    let url = url["FunctionUrl"]
        .as_str()
        .ok_or("no FunctionUrl")?
        .to_string();
    let url_path = url
        .find("/lambda-url/")
        .map(|i| url[i..].to_string())
        .ok_or("odd FunctionUrl")?;
    let url_id = url_path
        .trim_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let permission = json!({"StatementId": "url", "Action": "lambda:InvokeFunctionUrl",
                            "Principal": "*", "FunctionUrlAuthType": "NONE"});
    let p = block_on(api.conn.post(
        &format!("/2015-03-31/functions/{FUNCTION}/policy"),
        Bytes::from(permission.to_string()),
    ))?;
    if p.status != 201 {
        return Err(format!("AddPermission: HTTP {} {}", p.status, p.text()).into());
    }

    let url_target = Target {
        addr: srv.addr,
        method: "GET",
        path: format!("{url_path}hello"),
        body: Bytes::new(),
        expect: Some(Bytes::from_static(b"hello")),
        server_pid: srv.pid(),
    };
    let mut invoke_target = Target {
        addr: srv.addr,
        method: "POST",
        path: invoke_path(FUNCTION),
        body: Bytes::from(url_event(&url_id)),
        expect: None,
        server_pid: srv.pid(),
    };
    let through_url = first_answer(&url_target)?;
    if &through_url[..] != b"hello" {
        return Err(format!(
            "the URL answered {:?}",
            String::from_utf8_lossy(&through_url)
        )
        .into());
    }
    invoke_target.expect = Some(first_answer(&invoke_target)?);

    // The HTTP API: quick create on the same function, with API Gateway's permission.
    let permission = json!({"StatementId": "apigw", "Action": "lambda:InvokeFunction",
                            "Principal": "apigateway.amazonaws.com"});
    let p = block_on(api.conn.post(
        &format!("/2015-03-31/functions/{FUNCTION}/policy"),
        Bytes::from(permission.to_string()),
    ))?;
    if p.status != 201 {
        return Err(format!("AddPermission (apigateway): HTTP {} {}", p.status, p.text()).into());
    }
    let created = block_on(
        api.conn.post(
            "/v2/apis",
            Bytes::from(
                json!({"name": "bench", "protocolType": "HTTP",
        "target": format!("arn:aws:lambda:us-east-1:000000000000:function:{FUNCTION}")})
                .to_string(),
            ),
        ),
    )?;
    if !(200..300).contains(&created.status) {
        return Err(format!("CreateApi: HTTP {} {}", created.status, created.text()).into());
    }
    let created: Value = serde_json::from_slice(&created.body)?;
    let api_id = created["apiId"].as_str().ok_or("no apiId")?.to_string();
    let api_target = Target {
        addr: srv.addr,
        method: "GET",
        path: format!("/execute-api/{api_id}/hello"),
        body: Bytes::new(),
        expect: Some(Bytes::from_static(b"hello")),
        server_pid: srv.pid(),
    };
    let through_api = first_answer(&api_target)?;
    if &through_api[..] != b"hello" {
        return Err(format!(
            "the HTTP API answered {:?}",
            String::from_utf8_lossy(&through_api)
        )
        .into());
    }
    let mut api_invoke_target = Target {
        body: Bytes::from(api_event(&api_id)),
        expect: None,
        ..invoke_target.clone()
    };
    api_invoke_target.expect = Some(first_answer(&api_invoke_target)?);

    let mut subjects = vec![
        Subject {
            label: "kindling Invoke (POST, the URL's 2.0 event)",
            target: invoke_target,
        },
        Subject {
            label: "kindling function URL (GET /hello)",
            target: url_target,
        },
        Subject {
            label: "kindling Invoke (POST, the API's 2.0 event)",
            target: api_invoke_target,
        },
        Subject {
            label: "kindling HTTP API (GET /hello)",
            target: api_target,
        },
    ];

    let mut cl: Option<Managed> = None;
    let cl_note = match (
        a.path("cargo-lambda"),
        a.path("cl-manifest"),
        a.path("cl-target-dir"),
    ) {
        (Some(b), Some(m), Some(t)) if !a.flags.contains("no-cargo-lambda") => {
            progress("cargo lambda watch: starting");
            let c = start_cargo_lambda(&b, &m, &t, 1, &work)?;
            let path = "/lambda-url/rust-http/hello".to_string();
            wait_cargo_lambda(&c, &path)?;
            subjects.push(Subject {
                label: "cargo lambda watch URL (GET /hello)",
                target: Target {
                    addr: c.addr,
                    method: "GET",
                    path,
                    body: Bytes::new(),
                    expect: Some(Bytes::from_static(b"hello")),
                    server_pid: c.pid(),
                },
            });
            cl = Some(c);
            format!(
                "cargo-lambda: `cargo lambda watch --release --concurrency 1` ({}), function-URL emulation at /lambda-url/rust-http/, same binary",
                crate::version(&b)
            )
        }
        _ => "cargo-lambda: not measured".to_string(),
    };

    // Single-client latency, in turns.
    let mut lat: Vec<Vec<Stats>> = vec![Vec::new(); subjects.len()];
    for r in 0..reps {
        for (i, s) in subjects.iter().enumerate() {
            progress(&format!("latency rep {}/{reps}: {}", r + 1, s.label));
            lat[i].push(load::latency(
                &s.target,
                warmup,
                n,
                Duration::from_secs(120),
            ));
        }
    }
    // Throughput, in turns.
    let mut tp: Vec<Vec<Vec<Stats>>> = vec![vec![Vec::new(); conns.len()]; subjects.len()];
    for (ci, &c) in conns.iter().enumerate() {
        for r in 0..reps {
            for (i, s) in subjects.iter().enumerate() {
                progress(&format!(
                    "throughput x{c} rep {}/{reps}: {}",
                    r + 1,
                    s.label
                ));
                tp[i][ci].push(load::throughput(
                    &s.target,
                    c,
                    2,
                    Duration::from_millis(500),
                    tp_measure,
                    2_000_000,
                ));
            }
        }
    }

    let mut out = String::new();
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "Function URL benchmark — {}",
        a.get("kindling-rev").unwrap_or("?")
    );
    let _ = writeln!(
        out,
        "kindling --isolation {isolation}; function: {} ({} bytes, lambda_http, provided.al2023, 128 MB)",
        http_fn_path.display(),
        http_fn.len()
    );
    let _ = writeln!(out, "{cl_note}");
    let _ = writeln!(
        out,
        "\nWarm latency, one client, one keep-alive connection, {reps} x {n} requests after {warmup} (µs; CPU µs per request: server = Kindling or cargo-lambda, fn = the function's process tree; frgn = other processes' share of the machine)"
    );
    let _ = writeln!(
        out,
        "{:<42} {:>8} {:>8} {:>8} {:>8} {:>12} {:>8} {:>6}",
        "target", "p50", "p90", "p99", "mean", "rep p50s", "srv cpu", "frgn"
    );
    let mut p50s = Vec::new();
    let mut cpus = Vec::new();
    for (i, s) in subjects.iter().enumerate() {
        let all = pooled(&lat[i]);
        let rep_p50: Vec<f64> = lat[i].iter().map(|r| r.pct_us(50.0)).collect();
        let span = rep_p50
            .iter()
            .map(|v| format!("{v:.0}"))
            .collect::<Vec<_>>()
            .join("/");
        let cpu = per(all.cpu.server_us, &all);
        let _ = writeln!(
            out,
            "{:<42} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>12} {:>8.1} {:>5.0}%{}",
            s.label,
            all.pct_us(50.0),
            all.pct_us(90.0),
            all.pct_us(99.0),
            all.mean_us(),
            span,
            cpu,
            all.cpu.foreign_pct(),
            if all.errors + all.function_errors + all.throttled > 0 {
                format!(
                    "  ({} failed: {})",
                    all.errors + all.function_errors + all.throttled,
                    all.first_error.clone().unwrap_or_default()
                )
            } else {
                String::new()
            }
        );
        p50s.push(median(rep_p50));
        cpus.push(cpu);
    }
    let _ = writeln!(
        out,
        "\nThroughput (requests/s, median of {reps}; {} s windows, 2 client threads)",
        tp_measure.as_secs_f64()
    );
    let _ = write!(out, "{:<42}", "target");
    for c in &conns {
        let _ = write!(out, " {:>10}", format!("x{c}"));
    }
    let _ = writeln!(out);
    let mut rps: Vec<Vec<f64>> = Vec::new();
    for (i, s) in subjects.iter().enumerate() {
        let _ = write!(out, "{:<42}", s.label);
        let mut row = Vec::new();
        for runs in tp[i].iter().take(conns.len()) {
            let m = median(runs.iter().map(Stats::rps).collect());
            let failed: u64 = runs
                .iter()
                .map(|s| s.errors + s.function_errors + s.throttled)
                .sum();
            let _ = write!(
                out,
                " {:>10}",
                if failed > 0 {
                    format!("{m:.0}*")
                } else {
                    format!("{m:.0}")
                }
            );
            row.push(m);
        }
        rps.push(row);
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "(* = some requests failed or were throttled)");
    for (door, invoke, name) in [(1, 0, "URL"), (3, 2, "HTTP API")] {
        let overhead = p50s[door] - p50s[invoke];
        let cpu_overhead = cpus[door] - cpus[invoke];
        let _ = writeln!(
            out,
            "\nFront-door overhead, {name} vs Invoke: p50 {overhead:+.1} µs (median of rep p50s; target ≤ 15 µs: {}), Kindling CPU {cpu_overhead:+.1} µs per request",
            if overhead <= 15.0 { "PASS" } else { "MISS" }
        );
        for (ci, c) in conns.iter().enumerate() {
            let loss = 100.0 * (1.0 - rps[door][ci] / rps[invoke][ci]);
            let _ = write!(
                out,
                "x{c}: {name} throughput {:+.1} % vs Invoke (target ≥ -10 %: {})",
                -loss,
                if loss <= 10.0 { "PASS" } else { "MISS" }
            );
            if rps.len() > 4 {
                let ratio = rps[door][ci] / rps[4][ci];
                let _ = write!(
                    out,
                    "; {ratio:.1}x cargo-lambda (target ≥ 5x: {})",
                    if ratio >= 5.0 { "PASS" } else { "MISS" }
                );
            }
            let _ = writeln!(out);
        }
    }
    println!("{out}");
    if let Some(path) = a.path("out") {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, &out)?;
        eprintln!("written to {}", path.display());
    }
    srv.stop();
    if let Some(mut c) = cl {
        c.stop();
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
