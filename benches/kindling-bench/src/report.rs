//! The result tables.

use std::fmt::Write;
use std::path::Path;

use crate::load::Stats;
use crate::server::TailInvoke;
use crate::{Memory, Plan};

struct LatRow {
    server: String,
    runtime: String,
    /// All repetitions pooled.
    s: Stats,
    /// p50 of each repetition.
    rep_p50: Vec<f64>,
}

struct TpRow {
    server: String,
    conns: usize,
    /// All repetitions pooled (latencies, counts, CPU).
    s: Stats,
    /// Throughput of each repetition.
    rep_rps: Vec<f64>,
    envs: Option<usize>,
}

impl TpRow {
    fn rps(&self) -> f64 {
        let mut v = self.rep_rps.clone();
        median(&mut v)
    }
}

fn pool(reps: Vec<Stats>) -> Stats {
    let mut all = Stats::default();
    for r in reps {
        all.pool(r);
    }
    all
}

fn span(v: &[f64], digits: usize) -> String {
    if v.len() < 2 {
        return String::new();
    }
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.digits$}-{hi:.digits$}")
}

/// Per-invoke figure, or "-" when nothing succeeded.
fn per(total: f64, s: &Stats) -> String {
    if s.ok == 0 {
        "-".into()
    } else {
        format!("{:.1}", total / s.ok as f64)
    }
}

struct ColdRow {
    iso: String,
    runtime: String,
    case: String,
    samples: Vec<TailInvoke>,
    foreign: f64,
}

pub struct Report {
    header: Vec<String>,
    plan: Plan,
    lat: Vec<LatRow>,
    tp: Vec<TpRow>,
    cold: Vec<ColdRow>,
    mem: Vec<(String, String, Memory)>,
    notes: Vec<String>,
    load_start: String,
    /// The previous committed results (label, text), shown next to this run's warm rows.
    previous: Option<(String, String)>,
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn ncpu() -> f64 {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64
}

/// Share of the machine's CPU used by other processes during a measurement.
fn foreign_pct(s: &Stats) -> f64 {
    s.cpu.foreign_pct()
}

impl Report {
    pub fn new(plan: &Plan, rev: &str, rust_fn: &Path, rust_fn_len: usize) -> Report {
        let now = std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M:%S UTC"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_default();
        Report {
            header: vec![
                format!("Kindling invoke benchmark   {now}   kindling {rev}"),
                format!("host: {} x {cpu}, Linux {}", ncpu(), kernel.trim()),
                format!(
                    "rust function: {} ({} KiB, lambda_runtime echo), python function: 4-line echo (python3.11)",
                    rust_fn.display(),
                    rust_fn_len / 1024
                ),
                "client: kindling-bench (Rust, tokio + hyper 1 http1 client), keep-alive, TCP_NODELAY, loopback".into(),
            ],
            plan: plan.clone(),
            lat: Vec::new(),
            tp: Vec::new(),
            cold: Vec::new(),
            mem: Vec::new(),
            notes: Vec::new(),
            load_start: crate::procfs::loadavg(),
            previous: None,
        }
    }

    /// The results this run is compared with (section 7).
    pub fn previous(&mut self, label: &str, text: String) {
        self.previous = Some((label.to_string(), text));
    }

    pub fn latency(&mut self, server: &str, runtime: &str, reps: Vec<Stats>) {
        let rep_p50: Vec<f64> = reps.iter().map(|r| r.pct_us(50.0)).collect();
        let s = pool(reps);
        eprintln!(
            "    {server} {runtime}: p50 {:.1} us p99 {:.1} us ({} ok, {} errors)",
            s.pct_us(50.0),
            s.pct_us(99.0),
            s.ok,
            s.errors
        );
        self.lat.push(LatRow {
            server: server.into(),
            runtime: runtime.into(),
            s,
            rep_p50,
        });
    }

    pub fn throughput(
        &mut self,
        server: &str,
        runtime: &str,
        conns: usize,
        reps: Vec<Stats>,
        envs: Option<usize>,
    ) {
        let rep_rps: Vec<f64> = reps.iter().map(Stats::rps).collect();
        let s = pool(reps);
        let row = TpRow {
            server: server.into(),
            conns,
            s,
            rep_rps,
            envs,
        };
        eprintln!(
            "    {server} {runtime} x{conns}: {:.0} inv/s ({} errors, {} throttled)",
            row.rps(),
            row.s.errors,
            row.s.throttled
        );
        self.tp.push(row);
    }

    pub fn cold(
        &mut self,
        iso: &str,
        runtime: &str,
        case: &str,
        samples: Vec<TailInvoke>,
        foreign: f64,
    ) {
        self.cold.push(ColdRow {
            iso: iso.into(),
            runtime: runtime.into(),
            case: case.into(),
            samples,
            foreign,
        });
    }

    pub fn memory(&mut self, iso: &str, runtime: &str, m: Memory) {
        self.mem.push((iso.into(), runtime.into(), m));
    }

    pub fn note(&mut self, n: &str) {
        eprintln!("    note: {n}");
        self.notes.push(n.into());
    }

    fn cold_median(&self, iso: &str, runtime: &str, case: &str) -> Option<(f64, f64)> {
        let r = self
            .cold
            .iter()
            .find(|r| r.iso == iso && r.runtime == runtime && r.case.starts_with(case))?;
        let mut c: Vec<f64> = r.samples.iter().map(|s| s.client_ms).collect();
        let mut i: Vec<f64> = r.samples.iter().filter_map(|s| s.init_ms).collect();
        Some((median(&mut c), median(&mut i)))
    }

    pub fn render(&self) -> String {
        let mut o = String::new();
        let p = &self.plan;
        for h in &self.header {
            let _ = writeln!(o, "{h}");
        }
        let _ = writeln!(
            o,
            "load average at start: {}   at end: {}",
            self.load_start,
            crate::procfs::loadavg()
        );

        // 1. Warm latency.
        let _ = writeln!(
            o,
            "\n1. WARM INVOKE LATENCY - single client, keep-alive; {} repetitions x {} requests (after {} warm-up), each sent in\n   {} slices, the servers taking turns slice by slice (background load falls on all alike), pooled; microseconds.",
            p.reps,
            p.n,
            p.warmup,
            crate::LATENCY_SLICES
        );
        let _ = writeln!(
            o,
            "{:<22} {:<6} {:>6} {:>11} {:>6} {:>7} {:>8} {:>6} {:>5} {:>4} | {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} | {:>5}",
            "server",
            "func",
            "p50",
            "(reps)",
            "p90",
            "p99",
            "max",
            "mean",
            ">1ms",
            "err",
            "srvCPU",
            "fnCPU",
            "cliCPU",
            "srvRQ",
            "fnRQ",
            "cliRQ",
            "frgn"
        );
        for r in &self.lat {
            let s = &r.s;
            let _ = writeln!(
                o,
                "{:<22} {:<6} {:>6.1} {:>11} {:>6.1} {:>7.1} {:>8.1} {:>6.1} {:>5} {:>4} | {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} | {:>4.0}%",
                r.server,
                r.runtime,
                s.pct_us(50.0),
                span(&r.rep_p50, 0),
                s.pct_us(90.0),
                s.pct_us(99.0),
                s.max_us(),
                s.mean_us(),
                s.slower_than(1000),
                s.errors + s.function_errors + s.throttled,
                per(s.cpu.server_us, s),
                per(s.cpu.children_us, s),
                per(s.cpu.client_us, s),
                per(s.cpu.server_wait_us, s),
                per(s.cpu.children_wait_us, s),
                per(s.cpu.client_wait_us, s),
                foreign_pct(s)
            );
        }
        let _ = writeln!(
            o,
            "  (reps) = range of the slices' p50. srvCPU/fnCPU/cliCPU = CPU microseconds per invoke used by the server\n  process, by its child processes (the function's runtime; for cargo-lambda also its idle `cargo run` parents) and by\n  this client. srvRQ/fnRQ/cliRQ = microseconds per invoke those threads spent runnable but waiting for a CPU\n  (/proc/*/task/*/schedstat). frgn = share of the machine's CPU used by other processes meanwhile (noise)."
        );

        // 2. Throughput.
        let _ = writeln!(
            o,
            "\n2. THROUGHPUT - N concurrent keep-alive clients (client on {} threads); {} repetitions x ({:.1} s warm-up + {:.1} s\n   measured), median invoke/s; latencies pooled, microseconds. Environments for the largest N started beforehand.",
            p.client_threads,
            p.reps,
            p.tp_warmup.as_secs_f64(),
            p.tp_measure.as_secs_f64()
        );
        let _ = writeln!(
            o,
            "{:<22} {:>5} {:>8} {:>13} {:>6} {:>7} {:>8} {:>4} {:>5} {:>4} | {:>6} {:>6} {:>6} | {:>6} {:>6} | {:>5} {:>4}",
            "server",
            "conns",
            "invoke/s",
            "(reps)",
            "p50",
            "p99",
            "max",
            "429",
            "fnErr",
            "err",
            "srvCPU",
            "fnCPU",
            "cliCPU",
            "srvRQ",
            "fnRQ",
            "frgn",
            "envs"
        );
        for r in &self.tp {
            let s = &r.s;
            let _ = writeln!(
                o,
                "{:<22} {:>5} {:>8.0} {:>13} {:>6.0} {:>7.0} {:>8.0} {:>4} {:>5} {:>4} | {:>6} {:>6} {:>6} | {:>6} {:>6} | {:>4.0}% {:>4}",
                r.server,
                r.conns,
                r.rps(),
                span(&r.rep_rps, 0),
                s.pct_us(50.0),
                s.pct_us(99.0),
                s.max_us(),
                s.throttled,
                s.function_errors,
                s.errors,
                per(s.cpu.server_us, s),
                per(s.cpu.children_us, s),
                per(s.cpu.client_us, s),
                per(s.cpu.server_wait_us, s),
                per(s.cpu.children_wait_us, s),
                foreign_pct(s),
                r.envs.map(|e| e.to_string()).unwrap_or_default()
            );
        }
        let errs: Vec<String> = self
            .lat
            .iter()
            .map(|r| (&r.server, &r.s))
            .chain(self.tp.iter().map(|r| (&r.server, &r.s)))
            .filter_map(|(srv, s)| {
                s.first_error
                    .as_ref()
                    .map(|e| format!("  first error ({srv}): {e}"))
            })
            .collect();
        for e in errs {
            let _ = writeln!(o, "{}", e.chars().take(300).collect::<String>());
        }
        let _ = writeln!(
            o,
            "  Rust function. 429 = throttles, fnErr = function errors, err = other statuses / transport errors / wrong bodies.\n  envs = the function's processes alive afterwards (Kindling starts one environment per concurrent invocation)."
        );

        // 3. Cold starts.
        let _ = writeln!(
            o,
            "\n3. COLD START - median [min-max] of {} samples (milliseconds); client = request round trip seen by the client,\n   init = 'Init Duration' from the REPORT line (X-Amz-Log-Type: Tail)",
            p.cold_samples
        );
        let _ = writeln!(
            o,
            "{:<11} {:<7} {:<27} {:>8} {:>17} {:>8} {:>17} {:>6}",
            "isolation", "func", "case", "client", "[min-max]", "init", "[min-max]", "frgn"
        );
        for r in &self.cold {
            let mut c: Vec<f64> = r.samples.iter().map(|s| s.client_ms).collect();
            let mut i: Vec<f64> = r.samples.iter().filter_map(|s| s.init_ms).collect();
            let cm = median(&mut c);
            let im = median(&mut i);
            let range = |v: &[f64]| {
                if v.is_empty() {
                    "(none)".to_string()
                } else {
                    format!("[{:.2}-{:.2}]", v[0], v[v.len() - 1])
                }
            };
            let _ = writeln!(
                o,
                "{:<11} {:<7} {:<27} {:>8.2} {:>17} {:>8.2} {:>17} {:>5.0}%",
                r.iso,
                r.runtime,
                r.case,
                cm,
                range(&c),
                im,
                range(&i),
                r.foreign
            );
        }
        if let Some(r) = self
            .cold
            .iter()
            .find_map(|r| r.samples.iter().find_map(|s| s.report.clone()))
        {
            let _ = writeln!(o, "  e.g. {}", r.replace('\t', " "));
        }

        // 4. Memory.
        let _ = writeln!(
            o,
            "\n4. MEMORY PER IDLE ENVIRONMENT - {} environments started by concurrent invokes, measured idle (KiB per environment)",
            p.mem_envs
        );
        let _ = writeln!(
            o,
            "{:<11} {:<7} {:>4} {:>6} {:>8} {:>8} {:>8} {:>8} {:>10}",
            "isolation", "func", "envs", "procs", "RSS", "PSS", "private", "memcg", "server+"
        );
        for (iso, rt, m) in &self.mem {
            let _ = writeln!(
                o,
                "{:<11} {:<7} {:>4} {:>6.1} {:>8.0} {:>8.0} {:>8.0} {:>8} {:>10.0}",
                iso,
                rt,
                m.envs,
                m.procs_per_env,
                m.rss_kb,
                m.pss_kb,
                m.private_kb,
                m.memcg_kb
                    .map(|v| format!("{v:.0}"))
                    .unwrap_or_else(|| "-".into()),
                m.server_delta_kb
            );
        }
        let _ = writeln!(
            o,
            "  RSS/PSS/private = sum over the environment's process tree (/proc/PID/status, smaps_rollup); memcg = the\n  environment's memory cgroup usage (page cache included); server+ = growth of Kindling's own RSS per environment."
        );

        // 5. Comparison and targets.
        let _ = writeln!(
            o,
            "\n5. KINDLING vs CARGO-LAMBDA (same Rust function binary, same client, same run)"
        );
        let cl_lat = self
            .lat
            .iter()
            .find(|r| r.server.starts_with("cargo-lambda"));
        for r in self
            .lat
            .iter()
            .filter(|r| r.server.starts_with("kindling") && r.runtime == "rust")
        {
            if let Some(cl) = cl_lat {
                let _ = writeln!(
                    o,
                    "  single-client latency  {:<20} p50 {:>6.1} us vs {:>6.1} us (cargo-lambda/kindling {:.2}x);  p99 {:>7.1} vs {:>7.1} us ({:.2}x)",
                    r.server,
                    r.s.pct_us(50.0),
                    cl.s.pct_us(50.0),
                    cl.s.pct_us(50.0) / r.s.pct_us(50.0),
                    r.s.pct_us(99.0),
                    cl.s.pct_us(99.0),
                    cl.s.pct_us(99.0) / r.s.pct_us(99.0)
                );
            }
        }
        for r in self.tp.iter().filter(|r| r.server.starts_with("kindling")) {
            if let Some(cl) = self
                .tp
                .iter()
                .find(|c| c.server.starts_with("cargo-lambda") && c.conns == r.conns)
            {
                let ratio = if cl.rps() > 0.0 {
                    format!("{:.2}x", r.rps() / cl.rps())
                } else {
                    "n/a (cargo-lambda completed none)".into()
                };
                let _ = writeln!(
                    o,
                    "  throughput x{:<3}         {:<20} {:>7.0}/s vs {:>7.0}/s (kindling/cargo-lambda {ratio})",
                    r.conns,
                    r.server,
                    r.rps(),
                    cl.rps(),
                );
            }
        }

        let _ = writeln!(o, "\n6. TARGETS (2-core machine)");
        let pass = |b: bool| if b { "PASS" } else { "MISS" };
        for r in self
            .lat
            .iter()
            .filter(|r| r.server.starts_with("kindling") && r.runtime == "rust")
        {
            let v = r.s.pct_us(50.0);
            let _ = writeln!(
                o,
                "  warm overhead p50 < 150 us (rust, {}; client round trip, an upper bound): {v:.1} us  {}",
                r.server,
                pass(v < 150.0)
            );
        }
        for srv in self
            .tp
            .iter()
            .filter(|r| r.server.starts_with("kindling"))
            .map(|r| r.server.clone())
            .collect::<std::collections::BTreeSet<_>>()
        {
            let best = self
                .tp
                .iter()
                .filter(|r| r.server == srv)
                .max_by(|a, b| a.rps().total_cmp(&b.rps()));
            if let Some(b) = best {
                let _ = writeln!(
                    o,
                    "  throughput > 15,000 invokes/s (rust, {srv}): best {:.0}/s at {} clients  {}",
                    b.rps(),
                    b.conns,
                    pass(b.rps() > 15000.0)
                );
            }
        }
        for iso in &p.isolations {
            for (rt, limit) in [("rust", 10.0), ("python", 40.0)] {
                for case in ["first invoke after deploy", "invoke after idle reap"] {
                    if let Some((c, i)) = self.cold_median(iso, rt, case) {
                        let _ = writeln!(
                            o,
                            "  cold start < {limit:.0} ms ({rt}, {iso}, {case}): client {c:.2} ms {} / init {i:.2} ms {}",
                            pass(c < limit),
                            pass(i < limit)
                        );
                    }
                }
            }
        }

        let now = crate::previous::parse(&o);
        let before = self
            .previous
            .as_ref()
            .map(|(label, text)| (label.as_str(), crate::previous::parse(text)));
        crate::previous::render(&mut o, &now, before.as_ref().map(|(l, p)| (*l, p)), ncpu());

        if !self.notes.is_empty() {
            let _ = writeln!(o, "\nNOTES");
            for n in &self.notes {
                let _ = writeln!(o, "  {n}");
            }
        }
        o
    }
}
