//! The synchronous part of spawning, run off the async runtime: checks, the filesystem plan,
//! cgroups, pipes and the clone of the supervisor.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::unistd::{Gid, Uid, chown, geteuid, pipe2};

use crate::cgroup::{CgroupRoots, EnvCgroup, Limits, NodeCaps, NodeLock};
use crate::plan::{self, HostKind, Step, TmpSource, c_path, c_str};
use crate::seccomp::SyscallFilter;
use crate::spec::is_unprivileged_id;
use crate::sys::child::{ChildFds, ChildPlan, NsPlan};
use crate::tmp_disk::{HeldTmp, TmpPool};
use crate::{
    EnvironmentSpec, IsolationMode, NetworkMode, SandboxConfig, SandboxError, TmpBacking, sys,
};

/// What every spawn of a sandbox shares; the blocking launch holds it through an `Arc`.
#[derive(Debug)]
pub(crate) struct Shared {
    pub mode: IsolationMode,
    pub config: SandboxConfig,
    /// Namespaces mode only.
    pub cgroups: Option<CgroupRoots>,
    /// This node's liveness lock ([`SandboxConfig::node_lock_dir`]), held for the sandbox's life.
    pub _node_lock: Option<NodeLock>,
    /// The system call filter (`None`: the config turned it off; `Err`: it could not be built,
    /// and every spawn fails with that).
    pub filter: Option<Result<Arc<SyscallFilter>, String>>,
    /// Ready `/tmp` filesystems ([`TmpBacking::Disk`] in Namespaces mode).
    pub tmp_pool: Option<TmpPool>,
    /// `kindling-init`, which every supervisor executes once its setup is done (`Err`: it
    /// could not be made, and every spawn fails with that).
    pub init_image: Result<OwnedFd, String>,
    /// Environments started and not yet dropped.
    pub live: Arc<crate::environment::LiveCounter>,
}

impl Shared {
    /// The synchronous part of spawning: plan, cgroups, pipes, clone.
    pub(crate) fn launch(&self, spec: &EnvironmentSpec) -> Result<Launched, SandboxError> {
        let namespaces = self.cgroups.is_some();
        spec.validate(namespaces)?;
        let init_image = match &self.init_image {
            Ok(image) => image.as_raw_fd(),
            Err(e) => {
                return Err(SandboxError::io(
                    "making the supervisor's program (kindling-init)",
                    std::io::Error::other(e.clone()),
                ));
            }
        };
        let filter = match &self.filter {
            Some(Ok(filter)) => Some(Arc::clone(filter)),
            Some(Err(e)) => return Err(SandboxError::SyscallFilter(e.clone())),
            None => None,
        };
        if spec.network.is_some() && !(namespaces && self.network() == NetworkMode::None) {
            return Err(SandboxError::InvalidSpec(
                "a prepared network namespace needs Namespaces mode with NetworkMode::None".into(),
            ));
        }
        let (uid, gid) = (
            spec.uid.unwrap_or(self.config.uid),
            spec.gid.unwrap_or(self.config.gid),
        );
        if namespaces && !(is_unprivileged_id(uid) && is_unprivileged_id(gid)) {
            return Err(SandboxError::InvalidSpec(format!(
                "the program must run as an unprivileged user (uid {uid}, gid {gid})"
            )));
        }
        if !spec.tmp_dir.as_os_str().is_empty()
            && (!namespaces || self.config.tmp == TmpBacking::HostDir)
        {
            fs::create_dir_all(&spec.tmp_dir)
                .map_err(|e| SandboxError::io(format!("creating {}", spec.tmp_dir.display()), e))?;
            if namespaces {
                chown(
                    &spec.tmp_dir,
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                )
                .map_err(|e| {
                    SandboxError::io(format!("chown {}", spec.tmp_dir.display()), e.into())
                })?;
            }
        }
        // Disk: a fresh filesystem, given to the user; its mount moves into place inside.
        // Should that fail (loop devices exhausted, a full disk), this environment gets a
        // tmpfs rather than no start at all.
        let tmp_image = match &self.tmp_pool {
            Some(pool) if namespaces && !pool.is_broken() => {
                match pool
                    .take(spec.tmp_size_mb)
                    .and_then(|image| image.give_to(uid, gid).map(|()| image))
                {
                    Ok(image) => Some(image),
                    Err(e) => {
                        tracing::warn!(id = %spec.id, error = %e, "no disk-backed /tmp; this environment gets a tmpfs");
                        None
                    }
                }
            }
            _ => None,
        };
        let tmp_mount = tmp_image
            .as_ref()
            .and_then(HeldTmp::mount)
            .map(|fd| fd.as_raw_fd());
        let tmp_source = match (tmp_mount, self.config.tmp) {
            (Some(fd), _) => TmpSource::Mount(fd),
            (None, TmpBacking::HostDir) => TmpSource::HostDir,
            (None, _) => TmpSource::Tmpfs,
        };
        let steps = if namespaces {
            if !spec.code_later && !spec.task_root.is_dir() {
                return Err(SandboxError::InvalidSpec(format!(
                    "task_root {} is not a directory",
                    spec.task_root.display()
                )));
            }
            plan::build(
                spec,
                &self.config.staging_dir,
                tmp_source,
                (uid, gid),
                HostKind::of,
            )?
        } else {
            Vec::new()
        };
        let cgroup = match &self.cgroups {
            Some(roots) => {
                let limits = Limits {
                    memory_bytes: u64::from(spec.memory_mb) * 1024 * 1024,
                    pids_max: spec.pids_max,
                    memory_mb: spec.memory_mb,
                };
                Some(roots.create(&spec.id, &limits)?)
            }
            None => None,
        };

        let pipe = |what: &str| -> Result<(OwnedFd, OwnedFd), SandboxError> {
            let (read, write) = pipe2(OFlag::O_CLOEXEC)
                .map_err(|e| SandboxError::io(format!("creating the {what} pipe"), e.into()))?;
            Ok((above_stdio(read)?, above_stdio(write)?))
        };
        let (stdout_read, stdout_write) = pipe("stdout")?;
        let (stderr_read, stderr_write) = pipe("stderr")?;
        let (report_read, report_write) = pipe("report")?;
        let (lifeline_read, lifeline_write) = pipe("lifeline")?;
        let dev_null =
            fs::File::open("/dev/null").map_err(|e| SandboxError::io("opening /dev/null", e))?;
        let dev_null = above_stdio(dev_null.into())?;
        let (cgroup_files, thaw_file) = open_cgroup_files(cgroup.as_ref())?;
        // code_later: the channel on which the supervisor receives the code's mounts.
        let (control, control_child) = if spec.code_later {
            let (ours, theirs) = sys::code::control_pair()
                .map_err(|e| SandboxError::io("creating the control socket", e))?;
            (Some(above_stdio(ours)?), Some(above_stdio(theirs)?))
        } else {
            (None, None)
        };
        // exec_later: the pipe on which the waiting program receives its command.
        let (late_read, late_write) = if spec.exec_later {
            let (read, write) = pipe("late exec")?;
            (Some(read), Some(write))
        } else {
            (None, None)
        };
        // The supervisor puts its stdio at 0-2 first: a passed descriptor there would be lost.
        let low_copies = spec
            .pass_fds
            .iter()
            .filter(|fd| fd.as_raw_fd() <= 2)
            .map(|fd| {
                let copy = fd
                    .try_clone()
                    .map_err(|e| SandboxError::io("duplicating a passed descriptor", e))?;
                Ok((fd.as_raw_fd(), above_stdio(copy)?))
            })
            .collect::<Result<Vec<_>, SandboxError>>()?;
        let pass = spec
            .pass_fds
            .iter()
            .map(|fd| {
                let raw = fd.as_raw_fd();
                low_copies
                    .iter()
                    .find(|(low, _)| *low == raw)
                    .map_or(raw, |(_, copy)| copy.as_raw_fd())
            })
            .collect();

        let fds = ChildFds {
            stdin: dev_null.as_raw_fd(),
            stdout: stdout_write.as_raw_fd(),
            stderr: stderr_write.as_raw_fd(),
            report: report_write.as_raw_fd(),
            lifeline: lifeline_read.as_raw_fd(),
            cgroup_procs: cgroup_files.iter().map(AsRawFd::as_raw_fd).collect(),
            thaw: thaw_file
                .as_ref()
                .map(|(file, value)| (file.as_raw_fd(), *value)),
            pass,
            tmp_mount,
            control: control_child.as_ref().map(AsRawFd::as_raw_fd),
            late_gate: late_read.as_ref().map(AsRawFd::as_raw_fd),
            init_image,
        };
        let netns = spec.network.as_ref().map(|n| n.as_fd().as_raw_fd());
        let ns_plan = if namespaces {
            Some(NsPlan {
                steps: steps.iter().map(Step::to_c).collect::<Result<_, _>>()?,
                hostname: c_str(&spec.id)?,
                loopback_up: self.network() == NetworkMode::None && netns.is_none(),
                netns,
                uid,
                gid,
            })
        } else {
            None
        };
        let args = spec
            .args
            .iter()
            .map(|a| c_str(a))
            .collect::<Result<_, _>>()?;
        let env = spec
            .env
            .iter()
            .map(|(k, v)| c_str(&format!("{k}={v}")))
            .collect::<Result<_, _>>()?;
        let plan = ChildPlan::new(
            fds,
            c_path(&spec.program)?,
            args,
            env,
            c_path(&spec.cwd)?,
            ns_plan,
            filter,
        )
        .with_nofile(self.config.nofile_limit);

        let flags = match (namespaces, netns) {
            (false, _) => 0,
            // The supervisor joins the prepared namespace instead.
            (true, Some(_)) => namespace_flags(NetworkMode::Host),
            (true, None) => self.namespace_flags(),
        };
        let (supervisor_pid, pidfd) = sys::clone_supervisor(&plan, flags).map_err(|e| {
            if namespaces && is_permission_like(&e) {
                SandboxError::IsolationUnavailable(format!("cannot create namespaces: {e}"))
            } else {
                SandboxError::io("cloning the supervisor", e)
            }
        })?;
        // The child has its copies; ours of the child's ends close here.
        drop((
            stdout_write,
            stderr_write,
            report_write,
            lifeline_read,
            dev_null,
            cgroup_files,
            thaw_file,
            low_copies,
            control_child,
            late_read,
        ));
        Ok(Launched {
            supervisor_pid,
            tree: Tree {
                pidfd: Some(pidfd),
                cgroup,
                namespaces,
                tmp: tmp_image,
            },
            stdout: stdout_read,
            stderr: stderr_read,
            report: report_read,
            lifeline: lifeline_write,
            steps,
            control,
            late_gate: late_write,
        })
    }

    pub(crate) fn network(&self) -> NetworkMode {
        match self.mode {
            IsolationMode::Namespaces { network } => network,
            IsolationMode::Process => NetworkMode::Host,
        }
    }

    fn namespace_flags(&self) -> u64 {
        namespace_flags(self.network())
    }
}

/// Everything `launch` hands to the async part of `spawn`: a supervisor that has not reported
/// `Started` yet.
pub(crate) struct Launched {
    pub supervisor_pid: libc::pid_t,
    pub tree: Tree,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub report: OwnedFd,
    pub lifeline: OwnedFd,
    pub steps: Vec<Step>,
    /// `code_later`: Kindling's end of the supervisor's control socket.
    pub control: Option<OwnedFd>,
    /// `exec_later`: the write end of the pipe the waiting program reads its command from.
    pub late_gate: Option<OwnedFd>,
}

/// The supervisor's pidfd and the cgroups. Dropped while it still holds the pidfd (the caller
/// of `spawn` went away while the launch ran on its thread), it tears the tree down.
pub(crate) struct Tree {
    pub pidfd: Option<OwnedFd>,
    pub cgroup: Option<EnvCgroup>,
    pub namespaces: bool,
    /// The environment's `/tmp` filesystem, held until the environment is gone.
    pub tmp: Option<HeldTmp>,
}

impl Drop for Tree {
    fn drop(&mut self) {
        if let Some(pidfd) = self.pidfd.take() {
            abort_blocking(pidfd.as_fd(), self.namespaces, self.cgroup.take());
        }
    }
}

fn namespace_flags(network: NetworkMode) -> u64 {
    let mut flags = sys::NS_MOUNT | sys::NS_PID | sys::NS_IPC | sys::NS_UTS;
    if network == NetworkMode::None {
        flags |= sys::NS_NET;
    }
    flags
}

/// Checks for Namespaces mode, and prepares the cgroup parents and staging directory.
pub(crate) fn prepare_namespaces(
    config: &SandboxConfig,
    network: NetworkMode,
) -> Result<(CgroupRoots, Option<NodeLock>), SandboxError> {
    let unavailable = |message: String| SandboxError::IsolationUnavailable(message);
    let euid = geteuid();
    if !euid.is_root() {
        return Err(unavailable(format!(
            "Namespaces mode needs root; running as uid {euid}"
        )));
    }
    let parent = &config.cgroup_parent;
    if parent.as_os_str().is_empty()
        || parent
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(SandboxError::InvalidSpec(format!(
            "cgroup_parent {} must be a relative path without . or ..",
            parent.display()
        )));
    }
    if !config.staging_dir.is_absolute() {
        return Err(SandboxError::InvalidSpec(format!(
            "staging_dir {} must be absolute",
            config.staging_dir.display()
        )));
    }
    if let Some(dir) = &config.node_lock_dir
        && (!dir.is_absolute() || parent.components().count() < 2)
    {
        return Err(SandboxError::InvalidSpec(format!(
            "node_lock_dir {} must be absolute and cgroup_parent {} of the form <nodes>/<node>",
            dir.display(),
            parent.display()
        )));
    }
    let roots = CgroupRoots::detect(parent)?;
    // Before the node's own directories exist (see `lock_node`).
    let node_lock = match &config.node_lock_dir {
        Some(dir) => Some(roots.lock_node(dir)?),
        None => None,
    };
    roots
        .prepare()
        .map_err(|e| unavailable(format!("preparing cgroups: {e}")))?;
    roots.set_node_caps(&NodeCaps {
        max_processes: config.max_processes,
        max_memory_bytes: config.max_memory_bytes,
    })?;
    fs::create_dir_all(&config.staging_dir)
        .map_err(|e| SandboxError::io(format!("creating {}", config.staging_dir.display()), e))?;
    sys::probe_namespaces(namespace_flags(network))
        .map_err(|e| unavailable(format!("cannot create namespaces: {e}")))?;
    Ok((roots, node_lock))
}

/// Stops a supervisor that did not start the program and waits, blocking, until it is reaped;
/// removes its cgroups.
pub(crate) fn abort_blocking(pidfd: BorrowedFd<'_>, namespaces: bool, cgroup: Option<EnvCgroup>) {
    sys::stop_and_reap_blocking(pidfd, namespaces, Instant::now() + Duration::from_secs(2));
    drop(cgroup);
}

/// Makes sure a descriptor is not 0, 1 or 2, which the child overwrites with dup2.
pub(crate) fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, SandboxError> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // try_clone duplicates with F_DUPFD_CLOEXEC from 3 up.
    fd.try_clone()
        .map_err(|e| SandboxError::io("duplicating a descriptor", e))
}

type CgroupFiles = (Vec<OwnedFd>, Option<(OwnedFd, &'static [u8])>);

fn open_cgroup_files(cgroup: Option<&EnvCgroup>) -> Result<CgroupFiles, SandboxError> {
    let Some(cgroup) = cgroup else {
        return Ok((Vec::new(), None));
    };
    let open = |path: &Path| -> Result<OwnedFd, SandboxError> {
        let file = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| SandboxError::cgroup(path, e))?;
        above_stdio(file.into())
    };
    let procs = cgroup
        .procs_files()
        .iter()
        .map(|p| open(p))
        .collect::<Result<_, _>>()?;
    let thaw = match cgroup.thaw_control() {
        Some((path, value)) => Some((open(&path)?, value)),
        None => None,
    };
    Ok((procs, thaw))
}

pub(crate) fn is_permission_like(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(
            libc::EPERM | libc::EACCES | libc::EINVAL | libc::ENOSPC | libc::EUSERS | libc::ENOSYS
        )
    )
}
