//! The sandbox: configuration, checks at construction, and `spawn`.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::unistd::{Gid, Uid, chown, geteuid, pipe2};
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, watch};

use crate::cgroup::{CgroupRoots, EnvCgroup, Limits};
use crate::environment::{Environment, Inner, monitor, read_record};
use crate::output::{Stream, pump};
use crate::plan::{self, HostKind, Step, c_path, c_str};
use crate::report::{Record, Stage};
use crate::spec::is_unprivileged_id;
use crate::sys::child::{ChildFds, ChildPlan, NsPlan};
use crate::{
    EnvironmentSpec, IsolationMode, NetworkMode, NetworkNamespace, PreparedNetwork, SandboxError,
    sys,
};

/// What backs `/tmp` in Namespaces mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TmpBacking {
    /// A read-write bind of the spec's `tmp_dir` (chowned to the sandbox user): on disk, kept
    /// across resets like Lambda's `/tmp`, not counted as memory. `tmp_size_mb` is not enforced.
    #[default]
    HostDir,
    /// A private tmpfs of `tmp_size_mb`: the size is enforced, but contents live in memory
    /// (charged to the environment's memory limit) and vanish with the environment.
    Tmpfs,
}

/// Settings shared by every environment of a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// User the program runs as in Namespaces mode, unless its spec names one
    /// ([`EnvironmentSpec::uid`]). Default 993, Lambda's sandbox user id.
    pub uid: u32,
    /// Group the program runs as in Namespaces mode (no supplementary groups), unless its spec
    /// names one ([`EnvironmentSpec::gid`]). Default 993.
    pub gid: u32,
    /// Directory, relative to the root of each cgroup hierarchy, holding one cgroup per
    /// environment (`<hierarchy>/<cgroup_parent>/<id>`). Created at construction; it must not
    /// hold processes itself. Default `kindling`.
    pub cgroup_parent: PathBuf,
    /// Empty host directory on which each environment's root is assembled, inside the
    /// environment's own mount namespace (the host never sees those mounts). Created at
    /// construction. Default `/run/kindling-sandbox`.
    pub staging_dir: PathBuf,
    /// What backs `/tmp`. Default [`TmpBacking::HostDir`].
    pub tmp: TmpBacking,
    /// RLIMIT_NOFILE of the program in Namespaces mode. Default 1024, as in Lambda.
    pub nofile_limit: u64,
    /// Longest output line; longer ones are cut into several. Default 256 KiB (CloudWatch's
    /// largest event).
    pub max_line_bytes: usize,
    /// Lines buffered between the output pipes and the caller. Default 1024.
    pub output_capacity: usize,
    /// How long setup plus `execve` may take before `spawn` gives up. Default 10 s.
    pub start_timeout: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            uid: 993,
            gid: 993,
            cgroup_parent: PathBuf::from("kindling"),
            staging_dir: PathBuf::from("/run/kindling-sandbox"),
            tmp: TmpBacking::default(),
            nofile_limit: 1024,
            max_line_bytes: 256 * 1024,
            output_capacity: 1024,
            start_timeout: Duration::from_secs(10),
        }
    }
}

/// Starts environments in one isolation mode. Cheap to share (`Arc`) between tasks.
#[derive(Debug)]
pub struct Sandbox {
    mode: IsolationMode,
    config: SandboxConfig,
    /// Namespaces mode only.
    cgroups: Option<CgroupRoots>,
}

impl Sandbox {
    /// A sandbox for `mode`. For Namespaces mode this checks everything it can up front (root,
    /// cgroup controllers, creating the namespaces once) so that a caller can fall back to
    /// Process mode at startup: such failures are [`SandboxError::IsolationUnavailable`].
    pub fn new(mode: IsolationMode, config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let cgroups = match mode {
            IsolationMode::Process => None,
            IsolationMode::Namespaces { network } => Some(prepare_namespaces(&config, network)?),
        };
        Ok(Sandbox {
            mode,
            config,
            cgroups,
        })
    }

    /// A Process-mode sandbox with the default configuration.
    pub fn process() -> Sandbox {
        Sandbox {
            mode: IsolationMode::Process,
            config: SandboxConfig::default(),
            cgroups: None,
        }
    }

    pub fn mode(&self) -> IsolationMode {
        self.mode
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// Prepares the network of an environment about to be spawned, with a listener that the
    /// environment (and, with a private namespace, only the environment) can reach on
    /// `127.0.0.1`:
    ///
    /// - Namespaces mode with [`NetworkMode::None`]: a new network namespace with only `lo`
    ///   (up), and the listener bound inside it on `127.0.0.1:port_inside` (a fixed port such as
    ///   9001 is fine: every environment has its own). Pass the returned
    ///   [`namespace`](PreparedNetwork::namespace) in [`EnvironmentSpec::network`]; the
    ///   supervisor joins it instead of creating one. The host cannot connect to the listener.
    /// - Otherwise the environment shares the host's network: the listener is bound on the
    ///   host's `127.0.0.1:0` (a free port; `port_inside` is not used, as fixed ports would
    ///   collide between environments), `namespace` is `None`, and any local process can
    ///   connect to it.
    ///
    /// A namespace is made on a short-lived thread of its own (only that thread moves into it),
    /// so this never blocks the async runtime's workers. Must be called within a Tokio runtime.
    pub async fn prepare_network(&self, port_inside: u16) -> Result<PreparedNetwork, SandboxError> {
        let (listener, namespace) = if self.cgroups.is_some() && self.network() == NetworkMode::None
        {
            let (namespace, listener) = sys::net::new_loopback_namespace(port_inside)
                .await
                .map_err(|e| {
                    if is_permission_like(&e) {
                        SandboxError::IsolationUnavailable(format!(
                            "cannot create a network namespace: {e}"
                        ))
                    } else {
                        SandboxError::io("preparing a network namespace", e)
                    }
                })?;
            (
                listener,
                Some(NetworkNamespace::new(above_stdio(namespace)?)),
            )
        } else {
            let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
                .map_err(|e| SandboxError::io("binding a loopback listener", e))?;
            (listener, None)
        };
        listener
            .set_nonblocking(true)
            .map_err(|e| SandboxError::io("making the listener non-blocking", e))?;
        Ok(PreparedNetwork {
            listener,
            namespace,
        })
    }

    /// Starts the environment and returns once its program is executing (its `execve`
    /// succeeded). Must be called within a Tokio runtime (with IO and time enabled); the
    /// environment is watched by tasks on that runtime.
    pub async fn spawn(&self, spec: EnvironmentSpec) -> Result<Environment, SandboxError> {
        let started = Instant::now();
        let namespaces = self.cgroups.is_some();
        let launched = self.launch(&spec)?;
        let Launched {
            supervisor_pid,
            pidfd,
            stdout,
            stderr,
            report,
            lifeline,
            cgroup,
            steps,
        } = launched;
        let supervisor = match sys::register_pidfd(pidfd) {
            Ok(supervisor) => supervisor,
            Err((pidfd, e)) => {
                abort_blocking(pidfd.as_fd(), namespaces, cgroup);
                return Err(SandboxError::io("watching the supervisor's pidfd", e));
            }
        };
        // Until the environment is handed out, dropping this (on an error, or because the
        // caller dropped this future) tears the tree down.
        let starting = Starting {
            supervisor: Some(supervisor),
            cgroup,
            namespaces,
        };
        let mut report = pipe::Receiver::from_owned_fd(report)
            .map_err(|e| SandboxError::io("reading the report pipe", e))?;

        let first = tokio::time::timeout(self.config.start_timeout, read_record(&mut report)).await;
        let ns_pid = match first {
            Ok(Some(Record::Started { pid })) => pid,
            Ok(Some(Record::Failed { stage, step, errno })) => {
                starting.abort().await;
                return Err(self.setup_error(&spec, &steps, stage, step, errno));
            }
            Ok(other) => {
                starting.abort().await;
                let got = other.map_or_else(|| "nothing".to_string(), |r| format!("{r:?}"));
                return Err(SandboxError::io(
                    "starting the environment",
                    std::io::Error::other(format!(
                        "the supervisor ended during setup (reported {got})"
                    )),
                ));
            }
            Err(_) => {
                starting.abort().await;
                return Err(SandboxError::StartTimeout(self.config.start_timeout));
            }
        };
        let (supervisor, cgroup) = starting.finish();
        let program_pid = if namespaces {
            host_pid(supervisor_pid, ns_pid)
        } else {
            Some(ns_pid)
        };

        let (lines_tx, lines_rx) = mpsc::channel(self.config.output_capacity.max(1));
        for (stream, fd) in [(Stream::Stdout, stdout), (Stream::Stderr, stderr)] {
            match pipe::Receiver::from_owned_fd(fd) {
                Ok(source) => {
                    tokio::spawn(pump(
                        stream,
                        source,
                        lines_tx.clone(),
                        self.config.max_line_bytes,
                    ));
                }
                Err(e) => tracing::warn!(?stream, error = %e, "cannot read environment output"),
            }
        }
        drop(lines_tx);

        let inner = Arc::new(Inner {
            namespaces,
            supervisor,
            program_pid,
            killed: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            cgroup: Mutex::new(cgroup),
            final_peak: Mutex::new(None),
            final_oom: AtomicBool::new(false),
        });
        let (exit_tx, exit_rx) = watch::channel(None);
        tokio::spawn(monitor(Arc::clone(&inner), report, exit_tx));
        tracing::debug!(
            id = %spec.id,
            pid = ?program_pid,
            micros = started.elapsed().as_micros() as u64,
            "environment started"
        );
        Ok(Environment::new(
            spec.id, inner, exit_rx, lines_rx, lifeline,
        ))
    }

    /// The synchronous part of spawning: plan, cgroups, pipes, clone.
    fn launch(&self, spec: &EnvironmentSpec) -> Result<Launched, SandboxError> {
        let namespaces = self.cgroups.is_some();
        spec.validate(namespaces)?;
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
        let steps = if namespaces {
            if !spec.task_root.is_dir() {
                return Err(SandboxError::InvalidSpec(format!(
                    "task_root {} is not a directory",
                    spec.task_root.display()
                )));
            }
            plan::build(
                spec,
                &self.config.staging_dir,
                self.config.tmp,
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
                nofile: self.config.nofile_limit,
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
        );

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
        ));
        Ok(Launched {
            supervisor_pid,
            pidfd,
            stdout: stdout_read,
            stderr: stderr_read,
            report: report_read,
            lifeline: lifeline_write,
            cgroup,
            steps,
        })
    }

    fn network(&self) -> NetworkMode {
        match self.mode {
            IsolationMode::Namespaces { network } => network,
            IsolationMode::Process => NetworkMode::Host,
        }
    }

    fn namespace_flags(&self) -> u64 {
        namespace_flags(self.network())
    }

    /// Turns a supervisor's failure report into an error.
    fn setup_error(
        &self,
        spec: &EnvironmentSpec,
        steps: &[Step],
        stage: Stage,
        step: u32,
        errno: i32,
    ) -> SandboxError {
        let source = std::io::Error::from_raw_os_error(errno);
        match stage {
            Stage::Exec => SandboxError::Exec {
                program: spec.program.clone(),
                source,
            },
            Stage::Filesystem => {
                let what = steps
                    .get(step as usize)
                    .map_or_else(|| format!("filesystem step {step}"), Step::describe);
                if matches!(errno, libc::EPERM | libc::EACCES) && self.cgroups.is_some() {
                    SandboxError::IsolationUnavailable(format!("{what}: {source}"))
                } else {
                    SandboxError::Setup { step: what, source }
                }
            }
            Stage::Chdir => SandboxError::Setup {
                step: format!("changing to {}", spec.cwd.display()),
                source,
            },
            other => SandboxError::Setup {
                step: other.describe().to_string(),
                source,
            },
        }
    }
}

/// Everything `launch` hands to the async part of `spawn`.
struct Launched {
    supervisor_pid: libc::pid_t,
    pidfd: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
    report: OwnedFd,
    lifeline: OwnedFd,
    cgroup: Option<EnvCgroup>,
    steps: Vec<Step>,
}

fn namespace_flags(network: NetworkMode) -> u64 {
    let mut flags = sys::NS_MOUNT | sys::NS_PID | sys::NS_IPC | sys::NS_UTS;
    if network == NetworkMode::None {
        flags |= sys::NS_NET;
    }
    flags
}

/// Checks for Namespaces mode, and prepares the cgroup parents and staging directory.
fn prepare_namespaces(
    config: &SandboxConfig,
    network: NetworkMode,
) -> Result<CgroupRoots, SandboxError> {
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
    let roots = CgroupRoots::detect(parent)?;
    roots
        .prepare()
        .map_err(|e| unavailable(format!("preparing cgroups: {e}")))?;
    fs::create_dir_all(&config.staging_dir)
        .map_err(|e| SandboxError::io(format!("creating {}", config.staging_dir.display()), e))?;
    sys::probe_namespaces(namespace_flags(network))
        .map_err(|e| unavailable(format!("cannot create namespaces: {e}")))?;
    Ok(roots)
}

/// A supervisor that has not reported `Started` yet, with its cgroups.
struct Starting {
    supervisor: Option<AsyncFd<OwnedFd>>,
    cgroup: Option<EnvCgroup>,
    namespaces: bool,
}

impl Starting {
    fn finish(mut self) -> (AsyncFd<OwnedFd>, Option<EnvCgroup>) {
        let supervisor = self.supervisor.take().expect("finished once");
        (supervisor, self.cgroup.take())
    }

    /// Stops the supervisor (and so the tree), reaps it, removes the cgroups.
    async fn abort(mut self) {
        if let Some(supervisor) = self.supervisor.take() {
            abort(&supervisor, self.namespaces, self.cgroup.take()).await;
        }
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        let Some(supervisor) = self.supervisor.take() else {
            return;
        };
        let (cgroup, namespaces) = (self.cgroup.take(), self.namespaces);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { abort(&supervisor, namespaces, cgroup).await });
            }
            Err(_) => abort_blocking(supervisor.get_ref().as_fd(), namespaces, cgroup),
        }
    }
}

/// Stops a supervisor that did not start the program, reaps it, removes its cgroups. A
/// Process-mode supervisor gets a few seconds for its teardown before it is SIGKILLed.
async fn abort(supervisor: &AsyncFd<OwnedFd>, namespaces: bool, cgroup: Option<EnvCgroup>) {
    const TEARDOWN: Duration = Duration::from_secs(5);
    sys::stop_supervisor(supervisor.get_ref().as_fd(), namespaces);
    let reaped = match tokio::time::timeout(TEARDOWN, sys::reap(supervisor)).await {
        Ok(reaped) => reaped,
        Err(_) => {
            tracing::warn!("a failed supervisor did not finish its teardown; killing it");
            let _ = sys::pidfd_send_signal(supervisor.get_ref().as_fd(), libc::SIGKILL);
            sys::reap(supervisor).await
        }
    };
    if let Err(e) = reaped {
        tracing::warn!(error = %e, "reaping a failed supervisor");
    }
    drop(cgroup);
}

/// [`abort`] without a reactor.
fn abort_blocking(pidfd: BorrowedFd<'_>, namespaces: bool, cgroup: Option<EnvCgroup>) {
    sys::stop_and_reap_blocking(pidfd, namespaces, Instant::now() + Duration::from_secs(2));
    drop(cgroup);
}

/// The host pid of the supervisor's child whose pid inside the namespace is `ns_pid`.
fn host_pid(supervisor: libc::pid_t, ns_pid: libc::pid_t) -> Option<i32> {
    let children =
        fs::read_to_string(format!("/proc/{supervisor}/task/{supervisor}/children")).ok()?;
    children
        .split_whitespace()
        .filter_map(|c| c.parse::<i32>().ok())
        .find(|&child| {
            fs::read_to_string(format!("/proc/{child}/status")).is_ok_and(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("NSpid:"))
                    .and_then(|ids| ids.split_whitespace().last())
                    .and_then(|id| id.parse::<i32>().ok())
                    == Some(ns_pid)
            })
        })
}

/// Makes sure a descriptor is not 0, 1 or 2, which the child overwrites with dup2.
fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, SandboxError> {
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

fn is_permission_like(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(
            libc::EPERM | libc::EACCES | libc::EINVAL | libc::ENOSPC | libc::EUSERS | libc::ENOSYS
        )
    )
}
