//! TCP sockets of this network namespace, from the kernel's sock_diag
//! netlink interface (what `ss` reads): the established connections to a
//! local address, and the ports something listens on. No program is run.

use super::netlink::Channel;
use super::tickle::Connection;
use crate::ocf::Deadline;
use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, SocketAddr};

/// One TCP socket as the kernel lists it: local and remote ends.
struct Listed {
    local: SocketAddr,
    remote: SocketAddr,
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, a dual-stack socket's
/// view of an IPv4 peer) as the IPv4 address it is.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn dump(chan: &mut Channel, family: u8, states: StateFlags) -> io::Result<Vec<Listed>> {
    let socket_id = if family == AF_INET {
        SocketId::new_v4()
    } else {
        SocketId::new_v6()
    };
    let req = SockDiagMessage::InetRequest(InetRequest {
        family,
        protocol: IPPROTO_TCP,
        extensions: ExtensionFlags::empty(),
        states,
        socket_id,
    });
    let answers = chan.request(req, NLM_F_REQUEST | NLM_F_DUMP)?;
    Ok(answers
        .into_iter()
        .filter_map(|m| match m {
            SockDiagMessage::InetResponse(r) => {
                let id = &r.header.socket_id;
                Some(Listed {
                    local: SocketAddr::new(unmapped(id.source_address), id.source_port),
                    remote: SocketAddr::new(unmapped(id.destination_address), id.destination_port),
                })
            }
            _ => None,
        })
        .collect())
}

/// The families whose sockets can carry `ip`: IPv4 addresses also appear,
/// mapped, on dual-stack IPv6 sockets.
fn families(ip: &IpAddr) -> &'static [u8] {
    if ip.is_ipv4() {
        &[AF_INET, AF_INET6]
    } else {
        &[AF_INET6]
    }
}

/// The established TCP connections whose local address is `ip`, sorted,
/// without duplicates.
pub fn established_to(ip: IpAddr, deadline: &Deadline) -> io::Result<Vec<Connection>> {
    let mut chan = Channel::open(NETLINK_SOCK_DIAG, deadline)?;
    let mut out = BTreeSet::new();
    for &family in families(&ip) {
        for s in dump(&mut chan, family, StateFlags::ESTABLISHED)? {
            if s.local.ip() == ip {
                out.insert(Connection {
                    local: s.local,
                    remote: s.remote,
                });
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// The TCP ports something listens on for `ip`: on `ip` itself or on the
/// wildcard address of its family (nfsd's way).
pub fn listening_ports(ip: IpAddr, deadline: &Deadline) -> io::Result<BTreeSet<u16>> {
    let mut chan = Channel::open(NETLINK_SOCK_DIAG, deadline)?;
    let mut out = BTreeSet::new();
    for &family in families(&ip) {
        for s in dump(&mut chan, family, StateFlags::LISTEN)? {
            let l = s.local.ip();
            // An IPv6 wildcard listener takes IPv4 too unless it is v6-only,
            // which the dump does not say: counting it errs towards "yes".
            if l == ip || l.is_unspecified() {
                out.insert(s.local.port());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    #[test]
    fn lists_a_loopback_connection_and_its_listener() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_s, _) = l.accept().unwrap();
        let d = Deadline::after(Duration::from_secs(5));
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let conns = established_to(lo, &d).unwrap();
        let mine = Connection {
            local: SocketAddr::new(lo, port),
            remote: c.local_addr().unwrap(),
        };
        assert!(conns.contains(&mine), "{mine:?} not in {conns:?}");
        // the client's end has the local address too, seen from its side
        assert!(conns.iter().any(|k| k.local == c.local_addr().unwrap()));
        assert!(listening_ports(lo, &d).unwrap().contains(&port));
        let other: IpAddr = "192.0.2.77".parse().unwrap();
        assert!(established_to(other, &d).unwrap().is_empty());
    }

    #[test]
    fn mapped_addresses_are_ipv4() {
        let m: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(unmapped(m), "192.0.2.1".parse::<IpAddr>().unwrap());
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(unmapped(v6), v6);
    }
}
