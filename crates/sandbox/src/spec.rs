//! What the caller asks for: one environment's spec, and the isolation mode of a sandbox.

use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::{NetworkNamespace, SandboxError};

/// How environments are isolated from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationMode {
    /// A plain child process tree: no namespaces, no cgroups, no root needed. Paths in the spec
    /// are host paths; only `program`, `args`, `env` and `cwd` are used.
    Process,
    /// New mount, PID, IPC and UTS namespaces (and a network namespace with
    /// [`NetworkMode::None`]), a minimal read-only root, an unprivileged user and a cgroup with
    /// limits. Needs root.
    Namespaces { network: NetworkMode },
}

impl IsolationMode {
    /// Namespaces sharing the host network (functions reach services on localhost).
    pub const fn namespaces() -> Self {
        IsolationMode::Namespaces {
            network: NetworkMode::Host,
        }
    }
}

/// The network an environment sees in [`IsolationMode::Namespaces`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// The host's network namespace: every interface and localhost service of the host.
    #[default]
    Host,
    /// A private network namespace with only a loopback interface (brought up).
    None,
}

/// A read-only bind mount of a host directory or file at another path inside the environment
/// (for example Kindling's runtime directory at `/var/runtime`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub host: PathBuf,
    pub inside: PathBuf,
}

/// Everything needed to start one environment.
///
/// Build it with struct syntax and `..Default::default()`: fields may be added later.
#[derive(Clone, Default)]
pub struct EnvironmentSpec {
    /// Unique among live environments of one sandbox: 1-64 of `[A-Za-z0-9_.-]`, not starting
    /// with `.`. Names the cgroup and is the hostname. May be reused once `wait()` returned.
    pub id: String,
    /// The program to execute, as seen inside the environment (`/var/task/bootstrap`), or a
    /// host path in Process mode. Executed as given: no `PATH` search.
    pub program: PathBuf,
    /// Arguments after `argv[0]` (which is `program`).
    pub args: Vec<String>,
    /// The complete environment of the program; nothing is inherited from Kindling.
    pub env: Vec<(String, String)>,
    /// Host directory with the unpacked code, read-only at `/var/task`. It must be readable by
    /// the sandbox uid (directories 0755, files 0644 or 0755).
    pub task_root: PathBuf,
    /// Host directory with the merged layers, read-only at `/opt` (an empty `/opt` when `None`).
    pub opt_dir: Option<PathBuf>,
    /// A whole root filesystem (an unpacked container image) to run in, instead of the
    /// minimal one: bound read-only (nosuid, nodev) as `/`, with `/proc`, `/dev` and `/tmp`
    /// mounted on it as usual; `task_root`, `opt_dir`, `readonly_host_paths` and
    /// `extra_mounts` are then not mounted. Its `proc`, `dev` and `tmp` must be directories
    /// (not links): the sandbox never writes to it. Namespaces mode only.
    pub root_dir: Option<PathBuf>,
    /// Host directory for this environment's `/tmp` (see [`TmpBacking`](crate::TmpBacking)).
    /// The sandbox creates it if missing and never removes it, so it survives a reset as in
    /// Lambda; the caller removes it when it retires the environment for good.
    pub tmp_dir: PathBuf,
    /// Size of `/tmp` when it is a tmpfs ([`TmpBacking::Tmpfs`](crate::TmpBacking::Tmpfs)).
    pub tmp_size_mb: u32,
    /// Memory limit of the whole tree (memory and memory+swap).
    pub memory_mb: u32,
    /// Most processes and threads the tree may have at once.
    pub pids_max: u32,
    /// Working directory of the program, as seen inside (usually `/var/task`).
    pub cwd: PathBuf,
    /// Host paths bind-mounted read-only at the same path (e.g. `/usr`, `/lib`, `/lib64`,
    /// `/bin`, `/etc/ssl`). Symbolic links (`/bin -> usr/bin`) are recreated as links; paths
    /// missing on the host are skipped.
    pub readonly_host_paths: Vec<PathBuf>,
    /// Further read-only bind mounts at other paths inside.
    pub extra_mounts: Vec<BindMount>,
    /// User the program runs as in Namespaces mode, instead of the
    /// [`SandboxConfig`](crate::SandboxConfig)'s `uid`; `/tmp` belongs to it. Neither 0 nor
    /// `u32::MAX`. A user of its own per environment lets the host tell environments apart:
    /// the owner of a socket or process names its environment (Kindling's Runtime API admits
    /// only its environment's user). Ignored in Process mode.
    pub uid: Option<u32>,
    /// Group of the program in Namespaces mode, instead of the config's `gid`. Neither 0 nor
    /// `u32::MAX`. Ignored in Process mode.
    pub gid: Option<u32>,
    /// The network namespace to run in, made by
    /// [`Sandbox::prepare_network`](crate::Sandbox::prepare_network) for this environment
    /// (with [`NetworkMode::None`] only). `None` with [`NetworkMode::None`]: a fresh namespace
    /// with only loopback, which nothing outside can reach.
    pub network: Option<NetworkNamespace>,
    /// Open files the program gets at fixed descriptor numbers: `pass_fds[0]` as fd 3,
    /// `pass_fds[1]` as fd 4, and so on (at most [`MAX_PASS_FDS`]), without close-on-exec. Every
    /// other descriptor of Kindling's stays closed to the program, whatever its flags; 0, 1 and
    /// 2 are `/dev/null` and the output pipes as always. Works in both modes.
    ///
    /// The supervisor closes its copies as soon as the program is forked, so only the program
    /// (and what it passes them to) holds them; `spawn` drops the spec's `Arc`s before it
    /// returns. A start gate is the typical use: pass the read end of a pipe, have the program
    /// block reading fd 3, and write to (or drop) the write end, which the caller keeps, when
    /// it may go on. The program sees end of file once every write end is closed.
    ///
    /// ```no_run
    /// # async fn demo(sandbox: kindling_sandbox::Sandbox, spec: kindling_sandbox::EnvironmentSpec)
    /// # -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use kindling_sandbox::EnvironmentSpec;
    ///
    /// let (gate, release) = std::io::pipe()?; // close-on-exec, as every Kindling descriptor
    /// let env = sandbox
    ///     .spawn(EnvironmentSpec {
    ///         program: "/bin/sh".into(),
    ///         args: vec!["-c".into(), "read -r go <&3; exec 3<&-; exec /var/task/bootstrap".into()],
    ///         pass_fds: vec![Arc::new(gate.into())],
    ///         ..spec
    ///     })
    ///     .await?;
    /// // ... once the program may go on:
    /// drop(release); // or write a line to it
    /// # drop(env); Ok(()) }
    /// ```
    pub pass_fds: Vec<Arc<OwnedFd>>,
    /// Namespaces mode: start with empty `/var/task` and `/opt` (`task_root` and `opt_dir`
    /// are not used) and attach the code later, once, with
    /// [`Environment::attach_code`](crate::Environment::attach_code). This is what lets a
    /// runtime be started before it is known which function it will run (a pre-initialized
    /// environment): the program should wait (at a passed descriptor, for example) until the
    /// code is in place. Not with a `root_dir`.
    pub code_later: bool,
    /// Namespaces mode, with `code_later`: the program is made ready (cgroups joined,
    /// privileges dropped, system call filter installed, root built) but not executed; it
    /// waits just before its `execve` until
    /// [`Environment::attach_code_and_exec`](crate::Environment::attach_code_and_exec) names
    /// what to execute, with which arguments, environment and working directory. `program`,
    /// `args`, `env` and `cwd` are then not used. This lets the whole sandbox of a custom
    /// runtime (whose program is the function's own `bootstrap`) be built before the function
    /// is known. `spawn` returns once the program waits.
    pub exec_later: bool,
}

/// Most descriptors [`EnvironmentSpec::pass_fds`] may hold.
pub const MAX_PASS_FDS: usize = 16;

impl fmt::Debug for EnvironmentSpec {
    // Environment values may hold credentials: show only the names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env_names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("EnvironmentSpec")
            .field("id", &self.id)
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env (names only)", &env_names)
            .field("task_root", &self.task_root)
            .field("opt_dir", &self.opt_dir)
            .field("root_dir", &self.root_dir)
            .field("tmp_dir", &self.tmp_dir)
            .field("tmp_size_mb", &self.tmp_size_mb)
            .field("memory_mb", &self.memory_mb)
            .field("pids_max", &self.pids_max)
            .field("cwd", &self.cwd)
            .field("readonly_host_paths", &self.readonly_host_paths)
            .field("extra_mounts", &self.extra_mounts)
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .field("network", &self.network)
            .field("code_later", &self.code_later)
            .field("exec_later", &self.exec_later)
            .field(
                "pass_fds",
                &self
                    .pass_fds
                    .iter()
                    .map(|fd| fd.as_raw_fd())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Paths inside the environment that the sandbox itself provides.
pub(crate) const RESERVED_INSIDE: [&str; 5] = ["/proc", "/dev", "/tmp", "/var/task", "/opt"];

impl EnvironmentSpec {
    /// Checks what can be checked without touching the host.
    pub(crate) fn validate(&self, namespaces: bool) -> Result<(), SandboxError> {
        validate_id(&self.id)?;
        if self.exec_later && !self.code_later {
            return Err(invalid("exec_later needs code_later"));
        }
        if !self.exec_later && self.program.as_os_str().is_empty() {
            return Err(invalid("program is empty"));
        }
        if !self.exec_later && self.cwd.as_os_str().is_empty() {
            return Err(invalid("cwd is empty"));
        }
        if self.pass_fds.len() > MAX_PASS_FDS {
            return Err(invalid(format!(
                "{} pass_fds; at most {MAX_PASS_FDS}",
                self.pass_fds.len()
            )));
        }
        for (key, _) in &self.env {
            if key.is_empty() || key.contains('=') {
                return Err(invalid(format!(
                    "environment variable name {key:?} is invalid"
                )));
            }
        }
        if self.code_later && (!namespaces || self.root_dir.is_some()) {
            return Err(invalid(
                "code_later needs the Namespaces isolation mode and no root_dir",
            ));
        }
        if !namespaces {
            if self.root_dir.is_some() {
                return Err(invalid(
                    "a root_dir (container image) needs the Namespaces isolation mode",
                ));
            }
            return Ok(());
        }
        for (what, path) in [("program", &self.program), ("cwd", &self.cwd)] {
            if !self.exec_later && !path.is_absolute() {
                return Err(invalid(format!(
                    "{what} {} must be absolute",
                    path.display()
                )));
            }
        }
        for (what, id) in [("uid", self.uid), ("gid", self.gid)] {
            if let Some(id) = id
                && !is_unprivileged_id(id)
            {
                return Err(invalid(format!(
                    "{what} {id} must be an unprivileged id (neither 0 nor {})",
                    u32::MAX
                )));
            }
        }
        for (what, value) in [("memory_mb", self.memory_mb), ("pids_max", self.pids_max)] {
            if value == 0 {
                return Err(invalid(format!("{what} must be at least 1")));
            }
        }
        for (what, path) in [
            ("task_root", (!self.code_later).then_some(&self.task_root)),
            ("opt_dir", self.opt_dir.as_ref()),
            ("root_dir", self.root_dir.as_ref()),
        ] {
            if let Some(path) = path
                && !path.is_absolute()
            {
                return Err(invalid(format!(
                    "{what} {} must be absolute",
                    path.display()
                )));
            }
        }
        if !self.tmp_dir.is_absolute() {
            return Err(invalid(format!(
                "tmp_dir {} must be absolute",
                self.tmp_dir.display()
            )));
        }
        let inside_paths = self
            .readonly_host_paths
            .iter()
            .chain(self.extra_mounts.iter().map(|m| &m.inside));
        for path in inside_paths {
            check_mount_point(path)?;
        }
        for mount in &self.extra_mounts {
            if !mount.host.is_absolute() {
                return Err(invalid(format!(
                    "mount source {} must be absolute",
                    mount.host.display()
                )));
            }
        }
        Ok(())
    }
}

/// Not root, and not -1 (which `setresuid` reads as "unchanged").
pub(crate) fn is_unprivileged_id(id: u32) -> bool {
    id != 0 && id != u32::MAX
}

fn invalid(message: impl Into<String>) -> SandboxError {
    SandboxError::InvalidSpec(message.into())
}

pub(crate) fn validate_id(id: &str) -> Result<(), SandboxError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "id {id:?} must be 1-64 of [A-Za-z0-9_.-], not starting with '.'"
        )))
    }
}

/// A mount point inside must be absolute, plain (no `.`/`..`), and must neither be nor contain
/// nor lie under one of the sandbox's own mount points.
fn check_mount_point(path: &Path) -> Result<(), SandboxError> {
    if !path.is_absolute()
        || path
            .components()
            .any(|c| !matches!(c, Component::RootDir | Component::Normal(_)))
    {
        return Err(invalid(format!(
            "mount point {} must be an absolute, normalized path",
            path.display()
        )));
    }
    for reserved in RESERVED_INSIDE {
        let reserved = Path::new(reserved);
        if path.starts_with(reserved) || reserved.starts_with(path) {
            return Err(invalid(format!(
                "{} overlaps {}, which the sandbox provides",
                path.display(),
                reserved.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> EnvironmentSpec {
        EnvironmentSpec {
            id: "fn-1.a_b".into(),
            program: "/var/task/bootstrap".into(),
            cwd: "/var/task".into(),
            task_root: "/srv/code".into(),
            tmp_dir: "/srv/tmp".into(),
            memory_mb: 128,
            pids_max: 64,
            tmp_size_mb: 64,
            readonly_host_paths: vec!["/usr".into(), "/etc/ssl".into()],
            ..Default::default()
        }
    }

    #[test]
    fn a_good_spec_passes() {
        spec().validate(true).unwrap();
        spec().validate(false).unwrap();
    }

    #[test]
    fn ids_are_restricted() {
        for bad in ["", ".hidden", "a/b", "a b", &"x".repeat(65), ".."] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "A-1_b.c", &"x".repeat(64)] {
            validate_id(good).unwrap();
        }
    }

    #[test]
    fn reserved_and_odd_mount_points_are_refused() {
        for bad in [
            "/",
            "/proc",
            "/dev/shm",
            "/tmp",
            "/var",
            "/var/task/lib",
            "/opt",
            "usr",
            "/usr/../etc",
        ] {
            let mut s = spec();
            s.readonly_host_paths.push(bad.into());
            assert!(s.validate(true).is_err(), "{bad}");
        }
        let mut s = spec();
        s.extra_mounts.push(BindMount {
            host: "/srv/runtime".into(),
            inside: "/var/runtime".into(),
        });
        s.validate(true).unwrap();
        s.extra_mounts.push(BindMount {
            host: "/srv/x".into(),
            inside: "/var".into(),
        });
        assert!(s.validate(true).is_err());
    }

    #[test]
    fn namespaces_need_absolute_paths_and_limits() {
        let mut s = spec();
        s.program = "bootstrap".into();
        assert!(s.validate(true).is_err());
        s.validate(false).unwrap();
        let mut s = spec();
        s.memory_mb = 0;
        assert!(s.validate(true).is_err());
        let mut s = spec();
        s.env.push(("A=B".into(), "c".into()));
        assert!(s.validate(false).is_err());
    }

    #[test]
    fn per_environment_ids_must_be_unprivileged() {
        for bad in [0, u32::MAX] {
            let mut s = spec();
            s.uid = Some(bad);
            assert!(s.validate(true).is_err(), "uid {bad}");
            let mut s = spec();
            s.gid = Some(bad);
            assert!(s.validate(true).is_err(), "gid {bad}");
        }
        let mut s = spec();
        s.uid = Some(100_000);
        s.gid = Some(100_000);
        s.validate(true).unwrap();
        // Process mode ignores them.
        s.uid = Some(0);
        s.validate(false).unwrap();
    }

    #[test]
    fn debug_hides_environment_values() {
        let mut s = spec();
        s.env
            .push(("AWS_SECRET_ACCESS_KEY".into(), "hunter2".into()));
        let text = format!("{s:?}");
        assert!(text.contains("AWS_SECRET_ACCESS_KEY"));
        assert!(!text.contains("hunter2"));
    }
}
