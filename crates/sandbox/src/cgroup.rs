//! Cgroups: finding the hierarchies (v1, v2 or both), one cgroup per environment with its
//! limits, the freezer, whole-cgroup kill, and the memory figures.
//!
//! Each resource is served by whichever hierarchy has its controller: a v1 mount of it, else the
//! v2 hierarchy when the controller is enabled there. Freezing uses the v1 freezer when mounted,
//! else `cgroup.freeze` of v2 (a core v2 feature, no controller needed). On a hybrid host (v1
//! controllers plus an empty v2 hierarchy, like this project's machines) the environment also
//! gets a v2 cgroup, for `cgroup.kill`.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs::{self, TryLockError};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::SandboxError;

mod node;
pub(crate) use node::NodeCaps;

/// The cgroup mounts of the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Mounts {
    /// v1 mounts by controller name (a co-mounted `cpu,cpuacct` appears under both).
    pub v1: Vec<(String, PathBuf)>,
    pub v2: Option<PathBuf>,
}

impl Mounts {
    pub(crate) fn read() -> io::Result<Mounts> {
        Ok(parse_mountinfo(&fs::read_to_string(
            "/proc/self/mountinfo",
        )?))
    }

    fn v1(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|(name, _)| name == controller)
            .map(|(_, path)| path.as_path())
    }
}

/// Parses `/proc/self/mountinfo`, keeping cgroup mounts (the first of each controller).
pub(crate) fn parse_mountinfo(text: &str) -> Mounts {
    let mut mounts = Mounts::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(mount_point), Some(fstype), Some(super_options)) =
            (fields.get(4), fields.get(dash + 1), fields.get(dash + 3))
        else {
            continue;
        };
        let mount_point = PathBuf::from(unescape(mount_point));
        match *fstype {
            "cgroup2" if mounts.v2.is_none() => mounts.v2 = Some(mount_point),
            "cgroup" => {
                for option in super_options.split(',') {
                    if matches!(option, "memory" | "pids" | "cpu" | "freezer")
                        && mounts.v1(option).is_none()
                    {
                        mounts.v1.push((option.to_string(), mount_point.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    mounts
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(code) = bytes.get(i + 1..i + 4)
            && code.iter().all(|b| (b'0'..=b'7').contains(b))
        {
            out.push(
                code.iter()
                    .fold(0u8, |acc, b| acc.wrapping_mul(8).wrapping_add(b - b'0')),
            );
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A hierarchy that serves a resource: its mount point and whether it is v2.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hierarchy {
    mount: PathBuf,
    v2: bool,
}

/// Which hierarchy serves each resource, and the parent directory of the environments' cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupRoots {
    parent: PathBuf,
    memory: Hierarchy,
    pids: Hierarchy,
    cpu: Option<Hierarchy>,
    freezer: Option<Hierarchy>,
    /// The v2 mount, when there is one (for `cgroup.kill`).
    unified: Option<PathBuf>,
}

/// The limits of one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub memory_bytes: u64,
    pub pids_max: u32,
    pub memory_mb: u32,
}

impl CgroupRoots {
    /// Chooses hierarchies. `v2_controllers` are those listed in the v2 root's
    /// `cgroup.controllers`. Err names what is missing.
    pub(crate) fn choose(
        mounts: &Mounts,
        v2_controllers: &[String],
        parent: &Path,
    ) -> Result<CgroupRoots, String> {
        let pick = |controller: &str| -> Option<Hierarchy> {
            if let Some(mount) = mounts.v1(controller) {
                return Some(Hierarchy {
                    mount: mount.to_path_buf(),
                    v2: false,
                });
            }
            let v2 = mounts.v2.as_ref()?;
            v2_controllers
                .iter()
                .any(|c| c == controller)
                .then(|| Hierarchy {
                    mount: v2.clone(),
                    v2: true,
                })
        };
        let memory =
            pick("memory").ok_or("no memory cgroup controller (v1 mount or enabled in v2)")?;
        let pids = pick("pids").ok_or("no pids cgroup controller (v1 mount or enabled in v2)")?;
        let freezer = mounts
            .v1("freezer")
            .map(|mount| Hierarchy {
                mount: mount.to_path_buf(),
                v2: false,
            })
            .or_else(|| mounts.v2.clone().map(|mount| Hierarchy { mount, v2: true }));
        Ok(CgroupRoots {
            parent: parent.to_path_buf(),
            memory,
            pids,
            cpu: pick("cpu"),
            freezer,
            unified: mounts.v2.clone(),
        })
    }

    /// Reads the host's mounts and chooses.
    pub(crate) fn detect(parent: &Path) -> Result<CgroupRoots, SandboxError> {
        let unavailable = |message: String| SandboxError::IsolationUnavailable(message);
        let mounts = Mounts::read()
            .map_err(|e| unavailable(format!("reading /proc/self/mountinfo: {e}")))?;
        let v2_controllers = match &mounts.v2 {
            Some(v2) => fs::read_to_string(v2.join("cgroup.controllers"))
                .map(|text| text.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        CgroupRoots::choose(&mounts, &v2_controllers, parent).map_err(unavailable)
    }

    fn hierarchies(&self) -> impl Iterator<Item = &Hierarchy> {
        [
            Some(&self.memory),
            Some(&self.pids),
            self.cpu.as_ref(),
            self.freezer.as_ref(),
        ]
        .into_iter()
        .flatten()
    }

    /// The v2 controllers this sandbox uses.
    fn v2_controllers(&self) -> Vec<&'static str> {
        [
            ("memory", Some(&self.memory)),
            ("pids", Some(&self.pids)),
            ("cpu", self.cpu.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, h)| h.filter(|h| h.v2).map(|_| name))
        .collect()
    }

    /// The mount point of every hierarchy the environments use, each once.
    fn mounts(&self) -> Vec<&Path> {
        let mut mounts: Vec<&Path> = self.hierarchies().map(|h| h.mount.as_path()).collect();
        mounts.extend(self.unified.as_deref());
        mounts.sort();
        mounts.dedup();
        mounts
    }

    /// Takes this node's liveness lock, `<lock_dir>/<node>.lock` (`node`: the parent's last
    /// component, its siblings being the other nodes of the host), then removes the cgroups of
    /// dead siblings ([`sweep_dead_nodes`]). Call it before [`prepare`](Self::prepare) creates
    /// the node's own directories, so that a sweeper that sees them sees the lock held.
    /// Blocking (file locks, `rmdir`s): construction code, never on an async worker.
    pub(crate) fn lock_node(&self, lock_dir: &Path) -> Result<NodeLock, SandboxError> {
        let (Some(nodes), Some(node)) = (
            self.parent.parent().filter(|p| !p.as_os_str().is_empty()),
            self.parent.file_name(),
        ) else {
            return Err(SandboxError::InvalidSpec(format!(
                "with a node lock directory, cgroup_parent {} must be <nodes>/<node>",
                self.parent.display()
            )));
        };
        let lock = NodeLock::acquire(lock_dir, node, NODE_LOCK_WAIT)?;
        sweep_dead_nodes(&self.mounts(), nodes, node, lock_dir);
        Ok(lock)
    }

    /// Creates the parent directory in every hierarchy and, on v2, enables the controllers for
    /// it and its children; gives the environments as a whole the CPU weight of one nice-0
    /// task per CPU ([`parent_cpu_weight`]).
    pub(crate) fn prepare(&self) -> Result<(), SandboxError> {
        for mount in self.mounts() {
            let dir = mount.join(&self.parent);
            fs::create_dir_all(&dir).map_err(|e| SandboxError::cgroup(&dir, e))?;
            sweep(&dir);
        }
        let controllers = self.v2_controllers();
        if let (Some(v2), false) = (&self.unified, controllers.is_empty()) {
            // Enable from the root down to the parent itself, which hands them to each
            // environment. The parent never holds processes, as v2 requires.
            let mut dir = v2.clone();
            let mut chain = vec![dir.clone()];
            for part in self.parent.components() {
                dir.push(part);
                chain.push(dir.clone());
            }
            for dir in chain {
                let file = dir.join("cgroup.subtree_control");
                for controller in &controllers {
                    write(&file, &format!("+{controller}"))?;
                }
            }
        }
        if let Some(cpu) = &self.cpu {
            let cpus = std::thread::available_parallelism().map_or(1, usize::from);
            let (file, value) = parent_cpu_weight(cpu.v2, cpus);
            let mut dir = cpu.mount.clone();
            for part in self.parent.components() {
                dir.push(part);
                // Best effort: a delegated subtree may not let us set its top's weight; the
                // environments then compete as one task (the kernel's default), as before.
                if let Err(e) = write(&dir.join(file), &value) {
                    tracing::warn!(error = %e, "could not set the environments' parent CPU weight");
                }
            }
        }
        Ok(())
    }

    /// Creates the cgroup of environment `id` in every hierarchy and sets its limits. A stale,
    /// empty cgroup of the same name (left by a crash) is replaced.
    pub(crate) fn create(&self, id: &str, limits: &Limits) -> Result<EnvCgroup, SandboxError> {
        let dir_in = |h: &Hierarchy| Knob {
            dir: h.mount.join(&self.parent).join(id),
            v2: h.v2,
        };
        let mut cgroup = EnvCgroup {
            dirs: Vec::new(),
            memory: dir_in(&self.memory),
            pids: dir_in(&self.pids),
            cpu: self.cpu.as_ref().map(dir_in),
            freezer: self.freezer.as_ref().map(dir_in),
            unified: self
                .unified
                .as_ref()
                .map(|v2| v2.join(&self.parent).join(id)),
            peak_file: None,
        };
        let mut dirs: Vec<PathBuf> = [
            Some(&cgroup.memory),
            Some(&cgroup.pids),
            cgroup.cpu.as_ref(),
            cgroup.freezer.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|knob| knob.dir.clone())
        .chain(cgroup.unified.clone())
        .collect();
        dirs.sort();
        dirs.dedup();
        for dir in dirs {
            make_fresh_dir(&dir)?;
            cgroup.dirs.push(dir);
        }
        // On failure `cgroup` is dropped, which removes the directories made so far.
        cgroup.set_limits(limits)?;
        cgroup.peak_file = fs::File::open(cgroup.memory.dir.join(cgroup.peak_file_name())).ok();
        Ok(cgroup)
    }
}

fn make_fresh_dir(dir: &Path) -> Result<(), SandboxError> {
    match fs::create_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_dir(dir).map_err(|e| SandboxError::cgroup(dir, e))?;
            fs::create_dir(dir).map_err(|e| SandboxError::cgroup(dir, e))
        }
        other => other.map_err(|e| SandboxError::cgroup(dir, e)),
    }
}

fn write(file: &Path, value: &str) -> Result<(), SandboxError> {
    fs::OpenOptions::new()
        .write(true)
        .open(file)
        .and_then(|mut f| io::Write::write_all(&mut f, value.as_bytes()))
        .map_err(|e| SandboxError::cgroup(file, e))
}

/// A cgroup directory in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Knob {
    dir: PathBuf,
    v2: bool,
}

/// The cgroups of one environment. Dropping it removes them (best effort; see [`remove`]).
///
/// [`remove`]: EnvCgroup::remove
#[derive(Debug)]
pub(crate) struct EnvCgroup {
    /// Every directory created, one per hierarchy.
    dirs: Vec<PathBuf>,
    memory: Knob,
    pids: Knob,
    cpu: Option<Knob>,
    freezer: Option<Knob>,
    unified: Option<PathBuf>,
    /// The memory peak file, open: read once per invocation (a `pread`, not an open).
    peak_file: Option<fs::File>,
}

/// Lambda gives one vCPU at 1,769 MB; cpu shares (v1) and weight (v2) follow memory.
const MB_PER_VCPU: u64 = 1769;

/// The CPU weight of each cgroup level above the environments (`kindling`, `kindling/<node>`):
/// one nice-0 task's weight per CPU (v1 `cpu.shares` 1024, v2 `cpu.weight` 100). With the
/// kernel's default (one task's weight) every environment together would compete with the
/// host's tasks, Kindling's own threads included, as a single task, whatever their number:
/// at 4 busy environments on 2 CPUs each got a quarter of one task's share, and waited for
/// the CPU longer than the same runtimes in Process mode (plain nice-0 processes). Among
/// environments nothing changes: each keeps its own cgroup and a weight that follows its
/// memory ([`EnvCgroup::set_limits`]).
fn parent_cpu_weight(v2: bool, cpus: usize) -> (&'static str, String) {
    let cpus = cpus.max(1) as u64;
    if v2 {
        ("cpu.weight", (100 * cpus).clamp(1, 10_000).to_string())
    } else {
        ("cpu.shares", (1024 * cpus).clamp(2, 262_144).to_string())
    }
}

impl EnvCgroup {
    fn set_limits(&self, limits: &Limits) -> Result<(), SandboxError> {
        let memory = limits.memory_bytes.to_string();
        if self.memory.v2 {
            write(&self.memory.dir.join("memory.max"), &memory)?;
            write_if_present(&self.memory.dir.join("memory.swap.max"), "0")?;
            // Kill the whole tree on OOM, as Lambda resets the environment.
            write_if_present(&self.memory.dir.join("memory.oom.group"), "1")?;
        } else {
            write(&self.memory.dir.join("memory.limit_in_bytes"), &memory)?;
            // Present only with swap accounting; must not be below the limit above.
            write_if_present(
                &self.memory.dir.join("memory.memsw.limit_in_bytes"),
                &memory,
            )?;
        }
        let pids = limits.pids_max.to_string();
        write(&self.pids.dir.join("pids.max"), &pids)?;
        if let Some(cpu) = &self.cpu {
            let memory_mb = u64::from(limits.memory_mb);
            if cpu.v2 {
                let weight = (memory_mb * 100 / MB_PER_VCPU).clamp(1, 10_000);
                write(&cpu.dir.join("cpu.weight"), &weight.to_string())?;
            } else {
                let shares = (memory_mb * 1024 / MB_PER_VCPU).max(2);
                write(&cpu.dir.join("cpu.shares"), &shares.to_string())?;
            }
        }
        Ok(())
    }

    /// Changes the memory limit (and the CPU share that follows it) of a running tree: for an
    /// environment started before its function was known. cgroup v1 refuses a memory limit
    /// above memory+swap's and memory+swap's below the memory limit, so the order depends on
    /// the direction; writing memory+swap on both sides covers both.
    pub(crate) fn set_memory(&self, memory_mb: u32, pids_max: u32) -> Result<(), SandboxError> {
        let memory_bytes = u64::from(memory_mb) * 1024 * 1024;
        if !self.memory.v2 {
            let memsw = self.memory.dir.join("memory.memsw.limit_in_bytes");
            let _ = write_if_present(&memsw, &memory_bytes.to_string());
        }
        self.set_limits(&Limits {
            memory_bytes,
            pids_max,
            memory_mb,
        })
    }

    /// The `cgroup.procs` file of every hierarchy: a process joins by writing "0" to each.
    pub(crate) fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|dir| dir.join("cgroup.procs"))
            .collect()
    }

    /// The file and value that thaw the environment.
    pub(crate) fn thaw_control(&self) -> Option<(PathBuf, &'static [u8])> {
        self.freezer.as_ref().map(|knob| {
            if knob.v2 {
                (knob.dir.join("cgroup.freeze"), &b"0"[..])
            } else {
                (knob.dir.join("freezer.state"), &b"THAWED"[..])
            }
        })
    }

    pub(crate) fn can_freeze(&self) -> bool {
        self.freezer.is_some()
    }

    /// Starts freezing; [`is_frozen`](Self::is_frozen) tells when it is done.
    pub(crate) fn freeze(&self) -> Result<(), SandboxError> {
        match &self.freezer {
            Some(knob) if knob.v2 => write(&knob.dir.join("cgroup.freeze"), "1"),
            Some(knob) => write(&knob.dir.join("freezer.state"), "FROZEN"),
            None => Ok(()),
        }
    }

    pub(crate) fn is_frozen(&self) -> Result<bool, SandboxError> {
        let Some(knob) = &self.freezer else {
            return Ok(false);
        };
        if knob.v2 {
            let file = knob.dir.join("cgroup.events");
            let text = fs::read_to_string(&file).map_err(|e| SandboxError::cgroup(&file, e))?;
            Ok(keyed_value(&text, "frozen") == Some(1))
        } else {
            let file = knob.dir.join("freezer.state");
            let text = fs::read_to_string(&file).map_err(|e| SandboxError::cgroup(&file, e))?;
            Ok(text.trim() == "FROZEN")
        }
    }

    pub(crate) fn thaw(&self) -> Result<(), SandboxError> {
        match self.thaw_control() {
            Some((file, value)) => write(&file, &String::from_utf8_lossy(value)),
            None => Ok(()),
        }
    }

    /// SIGKILLs every process in the environment's cgroups (`cgroup.kill` where available).
    /// Frozen processes die once thawed.
    pub(crate) fn kill_all(&self) {
        if let Some(unified) = &self.unified {
            let _ = write_if_present(&unified.join("cgroup.kill"), "1");
        }
        for pid in self.pids() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }

    /// Every pid (host numbering) in any of the environment's cgroups.
    pub(crate) fn pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self
            .procs_files()
            .iter()
            .filter_map(|file| fs::read_to_string(file).ok())
            .flat_map(|text| {
                text.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Highest memory use of the tree so far, in bytes.
    pub(crate) fn memory_peak(&self) -> Option<u64> {
        let Some(file) = &self.peak_file else {
            let text = fs::read(self.memory.dir.join(self.peak_file_name())).ok()?;
            return parse_number(&text);
        };
        let mut buf = [0u8; 32];
        let n = std::os::unix::fs::FileExt::read_at(file, &mut buf, 0).ok()?;
        parse_number(buf.get(..n)?)
    }

    /// v2 `memory.peak`, v1 `memory.max_usage_in_bytes`: the most memory (anonymous, page
    /// cache, kernel) ever charged to the cgroup, by all its processes.
    fn peak_file_name(&self) -> &'static str {
        if self.memory.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        }
    }

    /// How many processes the kernel's OOM killer has killed in this cgroup.
    pub(crate) fn oom_kills(&self) -> Option<u64> {
        let file = if self.memory.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        let text = fs::read_to_string(self.memory.dir.join(file)).ok()?;
        keyed_value(&text, "oom_kill")
    }

    /// Removes every directory; the first failure (EBUSY while processes remain) is returned
    /// after trying all. Missing directories count as removed.
    pub(crate) fn remove(&mut self) -> io::Result<()> {
        let mut first_error = None;
        self.dirs.retain(|dir| match fs::remove_dir(dir) {
            Ok(()) => false,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => {
                first_error.get_or_insert(e);
                true
            }
        });
        first_error.map_or(Ok(()), Err)
    }

    pub(crate) fn is_removed(&self) -> bool {
        self.dirs.is_empty()
    }
}

impl Drop for EnvCgroup {
    fn drop(&mut self) {
        if !self.is_removed() {
            self.kill_all();
            let _ = self.thaw();
            if let Err(e) = self.remove() {
                tracing::warn!(dirs = ?self.dirs, error = %e, "could not remove an environment's cgroups");
            }
        }
    }
}

fn write_if_present(file: &Path, value: &str) -> Result<(), SandboxError> {
    if file.exists() {
        write(file, value)
    } else {
        Ok(())
    }
}

/// A decimal number, with surrounding whitespace.
pub(crate) fn parse_number(text: &[u8]) -> Option<u64> {
    std::str::from_utf8(text).ok()?.trim().parse().ok()
}

/// The number after `key ` in a `key value` per line file.
fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Removes environment cgroups left under `parent` by an earlier run that was killed: `rmdir`
/// succeeds only on cgroups without processes, so live ones are untouched.
fn sweep(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) && fs::remove_dir(entry.path()).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(parent = %parent.display(), removed, "removed stale environment cgroups");
    }
}

/// How long a starting node waits for its own lock while another node's sweeper holds it (for
/// the few `rmdir`s of a dead predecessor of the same name).
const NODE_LOCK_WAIT: Duration = Duration::from_secs(5);

/// A node's liveness marker: an exclusive `flock` on `<lock_dir>/<node>.lock`, held for the
/// sandbox's life. The kernel drops it when the process dies, however it dies, so a free lock
/// means a dead node. The descriptor is close-on-exec (as every file std opens), and each
/// supervisor closes all descriptors but its own as its first step, so no environment holds it.
#[derive(Debug)]
pub(crate) struct NodeLock {
    _file: fs::File,
}

impl NodeLock {
    /// Takes the lock of `node` in `dir` (created 0700), waiting up to `wait` while someone
    /// else holds it; err when it stays held (another live process with the same node name).
    fn acquire(dir: &Path, node: &OsStr, wait: Duration) -> Result<NodeLock, SandboxError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| SandboxError::io(format!("creating {}", dir.display()), e))?;
        let path = lock_path(dir, node);
        let deadline = Instant::now() + wait;
        loop {
            let file = open_lock(&path)
                .map_err(|e| SandboxError::io(format!("opening {}", path.display()), e))?;
            match file.try_lock() {
                Ok(()) if is_current(&file, &path) => return Ok(NodeLock { _file: file }),
                // A sweeper removed the file after our open (its node was dead): take a new one.
                Ok(()) => continue,
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(SandboxError::io(
                        format!(
                            "node lock {} is held by another process (another Kindling with \
                             the same node id, i.e. data dir?)",
                            path.display()
                        ),
                        io::ErrorKind::WouldBlock.into(),
                    ));
                }
                Err(TryLockError::Error(e)) => {
                    return Err(SandboxError::io(format!("locking {}", path.display()), e));
                }
            }
        }
    }
}

fn lock_path(dir: &Path, node: &OsStr) -> PathBuf {
    let mut name = node.to_os_string();
    name.push(LOCK_SUFFIX);
    dir.join(name)
}

const LOCK_SUFFIX: &str = ".lock";

/// Opens (creating it 0600 if missing) a lock file, close-on-exec.
fn open_lock(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

/// True when `file` is still the one at `path` (not unlinked by a sweeper since it was opened).
fn is_current(file: &fs::File, path: &Path) -> bool {
    match (file.metadata(), fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// Removes what dead nodes left: every sibling of `own` under `<mount>/<nodes>` in any of
/// `mounts`, and every lock file in `lock_dir`, whose lock this process can take: its owner
/// died. Under the lock the node's environment cgroups are removed, then its own directory, in
/// every hierarchy, then its lock file. A busy lock is a live node, even one without
/// environments: untouched. A cgroup with processes stays (`rmdir` refuses), and so does the
/// lock file then, so that a later start tries again.
///
/// A node without a lock file was made by a Kindling without node locks, which may still be
/// running (an upgrade, or builds of both on a test host): its tree goes only when no process
/// is in it and nothing in it was made within [`LEGACY_GRACE`] (cgroupfs keeps each
/// directory's creation time). The sweeper makes and takes its lock meanwhile, so that a node
/// of that name starting (with locks) waits; it unlinks the file if it leaves the tree.
fn sweep_dead_nodes(mounts: &[&Path], nodes: &Path, own: &OsStr, lock_dir: &Path) {
    let mut names = BTreeSet::new();
    for mount in mounts {
        if let Ok(entries) = fs::read_dir(mount.join(nodes)) {
            names.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.file_name()),
            );
        }
    }
    if let Ok(entries) = fs::read_dir(lock_dir) {
        names.extend(entries.flatten().filter_map(|e| {
            let name = e.file_name();
            let node = name.to_str()?.strip_suffix(LOCK_SUFFIX)?;
            (!node.is_empty()).then(|| OsString::from(node))
        }));
    }
    names.remove(own);
    for name in names {
        let path = lock_path(lock_dir, &name);
        let node = name.to_string_lossy();
        let legacy = !path.exists();
        let file = match open_lock(&path) {
            Ok(file) => file,
            Err(e) => {
                tracing::warn!(%node, lock = %path.display(), error = %e, "cannot open a node's lock");
                continue;
            }
        };
        match file.try_lock() {
            Ok(()) if is_current(&file, &path) => {}
            // Another sweeper finished with it meanwhile, or its node is alive.
            Ok(()) | Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(e)) => {
                tracing::warn!(%node, lock = %path.display(), error = %e, "cannot lock a node's lock");
                continue;
            }
        }
        if legacy && !legacy_node_is_dead(mounts, &nodes.join(&name), LEGACY_GRACE) {
            tracing::debug!(%node, "a node without a lock file may be alive: left alone");
            let _ = fs::remove_file(&path);
            continue;
        }
        let removed = remove_node(mounts, &nodes.join(&name));
        if removed.left.is_empty() {
            // Still under the lock: a node of this name that opened the file meanwhile sees
            // it unlinked once it gets the lock, and makes a new one.
            let _ = fs::remove_file(&path);
            if removed.dirs > 0 {
                tracing::info!(
                    %node,
                    environments = removed.environments.len(),
                    cgroups = removed.dirs,
                    "removed the cgroups of a dead node"
                );
            }
        } else {
            tracing::warn!(
                %node,
                left = ?removed.left,
                "could not remove all of a dead node's cgroups (processes still in them?)"
            );
        }
    }
}

/// How long the cgroups of a node without a lock file stay untouched after the latest of them
/// was made (see [`sweep_dead_nodes`]).
const LEGACY_GRACE: Duration = Duration::from_secs(3600);

/// True when no process is in `<mount>/<node>` or its children, in any hierarchy, and none of
/// those directories was made within `grace`.
fn legacy_node_is_dead(mounts: &[&Path], node: &Path, grace: Duration) -> bool {
    let recent = |dir: &Path| {
        fs::metadata(dir)
            .and_then(|m| m.modified())
            .map_or(true, |made| made.elapsed().map_or(true, |age| age < grace))
    };
    let busy = |dir: &Path| {
        fs::read_to_string(dir.join("cgroup.procs")).map_or(true, |pids| !pids.trim().is_empty())
    };
    for mount in mounts {
        let dir = mount.join(node);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let children = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path());
        for dir in std::iter::once(dir.clone()).chain(children) {
            if recent(&dir) || busy(&dir) {
                return false;
            }
        }
    }
    true
}

/// What [`remove_node`] did.
#[derive(Debug, Default)]
struct RemovedNode {
    /// Names of the environment cgroups removed (in one hierarchy or more).
    environments: BTreeSet<OsString>,
    /// Directories removed, every hierarchy counted.
    dirs: usize,
    /// Directories that could not be removed.
    left: Vec<PathBuf>,
}

/// Removes `<mount>/<node>` in each hierarchy: its child cgroups first, then itself. Missing
/// directories count as removed.
fn remove_node(mounts: &[&Path], node: &Path) -> RemovedNode {
    fn rmdir(dir: &Path, removed: &mut RemovedNode) -> bool {
        match fs::remove_dir(dir) {
            Ok(()) => {
                removed.dirs += 1;
                true
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(_) => {
                removed.left.push(dir.to_path_buf());
                false
            }
        }
    }
    let mut removed = RemovedNode::default();
    for mount in mounts {
        let dir = mount.join(node);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) && rmdir(&entry.path(), &mut removed) {
                removed.environments.insert(entry.file_name());
            }
        }
        rmdir(&dir, &mut removed);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const PURE_V2: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn parses_a_hybrid_host() {
        let mounts = parse_mountinfo(HYBRID);
        assert_eq!(
            mounts.v1("memory"),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
        assert_eq!(
            mounts.v1("cpu"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(mounts.v1("pids"), Some(Path::new("/sys/fs/cgroup/pids")));
        assert_eq!(
            mounts.v1("freezer"),
            Some(Path::new("/sys/fs/cgroup/freezer"))
        );
        assert_eq!(
            mounts.v1("cpuacct"),
            None,
            "only the controllers we use are kept"
        );
        assert_eq!(
            mounts.v2.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );

        let roots = CgroupRoots::choose(&mounts, &[], Path::new("kindling")).unwrap();
        assert!(!roots.memory.v2 && !roots.pids.v2);
        assert_eq!(roots.freezer.as_ref().map(|h| h.v2), Some(false));
        assert!(roots.v2_controllers().is_empty());
        assert_eq!(
            roots.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn chooses_v2_on_a_pure_v2_host() {
        let mounts = parse_mountinfo(PURE_V2);
        assert!(mounts.v1.is_empty());
        let all: Vec<String> = ["cpu", "memory", "pids", "io"].map(String::from).to_vec();
        let roots = CgroupRoots::choose(&mounts, &all, Path::new("kindling")).unwrap();
        assert!(roots.memory.v2 && roots.pids.v2);
        assert_eq!(roots.freezer.as_ref().map(|h| h.v2), Some(true));
        assert_eq!(roots.v2_controllers(), ["memory", "pids", "cpu"]);

        let err = CgroupRoots::choose(&mounts, &["cpu".to_string()], Path::new("k")).unwrap_err();
        assert!(err.contains("memory"), "{err}");
    }

    #[test]
    fn unescapes_mount_points() {
        let line = "1 2 0:1 / /mnt/with\\040space rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            parse_mountinfo(line).v2.as_deref(),
            Some(Path::new("/mnt/with space"))
        );
    }

    #[test]
    fn environments_together_weigh_one_task_per_cpu() {
        assert_eq!(parent_cpu_weight(false, 2), ("cpu.shares", "2048".into()));
        assert_eq!(parent_cpu_weight(true, 2), ("cpu.weight", "200".into()));
        assert_eq!(parent_cpu_weight(false, 0), ("cpu.shares", "1024".into()));
        assert_eq!(parent_cpu_weight(true, 512), ("cpu.weight", "10000".into()));
        assert_eq!(
            parent_cpu_weight(false, 1024),
            ("cpu.shares", "262144".into())
        );
    }

    /// The parents' CPU weight on the host's own cpu hierarchy, level by level.
    #[test]
    fn prepare_sets_the_parents_cpu_weight() {
        if !nix::unistd::geteuid().is_root() {
            kindling_test_support::cannot_run("needs root");
        }
        let roots = CgroupRoots::detect(Path::new("kindling-test-weight/node")).unwrap();
        let Some(cpu) = roots.cpu.clone() else {
            kindling_test_support::cannot_run("no cpu cgroup controller");
        };
        roots.prepare().unwrap();
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let (file, value) = parent_cpu_weight(cpu.v2, cpus);
        for level in ["kindling-test-weight", "kindling-test-weight/node"] {
            let got = fs::read_to_string(cpu.mount.join(level).join(file)).unwrap();
            assert_eq!(got.trim(), value, "{level}/{file}");
        }
        let mounts: Vec<PathBuf> = roots
            .hierarchies()
            .map(|h| h.mount.clone())
            .chain(roots.unified.clone())
            .collect();
        for mount in mounts {
            let _ = fs::remove_dir(mount.join("kindling-test-weight/node"));
            let _ = fs::remove_dir(mount.join("kindling-test-weight"));
        }
    }

    /// The v2 freezer and `cgroup.kill` on a real hierarchy: on a hybrid host the freezer is
    /// forced onto the (controller-less) v2 hierarchy so these paths run here too.
    #[test]
    fn v2_freezer_and_kill_on_a_real_process() {
        if !nix::unistd::geteuid().is_root() {
            kindling_test_support::cannot_run("needs root");
        }
        let mounts = Mounts::read().unwrap();
        let Some(unified) = mounts.v2.clone() else {
            kindling_test_support::cannot_run("no cgroup v2 hierarchy");
        };
        let v2_controllers: Vec<String> = fs::read_to_string(unified.join("cgroup.controllers"))
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect();
        let Ok(mut roots) =
            CgroupRoots::choose(&mounts, &v2_controllers, Path::new("kindling-test"))
        else {
            kindling_test_support::cannot_run("no memory or pids cgroup controller");
        };
        roots.freezer = Some(Hierarchy {
            mount: unified,
            v2: true,
        });
        roots.prepare().unwrap();
        let id = format!("unit-v2-{}", std::process::id());
        let limits = Limits {
            memory_bytes: 64 << 20,
            pids_max: 16,
            memory_mb: 64,
        };
        let mut cgroup = roots.create(&id, &limits).unwrap();

        let mut child = std::process::Command::new("/bin/sleep")
            .arg("1000")
            .spawn()
            .unwrap();
        for file in cgroup.procs_files() {
            fs::write(file, child.id().to_string()).unwrap();
        }
        assert_eq!(cgroup.pids(), [child.id() as i32]);
        let wait_for = |frozen: bool| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while cgroup.is_frozen().unwrap() != frozen {
                assert!(
                    std::time::Instant::now() < deadline,
                    "frozen never became {frozen}"
                );
                std::thread::yield_now();
            }
        };
        cgroup.freeze().unwrap();
        wait_for(true);
        cgroup.thaw().unwrap();
        wait_for(false);
        cgroup.freeze().unwrap();
        wait_for(true);

        // Killing a frozen cgroup: the process dies once thawed.
        cgroup.kill_all();
        cgroup.thaw().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
        cgroup.remove().unwrap();
        assert!(cgroup.is_removed());
    }

    /// Removes `<mount>/<nodes>` (two levels below it first) and kills `child`, when dropped.
    struct TestTree {
        dirs: Vec<PathBuf>,
        child: Option<std::process::Child>,
    }

    impl Drop for TestTree {
        fn drop(&mut self) {
            if let Some(child) = &mut self.child {
                let _ = child.kill();
                let _ = child.wait();
            }
            for dir in &self.dirs {
                for node in fs::read_dir(dir).into_iter().flatten().flatten() {
                    remove_node(&[dir.as_path()], Path::new(&node.file_name()));
                }
                let _ = fs::remove_dir(dir);
            }
        }
    }

    /// On the host's real hierarchies: a starting node removes the cgroups of dead nodes (lock
    /// file left unlocked; a lock file alone; no lock file, made over an hour ago, no process)
    /// in every hierarchy, but not those of live ones, with or without environments, nor a
    /// cgroup that holds a process, nor a recent or busy node without a lock file (an older
    /// Kindling's, maybe alive).
    #[test]
    fn a_starting_node_removes_only_dead_nodes_cgroups() {
        if !nix::unistd::geteuid().is_root() {
            kindling_test_support::cannot_run("needs root");
        }
        let nodes = PathBuf::from(format!("kindling-test-nodes-{}", std::process::id()));
        let roots = CgroupRoots::detect(&nodes.join("me")).unwrap();
        let mounts: Vec<PathBuf> = roots.mounts().into_iter().map(Path::to_path_buf).collect();
        assert!(mounts.len() >= 2, "{mounts:?}");
        let mut tree = TestTree {
            dirs: mounts.iter().map(|m| m.join(&nodes)).collect(),
            child: None,
        };
        let locks = tempfile::tempdir().unwrap();
        let lock_file = |node: &str| locks.path().join(format!("{node}.lock"));
        let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
        let make = |node: &str, envs: &[&str], made: Option<std::time::SystemTime>| {
            for mount in &mounts {
                let dir = mount.join(&nodes).join(node);
                fs::create_dir_all(&dir).unwrap();
                for env in envs {
                    fs::create_dir(dir.join(env)).unwrap();
                }
                if let Some(made) = made {
                    for env in envs.iter().chain(&[""]) {
                        fs::File::open(dir.join(env))
                            .unwrap()
                            .set_modified(made)
                            .unwrap();
                    }
                }
            }
        };
        let exists = |node: &str, env: &str| -> Vec<bool> {
            mounts
                .iter()
                .map(|m| m.join(&nodes).join(node).join(env).is_dir())
                .collect()
        };
        let everywhere = vec![true; mounts.len()];
        let nowhere = vec![false; mounts.len()];

        // Killed: its lock file is there, unlocked.
        make("dead", &["env-1", "env-2"], None);
        fs::write(lock_file("dead"), b"").unwrap();
        // A lock file whose node's cgroups are already gone.
        fs::write(lock_file("gone"), b"").unwrap();
        // Without lock files (a Kindling without node locks): long dead; made just now; long
        // made but with a process (in the second hierarchy, below).
        make("old", &["env-1"], Some(two_hours_ago));
        make("recent", &["env-1"], None);
        make("old-busy", &["env-1"], Some(two_hours_ago));
        // Alive: one without environments (an empty directory, as a dead node's can be) and
        // one with an environment cgroup no process has joined yet.
        make("idle", &[], None);
        make("busy", &["env-1"], None);
        let idle = NodeLock::acquire(locks.path(), OsStr::new("idle"), Duration::ZERO).unwrap();
        let _busy = NodeLock::acquire(locks.path(), OsStr::new("busy"), Duration::ZERO).unwrap();
        // Killed, but a process is still in its environment's cgroup of the first hierarchy.
        make("stuck", &["env-1"], None);
        fs::write(lock_file("stuck"), b"").unwrap();
        let child = std::process::Command::new("/bin/sleep")
            .arg("1000")
            .spawn()
            .unwrap();
        for (mount, node) in [(&mounts[0], "stuck"), (&mounts[1], "old-busy")] {
            let procs = mount.join(&nodes).join(node).join("env-1/cgroup.procs");
            fs::write(&procs, child.id().to_string()).unwrap();
        }
        tree.child = Some(child);

        let _me = roots.lock_node(locks.path()).unwrap();
        roots.prepare().unwrap();

        assert_eq!(exists("dead", ""), nowhere);
        assert_eq!(exists("old", ""), nowhere);
        assert_eq!(exists("recent", "env-1"), everywhere);
        assert_eq!(exists("old-busy", "env-1"), everywhere);
        assert_eq!(exists("idle", ""), everywhere);
        assert_eq!(exists("busy", "env-1"), everywhere);
        assert_eq!(exists("me", ""), everywhere);
        let mut only_first = nowhere.clone();
        only_first[0] = true;
        assert_eq!(exists("stuck", "env-1"), only_first);
        // Gone: dead nodes' lock files, and those the sweeper made for nodes it left alone.
        for gone in ["dead", "gone", "old", "recent", "old-busy"] {
            assert!(!lock_file(gone).exists(), "{gone}");
        }
        // Kept: the lock files of live nodes, and of the node whose cgroups could not all go
        // (the next start tries again).
        for kept in ["idle", "busy", "me", "stuck"] {
            assert!(lock_file(kept).exists(), "{kept}");
        }
        // A second process of the same node cannot start while the first lives.
        let err = NodeLock::acquire(locks.path(), OsStr::new("me"), Duration::from_millis(50))
            .unwrap_err();
        assert!(err.to_string().contains("held by another"), "{err}");

        // Once `idle` dies and the process leaves, the next node to start removes them.
        drop(idle);
        if let Some(mut child) = tree.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        let next = CgroupRoots::detect(&nodes.join("next")).unwrap();
        let _next = next.lock_node(locks.path()).unwrap();
        assert_eq!(exists("idle", ""), nowhere);
        assert_eq!(exists("stuck", ""), nowhere);
        assert_eq!(exists("old-busy", ""), nowhere);
        assert_eq!(exists("recent", "env-1"), everywhere);
        assert_eq!(exists("busy", "env-1"), everywhere);
        assert_eq!(exists("me", ""), everywhere);
    }

    /// A node starting while a sweeper holds its (dead predecessor's) lock waits for it, and
    /// once the sweeper has unlinked that file holds a new one at the same path, which a
    /// later sweeper sees held. (Each try opens the path afresh; `is_current` covers the
    /// narrow window of an unlink between one try's open and its lock, not forced here.)
    #[test]
    fn a_node_swept_while_starting_ends_up_holding_the_file_at_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path(), OsStr::new("n"));
        let sweeper = open_lock(&path).unwrap();
        sweeper.try_lock().unwrap();
        let starting = {
            let dir = dir.path().to_path_buf();
            std::thread::spawn(move || NodeLock::acquire(&dir, OsStr::new("n"), NODE_LOCK_WAIT))
        };
        // The starting node has opened the file and waits on its lock.
        kindling_test_support::eventually(
            Duration::from_secs(5),
            "the starting node's open",
            || {
                let open = fs::read_dir("/proc/self/fd")
                    .unwrap()
                    .flatten()
                    .filter(|fd| fs::read_link(fd.path()).is_ok_and(|target| target == path))
                    .count();
                (open >= 2).then_some(())
            },
        );
        fs::remove_file(&path).unwrap();
        drop(sweeper);
        let lock = starting.join().unwrap().unwrap();
        assert!(is_current(&lock._file, &path));
        let later = open_lock(&path).unwrap();
        assert!(matches!(later.try_lock(), Err(TryLockError::WouldBlock)));
    }

    #[test]
    fn reads_keyed_values() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed_value(v1, "oom_kill"), Some(3));
        let v2 = "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed_value(v2, "oom_kill"), Some(1));
        assert_eq!(keyed_value("populated 1\nfrozen 0\n", "frozen"), Some(0));
        assert_eq!(keyed_value("", "frozen"), None);
    }
}
