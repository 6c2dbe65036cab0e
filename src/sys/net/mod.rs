//! Addresses over netlink and their announcements: gratuitous ARP, unsolicited NA, duplicate probes (float-ip).
//!
//! - [`netlink`]: links and interface addresses (list, add, delete).
//! - [`node`]: this node's links and addresses of one family, as start,
//!   stop and monitor see them, and the removal of a floating address.
//! - [`subnet`]: address/prefix arithmetic and netmask parsing.
//! - [`placement`]: which interface (and prefix length) a floating address
//!   belongs on.
//! - [`packet`]: link-layer sockets for ARP and neighbour discovery.
//! - [`arp`] and [`ndp`]: the ARP and IPv6 neighbour discovery messages.
//! - [`duplicate`]: probing for another holder of an address, and watching
//!   for one while the kernel runs its own duplicate address detection.
//! - [`sysctl`]: the per-interface kernel settings that matter here.
//! - [`announce`]: gratuitous ARP / unsolicited neighbour advertisements,
//!   and the detached announcer that sends the later ones (and the later
//!   tickle rounds).
//! - [`sockdiag`]: the TCP connections and listeners of this node (netlink
//!   sock_diag).
//! - [`tickle`]: the recorded connections of a floating address (written
//!   at monitor and stop, read at start), and the tickle ACKs and their
//!   rounds that make their clients reconnect at once after a move.

pub mod announce;
pub mod arp;
pub mod duplicate;
pub mod ndp;
pub mod netlink;
pub mod node;
pub mod packet;
pub mod placement;
pub mod sockdiag;
pub mod subnet;
pub mod sysctl;
pub mod tickle;

pub use netlink::{InterfaceAddress, Link, NewAddress, OperState, RouteSocket};
pub use node::NodeView;
pub use subnet::Subnet;

use crate::ocf::{Deadline, OcfError};
use std::net::IpAddr;
use std::{fmt, io};

/// A start that ran out of time (`deadline`) at `when`: what was done and
/// what was not.
pub fn timed_out(deadline: &Deadline, ip: IpAddr, when: &str) -> OcfError {
    OcfError::generic(format!(
        "start timed out (timeout {:.1}s) {when}: nothing further was changed for ip {ip}",
        deadline.total().as_secs_f64()
    ))
}

/// A netlink or packet-socket failure: 4 when it is a matter of
/// privileges, else 1.
pub fn net_error(what: impl fmt::Display, e: io::Error) -> OcfError {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => OcfError::perm(format!(
            "{what}: {e} (float-ip needs root: CAP_NET_ADMIN and CAP_NET_RAW)"
        )),
        _ => OcfError::generic(format!("{what}: {e}")),
    }
}

/// An Ethernet (link-layer) address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    pub fn from_slice(b: &[u8]) -> Option<MacAddr> {
        let a: [u8; 6] = b.get(..6)?.try_into().ok()?;
        Some(MacAddr(a))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_display() {
        assert_eq!(
            MacAddr([0x02, 0, 0xab, 0x10, 0xff, 1]).to_string(),
            "02:00:ab:10:ff:01"
        );
        assert_eq!(MacAddr::from_slice(&[1, 2, 3]), None);
    }
}
