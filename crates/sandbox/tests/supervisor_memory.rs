//! The private memory of an idle environment's supervisor must not depend on the memory of the
//! process that spawned it (Kindling). A supervisor is cloned from Kindling; if it kept that
//! copy-on-write image, every page Kindling writes after the clone would become the
//! supervisor's own copy: up to Kindling's whole resident memory per environment.
//!
//! The test holds a ballast of anonymous memory (written before the spawn), spawns an
//! environment in each mode, reads its supervisor's `smaps_rollup`, rewrites the ballast and
//! reads it again. It prints the figures (benches/results/supervisor-memory-*.txt quote them).
//! Root only (Namespaces mode).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use kindling_sandbox::{EnvironmentSpec, IsolationMode, NetworkMode, Sandbox, SandboxConfig};

const LIMIT: Duration = Duration::from_secs(20);
const BALLAST_MB: usize = 64;
/// What an idle supervisor may keep privately, whatever its parent does: its own stack,
/// data and the few pages of its start.
const BOUND_KIB: u64 = 1024;

/// (Private_Clean + Private_Dirty, Pss, Rss) of `pid`, KiB.
fn private_pss_rss(pid: u32) -> (u64, u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).expect("smaps_rollup");
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (
        field("Private_Clean") + field("Private_Dirty"),
        field("Pss"),
        field("Rss"),
    )
}

fn parent_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("PPid")
}

/// What the memory cgroup of `pid` is charged, KiB (v1 `memory.usage_in_bytes`, v2
/// `memory.current`), and its path.
fn memcg_charge(pid: u32) -> Option<(String, u64)> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let (v1, v2) = cgroups.lines().fold((None, None), |(v1, v2), line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
        match (controllers, path) {
            (Some(c), Some(p)) if c.split(',').any(|c| c == "memory") => (Some(p.to_string()), v2),
            (Some(""), Some(p)) => (v1, Some(p.to_string())),
            _ => (v1, v2),
        }
    });
    let read = |file: PathBuf| -> Option<u64> {
        Some(
            std::fs::read_to_string(file)
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()?
                / 1024,
        )
    };
    let root = Path::new("/sys/fs/cgroup");
    if let Some(path) = v1 {
        let dir = root.join("memory").join(path.trim_start_matches('/'));
        return Some((path, read(dir.join("memory.usage_in_bytes"))?));
    }
    let path = v2?;
    let dir = root.join(path.trim_start_matches('/'));
    Some((path, read(dir.join("memory.current"))?))
}

/// Writes every page of the ballast (a new value each round).
fn churn(ballast: &mut [u8], round: u8) {
    for page in ballast.chunks_mut(4096) {
        page[0] = round;
    }
    std::hint::black_box(&ballast);
}

fn sleeper(id: &str, namespaces: bool) -> EnvironmentSpec {
    let base = shell(id, "exec sleep 60");
    if !namespaces {
        return base;
    }
    let task = std::env::temp_dir().join(format!("{id}-task"));
    std::fs::create_dir_all(&task).expect("task dir");
    EnvironmentSpec {
        task_root: task,
        tmp_dir: std::env::temp_dir().join(format!("{id}-tmp")),
        readonly_host_paths: ["/usr", "/bin", "/lib", "/lib64", "/sbin"]
            .iter()
            .map(PathBuf::from)
            .collect(),
        ..base
    }
}

async fn measure(sandbox: &Sandbox, namespaces: bool, ballast: &mut [u8]) -> (u64, u64) {
    let mode = if namespaces { "namespaces" } else { "process" };
    let id = unique(&format!("supmem-{mode}"));
    let env = sandbox
        .spawn(sleeper(&id, namespaces))
        .await
        .expect("spawn");
    let program = env.pid().expect("program pid");
    let supervisor = parent_of(program);
    // The supervisor executes kindling-init just after `Started` (from a memfd: named
    // "memfd:kindling-" until it has renamed itself), so poll with a deadline.
    let comm = || {
        std::fs::read_to_string(format!("/proc/{supervisor}/comm"))
            .expect("comm")
            .trim()
            .to_string()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while comm() != "kindling-init" && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        comm(),
        "kindling-init",
        "the program's parent is its supervisor"
    );
    // The supervisor finishes its setup right after the program executes: wait until its
    // figure holds still.
    let mut settled = private_pss_rss(supervisor).0;
    let mut last = u64::MAX;
    eventually("the supervisor's memory settles", LIMIT, || {
        let steady = settled == last;
        (last, settled) = (settled, private_pss_rss(supervisor).0);
        steady
    })
    .await;
    let (_, pss, rss) = private_pss_rss(supervisor);
    let charge_before = memcg_charge(supervisor);
    churn(ballast, 2);
    churn(ballast, 3);
    let (after, pss_after, rss_after) = private_pss_rss(supervisor);
    let charge_after = memcg_charge(supervisor);
    let parent_private = private_pss_rss(std::process::id()).0;
    eprintln!(
        "{mode}: supervisor {supervisor}: private {settled} KiB (Pss {pss}, Rss {rss}) after its \
         start; {after} KiB (Pss {pss_after}, Rss {rss_after}) after its parent rewrote a \
         {BALLAST_MB} MiB ballast (parent private {parent_private} KiB); supervisor's memory \
         cgroup {:?} -> {:?} KiB",
        charge_before,
        charge_after.map(|c| c.1),
    );
    env.kill();
    env.wait().await;
    (settled, after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_supervisor_does_not_keep_a_copy_of_its_parents_memory() {
    if !is_root() {
        cannot_run("Namespaces mode needs root");
    }
    let mut ballast = vec![1u8; BALLAST_MB << 20];
    churn(&mut ballast, 1);

    let process = Sandbox::process();
    let config = SandboxConfig {
        cgroup_parent: "kindling-test-supmem".into(),
        ..Default::default()
    };
    let namespaces = match Sandbox::new(
        IsolationMode::Namespaces {
            network: NetworkMode::None,
        },
        config,
    ) {
        Ok(sandbox) => sandbox,
        Err(e) => cannot_run(&e.to_string()),
    };
    let mut failures = Vec::new();
    for (sandbox, ns) in [(&process, false), (&namespaces, true)] {
        let (start, after) = measure(sandbox, ns, &mut ballast).await;
        if start > BOUND_KIB || after > BOUND_KIB {
            failures.push(format!(
                "namespaces={ns}: {start} KiB at start, {after} KiB after the parent's churn"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "a supervisor keeps more than {BOUND_KIB} KiB privately: {failures:?}"
    );
}
