//! Namespaces mode with real processes. Every test fails, naming why, when not root or when the
//! host refuses namespaces.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use common::*;
use kindling_sandbox::{
    Environment, EnvironmentSpec, Exit, IsolationMode, LateExec, NetworkMode, Sandbox,
    SandboxConfig, SandboxError, Stream, TmpBacking,
};
use tempfile::TempDir;

const LIMIT: Duration = Duration::from_secs(20);
const CGROUP_PARENT: &str = "kindling-test";
const HOST_PATHS: [&str; 5] = ["/usr", "/bin", "/lib", "/lib64", "/sbin"];

/// The shared sandbox of a configuration, each with a cgroup parent of its own: the default
/// one (host network, host `/tmp`) under [`CGROUP_PARENT`], the others next to it.
fn sandbox_with(network: NetworkMode, tmp: TmpBacking) -> Arc<Sandbox> {
    let parent = match (network, tmp) {
        (NetworkMode::Host, TmpBacking::HostDir) => CGROUP_PARENT.to_string(),
        other => format!("{CGROUP_PARENT}-{other:?}")
            .replace(['(', ')', ' ', ','], "")
            .to_lowercase(),
    };
    sandbox_in(&parent, network, tmp)
}

/// The sandbox with cgroups under `parent`, made once per test process. `Sandbox::new` sweeps
/// the parent's empty child cgroups (what a killed predecessor left), and so would also remove
/// those that concurrent tests have just created and not yet joined: every parent is swept
/// once, before any environment of this process uses it.
fn sandbox_in(parent: &str, network: NetworkMode, tmp: TmpBacking) -> Arc<Sandbox> {
    type Made = Vec<((String, NetworkMode, TmpBacking), Option<Arc<Sandbox>>)>;
    static MADE: Mutex<Made> = Mutex::new(Vec::new());
    if !is_root() {
        cannot_run("Namespaces mode needs root");
    }
    let key = (parent.to_string(), network, tmp);
    let mut made = MADE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, sandbox)) = made.iter().find(|(k, _)| *k == key) {
        return match sandbox {
            Some(sandbox) => Arc::clone(sandbox),
            None => {
                cannot_run("Namespaces mode is unavailable here (see the first test's message)")
            }
        };
    }
    let config = SandboxConfig {
        cgroup_parent: parent.into(),
        tmp,
        ..Default::default()
    };
    let sandbox = match Sandbox::new(IsolationMode::Namespaces { network }, config) {
        Ok(sandbox) => Arc::new(sandbox),
        Err(e) if e.is_isolation_unavailable() => {
            // Recorded first, so that a required test's panic does not poison MADE for others.
            made.push((key, None));
            drop(made);
            cannot_run(&e.to_string());
        }
        Err(e) => panic!("{e}"),
    };
    made.push((key, Some(Arc::clone(&sandbox))));
    sandbox
}

fn sandbox() -> Arc<Sandbox> {
    sandbox_with(NetworkMode::Host, TmpBacking::HostDir)
}

/// Host directories of one environment: the code (with hello.txt) and the parent of its /tmp.
struct Dirs {
    task: TempDir,
    scratch: TempDir,
}

impl Dirs {
    fn new() -> Dirs {
        let task = tempfile::tempdir().expect("task dir");
        open_dir(task.path());
        std::fs::write(task.path().join("hello.txt"), "hello from the task root\n").expect("write");
        Dirs {
            task,
            scratch: tempfile::tempdir().expect("scratch dir"),
        }
    }

    fn tmp_dir(&self) -> PathBuf {
        self.scratch.path().join("tmp")
    }

    /// `/bin/sh -c script` inside, with /var/task as working directory.
    fn shell(&self, id: &str, script: &str) -> EnvironmentSpec {
        EnvironmentSpec {
            task_root: self.task.path().to_path_buf(),
            tmp_dir: self.tmp_dir(),
            cwd: "/var/task".into(),
            readonly_host_paths: HOST_PATHS.iter().map(PathBuf::from).collect(),
            ..shell(id, script)
        }
    }
}

/// The environment's cgroup directories that exist now, in any hierarchy.
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut candidates: Vec<PathBuf> = ["memory", "pids", "cpu", "freezer", "unified"]
        .iter()
        .map(|h| {
            Path::new("/sys/fs/cgroup")
                .join(h)
                .join(CGROUP_PARENT)
                .join(id)
        })
        .collect();
    candidates.push(Path::new("/sys/fs/cgroup").join(CGROUP_PARENT).join(id));
    candidates.into_iter().filter(|p| p.exists()).collect()
}

/// A file of the environment's cgroup for `controller` (v1 layout, else v2).
fn cgroup_file(controller: &str, id: &str, file: &str) -> PathBuf {
    let v1 = Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(CGROUP_PARENT)
        .join(id)
        .join(file);
    if v1.exists() {
        v1
    } else {
        Path::new("/sys/fs/cgroup")
            .join(CGROUP_PARENT)
            .join(id)
            .join(file)
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
async fn runs_as_an_unprivileged_pid_2_in_a_minimal_root() {
    let sandbox = sandbox();
    let dirs = Dirs::new();
    let id = unique("root");
    let script = r#"
        echo "uid $(id -u) gid $(id -g) groups $(id -G)"
        echo "host $(cat /proc/sys/kernel/hostname)"
        echo "pid $$ ppid $PPID"
        echo "init $(cat /proc/1/comm) $(tr '\0' ' ' < /proc/1/cmdline)"
        echo "top $(ls / | tr '\n' ' ')"
        echo "procs $(ls /proc | grep -c '^[0-9]')"
        for p in /root /work /home /etc /run /sys /var/lib; do test -e $p && echo "visible $p"; done
        echo "cwd $(pwd)"
        echo "nofile $(ulimit -n)"
    "#;
    let (out, err, exit) = run(&sandbox, dirs.shell(&id, script)).await;
    assert_eq!(exit, Exit::Code(0), "stderr: {err:?}");
    let expect = [
        "uid 993 gid 993 groups 993".to_string(),
        format!("host {id}"),
        "pid 2 ppid 1".to_string(),
        "init kindling-init kindling-init ".to_string(),
        "top bin dev lib lib64 opt proc sbin tmp usr var ".to_string(),
    ];
    assert_eq!(out[..5], expect, "{out:?}");
    let procs: u32 = out[5].strip_prefix("procs ").unwrap().parse().unwrap();
    assert!(
        procs <= 6,
        "only the environment's processes are visible: {out:?}"
    );
    assert!(!out.iter().any(|l| l.starts_with("visible")), "{out:?}");
    assert_eq!(out[out.len() - 2..], ["cwd /var/task", "nofile 1024"]);
}

/// The program cannot reach its supervisor, `kindling-init` (pid 1, root): no signal but
/// SIGCONT (the kernel allows it within a session, and it changes nothing for a process that
/// is not stopped; it stays pending, blocked), nothing of its memory, descriptors, program
/// image or state variable; and the supervisor goes on (it still reports the program's exit).
#[tokio::test]
async fn the_program_cannot_signal_or_inspect_its_supervisor() {
    let sandbox = sandbox();
    let dirs = Dirs::new();
    let script = r#"
        for s in TERM INT HUP QUIT KILL STOP CHLD USR1 CONT; do
            kill -s $s 1 2>/dev/null && echo "signal $s sent"
        done
        for f in environ maps mem fd fdinfo exe cwd root stack syscall auxv map_files; do
            ls /proc/1/$f/ >/dev/null 2>&1 || cat /proc/1/$f >/dev/null 2>&1 && echo "read $f"
        done
        echo "init $(cat /proc/1/comm)"
        exit 7
    "#;
    let (out, err, exit) = run(&sandbox, dirs.shell(&unique("pid1"), script)).await;
    assert_eq!(
        out,
        ["signal CONT sent", "init kindling-init"],
        "stderr: {err:?}"
    );
    assert_eq!(exit, Exit::Code(7));
}

#[tokio::test]
async fn task_root_is_read_only_and_tmp_is_private() {
    let sandbox = sandbox();
    let dirs = Dirs::new();
    let script = r#"
        cat /var/task/hello.txt
        touch /var/task/new 2>/dev/null || echo "task read-only"
        touch /new 2>/dev/null || echo "root read-only"
        touch /usr/new 2>/dev/null || echo "usr read-only"
        echo data > /tmp/written && echo "tmp writable"
        echo "tmp holds $(ls -A /tmp | tr '\n' ' ')"
        echo x > /dev/null && echo "null $(head -c 4 /dev/urandom | wc -c)"
    "#;
    let (out, err, exit) = run(&sandbox, dirs.shell(&unique("fs"), script)).await;
    assert_eq!(exit, Exit::Code(0), "stderr: {err:?}");
    assert_eq!(
        out,
        [
            "hello from the task root",
            "task read-only",
            "root read-only",
            "usr read-only",
            "tmp writable",
            "tmp holds written ",
            "null 4"
        ]
    );
    // /tmp is the environment's own host directory, owned by the sandbox user.
    assert_eq!(
        std::fs::read_to_string(dirs.tmp_dir().join("written")).unwrap(),
        "data\n"
    );
    assert!(!dirs.task.path().join("new").exists());

    // Another environment does not see it.
    let other = Dirs::new();
    let (out, _, _) = run(&sandbox, other.shell(&unique("fs2"), "ls -A /tmp | wc -l")).await;
    assert_eq!(out, ["0"]);
}

#[tokio::test]
async fn tmpfs_backing_enforces_the_size() {
    let sandbox = sandbox_with(NetworkMode::Host, TmpBacking::Tmpfs);
    let dirs = Dirs::new();
    let mut spec = dirs.shell(
        &unique("tmpfs"),
        "head -c 1048576 /dev/zero > /tmp/fits && echo fits; head -c 3145728 /dev/zero > /tmp/big 2>/dev/null || echo full",
    );
    spec.tmp_size_mb = 2;
    let (out, err, exit) = run(&sandbox, spec).await;
    assert_eq!(
        (out, exit),
        (vec!["fits".to_string(), "full".to_string()], Exit::Code(0)),
        "{err:?}"
    );
    assert!(!dirs.tmp_dir().exists(), "tmp_dir is not used with a tmpfs");
}

#[tokio::test]
async fn environment_is_exactly_the_given_one() {
    let sandbox = sandbox();
    let dirs = Dirs::new();
    let mut spec = dirs.shell(&unique("env"), "");
    spec.program = "/usr/bin/env".into();
    spec.args.clear();
    spec.env = vec![
        ("A".into(), "1".into()),
        ("LAMBDA_TASK_ROOT".into(), "/var/task".into()),
    ];
    let (mut out, _, exit) = run(&sandbox, spec).await;
    out.sort();
    assert_eq!(out, ["A=1", "LAMBDA_TASK_ROOT=/var/task"]);
    assert!(exit.success());
}

#[tokio::test]
async fn setup_and_exec_errors_are_returned() {
    let sandbox = sandbox();
    let dirs = Dirs::new();
    let mut spec = dirs.shell(&unique("noexec"), "");
    spec.program = "/var/task/bootstrap".into();
    match sandbox.spawn(spec).await {
        Err(SandboxError::Exec { source, .. }) => {
            assert_eq!(source.raw_os_error(), Some(libc::ENOENT))
        }
        other => panic!("expected an exec error, got {other:?}"),
    }
    let mut spec = dirs.shell(&unique("nocwd"), "");
    spec.cwd = "/var/task/missing".into();
    assert!(matches!(
        sandbox.spawn(spec).await,
        Err(SandboxError::Setup { .. })
    ));
    let mut spec = dirs.shell(&unique("relative"), "");
    spec.program = "sh".into();
    assert!(matches!(
        sandbox.spawn(spec).await,
        Err(SandboxError::InvalidSpec(_))
    ));
}

#[tokio::test]
async fn memory_limit_triggers_oom_detection() {
    let sandbox = sandbox();
    let dirs = Dirs::new();
    let mut spec = dirs.shell(&unique("oom"), "");
    spec.program = "/usr/bin/python3".into();
    spec.args = vec![
        "-c".into(),
        "b = bytearray(b'x') * (256 << 20); print('survived')".into(),
    ];
    spec.memory_mb = 48;
    let id = spec.id.clone();
    let (out, _, exit) = {
        let mut env = sandbox.spawn(spec).await.unwrap();
        let lines = all_lines(env.take_output().unwrap(), LIMIT).await;
        let exit = env.wait().await;
        assert!(env.oom_killed());
        let peak = env.memory_peak_bytes().unwrap();
        assert!(peak > 40 << 20 && peak <= 48 << 20, "peak {peak}");
        (texts(&lines, Stream::Stdout), (), exit)
    };
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(exit, Exit::OutOfMemory);
    assert!(cgroup_dirs(&id).is_empty());
}

#[tokio::test]
async fn pids_limit_contains_a_fork_bomb() {
    let sandbox = sandbox();
    let dirs = Dirs::new();
    let id = unique("bomb");
    let mut spec = dirs.shell(&id, "echo go; bomb() { bomb | bomb & }; bomb; sleep 1000");
    spec.pids_max = 24;
    let mut env = sandbox.spawn(spec).await.unwrap();
    let mut output = env.take_output().unwrap();
    lines_until(&mut output, LIMIT, |l| !l.is_empty()).await;
    let events = cgroup_file("pids", &id, "pids.events");
    eventually("forks are refused", LIMIT, || {
        std::fs::read_to_string(&events)
            .is_ok_and(|t| t.lines().any(|l| l.starts_with("max ") && l != "max 0"))
    })
    .await;
    for _ in 0..20 {
        let count = marked_processes(&id).len();
        assert!(count <= 24, "{count} processes");
        tokio::task::yield_now().await;
    }
    env.kill();
    assert_eq!(env.wait().await, Exit::Killed);
    assert_eq!(marked_processes(&id), Vec::<i32>::new());
    drop(output);
}

/// Under host memory pressure the OOM killer takes the environment (program and supervisor)
/// first, though Kindling made it and runs as root.
#[tokio::test]
async fn the_environment_is_the_oom_killers_first_choice() {
    let sandbox = sandbox();
    let dirs = Dirs::new();
    let script = "cat /proc/self/oom_score_adj; cat /proc/1/oom_score_adj 2>&1 || echo hidden";
    let (out, err, exit) = run(&sandbox, dirs.shell(&unique("oom-adj"), script)).await;
    assert_eq!(exit, Exit::Code(0), "stderr: {err:?}");
    assert_eq!(out.first().map(String::as_str), Some("1000"), "{out:?}");
}

#[tokio::test]
async fn freeze_stops_and_thaw_resumes_a_busy_loop() {
    let sandbox = sandbox();
    let dirs = Dirs::new();
    let env = sandbox
        .spawn(dirs.shell(&unique("freeze"), "while :; do :; done"))
        .await
        .unwrap();
    assert!(env.can_freeze());
    let pid = env.pid().expect("host pid");
    let start = cpu_ticks(pid);
    eventually("the loop burns CPU", LIMIT, || cpu_ticks(pid) > start + 5).await;

    env.freeze().await.unwrap();
    let frozen = cpu_ticks(pid);
    // An observation window, not a wait for state: CPU time must not move while frozen.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cpu_ticks(pid), frozen, "no CPU while frozen");
    env.freeze().await.unwrap();

    env.thaw().await.unwrap();
    eventually("the loop runs again", LIMIT, || cpu_ticks(pid) > frozen + 5).await;

    // Killing a frozen environment works too.
    env.freeze().await.unwrap();
    env.kill();
    assert_eq!(env.wait().await, Exit::Killed);
}

#[tokio::test]
async fn kill_ends_the_whole_tree() {
    let sandbox = sandbox();
    let dirs = Dirs::new();
    let id = unique("kill");
    let script = r#"
        ( setsid sh -c 'echo daemon $$; exec sleep 1000' & )
        sh -c 'trap "" TERM; echo stubborn $$; while :; do sleep 1; done' &
        echo ready
        wait
    "#;
    let mut env = sandbox.spawn(dirs.shell(&id, script)).await.unwrap();
    let mut output = env.take_output().unwrap();
    lines_until(&mut output, LIMIT, |lines| {
        ["daemon", "stubborn", "ready"]
            .iter()
            .all(|w| lines.iter().any(|l| l.line.starts_with(w)))
    })
    .await;
    assert!(marked_processes(&id).len() >= 3);
    env.kill();
    env.kill();
    assert_eq!(env.wait().await, Exit::Killed);
    assert_eq!(marked_processes(&id), Vec::<i32>::new());
    assert!(cgroup_dirs(&id).is_empty());
    all_lines(output, LIMIT).await;
}

#[tokio::test]
async fn nothing_is_left_after_drop() {
    let sandbox = sandbox();
    let dirs = Dirs::new();
    let id = unique("drop");
    let mut env = sandbox
        .spawn(dirs.shell(&id, "sleep 1000 & echo up; wait"))
        .await
        .unwrap();
    let mut output = env.take_output().unwrap();
    lines_until(&mut output, LIMIT, |l| !l.is_empty()).await;
    assert!(cgroup_dirs(&id).len() >= 2, "{:?}", cgroup_dirs(&id));
    let staging = sandbox.config().staging_dir.to_str().unwrap().to_string();
    let mountinfo = || std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo().contains(&staging),
        "the host never sees the environment's mounts"
    );
    drop(env);
    eventually("processes gone", LIMIT, || marked_processes(&id).is_empty()).await;
    eventually("cgroups removed", LIMIT, || cgroup_dirs(&id).is_empty()).await;
    assert!(!mountinfo().contains(&staging));
    // The id can be used again once the old environment is gone.
    let env = sandbox.spawn(dirs.shell(&id, "exit 0")).await.unwrap();
    assert!(env.wait().await.success());
}

#[tokio::test]
async fn private_network_has_only_loopback() {
    let sandbox = sandbox_with(NetworkMode::None, TmpBacking::HostDir);
    let dirs = Dirs::new();
    let mut spec = dirs.shell(&unique("net"), "");
    spec.program = "/usr/bin/python3".into();
    let script = "\
import socket
print(sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]))
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()
c = socket.create_connection(s.getsockname()); print('loopback works')";
    spec.args = vec!["-c".into(), script.into()];
    let (out, err, exit) = run(&sandbox, spec).await;
    assert_eq!(
        (out, exit),
        (
            vec!["['lo']".to_string(), "loopback works".to_string()],
            Exit::Code(0)
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn runs_as_the_user_and_group_of_its_spec() {
    for tmp in [TmpBacking::HostDir, TmpBacking::Tmpfs] {
        let sandbox = sandbox_with(NetworkMode::Host, tmp);
        let dirs = Dirs::new();
        let script = r#"
            echo "uid $(id -u) gid $(id -g) groups $(id -G)"
            echo "tmp $(stat -c %u:%g /tmp)"
            touch /tmp/mine && echo "file $(stat -c %u:%g /tmp/mine)"
        "#;
        let mut spec = dirs.shell(&unique("uid"), script);
        spec.uid = Some(100_123);
        spec.gid = Some(100_456);
        let (out, err, exit) = run(&sandbox, spec).await;
        assert_eq!(exit, Exit::Code(0), "{tmp:?}: {err:?}");
        assert_eq!(
            out,
            [
                "uid 100123 gid 100456 groups 100456",
                "tmp 100123:100456",
                "file 100123:100456"
            ],
            "{tmp:?}"
        );
        if tmp == TmpBacking::HostDir {
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::metadata(dirs.tmp_dir()).expect("tmp_dir");
            assert_eq!((meta.uid(), meta.gid()), (100_123, 100_456));
        }
    }
}

#[tokio::test]
async fn privileged_spec_users_are_refused() {
    let sandbox = sandbox();
    let dirs = Dirs::new();
    for (uid, gid) in [
        (Some(0), None),
        (None, Some(0)),
        (Some(u32::MAX), Some(100_000)),
    ] {
        let mut spec = dirs.shell(&unique("root"), "id");
        spec.uid = uid;
        spec.gid = gid;
        assert!(
            matches!(sandbox.spawn(spec).await, Err(SandboxError::InvalidSpec(_))),
            "{uid:?}/{gid:?}"
        );
    }
}

#[tokio::test]
async fn prepared_network_is_reachable_from_inside_only() {
    let sandbox = sandbox_with(NetworkMode::None, TmpBacking::HostDir);
    let prepared = sandbox.prepare_network(9001).await.expect("prepare");
    let namespace = prepared.namespace.clone().expect("a private namespace");
    let addr = prepared.listener.local_addr().expect("address");
    assert_eq!(addr, "127.0.0.1:9001".parse().unwrap());
    let listener = tokio::net::TcpListener::from_std(prepared.listener).expect("listener");

    // The host's 127.0.0.1:9001 is another place (refused, or whatever listens there).
    let _ = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    assert!(
        tokio::time::timeout(Duration::from_millis(200), listener.accept())
            .await
            .is_err(),
        "a host connection reached the environment's listener"
    );

    let dirs = Dirs::new();
    let mut spec = dirs.shell(&unique("prepared"), "");
    spec.program = "/usr/bin/python3".into();
    let script = "\
import socket
print(sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]))
c = socket.create_connection(('127.0.0.1', 9001)); c.sendall(b'from inside'); c.close()
print('sent')";
    spec.args = vec!["-c".into(), script.into()];
    spec.network = Some(namespace);
    spec.uid = Some(100_200);
    spec.gid = Some(100_200);
    let mut env = sandbox.spawn(spec).await.expect("spawn");
    let output = env.take_output().expect("output");
    let (mut stream, peer) = tokio::time::timeout(LIMIT, listener.accept())
        .await
        .expect("the environment connects")
        .expect("accept");
    assert!(peer.ip().is_loopback(), "{peer}");
    let mut got = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut got)
        .await
        .expect("read");
    assert_eq!(got, "from inside");
    let lines = all_lines(output, LIMIT).await;
    assert_eq!(env.wait().await, Exit::Code(0));
    assert_eq!(
        texts(&lines, Stream::Stdout),
        ["['lo']", "sent"],
        "{:?}",
        texts(&lines, Stream::Stderr)
    );
}

#[tokio::test]
async fn shared_network_gets_a_host_listener_and_no_namespace() {
    let sandbox = sandbox();
    let prepared = sandbox.prepare_network(9001).await.expect("prepare");
    assert!(prepared.namespace.is_none());
    let addr = prepared.listener.local_addr().expect("address");
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    std::net::TcpStream::connect(addr).expect("reachable from the host");

    // A namespace of another sandbox cannot be used with a shared network.
    let private = sandbox_with(NetworkMode::None, TmpBacking::HostDir);
    let other = private.prepare_network(0).await.expect("prepare");
    let dirs = Dirs::new();
    let mut spec = dirs.shell(&unique("mismatch"), "true");
    spec.network = other.namespace;
    assert!(matches!(
        sandbox.spawn(spec).await,
        Err(SandboxError::InvalidSpec(_))
    ));
}

#[tokio::test]
async fn reports_host_pid_and_memory_while_running() {
    let sandbox = sandbox();
    let dirs = Dirs::new();
    let mut env = sandbox
        .spawn(dirs.shell(&unique("pid"), "echo up; exec sleep 1000"))
        .await
        .unwrap();
    let mut output = env.take_output().unwrap();
    lines_until(&mut output, LIMIT, |l| !l.is_empty()).await;
    let pid = env.pid().expect("host pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert_eq!(nspid.split_whitespace().last(), Some("2"), "{nspid}");
    assert!(env.memory_peak_bytes().is_some_and(|b| b > 0));
    assert!(!env.oom_killed());
    assert_eq!(env.try_wait(), None);
    env.kill();
    assert_eq!(env.wait().await, Exit::Killed);
    assert!(env.memory_peak_bytes().is_some(), "kept after the end");
}

#[tokio::test]
async fn a_cancelled_spawn_leaves_nothing_behind() {
    let sandbox = sandbox();
    let dirs = Dirs::new();
    let id = unique("cancel");
    let spawned = tokio::time::timeout(
        Duration::ZERO,
        sandbox.spawn(dirs.shell(&id, "exec sleep 1000")),
    )
    .await;
    drop(spawned);
    eventually("the tree is gone", LIMIT, || {
        marked_processes(&id).is_empty()
    })
    .await;
    settles_free_of(&id, Duration::from_millis(300)).await;
    eventually("the cgroups are gone", LIMIT, || {
        cgroup_dirs(&id).is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_environments_stay_apart() {
    let sandbox = sandbox();
    let sandbox = std::sync::Arc::new(sandbox);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let sandbox = sandbox.clone();
        tasks.push(tokio::spawn(async move {
            let dirs = Dirs::new();
            let script = format!("echo {i} > /tmp/mine; ls /tmp; cat /proc/sys/kernel/hostname");
            let id = unique("many");
            let (out, err, exit) = run(&sandbox, dirs.shell(&id, &script)).await;
            assert_eq!(
                (out, exit),
                (vec!["mine".to_string(), id], Exit::Code(0)),
                "{err:?}"
            );
            assert_eq!(
                std::fs::read_to_string(dirs.tmp_dir().join("mine")).unwrap(),
                format!("{i}\n")
            );
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn passes_descriptors_at_fixed_numbers_and_nothing_else() {
    let sandbox = sandbox();
    let dirs = Dirs::new();
    passes_descriptors_at_fixed_numbers(&sandbox, dirs.shell(&unique("passfds"), "")).await;
}

/// `code_later`: the program starts with empty `/var/task` and `/opt`, waits at a passed pipe,
/// and finds the code (read-only) and layers once `attach_code` returned; the memory limit is
/// the attached one. A second attach is refused.
#[tokio::test]
async fn code_attached_later_appears_read_only_with_its_limits() {
    let sandbox = sandbox();
    let dirs = Dirs::new();
    let layers = tempfile::tempdir().expect("layers dir");
    open_dir(layers.path());
    std::fs::write(layers.path().join("layer.txt"), "from a layer\n").expect("write");
    let (gate, release) = std::io::pipe().expect("pipe");
    let id = unique("codelater");
    let script = "echo before: $(ls -A /var/task | wc -l) $(ls -A /opt | wc -l); \
                  read -r go <&3; cd /var/task; cat hello.txt /opt/layer.txt; \
                  touch /var/task/x 2>/dev/null && echo writable || echo read-only; \
                  cat /proc/self/cgroup >/dev/null; exit 0";
    let spec = EnvironmentSpec {
        task_root: PathBuf::new(),
        code_later: true,
        memory_mb: 64,
        pass_fds: vec![Arc::new(std::os::fd::OwnedFd::from(gate))],
        ..dirs.shell(&id, script)
    };
    let mut env = sandbox.spawn(spec).await.expect("spawn");
    let mut output = env.take_output().expect("output");
    // Nothing is there until the code is attached.
    let before = lines_until(&mut output, LIMIT, |l| !l.is_empty()).await;
    assert_eq!(
        texts(&before, Stream::Stdout),
        ["before: 0 0"],
        "{before:?}"
    );
    let lines = tokio::spawn(all_lines(output, LIMIT));
    env.attach_code(dirs.task.path(), Some(layers.path()), 96, 64)
        .await
        .expect("attach");
    let limit = ["memory/kindling-test", "unified/kindling-test"]
        .iter()
        .map(|h| Path::new("/sys/fs/cgroup").join(h).join(&id))
        .find_map(|dir| {
            std::fs::read_to_string(dir.join("memory.limit_in_bytes"))
                .or_else(|_| std::fs::read_to_string(dir.join("memory.max")))
                .ok()
        });
    assert_eq!(limit.as_deref().map(str::trim), Some("100663296"));
    let again = env.attach_code(dirs.task.path(), None, 96, 64).await;
    assert!(again.is_err(), "a second attach must be refused");
    drop(release);
    assert_eq!(env.wait().await, Exit::Code(0));
    let lines = lines.await.expect("lines");
    let stdout = texts(&lines, Stream::Stdout);
    assert_eq!(
        stdout,
        ["hello from the task root", "from a layer", "read-only"],
        "{lines:?}"
    );
}

/// `exec_later`: the sandbox is built and `spawn` returns while the program waits before its
/// `execve`; `attach_code_and_exec` attaches the code and executes the program named only
/// then (from the code), with exactly the arguments, environment and working directory given,
/// as the same process (its pid), holding no descriptor of Kindling's; the limits are the
/// attached ones. A second call is refused.
#[tokio::test]
async fn a_program_named_at_the_claim_executes_in_the_prebuilt_sandbox() {
    let sandbox = sandbox();
    let dirs = Dirs::new();
    let script = "#!/bin/sh\n\
                  echo \"args:$*|cwd:$(pwd)|uid:$(id -u)|A:$A|B:$B|vars:$(env | grep -c .)\"\n\
                  echo \"fds:$(ls /proc/self/fd | tr '\\n' ' ')\"\n\
                  echo \"pid:$$\"\n\
                  cat /var/task/hello.txt\n";
    let boot = dirs.task.path().join("bootstrap");
    std::fs::write(&boot, script).expect("write bootstrap");
    std::fs::set_permissions(&boot, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let id = unique("execlater");
    let spec = EnvironmentSpec {
        task_root: PathBuf::new(),
        program: PathBuf::new(),
        args: Vec::new(),
        env: Vec::new(),
        cwd: PathBuf::new(),
        code_later: true,
        exec_later: true,
        memory_mb: 64,
        uid: Some(100_123),
        gid: Some(100_123),
        ..dirs.shell(&id, "")
    };
    let mut env = sandbox.spawn(spec).await.expect("spawn");
    let pid = env.pid().expect("the waiting program's pid");
    assert_eq!(env.try_wait(), None, "the program waits");
    let lines = tokio::spawn(all_lines(env.take_output().expect("output"), LIMIT));
    env.attach_code_and_exec(
        dirs.task.path(),
        None,
        96,
        64,
        LateExec {
            program: "/var/task/bootstrap".into(),
            args: vec!["one".into(), "two words".into()],
            env: vec![
                ("A".into(), "1".into()),
                ("B".into(), "x=y".into()),
                ("PATH".into(), "/usr/bin:/bin".into()),
            ],
            cwd: "/tmp".into(),
        },
    )
    .await
    .expect("attach and exec");
    let limit = ["memory/kindling-test", "unified/kindling-test"]
        .iter()
        .map(|h| Path::new("/sys/fs/cgroup").join(h).join(&id))
        .find_map(|dir| {
            std::fs::read_to_string(dir.join("memory.limit_in_bytes"))
                .or_else(|_| std::fs::read_to_string(dir.join("memory.max")))
                .ok()
        });
    assert_eq!(limit.as_deref().map(str::trim), Some("100663296"));
    let again = env
        .attach_code_and_exec(dirs.task.path(), None, 96, 64, LateExec::default())
        .await;
    assert!(again.is_err(), "a second start must be refused");
    assert_eq!(env.wait().await, Exit::Code(0));
    let lines = lines.await.expect("lines");
    let stdout = texts(&lines, Stream::Stdout);
    // `env` shows A, B, PATH and what the shell adds itself (PWD, SHLVL, _ ...): no variable
    // of Kindling's; `ls` lists 0-2 and its own directory descriptor.
    assert_eq!(stdout.len(), 4, "{lines:?}");
    assert!(
        stdout[0].starts_with("args:one two words|cwd:/tmp|uid:100123|A:1|B:x=y|vars:"),
        "{lines:?}"
    );
    assert_eq!(stdout[1], "fds:0 1 2 3 ", "{lines:?}");
    assert_eq!(stdout[3], "hello from the task root", "{lines:?}");
    // The program kept its pid through the execve (pid 2 inside: the supervisor is 1).
    assert_eq!(stdout[2], "pid:2", "{lines:?}");
    assert!(pid > 2);
}

/// Claims an `exec_later` environment with the code of `dirs` (64 MB, 64 pids), executing
/// `program` in `/var/task`.
async fn late_exec(env: &Environment, dirs: &Dirs, program: &str) -> Result<(), SandboxError> {
    let exec = LateExec {
        program: program.into(),
        cwd: "/var/task".into(),
        ..Default::default()
    };
    env.attach_code_and_exec(dirs.task.path(), None, 64, 64, exec)
        .await
}

/// `exec_later` failures: a program that does not exist is `SandboxError::Exec` at the claim
/// (and the environment ends); an environment dropped unused ends as `Killed`.
#[tokio::test]
async fn a_late_exec_failure_is_reported_at_the_claim() {
    let sandbox = sandbox();
    let dirs = Dirs::new();
    let spec = |id: &str| EnvironmentSpec {
        task_root: PathBuf::new(),
        code_later: true,
        exec_later: true,
        memory_mb: 64,
        ..dirs.shell(id, "")
    };
    let env = sandbox
        .spawn(spec(&unique("latefail")))
        .await
        .expect("spawn");
    let err = late_exec(&env, &dirs, "/var/task/missing")
        .await
        .expect_err("no such program");
    assert!(
        matches!(&err, SandboxError::Exec { program, source }
            if program == Path::new("/var/task/missing")
                && source.raw_os_error() == Some(libc::ENOENT)),
        "{err:?}"
    );
    assert!(matches!(env.wait().await, Exit::Code(127)));

    let unused = sandbox
        .spawn(spec(&unique("lateunused")))
        .await
        .expect("spawn");
    unused.kill();
    assert_eq!(unused.wait().await, Exit::Killed);
    let relative = sandbox
        .spawn(spec(&unique("laterel")))
        .await
        .expect("spawn");
    let err = late_exec(&relative, &dirs, "bootstrap")
        .await
        .expect_err("relative program");
    assert!(matches!(err, SandboxError::InvalidSpec(_)), "{err:?}");
}

/// With a node lock directory the sandbox holds its node's lock for its whole life: a second
/// sandbox of the same node is refused until the first is dropped; a `cgroup_parent` without a
/// `<nodes>/` level is refused (its siblings would be the hierarchy's own cgroups).
#[test]
fn a_node_lock_is_held_for_the_sandboxs_life() {
    if !is_root() {
        cannot_run("Namespaces mode needs root");
    }
    let locks = TempDir::new().unwrap();
    let nodes = format!("{CGROUP_PARENT}-nodes-{}", std::process::id());
    let config = |parent: String| SandboxConfig {
        cgroup_parent: parent.into(),
        node_lock_dir: Some(locks.path().join("nodes")),
        ..Default::default()
    };
    let mode = IsolationMode::Namespaces {
        network: NetworkMode::Host,
    };
    let first = Sandbox::new(mode, config(format!("{nodes}/a"))).unwrap();
    assert!(locks.path().join("nodes/a.lock").is_file());
    let err = Sandbox::new(mode, config(format!("{nodes}/a"))).unwrap_err();
    assert!(err.to_string().contains("held by another process"), "{err}");
    // Another node starts alongside, and leaves the live one's (empty) cgroups alone.
    let second = Sandbox::new(mode, config(format!("{nodes}/b"))).unwrap();
    let hierarchies: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|h| h.path())
        .chain([PathBuf::from("/sys/fs/cgroup")])
        .collect();
    let node_dirs = |node: &str| {
        hierarchies
            .iter()
            .filter(|h| h.join(&nodes).join(node).is_dir())
            .count()
    };
    assert!(node_dirs("a") >= 1, "the live node's cgroups were removed");
    drop(first);
    let again = Sandbox::new(mode, config(format!("{nodes}/a"))).unwrap();
    drop((again, second));
    match Sandbox::new(mode, config(nodes.clone())) {
        Err(SandboxError::InvalidSpec(message)) => assert!(message.contains("<nodes>/<node>")),
        other => panic!("{other:?}"),
    }
    // What is left: two nodes' empty parents, removed by a third node's sweep.
    let third = Sandbox::new(mode, config(format!("{nodes}/c"))).unwrap();
    drop(third);
    assert_eq!((node_dirs("a"), node_dirs("b")), (0, 0));
    for hierarchy in &hierarchies {
        let _ = std::fs::remove_dir(hierarchy.join(&nodes).join("c"));
        let _ = std::fs::remove_dir(hierarchy.join(&nodes));
    }
}
