//! Tests that need root (namespaces, cgroups, network namespaces) or a host feature.
//!
//! Off CI such a test reports itself skipped; when `scripts/test` runs as root it sets
//! [`REQUIRE_ROOT_TESTS`], and a test that still cannot run fails instead of passing unseen.

use std::io::Write;

/// Set to `1` by the test script when it runs as root: a test that cannot run then fails
/// instead of being skipped.
pub const REQUIRE_ROOT_TESTS: &str = "KINDLING_REQUIRE_ROOT_TESTS";

/// Called by a test that cannot run here (`why`), just before it returns. Panics, failing the
/// test, when `KINDLING_REQUIRE_ROOT_TESTS=1`; otherwise writes a `SKIPPED` line straight to
/// the process's stderr (the harness captures `eprintln!`, which would hide it).
pub fn cannot_run(why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    assert!(
        !std::env::var(REQUIRE_ROOT_TESTS).is_ok_and(|v| v == "1"),
        "{test} cannot run here ({why}), and {REQUIRE_ROOT_TESTS}=1 requires it"
    );
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {why} (run as root, with {REQUIRE_ROOT_TESTS}=1 to make this a failure)"
    );
}

/// True when the process's effective uid is 0 (read from `/proc/self/status`, no libc).
pub fn is_root() -> bool {
    // The effective uid is the second field of the Uid: line.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_root_agrees_with_the_process_uid() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        let euid: u32 = uid_line.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert_eq!(is_root(), euid == 0);
    }
}
