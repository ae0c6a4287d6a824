//! The sandbox: configuration, checks at construction, and `spawn`.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, watch};

use crate::cgroup::EnvCgroup;
use crate::environment::{Environment, EnvironmentSlot, Inner, LiveCount, monitor, read_record};
use crate::launch::{
    Launched, Shared, abort_blocking, above_stdio, is_permission_like, prepare_namespaces,
};
use crate::output::{Output, Progress, Sources, Stream, pump};
use crate::plan::Step;
use crate::report::{Record, Stage};
use crate::tmp_disk::TmpPool;
use crate::{
    EnvironmentSpec, IsolationMode, NetworkMode, NetworkNamespace, PreparedNetwork, SandboxError,
    seccomp, sys,
};

/// What backs `/tmp` in Namespaces mode (Process mode always uses the spec's `tmp_dir`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TmpBacking {
    /// A read-write bind of the spec's `tmp_dir` (chowned to the sandbox user): on disk, kept
    /// across resets like Lambda's `/tmp`, not counted as memory. `tmp_size_mb` is not enforced.
    #[default]
    HostDir,
    /// A private tmpfs of `tmp_size_mb`: the size is enforced, but contents live in memory
    /// (charged to the environment's memory limit) and vanish with the environment.
    Tmpfs,
    /// A fresh ext4 filesystem per environment with exactly `tmp_size_mb` MiB free (ENOSPC
    /// beyond, as Lambda's `EphemeralStorage`), on a loop device over a sparse image file in
    /// [`SandboxConfig::tmp_image_dir`]: on disk, so a 128 MB function can write 200 MB to it
    /// (its page cache is reclaimable), and private to one environment (never reused). Ready
    /// images are kept in a small pool by a background thread at idle priority, so a cold start
    /// only attaches one. The filesystem, its loop device and its image file go away after the
    /// environment's last process (unmounted by the pool's thread, never on an async worker).
    /// `Sandbox::new` checks `/dev/loop-control`, `mkfs.ext4` and ext4; if one is missing it
    /// logs a warning and uses `Tmpfs` ([`Sandbox::config`] shows what is in effect). Should
    /// making images fail later anyway, every environment (or the one concerned) gets a tmpfs,
    /// with a warning. `tmp_dir` is not used.
    Disk,
}

/// Lambda's default `EphemeralStorage`: the size the `/tmp` pool starts with.
const DEFAULT_TMP_MB: u32 = 512;

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
    /// Namespaces mode: a host-wide directory (absolute; created 0700) of node liveness locks,
    /// for hosts where several sandboxes, "nodes", keep their cgroups side by side:
    /// `cgroup_parent` is then `<nodes>/<node>` and every other directory under `<nodes>` is
    /// another node's. The sandbox holds an exclusive `flock` on `<dir>/<node>.lock` for its
    /// life, taken before its cgroups are created, and at construction removes the cgroups of
    /// every sibling whose lock it can take (the owner died) in every hierarchy, environment
    /// cgroups first, and that node's lock file; cgroups with processes stay. A sibling whose
    /// lock is held is alive and never touched. A sibling without a lock file (made by a
    /// Kindling without node locks, which may still run) goes only once it has no process and
    /// none of its cgroups was made within the last hour. The directory
    /// should, like cgroups, not survive a reboot (`/run/...`). `Sandbox::new` fails when
    /// another live process holds this node's own lock. Default `None`: no lock, and only this
    /// node's own stale environment cgroups are removed.
    pub node_lock_dir: Option<PathBuf>,
    /// Empty host directory on which each environment's root is assembled, inside the
    /// environment's own mount namespace (the host never sees those mounts). Created at
    /// construction. Default `/run/kindling-sandbox`.
    pub staging_dir: PathBuf,
    /// What backs `/tmp`. Default [`TmpBacking::HostDir`].
    pub tmp: TmpBacking,
    /// [`TmpBacking::Disk`]: where image files are made, created 0700. An image's file is
    /// unlinked as soon as its loop device holds it, so the directory is normally empty; files
    /// of processes killed while making one are removed at construction. It should be on a
    /// disk, not on a tmpfs. Default `/var/lib/kindling-sandbox/tmp-images`.
    pub tmp_image_dir: PathBuf,
    /// [`TmpBacking::Disk`]: the `mkfs.ext4` to run. Default `/usr/sbin/mkfs.ext4` (else
    /// `/sbin/mkfs.ext4`).
    pub mkfs_ext4: PathBuf,
    /// [`TmpBacking::Disk`]: ready images kept per size (for the 4 sizes most recently asked
    /// for). Default 2.
    pub tmp_pool_per_size: usize,
    /// RLIMIT_NOFILE of the program (soft and hard). Default 1024, as in Lambda; never above
    /// the hard limit Kindling has (raising that needs CAP_SYS_RESOURCE).
    pub nofile_limit: u64,
    /// Longest output line; longer ones are cut into several. Default 256 KiB (CloudWatch's
    /// largest event).
    pub max_line_bytes: usize,
    /// Lines buffered between the output pipes and the caller. Default 1024.
    pub output_capacity: usize,
    /// How long setup plus `execve` may take before `spawn` gives up. Default 10 s.
    pub start_timeout: Duration,
    /// Run every program under the system call filter (an allowlist; no namespaces, mounts,
    /// keyrings, BPF, perf, io_uring, ptrace, modules, reboot, clock setting, ...), in both
    /// modes. Default true; turning it off is for diagnosing a runtime the filter breaks.
    pub seccomp: bool,
    /// Namespaces mode: processes and threads all environments together may have at once
    /// (`pids.max` on the `cgroup_parent` level, above each environment's own 1,024), so that
    /// functions that fork cannot exhaust the host's pids. A fork beyond it fails with EAGAIN
    /// in the function. Default `None`: no node-wide cap (`max`).
    pub max_processes: Option<u64>,
    /// Namespaces mode: bytes of memory all environments together may use (`memory.max` on
    /// v2, `memory.limit_in_bytes` on v1, on the `cgroup_parent` level). Past it the kernel's
    /// OOM killer picks within the environments only, never Kindling or other host processes,
    /// and the invocation ends with Lambda's out-of-memory error. Default `None`: no cap.
    pub max_memory_bytes: Option<u64>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            uid: 993,
            gid: 993,
            cgroup_parent: PathBuf::from("kindling"),
            node_lock_dir: None,
            staging_dir: PathBuf::from("/run/kindling-sandbox"),
            tmp: TmpBacking::default(),
            tmp_image_dir: PathBuf::from("/var/lib/kindling-sandbox/tmp-images"),
            mkfs_ext4: ["/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
                .unwrap_or_else(|| PathBuf::from("/usr/sbin/mkfs.ext4")),
            tmp_pool_per_size: 2,
            nofile_limit: 1024,
            max_line_bytes: 256 * 1024,
            output_capacity: 1024,
            start_timeout: Duration::from_secs(10),
            seccomp: true,
            max_processes: None,
            max_memory_bytes: None,
        }
    }
}

/// Starts environments in one isolation mode. Cheap to share (`Arc`) between tasks.
#[derive(Debug)]
pub struct Sandbox {
    shared: Arc<Shared>,
}

impl Sandbox {
    /// A sandbox for `mode`. For Namespaces mode this checks everything it can up front (root,
    /// cgroup controllers, creating the namespaces once) so that a caller can fall back to
    /// Process mode at startup: such failures are [`SandboxError::IsolationUnavailable`].
    pub fn new(mode: IsolationMode, config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let filter = match config.seccomp.then(seccomp::filter) {
            Some(Ok(filter)) => Some(Ok(filter)),
            Some(Err(e)) => return Err(SandboxError::SyscallFilter(e)),
            None => None,
        };
        let (cgroups, node_lock) = match mode {
            IsolationMode::Process => (None, None),
            IsolationMode::Namespaces { network } => {
                let (cgroups, node_lock) = prepare_namespaces(&config, network)?;
                (Some(cgroups), node_lock)
            }
        };
        let mut config = config;
        let tmp_pool = if cgroups.is_some() && config.tmp == TmpBacking::Disk {
            match TmpPool::start(
                &config.tmp_image_dir,
                &config.mkfs_ext4,
                config.tmp_pool_per_size,
                DEFAULT_TMP_MB,
            ) {
                Ok(pool) => Some(pool),
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "disk-backed /tmp unavailable; each environment's /tmp is a tmpfs, \
                         counted against its memory"
                    );
                    config.tmp = TmpBacking::Tmpfs;
                    None
                }
            }
        } else {
            None
        };
        Ok(Sandbox {
            shared: Arc::new(Shared {
                mode,
                config,
                cgroups,
                _node_lock: node_lock,
                filter,
                tmp_pool,
                init_image: sys::init_image().map_err(|e| e.to_string()),
                live: Arc::default(),
            }),
        })
    }

    /// A Process-mode sandbox with the default configuration. Should the system call filter
    /// fail to build, every `spawn` returns [`SandboxError::SyscallFilter`].
    pub fn process() -> Sandbox {
        Sandbox {
            shared: Arc::new(Shared {
                mode: IsolationMode::Process,
                config: SandboxConfig::default(),
                cgroups: None,
                _node_lock: None,
                filter: Some(seccomp::filter()),
                tmp_pool: None,
                init_image: sys::init_image().map_err(|e| e.to_string()),
                live: Arc::default(),
            }),
        }
    }

    /// Environments started by this sandbox and not yet gone (dropped, and their tree's
    /// state released), and places reserved for environments about to start
    /// ([`Self::reserve`]).
    pub fn live_environments(&self) -> usize {
        self.shared
            .live
            .count
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// A place for one more environment when fewer than `limit` are live or reserved
    /// ([`Self::live_environments`]), taken atomically: however many callers reserve at once,
    /// at most `limit` places exist between environments and reservations. `None` for
    /// `limit`: no limit. Spawn the environment with [`Self::spawn_in`].
    pub fn reserve(&self, limit: Option<usize>) -> Option<EnvironmentSlot> {
        let live = &self.shared.live;
        match limit {
            None => Some(EnvironmentSlot(LiveCount::enter(live))),
            Some(limit) => LiveCount::enter_below(live, limit).map(EnvironmentSlot),
        }
    }

    /// Waits until fewer than `n` environments are alive (see [`Self::live_environments`]),
    /// at most `limit`; whether they are.
    pub async fn wait_fewer_than(&self, n: usize, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let gone = self.shared.live.gone.notified();
            tokio::pin!(gone);
            gone.as_mut().enable();
            if self.live_environments() < n {
                return true;
            }
            if tokio::time::timeout_at(deadline, gone).await.is_err() {
                return self.live_environments() < n;
            }
        }
    }

    pub fn mode(&self) -> IsolationMode {
        self.shared.mode
    }

    /// The configuration in effect (`tmp` is `Tmpfs` when `Disk` was asked for but could not
    /// be had).
    pub fn config(&self) -> &SandboxConfig {
        &self.shared.config
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
        self.prepare_network_with(port_inside, &[]).await
    }

    /// As [`Self::prepare_network`], plus, when the environment gets a network namespace of
    /// its own, listeners on its loopback at `extra_ports` (for services of Kindling's the
    /// environment may use, whose connections the caller relays).
    pub async fn prepare_network_with(
        &self,
        port_inside: u16,
        extra_ports: &[u16],
    ) -> Result<PreparedNetwork, SandboxError> {
        let shared = &self.shared;
        let (listener, namespace, extra_listeners) =
            if shared.cgroups.is_some() && shared.network() == NetworkMode::None {
                let (namespace, listener, extra) =
                    sys::net::new_loopback_namespace_with(port_inside, extra_ports.to_vec())
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
                    extra,
                )
            } else {
                let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
                    .map_err(|e| SandboxError::io("binding a loopback listener", e))?;
                (listener, None, Vec::new())
            };
        for l in std::iter::once(&listener).chain(&extra_listeners) {
            l.set_nonblocking(true)
                .map_err(|e| SandboxError::io("making the listener non-blocking", e))?;
        }
        Ok(PreparedNetwork {
            listener,
            namespace,
            extra_listeners,
        })
    }

    /// Starts the environment and returns once its program is executing (its `execve`
    /// succeeded). Must be called within a Tokio runtime (with IO and time enabled); the
    /// environment is watched by tasks on that runtime.
    ///
    /// The synchronous part (directories, cgroup writes, pipes, the `clone3` that copies
    /// Kindling's page tables) runs on Tokio's blocking pool, so a cold start never stalls the
    /// async workers. Dropping the returned future at any point tears down whatever was started.
    pub async fn spawn(&self, spec: EnvironmentSpec) -> Result<Environment, SandboxError> {
        let slot = EnvironmentSlot(LiveCount::enter(&self.shared.live));
        self.spawn_in(slot, spec).await
    }

    /// [`Self::spawn`] in a place reserved with [`Self::reserve`]: the environment keeps it
    /// until it is gone; a failed start frees it. (A slot of another sandbox is let go and a
    /// place taken in this one.)
    pub async fn spawn_in(
        &self,
        slot: EnvironmentSlot,
        spec: EnvironmentSpec,
    ) -> Result<Environment, SandboxError> {
        let live = if slot.0.counts_in(&self.shared.live) {
            slot.0
        } else {
            drop(slot);
            LiveCount::enter(&self.shared.live)
        };
        let started = Instant::now();
        let shared = Arc::clone(&self.shared);
        let (spec, launched) = tokio::task::spawn_blocking(move || {
            let launched = shared.launch(&spec);
            (spec, launched)
        })
        .await
        .map_err(|e| SandboxError::io("launching the environment", std::io::Error::other(e)))?;
        let Launched {
            supervisor_pid,
            mut tree,
            stdout,
            stderr,
            report,
            lifeline,
            steps,
            control,
            late_gate,
        } = launched?;
        let (namespaces, cgroup, tmp) = (tree.namespaces, tree.cgroup.take(), tree.tmp.take());
        let Some(pidfd) = tree.pidfd.take() else {
            return Err(SandboxError::io(
                "launching the environment",
                std::io::Error::other("no supervisor was started"),
            ));
        };
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

        let config = &self.shared.config;
        let first = tokio::time::timeout(config.start_timeout, read_record(&mut report)).await;
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
                return Err(SandboxError::StartTimeout(config.start_timeout));
            }
        };
        let (supervisor, cgroup) = starting.finish();
        let program_pid = if namespaces {
            host_pid(supervisor_pid, ns_pid)
        } else {
            Some(ns_pid)
        };

        let (lines_tx, lines_rx) = mpsc::channel(config.output_capacity.max(1));
        let progress = Progress::new();
        let mut sources = Sources::default();
        for (stream, fd) in [(Stream::Stdout, stdout), (Stream::Stderr, stderr)] {
            match pipe::Receiver::from_owned_fd(fd) {
                Ok(source) => {
                    let source = Arc::new(source);
                    sources.push(stream, Arc::clone(&source));
                    tokio::spawn(pump(
                        stream,
                        source,
                        lines_tx.clone(),
                        config.max_line_bytes,
                        Arc::clone(&progress),
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
            program_ended: OnceLock::new(),
            cgroup: Mutex::new(cgroup),
            final_peak: Mutex::new(None),
            final_oom: AtomicBool::new(false),
            statm: program_pid.and_then(|pid| fs::File::open(format!("/proc/{pid}/statm")).ok()),
            rss_peak: AtomicU64::new(0),
            tmp: Mutex::new(tmp),
            control: Mutex::new(control),
            late_gate: Mutex::new(late_gate),
            _live: live,
        });
        let (exit_tx, exit_rx) = watch::channel(None);
        tokio::spawn(monitor(Arc::clone(&inner), report, exit_tx));
        tracing::debug!(
            id = %spec.id,
            pid = ?program_pid,
            micros = started.elapsed().as_micros() as u64,
            "environment started"
        );
        let output = Output::new(lines_rx, Arc::clone(&progress));
        Ok(Environment::new(
            spec.id, inner, exit_rx, output, sources, progress, lifeline,
        ))
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
                if matches!(errno, libc::EPERM | libc::EACCES) && self.shared.cgroups.is_some() {
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
