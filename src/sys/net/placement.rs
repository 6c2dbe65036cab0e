//! Where a floating address goes: the interface whose own subnet contains
//! it (the longest matching prefix wins, as routing would choose), unless
//! `nic` names the interface; and the prefix length, from `cidr_netmask` or
//! else from that matching subnet.

use super::{InterfaceAddress, Link, Subnet};
use crate::ocf::{OcfError, OcfResult};
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub link: Link,
    pub prefix_len: u8,
}

/// Choose the interface and prefix length for `ip`. Errors are code 2
/// (this node's interfaces do not fit) and list what is here.
pub fn place(
    ip: IpAddr,
    nic: Option<&str>,
    prefix_len: Option<u8>,
    links: &[Link],
    addrs: &[InterfaceAddress],
) -> OcfResult<Placement> {
    // Only addresses of ip's family matter.
    let addrs: Vec<InterfaceAddress> = addrs
        .iter()
        .filter(|a| a.ip().is_ipv4() == ip.is_ipv4())
        .cloned()
        .collect();
    let name_of = |idx: u32| {
        links
            .iter()
            .find(|l| l.index == idx)
            .map(|l| l.name.as_str())
            .unwrap_or("?")
    };
    let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
    // Subnets that contain ip, excluding ip itself (it may already be up).
    let matching = |a: &&InterfaceAddress| a.ip() != ip && a.subnet.contains(&ip) && !a.dad_failed;
    if let Some(nic) = nic {
        let Some(link) = links.iter().find(|l| l.name == nic) else {
            let mut names: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
            names.sort_unstable();
            return Err(OcfError::args(format!(
                "nic {nic} does not exist on this node (interfaces: {})",
                names.join(", ")
            )));
        };
        let prefix_len = match prefix_len {
            Some(p) => p,
            None => addrs
                .iter()
                .filter(|a| a.link_index == link.index)
                .filter(matching)
                .map(|a| a.subnet.prefix_len())
                .max()
                .ok_or_else(|| {
                    let own: Vec<String> = addrs
                        .iter()
                        .filter(|a| a.link_index == link.index && a.ip() != ip)
                        .map(|a| a.subnet.to_string())
                        .collect();
                    let own = own.join(", ");
                    OcfError::args(format!(
                        "cidr_netmask is needed: no {family} address on nic {nic} has a subnet containing {ip} ({})",
                        if own.is_empty() { format!("{nic} has no {family} address") } else { format!("{nic} has {own}") }
                    ))
                })?,
        };
        return Ok(Placement {
            link: link.clone(),
            prefix_len,
        });
    }
    let on_usable =
        |a: &&InterfaceAddress| links.iter().any(|l| l.index == a.link_index && !l.loopback);
    let candidates: Vec<&InterfaceAddress> =
        addrs.iter().filter(matching).filter(on_usable).collect();
    let Some(longest) = candidates.iter().map(|a| a.subnet.prefix_len()).max() else {
        let here = list(addrs.iter().filter(on_usable), &name_of);
        return Err(OcfError::args(format!(
            "no interface has a subnet containing ip {ip}: set nic (and cidr_netmask) ({})",
            if here.is_empty() {
                format!("no {family} addresses on this node")
            } else {
                format!("{family} addresses here: {here}")
            }
        )));
    };
    let best: Vec<&&InterfaceAddress> = candidates
        .iter()
        .filter(|a| a.subnet.prefix_len() == longest)
        .collect();
    let first = best[0].link_index;
    if best.iter().any(|a| a.link_index != first) {
        return Err(OcfError::args(format!(
            "ip {ip} is in a subnet of more than one interface ({}): set nic to choose",
            list(best.iter().map(|a| **a), &name_of)
        )));
    }
    let link = links
        .iter()
        .find(|l| l.index == first)
        .expect("candidate link exists")
        .clone();
    Ok(Placement {
        link,
        prefix_len: prefix_len.unwrap_or(longest),
    })
}

/// "eth0 192.0.2.1/24, eth1 198.51.100.1/24" (at most eight, then "+N more").
fn list<'a>(
    addrs: impl Iterator<Item = &'a InterfaceAddress>,
    name_of: &dyn Fn(u32) -> &'a str,
) -> String {
    let items: Vec<String> = addrs
        .map(|a| format!("{} {}", name_of(a.link_index), a.subnet))
        .collect();
    crate::ocf::listed(&items, 8)
}

/// The subnet the floating address will have.
pub fn subnet_of(ip: IpAddr, p: &Placement) -> Subnet {
    Subnet::new(ip, p.prefix_len).expect("prefix length checked")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocf::OcfCode;
    use crate::sys::net::{MacAddr, OperState};

    fn link(index: u32, name: &str) -> Link {
        Link {
            index,
            name: name.into(),
            mac: Some(MacAddr([2, 0, 0, 0, 0, index as u8])),
            admin_up: true,
            carrier: true,
            oper_state: OperState::Up,
            loopback: name == "lo",
            noarp: false,
        }
    }

    fn addr(link_index: u32, s: &str) -> InterfaceAddress {
        let (a, p) = s.split_once('/').unwrap();
        InterfaceAddress {
            link_index,
            subnet: Subnet::new(a.parse().unwrap(), p.parse().unwrap()).unwrap(),
            label: None,
            tentative: false,
            dad_failed: false,
            deprecated: false,
            nodad: false,
            secondary: false,
            preferred_lft: u32::MAX,
        }
    }

    fn links() -> Vec<Link> {
        vec![link(1, "lo"), link(2, "eth0"), link(3, "eth1")]
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn detects_interface_and_prefix_from_subnet() {
        let addrs = vec![
            addr(1, "127.0.0.1/8"),
            addr(2, "192.0.2.1/24"),
            addr(3, "198.51.100.1/24"),
            addr(2, "2001:db8::1/64"),
        ];
        let p = place(ip("192.0.2.10"), None, None, &links(), &addrs).unwrap();
        assert_eq!((p.link.name.as_str(), p.prefix_len), ("eth0", 24));
        let p = place(ip("198.51.100.9"), None, Some(28), &links(), &addrs).unwrap();
        assert_eq!((p.link.name.as_str(), p.prefix_len), ("eth1", 28));
        let p = place(ip("2001:db8::10"), None, None, &links(), &addrs).unwrap();
        assert_eq!((p.link.name.as_str(), p.prefix_len), ("eth0", 64));
    }

    #[test]
    fn the_floating_address_itself_does_not_count() {
        // After start, the address is on eth0 as a /32: detection must
        // still use eth0's real subnet.
        let addrs = vec![addr(2, "192.0.2.1/24"), addr(2, "192.0.2.10/32")];
        let p = place(ip("192.0.2.10"), None, None, &links(), &addrs).unwrap();
        assert_eq!(p.prefix_len, 24);
        let addrs = vec![addr(2, "192.0.2.10/24")];
        let e = place(ip("192.0.2.10"), None, None, &links(), &addrs).unwrap_err();
        assert_eq!(e.code, OcfCode::ErrArgs);
    }

    #[test]
    fn longest_prefix_wins_and_ties_are_ambiguous() {
        let addrs = vec![addr(2, "192.0.2.1/24"), addr(3, "192.0.2.65/26")];
        let p = place(ip("192.0.2.70"), None, None, &links(), &addrs).unwrap();
        assert_eq!((p.link.name.as_str(), p.prefix_len), ("eth1", 26));
        let addrs = vec![addr(2, "192.0.2.1/24"), addr(3, "192.0.2.2/24")];
        let e = place(ip("192.0.2.10"), None, None, &links(), &addrs).unwrap_err();
        assert_eq!(e.code, OcfCode::ErrArgs);
        assert!(
            e.reason.contains("eth0 192.0.2.1/24") && e.reason.contains("eth1 192.0.2.2/24"),
            "{e}"
        );
        assert!(e.reason.contains("set nic"), "{e}");
        // Two subnets on the same interface are not ambiguous.
        let addrs = vec![addr(2, "192.0.2.1/24"), addr(2, "192.0.2.2/24")];
        assert_eq!(
            place(ip("192.0.2.10"), None, None, &links(), &addrs)
                .unwrap()
                .link
                .name,
            "eth0"
        );
    }

    #[test]
    fn nothing_matches() {
        let addrs = vec![addr(1, "127.0.0.1/8"), addr(2, "198.51.100.1/24")];
        let e = place(ip("192.0.2.10"), None, None, &links(), &addrs).unwrap_err();
        assert_eq!(e.code, OcfCode::ErrArgs);
        assert!(
            e.reason
                .contains("no interface has a subnet containing ip 192.0.2.10"),
            "{e}"
        );
        assert!(
            e.reason.contains("eth0 198.51.100.1/24") && !e.reason.contains("127.0.0.1"),
            "{e}"
        );
        let e = place(ip("2001:db8::10"), None, None, &links(), &addrs).unwrap_err();
        assert!(e.reason.contains("no IPv6 addresses"), "{e}");
    }

    #[test]
    fn given_nic() {
        let addrs = vec![addr(2, "198.51.100.1/24")];
        let e = place(ip("192.0.2.10"), Some("eth9"), None, &links(), &addrs).unwrap_err();
        assert_eq!(e.code, OcfCode::ErrArgs);
        assert!(
            e.reason.contains("nic eth9 does not exist") && e.reason.contains("eth0, eth1, lo"),
            "{e}"
        );
        let e = place(ip("192.0.2.10"), Some("eth0"), None, &links(), &addrs).unwrap_err();
        assert!(
            e.reason.contains("cidr_netmask is needed") && e.reason.contains("198.51.100.1/24"),
            "{e}"
        );
        let p = place(ip("192.0.2.10"), Some("eth1"), Some(24), &links(), &addrs).unwrap();
        assert_eq!((p.link.name.as_str(), p.prefix_len), ("eth1", 24));
        let addrs = vec![addr(3, "192.0.2.1/25")];
        let p = place(ip("192.0.2.10"), Some("eth1"), None, &links(), &addrs).unwrap();
        assert_eq!(p.prefix_len, 25);
    }
}
