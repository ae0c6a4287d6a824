//! How much a pipe holds.

use std::io;
use std::os::fd::BorrowedFd;

/// Bytes written into the pipe and not read yet (`FIONREAD`).
pub(crate) fn unread_bytes(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which points at `n`; `fd` is a
    // descriptor borrowed for the call.
    let rc = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            libc::FIONREAD,
            &raw mut n,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn counts_what_was_written_and_not_read() {
        let (read, write) = std::io::pipe().expect("pipe");
        assert_eq!(unread_bytes(read.as_fd()).expect("fionread"), 0);
        (&write).write_all(b"hello\n").expect("write");
        assert_eq!(unread_bytes(read.as_fd()).expect("fionread"), 6);
    }
}
