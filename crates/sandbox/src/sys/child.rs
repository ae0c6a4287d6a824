//! What runs in the cloned processes: the supervisor and, forked from it, the program up to its
//! `execve`.
//!
//! Both are children of a multi-threaded process created by a raw `clone3`, so they may only make
//! async-signal-safe calls on data prepared before the clone: no allocation, no locks, no
//! formatting, no panics (no fallible indexing, no `unwrap`), and no libc function that consults
//! the parent's thread list (so credentials change through raw system calls). Every path ends in
//! `execve` or `_exit`.
//!
//! The supervisor:
//! 1. moves the pipes to 0, 1, 2 and closes every descriptor it does not need, so it holds no
//!    pipe of another environment;
//! 2. Process mode: becomes a child subreaper, so orphans of the tree (double forks) become its
//!    children; Namespaces mode: it is pid 1 of a new PID namespace and joins the environment's
//!    prepared network namespace if there is one;
//! 3. forks the program, which joins the cgroups, drops privileges, takes its passed
//!    descriptors, installs the system call filter and (Namespaces mode) waits at a gate while
//!    the supervisor builds the root filesystem, hostname and loopback (so both run at once on
//!    two CPUs), then executes (`exec_later`: tells the supervisor it is ready, then waits for
//!    its command on a pipe, read into buffers allocated before the clone, and executes that);
//! 4. once the program executed (`exec_later`: once it waits for its command), reports
//!    `Started` and executes `kindling-init` (`init.rs`, a static program of a few kilobytes),
//!    which, as the same process, reaps children until the program exits, a kill is requested
//!    (SIGTERM/SIGINT/SIGHUP/SIGQUIT) or Kindling goes away (the lifeline pipe closes), then
//!    kills every other process of the tree, reaps them, reports how the program ended and
//!    exits. So no supervisor keeps, while its environment lives, the copy of Kindling's
//!    address space the clone gave it (see `become_init`).
//!
//! A failure of the supervisor's setup ends it; as pid 1 of the namespace, its death kills the
//! waiting program too.

use std::cell::UnsafeCell;
use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::ptr;
use std::sync::Arc;

use libc::{c_char, c_int, c_ulong};

use crate::report::{self, EXEC_FAILURE_LEN, Record, Stage};
use crate::seccomp::SyscallFilter;

use super::CloneArgs;

/// One step of building the root filesystem, every string ready for the system call.
#[derive(Debug)]
pub(crate) enum CStep {
    /// mkdir 0755; an existing directory is fine.
    Mkdir(CString),
    /// Create an empty file (a mount point for a file); an existing one is fine.
    Touch(CString),
    /// symlink(target, link); an existing entry is fine.
    Symlink { target: CString, link: CString },
    Mount {
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: c_ulong,
        data: Option<CString>,
    },
    /// Make this directory the root: pivot_root(".", ".") from inside it, then detach the old
    /// root.
    PivotRoot(CString),
    /// move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH), then close(fd): attach a
    /// detached mount inherited from Kindling.
    MoveMount { fd: RawFd, target: CString },
}

/// Namespaces mode: what the supervisor sets up and what the program becomes.
#[derive(Debug)]
pub(crate) struct NsPlan {
    pub steps: Vec<CStep>,
    pub hostname: CString,
    pub loopback_up: bool,
    /// A network namespace to join (opened by Kindling, above 2), instead of the host's or a
    /// new one from the clone flags.
    pub netns: Option<RawFd>,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
}

/// Descriptors the parent opened for the child. All are close-on-exec and above 2.
#[derive(Debug)]
pub(crate) struct ChildFds {
    pub stdin: RawFd,
    pub stdout: RawFd,
    pub stderr: RawFd,
    /// Write end of the report pipe.
    pub report: RawFd,
    /// Read end of the lifeline pipe; Kindling holds the write end and never writes.
    pub lifeline: RawFd,
    /// `cgroup.procs` of each hierarchy, opened for writing; the program writes "0" to each.
    pub cgroup_procs: Vec<RawFd>,
    /// The freezer control file and what to write to thaw, for the supervisor's teardown.
    pub thaw: Option<(RawFd, &'static [u8])>,
    /// Descriptors the program gets as 3, 4, ... (the spec's `pass_fds`); the supervisor
    /// closes its copies once the program is forked.
    pub pass: Vec<RawFd>,
    /// The detached mount that becomes `/tmp` (a filesystem step attaches and closes it).
    pub tmp_mount: Option<RawFd>,
    /// `code_later`: the supervisor's end of the control socket, on which it receives the
    /// detached mounts of the code (once) after the program started.
    pub control: Option<RawFd>,
    /// `exec_later`: the read end of the pipe on which the program, ready just before its
    /// `execve`, receives what to execute (see [`LateBuffers`]).
    pub late_gate: Option<RawFd>,
    /// The sealed memfd of `kindling-init`, which the supervisor executes once set up.
    pub init_image: RawFd,
}

/// Most bytes of an `exec_later` message (program, working directory, arguments and
/// environment with their NULs, and an 8-byte header).
pub(crate) const LATE_EXEC_BYTES: usize = 64 * 1024;
/// Most pointers an `exec_later` message needs: the program, each argument, each variable,
/// and the two terminating nulls.
pub(crate) const LATE_EXEC_POINTERS: usize = 1024;

/// `exec_later`: where the waiting program receives its command. Allocated before the clone,
/// so that the program, which may not allocate, has room: the message is read into `bytes`
/// and `pointers` becomes `argv` and `envp` (pointing into `bytes`). The program writes them in
/// its own copy of the address space, which nothing else reads or writes.
pub(crate) struct LateBuffers {
    bytes: Box<[UnsafeCell<u8>]>,
    pointers: Box<[UnsafeCell<*const c_char>]>,
}

impl LateBuffers {
    fn new() -> Self {
        LateBuffers {
            bytes: (0..LATE_EXEC_BYTES).map(|_| UnsafeCell::new(0)).collect(),
            pointers: (0..LATE_EXEC_POINTERS)
                .map(|_| UnsafeCell::new(ptr::null()))
                .collect(),
        }
    }
}

impl std::fmt::Debug for LateBuffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LateBuffers")
            .field("bytes", &self.bytes.len())
            .field("pointers", &self.pointers.len())
            .finish()
    }
}

/// The `exec_later` message for `program` (run with `args` after `argv[0]`, in `cwd`, with
/// exactly `env`): `[argc u32][envc u32]` then `program`, `cwd`, each argument and each
/// `KEY=VALUE` entry, each ended by a NUL. Err when a string holds a NUL or the message does
/// not fit the waiting program's buffers.
pub(crate) fn encode_late_exec(
    program: &[u8],
    cwd: &[u8],
    args: &[&[u8]],
    env: &[(&[u8], &[u8])],
) -> Result<Vec<u8>, String> {
    let strings = args.len() + env.len() + 3;
    if strings > LATE_EXEC_POINTERS {
        return Err(format!(
            "{} arguments and variables; at most {}",
            args.len() + env.len(),
            LATE_EXEC_POINTERS - 3
        ));
    }
    let fields = [program, cwd]
        .into_iter()
        .chain(args.iter().copied())
        .chain(env.iter().flat_map(|(k, v)| [*k, *v]));
    let mut message = Vec::with_capacity(4096);
    message.extend_from_slice(&(args.len() as u32).to_ne_bytes());
    message.extend_from_slice(&(env.len() as u32).to_ne_bytes());
    for field in [program, cwd].into_iter().chain(args.iter().copied()) {
        message.extend_from_slice(field);
        message.push(0);
    }
    for (key, value) in env {
        message.extend_from_slice(key);
        message.push(b'=');
        message.extend_from_slice(value);
        message.push(0);
    }
    if fields.into_iter().any(|f| f.contains(&0)) {
        return Err("a NUL byte in the command or the environment".into());
    }
    // The program must see the end of the message before its buffer is full.
    if message.len() >= LATE_EXEC_BYTES {
        return Err(format!(
            "command and environment take {} bytes; at most {}",
            message.len(),
            LATE_EXEC_BYTES - 1
        ));
    }
    Ok(message)
}

/// Where [`decode_late_exec`] put things: `pointers[0..]` is `argv`, `pointers[envp..]` is
/// `envp`; `cwd` points into the message.
#[derive(Debug, PartialEq, Eq)]
struct LateCommand {
    cwd: *const c_char,
    envp: usize,
}

/// Reads a message of [`encode_late_exec`] in place: fills `pointers` with `argv` (the
/// program first, null-terminated) followed by `envp` (null-terminated), all pointing into
/// `message`. No allocation, no panic: Err(EINVAL) for a malformed message, Err(E2BIG) when
/// `pointers` is too short.
fn decode_late_exec(message: &[u8], pointers: &mut [*const c_char]) -> Result<LateCommand, c_int> {
    let word = |at: usize| -> Option<usize> {
        let bytes = message.get(at..at + 4)?;
        let mut word = [0u8; 4];
        word.copy_from_slice(bytes);
        Some(u32::from_ne_bytes(word) as usize)
    };
    let (Some(argc), Some(envc)) = (word(0), word(4)) else {
        return Err(libc::EINVAL);
    };
    let needed = argc
        .checked_add(envc)
        .and_then(|n| n.checked_add(3))
        .ok_or(libc::E2BIG)?;
    if needed > pointers.len() {
        return Err(libc::E2BIG);
    }
    let mut at = 8;
    // The next NUL-terminated string of the message.
    let mut next = || -> Result<*const c_char, c_int> {
        let rest = message.get(at..).ok_or(libc::EINVAL)?;
        let len = rest.iter().position(|&b| b == 0).ok_or(libc::EINVAL)?;
        let start = rest.as_ptr().cast::<c_char>();
        at += len + 1;
        Ok(start)
    };
    let program = next()?;
    let cwd = next()?;
    let mut slots = pointers.iter_mut();
    let mut put = |value: *const c_char| -> Result<(), c_int> {
        *slots.next().ok_or(libc::E2BIG)? = value;
        Ok(())
    };
    put(program)?;
    for _ in 0..argc {
        put(next()?)?;
    }
    put(ptr::null())?;
    for _ in 0..envc {
        put(next()?)?;
    }
    put(ptr::null())?;
    if at != message.len() {
        return Err(libc::EINVAL);
    }
    Ok(LateCommand {
        cwd,
        envp: argc + 2,
    })
}

/// Everything the supervisor and the program need, prepared before the clone.
#[derive(Debug)]
pub(crate) struct ChildPlan {
    fds: ChildFds,
    /// Descriptors the supervisor keeps, sorted.
    keep: Vec<RawFd>,
    program: CString,
    cwd: CString,
    /// Null-terminated pointer arrays into `_strings`.
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
    _strings: Vec<CString>,
    ns: Option<NsPlan>,
    /// The program's RLIMIT_NOFILE (soft and hard), capped by the hard limit it inherits
    /// (raising it needs CAP_SYS_RESOURCE, which a root without it lacks), so a Kindling that
    /// raised its own soft limit does not hand it on.
    nofile: Option<u64>,
    /// The parent's argument area `[start, end)`, overwritten in the supervisor.
    arg_area: Option<(usize, usize)>,
    /// The system call filter the program installs just before `execve`, and the `sock_fprog`
    /// pointing into it.
    seccomp: Option<(Arc<SyscallFilter>, libc::sock_fprog)>,
    /// `exec_later`: the program's buffers for its command.
    late: Option<LateBuffers>,
}

impl ChildPlan {
    pub(crate) fn new(
        fds: ChildFds,
        program: CString,
        args: Vec<CString>,
        env: Vec<CString>,
        cwd: CString,
        ns: Option<NsPlan>,
        seccomp: Option<Arc<SyscallFilter>>,
    ) -> Self {
        let mut argv = Vec::with_capacity(args.len() + 2);
        argv.push(program.as_ptr());
        argv.extend(args.iter().map(|a| a.as_ptr()));
        argv.push(ptr::null());
        let mut envp: Vec<*const c_char> = env.iter().map(|e| e.as_ptr()).collect();
        envp.push(ptr::null());
        let mut keep = vec![fds.report, fds.lifeline];
        keep.extend(&fds.cgroup_procs);
        keep.extend(fds.thaw.map(|(fd, _)| fd));
        keep.extend(&fds.pass);
        keep.extend(fds.tmp_mount);
        keep.extend(fds.control);
        keep.extend(fds.late_gate);
        keep.push(fds.init_image);
        keep.sort_unstable();
        keep.dedup();
        let mut strings = args;
        strings.extend(env);
        // The filter's instructions live in the Arc, which the plan keeps: the pointer stays
        // valid. The count fits: `seccomp` checks it when decoding.
        let seccomp = seccomp.map(|filter| {
            let program = filter.instructions();
            let fprog = libc::sock_fprog {
                len: u16::try_from(program.len()).unwrap_or(u16::MAX),
                filter: program.as_ptr().cast_mut(),
            };
            (filter, fprog)
        });
        let late = fds.late_gate.map(|_| LateBuffers::new());
        // Moving a CString moves its pointer, not its heap buffer: argv/envp stay valid.
        ChildPlan {
            fds,
            keep,
            program,
            cwd,
            argv,
            envp,
            _strings: strings,
            ns,
            nofile: None,
            arg_area: argument_area(),
            seccomp,
            late,
        }
    }
}

impl ChildPlan {
    /// Limits the program's open files to `nofile` (or the inherited hard limit, if lower).
    pub(crate) fn with_nofile(mut self, nofile: u64) -> Self {
        self.nofile = Some(nofile);
        self
    }
}

/// The supervisor's name, as seen in `ps` and `/proc/1/comm` inside.
const INIT_NAME: &CStr = c"kindling-init";

/// Signals the supervisor handles: SIGCHLD to reap, the others to tear down.
const HANDLED_SIGNALS: [c_int; 5] = [
    libc::SIGCHLD,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
];

/// The address range of this process's command line (fields 48 and 49 of /proc/self/stat),
/// read once.
fn argument_area() -> Option<(usize, usize)> {
    static AREA: std::sync::OnceLock<Option<(usize, usize)>> = std::sync::OnceLock::new();
    *AREA.get_or_init(|| {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the parenthesised command name start at field 3.
        let fields: Vec<&str> = stat
            .get(stat.rfind(')')? + 2..)?
            .split_whitespace()
            .collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<usize>().ok();
        Some((field(48)?, field(49)?))
    })
}

/// Puts the environment's tree on the time-sharing policy `SCHED_BATCH` at nice 0, whatever
/// Kindling runs under. `SCHED_BATCH` is `SCHED_OTHER`'s fair share with one difference: a
/// woken task does not preempt the running one. A runtime given its event therefore no longer
/// takes the CPU from the Kindling thread that woke it in the middle of its `writev` (it runs
/// on the other CPU or once that thread sleeps), and over time the function gets exactly the
/// share `SCHED_OTHER` would give it (benches/results/sched-batch-2026-12-06.txt: +10-35 %
/// warm invokes/s at 4 clients, -30 us single-client p50). Then: a real-time policy (`chrt -f 10 kindling serve`) is inherited through
/// `clone3` (unless Kindling set `SCHED_RESET_ON_FORK`) and would let a function starve the
/// host, and a real-time task cannot join a cgroup with the cpu controller (EINVAL) when the
/// kernel has real-time group scheduling. Done first, before the program is forked and joins
/// the cgroups; the program inherits it and cannot raise it again (no CAP_SYS_NICE, and
/// `RLIMIT_RTPRIO` is 0 by default). Without `SCHED_RESET_ON_FORK`, so a function may set its
/// own children's policy as any Linux process may. A nice value Kindling was started with is
/// reset too; lowering it needs CAP_SYS_NICE, so an unprivileged Kindling started at a
/// positive nice keeps it for its environments (which cannot starve anything then).
fn reset_scheduling(report: RawFd) {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler on ourselves (pid 0) with a parameter on our stack; a plain
    // system call (glibc's wrapper takes no lock and consults no thread list).
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } < 0 {
        fail(report, Stage::Scheduling, 0, errno());
    }
    // SAFETY: setpriority with integer arguments only; failure (EACCES for an unprivileged
    // Kindling at a positive nice) leaves the inherited value, as explained above.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 0) };
}

/// Entry point of the supervisor. Never returns.
pub(crate) fn supervisor_main(plan: &ChildPlan) -> ! {
    let report = plan.fds.report;
    reset_scheduling(report);
    // Here, not in the program: the program is forked while the root is being built, when
    // `/proc` may be gone. The program and all it starts inherit it.
    if let Err(code) = prefer_for_the_oom_killer() {
        fail(report, Stage::Limits, 1, code);
    }
    for (from, to) in [
        (plan.fds.stdin, 0),
        (plan.fds.stdout, 1),
        (plan.fds.stderr, 2),
    ] {
        // SAFETY: dup2 on descriptors the parent opened for us; both are plain integers.
        if unsafe { libc::dup2(from, to) } < 0 {
            fail(report, Stage::Stdio, 0, errno());
        }
    }
    if let Some(netns) = plan.ns.as_ref().and_then(|ns| ns.netns) {
        // SAFETY: setns with a descriptor the parent opened for us; joining a network namespace
        // is allowed in this single-threaded process (we are root in the initial user
        // namespace). The descriptor is closed just below.
        if unsafe { libc::setns(netns, libc::CLONE_NEWNET) } < 0 {
            fail(report, Stage::Network, 0, errno());
        }
    }
    close_all_except(&plan.keep);
    // SAFETY: plain system calls without pointers (prctl's name argument points to a static).
    unsafe {
        libc::setsid();
        libc::prctl(libc::PR_SET_NAME, INIT_NAME.as_ptr() as c_ulong, 0, 0, 0);
    }
    rename_command_line(plan.arg_area);

    match &plan.ns {
        None => {
            // SAFETY: prctl with integer arguments only.
            if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as c_ulong, 0, 0, 0) } < 0 {
                fail(report, Stage::Subreaper, 0, errno());
            }
        }
        Some(_) => {
            // SAFETY: umask cannot fail. 022 so the root's directories are traversable by the
            // unprivileged user, and as the program's default like Lambda's.
            unsafe { libc::umask(0o022) };
        }
    }

    let [exec_read, exec_write] = pipe(report);
    // Namespaces mode: the program is forked before the root is built and waits at this gate
    // until it is, so that its own preparation (joining the cgroups, dropping privileges,
    // installing the system call filter) runs alongside the mounts instead of after them.
    let gate = plan.ns.as_ref().map(|_| pipe(report));

    let program = fork();
    if program == 0 {
        let gate_read = gate.map(|[read, write]| {
            // SAFETY: closing our copy of the gate's write end.
            unsafe { libc::close(write) };
            read
        });
        // SAFETY: closing our copy of the read end.
        unsafe { libc::close(exec_read) };
        program_main(plan, exec_write, gate_read);
    }
    if program < 0 {
        fail(report, Stage::Fork, 0, errno());
    }
    // SAFETY: closing our copy of the write end, so the read below sees EOF at the execve.
    unsafe { libc::close(exec_write) };
    if let (Some(ns), Some([gate_read, gate_write])) = (&plan.ns, gate) {
        // SAFETY: closing our copy of the gate's read end.
        unsafe { libc::close(gate_read) };
        // A failure ends this process, pid 1 of the namespace: the kernel kills the program.
        setup_namespace(ns, report);
        // SAFETY: one write of a static byte to our end of the gate, then closing it.
        unsafe {
            libc::write(gate_write, b"g".as_ptr().cast(), 1);
            libc::close(gate_write);
        }
    }
    // SAFETY: closing our copies of the passed descriptors and of the late gate: only the
    // program holds them now.
    unsafe {
        for &fd in plan.fds.pass.iter().chain(&plan.fds.late_gate) {
            libc::close(fd);
        }
    }
    let signals =
        signalfd_for_handled_signals().unwrap_or_else(|e| fail(report, Stage::Signalfd, 0, e));
    let late = plan.late.is_some();
    let mut failure = [0u8; EXEC_FAILURE_LEN];
    let got = read_full(exec_read, &mut failure);
    // exec_later: the program is ready and waits for its command; the pipe tells later
    // whether the execve succeeded (kindling-init's `answer_exec`).
    let waiting = late && got == EXEC_FAILURE_LEN && failure == report::EXEC_WAITING;
    if !waiting {
        // SAFETY: closing a descriptor we own.
        unsafe { libc::close(exec_read) };
        if got == EXEC_FAILURE_LEN || late {
            let mut status = 0;
            // SAFETY: reaping our own child; `status` is a valid out pointer.
            unsafe { libc::waitpid(program, &mut status, 0) };
            // exec_later with nothing read: the program died before it was ready.
            let (stage, step, code) = if got == EXEC_FAILURE_LEN {
                report::decode_exec_failure(&failure)
            } else {
                (Some(Stage::LateExec), 0, libc::ECHILD)
            };
            fail(report, stage.unwrap_or(Stage::Exec), step, code);
        }
    }
    send(report, Record::Started { pid: program });
    let exec_pending = if waiting { exec_read } else { -1 };
    become_init(plan, program, signals, exec_pending)
}

/// Executes `kindling-init` (`init.rs`, from the sandbox's sealed memfd), which goes on as
/// the supervisor: it waits on the signalfd, the lifeline, the control socket and
/// (`exec_later`) the exec pipe, attaches the code, reaps, and tears the tree down. Replacing
/// this image drops the copy of Kindling's address space the clone gave this process, which
/// would otherwise grow, page by page, with every page Kindling writes for as long as the
/// environment lives. Done after `Started`, so that the `execve` (and the teardown of that
/// copy) is not on the spawn's path; nothing is lost meanwhile: a control message waits in
/// its socket, the lifeline's end in its pipe, and signals stay blocked (pending) across
/// `execve` until its signalfd reads them. The descriptors it keeps lose close-on-exec;
/// everything else (the cgroup files, the memfd, Kindling's) closes. Its state is one
/// variable of its environment (its only one): `KINDLING_INIT=program:namespaces:report:
/// lifeline:signals:control:exec_pending:thaw:thaw_value` (-1: none).
///
/// The sandbox executed the same image once when it was made (`sys::init_image`), so
/// this fails only for want of resources; then the environment ends at once: the program is
/// killed (Namespaces mode: with pid 1, by the kernel; Process mode: its process group, which
/// it has just made) and the supervisor exits 121, which Kindling reports as the program's end.
fn become_init(plan: &ChildPlan, program: libc::pid_t, signals: RawFd, exec_pending: RawFd) -> ! {
    let report = plan.fds.report;
    let control = plan.fds.control.unwrap_or(-1);
    let (thaw, thaw_value) = plan.fds.thaw.unwrap_or((-1, b""));
    let inherited = [
        report,
        plan.fds.lifeline,
        signals,
        control,
        exec_pending,
        thaw,
    ];
    let cleared = inherited
        .into_iter()
        .filter(|&fd| fd >= 0)
        // SAFETY: fcntl with integer arguments on a descriptor this process owns.
        .all(|fd| unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == 0);
    let mut state = StateBuf::default();
    state.push(b"KINDLING_INIT=");
    let numbers = [
        program,
        c_int::from(plan.ns.is_some()),
        report,
        plan.fds.lifeline,
        signals,
        control,
        exec_pending,
        thaw,
    ];
    for number in numbers {
        state.push_decimal(number);
        state.push(b":");
    }
    state.push(thaw_value);
    state.push(b"\0");
    if cleared && !state.overflow {
        let argv = [INIT_NAME.as_ptr(), ptr::null()];
        let envp = [state.bytes.as_ptr().cast::<c_char>(), ptr::null()];
        // SAFETY: execveat of the sandbox's memfd (AT_EMPTY_PATH: the descriptor itself) with
        // null-terminated arrays of NUL-terminated strings on this stack.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                plan.fds.init_image,
                c"".as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
    }
    if plan.ns.is_none() {
        // SAFETY: kill with integer arguments: the program's process group, then the program
        // (should it not have made its group yet).
        unsafe {
            libc::kill(-program, libc::SIGKILL);
            libc::kill(program, libc::SIGKILL);
        }
    }
    fail(report, Stage::Supervisor, 0, errno())
}

/// `kindling-init`'s state variable, written without allocation.
struct StateBuf {
    bytes: [u8; 160],
    len: usize,
    overflow: bool,
}

impl Default for StateBuf {
    fn default() -> Self {
        StateBuf {
            bytes: [0; 160],
            len: 0,
            overflow: false,
        }
    }
}

impl StateBuf {
    fn push(&mut self, text: &[u8]) {
        match self.bytes.get_mut(self.len..self.len + text.len()) {
            Some(slot) => {
                slot.copy_from_slice(text);
                self.len += text.len();
            }
            None => self.overflow = true,
        }
    }

    fn push_decimal(&mut self, value: c_int) {
        if value < 0 {
            self.push(b"-");
        }
        let mut digits = [0u8; 10];
        let mut n = value.unsigned_abs();
        let mut at = digits.len();
        loop {
            at -= 1;
            if let Some(d) = digits.get_mut(at) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || at == 0 {
                break;
            }
        }
        self.push(digits.get(at..).unwrap_or(&[]));
    }
}

/// A close-on-exec pipe: [read, write]. Ends the supervisor on failure.
fn pipe(report: RawFd) -> [c_int; 2] {
    let mut ends: [c_int; 2] = [-1, -1];
    // SAFETY: pipe2 writes two descriptors into the array we pass.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        fail(report, Stage::ExecPipe, 0, errno());
    }
    ends
}

/// The program's side of the fork: join cgroups, drop privileges, take the passed
/// descriptors, install the system call filter, wait at the gate (Namespaces mode: until the
/// root is built), then change directory and execute.
fn program_main(plan: &ChildPlan, exec_write: RawFd, gate: Option<RawFd>) -> ! {
    for &fd in &plan.fds.cgroup_procs {
        // SAFETY: writing one byte from a static buffer to a descriptor we own.
        if unsafe { libc::pwrite(fd, b"0".as_ptr().cast(), 1, 0) } < 0 {
            exec_fail(exec_write, Stage::CgroupJoin, 0, errno());
        }
    }
    // SAFETY: a process group of our own, so the tree can be signalled as a group.
    unsafe { libc::setpgid(0, 0) };
    if let Some(nofile) = plan.nofile {
        limit_open_files(nofile, exec_write);
    }
    if let Some(ns) = &plan.ns {
        drop_privileges(ns, exec_write);
    }
    reset_signals();
    let mut needed = [
        exec_write,
        gate.unwrap_or(-1),
        plan.fds.late_gate.unwrap_or(-1),
    ];
    place_passed_fds(&plan.fds.pass, &mut needed)
        .unwrap_or_else(|code| exec_fail(exec_write, Stage::PassFds, 0, code));
    let [exec_write, gate, late_gate] = needed;
    if let Some((_, fprog)) = &plan.seccomp {
        // From here on only read, chdir, execve, write and _exit are needed, and the filter
        // allows them. No new privileges first, as seccomp requires of non-root (and so that
        // no set-user-ID program inside can shed the filter's effect).
        // SAFETY: prctl with integers; seccomp reads the sock_fprog (and the instructions it
        // points to, owned by the plan) and copies them into the kernel.
        let installed = unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as c_ulong, 0, 0, 0) == 0
                && libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0 as c_ulong,
                    std::ptr::from_ref(fprog),
                ) == 0
        };
        if !installed {
            exec_fail(exec_write, Stage::SyscallFilter, 0, errno());
        }
    }
    if gate >= 0 {
        let mut go = [0u8; 1];
        // Anything but the byte (end of file: the supervisor failed and is gone) ends us.
        if read_full(gate, &mut go) != 1 {
            // SAFETY: _exit ends this process; nothing is left to report to.
            unsafe { libc::_exit(127) };
        }
        // SAFETY: closing the gate, which nothing else uses.
        unsafe { libc::close(gate) };
    }
    if let Some(late) = &plan.late {
        late_exec(late, late_gate, exec_write);
    }
    // SAFETY: `cwd` is a NUL-terminated string owned by the plan.
    if unsafe { libc::chdir(plan.cwd.as_ptr()) } < 0 {
        exec_fail(exec_write, Stage::Chdir, 0, errno());
    }
    // SAFETY: program, argv and envp are NUL-terminated strings and null-terminated arrays of
    // them, all owned by the plan.
    unsafe {
        libc::execve(
            plan.program.as_ptr(),
            plan.argv.as_ptr(),
            plan.envp.as_ptr(),
        )
    };
    exec_fail(exec_write, Stage::Exec, 0, errno())
}

/// `exec_later`: tells the supervisor the program is ready, waits at `late_gate` for its
/// command (read into the plan's preallocated buffers), then changes directory and executes
/// it. End of file without a message (the environment is discarded unused) ends the process.
fn late_exec(late: &LateBuffers, late_gate: RawFd, exec_write: RawFd) -> ! {
    // SAFETY: one write of a static 12-byte buffer (atomic on a pipe).
    unsafe {
        libc::write(
            exec_write,
            report::EXEC_WAITING.as_ptr().cast(),
            report::EXEC_WAITING.len(),
        )
    };
    // SAFETY: `UnsafeCell<u8>` has the layout of `u8`, so the cells are `len` contiguous bytes,
    // and `UnsafeCell<*const c_char>` likewise; this single-threaded process writes them in
    // its own copy of the address space, where nothing else reads or writes them, and no
    // other reference to their contents exists while these slices live.
    let (bytes, pointers) = unsafe {
        (
            std::slice::from_raw_parts_mut(
                UnsafeCell::raw_get(late.bytes.as_ptr()),
                late.bytes.len(),
            ),
            std::slice::from_raw_parts_mut(
                UnsafeCell::raw_get(late.pointers.as_ptr()),
                late.pointers.len(),
            ),
        )
    };
    let got = read_full(late_gate, bytes);
    // SAFETY: closing the late gate, which nothing else uses.
    unsafe { libc::close(late_gate) };
    if got == 0 {
        // SAFETY: _exit ends this process; nobody waits for a command from it any more.
        unsafe { libc::_exit(0) };
    }
    let message = match bytes.get(..got) {
        Some(message) if got < bytes.len() => message,
        _ => exec_fail(exec_write, Stage::LateExec, 0, libc::E2BIG),
    };
    let command = decode_late_exec(message, pointers)
        .unwrap_or_else(|code| exec_fail(exec_write, Stage::LateExec, 1, code));
    // SAFETY: `cwd` points at a NUL-terminated string inside the message.
    if unsafe { libc::chdir(command.cwd) } < 0 {
        exec_fail(exec_write, Stage::Chdir, 0, errno());
    }
    let (Some(argv), Some(envp)) = (pointers.first(), pointers.get(command.envp)) else {
        exec_fail(exec_write, Stage::LateExec, 2, libc::EINVAL)
    };
    // SAFETY: `argv` and `envp` start null-terminated arrays of pointers to NUL-terminated
    // strings inside the message (see `decode_late_exec`), all in buffers of the plan.
    unsafe { libc::execve(*argv, argv, envp) };
    exec_fail(exec_write, Stage::Exec, 0, errno())
}

/// Most passed descriptors, which bounds the scratch space of [`place_passed_fds`].
const MAX_PASS: usize = crate::spec::MAX_PASS_FDS;

/// Puts `pass[i]` at descriptor `3 + i` without close-on-exec; everything else stays (or
/// becomes) close-on-exec. The descriptors in `needed` (negative: none) that are inside the
/// target range are first moved above it, and updated; so is every source inside it. The
/// range's other descriptors (Kindling's, all close-on-exec and no longer needed) are then
/// replaced. Err(errno).
fn place_passed_fds(pass: &[RawFd], needed: &mut [RawFd]) -> Result<(), c_int> {
    if pass.is_empty() {
        return Ok(());
    }
    let count = pass.len().min(MAX_PASS);
    let above = 3 + count as c_int;
    let move_above = |fd: RawFd| -> Result<RawFd, c_int> {
        // SAFETY: fcntl with integer arguments; the copy is close-on-exec.
        let moved = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, above) };
        if moved < 0 { Err(errno()) } else { Ok(moved) }
    };
    for fd in needed.iter_mut() {
        if (0..above).contains(fd) {
            *fd = move_above(*fd)?;
        }
    }
    let mut sources: [RawFd; MAX_PASS] = [-1; MAX_PASS];
    for (slot, &fd) in sources.iter_mut().zip(pass) {
        *slot = if fd < above {
            move_above(fd)?
        } else {
            // SAFETY: fcntl with integer arguments, on this process's own copy.
            if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
                return Err(errno());
            }
            fd
        };
    }
    for (target, &source) in (3..).zip(sources.iter().take(count)) {
        // SAFETY: dup2 with integer arguments; the new descriptor is not close-on-exec.
        if unsafe { libc::dup2(source, target) } < 0 {
            return Err(errno());
        }
    }
    Ok(())
}

/// RLIMIT_NOFILE to `nofile` (soft and hard), never above the inherited hard limit (lowering
/// needs no privilege).
fn limit_open_files(nofile: u64, exec_write: RawFd) {
    let mut inherited = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the initialised structure we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut inherited) } != 0 {
        exec_fail(exec_write, Stage::Limits, 0, errno());
    }
    let n = nofile.min(inherited.rlim_max);
    let limit = libc::rlimit {
        rlim_cur: n,
        rlim_max: n,
    };
    // SAFETY: setrlimit reads the initialised structure we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        exec_fail(exec_write, Stage::Limits, 0, errno());
    }
}

/// The environment's `oom_score_adj`, set in the supervisor and inherited by the program and
/// everything it starts: under host memory
/// pressure the kernel's OOM killer takes a function's process before any other, Kindling
/// first of all (whose own is low; its RSS, ~100 MB with 1,000 idle environments, is larger
/// than any small function's). Raising it needs no privilege.
const PROGRAM_OOM_SCORE_ADJ: &[u8] = b"1000";

fn prefer_for_the_oom_killer() -> Result<(), c_int> {
    // SAFETY: open with a NUL-terminated static path; the descriptor is ours and closed below.
    let fd = unsafe {
        libc::open(
            c"/proc/self/oom_score_adj".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: one write of a static buffer to the descriptor opened above.
    let written = unsafe {
        libc::write(
            fd,
            PROGRAM_OOM_SCORE_ADJ.as_ptr().cast(),
            PROGRAM_OOM_SCORE_ADJ.len(),
        )
    };
    let code = errno();
    // SAFETY: closing the descriptor opened above, used by nothing else.
    unsafe { libc::close(fd) };
    if written < 0 { Err(code) } else { Ok(()) }
}

fn drop_privileges(ns: &NsPlan, exec_write: RawFd) {
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit with a pointer to an initialised structure.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) } != 0 {
        exec_fail(exec_write, Stage::Limits, 0, errno());
    }
    // Raw system calls: glibc's setuid/setgid would try to signal the parent's other threads,
    // which do not exist in this process.
    // SAFETY: prctl and the credential system calls take integers (and a null list).
    let credentials_ok = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as c_ulong, 0, 0, 0) == 0
            && libc::syscall(libc::SYS_setgroups, 0, ptr::null::<libc::gid_t>()) == 0
            && libc::syscall(libc::SYS_setresgid, ns.gid, ns.gid, ns.gid) == 0
            && libc::syscall(libc::SYS_setresuid, ns.uid, ns.uid, ns.uid) == 0
    };
    if !credentials_ok {
        exec_fail(exec_write, Stage::Credentials, 0, errno());
    }
}

fn setup_namespace(ns: &NsPlan, report: RawFd) {
    for (index, step) in ns.steps.iter().enumerate() {
        if run_step(step) < 0 {
            fail(report, Stage::Filesystem, index as u32, errno());
        }
    }
    let name = ns.hostname.as_bytes();
    // SAFETY: sethostname with a pointer and length of a buffer owned by the plan.
    if unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) } < 0 {
        fail(report, Stage::Hostname, 0, errno());
    }
    if ns.loopback_up && bring_up_loopback() < 0 {
        fail(report, Stage::Loopback, 0, errno());
    }
}

/// Runs one filesystem step; negative with errno set on failure.
fn run_step(step: &CStep) -> c_int {
    match step {
        CStep::Mkdir(path) => {
            // SAFETY: `path` is a NUL-terminated string owned by the plan.
            tolerate(unsafe { libc::mkdir(path.as_ptr(), 0o755) }, libc::EEXIST)
        }
        CStep::Touch(path) => {
            let flags = libc::O_RDONLY | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOFOLLOW;
            // SAFETY: `path` is a NUL-terminated string owned by the plan.
            let fd = unsafe { libc::open(path.as_ptr(), flags, 0o644 as libc::c_uint) };
            if fd < 0 {
                return fd;
            }
            // SAFETY: closing the descriptor just opened.
            unsafe { libc::close(fd) };
            0
        }
        CStep::Symlink { target, link } => {
            // SAFETY: both are NUL-terminated strings owned by the plan.
            tolerate(
                unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) },
                libc::EEXIST,
            )
        }
        CStep::Mount {
            source,
            target,
            fstype,
            flags,
            data,
        } => {
            // SAFETY: every pointer is a NUL-terminated string owned by the plan, or null
            // where mount(2) allows it (source, type and data of a remount or propagation
            // change).
            unsafe {
                libc::mount(
                    optional(source),
                    target.as_ptr(),
                    optional(fstype),
                    *flags,
                    optional(data).cast(),
                )
            }
        }
        CStep::MoveMount { fd, target } => {
            // SAFETY: move_mount with a descriptor inherited for this purpose, an empty static
            // path (MOVE_MOUNT_F_EMPTY_PATH: the descriptor itself) and a NUL-terminated target
            // owned by the plan; then closing that descriptor, which nothing else uses.
            unsafe {
                let rc = libc::syscall(
                    libc::SYS_move_mount,
                    *fd,
                    c"".as_ptr(),
                    libc::AT_FDCWD,
                    target.as_ptr(),
                    libc::MOVE_MOUNT_F_EMPTY_PATH,
                ) as c_int;
                let saved = errno();
                libc::close(*fd);
                set_errno(saved);
                rc
            }
        }
        CStep::PivotRoot(new_root) => {
            let here = c".".as_ptr();
            // SAFETY: `new_root` is owned by the plan and "." and "/" are static C strings;
            // pivot_root(".", ".") stacks the old root on the new one, which umount2 detaches.
            unsafe {
                if libc::chdir(new_root.as_ptr()) < 0
                    || libc::syscall(libc::SYS_pivot_root, here, here) < 0
                    || libc::umount2(here, libc::MNT_DETACH) < 0
                {
                    return -1;
                }
                libc::chdir(c"/".as_ptr())
            }
        }
    }
}

fn optional(s: &Option<CString>) -> *const c_char {
    s.as_deref().map_or(ptr::null(), CStr::as_ptr)
}

/// `rc`, or 0 when it failed with `allowed`.
fn tolerate(rc: c_int, allowed: c_int) -> c_int {
    if rc < 0 && errno() == allowed { 0 } else { rc }
}

/// `struct ifreq` with the flags member of its union (40 bytes, as on 64-bit Linux).
#[repr(C)]
struct IfReqFlags {
    name: [c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Sets `IFF_UP` on `lo` of the calling thread's network namespace; negative with errno set on
/// failure.
pub(super) fn bring_up_loopback() -> c_int {
    // SAFETY: socket and ioctl with a properly sized, initialised ifreq; the socket is closed.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return sock;
        }
        let mut request = IfReqFlags {
            name: [0; libc::IFNAMSIZ],
            flags: 0,
            _pad: [0; 22],
        };
        request.name[0] = b'l' as c_char;
        request.name[1] = b'o' as c_char;
        let mut rc = libc::ioctl(sock, libc::SIOCGIFFLAGS as _, &mut request);
        if rc == 0 {
            request.flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            rc = libc::ioctl(sock, libc::SIOCSIFFLAGS as _, &request);
        }
        let saved = errno();
        libc::close(sock);
        set_errno(saved);
        rc
    }
}

/// Replaces the command line that `/proc/<pid>/cmdline` shows (Kindling's own, which programs
/// inside could otherwise read from `/proc/1/cmdline`) with "kindling-init", the way
/// setproctitle(3) does: by overwriting this process's copy of the argument area. A non-NUL
/// last byte makes the kernel read the area as a C string, so the name shows without padding.
fn rename_command_line(area: Option<(usize, usize)>) {
    let Some((start, end)) = area else { return };
    let Some(len) = end
        .checked_sub(start)
        .filter(|len| (1..=1 << 20).contains(len))
    else {
        return;
    };
    // SAFETY: [start, end) is the argument area of the parent (from its /proc/self/stat), of
    // which this process has a private copy-on-write copy: mapped, writable, and read by no
    // code in this single-threaded child.
    let args = unsafe { std::slice::from_raw_parts_mut(start as *mut u8, len) };
    args.fill(0);
    let name = b"kindling-init";
    let n = name.len().min(len - 1);
    if let (Some(dst), Some(src)) = (args.get_mut(..n), name.get(..n)) {
        dst.copy_from_slice(src);
    }
    if len > n + 1
        && let Some(last) = args.last_mut()
    {
        *last = b' ';
    }
}

/// A signalfd for [`HANDLED_SIGNALS`] (which are blocked, as is every signal). Err(errno).
fn signalfd_for_handled_signals() -> Result<RawFd, c_int> {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it; signalfd reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in HANDLED_SIGNALS {
            libc::sigaddset(&mut set, signal);
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 { Err(errno()) } else { Ok(fd) }
    }
}

/// Resets every signal to its default action and unblocks all of them, for the program.
fn reset_signals() {
    for signal in 1..=64 {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            // SAFETY: signal() with SIG_DFL; glibc's reserved signals fail harmlessly.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
    }
    // SAFETY: sigprocmask with an initialised empty set.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, ptr::null_mut());
    }
}

/// Closes every descriptor from 3 up that is not in `keep` (sorted).
fn close_all_except(keep: &[RawFd]) {
    let mut first: u32 = 3;
    for &fd in keep {
        let Ok(fd) = u32::try_from(fd) else { continue };
        if fd < first {
            continue;
        }
        if fd > first {
            close_range(first, fd - 1);
        }
        first = fd + 1;
    }
    close_range(first, u32::MAX);
}

fn close_range(first: u32, last: u32) {
    // SAFETY: close_range with integer arguments.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    if rc < 0 {
        // Linux < 5.9: close one by one, up to a sane bound.
        for fd in first..=last.min(65_535) {
            // SAFETY: closing a descriptor number; EBADF is harmless.
            unsafe { libc::close(fd as c_int) };
        }
    }
}

fn fork() -> libc::pid_t {
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM or stack behaves like fork; the child only runs
    // `program_main`, which ends in execve or _exit.
    unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &raw const args,
            std::mem::size_of::<CloneArgs>(),
        ) as libc::pid_t
    }
}

/// Reads until `buf` is full or end of file; returns the bytes read.
fn read_full(fd: RawFd, buf: &mut [u8]) -> usize {
    let mut done = 0;
    while let Some(rest) = buf.get_mut(done..) {
        if rest.is_empty() {
            break;
        }
        // SAFETY: read into the remaining part of our buffer, with its exact length.
        let n = unsafe { libc::read(fd, rest.as_mut_ptr().cast(), rest.len()) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            break;
        }
        done += n as usize;
    }
    done
}

fn send(report: RawFd, record: Record) {
    let bytes = record.encode();
    // SAFETY: one write of a 16-byte stack buffer (atomic on a pipe).
    unsafe { libc::write(report, bytes.as_ptr().cast(), bytes.len()) };
}

fn fail(report: RawFd, stage: Stage, step: u32, code: c_int) -> ! {
    send(
        report,
        Record::Failed {
            stage,
            step,
            errno: code,
        },
    );
    // SAFETY: ends the supervisor; its children (if any) die with the namespace or are
    // orphaned to nobody since nothing has run yet.
    unsafe { libc::_exit(121) }
}

fn exec_fail(exec_write: RawFd, stage: Stage, step: u32, code: c_int) -> ! {
    let bytes = report::encode_exec_failure(stage, step, code);
    // SAFETY: one write of a 12-byte stack buffer, then _exit.
    unsafe {
        libc::write(exec_write, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(127)
    }
}

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn set_errno(value: c_int) {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = value };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// argv, cwd, envp.
    type Decoded = (Vec<Vec<u8>>, Vec<u8>, Vec<Vec<u8>>);

    fn decode(message: &[u8]) -> Result<Decoded, c_int> {
        let mut pointers = [ptr::null(); 16];
        let command = decode_late_exec(message, &mut pointers)?;
        let strings = |from: usize| -> Vec<Vec<u8>> {
            pointers[from..]
                .iter()
                .take_while(|p| !p.is_null())
                // SAFETY: every non-null pointer is a NUL-terminated string inside
                // `message`, which lives until the end of this function.
                .map(|p| unsafe { CStr::from_ptr(*p) }.to_bytes().to_vec())
                .collect()
        };
        // SAFETY: as above.
        let cwd = unsafe { CStr::from_ptr(command.cwd) }.to_bytes().to_vec();
        Ok((strings(0), cwd, strings(command.envp)))
    }

    #[test]
    fn the_init_state_is_written_without_allocation() {
        let mut state = StateBuf::default();
        for n in [0, 7, -1, 1_234_567_890, c_int::MIN] {
            state.push_decimal(n);
            state.push(b":");
        }
        state.push(b"THAWED");
        assert_eq!(
            &state.bytes[..state.len],
            b"0:7:-1:1234567890:-2147483648:THAWED"
        );
        assert!(!state.overflow);
        state.push(&[b'x'; 160]);
        assert!(state.overflow, "a string that does not fit is noticed");
    }

    #[test]
    fn a_late_command_round_trips_in_place() {
        let message = encode_late_exec(
            b"/var/task/bootstrap",
            b"/var/task",
            &[b"-x", b""],
            &[(b"A", b"1"), (b"EMPTY", b""), (b"B", b"x=y")],
        )
        .unwrap();
        let (argv, cwd, envp) = decode(&message).unwrap();
        assert_eq!(argv, [&b"/var/task/bootstrap"[..], b"-x", b""]);
        assert_eq!(cwd, b"/var/task");
        assert_eq!(envp, [&b"A=1"[..], b"EMPTY=", b"B=x=y"]);
        let (argv, _, envp) = decode(&encode_late_exec(b"/p", b"/", &[], &[]).unwrap()).unwrap();
        assert_eq!((argv.len(), envp.len()), (1, 0));
    }

    #[test]
    fn malformed_or_oversized_late_commands_are_refused() {
        let good = encode_late_exec(b"/p", b"/", &[b"a"], &[(b"K", b"V")]).unwrap();
        // Cut anywhere: an unterminated string, missing entries or a short header.
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"junk\0");
        assert_eq!(decode(&trailing), Err(libc::EINVAL));
        let mut huge_counts = good.clone();
        huge_counts[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(decode(&huge_counts), Err(libc::E2BIG));
        let many: Vec<&[u8]> = vec![b"a"; 20];
        let too_many = encode_late_exec(b"/p", b"/", &many, &[]).unwrap();
        assert_eq!(decode(&too_many), Err(libc::E2BIG), "16 pointers only");

        assert!(encode_late_exec(b"/p\0x", b"/", &[], &[]).is_err());
        assert!(encode_late_exec(b"/p", b"/", &[], &[(b"K", b"a\0b")]).is_err());
        let big = vec![b'x'; LATE_EXEC_BYTES];
        assert!(encode_late_exec(b"/p", b"/", &[], &[(b"K", &big)]).is_err());
        let names: Vec<(&[u8], &[u8])> = vec![(b"K", b"V"); LATE_EXEC_POINTERS];
        assert!(encode_late_exec(b"/p", b"/", &[], &names).is_err());
    }
}
