//! The system call filter, in both modes: it is installed (`Seccomp: 2`), refuses namespaces,
//! mounts and the other denied classes with EPERM (clone3 with ENOSYS, so libc falls back),
//! and keeps real runtimes working: a shell, Python (threads, subprocesses) and a JVM.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use kindling_sandbox::{
    EnvironmentSpec, Exit, IsolationMode, Sandbox, SandboxConfig, SandboxError, Stream,
};

const LIMIT: Duration = Duration::from_secs(60);
const PYTHON: &str = "/usr/bin/python3";
const JAVA_HOME: &str = "/usr/lib/jvm/java-17-openjdk-amd64";

/// Runs `spec` to its end; stdout lines and the exit.
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

/// Python that tries each denied call with plausible arguments and prints `name result`,
/// where result is `ok` or the errno name; then checks what must keep working.
const PROBE: &str = r#"
import ctypes, errno, os, subprocess, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
keep = []
def ptr(data):
    keep.append(ctypes.create_string_buffer(data))
    return ctypes.addressof(keep[-1])
def call(nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return "ok" if r >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
status = open("/proc/self/status").read()
print("seccomp", [l.split()[1] for l in status.splitlines() if l.startswith("Seccomp:")][0])
CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x20000
print("unshare-user", call(272, CLONE_NEWUSER))
print("unshare-mount", call(272, CLONE_NEWNS))
print("setns", call(308, 0, 0))
print("mount", call(165, ptr(b"none"), ptr(b"/tmp"), ptr(b"tmpfs"), 0, 0))
print("keyctl", call(250, 0, -3, 1))
print("bpf", call(321, 0, 0, 0))
print("userfaultfd", call(323, 0))
params = ctypes.create_string_buffer(120)
print("io_uring_setup", call(425, 1, ctypes.addressof(params)))
print("clone3", call(435, 0, 0))
# clone with a namespace flag: raw clone(CLONE_NEWUSER | SIGCHLD) would fork; refused first.
print("clone-newuser", call(56, CLONE_NEWUSER | 17, 0, 0, 0, 0))
print("reboot", call(169, 0xfee1dead, 672274793, 0x4321fedc, 0))
print("personality-query", call(135, 0xffffffff))
# A call newer than libseccomp 2.5 knows by name (fchmodat2, 452 in the shared table): allowed.
print("fchmodat2", call(452, -100, ptr(b"/nonexistent"), 0o644, 0))
# A number above the newest call the filter knows: "not implemented", as on an older kernel.
print("future-call", call(475))
print("vsock", call(41, 40, 1, 0))
# What must keep working: threads, fork + exec (glibc's clone3 falls back to clone), sockets.
t = threading.Thread(target=lambda: None); t.start(); t.join()
print("thread ok")
print("subprocess", subprocess.run(["/bin/true"]).returncode)
import socket; s = socket.socket(); s.close(); print("socket ok")
"#;

fn python_spec(id: &str) -> EnvironmentSpec {
    EnvironmentSpec {
        program: PYTHON.into(),
        args: vec!["-c".into(), PROBE.into()],
        ..shell(id, "")
    }
}

fn expect_refused(out: &[String]) {
    let result = |name: &str| -> String {
        out.iter()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} line in {out:?}"))
            .to_string()
    };
    assert_eq!(result("seccomp"), "2", "{out:?}");
    for name in [
        "unshare-user",
        "unshare-mount",
        "setns",
        "mount",
        "keyctl",
        "bpf",
        "userfaultfd",
        "io_uring_setup",
        "clone-newuser",
        "reboot",
        "vsock",
    ] {
        assert_eq!(result(name), "EPERM", "{name}: {out:?}");
    }
    assert_eq!(result("clone3"), "ENOSYS", "{out:?}");
    assert_eq!(result("personality-query"), "ok", "{out:?}");
    assert_eq!(result("fchmodat2"), "ENOENT", "{out:?}");
    assert_eq!(result("future-call"), "ENOSYS", "{out:?}");
    assert_eq!(result("thread"), "ok");
    assert_eq!(result("subprocess"), "0");
    assert_eq!(result("socket"), "ok");
}

#[tokio::test]
async fn process_mode_programs_run_under_the_filter() {
    let sandbox = Sandbox::process();
    let (out, err, exit) = run(&sandbox, python_spec(&unique("filter-py"))).await;
    assert_eq!(exit, Exit::Code(0), "{out:?} {err:?}");
    expect_refused(&out);

    let (out, err, exit) = run(
        &sandbox,
        shell(&unique("filter-unshare"), "unshare -U -r true; echo $?"),
    )
    .await;
    assert_eq!(out, ["1"], "{err:?}");
    assert!(
        err.iter().any(|l| l.contains("Operation not permitted")),
        "{err:?}"
    );
    assert_eq!(exit, Exit::Code(0));
}

#[tokio::test]
async fn the_filter_can_be_turned_off() {
    let config = SandboxConfig {
        seccomp: false,
        ..Default::default()
    };
    let sandbox = Sandbox::new(IsolationMode::Process, config).expect("process sandbox");
    let (out, _, exit) = run(
        &sandbox,
        shell(
            &unique("nofilter"),
            "grep '^Seccomp:' /proc/self/status | tr -d ' \\t'",
        ),
    )
    .await;
    assert_eq!(out, ["Seccomp:0"]);
    assert_eq!(exit, Exit::Code(0));
}

/// A namespaced sandbox of its own (cgroups under `kindling-test-seccomp`); the test fails,
/// saying why, where there is none.
fn namespaced() -> Arc<Sandbox> {
    static MADE: std::sync::OnceLock<Option<Arc<Sandbox>>> = std::sync::OnceLock::new();
    if !is_root() {
        cannot_run("Namespaces mode needs root");
    }
    let made = MADE.get_or_init(|| {
        let config = SandboxConfig {
            cgroup_parent: "kindling-test-seccomp".into(),
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
        Some(sandbox) => Arc::clone(sandbox),
        None => cannot_run("Namespaces mode is unavailable here"),
    }
}

struct Dirs {
    task: tempfile::TempDir,
    scratch: tempfile::TempDir,
}

impl Dirs {
    fn new() -> Dirs {
        let task = tempfile::tempdir().expect("task dir");
        open_dir(task.path());
        Dirs {
            task,
            scratch: tempfile::tempdir().expect("scratch dir"),
        }
    }

    fn spec(&self, id: &str, program: &str, args: &[&str], extra: &[&str]) -> EnvironmentSpec {
        let mut readonly: Vec<PathBuf> = ["/usr", "/bin", "/lib", "/lib64", "/sbin"]
            .iter()
            .chain(extra)
            .map(PathBuf::from)
            .collect();
        readonly.retain(|p| p.exists());
        EnvironmentSpec {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            task_root: self.task.path().to_path_buf(),
            tmp_dir: self.scratch.path().join("tmp"),
            cwd: "/var/task".into(),
            memory_mb: 512,
            readonly_host_paths: readonly,
            ..shell(id, "")
        }
    }
}

#[tokio::test]
async fn namespaced_programs_run_under_the_filter() {
    let sandbox = namespaced();
    let dirs = Dirs::new();
    let spec = dirs.spec(&unique("filter-ns-py"), PYTHON, &["-c", PROBE], &[]);
    let (out, err, exit) = run(&sandbox, spec).await;
    assert_eq!(exit, Exit::Code(0), "{out:?} {err:?}");
    expect_refused(&out);
}

#[tokio::test]
async fn a_jvm_runs_under_the_filter() {
    let sandbox = namespaced();
    let java = Path::new(JAVA_HOME).join("bin/java");
    let javac = Path::new(JAVA_HOME).join("bin/javac");
    if !java.exists() || !javac.exists() {
        cannot_run(&format!("no OpenJDK 17 at {JAVA_HOME}"));
    }
    let dirs = Dirs::new();
    let source = dirs.task.path().join("Hello.java");
    std::fs::write(
        &source,
        "public class Hello { public static void main(String[] a) throws Exception {\n\
         Thread t = new Thread(() -> System.out.println(\"thread \" + Runtime.getRuntime().availableProcessors()));\n\
         t.start(); t.join();\n\
         System.out.println(\"hello from \" + System.getProperty(\"java.version\")); } }\n",
    )
    .expect("source");
    let compiled = std::process::Command::new(&javac)
        .arg("-d")
        .arg(dirs.task.path())
        .arg(&source)
        .status()
        .expect("javac");
    assert!(compiled.success());
    open_dir(dirs.task.path());
    let java = java.to_string_lossy().into_owned();

    let spec = dirs.spec(
        &unique("filter-java-v"),
        &java,
        &["-version"],
        &["/etc/java-17-openjdk"],
    );
    let (_, err, exit) = run(&sandbox, spec).await;
    assert_eq!(exit, Exit::Code(0), "{err:?}");
    assert!(err.iter().any(|l| l.contains("17.")), "{err:?}");

    let spec = dirs.spec(
        &unique("filter-java"),
        &java,
        &["-Xmx64m", "-cp", "/var/task", "Hello"],
        &["/etc/java-17-openjdk"],
    );
    let (out, err, exit) = run(&sandbox, spec).await;
    assert_eq!(exit, Exit::Code(0), "{out:?} {err:?}");
    assert!(out.iter().any(|l| l.starts_with("thread ")), "{out:?}");
    assert!(
        out.iter().any(|l| l.starts_with("hello from 17")),
        "{out:?}"
    );
}
