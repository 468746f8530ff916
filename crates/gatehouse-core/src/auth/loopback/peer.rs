//! Who is on the other end of a loopback connection: on Linux, the user that owns the peer's socket, from the
//! kernel's socket tables (`/proc/net/tcp` and `/proc/net/tcp6`).
//!
//! Loopback ports are machine-wide, and the authorization request (its `state`, PKCE challenge and port) can be
//! read by other local users in the browser's command line. Another user could then start their own request with
//! those values, sign in as themselves, and have their browser deliver the code to this listener: a login CSRF
//! (RFC 6749 §10.12, RFC 9700 §4.7). A connection is therefore served only when its socket is shown to be this
//! user's, before a byte of it is read.
//!
//! The rule, as everywhere in Gatehouse: an answer that can't be interpreted refuses. A peer that appears in
//! neither table (it reset the connection before the lookup, or the tables can't be read), one whose socket is
//! orphaned (no inode, so no owner), or one listed as another user's, is closed unread.

use std::io::BufRead;
use std::net::{IpAddr, SocketAddr};

/// Whether the peer of a connection from `peer` to `local` is shown to belong to this process's user.
///
/// On Linux, `false` unless a live socket of this user is found for the connection. A client may connect to an
/// IPv4 listener from an IPv6 socket (`[::ffff:127.0.0.1]`, which `accept` reports as `127.0.0.1`); the kernel
/// lists such a socket only in `/proc/net/tcp6`, so both tables are searched.
///
/// Elsewhere there is no such lookup, and the connection is served: the README says so.
pub fn is_this_users(peer: SocketAddr, local: SocketAddr) -> bool {
    #[cfg(target_os = "linux")]
    {
        let me = crate::os::current_uid();
        let mut owners = Vec::new();
        let mut read = 0;
        for (table, peer, local) in candidates(peer, local) {
            // A kernel without IPv6 has no tcp6 table, and so no socket listed there.
            let Ok(file) = std::fs::File::open(table) else { continue };
            read += 1;
            let lines = std::io::BufReader::new(file).lines().map_while(Result::ok);
            owners.extend(socket_owners(lines, peer, local));
        }
        read > 0 && decide(&owners, me)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (peer, local);
        true
    }
}

/// The tables to search for the peer's socket, with the addresses as that table would list them.
fn candidates(peer: SocketAddr, local: SocketAddr) -> Vec<(&'static str, SocketAddr, SocketAddr)> {
    let mapped = |address: SocketAddr| match address.ip() {
        IpAddr::V4(ip) => SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), address.port()),
        IpAddr::V6(_) => address,
    };
    match (peer.ip(), local.ip()) {
        (IpAddr::V4(_), _) | (_, IpAddr::V4(_)) => {
            vec![("/proc/net/tcp", peer, local), ("/proc/net/tcp6", mapped(peer), mapped(local))]
        }
        (IpAddr::V6(_), IpAddr::V6(_)) => vec![("/proc/net/tcp6", peer, local)],
    }
}

/// The owners of the sockets whose local address is `peer` and whose remote address is `local`, in a socket
/// table in the kernel's format (`sl local_address rem_address st queues timer retrnsmt uid timeout inode …`):
/// `None` for a row with no inode (an orphaned or closing socket, whose uid means nothing).
fn socket_owners(
    lines: impl Iterator<Item = impl AsRef<str>>,
    peer: SocketAddr,
    local: SocketAddr,
) -> Vec<Option<u32>> {
    let (peer, local) = (hex_address(peer), hex_address(local));
    lines
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.as_ref().split_whitespace().collect();
            let (from, to) = (fields.get(1)?, fields.get(2)?);
            if !(from.eq_ignore_ascii_case(&peer) && to.eq_ignore_ascii_case(&local)) {
                return None;
            }
            let live = fields.get(9).and_then(|inode| inode.parse::<u64>().ok()).is_some_and(|inode| inode != 0);
            Some(fields.get(7).and_then(|uid| uid.parse().ok()).filter(|_| live))
        })
        .collect()
}

/// This user's connection only if the peer was found, and every row found for it is a live socket of `me`.
fn decide(owners: &[Option<u32>], me: u32) -> bool {
    !owners.is_empty() && owners.iter().all(|owner| *owner == Some(me))
}

/// An address as the kernel's socket tables write it: each 32-bit word of the address as the kernel holds it
/// (network byte order) printed as a host-order number in hex, then `:` and the port in hex. On a little-endian
/// host `127.0.0.1` is `0100007F`; on a big-endian one, `7F000001`.
fn hex_address(address: SocketAddr) -> String {
    let octets: Vec<u8> = match address.ip() {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    let ip: String = octets
        .chunks(4)
        .map(|word| format!("{:08X}", u32::from_ne_bytes([word[0], word[1], word[2], word[3]])))
        .collect();
    format!("{ip}:{:04X}", address.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";

    fn owners(table: &str, peer: &str, local: &str) -> Vec<Option<u32>> {
        socket_owners(table.lines(), peer.parse().unwrap(), local.parse().unwrap())
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn addresses_are_written_as_the_kernel_writes_them() {
        assert_eq!(hex_address("127.0.0.1:8080".parse().unwrap()), "0100007F:1F90");
        assert_eq!(hex_address("[::1]:443".parse().unwrap()), "00000000000000000000000001000000:01BB");
        assert_eq!(hex_address("[::ffff:127.0.0.1]:50000".parse().unwrap()), "0000000000000000FFFF00000100007F:C350");
    }

    #[test]
    fn finds_the_owner_of_the_peers_socket() {
        let table = format!(
            "{HEAD}\n\
            0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0\n\
            1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1001        0 2 1 0 20 4 30 10 -1\n\
            2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0 20 4 30 10 -1\n"
        );
        let local = "127.0.0.1:8080";
        assert_eq!(owners(&table, "127.0.0.1:50000", local), [Some(1001)], "the client's socket, not the listener's");
        assert!(owners(&table, "127.0.0.1:50001", local).is_empty());
    }

    /// What can't be shown to be this user's is refused: a peer in no table (reset before the lookup, or an
    /// IPv6 socket looked for in the IPv4 table only), an orphaned socket, or another user's.
    #[test]
    fn an_owner_that_cannot_be_found_is_refused() {
        let me = 1000;
        assert!(decide(&[Some(me)], me));
        assert!(!decide(&[], me), "not found");
        assert!(!decide(&[None], me), "no inode");
        assert!(!decide(&[Some(1001)], me), "another user's");
        assert!(!decide(&[Some(me), Some(1001)], me), "any doubt");
        // Orphaned sockets are listed with inode 0 (and uid 0): never root's, never anybody's.
        let table = format!(
            "{HEAD}\n\
            1: 0100007F:C350 0100007F:1F90 04 00000000:00000000 00:00000000 00000000     0        0 0 1 0 20 4 30 10 -1\n"
        );
        #[cfg(target_endian = "little")]
        assert_eq!(owners(&table, "127.0.0.1:50000", "127.0.0.1:8080"), [None]);
    }

    /// An IPv4-mapped client of an IPv4 listener is looked for in the IPv6 table, under its mapped address.
    #[test]
    fn a_mapped_client_is_looked_for_in_both_tables() {
        let (peer, local) = ("127.0.0.1:50000".parse().unwrap(), "127.0.0.1:8080".parse().unwrap());
        let searched = candidates(peer, local);
        assert!(searched.iter().any(|(table, p, l)| {
            *table == "/proc/net/tcp6" && p.to_string() == "[::ffff:127.0.0.1]:50000" && l.port() == 8080
        }));
        assert!(searched.iter().any(|(table, p, _)| *table == "/proc/net/tcp" && *p == peer));
    }

    /// Connections this process makes to itself are its own user's, from an IPv4 socket and from an IPv6 socket
    /// to the mapped address alike.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_connection_from_this_user_is_this_users() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let _client = std::net::TcpStream::connect(local).unwrap();
        let (_, peer) = listener.accept().unwrap();
        assert!(is_this_users(peer, local));
        let mapped = SocketAddr::new(IpAddr::V6(std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped()), local.port());
        if let Ok(_client6) = std::net::TcpStream::connect(mapped) {
            let (_, peer) = listener.accept().unwrap();
            assert!(peer.is_ipv4(), "accept reports {peer}");
            assert!(is_this_users(peer, local), "the IPv6 socket of this user, found in /proc/net/tcp6");
        }
    }
}
