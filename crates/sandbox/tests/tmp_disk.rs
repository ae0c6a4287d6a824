//! The disk-backed `/tmp` (`TmpBacking::Disk`) with real processes: not charged as memory,
//! ENOSPC at exactly its size, private to one environment, gone with it; and the fallback to
//! a tmpfs when images cannot be made. Needs root (fails, naming why,
//! otherwise).

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::*;
use kindling_sandbox::{
    EnvironmentSpec, Exit, IsolationMode, Sandbox, SandboxConfig, SandboxError, Stream, TmpBacking,
};
use tempfile::TempDir;

const LIMIT: Duration = Duration::from_secs(60);
const HOST_PATHS: [&str; 5] = ["/usr", "/bin", "/lib", "/lib64", "/sbin"];
const MIB: u64 = 1024 * 1024;

/// The image directory of the shared sandbox, on the disk the tests run from (not /tmp). The
/// sandbox leaves it empty; one fixed name, so runs do not pile up directories.
fn image_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_TARGET_TMPDIR"), "/tmp-disk-images"))
}

fn sandbox() -> Arc<Sandbox> {
    static MADE: OnceLock<Option<Arc<Sandbox>>> = OnceLock::new();
    if !is_root() {
        cannot_run("Namespaces mode needs root");
    }
    let made = MADE.get_or_init(|| {
        let config = SandboxConfig {
            cgroup_parent: "kindling-test-tmpdisk".into(),
            tmp: TmpBacking::Disk,
            tmp_image_dir: image_dir().to_path_buf(),
            ..Default::default()
        };
        match Sandbox::new(IsolationMode::namespaces(), config) {
            Ok(sandbox) => Some(Arc::new(sandbox)),
            Err(SandboxError::IsolationUnavailable(e)) => {
                eprintln!("{e}");
                None
            }
            Err(e) => panic!("{e}"),
        }
    });
    match made {
        None => cannot_run("Namespaces mode is unavailable here"),
        Some(sandbox) if sandbox.config().tmp != TmpBacking::Disk => {
            cannot_run("disk-backed /tmp is unavailable here (see the warning)")
        }
        Some(sandbox) => Arc::clone(sandbox),
    }
}

struct Task(TempDir);

impl Task {
    fn new() -> Task {
        let dir = tempfile::tempdir().expect("task dir");
        open_dir(dir.path());
        Task(dir)
    }

    fn spec(&self, id: &str, script: &str, memory_mb: u32, tmp_mb: u32) -> EnvironmentSpec {
        EnvironmentSpec {
            task_root: self.0.path().to_path_buf(),
            tmp_dir: "/nonexistent/not-used".into(),
            cwd: "/var/task".into(),
            memory_mb,
            tmp_size_mb: tmp_mb,
            readonly_host_paths: HOST_PATHS.iter().map(PathBuf::from).collect(),
            uid: Some(100_777),
            gid: Some(100_777),
            ..shell(id, script)
        }
    }
}

async fn run(sandbox: &Sandbox, spec: EnvironmentSpec) -> (Vec<String>, Vec<String>, Exit) {
    let mut env = sandbox.spawn(spec).await.expect("spawn");
    let lines = all_lines(env.take_output().expect("output"), LIMIT).await;
    let exit = env.wait().await;
    (
        texts(&lines, Stream::Stdout),
        texts(&lines, Stream::Stderr),
        exit,
    )
}

#[tokio::test]
async fn a_128_mb_function_writes_200_mb_to_tmp() {
    let sandbox = sandbox();
    let task = Task::new();
    let script = "dd if=/dev/zero of=/tmp/big bs=1M count=200 2>/dev/null && echo wrote \
                  $(stat -c %s /tmp/big); stat -c '%U %a' /tmp; ls -A /tmp";
    let spec = task.spec(&unique("tmp200"), script, 128, 512);
    let (out, err, exit) = run(&sandbox, spec).await;
    assert_eq!(exit, Exit::Code(0), "{out:?} {err:?}");
    assert_eq!(out[0], format!("wrote {}", 200 * MIB), "{err:?}");
    // Owned by the environment's user (no name inside), sticky and writable by all; empty
    // apart from what the program wrote (no lost+found).
    assert_eq!(out[1], "UNKNOWN 1777");
    assert_eq!(out[2..], ["big"]);
}

#[tokio::test]
async fn writing_past_the_size_is_enospc_at_exactly_the_size() {
    let sandbox = sandbox();
    let task = Task::new();
    // 300 MiB asked, 64 MiB /tmp.
    let script = "dd if=/dev/zero of=/tmp/fill bs=1M count=300 2>&1 | grep -o 'No space left on device' | head -1; \
                  echo size $(stat -c %s /tmp/fill)";
    let spec = task.spec(&unique("tmpfull"), script, 128, 64);
    let (out, err, exit) = run(&sandbox, spec).await;
    assert_eq!(exit, Exit::Code(0), "{out:?} {err:?}");
    assert_eq!(out[0], "No space left on device", "{out:?}");
    let written: u64 = out[1]
        .strip_prefix("size ")
        .and_then(|s| s.parse().ok())
        .expect("size");
    assert!(
        (63 * MIB..=64 * MIB).contains(&written),
        "ENOSPC after {written} bytes of a 64 MiB /tmp"
    );
}

#[tokio::test]
async fn tmp_is_private_to_one_environment_and_gone_with_it() {
    let sandbox = sandbox();
    let task = Task::new();
    // Prints the device of its /tmp, writes a file, waits at the gate (fd 3), reads it back.
    let script = "grep ' /tmp ' /proc/self/mountinfo | sed 's/.* - [^ ]* \\([^ ]*\\) .*/\\1/'; \
                  echo secret > /tmp/mine; read -r _ <&3; cat /tmp/mine";
    let (gate, mut release) = std::io::pipe().expect("pipe");
    let mut env = sandbox
        .spawn(EnvironmentSpec {
            pass_fds: vec![Arc::new(gate.into())],
            ..task.spec(&unique("tmpone"), script, 128, 512)
        })
        .await
        .expect("spawn");
    let mut output = env.take_output().expect("output");
    let first = lines_until(&mut output, LIMIT, |l| !l.is_empty()).await;
    let device = first[0].line.clone();
    let name = device.strip_prefix("/dev/").expect("a /dev/loopN device");
    assert!(name.starts_with("loop"), "{device}");
    let backing = PathBuf::from(format!("/sys/block/{name}/loop/backing_file"));
    let image = std::fs::read_to_string(&backing).expect("backing file");
    // The kernel names the backing file by its resolved path (the target directory may be
    // reached through a symbolic link).
    let dir = std::fs::canonicalize(image_dir()).expect("image directory");
    assert!(
        image.starts_with(&*dir.to_string_lossy()) && image.trim_end().ends_with("(deleted)"),
        "backed by {image}: an unlinked file in the image directory"
    );

    // Another environment, meanwhile: an empty /tmp of its own.
    let (out, _, exit) = run(
        &sandbox,
        task.spec(&unique("tmptwo"), "ls -A /tmp; echo listed", 128, 512),
    )
    .await;
    assert_eq!(exit, Exit::Code(0));
    assert_eq!(out, ["listed"], "a new environment saw another's /tmp");

    // The first one's file is still there: its /tmp lives as long as it does.
    std::io::Write::write_all(&mut release, b"go\n").expect("release");
    let rest = lines_until(&mut output, LIMIT, |l| !l.is_empty()).await;
    assert_eq!(texts(&rest, Stream::Stdout), ["secret"]);
    assert!(env.wait().await.success());

    // Then its filesystem is gone: the loop device let go of the image (its blocks are freed).
    eventually("the loop device detaches from the image", LIMIT, || {
        std::fs::read_to_string(&backing).map_or(true, |now| now != image)
    })
    .await;
    // And image files never stay in the directory (only while one is being made).
    eventually("the image directory empties", LIMIT, || {
        std::fs::read_dir(image_dir()).is_ok_and(|mut d| d.next().is_none())
    })
    .await;
}

#[tokio::test]
async fn without_images_tmp_falls_back_to_a_tmpfs() {
    if !is_root() {
        cannot_run("Namespaces mode needs root");
    }
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("dir");
    let config = SandboxConfig {
        cgroup_parent: "kindling-test-tmpdisk-fallback".into(),
        tmp: TmpBacking::Disk,
        tmp_image_dir: dir.path().join("images"),
        mkfs_ext4: "/nonexistent/mkfs.ext4".into(),
        ..Default::default()
    };
    let sandbox = match Sandbox::new(IsolationMode::namespaces(), config) {
        Ok(sandbox) => sandbox,
        Err(e) if e.is_isolation_unavailable() => {
            cannot_run(&e.to_string());
        }
        Err(e) => panic!("{e}"),
    };
    assert_eq!(sandbox.config().tmp, TmpBacking::Tmpfs);
    let task = Task::new();
    let (out, _, exit) = run(
        &sandbox,
        task.spec(&unique("tmpfallback"), "stat -f -c %T /tmp", 128, 16),
    )
    .await;
    assert_eq!(exit, Exit::Code(0));
    assert_eq!(out, ["tmpfs"]);
}

#[tokio::test]
async fn a_burst_of_cold_starts_each_gets_a_disk_tmp() {
    if !is_root() {
        cannot_run("Namespaces mode needs root");
    }
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("dir");
    let config = SandboxConfig {
        cgroup_parent: "kindling-test-tmpdisk-burst".into(),
        tmp: TmpBacking::Disk,
        tmp_image_dir: dir.path().join("images"),
        tmp_pool_per_size: 1,
        ..Default::default()
    };
    let sandbox = match Sandbox::new(IsolationMode::namespaces(), config) {
        Ok(sandbox) if sandbox.config().tmp == TmpBacking::Disk => Arc::new(sandbox),
        Ok(_) => {
            cannot_run("disk-backed /tmp is unavailable here (see the warning)");
        }
        Err(e) if e.is_isolation_unavailable() => {
            cannot_run(&e.to_string());
        }
        Err(e) => panic!("{e}"),
    };
    let task = Arc::new(Task::new());
    // More than the pool holds: most images are made there and then, at the same time, each
    // racing for a free loop device.
    let runs: Vec<_> = (0..48)
        .map(|_| {
            let (sandbox, task) = (Arc::clone(&sandbox), Arc::clone(&task));
            tokio::spawn(async move {
                let spec = task.spec(&unique("tmpburst"), "stat -f -c %T /tmp", 128, 512);
                run(&sandbox, spec).await
            })
        })
        .collect();
    for handle in runs {
        let (out, err, exit) = handle.await.expect("task");
        assert_eq!(exit, Exit::Code(0), "{err:?}");
        assert_eq!(out, ["ext2/ext3"], "a /tmp that is not the disk-backed one");
    }
}

#[tokio::test]
async fn when_images_cannot_be_made_environments_get_a_tmpfs() {
    if !is_root() {
        cannot_run("Namespaces mode needs root");
    }
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("dir");
    let config = SandboxConfig {
        cgroup_parent: "kindling-test-tmpdisk-broken".into(),
        tmp: TmpBacking::Disk,
        tmp_image_dir: dir.path().join("images"),
        // Passes the checks at construction; fails when the pool's thread runs it.
        mkfs_ext4: "/bin/false".into(),
        ..Default::default()
    };
    let sandbox = match Sandbox::new(IsolationMode::namespaces(), config) {
        Ok(sandbox) => sandbox,
        Err(e) if e.is_isolation_unavailable() => {
            cannot_run(&e.to_string());
        }
        Err(e) => panic!("{e}"),
    };
    let task = Task::new();
    for _ in 0..2 {
        let (out, err, exit) = run(
            &sandbox,
            task.spec(&unique("tmpbroken"), "stat -f -c %T /tmp", 128, 16),
        )
        .await;
        assert_eq!(exit, Exit::Code(0), "{err:?}");
        assert_eq!(out, ["tmpfs"]);
    }
}
