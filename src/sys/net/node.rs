//! This node's links and addresses of one family: the view float-ip's
//! start, stop and monitor decide from, and the removal of a floating
//! address from every interface that holds it.

use super::placement::{subnet_of, Placement};
use super::{net_error, sysctl, InterfaceAddress, Link, NewAddress, RouteSocket, Subnet};
use crate::ocf::{Deadline, OcfError, OcfResult};
use std::net::IpAddr;

/// This node's links and its addresses of one family, read once; the
/// netlink socket stays open for the changes that follow.
pub struct NodeView {
    pub rt: RouteSocket,
    pub links: Vec<Link>,
    pub addrs: Vec<InterfaceAddress>,
}

impl NodeView {
    /// The links and the addresses of `ip`'s family.
    pub fn read(deadline: &Deadline, ip: &IpAddr) -> OcfResult<NodeView> {
        let mut rt = RouteSocket::open(deadline)
            .map_err(|e| net_error("cannot open a netlink socket", e))?;
        let links = rt
            .links()
            .map_err(|e| net_error("cannot list interfaces", e))?;
        let addrs = rt
            .addresses(ip.is_ipv4())
            .map_err(|e| net_error("cannot list addresses", e))?;
        Ok(NodeView { rt, links, addrs })
    }

    pub fn link(&self, index: u32) -> Option<&Link> {
        self.links.iter().find(|l| l.index == index)
    }

    /// The name of link `index` ("" when it vanished).
    pub fn name_of(&self, index: u32) -> String {
        self.link(index).map(|l| l.name.clone()).unwrap_or_default()
    }

    /// Where `ip` is held on this node.
    pub fn holders(&self, ip: &IpAddr) -> Vec<&InterfaceAddress> {
        self.addrs.iter().filter(|a| a.ip() == *ip).collect()
    }

    /// Where monitor finds `ip`: on `nic` when one is given, else on the
    /// first interface holding it. Not held here: not running (7); held
    /// elsewhere than on `nic`: failed (1).
    pub fn held_on(&self, ip: IpAddr, nic: Option<&str>) -> OcfResult<&InterfaceAddress> {
        let held = self.holders(&ip);
        let Some(first) = held.first() else {
            return Err(OcfError::not_running(format!(
                "ip {ip} is not on this node"
            )));
        };
        let Some(nic) = nic else {
            return Ok(first);
        };
        match held.iter().find(|a| self.name_of(a.link_index) == nic) {
            Some(a) => Ok(a),
            None => Err(OcfError::generic(format!(
                "ip {ip} is on interface {}, not on nic {nic}",
                self.name_of(first.link_index)
            ))),
        }
    }

    /// Add `new` to its link; one that appeared there meanwhile is taken
    /// as added.
    pub fn add(&mut self, new: &NewAddress) -> OcfResult<()> {
        let (ip, subnet) = (new.subnet.addr(), new.subnet);
        let nic = self.name_of(new.link_index);
        match self.rt.add_address(new) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                log::info!("{ip} appeared on {nic} meanwhile")
            }
            Err(e) => return Err(net_error(format_args!("cannot add {subnet} to {nic}"), e)),
        }
        let alias = new
            .label
            .as_deref()
            .map(|l| format!(" as {l}"))
            .unwrap_or_default();
        log::info!("added {subnet} to {nic}{alias}");
        Ok(())
    }

    /// Remove `held` (the addresses of one IP) from their links, keeping
    /// the other IPv4 addresses of their subnets (promote_secondaries);
    /// then check that the IP is gone from every link.
    pub fn remove(&mut self, ip: IpAddr, held: &[InterfaceAddress]) -> OcfResult<()> {
        for a in held {
            let name = self.name_of(a.link_index);
            if drags_secondaries(a, &self.addrs) {
                match sysctl::ensure_promote_secondaries(&name) {
                    Ok(true) => log::info!(
                        "set net.ipv4.conf.{name}.promote_secondaries=1 so that removing {} keeps the other addresses of its subnet",
                        a.subnet
                    ),
                    Ok(false) => {}
                    Err(e) => log::warn!(
                        "cannot set net.ipv4.conf.{name}.promote_secondaries=1 ({e}): removing {} also removes the other addresses of its subnet",
                        a.subnet
                    ),
                }
            }
            if self
                .rt
                .delete_address(a.link_index, &a.subnet)
                .map_err(|e| net_error(format_args!("cannot remove {} from {name}", a.subnet), e))?
            {
                log::info!("removed {} from {name}", a.subnet);
            }
        }
        let left = self
            .rt
            .holders_of(&ip)
            .map_err(|e| net_error("cannot list addresses", e))?;
        if let Some(a) = left.first() {
            return Err(OcfError::generic(format!(
                "ip {ip} is still on interface index {} after removal",
                a.link_index
            )));
        }
        Ok(())
    }
}

/// Whether removing `a` would, by the kernel's default, also remove the
/// other IPv4 addresses of its subnet on its link (it is their primary).
fn drags_secondaries(a: &InterfaceAddress, all: &[InterfaceAddress]) -> bool {
    a.ip().is_ipv4()
        && !a.secondary
        && all.iter().any(|b| {
            b.link_index == a.link_index
                && b.ip() != a.ip()
                && b.secondary
                && b.subnet.prefix_len() == a.subnet.prefix_len()
                && a.subnet.contains(&b.ip())
        })
}

/// Whether `addr`, as monitor found it, serves: its link (`link`, `None`
/// when it vanished) up, no duplicate detected, its label `want` (the
/// full IPv4 label, when one is configured). Failures are code 1.
pub fn check_usable<'a>(
    link: Option<&'a Link>,
    addr: &InterfaceAddress,
    want: Option<&str>,
) -> OcfResult<&'a Link> {
    let ip = addr.ip();
    let Some(link) = link else {
        return Err(OcfError::generic(format!(
            "ip {ip} is on an interface that vanished"
        )));
    };
    let nic = &link.name;
    if !link.is_up() {
        return Err(OcfError::generic(format!(
            "nic {nic} holding {ip} is {}",
            link.down_reason()
        )));
    }
    if addr.dad_failed {
        return Err(OcfError::generic(format!(
            "ip {ip} on {nic}: duplicate address detection failed (another host holds it)"
        )));
    }
    if let Some(want) = want {
        if addr.label.as_deref() != Some(want) {
            return Err(OcfError::generic(format!(
                "ip {ip} on {nic} has label {}, expected {want}",
                addr.label.as_deref().unwrap_or("(none)")
            )));
        }
    }
    if addr.tentative {
        log::info!("{ip} on {nic} is still tentative (duplicate address detection running)");
    }
    Ok(link)
}

/// Where start puts the address: the interface, the subnet, the label.
pub struct Target {
    pub ip: IpAddr,
    pub link: Link,
    pub subnet: Subnet,
    /// The full IPv4 label (`eth0:nfs`); IPv6 addresses have none.
    pub label: Option<String>,
}

impl Target {
    /// `ip` on the placement's interface, with its full IPv4 label
    /// (`eth0:nfs`; ignored for IPv6, whose addresses have none).
    pub fn new(ip: IpAddr, label: Option<String>, placement: Placement) -> Target {
        let label = label.filter(|_| ip.is_ipv4());
        Target {
            ip,
            subnet: subnet_of(ip, &placement),
            link: placement.link,
            label,
        }
    }

    /// Whether the address is already up as wanted (start is idempotent).
    /// Refuses when another interface of this node holds it; removes it
    /// when it is here but unusable (failed DAD) or wrongly labelled.
    pub fn already_up(&self, view: &mut NodeView) -> OcfResult<bool> {
        let (ip, nic) = (self.ip, &self.link.name);
        let held: Vec<InterfaceAddress> = view.holders(&ip).into_iter().cloned().collect();
        if let Some(other) = held.iter().find(|a| a.link_index != self.link.index) {
            let name = view.name_of(other.link_index);
            return Err(OcfError::generic(format!(
                "ip {ip} is already on interface {name} of this node, not on nic {nic}: stop the resource (which removes it) or fix nic"
            )));
        }
        let Some(mine) = held.iter().find(|a| a.link_index == self.link.index) else {
            return Ok(false);
        };
        let label_ok = self.label.is_none() || mine.label == self.label;
        if !mine.dad_failed && label_ok {
            if mine.subnet.prefix_len() != self.subnet.prefix_len() {
                log::warn!(
                    "{ip} is already on {nic} as {}, not /{}",
                    mine.subnet,
                    self.subnet.prefix_len()
                );
            }
            log::info!("{ip} is already on {nic}");
            return Ok(true);
        }
        let why = if label_ok {
            "its duplicate address detection failed"
        } else {
            "with the wrong label"
        };
        log::info!("{ip} is on {nic} but {why}: adding it again");
        view.rt
            .delete_address(self.link.index, &mine.subnet)
            .map_err(|e| net_error(format_args!("cannot remove {} from {nic}", mine.subnet), e))?;
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::net::Subnet;

    fn addr(link_index: u32, s: &str, len: u8, secondary: bool) -> InterfaceAddress {
        InterfaceAddress {
            link_index,
            subnet: Subnet::new(s.parse().unwrap(), len).unwrap(),
            label: None,
            tentative: false,
            dad_failed: false,
            deprecated: false,
            nodad: false,
            secondary,
            preferred_lft: super::super::netlink::LIFETIME_FOREVER,
        }
    }

    #[test]
    fn an_address_serves_on_an_up_link_undisputed_and_labelled() {
        use crate::sys::net::OperState;
        let up = Link {
            index: 2,
            name: "eth0".into(),
            mac: Some(crate::sys::net::MacAddr([2, 0, 0, 0, 0, 1])),
            admin_up: true,
            carrier: true,
            oper_state: OperState::Up,
            loopback: false,
            noarp: false,
        };
        let mut a = addr(2, "192.0.2.10", 24, false);
        a.label = Some("eth0:nfs".into());
        assert_eq!(check_usable(Some(&up), &a, Some("eth0:nfs")).unwrap(), &up);
        assert!(check_usable(Some(&up), &a, None).is_ok());
        let reason = |link: Option<&Link>, a: &InterfaceAddress, want| {
            check_usable(link, a, want).unwrap_err().reason
        };
        assert_eq!(
            reason(None, &a, None),
            "ip 192.0.2.10 is on an interface that vanished"
        );
        let down = Link {
            admin_up: false,
            ..up.clone()
        };
        assert_eq!(
            reason(Some(&down), &a, None),
            "nic eth0 holding 192.0.2.10 is administratively down"
        );
        assert_eq!(
            reason(Some(&up), &a, Some("eth0:vip")),
            "ip 192.0.2.10 on eth0 has label eth0:nfs, expected eth0:vip"
        );
        a.dad_failed = true;
        assert!(reason(Some(&up), &a, None).contains("duplicate address detection failed"));
    }

    #[test]
    fn a_primary_drags_the_secondaries_of_its_subnet_on_its_link() {
        let primary = addr(2, "192.0.2.10", 24, false);
        let all = vec![
            primary.clone(),
            addr(2, "192.0.2.11", 24, true),
            addr(3, "198.51.100.1", 24, false),
        ];
        assert!(drags_secondaries(&primary, &all));
        assert!(
            !drags_secondaries(&all[1], &all),
            "a secondary drags nothing"
        );
        // alone in its subnet, or the others elsewhere or of another length
        let other_link = vec![primary.clone(), addr(3, "192.0.2.11", 24, true)];
        assert!(!drags_secondaries(&primary, &other_link));
        let other_len = vec![primary.clone(), addr(2, "192.0.2.11", 25, true)];
        assert!(!drags_secondaries(&primary, &other_len));
        let v6 = addr(2, "2001:db8::10", 64, false);
        assert!(!drags_secondaries(&v6, std::slice::from_ref(&v6)));
    }
}
