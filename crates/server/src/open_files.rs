//! The process's open-file limit. Every execution environment holds about 14 descriptors in
//! Kindling (its output pipes, the Runtime API's listener and connections, cgroup files, its
//! process handle, its user id lock, its log file), so the usual soft limit of 1,024 ran out
//! near 75 environments ("Too many open files" from pipes, cgroups and the API's `accept`).
//! Like Go's runtime and most servers, `kindling serve` raises its soft limit to the hard one
//! at start; environments still get Lambda's 1,024 (the sandbox sets theirs).

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Descriptors one environment keeps open in Kindling (measured: 13-14 with its runtime's one
/// Runtime API connection), rounded up: room for the few Runtime API connections each
/// environment is guaranteed (`kindling_runtime_api::connections::GUARANTEED`).
pub const PER_ENVIRONMENT: u64 = 16;

/// The part of the room for environments set aside, by default, for the Runtime API
/// connections they hold beyond their guaranteed few (one in this many descriptors).
const SHARED_CONNECTIONS_PART: u64 = 8;

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
    /// the store and logs, and the share of [`Self::shared_connections`].
    pub fn environments(&self, reserved: u64) -> u64 {
        let room = self.now.saturating_sub(reserved);
        (room - room / SHARED_CONNECTIONS_PART) / PER_ENVIRONMENT
    }

    /// The Runtime API connections all environments may hold together beyond their
    /// guaranteed few: what `environments` of them leave of the room beside `reserved`
    /// (`None`: no cap on environments, then the share set aside by default).
    pub fn shared_connections(&self, reserved: u64, environments: Option<u64>) -> u64 {
        let room = self.now.saturating_sub(reserved);
        match environments {
            Some(n) => room.saturating_sub(n.saturating_mul(PER_ENVIRONMENT)),
            None => room / SHARED_CONNECTIONS_PART,
        }
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
        // 18 000 left, an eighth of it for the connections beyond each one's guaranteed few.
        assert_eq!(f.environments(2_000), 984);
        assert_eq!(f.environments(30_000), 0);
    }

    #[test]
    fn shared_connections_are_what_the_environments_leave() {
        let f = OpenFiles {
            before: 1024,
            now: 1024,
            hard: 1024,
        };
        // A low limit: 768 beside the reserve, 42 environments, 96 left for connections.
        let environments = f.environments(256);
        assert_eq!(environments, 42);
        assert_eq!(f.shared_connections(256, Some(environments)), 96);
        assert_eq!(f.shared_connections(256, None), 96);
        // More environments asked than fit: nothing is shared (each keeps its few).
        assert_eq!(f.shared_connections(256, Some(100)), 0);
        assert_eq!(f.shared_connections(256, Some(2)), 768 - 32);
    }
}
