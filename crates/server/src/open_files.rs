//! The process's open-file limit. Every execution environment holds about 14 descriptors in
//! Kindling (its output pipes, the Runtime API's listener and connections, cgroup files, its
//! process handle, its user id lock, its log file), so the usual soft limit of 1,024 ran out
//! near 75 environments ("Too many open files" from pipes, cgroups and the API's `accept`).
//! Like Go's runtime and most servers, `kindling serve` raises its soft limit to the hard one
//! at start; environments still get Lambda's 1,024 (the sandbox sets theirs).

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Descriptors one environment keeps open in Kindling (measured: 13-14), rounded up.
pub const PER_ENVIRONMENT: u64 = 16;

/// Above the kernel's default `fs.nr_open`, `setrlimit` refuses.
const CEILING: u64 = 1 << 20;

/// The open-file limit before and after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    pub before: u64,
    pub now: u64,
    pub hard: u64,
}

impl OpenFiles {
    /// Roughly how many environments fit beside `reserved` descriptors for connections,
    /// the store and logs.
    pub fn environments(&self, reserved: u64) -> u64 {
        self.now.saturating_sub(reserved) / PER_ENVIRONMENT
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (at most 2^20).
pub fn raise() -> nix::Result<OpenFiles> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let wanted = hard.min(CEILING).max(soft);
    if wanted > soft {
        setrlimit(Resource::RLIMIT_NOFILE, wanted, hard)?;
    }
    let (now, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    Ok(OpenFiles {
        before: soft,
        now,
        hard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_goes_up_to_the_hard_one() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        let got = raise().expect("raise");
        assert_eq!(got.now, hard.min(CEILING).max(got.before));
        assert_eq!(got.hard, hard);
        // Idempotent.
        assert_eq!(raise().expect("raise again").now, got.now);
    }

    #[test]
    fn environments_are_counted_after_the_reserve() {
        let f = OpenFiles {
            before: 1024,
            now: 20_000,
            hard: 20_000,
        };
        assert_eq!(f.environments(2_000), 1_125);
        assert_eq!(f.environments(30_000), 0);
    }
}
