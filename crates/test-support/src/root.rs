//! Tests that need root (namespaces, cgroups, network namespaces) or a host feature.
//!
//! Such a test that cannot run here fails, naming why: a test that returned early would pass
//! without testing anything.

/// Called by a test that cannot run here (`why`): panics, failing the test with the reason
/// (run the tests as root on a host with the feature).
pub fn cannot_run(why: &str) -> ! {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    panic!("{test} cannot run here ({why}): run the tests as root on a host that has it");
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
