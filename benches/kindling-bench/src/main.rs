//! kindling-bench: measures Kindling's invoke path (warm latency, throughput, cold starts,
//! memory per environment) and `cargo lambda watch` serving the same Rust function, in one run.
//!
//! Usage (normally through `benches/run`):
//!   kindling-bench all --kindling BIN --rust-fn BIN [--cargo-lambda BIN --cl-manifest TOML
//!                      --cl-target-dir DIR] [--out FILE] [--quick]
//!   kindling-bench deploy --addr HOST:PORT --rust-fn BIN      (echo-rs and echo-py, for profiling)
//!   kindling-bench load --addr HOST:PORT --path P [--conns C] [--secs S | --measure-ms MS] [--warmup-ms MS] [--n N]
//!   kindling-bench events --addrs A,B,.. --path P [--conns C] [--secs S] [--warmup-ms MS]
//!                      (Event invokes spread over nodes; benches/cluster.py)
//!   kindling-bench async --kindling BIN [--isolation I] [--conns 1,16,64] [--secs S] [--samples N]
//!   kindling-bench sqs --kindling BIN [--moto BIN] [--conns 1,16,64] [--secs S]
//!   kindling-bench urls --kindling BIN --http-fn BIN [--cargo-lambda BIN --cl-manifest TOML --cl-target-dir DIR] [--quick]
//!   kindling-bench coldmix --kindling BIN --rust-fn BIN [--isolation LIST] [--secs S]
//!                      [--cold-functions N] [--cold-conc C] [--out FILE]
//!   kindling-bench echo-serve --port P [--upstream HOST:PORT --spawn-upstream]  (floor servers)
//!   kindling-bench otlp-sink [--port P]   (benches/obs.py's collector stand-in; GET /count)
//!   kindling-bench telemetry-extension [--timeout-ms MS]  (benches/obs.py's subscriber, run as
//!                      an external extension inside the function's environment)
//! Options of `all` are listed in benches/README.md.

mod apigwq;
mod asyncq;
mod coldmix;
mod echo;
mod events;
mod extension;
mod http;
mod load;
mod otlp_sink;
mod previous;
mod procfs;
mod report;
mod server;
mod sqsq;
mod urls;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::http::Error;
use crate::load::{Stats, Target};
use crate::report::Report;
use crate::server::{
    Api, Managed, TailInvoke, invoke_path, make_zip, start_cargo_lambda, start_kindling,
};

/// The event every warm invoke sends (echoed back by both functions).
const EVENT: &str = r#"{"bench":"kindling","id":12345,"items":[1,2,3],"nested":{"ok":true}}"#;

/// The Python function: echoes the event; sleeps on {"sleep_ms": N} (used to hold environments
/// busy so that concurrent invokes get one environment each).
const PY_APP: &str = "import time\n\n\ndef handler(event, context):\n    if isinstance(event, dict) and \"sleep_ms\" in event:\n        time.sleep(event[\"sleep_ms\"] / 1000.0)\n    return event\n";

struct Args {
    map: HashMap<String, String>,
    flags: BTreeSet<String>,
}

impl Args {
    fn parse(items: &[String]) -> Args {
        let mut map = HashMap::new();
        let mut flags = BTreeSet::new();
        let mut i = 0;
        while i < items.len() {
            let k = items[i].trim_start_matches("--").to_string();
            if i + 1 < items.len() && !items[i + 1].starts_with("--") {
                map.insert(k, items[i + 1].clone());
                i += 2;
            } else {
                flags.insert(k);
                i += 1;
            }
        }
        Args { map, flags }
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.map.get(k).map(String::as_str)
    }
    fn path(&self, k: &str) -> Option<PathBuf> {
        self.get(k).map(PathBuf::from)
    }
    fn num<T: std::str::FromStr>(&self, k: &str, default: T) -> T {
        self.get(k).and_then(|v| v.parse().ok()).unwrap_or(default)
    }
    fn list(&self, k: &str, default: &str) -> Vec<String> {
        self.get(k)
            .unwrap_or(default)
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Benchmark settings.
#[derive(Clone)]
pub struct Plan {
    pub reps: usize,
    pub memory_mb: u32,
    pub cl_concurrency: usize,
    pub warmup: usize,
    pub n: usize,
    pub conns: Vec<usize>,
    pub tp_warmup: Duration,
    pub tp_measure: Duration,
    pub client_threads: usize,
    pub cold_samples: usize,
    pub mem_envs: usize,
    pub isolations: Vec<String>,
    /// Also measure `kindling process` with TOKIO_WORKER_THREADS=1 (warm figures only).
    pub tokio1: bool,
    /// Also measure reference HTTP servers (the floor of any design on this machine).
    pub floors: bool,
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first().cloned() else {
        eprintln!("usage: kindling-bench all|deploy|load ... (see src/main.rs)");
        std::process::exit(2);
    };
    let args = Args::parse(&argv[1..]);
    let result = match cmd.as_str() {
        "all" => run_all(&args),
        "deploy" => run_deploy(&args),
        "load" => run_load(&args),
        "events" => run_events(&args),
        "echo-serve" => run_echo(&args),
        "otlp-sink" => otlp_sink::serve(args.num("port", 0)),
        "telemetry-extension" => extension::run(
            args.get("name").unwrap_or("subscriber"),
            serde_json::json!({
                "maxItems": args.num::<u64>("max-items", 10_000),
                "maxBytes": args.num::<u64>("max-bytes", 262_144),
                "timeoutMs": args.num::<u64>("timeout-ms", 1000),
            }),
        ),
        "async" => run_async(&args),
        "sqs" => run_sqs(&args),
        "coldmix" => run_coldmix(&args),
        "urls" => urls::run_urls(&args),
        "apigw" => run_apigw(&args),
        other => Err(format!("unknown command {other}").into()),
    };
    if let Err(e) = result {
        eprintln!("kindling-bench: {e}");
        std::process::exit(1);
    }
}

thread_local! {
    /// One runtime for control-plane calls, so their keep-alive connections outlive each call.
    static API_RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    API_RT.with(|rt| rt.block_on(f))
}

fn rust_zip(rust_fn: &[u8], marker: &str) -> Vec<u8> {
    make_zip(&[
        ("bootstrap", 0o755, rust_fn),
        ("marker.txt", 0o644, marker.as_bytes()),
    ])
}

fn py_zip(marker: &str) -> Vec<u8> {
    make_zip(&[
        ("app.py", 0o644, PY_APP.as_bytes()),
        ("marker.txt", 0o644, marker.as_bytes()),
    ])
}

fn progress(msg: &str) {
    eprintln!(
        "[{:>7.1}s] {msg}",
        START.with(|s| s.elapsed().as_secs_f64())
    );
}

thread_local! {
    static START: Instant = Instant::now();
}

fn target(m: &Managed, name: &str) -> Target {
    Target {
        addr: m.addr,
        method: "POST",
        path: invoke_path(name),
        body: Bytes::from_static(EVENT.as_bytes()),
        server_pid: m.pid(),
        expect: None,
    }
}

// ---------------------------------------------------------------------------------------------

fn run_all(a: &Args) -> Result<(), Error> {
    START.with(|_| ());
    let quick = a.flags.contains("quick");
    let plan = Plan {
        reps: a.num("reps", if quick { 1 } else { 3 }),
        warmup: a.num("warmup", if quick { 200 } else { 500 }),
        n: a.num("n", if quick { 2000 } else { 5000 }),
        conns: a
            .list("conns", "1,4,16,64")
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect(),
        tp_warmup: Duration::from_millis(a.num("tp-warmup-ms", 500)),
        tp_measure: Duration::from_millis(a.num("tp-measure-ms", 2000)),
        client_threads: a.num("client-threads", 2),
        cold_samples: a.num("cold-samples", if quick { 5 } else { 10 }),
        mem_envs: a.num("mem-envs", 8),
        memory_mb: a.num("memory-mb", 128),
        cl_concurrency: a.num("cl-concurrency", 1),
        isolations: a.list("isolation", "process,namespaces"),
        tokio1: a.flags.contains("tokio-workers-1"),
        floors: !a.flags.contains("no-floors"),
    };
    let kindling = a.path("kindling").ok_or("--kindling BIN is required")?;
    let rust_fn_path = a.path("rust-fn").ok_or("--rust-fn BIN is required")?;
    let rust_fn = std::fs::read(&rust_fn_path)?;
    let work = tempdir()?;
    let mut rep = Report::new(
        &plan,
        a.get("kindling-rev").unwrap_or("?"),
        &rust_fn_path,
        rust_fn.len(),
    );
    if let Some(prev) = a.path("previous") {
        match std::fs::read_to_string(&prev) {
            Ok(text) => rep.previous(a.get("previous-label").unwrap_or("previous run"), text),
            Err(e) => rep.note(&format!(
                "previous results {} not read: {e}",
                prev.display()
            )),
        }
    }
    let cl = match (
        a.path("cargo-lambda"),
        a.path("cl-manifest"),
        a.path("cl-target-dir"),
    ) {
        (Some(b), Some(m), Some(t)) if !a.flags.contains("no-cargo-lambda") => Some((b, m, t)),
        _ => None,
    };

    let mut run = || -> Result<(), Error> {
        if !a.flags.contains("no-warm") {
            warm_suite(&kindling, &rust_fn, cl.as_ref(), &work, &plan, &mut rep)?;
        }
        if !a.flags.contains("no-cold") {
            for iso in &plan.isolations {
                cold_suite(&kindling, iso, &rust_fn, &work, &plan, &mut rep)?;
            }
        }
        Ok(())
    };
    let res = run();
    if let Err(e) = &res {
        rep.note(&format!("RUN ABORTED: {e}"));
    }
    let text = rep.render();
    println!("{text}");
    if let Some(out) = a.path("out") {
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&out, &text)?;
        eprintln!("written to {}", out.display());
    }
    if a.flags.contains("keep-work") {
        eprintln!("work dir kept: {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    res
}

fn tempdir() -> Result<PathBuf, Error> {
    let base = std::env::var("TMPDIR").unwrap_or_else(|_| "/tmp".into());
    let dir = PathBuf::from(base).join(format!("kindling-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// One server under warm test.
struct Subject {
    label: String,
    srv: Managed,
    rust: String,
    python: Option<String>,
    /// Counts the environments of a function (per server kind).
    kindling: bool,
    /// A reference server (floor), not a Lambda emulator.
    floor: bool,
}

impl Subject {
    fn envs(&self, function: &str) -> usize {
        if self.kindling {
            count_envs(&self.srv, Some(function))
        } else {
            procfs::descendants(self.srv.pid())
                .iter()
                .filter(|p| procfs::comm(p.pid) == "rust-echo")
                .count()
        }
    }
}

/// Slices of the single-client latency measurement, taken by the subjects in turns.
pub(crate) const LATENCY_SLICES: usize = 8;
/// Warm-up requests of every slice after a subject's first (a fresh keep-alive connection).
const SLICE_WARMUP: usize = 20;

/// A server the warm suite measures: its label, its `--isolation` and extra environment.
type WarmVariant = (String, String, Vec<(&'static str, &'static str)>);

/// Warm latency and throughput, every server up at once and measured in turns (so that the
/// machine's background load falls on all of them alike), each figure repeated `plan.reps` times.
fn warm_suite(
    bin: &Path,
    rust_fn: &[u8],
    cl: Option<&(PathBuf, PathBuf, PathBuf)>,
    work: &Path,
    plan: &Plan,
    rep: &mut Report,
) -> Result<(), Error> {
    let mut subjects = Vec::new();
    let mut variants: Vec<WarmVariant> = plan
        .isolations
        .iter()
        .map(|iso| (format!("kindling {iso}"), iso.clone(), Vec::new()))
        .collect();
    if plan.tokio1 {
        // What-if: the same binary with one tokio worker thread (TOKIO_WORKER_THREADS is read by
        // tokio's runtime builder when the code does not set a worker count).
        variants.push((
            "kindling process TW=1".into(),
            "process".into(),
            vec![("TOKIO_WORKER_THREADS", "1")],
        ));
    }
    for (label, iso, env) in &variants {
        progress(&format!("{label}: starting"));
        let tag = format!("{}-warm", label.replace(' ', "-").replace('=', ""));
        let srv = start_kindling(bin, iso, 600, work, &tag, env)?;
        let mut api = block_on(Api::wait_ready(srv.addr, Duration::from_secs(30)))
            .map_err(|e| format!("{e}\n{}", srv.log_tail()))?;
        block_on(api.create_function(
            "warm-rs",
            "provided.al2023",
            "bootstrap",
            &rust_zip(rust_fn, "warm-rs"),
            plan.memory_mb,
        ))?;
        block_on(api.create_function(
            "warm-py",
            "python3.11",
            "app.handler",
            &py_zip("warm-py"),
            plan.memory_mb,
        ))?;
        subjects.push(Subject {
            label: label.clone(),
            srv,
            rust: "warm-rs".into(),
            python: Some("warm-py".into()),
            kindling: true,
            floor: false,
        });
    }
    if let Some((b, m, t)) = cl {
        progress(&format!(
            "cargo lambda watch --concurrency {}: starting",
            plan.cl_concurrency
        ));
        let srv = start_cargo_lambda(b, m, t, plan.cl_concurrency, work)?;
        wait_invocable(&srv, "rust-echo")?;
        rep.note(&format!(
            "cargo-lambda: `cargo lambda watch --release --concurrency {}` ({}), serving the same rust-echo binary",
            plan.cl_concurrency,
            version(b)
        ));
        subjects.push(Subject {
            label: "cargo-lambda watch".into(),
            srv,
            rust: "rust-echo".into(),
            python: None,
            kindling: false,
            floor: false,
        });
    } else {
        rep.note("cargo-lambda: not measured");
    }
    if plan.floors {
        for (label, hops) in [("floor: http echo", 1), ("floor: proxy->echo", 2)] {
            let port = server::free_port();
            let upstream = (hops == 2).then(server::free_port);
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
            let srv = Managed::spawn(
                label,
                echo::command(port, upstream),
                addr,
                work.join(format!("floor{hops}.log")),
            )?;
            block_on(http::Conn::connect_retry(addr, Duration::from_secs(10)))?;
            subjects.push(Subject {
                label: label.into(),
                srv,
                rust: "echo".into(),
                python: None,
                kindling: false,
                floor: true,
            });
        }
        rep.note("floor rows: bare single-threaded tokio+hyper HTTP/1.1 servers in kindling-bench on the same loopback; 'http echo' = client->echo (one hop), 'proxy->echo' = client->proxy->echo process (two hops, the shape of client->Kindling->runtime, without Lambda's long poll)");
    }

    // Single-client latency, in interleaved slices: each repetition's `n` requests per subject
    // are sent as LATENCY_SLICES slices, the subjects taking turns slice by slice, and the
    // slices pooled. Background CPU use (another server's prewarm, cargo-lambda settling after
    // its start, other users of the machine) then falls on every subject alike: on this
    // machine an idle vCPU answers a wake-up ~20 us later than a busy one, so a subject
    // measured alone while something else ran looked ~35 us faster (docs/ARCHITECTURE.md,
    // "Warm path latency on an idle machine"). The first slice of each subject gets the full
    // warm-up, later ones a short one (a new keep-alive connection per slice).
    let mut lat: Vec<Vec<Stats>> = vec![Vec::new(); subjects.len() * 2];
    let slice_n = plan.n.div_ceil(LATENCY_SLICES).max(1);
    for r in 0..plan.reps {
        progress(&format!(
            "warm latency rep {}/{}: {LATENCY_SLICES} slices of {slice_n} per subject, in turns",
            r + 1,
            plan.reps
        ));
        for slice in 0..LATENCY_SLICES {
            let warmup = if r == 0 && slice == 0 {
                plan.warmup
            } else {
                SLICE_WARMUP
            };
            for (i, s) in subjects.iter().enumerate() {
                lat[2 * i].push(load::latency(
                    &target(&s.srv, &s.rust),
                    warmup,
                    slice_n,
                    Duration::from_secs(120),
                ));
                if let Some(py) = &s.python {
                    lat[2 * i + 1].push(load::latency(
                        &target(&s.srv, py),
                        warmup,
                        slice_n,
                        Duration::from_secs(120),
                    ));
                }
            }
        }
    }
    for (i, s) in subjects.iter().enumerate() {
        let func = if s.floor { "-" } else { "rust" };
        rep.latency(&s.label, func, std::mem::take(&mut lat[2 * i]));
    }
    for (i, s) in subjects.iter().enumerate() {
        if s.python.is_some() {
            rep.latency(&s.label, "python", std::mem::take(&mut lat[2 * i + 1]));
        }
    }

    // Throughput. First start every environment the largest level needs (not measured).
    let max_c = plan.conns.iter().copied().max().unwrap_or(1);
    for s in subjects.iter().filter(|s| !s.floor) {
        progress(&format!("starting environments: {} x{max_c}", s.label));
        let _ = load::throughput(
            &target(&s.srv, &s.rust),
            max_c,
            plan.client_threads,
            Duration::from_millis(2500),
            Duration::from_millis(500),
            1_000_000,
        );
    }
    let floor_level = if plan.conns.contains(&16) { 16 } else { max_c };
    for &c in &plan.conns {
        let mut runs: Vec<Vec<Stats>> = vec![Vec::new(); subjects.len()];
        for r in 0..plan.reps {
            for (i, s) in subjects.iter().enumerate() {
                if s.floor && c != floor_level {
                    continue;
                }
                progress(&format!(
                    "throughput x{c} rep {}/{}: {}",
                    r + 1,
                    plan.reps,
                    s.label
                ));
                runs[i].push(load::throughput(
                    &target(&s.srv, &s.rust),
                    c,
                    plan.client_threads,
                    plan.tp_warmup,
                    plan.tp_measure,
                    2_000_000,
                ));
            }
        }
        for (i, s) in subjects.iter().enumerate() {
            if s.floor && c != floor_level {
                continue;
            }
            let envs = (!s.floor).then(|| s.envs(&s.rust));
            rep.throughput(&s.label, "rust", c, std::mem::take(&mut runs[i]), envs);
        }
    }
    for s in &subjects {
        if s.kindling {
            rep.note(&format!(
                "{}: python interpreter = {}",
                s.label,
                python_exe(&s.srv)
            ));
        }
    }
    Ok(())
}

fn wait_invocable(srv: &Managed, fn_name: &str) -> Result<(), Error> {
    // Ready when an invoke answers 200 (the function may be compiled on first use).
    let deadline = Instant::now() + Duration::from_secs(300);
    let ok = block_on(async {
        loop {
            if let Ok(mut c) = http::Conn::connect(srv.addr).await
                && let Ok(r) = c
                    .post(&invoke_path(fn_name), Bytes::from_static(EVENT.as_bytes()))
                    .await
                && r.status == 200
            {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{fn_name} was not invocable on {}:\n{}",
            srv.addr,
            srv.log_tail()
        )
        .into())
    }
}

/// Memory per environment and cold starts with one isolation mode.
fn cold_suite(
    bin: &Path,
    iso: &str,
    rust_fn: &[u8],
    work: &Path,
    plan: &Plan,
    rep: &mut Report,
) -> Result<(), Error> {
    // --- Server A: long idle timeout. Memory, then first invokes after deploy.
    progress(&format!(
        "kindling --isolation {iso}: memory and cold starts after deploy"
    ));
    let srv = start_kindling(bin, iso, 600, work, &format!("{iso}-a"), &[])?;
    let mut api = block_on(Api::wait_ready(srv.addr, Duration::from_secs(30)))
        .map_err(|e| format!("{e}\n{}", srv.log_tail()))?;
    block_on(api.create_function(
        "mem-rs",
        "provided.al2023",
        "bootstrap",
        &rust_zip(rust_fn, "mem-rs"),
        plan.memory_mb,
    ))?;
    block_on(api.create_function(
        "mem-py",
        "python3.11",
        "app.handler",
        &py_zip("mem-py"),
        plan.memory_mb,
    ))?;
    for (name, runtime) in [("mem-rs", "rust"), ("mem-py", "python")] {
        let m = measure_memory(&srv, name, plan.mem_envs)?;
        rep.memory(iso, runtime, m);
    }

    // Cold start: first invoke after deploy (fresh function, fresh code package each time).
    let mut rs = Vec::new();
    let mut py = Vec::new();
    let cpu0 = procfs::CpuSnap::take(srv.pid());
    for i in 0..plan.cold_samples {
        let n = format!("cold-rs-{i}");
        block_on(api.create_function(
            &n,
            "provided.al2023",
            "bootstrap",
            &rust_zip(rust_fn, &n),
            plan.memory_mb,
        ))?;
        settle();
        rs.push(block_on(api.invoke_tail(&n, EVENT))?);
        let n = format!("cold-py-{i}");
        block_on(api.create_function(
            &n,
            "python3.11",
            "app.handler",
            &py_zip(&n),
            plan.memory_mb,
        ))?;
        settle();
        py.push(block_on(api.invoke_tail(&n, EVENT))?);
    }
    let frgn = procfs::CpuUse::between(&cpu0, &procfs::CpuSnap::take(srv.pid())).foreign_pct();
    rep.cold(iso, "rust", "first invoke after deploy", rs, frgn);
    rep.cold(iso, "python", "first invoke after deploy", py, frgn);
    drop(api);
    drop(srv);

    // --- Server B: --idle-timeout 1. Cold start after the environment was reaped.
    progress(&format!(
        "kindling --isolation {iso} --idle-timeout 1: cold starts after reap"
    ));
    let srv = start_kindling(bin, iso, 1, work, &format!("{iso}-b"), &[])?;
    let mut api = block_on(Api::wait_ready(srv.addr, Duration::from_secs(30)))
        .map_err(|e| format!("{e}\n{}", srv.log_tail()))?;
    block_on(api.create_function(
        "reap-rs",
        "provided.al2023",
        "bootstrap",
        &rust_zip(rust_fn, "reap-rs"),
        plan.memory_mb,
    ))?;
    block_on(api.create_function(
        "reap-py",
        "python3.11",
        "app.handler",
        &py_zip("reap-py"),
        plan.memory_mb,
    ))?;
    // The first invokes are after deploy, not after a reap: not recorded.
    block_on(api.invoke_tail("reap-rs", EVENT))?;
    block_on(api.invoke_tail("reap-py", EVENT))?;
    let mut rs = Vec::new();
    let mut py = Vec::new();
    let mut waits = Vec::new();
    let cpu0 = procfs::CpuSnap::take(srv.pid());
    for _ in 0..plan.cold_samples {
        let t0 = Instant::now();
        wait_reaped(&srv, Duration::from_secs(20))?;
        waits.push(t0.elapsed().as_secs_f64());
        // The connection may have been idle for a while; open a fresh one outside the timing.
        api = block_on(Api::connect(srv.addr))?;
        settle();
        rs.push(block_on(api.invoke_tail("reap-rs", EVENT))?);
        settle();
        py.push(block_on(api.invoke_tail("reap-py", EVENT))?);
    }
    let frgn = procfs::CpuUse::between(&cpu0, &procfs::CpuSnap::take(srv.pid())).foreign_pct();
    rep.cold(iso, "rust", "invoke after idle reap", rs, frgn);
    rep.cold(iso, "python", "invoke after idle reap", py, frgn);
    waits.sort_by(f64::total_cmp);
    rep.note(&format!(
        "kindling {iso} --idle-timeout 1: environments gone {:.1}-{:.1} s after the last invoke (polled /proc every 10 ms)",
        waits.first().copied().unwrap_or(0.0),
        waits.last().copied().unwrap_or(0.0)
    ));
    Ok(())
}

/// A quiet pause before each timed cold start, so that each one is an isolated event as in real
/// use: kernel work left over from the previous start (e.g. the RCU grace period that the next
/// cgroup attach would otherwise share) does not make the next one look cheaper.
fn settle() {
    std::thread::sleep(Duration::from_millis(250));
}

/// Execution environments under a Kindling process (subtrees below it), optionally only those
/// of one function (by the runtime's AWS_LAMBDA_FUNCTION_NAME).
fn count_envs(srv: &Managed, function: Option<&str>) -> usize {
    env_trees(srv, function).len()
}

fn env_trees(srv: &Managed, function: Option<&str>) -> Vec<(i32, Vec<i32>)> {
    procfs::subtrees(srv.pid())
        .into_iter()
        .filter(|(_, tree)| match function {
            None => true,
            Some(f) => tree
                .iter()
                .any(|p| procfs::environ_var(*p, "AWS_LAMBDA_FUNCTION_NAME").as_deref() == Some(f)),
        })
        .collect()
}

/// Environments that ran a function: a pre-initialized one waiting for its function (the pool
/// `--prewarm` keeps in namespaces mode) has no `AWS_LAMBDA_FUNCTION_NAME` and is not reaped.
fn function_envs(srv: &Managed) -> usize {
    procfs::subtrees(srv.pid())
        .into_iter()
        .filter(|(_, tree)| {
            tree.iter()
                .any(|p| procfs::environ_var(*p, "AWS_LAMBDA_FUNCTION_NAME").is_some())
        })
        .count()
}

fn wait_reaped(srv: &Managed, timeout: Duration) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    while function_envs(srv) > 0 {
        if Instant::now() > deadline {
            return Err("environments were not reaped in time".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn python_exe(srv: &Managed) -> String {
    procfs::descendants(srv.pid())
        .iter()
        .filter_map(|p| procfs::exe(p.pid))
        .find(|e| e.to_string_lossy().contains("python"))
        .map(|e| e.display().to_string())
        .unwrap_or_else(|| "?".into())
}

/// Memory of `n` idle environments of one function, created by `n` concurrent invokes that each
/// hold their environment for 400 ms.
pub struct Memory {
    pub envs: usize,
    pub procs_per_env: f64,
    pub rss_kb: f64,
    pub pss_kb: f64,
    pub private_kb: f64,
    pub memcg_kb: Option<f64>,
    pub server_delta_kb: f64,
}

fn measure_memory(srv: &Managed, name: &str, n: usize) -> Result<Memory, Error> {
    let server_before = procfs::rss_kb(srv.pid());
    let addr = srv.addr;
    let path = invoke_path(name);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let results: Vec<Result<u16, String>> = rt.block_on(async {
        let mut hs = Vec::new();
        for _ in 0..n {
            let path = path.clone();
            hs.push(tokio::spawn(async move {
                let mut c = http::Conn::connect(addr).await.map_err(|e| e.to_string())?;
                let r = c
                    .post(&path, Bytes::from_static(br#"{"sleep_ms": 400}"#))
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(r.status)
            }));
        }
        let mut out = Vec::new();
        for h in hs {
            out.push(h.await.unwrap_or_else(|e| Err(e.to_string())));
        }
        out
    });
    if let Some(bad) = results.iter().find(|r| !matches!(r, Ok(200))) {
        return Err(format!("memory invokes of {name} failed: {bad:?}").into());
    }
    std::thread::sleep(Duration::from_millis(300));
    let envs = env_trees(srv, Some(name));
    let k = envs.len().max(1) as f64;
    let pids: Vec<i32> = envs.iter().flat_map(|(_, t)| t.iter().copied()).collect();
    let server_cg = procfs::memcg_usage(srv.pid()).map(|(p, _)| p);
    let mut cgroups = HashMap::new();
    for &p in &pids {
        if let Some((path, bytes)) = procfs::memcg_usage(p)
            && Some(&path) != server_cg.as_ref()
        {
            cgroups.insert(path, bytes);
        }
    }
    Ok(Memory {
        envs: envs.len(),
        procs_per_env: pids.len() as f64 / k,
        rss_kb: pids.iter().map(|p| procfs::rss_kb(*p)).sum::<u64>() as f64 / k,
        pss_kb: pids.iter().map(|p| procfs::pss_kb(*p)).sum::<u64>() as f64 / k,
        private_kb: pids.iter().map(|p| procfs::private_kb(*p)).sum::<u64>() as f64 / k,
        memcg_kb: if cgroups.is_empty() {
            None
        } else {
            Some(cgroups.values().sum::<u64>() as f64 / 1024.0 / cgroups.len() as f64)
        },
        server_delta_kb: (procfs::rss_kb(srv.pid()) as f64 - server_before as f64) / k,
    })
}

fn version(bin: &Path) -> String {
    std::process::Command::new(bin)
        .args(["lambda", "--version"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------

fn parse_addr(a: &Args) -> Result<SocketAddr, Error> {
    Ok(a.get("addr")
        .ok_or("--addr HOST:PORT is required")?
        .parse()?)
}

/// Deploys echo-rs and echo-py on a running Kindling (for profiling sessions).
fn run_deploy(a: &Args) -> Result<(), Error> {
    let addr = parse_addr(a)?;
    let rust_fn = std::fs::read(a.path("rust-fn").ok_or("--rust-fn BIN is required")?)?;
    block_on(async {
        let mut api = Api::wait_ready(addr, Duration::from_secs(10)).await?;
        api.create_function(
            "echo-rs",
            "provided.al2023",
            "bootstrap",
            &rust_zip(&rust_fn, "echo-rs"),
            a.num("memory-mb", 128),
        )
        .await?;
        api.create_function(
            "echo-py",
            "python3.11",
            "app.handler",
            &py_zip("echo-py"),
            a.num("memory-mb", 128),
        )
        .await?;
        for n in ["echo-rs", "echo-py"] {
            let r: TailInvoke = api.invoke_tail(n, EVENT).await?;
            println!(
                "{n}: {:.2} ms  {}",
                r.client_ms,
                r.report.unwrap_or_default()
            );
        }
        Ok::<(), Error>(())
    })
}

/// A reference server (see echo.rs); with --spawn-upstream it first starts the echo server it
/// forwards to, as its child.
fn run_echo(a: &Args) -> Result<(), Error> {
    let port: u16 = a.num("port", 0);
    let upstream: Option<SocketAddr> = a.get("upstream").map(str::parse).transpose()?;
    let _child = match (upstream, a.flags.contains("spawn-upstream")) {
        (Some(up), true) => {
            let child = echo::command(up.port(), None).spawn()?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(up).is_err() {
                if Instant::now() > deadline {
                    return Err("upstream echo server did not start".into());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Some(child)
        }
        _ => None,
    };
    echo::serve(port, upstream)
}

/// Asynchronous invocation: accepted events/s and send-to-run latency (see asyncq.rs).
fn run_async(a: &Args) -> Result<(), Error> {
    let kindling = a.path("kindling").ok_or("--kindling BIN is required")?;
    let work = std::env::temp_dir().join(format!("kindling-bench-async-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let conns: Vec<usize> = a
        .list("conns", "1,16,64")
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    let text = asyncq::run(
        &kindling,
        &work,
        a.get("isolation").unwrap_or("auto"),
        &conns,
        a.num("secs", 3.0),
        a.num("samples", 30),
    )?;
    let _ = std::fs::remove_dir_all(&work);
    print!("{text}");
    if let Some(out) = a.path("out") {
        std::fs::write(out, &text)?;
    }
    Ok(())
}

/// SQS: Kindling next to moto_server (see sqsq.rs).
fn run_sqs(a: &Args) -> Result<(), Error> {
    let kindling = a.path("kindling").ok_or("--kindling BIN is required")?;
    let work = std::env::temp_dir().join(format!("kindling-bench-sqs-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let conns: Vec<usize> = a
        .list("conns", "1,16,64")
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    let secs: f64 = a.num("secs", 3.0);
    let k = start_kindling(&kindling, "process", 300, &work, "sqs", &[])?;
    let kf = sqsq::measure(k.addr, &conns, secs, a.num("fill", 150_000))?;
    drop(k);
    let mf = match a.path("moto") {
        Some(moto) => {
            let port = server::free_port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
            let mut cmd = std::process::Command::new(moto);
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            let m = Managed::spawn("moto", cmd, addr, work.join("moto.log"))?;
            let f = sqsq::measure(addr, &conns, secs, a.num("moto-fill", 400))?;
            drop(m);
            Some(f)
        }
        None => None,
    };
    let text = sqsq::report(a.get("kindling-rev").unwrap_or("?"), &kf, mf.as_ref(), secs);
    let _ = std::fs::remove_dir_all(&work);
    print!("{text}");
    if let Some(out) = a.path("out") {
        std::fs::write(out, &text)?;
    }
    Ok(())
}

/// The API Gateway front door next to direct Invoke (see apigwq.rs).
fn run_apigw(a: &Args) -> Result<(), Error> {
    let kindling = a.path("kindling").ok_or("--kindling BIN is required")?;
    let rust_fn = std::fs::read(a.path("rust-fn").ok_or("--rust-fn BIN is required")?)?;
    let work = std::env::temp_dir().join(format!("kindling-bench-apigw-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let conns: Vec<usize> = a
        .list("conns", "1,4,16")
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    let plan = apigwq::Plan {
        isolation: a.get("isolation").unwrap_or("process"),
        reps: a.num("reps", 5),
        n: a.num("n", 2000),
        conns: &conns,
        secs: a.num("secs", 3.0),
        rev: a.get("kindling-rev").unwrap_or("?"),
    };
    let text = apigwq::run(&kindling, &rust_fn, &work, &plan)?;
    let _ = std::fs::remove_dir_all(&work);
    print!("{text}");
    if let Some(out) = a.path("out") {
        std::fs::write(out, &text)?;
    }
    Ok(())
}

/// Warm latency while other functions cold-start (see coldmix.rs).
fn run_coldmix(a: &Args) -> Result<(), Error> {
    let kindling = a.path("kindling").ok_or("--kindling BIN is required")?;
    let rust_fn = a.path("rust-fn").ok_or("--rust-fn BIN is required")?;
    let work = std::env::temp_dir().join(format!("kindling-bench-coldmix-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let plan = coldmix::Plan {
        secs: a.num("secs", 4.0),
        cold_functions: a.num("cold-functions", 200),
        cold_conc: a.num("cold-conc", 4),
        memory_mb: a.num("memory-mb", 128),
    };
    let mut text = String::new();
    for isolation in a.list("isolation", "process,namespaces") {
        text.push_str(&coldmix::run(
            &kindling, &rust_fn, &work, &isolation, &plan,
        )?);
        text.push('\n');
    }
    let _ = std::fs::remove_dir_all(&work);
    print!("{text}");
    if let Some(out) = a.path("out") {
        std::fs::write(out, &text)?;
    }
    Ok(())
}

/// Ad-hoc load against any server: latency (--conns 0) or throughput.
fn run_events(a: &Args) -> Result<(), Error> {
    let addrs = a
        .list("addrs", "")
        .iter()
        .map(|s| s.parse::<SocketAddr>())
        .collect::<Result<Vec<_>, _>>()?;
    let s = events::run(
        &addrs,
        a.get("path")
            .unwrap_or("/2015-03-31/functions/echo-rs/invocations"),
        a.num("conns", 16),
        a.num("client-threads", 2),
        Duration::from_millis(a.num("warmup-ms", 500)),
        Duration::from_secs_f64(a.num("secs", 3.0)),
    )?;
    println!("{}", events::line(&s));
    Ok(())
}

fn run_load(a: &Args) -> Result<(), Error> {
    let t = Target {
        addr: parse_addr(a)?,
        method: "POST",
        path: a
            .get("path")
            .unwrap_or("/2015-03-31/functions/echo-rs/invocations")
            .to_string(),
        body: Bytes::from(a.get("body").unwrap_or(EVENT).to_string()),
        server_pid: a.num("pid", 0),
        expect: None,
    };
    let conns: usize = a.num("conns", 0);
    let s: Stats = if conns == 0 {
        load::latency(
            &t,
            a.num("warmup", 500),
            a.num("n", 5000),
            Duration::from_secs(a.num("max-secs", 60)),
        )
    } else {
        load::throughput(
            &t,
            conns,
            a.num("client-threads", 2),
            Duration::from_millis(a.num("warmup-ms", 500)),
            // `--measure-ms` for windows shorter than a second (benches/obs.py's slices).
            Duration::from_millis(a.num("measure-ms", a.num::<u64>("secs", 3) * 1000)),
            a.num("max-per-conn", 1_000_000),
        )
    };
    println!(
        "ok={} 429={} fn_err={} err={} rps={:.0} p50={:.1}us p90={:.1}us p99={:.1}us max={:.1}us  cpu/inv: server={:.1}us children={:.1}us client={:.1}us  runq-wait/inv: server={:.1}us children={:.1}us client={:.1}us  foreign={:.0}% sent={} {}",
        s.ok,
        s.throttled,
        s.function_errors,
        s.errors,
        s.rps(),
        s.pct_us(50.0),
        s.pct_us(90.0),
        s.pct_us(99.0),
        s.max_us(),
        s.cpu.server_us / s.ok.max(1) as f64,
        s.cpu.children_us / s.ok.max(1) as f64,
        s.cpu.client_us / s.ok.max(1) as f64,
        s.cpu.server_wait_us / s.ok.max(1) as f64,
        s.cpu.children_wait_us / s.ok.max(1) as f64,
        s.cpu.client_wait_us / s.ok.max(1) as f64,
        100.0 * s.cpu.foreign_us / s.cpu.wall_us.max(1.0) / 2.0,
        s.sent,
        s.first_error.unwrap_or_default()
    );
    Ok(())
}
