//! Who is on the other end of an accepted loopback connection: the owner (uid) of the peer's
//! TCP socket.
//!
//! The peer's socket is in the same network namespace as ours (it reached our loopback
//! listener), so the kernel knows it by the connection's addresses: local address = the peer's
//! address, remote address = ours. Its owner is the file-system uid of the process that
//! created it (a socket handed to another process keeps its creator as owner).
//!
//! The kernel is asked with one exact `sock_diag` query over netlink ([`sock_diag`]: a hash
//! lookup, a few microseconds however many sockets the host has). Where that is unavailable
//! (a kernel without `inet_diag`), the socket tables in `/proc/net/tcp` and `/proc/net/tcp6`
//! are read up to the matching row instead ([`proc_tables`]: cost grows with the number of
//! sockets on the host, about a microsecond each).
//!
//! Both look in the network namespace of the calling thread / process, which is the server's.

mod proc_tables;
mod sock_diag;

use std::io;
use std::net::SocketAddr;

/// TCP states (`st` in the tables, `idiag_state` in `sock_diag` answers) that are not a live
/// connection's socket: TIME_WAIT (the owner is no longer known and shows as 0) and LISTEN.
const TIME_WAIT: u8 = 0x06;
const LISTEN: u8 = 0x0A;

/// The owner uid of the socket at the other end of the connection from `peer` to `local` (our
/// end), or `None` when no live socket has that address pair (the peer closed already, or it
/// is in another network namespace).
pub fn socket_owner(peer: SocketAddr, local: SocketAddr) -> io::Result<Option<u32>> {
    match sock_diag::owner(peer, local) {
        Ok(owner) => Ok(owner),
        Err(e) => {
            tracing::debug!(error = %e, "sock_diag lookup failed; reading /proc/net/tcp");
            proc_tables::owner(peer, local)
        }
    }
}

/// IPv4-mapped IPv6 addresses as IPv4, so both forms compare equal.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
pub(crate) mod tests {
    /// The file-system uid of this process: the owner its new sockets get.
    pub(crate) fn own_fsuid() -> u32 {
        std::fs::read_to_string("/proc/self/status")
            .expect("status")
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(3))
            .and_then(|fsuid| fsuid.parse::<u32>().ok())
            .expect("fsuid")
    }

    #[test]
    fn finds_the_owner_of_a_real_connection_or_nothing() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let ours = listener.local_addr().expect("address");
        let client = std::net::TcpStream::connect(ours).expect("connect");
        let (_server_end, peer) = listener.accept().expect("accept");
        assert_eq!(
            super::socket_owner(peer, ours).expect("lookup"),
            Some(own_fsuid())
        );
        let unknown = std::net::SocketAddr::new(peer.ip(), 1);
        assert_eq!(super::socket_owner(unknown, ours).expect("lookup"), None);
        drop(client);
    }
}
