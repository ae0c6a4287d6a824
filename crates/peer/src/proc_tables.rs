//! The fallback lookup: the kernel's socket tables `/proc/net/tcp` and `/proc/net/tcp6`, read
//! up to the matching row (the tables are generated as they are read, at roughly a
//! microsecond per socket of the host).
//!
//! Rows are formatted by the kernel (`tcp4_seq_show`, `tcp6_seq_show`):
//!
//! ```text
//!   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
//!    0: 0100007F:2329 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000 100000        0 4242 ...
//! ```
//!
//! An IPv4 address is the 32-bit word of its network-order bytes, printed as a host-order
//! number in hex; an IPv6 address is four such words. Ports are plain hex numbers. The `uid`
//! column is the socket's owner.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The socket tables, IPv4 first (the Runtime API listens on IPv4 loopback).
const TABLES: [&str; 2] = ["/proc/net/tcp", "/proc/net/tcp6"];

use super::{LISTEN, TIME_WAIT, canonical};

/// The owner uid of the live socket whose local address is `peer` and remote address `local`
/// (see [`super::socket_owner`]).
pub(super) fn owner(peer: SocketAddr, local: SocketAddr) -> io::Result<Option<u32>> {
    for table in TABLES {
        let file = match File::open(table) {
            Ok(file) => file,
            // A kernel without IPv6 has no tcp6 table.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if let Some(uid) = find_owner(BufReader::with_capacity(16 * 1024, file), peer, local)? {
            return Ok(Some(uid));
        }
    }
    Ok(None)
}

/// The uid of the first live row of `table` whose local address is `peer` and remote address
/// is `local`. IPv4-mapped IPv6 addresses match their IPv4 form either way.
fn find_owner(table: impl BufRead, peer: SocketAddr, local: SocketAddr) -> io::Result<Option<u32>> {
    let (peer, local) = (canonical(peer), canonical(local));
    for line in table.lines() {
        let line = line?;
        let Some(row) = Row::parse(&line) else {
            continue;
        };
        if row.state != TIME_WAIT
            && row.state != LISTEN
            && canonical(row.local) == peer
            && canonical(row.remote) == local
        {
            return Ok(Some(row.uid));
        }
    }
    Ok(None)
}

/// The fields of one row that matter here.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    local: SocketAddr,
    remote: SocketAddr,
    state: u8,
    uid: u32,
}

impl Row {
    /// `None` for the header line and anything malformed.
    fn parse(line: &str) -> Option<Row> {
        let mut fields = line.split_whitespace();
        let _slot = fields.next()?.strip_suffix(':')?;
        let local = parse_endpoint(fields.next()?)?;
        let remote = parse_endpoint(fields.next()?)?;
        let state = u8::from_str_radix(fields.next()?, 16).ok()?;
        // tx_queue:rx_queue, tr:tm->when, retrnsmt, then uid.
        let uid = fields.nth(3)?.parse().ok()?;
        Some(Row {
            local,
            remote,
            state,
            uid,
        })
    }
}

/// `0100007F:2329` or `00000000000000000000000001000000:2329`.
fn parse_endpoint(text: &str) -> Option<SocketAddr> {
    let (address, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match address.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(address)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (chunk, i) in bytes.chunks_exact_mut(4).zip(0..) {
                chunk.copy_from_slice(&word(address.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Eight hex digits: a word holding four address bytes in memory order, printed as a
/// host-order number.
fn word(hex: &str) -> Option<[u8; 4]> {
    if hex.len() != 8 {
        return None;
    }
    u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("socket address")
    }

    /// Real rows of a little-endian host (x86-64, aarch64): a listener on 127.0.0.1:9001, the
    /// runtime's connection to it (uid 100000) and Kindling's accepted end (uid 0), a
    /// TIME_WAIT row, and an IPv6 table with `::1` and a v4-mapped connection.
    const TCP: &str = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2329 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 91201 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A1B2 0100007F:2329 01 00000000:00000000 00:00000000 00000000 100000        0 91305 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:2329 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000     0        0 91306 1 0000000000000000 20 4 29 10 -1
   3: 0100007F:C001 0100007F:2329 06 00000000:00000000 03:00000D5E 00000000     0        0 0 3 0000000000000000
   4: 0200007F:A1B2 0100007F:2329 01 00000000:00000000 00:00000000 00000000 100001        0 91400 1 0000000000000000 20 4 30 10 -1
";

    const TCP6: &str = "\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5150 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:D431 00000000000000000000000001000000:1F90 01 00000000:00000000 00:00000000 00000000 100007        0 5160 1 0000000000000000 20 4 30 10 -1
   2: 0000000000000000FFFF00000100007F:B00B 0000000000000000FFFF00000100007F:2329 01 00000000:00000000 00:00000000 00000000 100002        0 5170 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    #[cfg(target_endian = "little")]
    fn rows_parse() {
        let rows: Vec<Row> = TCP.lines().filter_map(Row::parse).collect();
        assert_eq!(rows.len(), 5, "the header is skipped");
        assert_eq!(
            rows[1],
            Row {
                local: addr("127.0.0.1:41394"),
                remote: addr("127.0.0.1:9001"),
                state: 1,
                uid: 100_000,
            }
        );
        let rows6: Vec<Row> = TCP6.lines().filter_map(Row::parse).collect();
        assert_eq!(rows6[1].local, addr("[::1]:54321"));
        assert_eq!(rows6[2].local, addr("[::ffff:127.0.0.1]:45067"));
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn finds_the_peer_sockets_owner() {
        let ours = addr("127.0.0.1:9001");
        let owner = |table: &str, peer: &str| find_owner(table.as_bytes(), addr(peer), ours);
        // The runtime's socket, not Kindling's accepted end of the same connection.
        assert_eq!(owner(TCP, "127.0.0.1:41394").unwrap(), Some(100_000));
        // Another source address is another socket.
        assert_eq!(owner(TCP, "127.0.0.2:41394").unwrap(), Some(100_001));
        // TIME_WAIT (owner unknown) and unknown ports: no owner.
        assert_eq!(owner(TCP, "127.0.0.1:49153").unwrap(), None);
        assert_eq!(owner(TCP, "127.0.0.1:1").unwrap(), None);
        // The listener's own row never matches.
        assert_eq!(
            find_owner(TCP.as_bytes(), ours, addr("0.0.0.0:0")).unwrap(),
            None
        );
        // An IPv6 client socket connected to the IPv4 listener through a v4-mapped address.
        assert_eq!(owner(TCP6, "127.0.0.1:45067").unwrap(), Some(100_002));
        assert_eq!(
            find_owner(TCP6.as_bytes(), addr("[::1]:54321"), addr("[::1]:8080")).unwrap(),
            Some(100_007)
        );
    }

    #[test]
    fn malformed_rows_are_skipped() {
        for line in [
            "",
            "  sl  local_address rem_address   st",
            "   0: 0100007F:2329",
            "   0: 0100007F:2329 0100007F:ZZZZ 01 0:0 0:0 0 5",
            "   0: 01007F:2329 0100007F:2329 01 0:0 0:0 0 5",
            "   0: 0100007F:2329 0100007F:2329 01 0:0 0:0 0 -5",
            "   0 0100007F:2329 0100007F:2329 01 0:0 0:0 0 5",
        ] {
            assert_eq!(Row::parse(line), None, "{line:?}");
        }
    }

    /// On this host: a socket we create is found with our uid.
    #[test]
    fn finds_a_real_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
        let (_server_end, peer) = listener.accept().expect("accept");
        assert_eq!(peer, client.local_addr().unwrap());
        let me = crate::tests::own_fsuid();
        assert_eq!(
            owner(peer, listener.local_addr().unwrap()).unwrap(),
            Some(me)
        );
        drop(client);
    }
}
