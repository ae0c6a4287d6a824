//! A running environment: the handle the caller holds, and the task that watches the tree.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::wait::WaitStatus;
use tokio::io::AsyncReadExt;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;
use tokio::sync::watch;

use crate::cgroup::EnvCgroup;
use crate::output::{Output, Progress, Sources};
use crate::report::{RECORD_LEN, Record, Stage};
use crate::{SandboxError, sys};

/// How an environment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The program exited with this status code.
    Code(i32),
    /// The program was ended by this signal, from inside the environment or from the host.
    Signal(i32),
    /// The kernel's OOM killer ended the program because the environment reached its memory
    /// limit (Namespaces mode; Process mode cannot tell and reports `Signal(9)`).
    OutOfMemory,
    /// [`Environment::kill`] (or dropping the handle) ended the environment before the program
    /// exited.
    Killed,
}

impl Exit {
    /// True for `Code(0)`.
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

/// How long the supervisor may take to attach the code.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(5);

/// State shared by the handle and the monitor task.
pub(crate) struct Inner {
    pub namespaces: bool,
    pub supervisor: AsyncFd<OwnedFd>,
    pub program_pid: Option<i32>,
    /// `kill()` was called.
    pub killed: AtomicBool,
    /// The supervisor has been reaped: the tree is gone.
    pub ended: AtomicBool,
    /// When Kindling learned that the program ended (the supervisor's first word of it, before
    /// the tree is torn down and the exit published).
    pub program_ended: OnceLock<Instant>,
    /// `None` in Process mode and once removed. Locked briefly, never across an await, so that
    /// no operation can touch a later environment's cgroup of the same name.
    pub cgroup: Mutex<Option<EnvCgroup>>,
    /// Figures kept when the cgroup is removed (or, in Process mode, reported by the supervisor).
    pub final_peak: Mutex<Option<u64>>,
    pub final_oom: AtomicBool,
    /// `/proc/<program>/statm`, open: the program's resident set, read with one `pread`.
    pub statm: Option<std::fs::File>,
    /// The largest resident set of the program seen so far, in bytes.
    pub rss_peak: AtomicU64,
    /// The `/tmp` filesystem ([`TmpBacking::Disk`](crate::TmpBacking::Disk)), released to its
    /// pool once the tree is gone.
    pub tmp: Mutex<Option<crate::tmp_disk::HeldTmp>>,
    /// `code_later`: Kindling's end of the supervisor's control socket, taken by the one
    /// [`Environment::attach_code`].
    pub control: Mutex<Option<OwnedFd>>,
    /// `exec_later`: the write end of the pipe the waiting program reads its command from,
    /// taken by [`Environment::attach_code_and_exec`]. Dropping it unused ends the program.
    pub late_gate: Mutex<Option<OwnedFd>>,
    /// Counts this environment among its sandbox's live ones until the last reference goes.
    pub _live: LiveCount,
}

/// A sandbox's count of live environments (each holds descriptors, memory and processes of
/// the host's), and a signal for every one that goes.
#[derive(Debug, Default)]
pub(crate) struct LiveCounter {
    pub count: AtomicUsize,
    pub gone: tokio::sync::Notify,
}

/// One environment in its sandbox's [`LiveCounter`], from its reservation (or its start)
/// until its state is dropped.
#[derive(Debug)]
pub(crate) struct LiveCount(Arc<LiveCounter>);

impl LiveCount {
    pub(crate) fn enter(counter: &Arc<LiveCounter>) -> LiveCount {
        counter.count.fetch_add(1, Ordering::AcqRel);
        LiveCount(Arc::clone(counter))
    }

    /// Enters `counter` when fewer than `limit` are in it (one atomic step: concurrent
    /// callers never take more than `limit` places between them).
    pub(crate) fn enter_below(counter: &Arc<LiveCounter>, limit: usize) -> Option<LiveCount> {
        counter
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| LiveCount(Arc::clone(counter)))
    }

    pub(crate) fn counts_in(&self, counter: &Arc<LiveCounter>) -> bool {
        Arc::ptr_eq(&self.0, counter)
    }
}

/// A place for one environment among its sandbox's live ones, taken before the environment
/// is spawned ([`Sandbox::reserve`](crate::Sandbox::reserve)) so that a limit on
/// environments holds however many starts run at once. [`Sandbox::spawn_in`](crate::Sandbox::spawn_in)
/// turns it into the environment's own place; dropped unused (the start failed, or was not
/// needed), it is free again at once.
#[derive(Debug)]
pub struct EnvironmentSlot(pub(crate) LiveCount);

impl Drop for LiveCount {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
        self.0.gone.notify_waiters();
    }
}

/// What an environment spawned with
/// [`exec_later`](crate::EnvironmentSpec::exec_later) executes (see
/// [`Environment::attach_code_and_exec`]).
#[derive(Clone, Default)]
pub struct LateExec {
    /// The program, as seen inside (`/var/task/bootstrap`); executed as given.
    pub program: PathBuf,
    /// Arguments after `argv[0]` (which is `program`).
    pub args: Vec<String>,
    /// The complete environment of the program.
    pub env: Vec<(String, String)>,
    /// Working directory, as seen inside.
    pub cwd: PathBuf,
}

impl std::fmt::Debug for LateExec {
    // Environment values may hold credentials: show only the names.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let env_names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("LateExec")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env (names only)", &env_names)
            .field("cwd", &self.cwd)
            .finish()
    }
}

impl LateExec {
    /// The message the waiting program reads; `InvalidSpec` when it cannot take it.
    fn encode(&self) -> Result<Vec<u8>, SandboxError> {
        for (key, _) in &self.env {
            if key.is_empty() || key.contains('=') {
                return Err(SandboxError::InvalidSpec(format!(
                    "environment variable name {key:?} is invalid"
                )));
            }
        }
        for (what, path) in [("program", &self.program), ("cwd", &self.cwd)] {
            if !path.is_absolute() {
                return Err(SandboxError::InvalidSpec(format!(
                    "{what} {} must be absolute",
                    path.display()
                )));
            }
        }
        let args: Vec<&[u8]> = self.args.iter().map(|a| a.as_bytes()).collect();
        let env: Vec<(&[u8], &[u8])> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        sys::child::encode_late_exec(
            self.program.as_os_str().as_bytes(),
            self.cwd.as_os_str().as_bytes(),
            &args,
            &env,
        )
        .map_err(SandboxError::InvalidSpec)
    }
}

impl Inner {
    pub(crate) fn cgroup(&self) -> MutexGuard<'_, Option<EnvCgroup>> {
        self.cgroup.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn kill(&self) {
        if self.ended.load(Ordering::Acquire) {
            return;
        }
        self.killed.store(true, Ordering::Release);
        sys::stop_supervisor(self.supervisor.get_ref().as_fd(), self.namespaces);
        if let Some(cgroup) = self.cgroup().as_ref() {
            cgroup.kill_all();
            // Frozen processes only die once thawed.
            let _ = cgroup.thaw();
        }
    }
}

/// A running environment: one process tree started by [`Sandbox::spawn`](crate::Sandbox::spawn).
///
/// Dropping the handle kills the tree; the cgroups are removed in the background once it is
/// gone.
pub struct Environment {
    id: String,
    pid: Option<u32>,
    inner: Arc<Inner>,
    exit: watch::Receiver<Option<Exit>>,
    output: Option<Output>,
    /// The output pipes' read ends and how far their lines have got.
    sources: Sources,
    progress: Arc<Progress>,
    /// The supervisor tears the tree down when this closes (even if Kindling dies).
    lifeline: Option<OwnedFd>,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field("id", &self.id)
            .field("pid", &self.pid)
            .field("namespaces", &self.inner.namespaces)
            .field("exit", &*self.exit.borrow())
            .finish()
    }
}

impl Environment {
    pub(crate) fn new(
        id: String,
        inner: Arc<Inner>,
        exit: watch::Receiver<Option<Exit>>,
        output: Output,
        sources: Sources,
        progress: Arc<Progress>,
        lifeline: OwnedFd,
    ) -> Self {
        let pid = inner.program_pid.and_then(|p| u32::try_from(p).ok());
        Environment {
            id,
            pid,
            inner,
            exit,
            output: Some(output),
            sources,
            progress,
            lifeline: Some(lifeline),
        }
    }

    /// The id from the spec.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Host pid of the program. `None` only in Namespaces mode when the program exited before
    /// the sandbox could look it up (within microseconds of starting).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The program's output, line by line, stdout and stderr interleaved as they arrive. Only
    /// the first call returns it. The channel ends once every process that held the pipes is
    /// gone and all lines were delivered.
    ///
    /// The channel is bounded: a caller that keeps the receiver must drain it, or the program
    /// eventually blocks writing. Dropping the receiver discards further output.
    pub fn take_output(&mut self) -> Option<Output> {
        self.output.take()
    }

    /// Waits until every complete line the environment wrote before the call has been
    /// received from [`take_output`](Self::take_output)'s receiver and handled (its holder
    /// asked for the next line), or the receiver is gone (or was never taken: nobody handles
    /// lines then). Whoever writes the platform's lines after a runtime's answer waits for
    /// this, so that nothing the function printed before answering lands after them.
    /// Immediate, with no system call, when the output is idle.
    pub async fn output_settled(&self) {
        if self.output.is_none() {
            self.sources.settled(&self.progress).await;
        }
    }

    /// Waits until the tree is gone (every process reaped, cgroups removed) and tells how the
    /// program ended. Can be called any number of times, from several tasks.
    pub async fn wait(&self) -> Exit {
        let mut exit = self.exit.clone();
        let outcome = exit.wait_for(Option::is_some).await.map(|value| *value);
        match outcome {
            Ok(value) => value.unwrap_or(Exit::Killed),
            // The monitor was dropped with the runtime: its guard tore the tree down.
            Err(_) => exit.borrow().unwrap_or(Exit::Killed),
        }
    }

    /// When the program ended, if Kindling knows it has: the supervisor's clock reading right
    /// after it reaped the program (an upper bound of the end), known as soon as the supervisor
    /// says so, while [`wait`](Self::wait) still waits for the rest of the tree and the
    /// cgroup's figures. Work handed to the program after this instant never reached it.
    pub fn program_ended_at(&self) -> Option<Instant> {
        self.inner.program_ended.get().copied()
    }

    /// How the environment ended, if it has (same value as [`wait`](Self::wait)).
    pub fn try_wait(&self) -> Option<Exit> {
        *self.exit.borrow()
    }

    /// Ends the whole tree now with SIGKILL: the program, its children, double-forked
    /// daemons, processes ignoring SIGTERM, frozen ones. Returns at once; [`wait`](Self::wait)
    /// tells when everything is gone. Safe to call any number of times, also after the end.
    pub fn kill(&self) {
        self.inner.kill();
    }

    /// For an environment spawned with [`exec_later`](crate::EnvironmentSpec::exec_later):
    /// attaches the code as [`attach_code`](Self::attach_code) does, then has the waiting
    /// program execute `exec`. Returns once its `execve` succeeded; an error names what
    /// failed (a missing or non-executable program is [`SandboxError::Exec`]), and the
    /// program has then ended. One blocking-pool hop for both. Only once per environment.
    pub async fn attach_code_and_exec(
        &self,
        task_root: &Path,
        opt_dir: Option<&Path>,
        memory_mb: u32,
        pids_max: u32,
        exec: LateExec,
    ) -> Result<(), SandboxError> {
        let message = exec.encode()?;
        let Some(gate) = self
            .inner
            .late_gate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return Err(SandboxError::InvalidSpec(
                "attach_code_and_exec: the environment was not spawned with exec_later, or \
                 its program was executed already"
                    .into(),
            ));
        };
        self.attach(
            task_root,
            opt_dir,
            memory_mb,
            pids_max,
            Some((gate, message, exec)),
        )
        .await
    }

    /// For an environment spawned with
    /// [`code_later`](crate::EnvironmentSpec::code_later): attaches `task_root` read-only
    /// (nosuid, nodev) at `/var/task` and `opt_dir` at `/opt` (else `/opt` stays empty), and
    /// sets the tree's memory limit (memory and memory+swap) and `pids_max`, with the CPU share
    /// that follows the memory. Returns once the mounts are in place: a program waiting for
    /// its code may go on. Only once per environment; the directories must be readable by its
    /// user. Runs on the blocking pool.
    pub async fn attach_code(
        &self,
        task_root: &Path,
        opt_dir: Option<&Path>,
        memory_mb: u32,
        pids_max: u32,
    ) -> Result<(), SandboxError> {
        self.attach(task_root, opt_dir, memory_mb, pids_max, None)
            .await
    }

    /// `attach_code`, then (`exec_later`) the command sent through `late` and the outcome of
    /// its `execve` awaited, on the blocking pool.
    async fn attach(
        &self,
        task_root: &Path,
        opt_dir: Option<&Path>,
        memory_mb: u32,
        pids_max: u32,
        late: Option<(OwnedFd, Vec<u8>, LateExec)>,
    ) -> Result<(), SandboxError> {
        if memory_mb == 0 || pids_max == 0 {
            return Err(SandboxError::InvalidSpec(
                "memory_mb and pids_max must be at least 1".into(),
            ));
        }
        let Some(control) = self
            .inner
            .control
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return Err(SandboxError::InvalidSpec(
                "attach_code: the environment was not spawned with code_later, or its code \
                 was attached already"
                    .into(),
            ));
        };
        let inner = Arc::clone(&self.inner);
        let (task_root, opt_dir) = (task_root.to_path_buf(), opt_dir.map(Path::to_path_buf));
        tokio::task::spawn_blocking(move || {
            let what = |path: &Path| format!("preparing {} for the environment", path.display());
            let mut mounts = vec![
                sys::code::read_only_copy(&task_root)
                    .map_err(|e| SandboxError::io(what(&task_root), e))?,
            ];
            if let Some(opt) = &opt_dir {
                mounts.push(
                    sys::code::read_only_copy(opt).map_err(|e| SandboxError::io(what(opt), e))?,
                );
            }
            if let Some(cgroup) = inner.cgroup().as_ref() {
                cgroup.set_memory(memory_mb, pids_max)?;
            }
            sys::code::send_mounts(&control, &mounts, ATTACH_TIMEOUT)
                .map_err(|e| SandboxError::io("attaching the code inside the environment", e))?;
            let Some((gate, message, exec)) = late else {
                return Ok(());
            };
            let failure = sys::code::exec_late(&control, gate, &message)
                .map_err(|e| SandboxError::io("executing the environment's program", e))?;
            match failure {
                None => Ok(()),
                Some((stage, step, errno)) => Err(late_exec_error(&exec, stage, step, errno)),
            }
        })
        .await
        .map_err(|e| SandboxError::io("attaching the code", std::io::Error::other(e)))?
    }

    /// Whether [`freeze`](Self::freeze) really suspends the tree (Namespaces mode with a
    /// freezer); otherwise freeze and thaw do nothing.
    pub fn can_freeze(&self) -> bool {
        self.inner
            .cgroup()
            .as_ref()
            .is_some_and(EnvCgroup::can_freeze)
    }

    /// Suspends every process of the tree (cgroup freezer) and returns once they all are. Does
    /// nothing in Process mode, without a freezer, or after the end.
    pub async fn freeze(&self) -> Result<(), SandboxError> {
        {
            let cgroup = self.inner.cgroup();
            let Some(cgroup) = cgroup.as_ref().filter(|c| c.can_freeze()) else {
                return Ok(());
            };
            cgroup.freeze()?;
        }
        self.until_frozen(true).await
    }

    /// Resumes a frozen tree. Does nothing when not frozen, in Process mode, or after the end.
    pub async fn thaw(&self) -> Result<(), SandboxError> {
        {
            let cgroup = self.inner.cgroup();
            let Some(cgroup) = cgroup.as_ref().filter(|c| c.can_freeze()) else {
                return Ok(());
            };
            cgroup.thaw()?;
        }
        self.until_frozen(false).await
    }

    async fn until_frozen(&self, frozen: bool) -> Result<(), SandboxError> {
        const LIMIT: Duration = Duration::from_secs(5);
        let deadline = Instant::now() + LIMIT;
        loop {
            {
                let cgroup = self.inner.cgroup();
                let Some(cgroup) = cgroup.as_ref() else {
                    return Ok(());
                };
                if cgroup.is_frozen()? == frozen {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                let what = if frozen { "freezing" } else { "thawing" };
                return Err(SandboxError::io(
                    format!("{what} environment {}", self.id),
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("not done after {LIMIT:?}"),
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }

    /// Highest memory use of the environment so far, in bytes: what Lambda reports as "Max
    /// Memory Used". The larger of
    ///
    /// - Namespaces mode: the cgroup's peak (memory.peak / memory.max_usage_in_bytes): every
    ///   page ever charged to the environment at once, of all its processes, including page
    ///   cache it caused to be read and kernel memory; Process mode: after the end, the
    ///   largest resident set of any process the supervisor reaped;
    /// - the largest resident set of the program (the runtime) seen by this call or an
    ///   earlier one.
    ///
    /// The second matters because a page is charged to the cgroup that first brings it into
    /// memory: the interpreter, its libraries and standard library are usually in the host's
    /// page cache already (read by an earlier environment), so the cgroup alone shows only the
    /// environment's anonymous memory (~5 MB for a Python function, against ~11 MB resident).
    /// Lambda's environment reads its own copy of everything, so its figure includes them.
    ///
    /// Cheap enough for every invocation: two `pread`s on files kept open, no allocation.
    pub fn memory_peak_bytes(&self) -> Option<u64> {
        let rss = self.sample_rss();
        let charged = self
            .inner
            .cgroup()
            .as_ref()
            .and_then(EnvCgroup::memory_peak)
            .or_else(|| {
                *self
                    .inner
                    .final_peak
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
            });
        match (charged, rss) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Reads the program's resident set, keeps the largest; returns the largest so far.
    fn sample_rss(&self) -> Option<u64> {
        if let Some(now) = self.inner.statm.as_ref().and_then(resident_bytes) {
            self.inner.rss_peak.fetch_max(now, Ordering::AcqRel);
        }
        match self.inner.rss_peak.load(Ordering::Acquire) {
            0 => None,
            peak => Some(peak),
        }
    }

    /// Whether the kernel's OOM killer has killed any process of the tree (Namespaces mode;
    /// always false in Process mode).
    pub fn oom_killed(&self) -> bool {
        if let Some(kills) = self.inner.cgroup().as_ref().and_then(EnvCgroup::oom_kills) {
            return kills > 0;
        }
        self.inner.final_oom.load(Ordering::Acquire)
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        self.inner.kill();
        self.lifeline.take();
    }
}

/// The error for a failed `exec_later` start, as `spawn` reports the same failures.
fn late_exec_error(exec: &LateExec, stage: Option<Stage>, step: u32, errno: i32) -> SandboxError {
    let source = std::io::Error::from_raw_os_error(errno);
    match stage.unwrap_or(Stage::Exec) {
        Stage::Exec => SandboxError::Exec {
            program: exec.program.clone(),
            source,
        },
        Stage::Chdir => SandboxError::Setup {
            step: format!("changing to {}", exec.cwd.display()),
            source,
        },
        other => SandboxError::Setup {
            step: format!("{} (step {step})", other.describe()),
            source,
        },
    }
}

/// The resident set from an open `/proc/<pid>/statm` ("size resident shared ..." in pages);
/// `None` once the process is gone.
fn resident_bytes(statm: &std::fs::File) -> Option<u64> {
    let mut buf = [0u8; 128];
    let n = std::os::unix::fs::FileExt::read_at(statm, &mut buf, 0).ok()?;
    let resident = buf.get(..n)?.split(|b| *b == b' ').nth(1)?;
    Some(crate::cgroup::parse_number(resident)? * page_size())
}

fn page_size() -> u64 {
    static SIZE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|size| u64::try_from(size).ok())
            .unwrap_or(4096)
    })
}

/// Reads the next record; `None` at the end of the pipe or on garbage.
pub(crate) async fn read_record(report: &mut pipe::Receiver) -> Option<Record> {
    let mut buf = [0u8; RECORD_LEN];
    report.read_exact(&mut buf).await.ok()?;
    Record::decode(&buf)
}

/// Watches one environment until its tree is gone: collects the supervisor's last record,
/// reaps the supervisor, keeps the cgroup's figures, removes the cgroups, publishes the exit.
pub(crate) async fn monitor(
    inner: Arc<Inner>,
    mut report: pipe::Receiver,
    exit: watch::Sender<Option<Exit>>,
) {
    let mut guard = TeardownGuard {
        inner: Arc::clone(&inner),
        armed: true,
    };
    let mut last = None;
    while let Some(record) = read_record(&mut report).await {
        match record {
            // The supervisor's own reading: right even when this task runs late.
            Record::Ending { at } => {
                let now = Instant::now();
                let _ = inner
                    .program_ended
                    .set(now.checked_sub(at.elapsed()).unwrap_or(now));
                continue;
            }
            Record::Exited { .. } | Record::Killed => {
                let _ = inner.program_ended.set(Instant::now());
            }
            Record::Started { .. } | Record::Failed { .. } => {}
        }
        last = Some(record);
    }
    let _ = inner.program_ended.set(Instant::now());
    let supervisor = match sys::reap(&inner.supervisor).await {
        Ok(status) => Some(status),
        Err(e) => {
            tracing::warn!(error = %e, "reaping an environment's supervisor failed");
            None
        }
    };
    if let Some(Record::Exited { max_rss_kib, .. }) = last
        && !inner.namespaces
    {
        *inner
            .final_peak
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(u64::from(max_rss_kib) * 1024);
    }
    inner.ended.store(true, Ordering::Release);

    let oom = finish_cgroup(&inner).await;
    // The pool's thread unmounts it: nothing blocks here.
    drop(
        inner
            .tmp
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(),
    );

    let result = decide(last, supervisor, inner.killed.load(Ordering::Acquire), oom);
    tracing::debug!(exit = ?result, "environment ended");
    guard.armed = false;
    exit.send_replace(Some(result));
}

/// Keeps the cgroup's figures (returns whether the OOM killer struck) and removes the cgroup,
/// retrying while the kernel still lists processes.
async fn finish_cgroup(inner: &Inner) -> bool {
    let oom = match inner.cgroup().as_ref() {
        Some(cgroup) => {
            let oom = cgroup.oom_kills().unwrap_or(0) > 0;
            // Stored before the cgroup goes, so readers never see a gap.
            *inner
                .final_peak
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = cgroup.memory_peak();
            inner.final_oom.store(oom, Ordering::Release);
            oom
        }
        None => return false,
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        {
            let mut slot = inner.cgroup();
            let Some(cgroup) = slot.as_mut() else { break };
            match cgroup.remove() {
                Ok(()) => {
                    slot.take();
                    break;
                }
                Err(e) if Instant::now() >= deadline => {
                    tracing::warn!(error = %e, "environment cgroups still busy; leaving them to the drop");
                    slot.take();
                    break;
                }
                Err(_) => {
                    cgroup.kill_all();
                    let _ = cgroup.thaw();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    oom
}

/// What to report, from the supervisor's last record and how the supervisor itself ended.
fn decide(last: Option<Record>, supervisor: Option<WaitStatus>, killed: bool, oom: bool) -> Exit {
    match last {
        Some(Record::Exited { status, .. }) => {
            if libc::WIFEXITED(status) {
                Exit::Code(libc::WEXITSTATUS(status))
            } else if libc::WIFSIGNALED(status) {
                let signal = libc::WTERMSIG(status);
                if signal == libc::SIGKILL && oom {
                    Exit::OutOfMemory
                } else {
                    Exit::Signal(signal)
                }
            } else {
                Exit::Code(status)
            }
        }
        Some(Record::Killed) => Exit::Killed,
        _ if killed => Exit::Killed,
        // The supervisor died without a word: something outside killed it.
        _ => match supervisor {
            Some(WaitStatus::Signaled(_, signal, _)) => Exit::Signal(signal as i32),
            Some(WaitStatus::Exited(_, code)) => Exit::Code(code),
            _ => Exit::Killed,
        },
    }
}

/// If the monitor is dropped before it finished (the runtime shut down), tears down
/// synchronously: kill, reap the supervisor, remove the cgroups. Bounded waits only.
struct TeardownGuard {
    inner: Arc<Inner>,
    armed: bool,
}

impl Drop for TeardownGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let inner = &self.inner;
        inner.killed.store(true, Ordering::Release);
        if let Some(cgroup) = inner.cgroup().as_ref() {
            cgroup.kill_all();
            let _ = cgroup.thaw();
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        sys::stop_and_reap_blocking(
            inner.supervisor.get_ref().as_fd(),
            inner.namespaces,
            deadline,
        );
        inner.ended.store(true, Ordering::Release);
        if let Some(mut cgroup) = inner.cgroup().take() {
            let deadline = Instant::now() + Duration::from_secs(1);
            while cgroup.remove().is_err() && Instant::now() < deadline {
                cgroup.kill_all();
                std::thread::sleep(Duration::from_millis(1));
            }
            // Dropping it warns if something is still left.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    #[test]
    fn entering_below_a_limit_is_atomic_across_threads() {
        let counter = Arc::new(LiveCounter::default());
        let barrier = Arc::new(std::sync::Barrier::new(16));
        let taken: Vec<Option<LiveCount>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    let (counter, barrier) = (Arc::clone(&counter), Arc::clone(&barrier));
                    s.spawn(move || {
                        barrier.wait();
                        LiveCount::enter_below(&counter, 5)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(taken.iter().filter(|t| t.is_some()).count(), 5);
        assert_eq!(counter.count.load(Ordering::Acquire), 5);
        drop(taken);
        assert_eq!(counter.count.load(Ordering::Acquire), 0);
    }

    fn exited(code: i32) -> i32 {
        code << 8
    }

    #[test]
    fn decides_from_the_last_record() {
        let rec = |status| {
            Some(Record::Exited {
                status,
                max_rss_kib: 0,
            })
        };
        assert_eq!(decide(rec(exited(0)), None, false, false), Exit::Code(0));
        assert_eq!(
            decide(rec(exited(3)), None, true, false),
            Exit::Code(3),
            "the program won the race"
        );
        assert_eq!(
            decide(rec(libc::SIGSEGV), None, false, false),
            Exit::Signal(libc::SIGSEGV)
        );
        assert_eq!(
            decide(rec(libc::SIGKILL), None, false, true),
            Exit::OutOfMemory
        );
        assert_eq!(
            decide(rec(libc::SIGKILL), None, false, false),
            Exit::Signal(9)
        );
        assert_eq!(
            decide(Some(Record::Killed), None, false, false),
            Exit::Killed
        );
    }

    #[test]
    fn decides_without_a_record() {
        let pid = Pid::from_raw(1);
        assert_eq!(
            decide(
                None,
                Some(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
                true,
                false
            ),
            Exit::Killed
        );
        assert_eq!(
            decide(
                None,
                Some(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
                false,
                false
            ),
            Exit::Signal(9)
        );
        assert_eq!(
            decide(None, Some(WaitStatus::Exited(pid, 121)), false, false),
            Exit::Code(121)
        );
        assert_eq!(decide(None, None, false, false), Exit::Killed);
    }

    #[tokio::test]
    async fn losing_the_lifeline_tears_the_tree_down() {
        let sandbox = crate::Sandbox::process();
        let spec = crate::EnvironmentSpec {
            id: "lifeline".into(),
            program: "/bin/sh".into(),
            args: vec!["-c".into(), "sleep 1000 & exec sleep 1000".into()],
            cwd: "/".into(),
            ..Default::default()
        };
        let mut env = sandbox.spawn(spec).await.unwrap();
        // As if Kindling died: the supervisor sees the pipe close, without any kill().
        env.lifeline.take();
        let exit = tokio::time::timeout(Duration::from_secs(10), env.wait()).await;
        assert_eq!(exit, Ok(Exit::Killed));
        assert!(!env.inner.killed.load(Ordering::Acquire));
    }

    #[test]
    fn success_is_code_zero() {
        assert!(Exit::Code(0).success());
        assert!(!Exit::Code(1).success() && !Exit::Killed.success());
    }
}
