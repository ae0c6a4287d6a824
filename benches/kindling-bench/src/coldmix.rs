//! `kindling-bench coldmix`: warm-invoke latency while other functions cold-start. One client
//! invokes a warm Rust function back to back (as in the warm latency table); meanwhile a second
//! client invokes never-invoked Python functions (each with a code package of its own, so each
//! invoke is a full cold start, unpacking included), `--cold-conc` at a time. The same warm
//! figures are measured without the cold starts first, for comparison.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::http::Error;
use crate::load::{self, Stats, Target};
use crate::server::{Api, invoke_path, make_zip, start_kindling};

const EVENT: &str = r#"{"bench":"coldmix","id":1}"#;
const PY_APP: &str = "def handler(event, context):\n    return event\n";

/// Settings of one run.
pub struct Plan {
    pub secs: f64,
    pub cold_functions: usize,
    pub cold_conc: usize,
    pub memory_mb: u32,
}

/// What the cold-start client did during the window.
#[derive(Default)]
struct Cold {
    done: usize,
    failed: usize,
    client_ms: Vec<f64>,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p / 100.0).round() as usize]
}

/// Invokes `cold-<i>` functions, `conc` at a time, until `stop` or the functions run out.
async fn cold_client(
    addr: SocketAddr,
    names: Vec<String>,
    conc: usize,
    stop: Arc<AtomicBool>,
) -> Cold {
    let next = Arc::new(AtomicUsize::new(0));
    let names = Arc::new(names);
    let mut tasks = Vec::new();
    for _ in 0..conc.max(1) {
        let (next, names, stop) = (Arc::clone(&next), Arc::clone(&names), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let mut out = Cold::default();
            let Ok(mut api) = Api::connect(addr).await else {
                out.failed += 1;
                return out;
            };
            while !stop.load(Ordering::Acquire) {
                let i = next.fetch_add(1, Ordering::AcqRel);
                let Some(name) = names.get(i) else { break };
                match api.invoke_tail(name, "{}").await {
                    Ok(r) if r.init_ms.is_some() => {
                        out.done += 1;
                        out.client_ms.push(r.client_ms);
                    }
                    _ => out.failed += 1,
                }
            }
            out
        }));
    }
    let mut all = Cold::default();
    for t in tasks {
        if let Ok(c) = t.await {
            all.done += c.done;
            all.failed += c.failed;
            all.client_ms.extend(c.client_ms);
        }
    }
    all.client_ms.sort_by(f64::total_cmp);
    all
}

fn row(label: &str, s: &Stats) -> String {
    format!(
        "  {label:<18} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
        s.lat_ns.len(),
        s.pct_us(50.0),
        s.pct_us(99.0),
        s.pct_us(99.9),
        s.max_us()
    )
}

/// Runs the comparison against a fresh Kindling; returns the report text.
pub fn run(
    kindling: &Path,
    rust_fn: &Path,
    work: &Path,
    isolation: &str,
    plan: &Plan,
) -> Result<String, Error> {
    let mut m = start_kindling(
        kindling,
        isolation,
        600,
        work,
        &format!("coldmix-{isolation}"),
        &[],
    )?;
    let addr = m.addr;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let rust = std::fs::read(rust_fn)?;
    let names: Vec<String> = (0..plan.cold_functions)
        .map(|i| format!("cold-{i}"))
        .collect();
    let setup: Result<(), Error> = rt.block_on(async {
        let mut api = Api::wait_ready(addr, Duration::from_secs(20)).await?;
        let zip = make_zip(&[("bootstrap", 0o755, &rust)]);
        api.create_function(
            "warm-rs",
            "provided.al2023",
            "bootstrap",
            &zip,
            plan.memory_mb,
        )
        .await?;
        for (i, name) in names.iter().enumerate() {
            let marker = format!("coldmix {i}");
            let zip = make_zip(&[
                ("app.py", 0o644, PY_APP.as_bytes()),
                ("marker.txt", 0o644, marker.as_bytes()),
            ]);
            api.create_function(name, "python3.11", "app.handler", &zip, plan.memory_mb)
                .await?;
        }
        Ok(())
    });
    if let Err(e) = setup {
        let tail = m.log_tail();
        m.stop();
        return Err(format!("{e}\n{tail}").into());
    }
    let target = Target {
        addr,
        method: "POST",
        path: invoke_path("warm-rs"),
        body: Bytes::from_static(EVENT.as_bytes()),
        server_pid: m.pid(),
        expect: None,
    };
    let window = Duration::from_secs_f64(plan.secs);
    // Warm up, then the warm client alone, then with cold starts alongside.
    let _ = load::latency(&target, 500, 0, Duration::from_secs(10));
    let alone = load::latency(&target, 0, 1_000_000, window);

    let stop = Arc::new(AtomicBool::new(false));
    let cold = std::thread::spawn({
        let (stop, names, conc) = (Arc::clone(&stop), names.clone(), plan.cold_conc);
        move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(cold_client(addr, names, conc, stop)))
                .unwrap_or_default()
        }
    });
    // Let the first cold starts begin before measuring.
    std::thread::sleep(Duration::from_millis(20));
    let started = Instant::now();
    let mixed = load::latency(&target, 0, 1_000_000, window);
    let measured = started.elapsed();
    stop.store(true, Ordering::Release);
    let cold = cold.join().unwrap_or_default();
    m.stop();

    let mut out = format!(
        "WARM LATENCY DURING COLD STARTS - kindling --isolation {isolation}\n\
         warm: one keep-alive client on the Rust echo (µs); cold: python3.11 functions never invoked before,\n\
         {} at a time, each with its own code package\n\
         {:<20} {:>7} {:>9} {:>9} {:>9} {:>9}\n",
        plan.cold_conc, "", "n", "p50", "p99", "p99.9", "max"
    );
    out.push_str(&row("warm alone", &alone));
    out.push('\n');
    out.push_str(&row("warm + cold starts", &mixed));
    out.push('\n');
    out.push_str(&format!(
        "  cold starts during the {:.1} s window: {} ({} failed), client p50 {:.1} ms  p90 {:.1} ms\n",
        measured.as_secs_f64(),
        cold.done,
        cold.failed,
        pct(&cold.client_ms, 50.0),
        pct(&cold.client_ms, 90.0)
    ));
    for (label, s) in [("alone", &alone), ("mixed", &mixed)] {
        if s.errors + s.function_errors + s.throttled > 0 {
            out.push_str(&format!(
                "  warm {label}: {} errors, {} function errors, {} throttles ({})\n",
                s.errors,
                s.function_errors,
                s.throttled,
                s.first_error.clone().unwrap_or_default()
            ));
        }
    }
    Ok(out)
}
