//! Reading /proc: process trees, CPU time and memory of a server and its children.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    /// utime + stime in clock ticks (all threads).
    pub cpu_ticks: u64,
}

fn parse_stat(pid: i32) -> Option<Proc> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: split after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
    let ppid = f.get(1)?.parse().ok()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(Proc {
        pid,
        ppid,
        cpu_ticks: utime + stime,
    })
}

/// Every process on the machine.
pub fn all() -> Vec<Proc> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(parse_stat)
        .collect()
}

/// The descendants of `root` (not `root` itself), in breadth-first order.
pub fn descendants(root: i32) -> Vec<Proc> {
    let procs = all();
    let mut children: HashMap<i32, Vec<&Proc>> = HashMap::new();
    for p in &procs {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut out = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        for c in children.get(&pid).map(Vec::as_slice).unwrap_or(&[]) {
            out.push((*c).clone());
            queue.push(c.pid);
        }
    }
    out
}

/// Direct children of `root`, each with its own subtree (the subtree includes the child).
pub fn subtrees(root: i32) -> Vec<(i32, Vec<i32>)> {
    let procs = all();
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for p in &procs {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut out = Vec::new();
    for &top in children.get(&root).map(Vec::as_slice).unwrap_or(&[]) {
        let mut tree = vec![top];
        let mut i = 0;
        while i < tree.len() {
            if let Some(cs) = children.get(&tree[i]) {
                tree.extend(cs.iter().copied());
            }
            i += 1;
        }
        out.push((top, tree));
    }
    out
}

/// Time the threads of `pid` spent runnable but waiting for a CPU (schedstat), in nanoseconds.
pub fn runq_wait_ns(pid: i32) -> u64 {
    let Ok(rd) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    rd.filter_map(|e| {
        let e = e.ok()?;
        let s = fs::read_to_string(e.path().join("schedstat")).ok()?;
        s.split_whitespace().nth(1)?.parse::<u64>().ok()
    })
    .sum()
}

/// The value of an environment variable of `pid`.
pub fn environ_var(pid: i32, key: &str) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/environ")).ok()?;
    raw.split(|b| *b == 0).find_map(|kv| {
        let kv = std::str::from_utf8(kv).ok()?;
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

pub fn cpu_ticks(pid: i32) -> u64 {
    parse_stat(pid).map(|p| p.cpu_ticks).unwrap_or(0)
}

pub fn exe(pid: i32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/exe")).ok()
}

pub fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn kb_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Resident set size in KiB.
pub fn rss_kb(pid: i32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| kb_field(&s, "VmRSS:"))
        .unwrap_or(0)
}

/// Proportional set size in KiB (shared pages split among their users).
pub fn pss_kb(pid: i32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| kb_field(&s, "Pss:"))
        .unwrap_or(0)
}

/// Private (unshared) memory in KiB: what exiting this process would give back.
pub fn private_kb(pid: i32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .map(|s| {
            kb_field(&s, "Private_Clean:").unwrap_or(0)
                + kb_field(&s, "Private_Dirty:").unwrap_or(0)
        })
        .unwrap_or(0)
}

/// The memory cgroup of `pid` and its usage in bytes.
pub fn memcg_usage(pid: i32) -> Option<(String, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
        if ctrl.split(',').any(|c| c == "memory") {
            let usage =
                fs::read_to_string(format!("/sys/fs/cgroup/memory{path}/memory.usage_in_bytes"))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()?;
            return Some((path.to_string(), usage));
        }
        if ctrl.is_empty() {
            // cgroup v2 unified hierarchy.
            for base in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
                if let Ok(s) = fs::read_to_string(format!("{base}{path}/memory.current"))
                    && let Ok(v) = s.trim().parse()
                {
                    return Some((path.to_string(), v));
                }
            }
        }
    }
    None
}

/// Machine-wide busy and total CPU ticks from /proc/stat.
pub fn machine_ticks() -> (u64, u64) {
    let Ok(s) = fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let Some(line) = s.lines().next() else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

pub fn clk_tck() -> u64 {
    // SAFETY-free: sysconf is a plain libc query.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// CPU time of our own process (user + system), in microseconds.
pub fn self_cpu_us() -> u64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

/// A snapshot of CPU consumed by a server process, its descendants, this client and the machine.
#[derive(Debug, Clone, Copy)]
pub struct CpuSnap {
    server_ticks: u64,
    children_ticks: u64,
    client_us: u64,
    server_wait_ns: u64,
    children_wait_ns: u64,
    client_wait_ns: u64,
    machine_busy: u64,
    machine_total: u64,
}

impl CpuSnap {
    pub fn take(server_pid: i32) -> CpuSnap {
        let kids = descendants(server_pid);
        let children_ticks = kids.iter().map(|p| p.cpu_ticks).sum();
        let children_wait_ns = kids.iter().map(|p| runq_wait_ns(p.pid)).sum();
        let (machine_busy, machine_total) = machine_ticks();
        CpuSnap {
            server_ticks: cpu_ticks(server_pid),
            children_ticks,
            client_us: self_cpu_us(),
            server_wait_ns: runq_wait_ns(server_pid),
            children_wait_ns,
            client_wait_ns: runq_wait_ns(std::process::id() as i32),
            machine_busy,
            machine_total,
        }
    }
}

/// CPU used between two snapshots, in microseconds, plus the CPU used by everything else.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    pub server_us: f64,
    pub children_us: f64,
    pub client_us: f64,
    /// Time spent runnable but waiting for a CPU (run queue), in microseconds.
    pub server_wait_us: f64,
    pub children_wait_us: f64,
    pub client_wait_us: f64,
    /// Busy CPU on the machine not accounted to server, children or client (other users' builds).
    pub foreign_us: f64,
    pub wall_us: f64,
}

impl CpuUse {
    /// Share of the machine's CPU used by other processes, in percent.
    pub fn foreign_pct(&self) -> f64 {
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as f64;
        100.0 * self.foreign_us / (self.wall_us * ncpu).max(1.0)
    }

    pub fn add(&mut self, o: &CpuUse) {
        self.server_us += o.server_us;
        self.children_us += o.children_us;
        self.client_us += o.client_us;
        self.server_wait_us += o.server_wait_us;
        self.children_wait_us += o.children_wait_us;
        self.client_wait_us += o.client_wait_us;
        self.foreign_us += o.foreign_us;
        self.wall_us += o.wall_us;
    }

    pub fn between(a: &CpuSnap, b: &CpuSnap) -> CpuUse {
        let tick_us = 1_000_000.0 / clk_tck() as f64;
        let server_us = b.server_ticks.saturating_sub(a.server_ticks) as f64 * tick_us;
        let children_us = b.children_ticks.saturating_sub(a.children_ticks) as f64 * tick_us;
        let client_us = b.client_us.saturating_sub(a.client_us) as f64;
        let busy_us = b.machine_busy.saturating_sub(a.machine_busy) as f64 * tick_us;
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as f64;
        let wall_us = b.machine_total.saturating_sub(a.machine_total) as f64 * tick_us / ncpu;
        CpuUse {
            server_us,
            children_us,
            client_us,
            server_wait_us: b.server_wait_ns.saturating_sub(a.server_wait_ns) as f64 / 1000.0,
            children_wait_us: b.children_wait_ns.saturating_sub(a.children_wait_ns) as f64 / 1000.0,
            client_wait_us: b.client_wait_ns.saturating_sub(a.client_wait_ns) as f64 / 1000.0,
            foreign_us: (busy_us - server_us - children_us - client_us).max(0.0),
            wall_us,
        }
    }
}
