//! `kindling-init`: an environment's supervisor once its setup is done, as a program of its
//! own. Not a module of the crate: `build.rs` compiles this file alone (no_std, no libc,
//! static, not position-independent) into a few kilobytes that the crate embeds, and the
//! supervisor `execveat`s it (from a sealed memfd, see `sys::init_image`) right after it
//! reported `Started`. The supervisor is a `clone3` of Kindling; without this `execve` it would keep a
//! copy-on-write image of Kindling's whole address space for the environment's lifetime, and
//! every page Kindling writes afterwards would become the supervisor's private copy. As this
//! program it owns a stack page and a data page (~20 KiB private whatever Kindling's size).
//!
//! What it does is the supervisor's steady state, unchanged: it waits (one `ppoll`) on the
//! signalfd, the lifeline pipe, the `code_later` control socket and the `exec_later` exec
//! pipe; attaches the code's mounts it receives; forwards the late `execve`'s outcome; reaps;
//! then kills and reaps the rest of the tree and sends the final record. Its state comes in one
//! environment variable from the supervisor (`KINDLING_INIT`, see `sys::child::init_state`):
//! the program's pid, the mode, the descriptors it inherits (not close-on-exec), and the
//! freezer's thaw value. Its command line is `kindling-init` (what `/proc/1/cmdline` shows
//! inside), and it has no environment but that variable (`/proc/1/environ` is root's).
//!
//! Rules: raw system calls only (no libc: no errno, no TLS), no allocation, no panics (a panic
//! exits 121, like a failed setup). The 16-byte records are `report::Record`'s encoding; the
//! sandbox's tests exercise every path (each spawn runs through this program).
#![no_std]
#![no_main]
#![no_builtins]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_arch = "x86_64")]
mod arch {
    pub const READ: usize = 0;
    pub const WRITE: usize = 1;
    pub const CLOSE: usize = 3;
    pub const OPENAT: usize = 257;
    pub const PPOLL: usize = 271;
    pub const WAIT4: usize = 61;
    pub const KILL: usize = 62;
    pub const PWRITE64: usize = 18;
    pub const RECVMSG: usize = 47;
    pub const GETRUSAGE: usize = 98;
    pub const EXIT_GROUP: usize = 231;
    pub const CLOCK_GETTIME: usize = 228;
    pub const PRCTL: usize = 157;

    /// A system call: the result, or -errno.
    ///
    /// # Safety
    /// The arguments must be valid for system call `n`.
    #[inline(always)]
    pub unsafe fn syscall(n: usize, a: [usize; 6]) -> isize {
        let ret: isize;
        // SAFETY: the `syscall` instruction with the kernel's register convention; it
        // clobbers rcx and r11 only; the caller vouches for the arguments.
        unsafe {
            core::arch::asm!(
                "syscall",
                inlateout("rax") n as isize => ret,
                in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
                in("r10") a[3], in("r8") a[4], in("r9") a[5],
                lateout("rcx") _, lateout("r11") _,
                options(nostack),
            );
        }
        ret
    }

    // The kernel starts a program with the stack pointer at argc, argv..., 0, envp..., 0.
    core::arch::global_asm!(
        ".globl _start",
        "_start:",
        "mov rdi, rsp",
        "and rsp, -16",
        "call {main}",
        "ud2",
        main = sym super::init_main,
    );
}

#[cfg(target_arch = "aarch64")]
mod arch {
    pub const READ: usize = 63;
    pub const WRITE: usize = 64;
    pub const CLOSE: usize = 57;
    pub const OPENAT: usize = 56;
    pub const PPOLL: usize = 73;
    pub const WAIT4: usize = 260;
    pub const KILL: usize = 129;
    pub const PWRITE64: usize = 68;
    pub const RECVMSG: usize = 212;
    pub const GETRUSAGE: usize = 165;
    pub const EXIT_GROUP: usize = 94;
    pub const CLOCK_GETTIME: usize = 113;
    pub const PRCTL: usize = 167;

    /// A system call: the result, or -errno.
    ///
    /// # Safety
    /// The arguments must be valid for system call `n`.
    #[inline(always)]
    pub unsafe fn syscall(n: usize, a: [usize; 6]) -> isize {
        let ret: isize;
        // SAFETY: `svc 0` with the kernel's register convention (x8 the number, x0-x5 the
        // arguments, x0 the result); the caller vouches for the arguments.
        unsafe {
            core::arch::asm!(
                "svc 0",
                in("x8") n,
                inlateout("x0") a[0] as isize => ret,
                in("x1") a[1], in("x2") a[2], in("x3") a[3], in("x4") a[4], in("x5") a[5],
                options(nostack),
            );
        }
        ret
    }

    core::arch::global_asm!(
        ".globl _start",
        "_start:",
        "mov x0, sp",
        "bl {main}",
        "brk #1",
        main = sym super::init_main,
    );
}

use arch::*;

const MOVE_MOUNT: usize = 429;
const AT_FDCWD: isize = -100;
const MOVE_MOUNT_F_EMPTY_PATH: usize = 4;
const O_RDONLY_CLOEXEC: usize = 0o2_000_000;
const POLLIN: i16 = 1;
const EINTR: isize = 4;
const WNOHANG: usize = 1;
const WALL: usize = 0x4000_0000;
const SIGKILL: usize = 9;
const SIGCHLD: u32 = 17;
const MSG_CMSG_CLOEXEC: usize = 0x4000_0000;
const SOL_SOCKET: i32 = 1;
const SCM_RIGHTS: i32 = 1;
const PR_SET_NAME: usize = 15;
const CLOCK_MONOTONIC: usize = 1;
const RUSAGE_CHILDREN: isize = -1;
/// `struct signalfd_siginfo` is 128 bytes; `ssi_signo` is its first field.
const SIGINFO_LEN: usize = 128;

/// `report::Record` tags.
const TAG_EXITED: u32 = 3;
const TAG_KILLED: u32 = 4;
const TAG_ENDING: u32 = 5;
/// `report::EXEC_FAILURE_LEN`; `report::EXEC_DONE` is all zeros.
const EXEC_FAILURE_LEN: usize = 12;

/// Mount points of the code, in the order of the descriptors a control message carries
/// (`child::CODE_TARGETS`).
const CODE_TARGETS: [&[u8]; 2] = [b"/var/task\0", b"/opt\0"];

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(121)
}

// The compiler may call these for copies and zeroing; `no_builtins` keeps the loops loops.
/// # Safety
/// `d` must be valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n, and the caller guarantees n bytes at d.
        unsafe { *d.add(i) = c as u8 };
        i += 1;
    }
    d
}

/// # Safety
/// `d` and `s` must be valid for `n` bytes and not overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n, and the caller guarantees n bytes at both.
        unsafe { *d.add(i) = *s.add(i) };
        i += 1;
    }
    d
}

/// # Safety
/// `a` and `b` must be valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n, and the caller guarantees n bytes at both.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// # Safety
/// As [`memcmp`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the same contract.
    unsafe { memcmp(a, b, n) }
}

fn exit(code: usize) -> ! {
    loop {
        // SAFETY: exit_group takes an integer and does not return.
        unsafe { syscall(EXIT_GROUP, [code, 0, 0, 0, 0, 0]) };
    }
}

fn close(fd: i32) {
    if fd >= 0 {
        // SAFETY: closing a descriptor this program owns.
        unsafe { syscall(CLOSE, [fd as usize, 0, 0, 0, 0, 0]) };
    }
}

fn write(fd: i32, buf: &[u8]) {
    // SAFETY: one write from a buffer of the length passed.
    unsafe {
        syscall(
            WRITE,
            [fd as usize, buf.as_ptr() as usize, buf.len(), 0, 0, 0],
        )
    };
}

/// Reads until `buf` is full or end of file (or an error); returns the bytes read.
fn read_full(fd: i32, buf: &mut [u8]) -> usize {
    let mut done = 0;
    while done < buf.len() {
        let Some(rest) = buf.get_mut(done..) else {
            break;
        };
        // SAFETY: a read into the rest of our buffer, with its exact length.
        let n = unsafe {
            syscall(
                READ,
                [fd as usize, rest.as_mut_ptr() as usize, rest.len(), 0, 0, 0],
            )
        };
        if n == -EINTR {
            continue;
        }
        if n <= 0 {
            break;
        }
        done += n as usize;
    }
    done
}

fn send(report: i32, words: [u32; 4]) {
    let mut record = [0u8; 16];
    for (chunk, word) in record.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    write(report, &record);
}

/// What the supervisor passes in `KINDLING_INIT`.
struct State {
    program: i32,
    namespaces: bool,
    report: i32,
    lifeline: i32,
    signals: i32,
    control: i32,
    exec_pending: i32,
    thaw: i32,
    /// The bytes to write to `thaw` (`THAWED` or `0`), a slice of the environment string.
    thaw_value: &'static [u8],
}

/// Parses `program:ns:report:lifeline:signals:control:exec_pending:thaw:thaw_value` (decimal,
/// -1 for none).
fn parse(value: &'static [u8]) -> Option<State> {
    let mut fields = value.split(|&b| b == b':');
    let mut number = || -> Option<i32> {
        let field = fields.next()?;
        let (negative, digits) = match field.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, field),
        };
        // Any non-negative i32 (`StateBuf` writes up to 10 digits); more is refused.
        if digits.is_empty() || digits.len() > 10 {
            return None;
        }
        let mut n: i32 = 0;
        for &d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            n = n.checked_mul(10)?.checked_add(i32::from(d - b'0'))?;
        }
        Some(if negative { -n } else { n })
    };
    let state = State {
        program: number()?,
        namespaces: number()? == 1,
        report: number()?,
        lifeline: number()?,
        signals: number()?,
        control: number()?,
        exec_pending: number()?,
        thaw: number()?,
        thaw_value: &[],
    };
    let thaw_value = fields.next()?;
    Some(State {
        thaw_value,
        ..state
    })
}

/// The value of `KINDLING_INIT` in the environment block at `envp`.
///
/// # Safety
/// `envp` must be the null-terminated array of NUL-terminated strings the kernel passed.
unsafe fn find_state(mut envp: *const *const u8) -> Option<&'static [u8]> {
    const NAME: &[u8] = b"KINDLING_INIT=";
    loop {
        // SAFETY: the array is null-terminated and we stop at the null.
        let entry = unsafe { *envp };
        if entry.is_null() {
            return None;
        }
        let mut len = 0;
        // SAFETY: each entry is NUL-terminated; the kernel's copies live as long as the
        // program.
        while unsafe { *entry.add(len) } != 0 {
            len += 1;
        }
        // SAFETY: `len` bytes at `entry` were just read.
        let text: &'static [u8] = unsafe { core::slice::from_raw_parts(entry, len) };
        if let Some(value) = text.strip_prefix(NAME) {
            return Some(value);
        }
        // SAFETY: not past the terminating null yet.
        envp = unsafe { envp.add(1) };
    }
}

#[repr(C)]
struct PollFd {
    fd: i32,
    events: i16,
    revents: i16,
}

/// Entry from `_start`, with the initial stack pointer.
///
/// # Safety
/// `sp` must be the initial stack the kernel built.
unsafe extern "C" fn init_main(sp: *const usize) -> ! {
    // SAFETY: the initial stack: argc, argc argument pointers, a null, then envp.
    let value = unsafe {
        let argc = *sp;
        find_state(sp.add(argc + 2).cast())
    };
    // No state at all: the sandbox's probe, which checks once that this image can be executed.
    let Some(value) = value else { exit(0) };
    let Some(state) = parse(value) else { exit(121) };
    // SAFETY: prctl with a static NUL-terminated name (comm was the memfd's number).
    unsafe {
        syscall(
            PRCTL,
            [PR_SET_NAME, c"kindling-init".as_ptr() as usize, 0, 0, 0, 0],
        )
    };
    supervise(&state)
}

fn supervise(state: &State) -> ! {
    let mut program_status: Option<i32> = None;
    let mut stop = false;
    let mut control = state.control;
    // exec_later: the control socket once the code is attached, on which Kindling waits for
    // the outcome of the execve; and the exec pipe until that outcome is known.
    let mut answer_to: i32 = -1;
    let mut exec_pending = state.exec_pending;
    while program_status.is_none() && !stop {
        let mut fds = [
            PollFd {
                fd: state.signals,
                events: POLLIN,
                revents: 0,
            },
            PollFd {
                fd: state.lifeline,
                events: POLLIN,
                revents: 0,
            },
            PollFd {
                fd: control,
                events: POLLIN,
                revents: 0,
            },
            PollFd {
                fd: exec_pending,
                events: POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: ppoll on an array of four initialised pollfd structures, no timeout, no
        // signal mask change.
        let ready = unsafe { syscall(PPOLL, [fds.as_mut_ptr() as usize, 4, 0, 0, 8, 0]) };
        if ready < 0 && ready != -EINTR {
            stop = true;
        }
        let [signal_fd, lifeline_fd, control_fd, exec_fd] = fds;
        if lifeline_fd.revents != 0 {
            stop = true;
        }
        if control >= 0 && control_fd.revents != 0 {
            if attach_code(control) && exec_pending >= 0 {
                answer_to = control;
            } else {
                close(control);
            }
            control = -1;
        }
        if exec_pending >= 0 && exec_fd.revents != 0 {
            answer_exec(exec_pending, answer_to);
            exec_pending = -1;
            answer_to = -1;
        }
        if signal_fd.revents != 0 && drain_signals(state.signals) {
            stop = true;
        }
        reap_ready(state.program, &mut program_status);
    }
    if exec_pending >= 0 {
        if program_status.is_some() {
            answer_exec(exec_pending, answer_to);
        } else {
            close(exec_pending);
            close(answer_to);
        }
    }
    if program_status.is_some() {
        let (secs, nanos) = monotonic_now();
        send(state.report, [TAG_ENDING, secs, nanos, 0]);
    }
    tear_down(state);
    let record = match program_status {
        Some(status) => [TAG_EXITED, status as u32, children_max_rss_kib(), 0],
        None => [TAG_KILLED, 0, 0, 0],
    };
    send(state.report, record);
    exit(0)
}

fn monotonic_now() -> (u32, u32) {
    let mut ts = [0i64; 2];
    // SAFETY: clock_gettime with a valid out pointer to a `struct timespec` (two 64-bit words).
    unsafe {
        syscall(
            CLOCK_GETTIME,
            [CLOCK_MONOTONIC, ts.as_mut_ptr() as usize, 0, 0, 0, 0],
        )
    };
    (ts[0] as u32, ts[1] as u32)
}

/// `exec_later`: reads the outcome of the program's `execve` from the exec pipe (end of file:
/// it executed; else its 12-byte failure) and forwards it on `answer_to` (if the code was
/// attached: Kindling waits there), then closes both.
fn answer_exec(exec_read: i32, answer_to: i32) {
    let mut outcome = [0u8; EXEC_FAILURE_LEN];
    if read_full(exec_read, &mut outcome) != EXEC_FAILURE_LEN {
        outcome = [0; EXEC_FAILURE_LEN];
    }
    if answer_to >= 0 {
        write(answer_to, &outcome);
        close(answer_to);
    }
    close(exec_read);
}

#[repr(C)]
struct IoVec {
    base: *mut u8,
    len: usize,
}

#[repr(C)]
struct MsgHdr {
    name: *mut u8,
    namelen: u32,
    iov: *mut IoVec,
    iovlen: usize,
    control: *mut u8,
    controllen: usize,
    flags: i32,
}

/// `code_later`: receives one message carrying up to two detached mounts (the code, then the
/// layers), attaches them at [`CODE_TARGETS`] and answers with the errno of the first failure
/// (0: done). False when Kindling closed its end instead.
fn attach_code(control: i32) -> bool {
    let mut byte = [0u8; 1];
    let mut iov = IoVec {
        base: byte.as_mut_ptr(),
        len: 1,
    };
    // Room for a control message of two descriptors (u64s give cmsghdr its alignment).
    let mut space = [0u64; 8];
    let mut msg = MsgHdr {
        name: core::ptr::null_mut(),
        namelen: 0,
        iov: &mut iov,
        iovlen: 1,
        control: space.as_mut_ptr().cast(),
        controllen: core::mem::size_of_val(&space),
        flags: 0,
    };
    // SAFETY: recvmsg into buffers that live until it returns; received descriptors are
    // close-on-exec.
    let got = unsafe {
        syscall(
            RECVMSG,
            [
                control as usize,
                (&raw mut msg) as usize,
                MSG_CMSG_CLOEXEC,
                0,
                0,
                0,
            ],
        )
    };
    if got <= 0 {
        return false;
    }
    // Walk the control messages: [len: usize][level: i32][type: i32][data], each padded to 8.
    let mut fds: [i32; 2] = [-1, -1];
    let mut count = 0;
    let bytes: [u8; 64] = {
        let mut out = [0u8; 64];
        for (chunk, word) in out.chunks_exact_mut(8).zip(space) {
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        out
    };
    let filled = msg.controllen.min(bytes.len());
    let word = |at: usize, len: usize| -> Option<u64> {
        let slice = bytes.get(at..at + len)?;
        let mut buf = [0u8; 8];
        buf.get_mut(..len)?.copy_from_slice(slice);
        Some(u64::from_ne_bytes(buf))
    };
    let mut at = 0;
    while at + 16 <= filled {
        let (Some(len), Some(level), Some(kind)) = (word(at, 8), word(at + 8, 4), word(at + 12, 4))
        else {
            break;
        };
        let len = len as usize;
        if len < 16 || at + len > filled {
            break;
        }
        if level as i32 == SOL_SOCKET && kind as i32 == SCM_RIGHTS {
            let mut i = at + 16;
            while i + 4 <= at + len {
                let fd = word(i, 4).unwrap_or(u64::MAX) as i32;
                if count < fds.len() {
                    fds[count] = fd;
                    count += 1;
                } else {
                    close(fd);
                }
                i += 4;
            }
        }
        at += (len + 7) & !7;
    }
    let mut result: i32 = 0;
    for (&fd, target) in fds.iter().zip(CODE_TARGETS).take(count) {
        // SAFETY: move_mount of a detached mount received for this purpose onto a static
        // NUL-terminated path (MOVE_MOUNT_F_EMPTY_PATH: the descriptor itself).
        let rc = unsafe {
            syscall(
                MOVE_MOUNT,
                [
                    fd as usize,
                    c"".as_ptr() as usize,
                    AT_FDCWD as usize,
                    target.as_ptr() as usize,
                    MOVE_MOUNT_F_EMPTY_PATH,
                    0,
                ],
            )
        };
        if rc < 0 && result == 0 {
            result = (-rc) as i32;
        }
        close(fd);
    }
    write(control, &result.to_ne_bytes());
    true
}

/// Reads every queued signal; true if one of them asks for a teardown.
fn drain_signals(fd: i32) -> bool {
    let mut teardown = false;
    loop {
        let mut info = [0u32; SIGINFO_LEN / 4];
        // SAFETY: a read of at most the buffer's size into it.
        let n = unsafe {
            syscall(
                READ,
                [
                    fd as usize,
                    info.as_mut_ptr() as usize,
                    SIGINFO_LEN,
                    0,
                    0,
                    0,
                ],
            )
        };
        if n != SIGINFO_LEN as isize {
            return teardown;
        }
        if info[0] != SIGCHLD {
            teardown = true;
        }
    }
}

fn wait_any(flags: usize) -> (isize, i32) {
    let mut status: i32 = 0;
    // SAFETY: wait4 with a valid status pointer and no rusage.
    let pid = unsafe {
        syscall(
            WAIT4,
            [usize::MAX, (&raw mut status) as usize, flags, 0, 0, 0],
        )
    };
    (pid, status)
}

/// Reaps every child that has exited, noting the program's status.
fn reap_ready(program: i32, program_status: &mut Option<i32>) {
    loop {
        let (pid, status) = wait_any(WNOHANG | WALL);
        if pid <= 0 {
            return;
        }
        if pid == program as isize {
            *program_status = Some(status);
        }
    }
}

/// Kills every process left in the tree and reaps them all.
fn tear_down(state: &State) {
    if state.namespaces {
        // pid 1 of the namespace: -1 reaches every other process in it, and nothing outside.
        // SAFETY: kill with integer arguments.
        unsafe { syscall(KILL, [usize::MAX, SIGKILL, 0, 0, 0, 0]) };
        if state.thaw >= 0 {
            // SAFETY: one write from a buffer of the length passed, at offset 0.
            unsafe {
                syscall(
                    PWRITE64,
                    [
                        state.thaw as usize,
                        state.thaw_value.as_ptr() as usize,
                        state.thaw_value.len(),
                        0,
                        0,
                        0,
                    ],
                )
            };
        }
        reap_all(false);
    } else {
        // As subreaper every orphan of the tree is our child: kill the children, reap one,
        // repeat; their children become ours in turn.
        reap_all(true);
    }
}

fn reap_all(kill_first: bool) {
    loop {
        if kill_first {
            kill_children();
        }
        let (pid, _) = wait_any(WALL);
        if pid < 0 && pid != -EINTR {
            return;
        }
    }
}

/// SIGKILLs every child listed in /proc/thread-self/children.
fn kill_children() {
    let mut buf = [0u8; 4096];
    // SAFETY: openat of a static NUL-terminated path.
    let fd = unsafe {
        syscall(
            OPENAT,
            [
                AT_FDCWD as usize,
                c"/proc/thread-self/children".as_ptr() as usize,
                O_RDONLY_CLOEXEC,
                0,
                0,
                0,
            ],
        )
    };
    if fd < 0 {
        return;
    }
    let n = read_full(fd as i32, &mut buf);
    close(fd as i32);
    let mut pid: usize = 0;
    let mut digits = false;
    for &byte in buf.get(..n).unwrap_or(&[]) {
        if byte.is_ascii_digit() {
            pid = pid
                .saturating_mul(10)
                .saturating_add(usize::from(byte - b'0'));
            digits = true;
        } else {
            if digits && pid > 0 && pid < i32::MAX as usize {
                // SAFETY: kill with integer arguments.
                unsafe { syscall(KILL, [pid, SIGKILL, 0, 0, 0, 0]) };
            }
            pid = 0;
            digits = false;
        }
    }
    // A number at the very end may be cut off by the buffer: it is handled on the next round.
}

fn children_max_rss_kib() -> u32 {
    // `struct rusage`: two timevals (4 words), then ru_maxrss.
    let mut usage = [0i64; 18];
    // SAFETY: getrusage fills the 144-byte structure we pass.
    unsafe {
        syscall(
            GETRUSAGE,
            [
                RUSAGE_CHILDREN as usize,
                usage.as_mut_ptr() as usize,
                0,
                0,
                0,
                0,
            ],
        )
    };
    u32::try_from(usage[4]).unwrap_or(u32::MAX)
}
