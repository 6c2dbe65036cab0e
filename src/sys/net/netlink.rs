//! Links and interface addresses over rtnetlink: list links (index, name,
//! state, hardware address), list, add and delete addresses. No `ip`
//! command is run.

use super::{MacAddr, Subnet};
use crate::ocf::Deadline;
use netlink_packet_core::{
    NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable,
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope, CacheInfo,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkLayerType, LinkMessage, State};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::time::Duration;

/// "Forever" in an address lifetime (`ifa_preferred`/`ifa_valid`).
pub const LIFETIME_FOREVER: u32 = u32::MAX;

/// The operational state of a link (RFC 2863, `IF_OPER_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperState {
    Up,
    Down,
    LowerLayerDown,
    Dormant,
    Testing,
    NotPresent,
    Unknown,
}

impl OperState {
    fn from_netlink(s: State) -> OperState {
        match s {
            State::Up => OperState::Up,
            State::Down => OperState::Down,
            State::LowerLayerDown => OperState::LowerLayerDown,
            State::Dormant => OperState::Dormant,
            State::Testing => OperState::Testing,
            State::NotPresent => OperState::NotPresent,
            _ => OperState::Unknown,
        }
    }
}

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// The Ethernet address, for Ethernet-like links (the ones ARP and
    /// neighbour discovery run on here).
    pub mac: Option<MacAddr>,
    /// `IFF_UP`: administratively up.
    pub admin_up: bool,
    /// `IFF_LOWER_UP`: carrier.
    pub carrier: bool,
    pub oper_state: OperState,
    pub loopback: bool,
    /// `IFF_NOARP`: the link does not resolve addresses (no ARP/ND).
    pub noarp: bool,
}

impl Link {
    /// Whether the link carries traffic: administratively up, and operating
    /// state "up" (or "unknown" with carrier, as drivers that do not report
    /// an operating state show).
    pub fn is_up(&self) -> bool {
        self.admin_up
            && match self.oper_state {
                OperState::Up => true,
                OperState::Unknown => self.carrier,
                _ => false,
            }
    }

    /// Whether ARP / neighbour discovery run on the link (an Ethernet-like
    /// link without `IFF_NOARP`): only then is an address probed for and
    /// announced there.
    pub fn talks_arp(&self) -> bool {
        self.mac.is_some() && !self.noarp
    }

    /// Why the link is not up, for messages ("administratively down", ...).
    pub fn down_reason(&self) -> String {
        if !self.admin_up {
            "administratively down".into()
        } else if !self.carrier {
            "down (no carrier)".into()
        } else {
            format!("down (operating state {:?})", self.oper_state).to_lowercase()
        }
    }

    fn from_message(m: &LinkMessage) -> Option<Link> {
        let mut name = None;
        let mut hw = None;
        let mut oper = OperState::Unknown;
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => name = Some(n.clone()),
                LinkAttribute::Address(b) => hw = Some(b.clone()),
                LinkAttribute::OperState(s) => oper = OperState::from_netlink(*s),
                _ => {}
            }
        }
        let flags = m.header.flags;
        let mac = match (m.header.link_layer_type, hw) {
            (LinkLayerType::Ether, Some(b)) if b.len() == 6 => {
                Some(MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]]))
            }
            _ => None,
        };
        Some(Link {
            index: m.header.index,
            name: name?,
            mac,
            admin_up: flags.contains(LinkFlags::Up),
            carrier: flags.contains(LinkFlags::LowerUp),
            oper_state: oper,
            loopback: flags.contains(LinkFlags::Loopback),
            noarp: flags.contains(LinkFlags::Noarp),
        })
    }
}

/// The kernel's interface name limit (IFNAMSIZ 16, with the NUL).
pub const IFNAMSIZ: usize = 15;

/// Whether `name` can name an interface: at most [`IFNAMSIZ`] characters,
/// not `.` or `..`, no `/` or blank (the kernel's rule), and no `:` (the
/// separator of an IPv4 label).
pub fn check_interface_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= IFNAMSIZ
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "not an interface name (at most {IFNAMSIZ} characters, no '/', ':' or spaces)"
        ))
    }
}

/// Whether the IPv4 label `nic:label` fits the kernel's limit.
pub fn check_label_fits(label: &str, nic: &str) -> Result<(), String> {
    let full = format!("{nic}:{label}");
    if full.len() > IFNAMSIZ {
        return Err(format!(
            "too long: {full} has {} characters, the limit is {IFNAMSIZ}",
            full.len()
        ));
    }
    Ok(())
}

/// Parse `label` as float-ip takes it: the part after `nic:` of an IPv4
/// address's label (`nic` unknown yet when `None`).
pub fn parse_label(label: &str, ip: &IpAddr, nic: Option<&str>) -> Result<String, String> {
    if ip.is_ipv6() {
        return Err(
            "cannot be used with an IPv6 ip: IPv6 addresses have no labels (leave label unset)"
                .into(),
        );
    }
    if label.contains(':') {
        return Err("give only the part after the colon (nfs for eth0:nfs)".into());
    }
    if !label
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        return Err("may contain only letters, digits, '_', '-' and '.'".into());
    }
    // Without nic, the shortest possible interface name is one character.
    check_label_fits(label, nic.unwrap_or("x"))?;
    Ok(label.to_string())
}

/// Parse a preferred lifetime: seconds, or `forever` / `infinity` (`None`).
pub fn parse_lifetime(s: &str) -> Result<Option<u32>, String> {
    if s.eq_ignore_ascii_case("forever") || s.eq_ignore_ascii_case("infinity") {
        return Ok(None);
    }
    match s.parse::<u32>() {
        Ok(n) if n < u32::MAX => Ok(Some(n)),
        _ => Err("neither a number of seconds nor forever".into()),
    }
}

/// An address held by an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    pub link_index: u32,
    /// The address and the prefix length of its subnet.
    pub subnet: Subnet,
    /// The IPv4 label (`eth0`, `eth0:nfs`); IPv6 addresses have none.
    pub label: Option<String>,
    /// IPv6: duplicate address detection has not finished yet.
    pub tentative: bool,
    /// IPv6: duplicate address detection found another holder.
    pub dad_failed: bool,
    /// Preferred lifetime over (not used as a source address).
    pub deprecated: bool,
    /// Added with `IFA_F_NODAD`.
    pub nodad: bool,
    /// IPv4: not the first address of its subnet on the link.
    pub secondary: bool,
    /// Preferred lifetime left in seconds ([`LIFETIME_FOREVER`] = forever).
    pub preferred_lft: u32,
}

impl InterfaceAddress {
    pub fn ip(&self) -> IpAddr {
        self.subnet.addr()
    }

    fn from_message(m: &AddressMessage) -> Option<InterfaceAddress> {
        let (mut local, mut address, mut label) = (None, None, None);
        let mut flags = AddressFlags::from_bits_retain(u32::from(m.header.flags.bits()));
        let mut preferred_lft = LIFETIME_FOREVER;
        for a in &m.attributes {
            match a {
                AddressAttribute::Local(ip) => local = Some(*ip),
                AddressAttribute::Address(ip) => address = Some(*ip),
                AddressAttribute::Label(l) => label = Some(l.clone()),
                AddressAttribute::Flags(f) => flags = *f,
                AddressAttribute::CacheInfo(c) => preferred_lft = c.ifa_preferred,
                _ => {}
            }
        }
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the
        // peer on point-to-point links and the same address otherwise.
        let ip = local.or(address)?;
        Some(InterfaceAddress {
            link_index: m.header.index,
            subnet: Subnet::new(ip, m.header.prefix_len)?,
            label,
            tentative: flags.contains(AddressFlags::Tentative),
            dad_failed: flags.contains(AddressFlags::Dadfailed),
            deprecated: flags.contains(AddressFlags::Deprecated),
            nodad: flags.contains(AddressFlags::Nodad),
            secondary: flags.contains(AddressFlags::Secondary),
            preferred_lft,
        })
    }
}

/// What to add to an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAddress {
    pub link_index: u32,
    pub subnet: Subnet,
    /// IPv4 only: the full label (`eth0:nfs`).
    pub label: Option<String>,
    /// Seconds; `None` = forever. The valid lifetime is always forever.
    pub preferred_lft: Option<u32>,
    /// IPv6: skip duplicate address detection (`IFA_F_NODAD`).
    pub nodad: bool,
}

fn family_of(ip: &IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// A netlink socket of one protocol whose every wait for the kernel's
/// answer is bounded by a deadline: route netlink here, sock_diag for the
/// TCP connection lists ([`super::sockdiag`]).
pub struct Channel {
    sock: Socket,
    seq: u32,
    deadline: Deadline,
}

impl Channel {
    pub fn open(protocol: isize, deadline: &Deadline) -> io::Result<Channel> {
        let mut sock = Socket::new(protocol)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Channel {
            sock,
            seq: 0,
            deadline: *deadline,
        })
    }

    /// Send one request and collect the answers: the messages of a dump,
    /// or nothing for an acknowledged change. A kernel error comes back as
    /// the corresponding `io::Error` (`EEXIST`, `EADDRNOTAVAIL`, `EPERM`).
    pub fn request<M>(&mut self, msg: M, flags: u16) -> io::Result<Vec<M>>
    where
        M: NetlinkSerializable + NetlinkDeserializable + std::fmt::Debug,
    {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock.send(&buf, 0)?;

        let mut out = Vec::new();
        loop {
            let left = self.deadline.remaining();
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no answer from the kernel (netlink)",
                ));
            }
            let ms = left.min(Duration::from_secs(60)).as_millis().max(1) as u16;
            let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let (data, _) = self.sock.recv_from_full()?;
            let mut off = 0;
            while off < data.len() {
                let m: NetlinkMessage<M> = NetlinkMessage::deserialize(&data[off..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = m.header.length as usize;
                let this_seq = m.header.sequence_number;
                if this_seq == seq {
                    match m.payload {
                        NetlinkPayload::Done(_) => return Ok(out),
                        NetlinkPayload::Error(e) => {
                            return match e.code {
                                None => Ok(out),
                                Some(_) => Err(e.to_io()),
                            }
                        }
                        NetlinkPayload::InnerMessage(inner) => out.push(inner),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                off += len;
            }
        }
    }
}

/// A route netlink socket whose every wait for the kernel's answer is
/// bounded by a deadline.
pub struct RouteSocket {
    chan: Channel,
}

impl RouteSocket {
    pub fn open(deadline: &Deadline) -> io::Result<RouteSocket> {
        Ok(RouteSocket {
            chan: Channel::open(NETLINK_ROUTE, deadline)?,
        })
    }

    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.chan.request(msg, flags)
    }

    /// All links of this network namespace.
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let msgs = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_REQUEST | NLM_F_DUMP,
        )?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Link::from_message(l),
                _ => None,
            })
            .collect())
    }

    /// All addresses of one family (IPv4 when `v4`) on every link.
    pub fn addresses(&mut self, v4: bool) -> io::Result<Vec<InterfaceAddress>> {
        let mut req = AddressMessage::default();
        req.header.family = if v4 {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        let msgs = self.request(
            RouteNetlinkMessage::GetAddress(req),
            NLM_F_REQUEST | NLM_F_DUMP,
        )?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => InterfaceAddress::from_message(a),
                _ => None,
            })
            .filter(|a| a.ip().is_ipv4() == v4)
            .collect())
    }

    /// Where `ip` is held on this node (any link).
    pub fn holders_of(&mut self, ip: &IpAddr) -> io::Result<Vec<InterfaceAddress>> {
        Ok(self
            .addresses(ip.is_ipv4())?
            .into_iter()
            .filter(|a| a.ip() == *ip)
            .collect())
    }

    /// Add an address (`NLM_F_EXCL`: `EEXIST` when the link already holds it).
    pub fn add_address(&mut self, a: &NewAddress) -> io::Result<()> {
        let ip = a.subnet.addr();
        let mut m = AddressMessage::default();
        m.header.family = family_of(&ip);
        m.header.prefix_len = a.subnet.prefix_len();
        m.header.scope = AddressScope::Universe;
        m.header.index = a.link_index;
        let mut flags = AddressFlags::empty();
        if a.nodad && ip.is_ipv6() {
            flags |= AddressFlags::Nodad;
            m.header.flags = AddressHeaderFlags::Nodad;
        }
        m.attributes.push(AddressAttribute::Local(ip));
        m.attributes.push(AddressAttribute::Address(ip));
        if ip.is_ipv4() {
            if let Some(b) = a.subnet.broadcast() {
                m.attributes.push(AddressAttribute::Broadcast(b));
            }
            if let Some(l) = &a.label {
                m.attributes.push(AddressAttribute::Label(l.clone()));
            }
        }
        if let Some(p) = a.preferred_lft {
            let mut ci = CacheInfo::default();
            ci.ifa_preferred = p;
            ci.ifa_valid = LIFETIME_FOREVER;
            m.attributes.push(AddressAttribute::CacheInfo(ci));
        }
        if !flags.is_empty() {
            m.attributes.push(AddressAttribute::Flags(flags));
        }
        self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(|_| ())
    }

    /// Delete an address from a link. `Ok(false)` when it was not there.
    pub fn delete_address(&mut self, link_index: u32, subnet: &Subnet) -> io::Result<bool> {
        let ip = subnet.addr();
        let mut m = AddressMessage::default();
        m.header.family = family_of(&ip);
        m.header.prefix_len = subnet.prefix_len();
        m.header.index = link_index;
        m.attributes.push(AddressAttribute::Local(ip));
        if ip.is_ipv6() {
            m.attributes.push(AddressAttribute::Address(ip));
        }
        match self.request(
            RouteNetlinkMessage::DelAddress(m),
            NLM_F_REQUEST | NLM_F_ACK,
        ) {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EADDRNOTAVAIL) | Some(libc::ENOENT) | Some(libc::ENODEV)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_and_labels_within_the_kernels_limit() {
        for ok in ["eth0", "bond0.1234", "fifteen-chars-1"] {
            assert!(check_interface_name(ok).is_ok(), "{ok}");
        }
        for bad in ["eth0:1", "a/b", "e th0", ".", "..", "sixteen-chars-12"] {
            assert!(check_interface_name(bad).is_err(), "{bad}");
        }
        assert!(check_label_fits("nfs", "eth0").is_ok());
        assert_eq!(
            check_label_fits("nfsvip", "bond0.1234").unwrap_err(),
            "too long: bond0.1234:nfsvip has 17 characters, the limit is 15"
        );
    }
}
