//! float-ip: the floating address NFS clients mount from (IPaddr2's
//! parameter names, portblock's `tickle_dir`). See metadata/float-ip.xml
//! for the administrator's view. The mechanism is in `hanfs::sys::net`:
//! placement, duplicate probes, announcements, connection tickles.
//!
//! start:   find the interface → refuse if the link is down or another
//!          interface here holds the address → read the recorded
//!          connections → probe the link for another holder
//!          (check_duplicate) → add over netlink → (IPv6) wait out the
//!          kernel's duplicate address detection → first announcement and
//!          first tickle → the rest from a detached announcer recorded in
//!          the state file.
//! monitor: on nic and link up → 0; absent → 7; link down, wrong
//!          interface, wrong label, duplicate detected → 1; records the
//!          connections for the next node.
//! stop:    kill the announcer, record the connections, remove the address
//!          from every interface.

use hanfs::ocf::{self, Action, Agent, Ctx, OcfError, OcfResult, Params};
use hanfs::sys::fsfile;
use hanfs::sys::net::announce;
use hanfs::sys::net::duplicate;
use hanfs::sys::net::netlink::{
    check_interface_name, check_label_fits, parse_label, parse_lifetime,
};
use hanfs::sys::net::node::{self, Target};
use hanfs::sys::net::placement::{place, Placement};
use hanfs::sys::net::subnet::{self, parse_floating_ip, parse_prefix_len};
use hanfs::sys::net::sysctl;
use hanfs::sys::net::tickle;
use hanfs::sys::net::{self as net, InterfaceAddress, NewAddress, NodeView};
use hanfs::sys::nfsd::mounts;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

struct FloatIp;

impl Agent for FloatIp {
    type Config = Config;
    const NAME: &'static str = "float-ip";
    const METADATA: &'static str = include_str!("../metadata/float-ip.xml");

    fn configure(p: &Params) -> OcfResult<Config> {
        configure(p)
    }

    fn validate(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        resolve(ctx, cfg)?;
        if let Some(dir) = &cfg.tickle_dir {
            // On the root file system it is local to this node: the node
            // taking over cannot read what this one recorded.
            if mounts::on_root_fs(dir) {
                log::warn!(
                    "tickle_dir {} is on the root file system, not on shared storage: the node taking over cannot tickle the clients",
                    dir.display()
                );
            }
        }
        Ok(())
    }

    fn needs_root(action: &Action) -> Option<&'static str> {
        (*action == Action::Start).then_some("the agent adds addresses and sends ARP/ND")
    }

    fn start(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        let ip = cfg.ip;
        // Where the address goes: the interface, which must be up.
        let (mut view, placement) = resolve(ctx, cfg)?;
        let label = cfg.full_label(&placement.link.name);
        let target = Target::new(ip, label, placement);
        let (link, nic) = (&target.link, &target.link.name);
        if !link.is_up() {
            return Err(OcfError::generic(format!(
                "nic {nic} is {}: not adding {ip}",
                link.down_reason()
            )));
        }
        // Already up as wanted: nothing to do (another interface holding
        // it is refused; a failed or mislabelled copy here is removed).
        if target.already_up(&mut view)? {
            if !ctx.state_file().exists() {
                // Not started by this resource since the last reboot: set up
                // outside the cluster (network configuration, by hand)? Then
                // another node may bring it up too, and stop will remove it.
                log::warn!(
                    "{ip} was already on {nic} before this resource started it; it should be managed by the cluster only"
                );
                announce::record_announcer(&ctx.state_file(), None);
            }
            return Ok(());
        }

        // 1. The connections the previous holder recorded, read before the
        //    address is added: the shared storage's latency must not come
        //    between the address and its first announcement.
        let tickles = match &cfg.tickle_dir {
            Some(dir) => tickle::recorded_connections(dir, ip, &ctx.deadline)?,
            None => Vec::new(),
        };

        // 2. Refuse a live holder: probe the link (IPv4, and IPv6 where the
        //    kernel does not run duplicate address detection itself); while
        //    the kernel does (IPv6), listen for who answers it.
        let (check, nodad) = (cfg.check_duplicate, cfg.nodad);
        let watch = duplicate::guard(link, ip, check, nodad, &ctx.deadline)?;

        // 3. Add the address; IPv6: it is usable only once the kernel's
        //    duplicate address detection passed (else it is removed again).
        if ctx.deadline.expired() {
            return Err(net::timed_out(&ctx.deadline, ip, "before adding it"));
        }
        view.add(&NewAddress {
            link_index: link.index,
            subnet: target.subnet,
            label: target.label.clone(),
            preferred_lft: cfg.preferred_lft,
            nodad: cfg.nodad,
        })?;
        if ip.is_ipv6() && !cfg.nodad {
            duplicate::settle_dad(&mut view.rt, link, &target.subnet, watch, &ctx.deadline)?;
        }
        if !tickles.is_empty() {
            tickle::warn_unserved(ip, &tickles, &ctx.deadline);
        }
        if ctx.deadline.expired() {
            // Up, but late: nothing more is changed (stop removes it).
            let when = "after adding it, before announcing it";
            return Err(net::timed_out(&ctx.deadline, ip, when));
        }

        // 4. Announce it, and right after the first announcement tickle the
        //    recorded connections; the other announcements and tickle
        //    rounds, and the recording of the clients' new connections,
        //    come from a detached follow-up, recorded so that stop can end
        //    it.
        let announcer = announce::announce_and_tickle(
            link,
            ip,
            (cfg.arp_count, cfg.arp_interval),
            tickles,
            cfg.tickle_dir.as_deref(),
            &ctx.deadline,
        )?;
        announce::record_announcer(&ctx.state_file(), announcer);
        Ok(())
    }

    fn stop(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        let ip = cfg.ip;
        // 1. End the follow-up: nothing announces the address after stop.
        announce::stop_announcer(&ctx.state_file());

        // 2. While the address is still here, record its connections: the
        //    exact list for the node that takes over (a move).
        let mut view = NodeView::read(&ctx.deadline, &ip)?;
        let held: Vec<InterfaceAddress> = view.holders(&ip).into_iter().cloned().collect();
        if let (false, Some(dir)) = (held.is_empty(), &cfg.tickle_dir) {
            tickle::record_connections(dir, ip, &ctx.deadline);
        }

        // 3. Remove it from every interface (keeping the other addresses
        //    of its subnet), and check that it is gone.
        view.remove(ip, &held)?;
        fsfile::remove_state(&ctx.state_file())?;
        Ok(())
    }

    fn monitor(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        let ip = cfg.ip;
        // 1. Held here (else 7), on nic when one is given.
        let view = NodeView::read(&ctx.deadline, &ip)?;
        let addr = view.held_on(ip, cfg.nic.as_deref())?;

        // 2. Usable: the link up, no duplicate detected, the label right.
        let want = cfg.full_label(&view.name_of(addr.link_index));
        let link = node::check_usable(view.link(addr.link_index), addr, want.as_deref())?;

        // 3. Not in a probe: refresh the announcements (arp_count_refresh)
        //    and record the connections for the node that takes over.
        if cfg.arp_count_refresh > 0 && !ctx.is_probe() && link.talks_arp() {
            let (count, interval) = (cfg.arp_count_refresh, cfg.arp_interval);
            announce::refresh(link, ip, count, interval, &ctx.deadline);
        }
        if let (false, Some(dir)) = (ctx.is_probe(), &cfg.tickle_dir) {
            tickle::record_connections(dir, ip, &ctx.deadline);
        }
        Ok(())
    }

    fn reload(_ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        log::info!(
            "announcement and probe settings for {} apply from the next start or monitor",
            cfg.ip
        );
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    ocf::run::<FloatIp>()
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Config {
    ip: IpAddr,
    /// cidr_netmask as a prefix length.
    prefix_len: Option<u8>,
    nic: Option<String>,
    /// The part after "nic:" (IPv4 only).
    label: Option<String>,
    arp_count: u32,
    arp_interval: Duration,
    arp_count_refresh: u32,
    /// Seconds; `None` = forever.
    preferred_lft: Option<u32>,
    nodad: bool,
    check_duplicate: bool,
    /// Where the address's TCP connections are recorded (shared storage).
    tickle_dir: Option<PathBuf>,
}

impl Config {
    fn full_label(&self, nic: &str) -> Option<String> {
        self.label.as_ref().map(|l| format!("{nic}:{l}"))
    }
}

/// The address must be a host of its subnet, not its network or broadcast
/// address.
fn check_host_address(ip: IpAddr, prefix_len: u8, whose: &str) -> OcfResult<()> {
    subnet::check_host(ip, prefix_len)
        .map_err(|why| ocf::invalid("ip", &ip.to_string(), format!("{why}{whose}")))
}

fn configure(p: &Params) -> OcfResult<Config> {
    let ip = p.value("ip", parse_floating_ip)?;
    let prefix_len = p.optional("cidr_netmask", |s| parse_prefix_len(s, &ip))?;
    if let Some(len) = prefix_len {
        check_host_address(ip, len, "")?;
    }
    let nic = p.optional("nic", |n| check_interface_name(n).map(|()| n.to_string()))?;
    let label = p.optional("label", |l| parse_label(l, &ip, nic.as_deref()))?;
    let cfg = Config {
        ip,
        prefix_len,
        nic,
        label,
        arp_count: p.uint("arp_count", 0..=100)? as u32,
        arp_interval: Duration::from_millis(p.uint("arp_interval", 10..=10_000)?),
        arp_count_refresh: p.uint("arp_count_refresh", 0..=100)? as u32,
        preferred_lft: p.value("preferred_lft", parse_lifetime)?,
        nodad: p.bool("nodad")?,
        check_duplicate: p.bool("check_duplicate")?,
        tickle_dir: p.optional("tickle_dir", ocf::abs_path)?,
    };
    if cfg.nodad && ip.is_ipv4() {
        log::debug!("nodad applies to IPv6 only; ignored for {ip}");
    }
    Ok(cfg)
}

/// Checks against this node; the placement start will use.
fn resolve(ctx: &Ctx, cfg: &Config) -> OcfResult<(NodeView, Placement)> {
    if cfg.ip.is_ipv6() && !sysctl::ipv6_available() {
        return Err(OcfError::installed(
            "IPv6 is not available in this kernel (no /proc/sys/net/ipv6)",
        ));
    }
    let view = NodeView::read(&ctx.deadline, &cfg.ip)?;
    let placement = place(
        cfg.ip,
        cfg.nic.as_deref(),
        cfg.prefix_len,
        &view.links,
        &view.addrs,
    )?;
    let nic = &placement.link.name;
    if let Some(l) = &cfg.label {
        check_label_fits(l, nic).map_err(|why| ocf::invalid("label", l, why))?;
    }
    if cfg.prefix_len.is_none() {
        check_host_address(
            cfg.ip,
            placement.prefix_len,
            &format!(" (the subnet of {nic})"),
        )?;
    }
    if cfg.ip.is_ipv6() && sysctl::ipv6_disabled(nic) {
        return Err(OcfError::args(format!(
            "IPv6 is disabled on nic {nic} (net.ipv6.conf.{nic}.disable_ipv6=1)"
        )));
    }
    if !placement.link.talks_arp() {
        log::warn!(
            "{nic} has no ARP/neighbour discovery: {} is neither probed nor announced there",
            cfg.ip
        );
    }
    Ok((view, placement))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hanfs::ocf::{Metadata, OcfCode};

    fn params(vars: &[(&str, &str)]) -> Params {
        let meta = Metadata::parse(FloatIp::METADATA).unwrap();
        Params::from_vars(
            &meta,
            vars.iter()
                .map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.to_string())),
        )
    }

    fn cfg(vars: &[(&str, &str)]) -> OcfResult<Config> {
        let p = params(vars);
        p.check_declared()?;
        configure(&p)
    }

    #[track_caller]
    fn refused(vars: &[(&str, &str)], needle: &str) {
        let e = cfg(vars).unwrap_err();
        assert_eq!(e.code, OcfCode::ErrConfigured, "{e}");
        assert!(e.reason.contains(needle), "{:?} lacks {needle:?}", e.reason);
    }

    #[test]
    fn defaults() {
        let c = cfg(&[("ip", "192.0.2.10")]).unwrap();
        assert_eq!(c.arp_count, 5);
        assert_eq!(c.arp_interval, Duration::from_millis(200));
        assert_eq!(c.arp_count_refresh, 0);
        assert_eq!(c.preferred_lft, None);
        assert!(c.check_duplicate && !c.nodad);
        assert_eq!(
            (c.prefix_len, c.nic.as_deref(), c.label.as_deref()),
            (None, None, None)
        );
    }

    #[test]
    fn every_declared_parameter_is_read_and_only_those() {
        ocf::check_description_matches_code::<FloatIp>(&[("ip", "192.0.2.10")]).unwrap();
    }

    #[test]
    fn full_configuration() {
        let c = cfg(&[
            ("ip", "192.0.2.10"),
            ("cidr_netmask", "255.255.255.0"),
            ("nic", "eth0"),
            ("label", "nfs"),
            ("arp_count", "0"),
            ("arp_interval", "50"),
            ("arp_count_refresh", "2"),
            ("preferred_lft", "0"),
            ("check_duplicate", "false"),
        ])
        .unwrap();
        assert_eq!(c.prefix_len, Some(24));
        assert_eq!(c.full_label("eth0").as_deref(), Some("eth0:nfs"));
        assert_eq!(c.preferred_lft, Some(0));
        assert!(!c.check_duplicate);
        let c = cfg(&[
            ("ip", "2001:db8::10"),
            ("cidr_netmask", "64"),
            ("nodad", "true"),
        ])
        .unwrap();
        assert_eq!(c.prefix_len, Some(64));
        assert!(c.nodad);
    }

    #[test]
    fn bad_addresses() {
        refused(&[], "parameter ip is required");
        refused(
            &[("ip", "300.1.1.1")],
            "parameter ip=\"300.1.1.1\": not an IPv4 or IPv6 address",
        );
        refused(&[("ip", "nfs.example.com")], "not an IPv4 or IPv6 address");
        refused(&[("ip", "192.0.2.10/24")], "cidr_netmask");
        refused(&[("ip", "0.0.0.0")], "unspecified");
        refused(&[("ip", "127.0.0.2")], "loopback");
        refused(&[("ip", "224.0.0.5")], "multicast");
        refused(&[("ip", "255.255.255.255")], "broadcast");
        refused(&[("ip", "fe80::1")], "link-local");
        refused(&[("ip", "::ffff:192.0.2.1")], "IPv4-mapped");
        refused(
            &[("ip", "192.0.2.0"), ("cidr_netmask", "24")],
            "network address of 192.0.2.0/24",
        );
        refused(
            &[("ip", "192.0.2.255"), ("cidr_netmask", "24")],
            "broadcast address of 192.0.2.0/24",
        );
        // /31 and /32 have no network or broadcast address to avoid.
        assert!(cfg(&[("ip", "192.0.2.0"), ("cidr_netmask", "31")]).is_ok());
    }

    #[test]
    fn bad_netmasks() {
        refused(
            &[("ip", "192.0.2.10"), ("cidr_netmask", "33")],
            "cidr_netmask=\"33\"",
        );
        refused(
            &[("ip", "192.0.2.10"), ("cidr_netmask", "255.0.255.0")],
            "not contiguous",
        );
        refused(
            &[("ip", "2001:db8::10"), ("cidr_netmask", "255.255.255.0")],
            "cidr_netmask",
        );
        refused(
            &[("ip", "2001:db8::10"), ("cidr_netmask", "129")],
            "cidr_netmask",
        );
    }

    #[test]
    fn bad_nic_and_label() {
        refused(&[("ip", "192.0.2.10"), ("nic", "eth0:1")], "nic=\"eth0:1\"");
        refused(
            &[("ip", "192.0.2.10"), ("nic", "averyveryverylongname")],
            "nic=",
        );
        refused(&[("ip", "2001:db8::10"), ("label", "nfs")], "IPv6");
        refused(
            &[("ip", "192.0.2.10"), ("label", "eth0:nfs")],
            "part after the colon",
        );
        refused(&[("ip", "192.0.2.10"), ("label", "nfs vip")], "label=");
        refused(
            &[
                ("ip", "192.0.2.10"),
                ("nic", "bond0.1234"),
                ("label", "nfsvip"),
            ],
            "bond0.1234:nfsvip has 17",
        );
        refused(
            &[("ip", "192.0.2.10"), ("label", "fourteen-chars")],
            "label=",
        );
        assert!(cfg(&[
            ("ip", "192.0.2.10"),
            ("nic", "eth0"),
            ("label", "nfs-vip.1")
        ])
        .is_ok());
    }

    #[test]
    fn bad_announcement_settings() {
        refused(&[("ip", "192.0.2.10"), ("arp_count", "-1")], "arp_count");
        refused(
            &[("ip", "192.0.2.10"), ("arp_count", "1000")],
            "parameter arp_count=\"1000\": out of range",
        );
        refused(&[("ip", "192.0.2.10"), ("arp_count", "five")], "arp_count");
        refused(
            &[("ip", "192.0.2.10"), ("arp_interval", "0")],
            "arp_interval",
        );
        refused(
            &[("ip", "192.0.2.10"), ("arp_count_refresh", "101")],
            "arp_count_refresh",
        );
        refused(
            &[("ip", "192.0.2.10"), ("preferred_lft", "soon")],
            "preferred_lft",
        );
        refused(
            &[("ip", "192.0.2.10"), ("check_duplicate", "maybe")],
            "check_duplicate",
        );
        assert_eq!(
            cfg(&[("ip", "192.0.2.10"), ("preferred_lft", "Forever")])
                .unwrap()
                .preferred_lft,
            None
        );
    }
}
