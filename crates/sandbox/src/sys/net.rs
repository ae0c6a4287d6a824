//! A private network namespace made before an environment starts, with a listening socket on
//! its loopback interface.
//!
//! A short-lived thread of Kindling moves itself (only itself: `unshare(CLONE_NEWNET)` acts on
//! the calling thread) into a new network namespace, brings `lo` up, binds the listener there
//! and opens the namespace as a file, then exits. The namespace lives on as long as the file
//! (which the supervisor `setns`es into), the listener or a process inside keeps it.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// Creates a network namespace with only `lo` (up) and a listener on `127.0.0.1:port` in it
/// (`port` 0: any free port). Returns the namespace (an open `/proc/thread-self/ns/net`) and
/// the listener (blocking, close-on-exec). Needs `CAP_SYS_ADMIN`. The work runs on a thread of
/// its own, which the caller's task awaits without blocking its worker.
#[cfg(test)]
pub(crate) async fn new_loopback_namespace(port: u16) -> io::Result<(OwnedFd, TcpListener)> {
    new_loopback_namespace_with(port, Vec::new())
        .await
        .map(|(fd, listener, _)| (fd, listener))
}

/// As [`new_loopback_namespace`], with further listeners on the namespace's loopback at
/// `extra_ports` (services of Kindling's the environment may reach, such as its API).
pub(crate) async fn new_loopback_namespace_with(
    port: u16,
    extra_ports: Vec<u16>,
) -> io::Result<(OwnedFd, TcpListener, Vec<TcpListener>)> {
    on_own_thread("kindling-netns", move || {
        in_new_namespace(port, &extra_ports)
    })
    .await
}

/// Runs `work` on a short-lived thread of its own and awaits its answer without blocking the
/// caller's worker: for work that changes the calling thread's namespace or credentials
/// (`unshare`, `setns`, `setfsuid` act on the calling thread), which must never happen on a
/// thread that runs anything else. The thread ends with `work`, and what it changed with it.
async fn on_own_thread<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let (done, made) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = done.send(work());
        })?;
    made.await
        .unwrap_or_else(|_| Err(io::Error::other(format!("{name} ended without an answer"))))
}

/// Runs on the helper thread, which ends right after: whatever namespace it is left in goes
/// away with it, and nothing else ever runs on it.
fn in_new_namespace(
    port: u16,
    extra_ports: &[u16],
) -> io::Result<(OwnedFd, TcpListener, Vec<TcpListener>)> {
    // SAFETY: unshare with a flag only; CLONE_NEWNET moves just this thread, which is ours
    // alone and exits after this function.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } < 0 {
        return Err(io::Error::last_os_error());
    }
    if super::child::bring_up_loopback() < 0 {
        return Err(io::Error::last_os_error());
    }
    let namespace = File::open("/proc/thread-self/ns/net")?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
    let extra = extra_ports
        .iter()
        .map(|p| TcpListener::bind((Ipv4Addr::LOCALHOST, *p)))
        .collect::<io::Result<Vec<_>>>()?;
    Ok((namespace.into(), listener, extra))
}

/// Connects to `127.0.0.1:port` inside the network namespace `namespace` (an environment's
/// loopback, which Kindling's own network cannot reach): a short-lived thread moves itself
/// into the namespace (`setns(CLONE_NEWNET)` acts on the calling thread only), connects (on a
/// loopback the answer is immediate: accepted or refused) and exits; the socket stays in the
/// namespace it was made in. Returns a blocking, close-on-exec stream. Needs `CAP_SYS_ADMIN`.
pub(crate) async fn connect_inside(namespace: Arc<OwnedFd>, port: u16) -> io::Result<TcpStream> {
    on_own_thread("kindling-netns-connect", move || {
        connect_from_thread(&namespace, port)
    })
    .await
}

/// Runs on the helper thread, which ends right after and runs nothing else.
fn connect_from_thread(namespace: &OwnedFd, port: u16) -> io::Result<TcpStream> {
    use std::os::fd::AsRawFd;
    // SAFETY: setns with a descriptor borrowed for the duration of the call; CLONE_NEWNET
    // moves just this thread, which is ours alone and exits after this function.
    if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
        return Err(io::Error::last_os_error());
    }
    connect_loopback(port)
}

/// A loopback peer answers a connect at once (accepted or refused); one that lets its backlog
/// fill drops SYNs, and the kernel would retry for minutes: bounded, so a hostile listener
/// cannot hold helper threads.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

fn connect_loopback(port: u16) -> io::Result<TcpStream> {
    TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), CONNECT_TIMEOUT)
}

/// Connects to `127.0.0.1:port` on the host's loopback with a socket owned by `uid` (an
/// environment's user), so whoever asks the kernel who owns it (Kindling's edge through
/// `sock_diag`, a Runtime API's peer check) sees that user, not Kindling: a connection made
/// on a function's behalf carries the function's identity. A short-lived thread sets its own
/// filesystem uid (what a new socket's owner is taken from; per thread, and the thread exits
/// after) and connects. Needs `CAP_SETUID`. Returns a blocking, close-on-exec stream.
pub(crate) async fn connect_as(uid: u32, port: u16) -> io::Result<TcpStream> {
    on_own_thread("kindling-connect-as", move || {
        connect_as_from_thread(uid, port)
    })
    .await
}

fn connect_as_from_thread(uid: u32, port: u16) -> io::Result<TcpStream> {
    // SAFETY: setfsuid changes only the calling thread's filesystem uid (credentials are per
    // thread in the kernel and glibc does not spread setfsuid to other threads); this thread
    // is ours alone and exits after this function.
    unsafe { libc::setfsuid(uid) };
    // SAFETY: as above; an invalid id (-1) changes nothing and returns the current fsuid,
    // which says whether the first call took (setfsuid reports no error itself).
    let now = unsafe { libc::setfsuid(u32::MAX) };
    if now as u32 != uid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("could not take the filesystem uid {uid} (still {now})"),
        ));
    }
    connect_loopback(port)
}

/// Moves the calling thread into the network namespace `fd`. For tests: the supervisor does
/// the same with a raw system call.
#[cfg(test)]
pub(crate) fn enter(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: setns with a descriptor the caller keeps open for the duration of the call.
    if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::os::fd::AsFd;

    use super::*;

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// A new namespace with a listener on its loopback (any port); the test cannot run
    /// (and says so) without root or without network namespaces.
    async fn namespace_or_skip() -> (OwnedFd, TcpListener) {
        if !is_root() {
            kindling_test_support::cannot_run("a network namespace needs root");
        }
        match new_loopback_namespace(0).await {
            Ok(made) => made,
            Err(e) => {
                kindling_test_support::cannot_run(&format!(
                    "cannot create a network namespace: {e}"
                ));
            }
        }
    }

    #[tokio::test]
    async fn the_listener_lives_in_its_own_namespace() {
        let (namespace, listener) = namespace_or_skip().await;
        let addr = listener.local_addr().expect("address");
        assert_eq!(addr.ip(), Ipv4Addr::LOCALHOST);
        // This thread stays in the host's namespace.
        let host = std::fs::read_link("/proc/thread-self/ns/net").expect("own namespace");
        let inside = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&namespace)
        ))
        .expect("namespace link");
        assert_ne!(host, inside);

        // From a thread that joined the namespace the listener is reachable...
        let ns = namespace.try_clone().expect("dup");
        let client = std::thread::spawn(move || {
            enter(ns.as_fd()).expect("setns");
            let mut stream = TcpStream::connect(addr).expect("connect inside");
            stream.write_all(b"inside").expect("write");
        });
        let (mut accepted, _) = listener.accept().expect("accept");
        let mut got = String::new();
        accepted.read_to_string(&mut got).expect("read");
        assert_eq!(got, "inside");
        client.join().expect("client");

        // ...from the host it is not (whatever answers there, if anything, is not it).
        let _ = TcpStream::connect(addr);
        listener.set_nonblocking(true).expect("nonblocking");
        assert_eq!(
            listener.accept().map(|_| ()).map_err(|e| e.kind()),
            Err(io::ErrorKind::WouldBlock)
        );
    }

    #[tokio::test]
    async fn connecting_inside_reaches_the_namespace_loopback_not_the_host() {
        let (namespace, inside) = namespace_or_skip().await;
        let namespace = Arc::new(namespace);
        let port = inside.local_addr().expect("address").port();
        let mut stream = connect_inside(Arc::clone(&namespace), port)
            .await
            .expect("connect inside");
        stream.write_all(b"to the environment").expect("write");
        drop(stream);
        let (mut accepted, _) = inside.accept().expect("accept");
        let mut got = String::new();
        accepted.read_to_string(&mut got).expect("read");
        assert_eq!(got, "to the environment");

        // A port only the host listens on is refused inside: nothing leaves the namespace.
        let host = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("host listener");
        let host_port = host.local_addr().expect("address").port();
        let refused = connect_inside(namespace, host_port).await.map(drop);
        assert_eq!(
            refused.map_err(|e| e.kind()),
            Err(io::ErrorKind::ConnectionRefused)
        );
        host.set_nonblocking(true).expect("nonblocking");
        assert_eq!(
            host.accept().map(drop).map_err(|e| e.kind()),
            Err(io::ErrorKind::WouldBlock)
        );
    }

    #[tokio::test]
    async fn a_connection_made_as_a_user_is_owned_by_that_user() {
        if !is_root() {
            kindling_test_support::cannot_run("setfsuid to another user needs root");
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("listener");
        let port = listener.local_addr().expect("address").port();
        let stream = connect_as(123_457, port).await.expect("connect as");
        let local = stream.local_addr().expect("local address").port();
        // /proc/net/tcp: "sl local_address rem_address st ... uid": the client's socket, by
        // both ends (another connection, to elsewhere, may share its local port). A table
        // read while other tests open and close thousands of sockets can miss a row: read
        // it again then.
        let row = (
            format!("0100007F:{local:04X}"),
            format!("0100007F:{port:04X}"),
        );
        let mut table = String::new();
        let mut owner = None;
        for _ in 0..5 {
            table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
            owner = table
                .lines()
                .skip(1)
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .find(|f| f[1] == row.0 && f[2] == row.1)
                .map(|f| f[7].to_string());
            if owner.is_some() {
                break;
            }
        }
        assert_eq!(owner.as_deref(), Some("123457"), "{table}");
        // This thread's (and the process's) own identity is unchanged.
        assert!(is_root());
        // SAFETY: a query (-1 changes nothing) of this thread's filesystem uid.
        assert_eq!(unsafe { libc::setfsuid(u32::MAX) }, 0);
    }
}
