//! The crate's only `unsafe` code: `clone3` with a pidfd, pidfd signals and waits, (in
//! [`child`]) what runs between `clone3` and `execve`, (in [`net`]) making a network
//! namespace with a listener in it, (in [`pipe`]) how much a pipe holds, and the image of `kindling-init` (`init.rs`, a program of
//! its own built by build.rs), which every supervisor becomes once its setup is done.
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub(crate) mod child;
pub(crate) mod code;
pub(crate) mod disk;
/// `kindling-init`'s source: a program of its own that build.rs compiles (and lints, under
/// `cargo clippy`), never a module of this crate. Declared, compiled out, only so that
/// `cargo fmt` formats it too.
#[cfg(any())]
mod init;
pub(crate) mod net;
pub(crate) mod pipe;

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use tokio::io::unix::AsyncFd;

use child::ChildPlan;

/// `struct clone_args` of `clone3(2)`, version 0 (64 bytes; the kernel accepts this size on
/// every architecture).
#[repr(C)]
#[derive(Default)]
pub(crate) struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

/// Namespace flags for [`clone_supervisor`].
pub(crate) const NS_MOUNT: u64 = libc::CLONE_NEWNS as u64;
pub(crate) const NS_PID: u64 = libc::CLONE_NEWPID as u64;
pub(crate) const NS_IPC: u64 = libc::CLONE_NEWIPC as u64;
pub(crate) const NS_UTS: u64 = libc::CLONE_NEWUTS as u64;
pub(crate) const NS_NET: u64 = libc::CLONE_NEWNET as u64;

/// What the cloned child does.
enum Entry<'a> {
    Supervisor(&'a ChildPlan),
    ExitAtOnce,
    /// Executes `kindling-init` from this memfd without state (it exits 0); exits with the
    /// errno if the `execveat` fails.
    InitProbe(libc::c_int),
}

/// Clones a child in new namespaces `ns_flags` (0 for none) that runs the supervisor of
/// `plan`. Returns its pid and a pidfd for it.
///
/// All signals are blocked in the calling thread around the clone so that the child starts
/// with every signal blocked and no handler of Kindling's ever runs in it.
pub(crate) fn clone_supervisor(
    plan: &ChildPlan,
    ns_flags: u64,
) -> io::Result<(libc::pid_t, OwnedFd)> {
    clone_with(ns_flags, Entry::Supervisor(plan))
}

/// Checks that a child can be created in namespaces `ns_flags`; the child exits at once.
pub(crate) fn probe_namespaces(ns_flags: u64) -> io::Result<()> {
    let (_, pidfd) = clone_with(ns_flags, Entry::ExitAtOnce)?;
    match wait_exit_code(pidfd.as_fd())? {
        0 => Ok(()),
        code => Err(io::Error::other(format!(
            "namespace probe ended with code {code}"
        ))),
    }
}

/// Waits for the child of `pidfd` to exit; its exit code (a signal is an error).
fn wait_exit_code(pidfd: BorrowedFd<'_>) -> io::Result<i32> {
    loop {
        match waitid(Id::PIDFd(pidfd), WaitPidFlag::WEXITED) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(other) => return Err(io::Error::other(format!("the child ended with {other:?}"))),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn clone_with(ns_flags: u64, entry: Entry<'_>) -> io::Result<(libc::pid_t, OwnedFd)> {
    let mut pidfd: libc::c_int = -1;
    let args = CloneArgs {
        flags: ns_flags | libc::CLONE_PIDFD as u64,
        pidfd: (&raw mut pidfd) as usize as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    let mut previous = SigSet::empty();
    pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut previous),
    )?;
    // SAFETY: clone3 with a valid, fully initialised `clone_args` of the size we pass, no
    // CLONE_VM and no stack: it behaves like fork(2). The child gets a copy of this address
    // space and only runs code written for that situation (see `child`), ending in execve or
    // _exit; it never returns into the caller.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &raw const args,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if rc == 0 {
        match entry {
            Entry::Supervisor(plan) => child::supervisor_main(plan),
            // SAFETY: _exit ends the child without running any of the parent's destructors.
            Entry::ExitAtOnce => unsafe { libc::_exit(0) },
            Entry::InitProbe(image) => {
                let argv = [c"kindling-init".as_ptr(), std::ptr::null()];
                let envp = [std::ptr::null::<libc::c_char>()];
                // SAFETY: execveat of a memfd we own (AT_EMPTY_PATH) with null-terminated
                // arrays on this stack; if it returns, _exit with its errno (this child's own
                // copy) without running any of the parent's destructors.
                unsafe {
                    libc::syscall(
                        libc::SYS_execveat,
                        image,
                        c"".as_ptr(),
                        argv.as_ptr(),
                        envp.as_ptr(),
                        libc::AT_EMPTY_PATH,
                    );
                    libc::_exit(*libc::__errno_location())
                }
            }
        }
    }
    let clone_error = io::Error::last_os_error();
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&previous), None);
    if rc < 0 {
        return Err(clone_error);
    }
    // SAFETY: with CLONE_PIDFD the kernel stored a new pidfd in `pidfd` that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok((rc as libc::pid_t, pidfd))
}

/// `kindling-init` (src/sys/init.rs), built by build.rs: the supervisor's steady state as a
/// static executable of a few kilobytes.
static INIT_IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kindling-init"));

/// A sealed, close-on-exec memfd holding `kindling-init`, which supervisors `execveat` once
/// their setup is done (so that none keeps a copy of Kindling's address space). Made once per
/// sandbox; its pages are shared by every supervisor.
pub(crate) fn init_image() -> io::Result<OwnedFd> {
    const MFD_EXEC: libc::c_uint = 0x10;
    let name = c"kindling-init";
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: memfd_create with a static NUL-terminated name and integer flags. MFD_EXEC (an
    // executable memfd, Linux 6.3+) first; older kernels refuse the flag with EINVAL, and
    // their memfds are executable anyway.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), flags | MFD_EXEC) };
    if fd < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    }
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: memfd_create returned a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(fd);
    std::io::Write::write_all(&mut file, INIT_IMAGE)?;
    let fd = OwnedFd::from(file);
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl with integer arguments on a descriptor we own. Sealed, the image cannot be
    // changed by anyone holding the descriptor (a forked program holds it until its execve).
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // Executed once here, so that a host that refuses it (`vm.memfd_noexec = 2`, a security
    // module) is told at start, not by every environment's supervisor.
    let (_, pidfd) = clone_with(0, Entry::InitProbe(fd.as_raw_fd()))?;
    match wait_exit_code(pidfd.as_fd())? {
        0 => Ok(fd),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// `CLOCK_MONOTONIC` as (seconds, nanoseconds). Allocation-free and async-signal-safe: the
/// supervisor calls it between `clone` and its end.
pub(crate) fn monotonic_now() -> (u32, u32) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime with a valid out pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u32, ts.tv_nsec as u32)
}

/// Sends `signal` to the process of `pidfd`; a process that has exited (even one already
/// reaped) is not an error. Unlike kill(2) this can never hit a recycled pid.
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: pidfd_send_signal with a pidfd we own, a valid signal number and no siginfo.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::ESRCH) {
            return Err(error);
        }
    }
    Ok(())
}

/// Asks a supervisor to end its tree. Namespaces mode: SIGKILL, since the death of pid 1 ends
/// every process of the namespace. Process mode: SIGTERM, which the supervisor handles by
/// killing everything it collected as subreaper before it exits (SIGKILL would orphan them).
pub(crate) fn stop_supervisor(pidfd: BorrowedFd<'_>, namespaces: bool) {
    let signal = if namespaces {
        libc::SIGKILL
    } else {
        libc::SIGTERM
    };
    if let Err(e) = pidfd_send_signal(pidfd, signal) {
        tracing::warn!(error = %e, "signalling an environment's supervisor failed");
    }
}

/// Stops the supervisor and waits, blocking, until it is reaped. A Process-mode supervisor
/// that has not finished its teardown by `deadline` is SIGKILLed (what is left of its tree is
/// then orphaned, and logged).
pub(crate) fn stop_and_reap_blocking(
    pidfd: BorrowedFd<'_>,
    namespaces: bool,
    deadline: std::time::Instant,
) {
    stop_supervisor(pidfd, namespaces);
    let mut forced = namespaces;
    loop {
        match try_reap(pidfd) {
            Ok(None) => {}
            Ok(Some(_)) | Err(_) => return,
        }
        if std::time::Instant::now() >= deadline {
            if forced {
                tracing::warn!("an environment's supervisor did not exit; leaving it");
                return;
            }
            tracing::warn!("an environment's supervisor did not finish its teardown; killing it");
            let _ = pidfd_send_signal(pidfd, libc::SIGKILL);
            forced = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Reaps the process of `pidfd` if it has exited. `Ok(None)` while it runs.
pub(crate) fn try_reap(pidfd: BorrowedFd<'_>) -> io::Result<Option<WaitStatus>> {
    loop {
        return match waitid(
            Id::PIDFd(pidfd),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG,
        ) {
            Ok(WaitStatus::StillAlive) => Ok(None),
            Ok(status) => Ok(Some(status)),
            Err(Errno::EINTR) => continue,
            Err(e) => Err(e.into()),
        };
    }
}

/// Registers a pidfd with the Tokio reactor (readable once the process exits). On failure the
/// pidfd is handed back with the error.
pub(crate) fn register_pidfd(pidfd: OwnedFd) -> Result<AsyncFd<OwnedFd>, (OwnedFd, io::Error)> {
    // SAFETY: an OwnedFd is open and keeps referring to the same file description until the
    // AsyncFd that owns it drops it; its as_raw_fd never changes.
    unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts())
}

/// Waits until the process of `pidfd` exits and reaps it.
pub(crate) async fn reap(pidfd: &AsyncFd<OwnedFd>) -> io::Result<WaitStatus> {
    loop {
        let mut ready = pidfd.readable().await?;
        match try_reap(pidfd.get_ref().as_fd())? {
            Some(status) => return Ok(status),
            None => ready.clear_ready(),
        }
    }
}
