//! The network an environment will run in, prepared before its program starts, with a listener
//! for a service of Kindling's that only the environment should reach (the Runtime API).

use std::fmt;
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

/// A private network namespace made by [`Sandbox::prepare_network`](crate::Sandbox::prepare_network),
/// to put in [`EnvironmentSpec::network`](crate::EnvironmentSpec::network). Cheap to clone; the
/// namespace lasts as long as a handle, its listener or a process inside it.
#[derive(Clone)]
pub struct NetworkNamespace {
    fd: Arc<OwnedFd>,
}

impl NetworkNamespace {
    pub(crate) fn new(fd: OwnedFd) -> Self {
        NetworkNamespace { fd: Arc::new(fd) }
    }

    /// A TCP connection to `127.0.0.1:port` as seen from inside the namespace (a service the
    /// environment listens on, such as a Telemetry API subscriber), made from Kindling's process
    /// without reaching its own network. Non-blocking and close-on-exec, ready for
    /// `tokio::net::TcpStream::from_std`. Needs `CAP_SYS_ADMIN` (as making the namespace did).
    pub async fn connect_loopback(&self, port: u16) -> std::io::Result<std::net::TcpStream> {
        let stream = crate::sys::net::connect_inside(Arc::clone(&self.fd), port).await?;
        stream.set_nonblocking(true)?;
        Ok(stream)
    }
}

/// A TCP connection to `127.0.0.1:port` on the host's loopback whose socket is owned by `uid`
/// (an environment's user), for connections Kindling makes on an environment's behalf: whoever
/// identifies its peers by socket owner (Kindling's edge, a Runtime API's peer check) sees the
/// environment, not Kindling. Non-blocking and close-on-exec. Needs `CAP_SETUID`.
pub async fn connect_loopback_as(uid: u32, port: u16) -> std::io::Result<std::net::TcpStream> {
    let stream = crate::sys::net::connect_as(uid, port).await?;
    stream.set_nonblocking(true)?;
    Ok(stream)
}

impl AsFd for NetworkNamespace {
    /// The namespace as an open file (what `/proc/<pid>/ns/net` opens to), e.g. for `setns(2)`.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl fmt::Debug for NetworkNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NetworkNamespace")
            .field(&self.fd.as_raw_fd())
            .finish()
    }
}

/// What [`Sandbox::prepare_network`](crate::Sandbox::prepare_network) made for one environment.
#[derive(Debug)]
pub struct PreparedNetwork {
    /// Listening on the loopback address the environment sees (`127.0.0.1`), non-blocking
    /// (ready for `tokio::net::TcpListener::from_std`) and close-on-exec. Its
    /// `local_addr()` is the address to give the environment.
    pub listener: TcpListener,
    /// `Some` when the environment gets a network namespace of its own: put it in
    /// [`EnvironmentSpec::network`](crate::EnvironmentSpec::network). `None` when the environment
    /// shares the host's network (the listener is then on the host's loopback, where any local
    /// process can connect: check who connects).
    pub namespace: Option<NetworkNamespace>,
    /// With a namespace of its own: listeners on its loopback at the extra ports asked for
    /// ([`Sandbox::prepare_network_with`](crate::Sandbox::prepare_network_with)), in that
    /// order, non-blocking and close-on-exec. Empty when the environment shares the host's
    /// network (it reaches the host's services directly).
    pub extra_listeners: Vec<TcpListener>,
}
