//! The owner of one TCP socket, asked of the kernel with an exact `sock_diag` query
//! (`NETLINK_SOCK_DIAG`, `SOCK_DIAG_BY_FAMILY` without `NLM_F_DUMP`: what `ss` uses, minus the
//! dump). The kernel finds the socket in its connection hash table by the address pair and
//! answers with one `inet_diag_msg` (or `ENOENT`), synchronously, while handling our send.
//!
//! Wire layout (native byte order except where noted, see `linux/inet_diag.h`):
//!
//! ```text
//! request:  nlmsghdr (16) | inet_diag_req_v2 (56):
//!           family u8, protocol u8, ext u8, pad u8, states u32,
//!           id: sport be16, dport be16, src [u8; 16], dst [u8; 16], if u32, cookie [u32; 2]
//! answer:   nlmsghdr (16) | inet_diag_msg: family u8, state u8, timer u8, retrans u8,
//!           id (48, as above), expires u32, rqueue u32, wqueue u32, uid u32, inode u32, ...
//! error:    nlmsghdr (16, type NLMSG_ERROR) | error i32 (-errno) | the request's header
//! ```
//!
//! In the id, `src`/`sport` are the sought socket's local end and `dst`/`dport` its remote
//! end; IPv4 addresses take the first 4 bytes of their 16.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto, socket,
};

use super::{LISTEN, TIME_WAIT, canonical};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const HEADER_LEN: usize = 16;
const REQUEST_LEN: usize = HEADER_LEN + 56;
/// Offsets in an answer (from the start of the message).
const STATE_AT: usize = HEADER_LEN + 1;
const ID_AT: usize = HEADER_LEN + 4;
const UID_AT: usize = HEADER_LEN + 64;
const SEQUENCE: u32 = 1;

/// The owner uid of the live socket whose local address is `peer` and remote address `local`
/// (see [`super::socket_owner`]). An error means the query could not be made (no
/// `inet_diag` in the kernel, say), not that there is no such socket.
pub(super) fn owner(peer: SocketAddr, local: SocketAddr) -> io::Result<Option<u32>> {
    let Some(request) = request(peer, local) else {
        // An IPv4 and an IPv6 address: no connection has these two ends.
        return Ok(None);
    };
    let sock = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        SockProtocol::NetlinkSockDiag,
    )?;
    let kernel = NetlinkAddr::new(0, 0);
    sendto(sock.as_raw_fd(), &request, &kernel, MsgFlags::empty())?;
    // The kernel has answered by the time sendto returns; a missing answer is an error (and
    // never a wait: the socket is non-blocking).
    let mut answer = [0u8; 1024];
    let len = recv(sock.as_raw_fd(), &mut answer, MsgFlags::empty())?;
    parse_answer(answer.get(..len).unwrap_or_default(), peer)
}

/// The query for the socket whose local end is `peer` and remote end `local`; `None` when one
/// address is IPv4 and the other IPv6 (after unmapping IPv4-mapped ones).
fn request(peer: SocketAddr, local: SocketAddr) -> Option<[u8; REQUEST_LEN]> {
    let (peer, local) = (canonical(peer), canonical(local));
    let (family, src, dst) = match (peer.ip(), local.ip()) {
        (IpAddr::V4(p), IpAddr::V4(l)) => (libc::AF_INET, padded(&p.octets()), padded(&l.octets())),
        (IpAddr::V6(p), IpAddr::V6(l)) => (libc::AF_INET6, p.octets(), l.octets()),
        _ => return None,
    };
    let mut out = [0u8; REQUEST_LEN];
    // nlmsghdr
    out[0..4].copy_from_slice(&(REQUEST_LEN as u32).to_ne_bytes());
    out[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    out[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    out[8..12].copy_from_slice(&SEQUENCE.to_ne_bytes());
    // nlmsg_pid 0: the kernel fills in ours.
    // inet_diag_req_v2
    let req = &mut out[HEADER_LEN..];
    req[0] = family as u8;
    req[1] = libc::IPPROTO_TCP as u8;
    // idiag_ext 0 (no extra attributes), pad 0, every state.
    req[4..8].copy_from_slice(&u32::MAX.to_ne_bytes());
    req[8..10].copy_from_slice(&peer.port().to_be_bytes());
    req[10..12].copy_from_slice(&local.port().to_be_bytes());
    req[12..28].copy_from_slice(&src);
    req[28..44].copy_from_slice(&dst);
    // idiag_if 0 (any), cookie INET_DIAG_NOCOOKIE (all ones): do not check it.
    req[48..56].fill(0xff);
    Some(out)
}

fn padded(v4: &[u8; 4]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(v4);
    out
}

/// Reads the kernel's answer: the owner, `None` for "no such socket" (ENOENT) or a socket
/// that is not a live connection from `peer`, an error for anything unexpected.
fn parse_answer(answer: &[u8], peer: SocketAddr) -> io::Result<Option<u32>> {
    let u16_at = |at: usize| {
        answer
            .get(at..at + 2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        answer
            .get(at..at + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let malformed = || io::Error::other("malformed sock_diag answer");
    let kind = u16_at(4).ok_or_else(malformed)?;
    if u32_at(8) != Some(SEQUENCE) {
        return Err(malformed());
    }
    if kind == NLMSG_ERROR {
        let errno = u32_at(HEADER_LEN).ok_or_else(malformed)? as i32;
        return match -errno {
            libc::ENOENT => Ok(None),
            0 => Err(malformed()),
            errno => Err(io::Error::from_raw_os_error(errno)),
        };
    }
    if kind != SOCK_DIAG_BY_FAMILY {
        return Err(malformed());
    }
    let state = *answer.get(STATE_AT).ok_or_else(malformed)?;
    let uid = u32_at(UID_AT).ok_or_else(malformed)?;
    // The socket found must be the peer's end itself (its local port is the peer's), live.
    let sport = answer
        .get(ID_AT..ID_AT + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(malformed)?;
    if state == TIME_WAIT || state == LISTEN || sport != peer.port() {
        return Ok(None);
    }
    Ok(Some(uid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("socket address")
    }

    #[test]
    fn requests_name_the_peers_socket() {
        let req = request(addr("127.0.0.2:41394"), addr("127.0.0.1:9001")).unwrap();
        assert_eq!(u32::from_ne_bytes(req[0..4].try_into().unwrap()), 72);
        assert_eq!(u16::from_ne_bytes(req[4..6].try_into().unwrap()), 20);
        assert_eq!(u16::from_ne_bytes(req[6..8].try_into().unwrap()), 1);
        let body = &req[16..];
        assert_eq!(&body[..2], &[libc::AF_INET as u8, 6]);
        assert_eq!(
            &body[8..12],
            &[0xA1, 0xB2, 0x23, 0x29],
            "ports in network order"
        );
        assert_eq!(&body[12..16], &[127, 0, 0, 2], "src: the peer");
        assert_eq!(&body[28..32], &[127, 0, 0, 1], "dst: us");
        assert_eq!(&body[48..56], &[0xff; 8], "no cookie");

        // IPv4-mapped addresses are asked for as IPv4; IPv6 as IPv6.
        let mapped = request(addr("[::ffff:127.0.0.2]:41394"), addr("127.0.0.1:9001")).unwrap();
        assert_eq!(mapped, req);
        let v6 = request(addr("[::1]:41394"), addr("[::1]:9001")).unwrap();
        assert_eq!(v6[16], libc::AF_INET6 as u8);
        assert_eq!(v6[16 + 12..16 + 28], std::net::Ipv6Addr::LOCALHOST.octets());
        assert!(request(addr("[::1]:1"), addr("127.0.0.1:9001")).is_none());
    }

    fn answer(kind: u16, state: u8, sport: u16, uid: u32) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN + 72];
        let len = out.len() as u32;
        out[0..4].copy_from_slice(&len.to_ne_bytes());
        out[4..6].copy_from_slice(&kind.to_ne_bytes());
        out[8..12].copy_from_slice(&SEQUENCE.to_ne_bytes());
        out[STATE_AT] = state;
        out[ID_AT..ID_AT + 2].copy_from_slice(&sport.to_be_bytes());
        out[UID_AT..UID_AT + 4].copy_from_slice(&uid.to_ne_bytes());
        out
    }

    fn error(errno: i32) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN + 4 + HEADER_LEN];
        out[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        out[8..12].copy_from_slice(&SEQUENCE.to_ne_bytes());
        out[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&(-errno).to_ne_bytes());
        out
    }

    #[test]
    fn answers_are_read() {
        let peer = addr("127.0.0.1:41394");
        let established = 1;
        assert_eq!(
            parse_answer(&answer(20, established, 41394, 100_000), peer).unwrap(),
            Some(100_000)
        );
        // Not a live connection from the peer's port: no owner.
        for (state, sport) in [(TIME_WAIT, 41394), (LISTEN, 41394), (established, 9001)] {
            assert_eq!(
                parse_answer(&answer(20, state, sport, 100_000), peer).unwrap(),
                None
            );
        }
        assert_eq!(parse_answer(&error(libc::ENOENT), peer).unwrap(), None);
        assert_eq!(
            parse_answer(&error(libc::EINVAL), peer)
                .unwrap_err()
                .raw_os_error(),
            Some(libc::EINVAL)
        );
        // Truncated, of another type, or of another sequence: errors.
        assert!(parse_answer(&answer(20, established, 41394, 1)[..40], peer).is_err());
        assert!(parse_answer(&answer(21, established, 41394, 1), peer).is_err());
        let mut other = answer(20, established, 41394, 1);
        other[8] = 9;
        assert!(parse_answer(&other, peer).is_err());
        assert!(parse_answer(&[], peer).is_err());
    }

    #[test]
    fn asks_the_kernel() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let ours = listener.local_addr().expect("address");
        let client = std::net::TcpStream::connect(ours).expect("connect");
        let (server_end, peer) = listener.accept().expect("accept");
        let found = match owner(peer, ours) {
            Ok(found) => found,
            Err(e) => {
                eprintln!("skipping: no sock_diag here: {e}");
                return;
            }
        };
        assert_eq!(found, Some(crate::tests::own_fsuid()));
        // Our own end of the same connection is another socket (ours, remote = the peer).
        assert_eq!(
            owner(ours, peer).expect("lookup"),
            Some(crate::tests::own_fsuid())
        );
        assert_eq!(owner(addr("127.0.0.1:1"), ours).expect("lookup"), None);
        drop((client, server_end));
    }
}
