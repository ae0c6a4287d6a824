//! Attaching a function's code to an environment that was started without it (`code_later`):
//! Kindling makes read-only detached copies of the host directories (`open_tree`) and sends
//! them over a socket to the environment's supervisor, which attaches them inside.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

use crate::plan::c_path;
use crate::report::{EXEC_DONE, EXEC_FAILURE_LEN, Stage, decode_exec_failure};

/// A connected pair of close-on-exec Unix stream sockets: (Kindling's end, the supervisor's).
pub(crate) fn control_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut ends: [libc::c_int; 2] = [-1, -1];
    // SAFETY: socketpair writes two new descriptors into the array we pass.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            ends.as_mut_ptr(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair succeeded: both descriptors are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) })
}

/// The layout of `struct mount_attr` (linux/mount.h) for `mount_setattr`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A detached, read-only (nosuid, nodev) bind mount of the host directory `dir`, attached
/// nowhere until the supervisor moves it into place.
pub(crate) fn read_only_copy(dir: &Path) -> io::Result<OwnedFd> {
    let path = c_path(dir).map_err(io::Error::other)?;
    // SAFETY: open_tree with a NUL-terminated path; a new descriptor on success.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open_tree returned a new descriptor that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let attr = MountAttr {
        attr_set: libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr on our detached mount (empty path: the descriptor itself) with a
    // pointer to a mount_attr of the size we pass.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            std::ptr::from_ref(&attr),
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(tree)
}

/// Sends `mounts` (the code, then optionally the layers) to the supervisor on `control` and
/// waits up to `timeout` for its answer: Ok once they are attached.
pub(crate) fn send_mounts(
    control: &OwnedFd,
    mounts: &[OwnedFd],
    timeout: Duration,
) -> io::Result<()> {
    let raw: Vec<RawFd> = mounts.iter().map(AsRawFd::as_raw_fd).collect();
    let mut byte = [b'c'];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let payload = std::mem::size_of_val(raw.as_slice());
    // SAFETY: CMSG_SPACE is a pure computation on a length.
    let space = unsafe { libc::CMSG_SPACE(payload as u32) } as usize;
    let mut buffer = vec![0u64; space.div_ceil(8)];
    // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths); fields set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = buffer.as_mut_ptr().cast();
    msg.msg_controllen = space;
    // SAFETY: the buffer holds CMSG_SPACE(payload) bytes, so the first header and its data
    // fit; we fill in one SCM_RIGHTS message with the descriptors.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload as u32) as usize;
        std::ptr::copy_nonoverlapping(raw.as_ptr().cast::<u8>(), libc::CMSG_DATA(cmsg), payload);
    }
    // SAFETY: sendmsg with the message built above, whose buffers outlive the call.
    if unsafe { libc::sendmsg(control.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: libc::suseconds_t::from(timeout.subsec_micros() as i32),
    };
    // SAFETY: setsockopt with a pointer to a timeval and its size.
    unsafe {
        libc::setsockopt(
            control.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            std::ptr::from_ref(&tv).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
    let mut answer = [0u8; 4];
    let mut got = 0;
    while got < answer.len() {
        // SAFETY: read into the unfilled rest of a stack buffer.
        let n = unsafe {
            libc::read(
                control.as_raw_fd(),
                answer[got..].as_mut_ptr().cast(),
                answer.len() - got,
            )
        };
        match n {
            n if n > 0 => got += n as usize,
            0 => {
                return Err(io::Error::other(
                    "the environment ended before the code was attached",
                ));
            }
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    match i32::from_ne_bytes(answer) {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// `exec_later`, once the code is attached: writes the program's command `message` to its
/// `gate` and closes it (the program reads to the end), then waits on `control` (whose
/// receive timeout [`send_mounts`] set) for the supervisor's word on the `execve`: `None`
/// once it succeeded, else the failure the program reported.
pub(crate) fn exec_late(
    control: &OwnedFd,
    gate: OwnedFd,
    message: &[u8],
) -> io::Result<Option<(Option<Stage>, u32, i32)>> {
    std::fs::File::from(gate).write_all(message)?;
    let mut answer = [0u8; EXEC_FAILURE_LEN];
    let mut got = 0;
    while got < answer.len() {
        let rest = &mut answer[got..];
        // SAFETY: read into the unfilled rest of a stack buffer, with its exact length.
        let n = unsafe { libc::read(control.as_raw_fd(), rest.as_mut_ptr().cast(), rest.len()) };
        match n {
            n if n > 0 => got += n as usize,
            0 => {
                return Err(io::Error::other(
                    "the environment ended before its program was executed",
                ));
            }
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    if answer == EXEC_DONE {
        return Ok(None);
    }
    Ok(Some(decode_exec_failure(&answer)))
}
