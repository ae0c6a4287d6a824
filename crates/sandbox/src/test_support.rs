//! Support for unit tests that need root or a host feature.

use std::io::Write;

/// Set to `1` by the test script when it runs as root: a test that cannot run then fails
/// instead of being skipped.
pub(crate) const REQUIRE_ROOT_TESTS: &str = "KINDLING_REQUIRE_ROOT_TESTS";

/// Called by a test that cannot run here (`why`), just before it returns. Panics, failing the
/// test, when `KINDLING_REQUIRE_ROOT_TESTS=1`; otherwise writes a `SKIPPED` line straight to
/// the process's stderr (the harness captures `eprintln!`, which would hide it).
pub(crate) fn cannot_run(why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    if std::env::var(REQUIRE_ROOT_TESTS).is_ok_and(|v| v == "1") {
        panic!("{test} cannot run here ({why}), and {REQUIRE_ROOT_TESTS}=1 requires it");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {why} (run as root, with {REQUIRE_ROOT_TESTS}=1 to make this a failure)"
    );
}
