//! What all execution environments of this node may take of the host together, and Kindling's
//! own place in the OOM killer's order. Each environment is capped on its own (memory by
//! MemorySize, 1,024 processes), but without a node-wide cap 32 environments forking 1,024
//! sleeping processes each fill a default `kernel.pid_max` of 32,768 (Kindling, sshd, every
//! fork on the host then fails with EAGAIN), and 1,000 environments of 128 MB ask for more
//! memory than most hosts have. The sandbox sets these caps on the node's cgroup level.

use std::fs;

/// What is left to the host (Kindling, its store, sshd...) of the smaller of `kernel.pid_max`
/// and `kernel.threads-max`: a quarter.
pub fn default_max_processes(pid_max: u64, threads_max: u64) -> u64 {
    (pid_max.min(threads_max) / 4 * 3).max(1)
}

/// Memory for all environments: `MemTotal` less what the host keeps, an eighth of it and at
/// least 1 GiB, but never more than half.
pub fn default_max_memory_bytes(mem_total: u64) -> u64 {
    let kept = (mem_total / 8).max(1 << 30).min(mem_total / 2);
    mem_total - kept
}

/// A cap set by a flag: `0` means none, unset means what `derive` finds (None when it
/// cannot tell).
pub fn flag_cap<T: Default + PartialEq>(
    asked: Option<T>,
    derive: impl FnOnce() -> Option<T>,
) -> Option<T> {
    match asked {
        Some(n) if n == T::default() => None,
        Some(n) => Some(n),
        None => derive(),
    }
}

/// The node-wide process cap in effect: `asked` (0: none), else derived from the kernel's
/// limits (None when they cannot be read).
pub fn max_processes(asked: Option<u64>) -> Option<u64> {
    flag_cap(asked, || {
        let read = |name: &str| -> Option<u64> {
            fs::read_to_string(format!("/proc/sys/kernel/{name}"))
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        Some(default_max_processes(
            read("pid_max")?,
            read("threads-max")?,
        ))
    })
}

/// The node-wide memory cap in bytes: `asked_mib` (0: none), else derived from `MemTotal`.
pub fn max_memory_bytes(asked_mib: Option<u64>) -> Option<u64> {
    flag_cap(asked_mib.map(|mib| mib.saturating_mul(1 << 20)), || {
        let meminfo = fs::read_to_string("/proc/meminfo").ok()?;
        mem_total(&meminfo).map(default_max_memory_bytes)
    })
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Kindling's own `oom_score_adj`: under host memory pressure the OOM killer takes a
/// function's process (theirs is 1,000) or another host process before Kindling, whose RSS
/// (~100 MB with 1,000 idle environments) is larger than any small function's. Not -1,000:
/// a Kindling that leaks may still be killed.
pub const OWN_OOM_SCORE_ADJ: i32 = -900;

/// Lowers Kindling's own `oom_score_adj` (root only: lowering needs CAP_SYS_RESOURCE); best
/// effort, logged. Children inherit it; environments raise theirs.
pub fn protect_self_from_oom_killer() {
    if !nix::unistd::geteuid().is_root() {
        tracing::debug!("not root: Kindling's oom_score_adj stays as it is");
        return;
    }
    match fs::write("/proc/self/oom_score_adj", OWN_OOM_SCORE_ADJ.to_string()) {
        Ok(()) => tracing::info!(
            oom_score_adj = OWN_OOM_SCORE_ADJ,
            "the OOM killer takes functions before Kindling"
        ),
        Err(e) => tracing::warn!(error = %e, "could not lower Kindling's oom_score_adj"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_leave_the_host_a_share() {
        // This project's machine: pid_max 32,768, threads-max 192,735.
        assert_eq!(default_max_processes(32_768, 192_735), 24_576);
        assert_eq!(default_max_processes(4_194_304, 100_000), 75_000);
        assert_eq!(default_max_processes(0, 0), 1);
        let gib = 1u64 << 30;
        // 24 GB: an eighth kept. 4 GiB: 1 GiB kept. 1 GiB: half kept.
        assert_eq!(default_max_memory_bytes(24 * gib), 21 * gib);
        assert_eq!(default_max_memory_bytes(4 * gib), 3 * gib);
        assert_eq!(default_max_memory_bytes(gib), gib / 2);
    }

    #[test]
    fn flags_override_and_zero_means_none() {
        assert_eq!(max_processes(Some(0)), None);
        assert_eq!(max_processes(Some(500)), Some(500));
        assert!(max_processes(None).is_some_and(|n| n > 0));
        assert_eq!(max_memory_bytes(Some(0)), None);
        assert_eq!(max_memory_bytes(Some(300)), Some(300 << 20));
        assert!(max_memory_bytes(None).is_some_and(|n| n > 0));
    }

    #[test]
    fn reads_mem_total() {
        let meminfo = "MemTotal:       24683772 kB\nMemFree:        1 kB\n";
        assert_eq!(mem_total(meminfo), Some(24_683_772 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
    }
}
