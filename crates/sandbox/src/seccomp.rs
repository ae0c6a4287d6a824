//! The system call filter every program runs under: an allowlist in the spirit of Docker's
//! default profile and Firecracker's jailer, compiled once with libseccomp into a classic BPF
//! program that the program's side of the fork installs just before `execve` (see
//! `sys::child`). Its children inherit it; nothing inside can remove or widen it.
//!
//! Calls outside the list fail with `EPERM`, so runtimes get a clean error rather than a
//! signal. Three answers are `ENOSYS` instead, because libc falls back only on that:
//! `clone3` (glibc then uses `clone`, whose namespace flags the filter can inspect, which it
//! cannot do with `clone3`'s flags in memory), and every number above the newest system call
//! this list knows (a newer libc probing a newer kernel's call gets "not implemented", as on an
//! older kernel).
//!
//! What is refused, and why (each class is a way out of the sandbox or into the host kernel's
//! less-travelled code, and no Lambda runtime needs it):
//!
//! - **Namespaces** (`unshare`, `setns`, `clone` with any `CLONE_NEW*` flag): a new user
//!   namespace makes the caller root inside it, which opens mount, netfilter and other
//!   root-only kernel code to an unprivileged user.
//! - **Mounts** (`mount`, `umount2`, `pivot_root`, `chroot`, `move_mount`, `open_tree`,
//!   `fsopen`, `fsconfig`, `fsmount`, `fspick`, `mount_setattr`, `statmount`, `listmount`):
//!   the root the sandbox built must stay as it is.
//! - **Kernel keyrings** (`keyctl`, `add_key`, `request_key`): keyrings are not namespaced; keys
//!   are visible across the host.
//! - **BPF, perf, io_uring, userfaultfd** (`bpf`, `perf_event_open`, `io_uring_*`,
//!   `userfaultfd`): large, frequently exploited kernel interfaces; `perf_event_open` also
//!   observes other processes and the kernel.
//! - **Other processes' memory** (`ptrace`, `process_vm_readv`, `process_vm_writev`,
//!   `process_madvise`, `kcmp`, `pidfd_getfd`): a function must not inspect or steer the
//!   runtime or a sibling process.
//! - **The machine** (`reboot`, `kexec_load`, `kexec_file_load`, `init_module`, `finit_module`,
//!   `delete_module`, `swapon`, `swapoff`, `acct`, `settimeofday`, `clock_settime`,
//!   `clock_adjtime`, `adjtimex`, `syslog`, `iopl`, `ioperm`, `quotactl`, `quotactl_fd`,
//!   `vhangup`, `sethostname`, `setdomainname`, `lookup_dcookie`, `nfsservctl`, `uselib`,
//!   `ustat`, `sysfs`, `_sysctl`, `modify_ldt`, `lsm_set_self_attr`): host-wide settings and
//!   obsolete interfaces.
//! - **NUMA policy** (`mbind`, `set_mempolicy`, `get_mempolicy`, `migrate_pages`,
//!   `move_pages`, `set_mempolicy_home_node`), **file handles** (`open_by_handle_at`) and
//!   **fanotify** (`fanotify_init`): root-only or placement control, as in Docker's profile.
//! - **`socket(AF_VSOCK)`**: on a virtual machine it reaches the hypervisor's host.
//! - **`personality`** other than the harmless values Docker allows (0, `PER_LINUX32`,
//!   `UNAME26` and their combination, and the query 0xffffffff).
//!
//! The filter is a binary tree (libseccomp's optimisation level 2): installing it costs tens
//! of microseconds, where a linear list of this size costs ~0.7 ms (the kernel checks every
//! system call number against it to fill its action cache). With that cache, every call
//! allowed regardless of arguments costs nothing at run time; only `clone`, `socket` and
//! `personality` run the filter.

use std::io::{Read, Seek};
use std::sync::{Arc, OnceLock};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};

/// A compiled filter, ready for `seccomp(SECCOMP_SET_MODE_FILTER)`.
#[derive(Debug)]
pub(crate) struct SyscallFilter {
    program: Vec<libc::sock_filter>,
}

impl SyscallFilter {
    pub(crate) fn instructions(&self) -> &[libc::sock_filter] {
        &self.program
    }
}

/// Allowed whatever their arguments. Names not defined on the machine's architecture (`open`
/// and `fork` on aarch64, `arch_prctl` outside x86) are skipped.
#[rustfmt::skip]
const ALLOWED: &[&str] = &[
    // Files and directories.
    "access", "chdir", "chmod", "chown", "close", "close_range", "copy_file_range", "creat", "dup",
    "dup2", "dup3", "faccessat", "faccessat2", "fadvise64", "fallocate", "fchdir", "fchmod",
    "fchmodat", "fchown", "fchownat", "fcntl", "fdatasync", "flock", "fstat", "fstatfs", "fsync",
    "ftruncate", "getcwd", "getdents", "getdents64", "lchown", "link", "linkat", "lseek", "lstat",
    "mkdir", "mkdirat", "mknod", "mknodat", "name_to_handle_at", "newfstatat", "open", "openat",
    "openat2", "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read",
    "readahead", "readlink", "readlinkat", "readv", "rename", "renameat", "renameat2", "rmdir",
    "sendfile", "splice", "stat", "statfs", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "tee", "truncate", "umask", "unlink", "unlinkat", "utime",
    "utimensat", "utimes", "futimesat", "vmsplice", "write", "writev",
    // Extended attributes.
    "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "lgetxattr", "listxattr",
    "llistxattr", "lremovexattr", "lsetxattr", "removexattr", "setxattr",
    // Memory.
    "brk", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore", "mlock", "mlock2",
    "mlockall", "mmap", "mprotect", "mremap", "msync", "munlock", "munlockall", "munmap",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "remap_file_pages",
    // Processes and threads.
    "arch_prctl", "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork",
    "get_robust_list", "get_thread_area", "getcpu", "getegid", "geteuid", "getgid", "getgroups",
    "getitimer", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getresgid",
    "getresuid", "getrlimit", "getrusage", "getsid", "gettid", "getuid", "ioprio_get",
    "ioprio_set", "kill", "pidfd_open", "pidfd_send_signal", "prctl", "prlimit64",
    "process_mrelease", "rseq", "sched_get_priority_max", "sched_get_priority_min",
    "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_getscheduler",
    "sched_rr_get_interval", "sched_setaffinity", "sched_setattr", "sched_setparam",
    "sched_setscheduler", "sched_yield", "seccomp", "set_robust_list", "set_thread_area",
    "set_tid_address", "setfsgid", "setfsuid", "setgid", "setgroups", "setitimer", "setpgid",
    "setpriority", "setregid", "setresgid", "setresuid", "setreuid", "setrlimit", "setsid",
    "setuid", "tgkill", "tkill", "vfork", "wait4", "waitid", "landlock_add_rule",
    "landlock_create_ruleset", "landlock_restrict_self",
    // Signals.
    "alarm", "pause", "restart_syscall", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
    "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo",
    "sigaltstack", "signalfd", "signalfd4",
    // Time.
    "clock_getres", "clock_gettime", "clock_nanosleep", "gettimeofday", "nanosleep", "time",
    "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_settime",
    "timerfd_create", "timerfd_gettime", "timerfd_settime", "times",
    // Waiting and events.
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait",
    "eventfd", "eventfd2", "futex", "futex_waitv", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "fanotify_mark", "poll", "ppoll", "pselect6", "select",
    "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_setup", "io_submit",
    // Sockets (socket itself is below) and IPC of the environment's own IPC namespace.
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen",
    "recvfrom", "recvmmsg", "recvmsg", "sendmmsg", "sendmsg", "sendto", "setsockopt", "shutdown",
    "socketpair", "ioctl", "pipe", "pipe2", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedsend", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd",
    "semctl", "semget", "semop", "semtimedop", "shmat", "shmctl", "shmdt", "shmget",
    // The machine, read only.
    "getrandom", "sysinfo", "uname",
    // Architecture-specific.
    "riscv_flush_icache",
];

/// Allowed calls too new for the libseccomp on some hosts to know by name, with their number
/// in the table every architecture shares from 424 on. Used only where that table applies.
const ALLOWED_NEW: &[(&str, i32)] = &[
    ("cachestat", 451),
    ("fchmodat2", 452),
    ("map_shadow_stack", 453),
    ("futex_wake", 454),
    ("futex_wait", 455),
    ("futex_requeue", 456),
    ("mseal", 462),
    ("setxattrat", 463),
    ("getxattrat", 464),
    ("listxattrat", 465),
    ("removexattrat", 466),
    ("file_getattr", 468),
    ("file_setattr", 469),
];

/// The newest system call number this list was written against (`file_setattr`, Linux 6.17).
/// Numbers above it, up to [`FUTURE_LAST`], answer `ENOSYS`.
const NEWEST_KNOWN: i32 = 469;
const FUTURE_LAST: i32 = 479;

/// x86_64 only: the return-probe trampoline's call (Linux 6.11), issued by the kernel's own
/// code when a host tool probes a function; refusing it would kill the process.
const X86_64_URETPROBE: i32 = 335;

/// `CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID
/// | CLONE_NEWNET`: `clone` is allowed only with none of them.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// `personality` values Docker allows: PER_LINUX, PER_LINUX32, UNAME26, both, and the query.
const PERSONALITIES: [u64; 5] = [0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

const AF_VSOCK: u64 = 40;

/// The filter, compiled on first use and shared by every sandbox of the process. Err says why
/// it could not be built (spawning then fails rather than run unfiltered).
pub(crate) fn filter() -> Result<Arc<SyscallFilter>, String> {
    static FILTER: OnceLock<Result<Arc<SyscallFilter>, String>> = OnceLock::new();
    FILTER.get_or_init(|| compile().map(Arc::new)).clone()
}

fn compile() -> Result<SyscallFilter, String> {
    let fail = |what: &str, e: libseccomp::error::SeccompError| format!("{what}: {e}");
    let mut ctx = ScmpFilterContext::new(ScmpAction::Errno(libc::EPERM))
        .map_err(|e| fail("creating the filter", e))?;
    // Installed by our own code after PR_SET_NO_NEW_PRIVS; a binary tree of comparisons.
    ctx.set_ctl_nnp(false)
        .map_err(|e| fail("configuring the filter", e))?;
    ctx.set_ctl_optimize(2)
        .map_err(|e| fail("asking for a binary-tree filter (libseccomp >= 2.5)", e))?;
    let native = ScmpArch::native();
    let shared_table = matches!(
        native,
        ScmpArch::X8664 | ScmpArch::Aarch64 | ScmpArch::Riscv64
    );

    let mut allow = |syscall: ScmpSyscall, name: &str| -> Result<(), String> {
        ctx.add_rule(ScmpAction::Allow, syscall)
            .map(|_| ())
            .map_err(|e| fail(&format!("allowing {name}"), e))
    };
    for name in ALLOWED {
        // Not a call of this architecture: nothing to allow.
        if let Ok(syscall) = ScmpSyscall::from_name(name) {
            allow(syscall, name)?;
        }
    }
    for &(name, number) in ALLOWED_NEW {
        match ScmpSyscall::from_name(name) {
            Ok(syscall) => allow(syscall, name)?,
            Err(_) if shared_table => allow(ScmpSyscall::from(number), name)?,
            Err(_) => {}
        }
    }
    if native == ScmpArch::X8664 {
        allow(ScmpSyscall::from(X86_64_URETPROBE), "uretprobe")?;
    }

    let conditional = |ctx: &mut ScmpFilterContext,
                       name: &str,
                       action: ScmpAction,
                       compare: ScmpArgCompare|
     -> Result<(), String> {
        let Ok(syscall) = ScmpSyscall::from_name(name) else {
            return Ok(());
        };
        ctx.add_rule_conditional(action, syscall, &[compare])
            .map(|_| ())
            .map_err(|e| fail(&format!("adding the rule for {name}"), e))
    };
    // s390 passes clone's flags second.
    let flags_arg = if matches!(native, ScmpArch::S390 | ScmpArch::S390X) {
        1
    } else {
        0
    };
    conditional(
        &mut ctx,
        "clone",
        ScmpAction::Allow,
        ScmpArgCompare::new(
            flags_arg,
            ScmpCompareOp::MaskedEqual(CLONE_NAMESPACE_FLAGS),
            0,
        ),
    )?;
    conditional(
        &mut ctx,
        "socket",
        ScmpAction::Allow,
        ScmpArgCompare::new(0, ScmpCompareOp::NotEqual, AF_VSOCK),
    )?;
    for value in PERSONALITIES {
        conditional(
            &mut ctx,
            "personality",
            ScmpAction::Allow,
            ScmpArgCompare::new(0, ScmpCompareOp::Equal, value),
        )?;
    }

    let not_implemented = ScmpAction::Errno(libc::ENOSYS);
    if let Ok(clone3) = ScmpSyscall::from_name("clone3") {
        ctx.add_rule(not_implemented, clone3)
            .map_err(|e| fail("answering clone3 with ENOSYS", e))?;
    }
    if shared_table {
        for number in NEWEST_KNOWN + 1..=FUTURE_LAST {
            ctx.add_rule(not_implemented, ScmpSyscall::from(number))
                .map_err(|e| fail(&format!("answering call {number} with ENOSYS"), e))?;
        }
    }
    export(&ctx)
}

/// The filter as the kernel takes it: libseccomp writes it to a file (a memfd here).
fn export(ctx: &ScmpFilterContext) -> Result<SyscallFilter, String> {
    let memfd =
        nix::sys::memfd::memfd_create(c"kindling-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| format!("creating a memfd for the filter: {e}"))?;
    ctx.export_bpf(&memfd)
        .map_err(|e| format!("exporting the filter: {e}"))?;
    let mut file = std::fs::File::from(memfd);
    let mut bytes = Vec::new();
    file.rewind()
        .and_then(|()| file.read_to_end(&mut bytes))
        .map_err(|e| format!("reading the exported filter: {e}"))?;
    let program = decode(&bytes)?;
    Ok(SyscallFilter { program })
}

/// `struct sock_filter` records (u16 code, u8 jt, u8 jf, u32 k; native endian).
fn decode(bytes: &[u8]) -> Result<Vec<libc::sock_filter>, String> {
    const LEN: usize = std::mem::size_of::<libc::sock_filter>();
    if bytes.is_empty()
        || !bytes.len().is_multiple_of(LEN)
        || bytes.len() / LEN > usize::from(u16::MAX)
    {
        return Err(format!(
            "the exported filter has {} bytes, not a whole number of up to 65535 instructions",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(LEN)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_to_a_compact_tree() {
        let filter = filter().expect("filter");
        let n = filter.instructions().len();
        // A linear list of ~300 calls would be ~350+ instructions walked one by one; the tree
        // is bigger but shallow. Mostly a guard against a silent change of shape or size.
        assert!((100..=1200).contains(&n), "{n} instructions");
    }

    #[test]
    fn denied_calls_are_not_in_the_allowlist() {
        #[rustfmt::skip]
        let denied = [
            "unshare", "setns", "mount", "umount2", "pivot_root", "move_mount", "fsopen", "keyctl",
            "add_key", "request_key", "bpf", "perf_event_open", "ptrace", "process_vm_readv",
            "process_vm_writev", "init_module", "finit_module", "reboot", "kexec_load",
            "io_uring_setup", "io_uring_enter", "io_uring_register", "userfaultfd", "swapon",
            "swapoff", "acct", "settimeofday", "clock_settime", "clone3", "clone", "socket",
            "personality",
        ];
        for denied in denied {
            assert!(
                !ALLOWED.contains(&denied),
                "{denied} is allowed unconditionally"
            );
            assert!(!ALLOWED_NEW.iter().any(|(n, _)| *n == denied), "{denied}");
        }
    }

    #[test]
    fn decodes_instructions() {
        let one = [0x20u8, 0, 1, 2, 4, 0, 0, 0];
        let program = decode(&one).expect("one instruction");
        assert_eq!(
            (program[0].code, program[0].jt, program[0].jf, program[0].k),
            (0x20, 1, 2, 4)
        );
        assert!(decode(&[]).is_err());
        assert!(decode(&one[..7]).is_err());
    }
}
