//! Is another host using the address? Before a floating address is added,
//! the link is probed for it: ARP probes from 0.0.0.0 for IPv4 (RFC 5227),
//! duplicate address detection solicitations from `::` for IPv6 (RFC
//! 4862). While the kernel runs its own IPv6 duplicate address detection,
//! a [`ClaimWatch`] listens too, to learn *who* holds the address.

use super::arp::ArpPacket;
use super::ndp::{self, NdMessage};
use super::packet::PacketSocket;
use super::{net_error, Link, MacAddr, RouteSocket, Subnet};
use crate::ocf::{Deadline, OcfError, OcfResult};
use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Probes sent, spaced [`PROBE_SPACING`] apart; the answer is awaited until
/// [`PROBE_WINDOW`] after the first. A failover waits for it, so RFC
/// 5227's several seconds are far too long: a holder on the same link
/// answers within milliseconds, and three probes survive a lost frame.
pub const PROBE_COUNT: u32 = 3;
pub const PROBE_SPACING: Duration = Duration::from_millis(100);
pub const PROBE_WINDOW: Duration = Duration::from_millis(300);

/// Listens on one link for another host claiming one address.
pub struct ClaimWatch {
    sock: PacketSocket,
    ip: IpAddr,
    our_mac: MacAddr,
    buf: Vec<u8>,
}

impl ClaimWatch {
    /// Start listening (needs `CAP_NET_RAW`). Only Ethernet-like links
    /// are supported.
    pub fn open(link: &Link, ip: IpAddr) -> io::Result<ClaimWatch> {
        let (sock, our_mac) = PacketSocket::for_neighbours(link, &ip)?;
        Ok(ClaimWatch {
            sock,
            ip,
            our_mac,
            buf: vec![0u8; 2048],
        })
    }

    /// Read frames for up to `wait`; the hardware address of the first
    /// other host found claiming the address.
    pub fn next_claim(&mut self, wait: Duration) -> io::Result<Option<MacAddr>> {
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let Some(frame) = self.sock.recv(&mut self.buf, left)? else {
                if left.is_zero() {
                    return Ok(None);
                }
                continue;
            };
            if frame.outgoing || frame.source == self.our_mac {
                continue;
            }
            let data = &self.buf[..frame.len];
            let claim = match self.ip {
                IpAddr::V4(ip) => ArpPacket::parse(data).and_then(|a| a.claimant(ip, self.our_mac)),
                IpAddr::V6(ip) => {
                    NdMessage::parse(data).and_then(|m| m.claimant(ip, self.our_mac, frame.source))
                }
            };
            if claim.is_some() {
                return Ok(claim);
            }
        }
    }

    /// Ask whether anyone holds the address, without claiming it.
    pub fn send_probe(&self) -> io::Result<()> {
        match self.ip {
            IpAddr::V4(ip) => self.sock.send(
                MacAddr::BROADCAST,
                &ArpPacket::probe(self.our_mac, ip).to_bytes(),
            ),
            IpAddr::V6(ip) => self.sock.send(
                ndp::multicast_mac(ndp::solicited_node(ip)),
                &ndp::dad_solicitation(ip),
            ),
        }
    }
}

/// Probe `link` for another holder of `ip`: [`PROBE_COUNT`] probes, then
/// listen until the window (cut short by `deadline`) ends. The other
/// holder's hardware address, or `None` when nobody answered.
pub fn probe(link: &Link, ip: IpAddr, deadline: &Deadline) -> io::Result<Option<MacAddr>> {
    let mut watch = ClaimWatch::open(link, ip)?;
    let window = deadline.within(PROBE_WINDOW);
    for n in 0..PROBE_COUNT {
        watch.send_probe()?;
        let wait = if n + 1 < PROBE_COUNT {
            PROBE_SPACING.min(window.remaining())
        } else {
            window.remaining()
        };
        if let Some(mac) = watch.next_claim(wait)? {
            return Ok(Some(mac));
        }
        if window.expired() {
            break;
        }
    }
    Ok(None)
}

/// Whether the kernel runs IPv6 duplicate address detection for an
/// address added to `link` without `IFA_F_NODAD`: the kernel's own rule
/// (addrconf_dad_begin): not on loopback or NOARP links, `accept_dad` on
/// for the link or for all, and at least one solicitation to send.
pub fn kernel_runs_dad(link: &Link) -> bool {
    let read = |scope: &str, key: &str| super::sysctl::read("ipv6", scope, key);
    dad_rule(
        link,
        read("all", "accept_dad").unwrap_or(0),
        read(&link.name, "accept_dad").unwrap_or(1),
        read(&link.name, "dad_transmits").unwrap_or(1),
    )
}

fn dad_rule(link: &Link, all_accept: i64, link_accept: i64, transmits: i64) -> bool {
    !link.loopback && !link.noarp && (all_accept > 0 || link_accept > 0) && transmits > 0
}

/// How the kernel's duplicate address detection for a new address ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DadOutcome {
    /// Detection passed (or did not run): the address is usable.
    Usable,
    /// Another host holds the address (its hardware address, when seen).
    Duplicate(Option<MacAddr>),
    /// The address disappeared from the link meanwhile.
    Vanished,
    /// Still tentative at the deadline.
    Unfinished,
}

/// Wait while `ip` on `link_index` is tentative, listening with `watch` (if
/// any) for the host that makes detection fail.
pub fn await_dad(
    rt: &mut RouteSocket,
    link_index: u32,
    ip: IpAddr,
    mut watch: Option<&mut ClaimWatch>,
    deadline: &Deadline,
) -> io::Result<DadOutcome> {
    let mut claimant = None;
    loop {
        let addr = rt
            .holders_of(&ip)?
            .into_iter()
            .find(|a| a.link_index == link_index);
        match addr {
            None => return Ok(DadOutcome::Vanished),
            Some(a) if a.dad_failed => {
                if claimant.is_none() {
                    if let Some(w) = watch.as_deref_mut() {
                        claimant =
                            w.next_claim(Duration::from_millis(50).min(deadline.remaining()))?;
                    }
                }
                return Ok(DadOutcome::Duplicate(claimant));
            }
            Some(a) if !a.tentative => return Ok(DadOutcome::Usable),
            Some(_) => {}
        }
        if deadline.expired() {
            return Ok(DadOutcome::Unfinished);
        }
        let step = Duration::from_millis(50).min(deadline.remaining());
        match watch.as_deref_mut() {
            Some(w) => {
                if let Some(m) = w.next_claim(step)? {
                    claimant.get_or_insert(m);
                }
            }
            None => std::thread::sleep(step),
        }
    }
}

/// The other holder, for messages.
fn who(mac: Option<MacAddr>) -> String {
    match mac {
        Some(m) => format!("host {m}"),
        None => "another host (hardware address not seen)".into(),
    }
}

/// Probe `link` for another holder of `ip` ([`probe`]); an error naming
/// it when one answers.
pub fn refuse_if_held(link: &Link, ip: IpAddr, deadline: &Deadline) -> OcfResult<()> {
    let nic = &link.name;
    let found = probe(link, ip, deadline)
        .map_err(|e| net_error(format_args!("cannot probe {nic} for {ip}"), e))?;
    match found {
        Some(mac) => {
            Err(OcfError::generic(format!(
            "ip {ip} is already in use by {} on {nic} (it answered our {} probe): not adding it",
            who(Some(mac)),
            if ip.is_ipv4() { "ARP" } else { "duplicate address" }
        )))
        }
        None => {
            log::debug!("nobody answered the probes for {ip} on {nic}");
            Ok(())
        }
    }
}

/// Before start adds `ip` to `link`, refuse a live holder: with `check`
/// (check_duplicate) probe the link, IPv4, and IPv6 where the kernel does
/// not run duplicate address detection itself (`nodad`, or off for the
/// link); a probe cut short proves nothing, so none is started that cannot
/// finish by `deadline`. While the kernel does, listen for who answers
/// it: the watch to hand to [`settle_dad`].
pub fn guard(
    link: &Link,
    ip: IpAddr,
    check: bool,
    nodad: bool,
    deadline: &Deadline,
) -> OcfResult<Option<ClaimWatch>> {
    let kernel_dad = ip.is_ipv6() && !nodad && kernel_runs_dad(link);
    if !check {
        log::info!("check_duplicate is off: adding {ip} without probing");
    } else if link.talks_arp() && !kernel_dad {
        if deadline.remaining() < PROBE_WINDOW {
            return Err(super::timed_out(deadline, ip, "before the duplicate probe"));
        }
        refuse_if_held(link, ip, deadline)?;
    }
    if !(kernel_dad && link.talks_arp()) {
        return Ok(None);
    }
    let watch = ClaimWatch::open(link, ip);
    Ok(Some(watch.map_err(|e| {
        net_error(format_args!("cannot listen on {}", link.name), e)
    })?))
}

/// IPv6, after `subnet` was added to `link`: wait until the kernel's
/// duplicate address detection is over ([`await_dad`], listening with
/// `watch`); on a duplicate, or when it does not finish by `deadline`,
/// remove the address again, and name the other host when it is known.
pub fn settle_dad(
    rt: &mut RouteSocket,
    link: &Link,
    subnet: &Subnet,
    mut watch: Option<ClaimWatch>,
    deadline: &Deadline,
) -> OcfResult<()> {
    let (ip, nic) = (subnet.addr(), &link.name);
    let outcome = await_dad(rt, link.index, ip, watch.as_mut(), deadline);
    drop(watch);
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            let _ = rt.delete_address(link.index, subnet);
            return Err(net_error(
                format_args!("cannot follow duplicate address detection of {ip}"),
                e,
            ));
        }
    };
    match outcome {
        DadOutcome::Usable => Ok(()),
        DadOutcome::Duplicate(mac) => {
            let _ = rt.delete_address(link.index, subnet);
            // Not heard while the kernel asked: ask ourselves, now that
            // the address is gone again.
            let mac = mac.or_else(|| {
                link.talks_arp()
                    .then(|| probe(link, ip, deadline).ok().flatten())
                    .flatten()
            });
            Err(OcfError::generic(format!(
                "ip {ip} is already in use by {} on {nic} (duplicate address detection failed): removed it again",
                who(mac)
            )))
        }
        DadOutcome::Vanished => Err(OcfError::generic(format!(
            "ip {ip} disappeared from {nic} during duplicate address detection"
        ))),
        DadOutcome::Unfinished => {
            let _ = rt.delete_address(link.index, subnet);
            Err(OcfError::generic(format!(
                "duplicate address detection for {ip} on {nic} did not finish within the start timeout: removed it again"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::net::OperState;

    fn link(loopback: bool, noarp: bool) -> Link {
        Link {
            index: 2,
            name: "eth0".into(),
            mac: Some(MacAddr([2, 0, 0, 0, 0, 1])),
            admin_up: true,
            carrier: true,
            oper_state: OperState::Up,
            loopback,
            noarp,
        }
    }

    #[test]
    fn when_the_kernel_runs_dad() {
        let eth = link(false, false);
        assert!(dad_rule(&eth, 0, 1, 1));
        assert!(
            dad_rule(&eth, 1, 0, 1),
            "net.ipv6.conf.all.accept_dad turns it on for every link"
        );
        assert!(!dad_rule(&eth, 0, 0, 1));
        assert!(
            !dad_rule(&eth, 1, 1, 0),
            "dad_transmits=0 completes without asking"
        );
        assert!(!dad_rule(&link(true, false), 1, 1, 1));
        assert!(!dad_rule(&link(false, true), 1, 1, 1));
    }
}
