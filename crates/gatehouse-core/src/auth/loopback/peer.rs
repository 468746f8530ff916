//! Who is on the other end of a loopback connection: on Linux, the user that owns the peer's socket, from the
//! kernel's socket tables (`/proc/net/tcp` and `/proc/net/tcp6`).
//!
//! Loopback ports are machine-wide, and the authorization request (its `state`, PKCE challenge and port) can be
//! read by other local users in the browser's command line. Another user could then start their own request with
//! those values, sign in as themselves, and have their browser deliver the code to this listener: a login CSRF
//! (RFC 6749 §10.12). A connection whose socket belongs to another user is therefore refused before a byte of it
//! is read.

use std::net::{IpAddr, SocketAddr};

/// Whether the peer of a connection from `peer` to `local` belongs to this process's user. `None` when that
/// can't be told (not Linux, or the socket tables can't be read).
pub fn same_user(peer: SocketAddr, local: SocketAddr) -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        let me = crate::os::current_uid()?;
        let table = match peer.ip() {
            IpAddr::V4(_) => "/proc/net/tcp",
            IpAddr::V6(_) => "/proc/net/tcp6",
        };
        let text = std::fs::read_to_string(table).ok()?;
        socket_owner(&text, peer, local).map(|owner| owner == me)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (peer, local);
        None
    }
}

/// The uid of the socket whose local address is `peer` and whose remote address is `local`, in a socket table
/// in the kernel's format (`sl local_address rem_address st … uid …`).
fn socket_owner(table: &str, peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    let (peer, local) = (hex_address(peer), hex_address(local));
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (from, to, uid) = (fields.get(1)?, fields.get(2)?, fields.get(7)?);
        (from.eq_ignore_ascii_case(&peer) && to.eq_ignore_ascii_case(&local)).then(|| uid.parse().ok())?
    })
}

/// An address as the kernel's socket tables write it: the address's 32-bit words each in host (little-endian)
/// byte order, in hex, then `:` and the port in hex.
fn hex_address(address: SocketAddr) -> String {
    let words: Vec<u8> = match address.ip() {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    let ip: String = words
        .chunks(4)
        .map(|word| {
            let value = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            format!("{:08X}", value.swap_bytes())
        })
        .collect();
    format!("{ip}:{:04X}", address.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_written_as_the_kernel_writes_them() {
        assert_eq!(hex_address("127.0.0.1:8080".parse().unwrap()), "0100007F:1F90");
        assert_eq!(hex_address("[::1]:443".parse().unwrap()), "00000000000000000000000001000000:01BB");
    }

    #[test]
    fn finds_the_owner_of_the_peers_socket() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
            0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0\n\
            1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1001        0 2 1 0 20 4 30 10 -1\n\
            2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0 20 4 30 10 -1\n";
        let (peer, local) = ("127.0.0.1:50000".parse().unwrap(), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(socket_owner(table, peer, local), Some(1001), "the client's socket, not the listener's side");
        assert_eq!(socket_owner(table, "127.0.0.1:50001".parse().unwrap(), local), None);
    }

    /// A connection this process makes to itself is its own user's.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_connection_from_this_user_is_this_users() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let _client = std::net::TcpStream::connect(local).unwrap();
        let (_, peer) = listener.accept().unwrap();
        assert_eq!(same_user(peer, local), Some(true));
    }
}
