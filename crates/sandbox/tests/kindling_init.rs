//! `kindling-init` (src/sys/init.rs) run directly, with a state of the test's making: what
//! the supervisor passes it must be what it reads.

use std::process::{Command, Stdio};

/// The program as the crate embeds it.
static IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kindling-init"));

/// Runs the image with `KINDLING_INIT=state`, stdin /dev/null and stdout a pipe; its exit
/// code and what it wrote.
fn run_init(state: &str) -> (Option<i32>, Vec<u8>) {
    use std::os::unix::fs::PermissionsExt;
    // Under the target directory, where test binaries run (a host's /tmp may be noexec).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let path = dir.path().join("kindling-init");
    std::fs::write(&path, IMAGE).expect("write the image");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let output = Command::new(&path)
        .env_clear()
        .env("KINDLING_INIT", state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .expect("run kindling-init");
    (output.status.code(), output.stdout)
}

/// `report::Record::Killed`'s 16 bytes.
fn killed_record() -> Vec<u8> {
    [4u32, 0, 0, 0]
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .collect()
}

/// The supervisor writes each number of the state as a full i32 (`StateBuf::push_decimal`):
/// 10 digits must parse as well as 1. Here the lifeline (fd 0, /dev/null) is readable at once,
/// so the program tears down (Process mode: nothing to kill) and reports `Killed` on the
/// report descriptor (fd 1), with a 10-digit program pid and control descriptor (the latter
/// invalid: poll flags it, the attach fails and it is dropped).
#[test]
fn every_i32_of_the_state_is_read() {
    let (code, out) = run_init("1:0:1:0:-1:-1:-1:-1:");
    assert_eq!((code, &out), (Some(0), &killed_record()), "short numbers");
    let (code, out) = run_init("2147483647:0:1:0:-1:1000000000:-1:-1:");
    assert_eq!(
        (code, &out),
        (Some(0), &killed_record()),
        "10-digit numbers"
    );
    let (code, out) = run_init("2147483648:0:1:0:-1:-1:-1:-1:");
    assert_eq!((code, out.len()), (Some(121), 0), "beyond i32 is refused");
    let (code, _) = run_init("");
    assert_eq!(code, Some(121), "an empty state is refused");
}
