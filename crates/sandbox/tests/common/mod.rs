//! Helpers shared by the integration tests: specs, collecting output, polling with deadlines,
//! and finding every process a test started (they all carry a marker in their environment).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kindling_sandbox::{EnvironmentSpec, OutputLine, Stream};

#[allow(unused_imports)] // each test binary uses some of them
pub use kindling_test_support::{cannot_run, eventually_async as eventually, is_root};

pub const MARK_VAR: &str = "KINDLING_SANDBOX_TEST_MARK";

/// An id unique to this test process and call.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A spec running `/bin/sh -c script`, with the marker and PATH in its environment.
pub fn shell(id: &str, script: &str) -> EnvironmentSpec {
    EnvironmentSpec {
        id: id.to_string(),
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        env: vec![
            (MARK_VAR.into(), id.into()),
            ("PATH".into(), "/usr/bin:/bin".into()),
        ],
        cwd: "/".into(),
        memory_mb: 128,
        pids_max: 256,
        tmp_size_mb: 16,
        ..Default::default()
    }
}

/// Collects lines until the channel closes.
pub async fn all_lines(mut rx: kindling_sandbox::Output, limit: Duration) -> Vec<OutputLine> {
    let mut lines = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(line)) => lines.push(line),
            Ok(None) => return lines,
            Err(_) => panic!("output did not end within {limit:?}; got {lines:?}"),
        }
    }
}

/// The text of the lines of one stream.
pub fn texts(lines: &[OutputLine], stream: Stream) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.stream == stream)
        .map(|l| l.line.clone())
        .collect()
}

/// Receives lines until `done` says the collected ones are enough.
pub async fn lines_until(
    rx: &mut kindling_sandbox::Output,
    limit: Duration,
    done: impl Fn(&[OutputLine]) -> bool,
) -> Vec<OutputLine> {
    let mut lines = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    while !done(&lines) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(line)) => lines.push(line),
            Ok(None) => panic!("output ended early: {lines:?}"),
            Err(_) => panic!("expected output did not come within {limit:?}; got {lines:?}"),
        }
    }
    lines
}

/// Pids of live (non-zombie) processes whose environment carries `MARK_VAR=mark`.
pub fn marked_processes(mark: &str) -> Vec<i32> {
    let needle = format!("{MARK_VAR}={mark}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == needle.as_bytes()))
        })
        .collect()
}

/// User plus system CPU time of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("process stat");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// A directory everyone can read (TempDir makes 0700 ones).
pub fn open_dir(path: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.to_path_buf()
}

/// Lets `settle` pass, then requires that no process carrying `mark` is (or stays) alive. A
/// child cloned just before a spawn was cancelled carries the marker only once it has executed
/// (and may do so before its supervisor kills it), so an empty scan right away proves nothing;
/// a leaked process, though, would stay forever.
pub async fn settles_free_of(mark: &str, settle: Duration) {
    tokio::time::sleep(settle).await;
    eventually(
        "nothing outlives the environment",
        Duration::from_secs(10),
        || marked_processes(mark).is_empty(),
    )
    .await;
}

/// Runs `spec` (a `/bin/sh -c` spec; its script is replaced) with the read end of a start gate
/// passed as fd 3 and the write end of a result pipe as fd 4, and checks that: the program has
/// exactly 0-4 open (plus the one `ls` opens for reading the directory); it waits at the gate
/// until the test writes to it; what it writes to fd 4 arrives, followed by end of file once
/// it closes fd 4 while it keeps running (no copy of the write end is left in the supervisor
/// or in Kindling).
pub async fn passes_descriptors_at_fixed_numbers(
    sandbox: &kindling_sandbox::Sandbox,
    mut spec: EnvironmentSpec,
) {
    use std::io::{Read, Write};
    use std::sync::Arc;

    let (gate_read, mut gate_write) = std::io::pipe().expect("gate pipe");
    let (mut result_read, result_write) = std::io::pipe().expect("result pipe");
    spec.args = vec![
        "-c".into(),
        "ls /proc/self/fd; echo listed; read -r word <&3 && echo \"gate said $word\"; \
         exec 3<&-; echo 'through fd 4' >&4; exec 4>&-; echo done; exec sleep 60"
            .into(),
    ];
    spec.pass_fds = vec![Arc::new(gate_read.into()), Arc::new(result_write.into())];
    let mut env = sandbox.spawn(spec).await.expect("spawn");
    let mut output = env.take_output().expect("output");

    let listed = lines_until(&mut output, Duration::from_secs(10), |lines| {
        lines.iter().any(|l| l.line == "listed")
    })
    .await;
    let fds: Vec<String> = texts(&listed, Stream::Stdout)
        .into_iter()
        .take_while(|l| l != "listed")
        .collect();
    assert_eq!(fds, ["0", "1", "2", "3", "4", "5"], "open descriptors");

    // Held at the gate.
    let early = tokio::time::timeout(Duration::from_millis(300), output.recv()).await;
    assert!(early.is_err(), "went past the gate early: {early:?}");
    gate_write.write_all(b"go\n").expect("open the gate");
    let rest = lines_until(&mut output, Duration::from_secs(10), |lines| {
        lines.iter().any(|l| l.line == "done")
    })
    .await;
    assert_eq!(texts(&rest, Stream::Stdout), ["gate said go", "done"]);

    let got = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        result_read.read_to_string(&mut text).map(|_| text)
    });
    let got = tokio::time::timeout(Duration::from_secs(10), got)
        .await
        .expect("end of file on the result pipe: a copy of its write end stayed open")
        .expect("reader thread")
        .expect("read");
    assert_eq!(got, "through fd 4\n");
    env.kill();
    assert_eq!(env.wait().await, kindling_sandbox::Exit::Killed);
}
