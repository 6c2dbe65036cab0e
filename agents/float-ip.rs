//! float-ip: the floating address NFS clients mount from (IPaddr2's
//! parameter names). See metadata/float-ip.xml for the administrator's view.
//!
//! start:   find the interface → refuse if the link is down or another
//!          interface here holds the address → probe the link for another
//!          holder (check_duplicate) → add over netlink → (IPv6) wait out
//!          the kernel's duplicate address detection → first announcement
//!          → the rest from a detached announcer recorded in the state file.
//! monitor: on nic and link up → 0; absent → 7; link down, wrong
//!          interface, wrong label, duplicate detected → 1.
//! stop:    kill the announcer, remove the address from every interface.

use hanfs::ocf::{self, Action, Agent, Ctx, OcfError, OcfResult, Params};
use hanfs::sys::fsfile;
use hanfs::sys::net::announce::{spawn_followup, Announcement, Followup};
use hanfs::sys::net::duplicate::{self, ClaimWatch, DadOutcome};
use hanfs::sys::net::placement::{place, subnet_of, Placement};
use hanfs::sys::net::sockdiag;
use hanfs::sys::net::subnet::parse_prefix_len;
use hanfs::sys::net::sysctl;
use hanfs::sys::net::tickle::{self, Connection, Tickler};
use hanfs::sys::net::{InterfaceAddress, Link, MacAddr, NewAddress, RouteSocket, Subnet};
use hanfs::sys::nfsd::mounts;
use hanfs::sys::procs::ProcId;
use std::fmt::Display;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The kernel's interface name limit (IFNAMSIZ 16, with the NUL).
const IFNAMSIZ: usize = 15;

struct FloatIp;

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

fn parse_ip(s: &str) -> Result<IpAddr, String> {
    if s.contains('/') {
        return Err("has a prefix length: give the bare address in ip and the prefix length in cidr_netmask".into());
    }
    let ip: IpAddr = s
        .parse()
        .map_err(|_| "not an IPv4 or IPv6 address".to_string())?;
    let why = match ip {
        _ if ip.is_unspecified() => "the unspecified address",
        _ if ip.is_loopback() => "a loopback address",
        _ if ip.is_multicast() => "a multicast address",
        IpAddr::V4(a) if a.is_broadcast() => "the limited broadcast address",
        IpAddr::V6(a) if is_link_local(&a) => {
            "link-local: it is only valid on one link; use a global or unique-local address"
        }
        IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => "IPv4-mapped: write the IPv4 address",
        _ => return Ok(ip),
    };
    Err(why.into())
}

fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// The address must be a host of its subnet, not its network or broadcast
/// address (an IPv4 subnet with a broadcast address, /30 or shorter).
fn check_host_address(ip: IpAddr, prefix_len: u8, whose: &str) -> OcfResult<()> {
    let s = Subnet::new(ip, prefix_len).expect("prefix length checked");
    let IpAddr::V4(v4) = ip else { return Ok(()) };
    let Some(broadcast) = s.broadcast() else {
        return Ok(());
    };
    let net = Subnet::new(s.network(), prefix_len).expect("same length");
    let what = if s.network() == ip {
        "network"
    } else if broadcast == v4 {
        "broadcast"
    } else {
        return Ok(());
    };
    Err(ocf::invalid(
        "ip",
        &ip.to_string(),
        format!("the {what} address of {net}{whose}"),
    ))
}

fn interface_name(nic: &str) -> Result<String, String> {
    let ok = nic.len() <= IFNAMSIZ
        && nic != "."
        && nic != ".."
        && !nic
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if ok {
        Ok(nic.to_string())
    } else {
        Err(format!(
            "not an interface name (at most {IFNAMSIZ} characters, no '/', ':' or spaces)"
        ))
    }
}

fn check_label_fits(label: &str, nic: &str) -> Result<(), String> {
    let full = format!("{nic}:{label}");
    if full.len() > IFNAMSIZ {
        return Err(format!(
            "too long: {full} has {} characters, the limit is {IFNAMSIZ}",
            full.len()
        ));
    }
    Ok(())
}

fn parse_label(label: &str, ip: &IpAddr, nic: Option<&str>) -> Result<String, String> {
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

fn parse_lifetime(s: &str) -> Result<Option<u32>, String> {
    if s.eq_ignore_ascii_case("forever") || s.eq_ignore_ascii_case("infinity") {
        return Ok(None);
    }
    match s.parse::<u32>() {
        Ok(n) if n < u32::MAX => Ok(Some(n)),
        _ => Err("neither a number of seconds nor forever".into()),
    }
}

fn configure(p: &Params) -> OcfResult<Config> {
    let ip = p.value("ip", parse_ip)?;
    let prefix_len = p.optional("cidr_netmask", |s| parse_prefix_len(s, &ip))?;
    if let Some(len) = prefix_len {
        check_host_address(ip, len, "")?;
    }
    let nic = p.optional("nic", interface_name)?;
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

/// A netlink or packet-socket failure: 4 when it is a matter of
/// privileges, else 1.
fn net_error(what: impl Display, e: io::Error) -> OcfError {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => OcfError::perm(format!(
            "{what}: {e} (float-ip needs root: CAP_NET_ADMIN and CAP_NET_RAW)"
        )),
        _ => OcfError::generic(format!("{what}: {e}")),
    }
}

/// This node's links and addresses of ip's family.
struct NodeView {
    rt: RouteSocket,
    links: Vec<Link>,
    addrs: Vec<InterfaceAddress>,
}

impl NodeView {
    fn read(ctx: &Ctx, ip: &IpAddr) -> OcfResult<NodeView> {
        let mut rt = RouteSocket::open(&ctx.deadline)
            .map_err(|e| net_error("cannot open a netlink socket", e))?;
        let links = rt
            .links()
            .map_err(|e| net_error("cannot list interfaces", e))?;
        let addrs = rt
            .addresses(ip.is_ipv4())
            .map_err(|e| net_error("cannot list addresses", e))?;
        Ok(NodeView { rt, links, addrs })
    }

    fn link(&self, index: u32) -> Option<&Link> {
        self.links.iter().find(|l| l.index == index)
    }

    fn holders(&self, ip: &IpAddr) -> Vec<&InterfaceAddress> {
        self.addrs.iter().filter(|a| a.ip() == *ip).collect()
    }
}

/// Checks against this node; the placement start will use.
fn resolve(ctx: &Ctx, cfg: &Config) -> OcfResult<(NodeView, Placement)> {
    if cfg.ip.is_ipv6() && !std::path::Path::new("/proc/sys/net/ipv6").exists() {
        return Err(OcfError::installed(
            "IPv6 is not available in this kernel (no /proc/sys/net/ipv6)",
        ));
    }
    let view = NodeView::read(ctx, &cfg.ip)?;
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
    if cfg.ip.is_ipv6() {
        let disabled = sysctl::read("ipv6", nic, "disable_ipv6") == Some(1);
        if disabled {
            return Err(OcfError::args(format!(
                "IPv6 is disabled on nic {nic} (net.ipv6.conf.{nic}.disable_ipv6=1)"
            )));
        }
    }
    if placement.link.mac.is_none() || placement.link.noarp {
        log::warn!(
            "{nic} has no ARP/neighbour discovery: {} is neither probed nor announced there",
            cfg.ip
        );
    }
    Ok((view, placement))
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

fn talks_arp(link: &Link) -> bool {
    link.mac.is_some() && !link.noarp
}

/// Where start puts the address: the interface, the subnet, the label.
struct Target {
    ip: IpAddr,
    link: Link,
    subnet: Subnet,
    label: Option<String>,
}

impl Target {
    fn new(cfg: &Config, placement: Placement) -> Target {
        let label = match cfg.ip {
            IpAddr::V4(_) => cfg.full_label(&placement.link.name),
            IpAddr::V6(_) => None,
        };
        Target {
            ip: cfg.ip,
            subnet: subnet_of(cfg.ip, &placement),
            link: placement.link,
            label,
        }
    }

    /// Whether the address is already up as wanted (start is idempotent).
    /// Refuses when another interface of this node holds it; removes it
    /// when it is here but unusable (failed DAD) or wrongly labelled.
    fn already_up(&self, view: &mut NodeView) -> OcfResult<bool> {
        let (ip, nic) = (self.ip, &self.link.name);
        let held: Vec<InterfaceAddress> = view.holders(&ip).into_iter().cloned().collect();
        if let Some(other) = held.iter().find(|a| a.link_index != self.link.index) {
            let name = view
                .link(other.link_index)
                .map(|l| l.name.clone())
                .unwrap_or_default();
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

    /// Probe the link; fail, naming the other host, if one holds the address.
    fn refuse_if_held_elsewhere(&self, ctx: &Ctx) -> OcfResult<()> {
        let (ip, nic) = (self.ip, &self.link.name);
        // A probe cut short proves nothing: do not start one that cannot
        // finish, and add nothing after one the deadline ended.
        if ctx.deadline.remaining() < duplicate::PROBE_WINDOW {
            return Err(timed_out(ctx, ip, "before the duplicate probe"));
        }
        let found = duplicate::probe(&self.link, ip, &ctx.deadline)
            .map_err(|e| net_error(format_args!("cannot probe {nic} for {ip}"), e))?;
        match found {
            Some(mac) => Err(OcfError::generic(format!(
                "ip {ip} is already in use by {} on {nic} (it answered our {} probe): not adding it",
                who(Some(mac)),
                if ip.is_ipv4() { "ARP" } else { "duplicate address" }
            ))),
            None => {
                log::debug!("nobody answered the probes for {ip} on {nic}");
                Ok(())
            }
        }
    }

    fn add(&self, view: &mut NodeView, cfg: &Config) -> OcfResult<()> {
        let (ip, nic, subnet) = (self.ip, &self.link.name, self.subnet);
        let new = NewAddress {
            link_index: self.link.index,
            subnet,
            label: self.label.clone(),
            preferred_lft: cfg.preferred_lft,
            nodad: cfg.nodad,
        };
        match view.rt.add_address(&new) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                log::info!("{ip} appeared on {nic} meanwhile")
            }
            Err(e) => return Err(net_error(format_args!("cannot add {subnet} to {nic}"), e)),
        }
        let alias = self
            .label
            .as_deref()
            .map(|l| format!(" as {l}"))
            .unwrap_or_default();
        log::info!("added {subnet} to {nic}{alias}");
        Ok(())
    }

    /// IPv6: wait until the kernel's duplicate address detection is over;
    /// on a duplicate, remove the address again and name the other host.
    fn finish_dad(
        &self,
        ctx: &Ctx,
        view: &mut NodeView,
        mut watch: Option<ClaimWatch>,
    ) -> OcfResult<()> {
        let (ip, nic) = (self.ip, &self.link.name);
        let outcome = duplicate::await_dad(
            &mut view.rt,
            self.link.index,
            ip,
            watch.as_mut(),
            &ctx.deadline,
        );
        drop(watch);
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                let _ = view.rt.delete_address(self.link.index, &self.subnet);
                return Err(net_error(
                    format_args!("cannot follow duplicate address detection of {ip}"),
                    e,
                ));
            }
        };
        match outcome {
            DadOutcome::Usable => Ok(()),
            DadOutcome::Duplicate(mac) => {
                let _ = view.rt.delete_address(self.link.index, &self.subnet);
                // Not heard while the kernel asked: ask ourselves, now that
                // the address is gone again.
                let mac = mac.or_else(|| {
                    talks_arp(&self.link)
                        .then(|| {
                            duplicate::probe(&self.link, ip, &ctx.deadline)
                                .ok()
                                .flatten()
                        })
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
                let _ = view.rt.delete_address(self.link.index, &self.subnet);
                Err(OcfError::generic(format!(
                    "duplicate address detection for {ip} on {nic} did not finish within the start timeout: removed it again"
                )))
            }
        }
    }

    /// Tell the neighbours and the clients: the first announcement and the
    /// first round of tickles now, the rest from a detached process
    /// (returned, to be recorded for stop).
    fn announce(
        &self,
        ctx: &Ctx,
        cfg: &Config,
        tickles: Vec<Connection>,
    ) -> OcfResult<Option<ProcId>> {
        let what = || format!("cannot announce {} on {}", self.ip, self.link.name);
        let mut announce = None;
        if cfg.arp_count > 0 && talks_arp(&self.link) {
            let ann = Announcement::open(&self.link, self.ip).map_err(|e| net_error(what(), e))?;
            ann.send().map_err(|e| net_error(what(), e))?;
            announce = Some((ann, cfg.arp_count - 1, cfg.arp_interval));
        }
        let tickle = self.first_tickles(ctx, tickles);
        let announcer = spawn_followup(Followup {
            link_index: self.link.index,
            ip: self.ip,
            announce,
            tickle,
        })?;
        if let Some(p) = &announcer {
            log::debug!("announcer {} sends the rest", p.pid);
        }
        Ok(announcer)
    }

    /// The first round of tickles to the connections recorded for the
    /// address; the tickler and the later rounds for the announcer. Never
    /// fails: a client not tickled reconnects at its next retransmission.
    fn first_tickles(
        &self,
        ctx: &Ctx,
        conns: Vec<Connection>,
    ) -> Option<(Tickler, Vec<Connection>, Vec<std::time::Duration>)> {
        if conns.is_empty() {
            return None;
        }
        let t = match Tickler::open(self.ip) {
            Ok(t) => t,
            Err(e) => {
                log::warn!("cannot tickle the clients of {}: {e}", self.ip);
                return None;
            }
        };
        let t0 = Instant::now();
        let r = t.round(
            &conns,
            (t0 + Duration::from_secs(1)).min(ctx.deadline.instant()),
        );
        log::info!(
            "tickled {} recorded connection(s) of {} in {} ms{}{}",
            r.sent,
            self.ip,
            t0.elapsed().as_millis(),
            if r.failed > 0 {
                format!(", {} could not be sent", r.failed)
            } else {
                String::new()
            },
            if r.unsent > 0 {
                format!(", {} left for the next round", r.unsent)
            } else {
                String::new()
            }
        );
        let later = tickle::ROUNDS.iter().skip(1).copied().collect();
        Some((t, conns, later))
    }
}

/// The recorded connections of the address that start will tickle: read
/// from tickle_dir before the address is added. A missing directory is a
/// configuration problem (2); a list that cannot be read, or hung storage,
/// is logged and gives no tickles (never a failed start).
fn recorded_connections(ctx: &Ctx, cfg: &Config) -> OcfResult<Vec<Connection>> {
    let Some(dir) = &cfg.tickle_dir else {
        return Ok(Vec::new());
    };
    let budget = ctx
        .deadline
        .within(LIST_BUDGET.min(ctx.deadline.remaining() / 4));
    let (loaded, list) = match tickle::load(dir, cfg.ip, &budget) {
        Ok(l) => l,
        Err(e) => {
            log::warn!("{e}: no connection is tickled");
            return Ok(Vec::new());
        }
    };
    match loaded {
        tickle::Loaded::NoDirectory => Err(OcfError::args(format!(
            "tickle_dir {} does not exist on this node (is the shared file system mounted before this resource starts?)",
            dir.display()
        ))),
        tickle::Loaded::NotADirectory => Err(OcfError::args(format!(
            "tickle_dir {} is not a directory",
            dir.display()
        ))),
        tickle::Loaded::List { .. } => {
            if list.skipped > 0 {
                log::warn!(
                    "{}: skipped {} line(s) that are not connections of {}",
                    tickle::list_path(dir, cfg.ip).display(),
                    list.skipped,
                    cfg.ip
                );
            }
            Ok(list.connections)
        }
    }
}

/// Name the recorded ports nothing listens on yet (a client sent there
/// reconnects into a refusal and retries every 3 s): the resources that
/// listen should start before this one.
fn warn_unserved(ip: IpAddr, conns: &[Connection], ctx: &Ctx) {
    let Ok(listening) = sockdiag::listening_ports(ip, &ctx.deadline) else {
        return;
    };
    let unserved: std::collections::BTreeSet<u16> = conns
        .iter()
        .map(|c| c.local.port())
        .filter(|p| !listening.contains(p))
        .collect();
    if !unserved.is_empty() {
        let ports: Vec<String> = unserved.iter().map(u16::to_string).collect();
        log::warn!(
            "nothing listens on port(s) {} of {ip} yet: those clients are tickled into a refused connection (start the NFS server before the address)",
            ports.join(", ")
        );
    }
}

/// How long reading or writing the connection list may take at most: it
/// is on shared storage, which may hang.
const LIST_BUDGET: Duration = Duration::from_secs(5);

/// Record the address's established connections in tickle_dir (when they
/// changed), for the node that takes the address over. Never fails the
/// action: a list not written only costs the clients their retransmission
/// wait.
fn record_connections(ctx: &Ctx, cfg: &Config) {
    let Some(dir) = &cfg.tickle_dir else { return };
    let conns = match sockdiag::established_to(cfg.ip, &ctx.deadline) {
        Ok(c) => c,
        Err(e) => {
            log::warn!("cannot list the connections of {}: {e}", cfg.ip);
            return;
        }
    };
    let budget = ctx
        .deadline
        .within(LIST_BUDGET.min(ctx.deadline.remaining() / 2));
    match tickle::record(dir, cfg.ip, &conns, &budget) {
        Ok(true) => log::debug!(
            "recorded {} connection(s) of {} in {}",
            conns.len(),
            cfg.ip,
            dir.display()
        ),
        Ok(false) => {}
        Err(e) => log::warn!("{e}"),
    }
}

/// tickle_dir on the root file system is local to this node: the node
/// taking over cannot read what this one recorded.
fn warn_if_local(dir: &Path) {
    if mounts::on_root_fs(dir) {
        log::warn!(
            "tickle_dir {} is on the root file system, not on shared storage: the node taking over cannot tickle the clients",
            dir.display()
        );
    }
}

/// Keep the announcer's identity for stop. The record only lets stop end
/// it early (it ends by itself), so failing to write it must not fail a
/// working address.
fn record_announcer(ctx: &Ctx, announcer: Option<ProcId>) {
    let state = match announcer {
        Some(p) => format!("announcer {}\n", p.to_record()),
        None => String::new(),
    };
    let dir = ctx.runtime_dir();
    let written = std::fs::create_dir_all(&dir)
        .map_err(|e| OcfError::generic(format!("cannot create {}: {e}", dir.display())))
        .and_then(|()| fsfile::write_atomic(&ctx.state_file(), state.as_bytes(), 0o644));
    if let Err(e) = written {
        log::warn!("{e}: stop will not end the announcer early");
    }
}

/// Announcer record in the state file: "announcer <pid> <start time>".
fn read_announcer(ctx: &Ctx) -> Option<ProcId> {
    let s = fsfile::read_opt(&ctx.state_file()).ok().flatten()?;
    s.lines()
        .find_map(|l| l.strip_prefix("announcer ").and_then(ProcId::from_record))
}

/// Start ran out of time: what was done and what was not.
fn timed_out(ctx: &Ctx, ip: IpAddr, when: &str) -> OcfError {
    OcfError::generic(format!(
        "start timed out (timeout {:.1}s) {when}: nothing further was changed for ip {ip}",
        ctx.deadline.total().as_secs_f64()
    ))
}

fn who(mac: Option<MacAddr>) -> String {
    match mac {
        Some(m) => format!("host {m}"),
        None => "another host (hardware address not seen)".into(),
    }
}

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
            warn_if_local(dir);
        }
        Ok(())
    }

    fn needs_root(action: &Action) -> Option<&'static str> {
        (*action == Action::Start).then_some("the agent adds addresses and sends ARP/ND")
    }

    fn start(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        let (mut view, placement) = resolve(ctx, cfg)?;
        let target = Target::new(cfg, placement);
        if !target.link.is_up() {
            return Err(OcfError::generic(format!(
                "nic {} is {}: not adding {}",
                target.link.name,
                target.link.down_reason(),
                cfg.ip
            )));
        }
        if target.already_up(&mut view)? {
            if !ctx.state_file().exists() {
                // Not started by this resource since the last reboot: set up
                // outside the cluster (network configuration, by hand)? Then
                // another node may bring it up too, and stop will remove it.
                log::warn!(
                    "{} was already on {} before this resource started it; it should be managed by the cluster only",
                    cfg.ip,
                    target.link.name
                );
                record_announcer(ctx, None);
            }
            return Ok(());
        }
        let tickles = recorded_connections(ctx, cfg)?;
        let kernel_dad = cfg.ip.is_ipv6() && !cfg.nodad && duplicate::kernel_runs_dad(&target.link);
        if !cfg.check_duplicate {
            log::info!("check_duplicate is off: adding {} without probing", cfg.ip);
        } else if talks_arp(&target.link) && !kernel_dad {
            target.refuse_if_held_elsewhere(ctx)?;
        }
        // While the kernel probes (IPv6), listen for who answers.
        let watch =
            if kernel_dad && talks_arp(&target.link) {
                let listen = ClaimWatch::open(&target.link, cfg.ip);
                Some(listen.map_err(|e| {
                    net_error(format_args!("cannot listen on {}", target.link.name), e)
                })?)
            } else {
                None
            };
        if ctx.deadline.expired() {
            return Err(timed_out(ctx, cfg.ip, "before adding it"));
        }
        target.add(&mut view, cfg)?;
        if cfg.ip.is_ipv6() && !cfg.nodad {
            target.finish_dad(ctx, &mut view, watch)?;
        }
        if !tickles.is_empty() {
            warn_unserved(cfg.ip, &tickles, ctx);
        }
        if ctx.deadline.expired() {
            // Up, but late: nothing more is changed (stop removes it).
            return Err(timed_out(
                ctx,
                cfg.ip,
                "after adding it, before announcing it",
            ));
        }
        let announcer = target.announce(ctx, cfg, tickles)?;
        record_announcer(ctx, announcer);
        Ok(())
    }

    fn stop(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        if let Some(p) = read_announcer(ctx) {
            if p.signal(nix::sys::signal::Signal::SIGKILL) {
                log::info!("stopped announcer {}", p.pid);
            }
        }
        let ip = cfg.ip;
        let mut view = NodeView::read(ctx, &ip)?;
        let held: Vec<InterfaceAddress> = view.holders(&ip).into_iter().cloned().collect();
        if !held.is_empty() {
            // The exact list for the node that takes over (a move).
            record_connections(ctx, cfg);
        }
        for a in &held {
            let name = view
                .link(a.link_index)
                .map(|l| l.name.clone())
                .unwrap_or_default();
            if drags_secondaries(a, &view.addrs) {
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
            if view
                .rt
                .delete_address(a.link_index, &a.subnet)
                .map_err(|e| net_error(format_args!("cannot remove {} from {name}", a.subnet), e))?
            {
                log::info!("removed {} from {name}", a.subnet);
            }
        }
        let left = view
            .rt
            .holders_of(&ip)
            .map_err(|e| net_error("cannot list addresses", e))?;
        if let Some(a) = left.first() {
            return Err(OcfError::generic(format!(
                "ip {ip} is still on interface index {} after removal",
                a.link_index
            )));
        }
        fsfile::remove_state(&ctx.state_file())?;
        Ok(())
    }

    fn monitor(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        let ip = cfg.ip;
        let view = NodeView::read(ctx, &ip)?;
        let held = view.holders(&ip);
        let Some(first) = held.first() else {
            return Err(OcfError::not_running(format!(
                "ip {ip} is not on this node"
            )));
        };
        let name_of = |a: &InterfaceAddress| {
            view.link(a.link_index)
                .map(|l| l.name.clone())
                .unwrap_or_default()
        };
        let addr = match &cfg.nic {
            Some(nic) => match held.iter().find(|a| &name_of(a) == nic) {
                Some(a) => *a,
                None => {
                    return Err(OcfError::generic(format!(
                        "ip {ip} is on interface {}, not on nic {nic}",
                        name_of(first)
                    )))
                }
            },
            None => *first,
        };
        let Some(link) = view.link(addr.link_index) else {
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
        if let Some(want) = cfg.full_label(nic) {
            if addr.label.as_ref() != Some(&want) {
                return Err(OcfError::generic(format!(
                    "ip {ip} on {nic} has label {}, expected {want}",
                    addr.label.as_deref().unwrap_or("(none)")
                )));
            }
        }
        if addr.tentative {
            log::info!("{ip} on {nic} is still tentative (duplicate address detection running)");
        }
        if cfg.arp_count_refresh > 0 && !ctx.is_probe() && talks_arp(link) {
            let sent = Announcement::open(link, ip).and_then(|a| {
                a.repeat(cfg.arp_count_refresh, cfg.arp_interval, true, &ctx.deadline)
            });
            match sent {
                Ok(n) => log::debug!("refreshed {ip} on {nic} with {n} announcements"),
                Err(e) => log::warn!("cannot refresh announcements of {ip} on {nic}: {e}"),
            }
        }
        if !ctx.is_probe() {
            record_connections(ctx, cfg);
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
