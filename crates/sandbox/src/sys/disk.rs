//! What the disk-backed `/tmp` needs from the kernel: a loop device over an image file, an
//! ext4 mount of it that is attached nowhere yet (the new mount API), and idle priority for the
//! thread that prepares them.

use std::ffi::CStr;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

/// `LOOP_CTL_GET_FREE` (on `/dev/loop-control`): the index of a free loop device.
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
/// `LOOP_CONFIGURE` (Linux 5.8): bind a file and set flags in one step.
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
/// Detach once the last user (here: the mounted filesystem) lets go.
const LO_FLAGS_AUTOCLEAR: u32 = 4;
/// Read and write the image with direct I/O: no second copy in the host's page cache.
const LO_FLAGS_DIRECT_IO: u32 = 16;

/// `struct loop_info64` of `<linux/loop.h>`.
#[repr(C)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    sizelimit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; 64],
    crypt_name: [u8; 64],
    encrypt_key: [u8; 32],
    init: [u64; 2],
}

/// `struct loop_config` of `<linux/loop.h>`.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// A loop device bound to an image, open. With autoclear it detaches itself once neither this
/// descriptor nor a filesystem mounted from it holds it.
pub(crate) struct LoopDevice {
    pub index: u32,
    /// Held open until the filesystem is mounted from the device.
    _open: OwnedFd,
}

/// Binds `image` (open read-write) to a free loop device with 4 KiB blocks, autoclear and,
/// when the backing filesystem allows it, direct I/O.
///
/// `LOOP_CTL_GET_FREE` names a free device without reserving it, so attaches race: within
/// this process they take turns (a lock); another process taking the device first makes
/// `LOOP_CONFIGURE` fail with EBUSY, and we ask again.
pub(crate) fn attach_loop(image: BorrowedFd<'_>) -> io::Result<LoopDevice> {
    static ATTACHING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ATTACHING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open("/dev/loop-control")?;
    let mut last_error = io::Error::from_raw_os_error(libc::EBUSY);
    for attempt in 0..100u32 {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(u64::from(attempt.min(10))));
        }
        // SAFETY: an ioctl without argument on the loop control device we opened.
        let index = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
        if index < 0 {
            return Err(io::Error::last_os_error());
        }
        let device = match OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(format!("/dev/loop{index}"))
        {
            Ok(device) => device,
            // Just created by the kernel; its node may take a moment to appear.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                last_error = e;
                continue;
            }
            Err(e) => return Err(e),
        };
        match configure(&device, image) {
            Ok(()) => {
                return Ok(LoopDevice {
                    index: index as u32,
                    _open: device.into(),
                });
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => last_error = e,
            Err(e) => return Err(e),
        }
    }
    Err(last_error)
}

/// `LOOP_CONFIGURE` of `device` with `image`: direct I/O if the backing filesystem has it
/// (EINVAL otherwise), else buffered.
fn configure(device: &std::fs::File, image: BorrowedFd<'_>) -> io::Result<()> {
    let mut last_error = io::Error::from_raw_os_error(libc::EINVAL);
    for flags in [LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO, LO_FLAGS_AUTOCLEAR] {
        let config = LoopConfig {
            fd: image.as_raw_fd() as u32,
            block_size: 4096,
            info: LoopInfo64 {
                device: 0,
                inode: 0,
                rdevice: 0,
                offset: 0,
                sizelimit: 0,
                number: 0,
                encrypt_type: 0,
                encrypt_key_size: 0,
                flags,
                file_name: [0; 64],
                crypt_name: [0; 64],
                encrypt_key: [0; 32],
                init: [0; 2],
            },
            reserved: [0; 8],
        };
        // SAFETY: LOOP_CONFIGURE reads a fully initialised loop_config of the kernel's layout;
        // the image descriptor is open for the duration of the call.
        let rc = unsafe { libc::ioctl(device.as_raw_fd(), LOOP_CONFIGURE, &raw const config) };
        if rc == 0 {
            return Ok(());
        }
        last_error = io::Error::last_os_error();
        if last_error.raw_os_error() != Some(libc::EINVAL) {
            break;
        }
    }
    Err(last_error)
}

/// Creates an ext4 filesystem instance from `device` with the flag options `flags` (e.g.
/// `noinit_itable`) and returns it as a detached mount (nosuid, nodev) that is attached
/// nowhere: `move_mount` puts it in place inside an environment's mount namespace.
pub(crate) fn mount_ext4(device: &CStr, flags: &[&CStr]) -> io::Result<OwnedFd> {
    // SAFETY: fsopen with a static NUL-terminated name; a new descriptor on success.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, c"ext4".as_ptr(), libc::FSOPEN_CLOEXEC) };
    if fs < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fsopen returned a new descriptor that nothing else owns.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as libc::c_int) };
    let config = |command: libc::c_uint, key: Option<&CStr>, value: Option<&CStr>| {
        let key = key.map_or(std::ptr::null(), CStr::as_ptr);
        let value = value.map_or(std::ptr::null(), CStr::as_ptr);
        // SAFETY: fsconfig on our fs context with NUL-terminated strings (or null where the
        // command takes none).
        let rc =
            unsafe { libc::syscall(libc::SYS_fsconfig, fs.as_raw_fd(), command, key, value, 0) };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    config(libc::FSCONFIG_SET_STRING, Some(c"source"), Some(device))?;
    for flag in flags {
        config(libc::FSCONFIG_SET_FLAG, Some(flag), None)?;
    }
    config(libc::FSCONFIG_CMD_CREATE, None, None)?;
    let attributes = libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV;
    // SAFETY: fsmount on our created fs context; a new descriptor on success.
    let mount = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attributes,
        )
    };
    if mount < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fsmount returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(mount as libc::c_int) })
}

/// Whether an ext4 filesystem can be created here (fsopen, which loads the module if need
/// be); nothing is mounted.
pub(crate) fn check_ext4() -> io::Result<()> {
    // SAFETY: fsopen with a static NUL-terminated name; a new descriptor on success.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, c"ext4".as_ptr(), libc::FSOPEN_CLOEXEC) };
    if fs < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fsopen returned a new descriptor that nothing else owns; dropping closes it.
    drop(unsafe { OwnedFd::from_raw_fd(fs as libc::c_int) });
    Ok(())
}

/// Lowers the calling thread's priority (nice 10; the processes it starts inherit it): making
/// images yields to cold starts and invocations, but still progresses on a busy host (where
/// `SCHED_IDLE` would starve it and leave cold starts to make their own).
pub(crate) fn lower_thread_priority() -> io::Result<()> {
    // SAFETY: setpriority with integers; on Linux, PRIO_PROCESS with 0 is the calling thread.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
