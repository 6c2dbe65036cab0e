//! float-ip for real: on a veth pair between private network namespaces,
//! with tcpdump in the peer standing in for the clients and routers on the
//! link that must see the address move.
use crate::common::{self, wait_until, AgentCmd, Peer, Sandbox};
use hanfs::sys::net::announce::RECORD_AFTER;
use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const V4: &str = "192.0.2.10";
const V6: &str = "2001:db8::10";
const STATE: &str = "/run/resource-agents/hanfs-float-ip-test";

fn our_mac(sb: &Sandbox) -> String {
    sb.sh_ok("cat /sys/class/net/eth0/address")
        .trim()
        .to_string()
}

/// (The peer has no sysfs of its own: ask netlink.)
fn peer_mac(peer: &Peer) -> String {
    let l = peer.sh_ok("ip -br link show dev eth0");
    l.split_whitespace()
        .nth(2)
        .expect("ip -br link: name state mac")
        .to_string()
}

fn addrs(sb: &Sandbox, family: &str) -> String {
    sb.sh_ok(&format!("ip -{family} -o addr show dev eth0"))
}

/// The announcer's pid from the state file (JSON), if one was recorded.
fn announcer_pid(sb: &Sandbox) -> Option<i32> {
    let s = sb.sh_ok(&format!("cat {STATE} 2>/dev/null || true"));
    let v: serde_json::Value = serde_json::from_str(&s).ok()?;
    v.pointer("/announcer/pid")?.as_i64().map(|p| p as i32)
}

/// Running (not a zombie). There is no pid namespace: host /proc shows it.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !matches!(
                s.rsplit(") ").next().and_then(|r| r.chars().next()),
                Some('Z') | Some('X')
            )
        })
        .unwrap_or(false)
}

/// The lines a child writes to `out`, as they come (a thread forwards them,
/// and keeps draining the pipe once nobody listens, so the child never
/// blocks on it).
fn lines_of(out: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    rx
}

/// tcpdump on the peer's eth0: what the other hosts on the link see.
struct Capture {
    child: Child,
    rx: Receiver<String>,
    lines: Vec<String>,
}

impl Capture {
    fn start(peer: &Peer, filter: &str) -> Capture {
        let mut child = peer.spawn(&["tcpdump", "-i", "eth0", "-nn", "-e", "-l", "-vv", filter]);
        let rx = lines_of(child.stdout.take().unwrap());
        let erx = lines_of(child.stderr.take().unwrap());
        let mut said = Vec::new();
        loop {
            match erx.recv_timeout(Duration::from_secs(15)) {
                Ok(l) if l.contains("listening on") => break,
                Ok(l) => said.push(l),
                Err(_) => panic!("tcpdump did not start in the peer: {said:?}"),
            }
        }
        Capture {
            child,
            rx,
            lines: Vec::new(),
        }
    }

    /// Collect lines until `done` holds (true) or `limit` passes (false).
    fn wait_for(&mut self, limit: Duration, done: impl Fn(&[String]) -> bool) -> bool {
        let end = Instant::now() + limit;
        loop {
            if done(&self.lines) {
                return true;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.rx.recv_timeout(left) {
                Ok(l) => self.lines.push(l),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return done(&self.lines),
            }
        }
    }

    /// Whatever arrives within `d`.
    fn settle(&mut self, d: Duration) {
        self.wait_for(d, |_| false);
    }

    fn count(&self, needles: &[&str]) -> usize {
        count(&self.lines, needles)
    }

    fn position(&self, needles: &[&str]) -> Option<usize> {
        self.lines
            .iter()
            .position(|l| needles.iter().all(|n| l.contains(n)))
    }
}

fn count(lines: &[String], needles: &[&str]) -> usize {
    lines
        .iter()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const GARP: &str = "Request who-has 192.0.2.10 tell 192.0.2.10";
const ARP_PROBE: &str = "Request who-has 192.0.2.10 tell 0.0.0.0";
const NA: &str = "neighbor advertisement, length 32, tgt is 2001:db8::10, Flags [override]";
const DAD_NS: &str = ":: > ff02::1:ff00:10: [icmp6 sum ok] ICMP6, neighbor solicitation, length 24, who has 2001:db8::10";
const ND_FILTER: &str = "icmp6 and (ip6[40] == 135 or ip6[40] == 136)";

fn v4<'a>(sb: &'a Sandbox) -> AgentCmd<'a> {
    sb.agent("float-ip").param("ip", V4)
}

fn v6<'a>(sb: &'a Sandbox) -> AgentCmd<'a> {
    sb.agent("float-ip").param("ip", V6)
}

/// Wait until the announcer recorded in the state file has finished.
fn announcer_done(sb: &Sandbox) {
    if let Some(pid) = announcer_pid(sb) {
        assert!(
            wait_until(Duration::from_secs(20), || !alive(pid)),
            "announcer {pid} never ended"
        );
    }
}

#[test]
fn ipv4_start_monitor_stop_with_label_probe_and_gratuitous_arp() {
    let sb = sandbox!();
    let peer = sb.veth_peer(&["192.0.2.1/24"], &["192.0.2.2/24"]);
    let me = our_mac(&sb);
    // The peer still believes the address lives elsewhere.
    peer.sh_ok("ip neigh replace 192.0.2.10 lladdr 02:00:00:00:00:99 dev eth0 nud stale");
    let mut cap = Capture::start(&peer, "arp");
    let fip = || {
        v4(&sb)
            .param("label", "nfs")
            .param("arp_count", "3")
            .param("arp_interval", "100")
    };

    fip().run("validate-all").expect(0);
    fip().run("monitor").expect(7);
    fip().run("stop").expect(0);
    let started = fip().run("start");
    started.expect(0);
    assert_eq!(started.stdout, "", "stdout is for meta-data only");
    // nic and cidr_netmask came from eth0's subnet; the label is an alias.
    let a = addrs(&sb, "4");
    assert!(
        a.contains("inet 192.0.2.10/24 brd 192.0.2.255 scope global secondary eth0:nfs"),
        "{a}"
    );
    fip().run("monitor").expect(0);
    fip().interval_ms(10_000).run("monitor").expect(0);
    fip().run("start").expect(0);

    // The peer saw the ARP probe first, then exactly arp_count gratuitous
    // ARPs from our hardware address, the later ones after start returned.
    let garp = [me.as_str(), "> ff:ff:ff:ff:ff:ff", GARP];
    assert!(
        cap.wait_for(Duration::from_secs(15), |l| count(l, &garp) >= 3),
        "{:#?}",
        cap.lines
    );
    announcer_done(&sb);
    cap.settle(Duration::from_millis(500));
    assert_eq!(cap.count(&garp), 3, "{:#?}", cap.lines);
    let probe = cap
        .position(&[me.as_str(), ARP_PROBE])
        .expect("ARP probe seen");
    assert!(probe < cap.position(&garp).unwrap(), "{:#?}", cap.lines);
    // ... and its neighbour cache now points at us.
    assert!(
        wait_until(Duration::from_secs(5), || peer
            .sh_ok("ip neigh show 192.0.2.10 dev eth0")
            .contains(&me)),
        "{}",
        peer.sh_ok("ip neigh")
    );

    fip().run("stop").expect(0);
    assert!(!addrs(&sb, "4").contains(V4));
    fip().run("monitor").expect(7);
    fip().run("stop").expect(0);
    assert_eq!(
        sb.sh_ok(&format!("test -e {STATE} && echo left || echo gone"))
            .trim(),
        "gone"
    );
}

#[test]
fn ipv6_start_waits_for_kernel_dad_then_sends_unsolicited_na() {
    let sb = sandbox!();
    let peer = sb.veth_peer(&["2001:db8::1/64"], &["2001:db8::2/64"]);
    // The kernel's own duplicate address detection on, as on a real node.
    sb.sh_ok("sysctl -qw net.ipv6.conf.eth0.accept_dad=1");
    let me = our_mac(&sb);
    peer.sh_ok("ip -6 neigh replace 2001:db8::10 lladdr 02:00:00:00:00:99 dev eth0 nud stale");
    let mut cap = Capture::start(&peer, ND_FILTER);
    let fip = || v6(&sb).param("arp_count", "3").param("arp_interval", "100");

    fip().run("monitor").expect(7);
    fip().run("start").expect(0);
    let a = addrs(&sb, "6");
    assert!(a.contains("inet6 2001:db8::10/64 scope global"), "{a}");
    assert!(
        !a.contains("tentative"),
        "start returned before DAD finished: {a}"
    );
    fip().run("monitor").expect(0);

    // Unsolicited NAs to all-nodes, hop limit 255, valid checksum, override
    // flag, our hardware address in the target link-layer option.
    let na = [
        me.as_str(),
        "> 33:33:00:00:00:01",
        "hlim 255",
        "[icmp6 sum ok]",
        NA,
    ];
    assert!(
        cap.wait_for(Duration::from_secs(15), |l| count(l, &na) >= 3),
        "{:#?}",
        cap.lines
    );
    announcer_done(&sb);
    cap.settle(Duration::from_millis(500));
    assert_eq!(cap.count(&na), 3, "{:#?}", cap.lines);
    assert!(
        cap.count(&[
            "destination link-address option (2), length 8 (1): ",
            me.as_str()
        ]) >= 3
    );
    assert!(
        wait_until(Duration::from_secs(5), || peer
            .sh_ok("ip -6 neigh show 2001:db8::10 dev eth0")
            .contains(&me)),
        "{}",
        peer.sh_ok("ip -6 neigh")
    );

    fip().run("stop").expect(0);
    assert!(!addrs(&sb, "6").contains(V6));
    fip().run("monitor").expect(7);
    fip().run("stop").expect(0);
}

#[test]
fn ipv6_nodad_and_preferred_lifetime_with_our_own_probe() {
    let sb = sandbox!();
    // The harness leaves the kernel's DAD off on eth0: the agent probes.
    let peer = sb.veth_peer(&["2001:db8::1/64"], &["2001:db8::2/64"]);
    let me = our_mac(&sb);
    let mut cap = Capture::start(&peer, ND_FILTER);
    let fip = || {
        v6(&sb)
            .param("nodad", "true")
            .param("preferred_lft", "0")
            .param("arp_count", "1")
    };
    fip().run("start").expect(0);
    let a = addrs(&sb, "6");
    assert!(
        a.contains("2001:db8::10/64") && a.contains("nodad") && a.contains("preferred_lft 0sec"),
        "{a}"
    );
    fip().run("monitor").expect(0);
    let ns = [me.as_str(), "> 33:33:ff:00:00:10", DAD_NS];
    assert!(
        cap.wait_for(Duration::from_secs(10), |l| count(l, &[NA]) >= 1),
        "{:#?}",
        cap.lines
    );
    assert!(cap.count(&ns) >= 1, "no DAD probe: {:#?}", cap.lines);
    assert!(cap.position(&ns).unwrap() < cap.position(&[NA]).unwrap());
    fip().run("stop").expect(0);
    assert!(!addrs(&sb, "6").contains(V6));
}

#[test]
fn ipv4_duplicate_on_the_link_is_refused_unless_check_duplicate_is_off() {
    let sb = sandbox!();
    let peer = sb.veth_peer(&["192.0.2.1/24"], &["192.0.2.2/24", "192.0.2.10/24"]);
    let them = peer_mac(&peer);

    let r = v4(&sb).run("start");
    r.expect_reason(
        1,
        &format!("ip 192.0.2.10 is already in use by host {them} on eth0"),
    );
    assert!(
        !addrs(&sb, "4").contains(V4),
        "duplicate left on our interface"
    );
    v4(&sb).run("monitor").expect(7);
    v4(&sb).run("stop").expect(0);

    // check_duplicate=false: no probe at all, the address goes up.
    let me = our_mac(&sb);
    let mut cap = Capture::start(&peer, "arp");
    v4(&sb)
        .param("check_duplicate", "false")
        .param("arp_count", "2")
        .param("arp_interval", "50")
        .run("start")
        .expect(0);
    assert!(addrs(&sb, "4").contains("192.0.2.10/24"));
    assert!(
        cap.wait_for(Duration::from_secs(10), |l| count(l, &[&me, GARP]) >= 2),
        "{:#?}",
        cap.lines
    );
    assert_eq!(
        cap.count(&[&me, ARP_PROBE]),
        0,
        "probed although check_duplicate=false: {:#?}",
        cap.lines
    );
    v4(&sb).run("stop").expect(0);
}

#[test]
fn ipv6_duplicate_is_refused_by_our_probe_and_by_kernel_dad() {
    let sb = sandbox!();
    let peer = sb.veth_peer(&["2001:db8::1/64"], &["2001:db8::2/64", "2001:db8::10/64"]);
    let them = peer_mac(&peer);

    // Kernel DAD off on eth0 (harness default): the agent's own probe.
    v6(&sb).run("start").expect_reason(
        1,
        &format!("ip 2001:db8::10 is already in use by host {them} on eth0"),
    );
    assert!(
        !addrs(&sb, "6").contains(V6),
        "duplicate left on our interface"
    );

    // Kernel DAD on: it fails the address; the agent names the holder from
    // the advertisement it heard and removes the address again.
    sb.sh_ok("sysctl -qw net.ipv6.conf.eth0.accept_dad=1");
    let r = v6(&sb).run("start");
    r.expect_reason(
        1,
        &format!("already in use by host {them} on eth0 (duplicate address detection failed)"),
    );
    assert!(
        !addrs(&sb, "6").contains(V6),
        "dadfailed address left on our interface"
    );
    v6(&sb).run("monitor").expect(7);

    // check_duplicate=false with the kernel's DAD off: added regardless.
    sb.sh_ok("sysctl -qw net.ipv6.conf.eth0.accept_dad=0");
    v6(&sb)
        .param("check_duplicate", "false")
        .run("start")
        .expect(0);
    assert!(addrs(&sb, "6").contains("2001:db8::10/64"));
    v6(&sb).run("stop").expect(0);
}

#[test]
fn link_down_makes_monitor_fail_and_start_refuse() {
    let sb = sandbox!();
    let peer = sb.veth_peer(&["192.0.2.1/24"], &["192.0.2.2/24"]);
    let fip = || v4(&sb).param("nic", "eth0").param("arp_count", "1");
    fip().run("start").expect(0);

    // Carrier lost (the other end went down).
    peer.sh_ok("ip link set eth0 down");
    assert!(wait_until(Duration::from_secs(5), || fip()
        .run("monitor")
        .code
        == 1));
    fip()
        .run("monitor")
        .expect_reason(1, "nic eth0 holding 192.0.2.10 is down (no carrier)");
    fip().interval_ms(10_000).run("monitor").expect(1);
    peer.sh_ok("ip link set eth0 up");
    assert!(wait_until(Duration::from_secs(5), || fip()
        .run("monitor")
        .code
        == 0));

    // Administratively down here: the IPv4 address stays, but is useless.
    sb.sh_ok("ip link set eth0 down");
    fip()
        .run("monitor")
        .expect_reason(1, "administratively down");
    fip().run("start").expect_reason(1, "administratively down");
    fip().run("stop").expect(0);
    fip().run("start").expect_reason(
        1,
        "nic eth0 is administratively down: not adding 192.0.2.10",
    );
    assert!(!addrs(&sb, "4").contains(V4));
    sb.sh_ok("ip link set eth0 up");
}

#[test]
fn wrong_label_or_wrong_interface_is_a_failure_and_start_repairs_the_label() {
    let sb = sandbox!();
    let _peer = sb.veth_peer(&["192.0.2.1/24"], &["192.0.2.2/24"]);
    let fip = || v4(&sb).param("label", "nfs").param("arp_count", "1");
    fip().run("start").expect(0);
    sb.sh_ok(
        "ip addr del 192.0.2.10/24 dev eth0; ip addr add 192.0.2.10/24 dev eth0 label eth0:other",
    );
    fip()
        .run("monitor")
        .expect_reason(1, "has label eth0:other, expected eth0:nfs");
    fip().run("start").expect(0);
    assert!(addrs(&sb, "4").contains("eth0:nfs"));
    fip().run("monitor").expect(0);
    fip().run("stop").expect(0);

    // Held by another interface of this node than nic: a failure, and stop
    // clears it from there too.
    sb.sh_ok("ip link add d1 type veth peer name d2; ip link set d1 up; ip link set d2 up; ip addr add 192.0.2.10/24 dev d1");
    let on_eth0 = || v4(&sb).param("nic", "eth0").param("arp_count", "1");
    on_eth0()
        .run("monitor")
        .expect_reason(1, "ip 192.0.2.10 is on interface d1, not on nic eth0");
    on_eth0()
        .run("start")
        .expect_reason(1, "already on interface d1");
    on_eth0().run("stop").expect(0);
    assert!(!sb.sh_ok("ip -4 -o addr").contains(V4));
    on_eth0().run("monitor").expect(7);
}

#[test]
fn probe_reads_the_interfaces_not_the_state_file() {
    let sb = sandbox!();
    let _peer = sb.veth_peer(&["192.0.2.1/24"], &["192.0.2.2/24"]);
    v4(&sb).param("arp_count", "1").run("start").expect(0);
    // A reboot: interfaces come up without the floating address, /run is empty.
    sb.sh_ok("ip addr del 192.0.2.10/24 dev eth0");
    sb.reboot_runtime_state();
    v4(&sb).run("monitor").expect(7);
    v4(&sb).run("stop").expect(0);
    // State lost but the address is really here: the probe says so, and
    // stop removes it.
    v4(&sb).param("arp_count", "1").run("start").expect(0);
    sb.reboot_runtime_state();
    v4(&sb).run("monitor").expect(0);
    v4(&sb).run("stop").expect(0);
    assert!(!addrs(&sb, "4").contains(V4));
}

#[test]
fn later_announcements_never_hold_start_and_stop_ends_them() {
    let sb = sandbox!();
    let peer = sb.veth_peer(&["192.0.2.1/24"], &["192.0.2.2/24"]);
    let me = our_mac(&sb);
    let mut cap = Capture::start(&peer, "arp");
    // 20 announcements a second apart would take 19 s after the first;
    // start's timeout is 8 s.
    let fip = || {
        v4(&sb)
            .param("arp_count", "20")
            .param("arp_interval", "1000")
            .timeout_ms(8000)
    };
    let r = fip().run("start");
    r.expect(0);
    assert!(
        r.elapsed < Duration::from_secs(8),
        "start took {:?}",
        r.elapsed
    );
    let pid = announcer_pid(&sb).expect("announcer recorded in the state file");
    assert!(alive(pid));
    assert!(
        cap.wait_for(Duration::from_secs(10), |l| count(l, &[&me, GARP]) >= 2),
        "{:#?}",
        cap.lines
    );
    fip().run("stop").expect(0);
    assert!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "stop left announcer {pid} running"
    );
    let n = cap.count(&[&me, GARP]);
    cap.settle(Duration::from_millis(2500));
    assert_eq!(
        cap.count(&[&me, GARP]),
        n,
        "announcements after stop: {:#?}",
        cap.lines
    );
    assert!(n < 20);
}

/// A node upgraded while the address is up: its state file holds the
/// previous version's text record (`announcer <pid> <start>`). Stop does
/// not fail on it: it logs it, removes the address, and the announcer,
/// not ended early, stops by itself once the address has left the link.
#[test]
fn stop_after_an_upgrade_reads_the_old_announcer_record_as_none() {
    let sb = sandbox!();
    let _peer = sb.veth_peer(&["192.0.2.1/24"], &["192.0.2.2/24"]);
    let fip = || {
        v4(&sb)
            .param("arp_count", "20")
            .param("arp_interval", "500")
    };
    fip().run("start").expect(0);
    let pid = announcer_pid(&sb).expect("announcer recorded in the state file");
    let start = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start = start
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_string();
    sb.sh_ok(&format!("printf 'announcer {pid} {start}\\n' > {STATE}"));
    let r = fip().run("stop");
    r.expect(0);
    assert!(r.stderr.contains("from an older version?"), "{}", r.stderr);
    assert!(!addrs(&sb, "4").contains(V4));
    assert!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "announcer {pid} went on after the address left"
    );
    fip().run("monitor").expect(7);
}

#[test]
fn recurring_monitor_refreshes_announcements_probes_do_not() {
    let sb = sandbox!();
    let peer = sb.veth_peer(&["192.0.2.1/24"], &["192.0.2.2/24"]);
    let me = our_mac(&sb);
    let mut cap = Capture::start(&peer, "arp");
    let fip = || {
        v4(&sb)
            .param("arp_count", "1")
            .param("arp_count_refresh", "2")
            .param("arp_interval", "50")
    };
    fip().run("start").expect(0);
    let garp = [me.as_str(), GARP];
    assert!(cap.wait_for(Duration::from_secs(10), |l| count(l, &garp) >= 1));
    fip().run("monitor").expect(0); // a probe: no announcements
    cap.settle(Duration::from_millis(500));
    assert_eq!(cap.count(&garp), 1, "{:#?}", cap.lines);
    fip().interval_ms(10_000).run("monitor").expect(0);
    assert!(
        cap.wait_for(Duration::from_secs(10), |l| count(l, &garp) >= 3),
        "{:#?}",
        cap.lines
    );
    cap.settle(Duration::from_millis(500));
    assert_eq!(cap.count(&garp), 3, "{:#?}", cap.lines);
    fip().run("stop").expect(0);
}

#[test]
fn interface_and_netmask_detection() {
    let sb = sandbox!();
    let _peer = sb.veth_peer(&["192.0.2.1/24"], &["192.0.2.2/24"]);
    // nic given, no subnet of it contains ip: cidr_netmask is needed.
    let other = || {
        sb.agent("float-ip")
            .param("ip", "198.51.100.10")
            .param("nic", "eth0")
            .param("arp_count", "0")
    };
    other().run("validate-all").expect_reason(2, "cidr_netmask is needed: no IPv4 address on nic eth0 has a subnet containing 198.51.100.10 (eth0 has 192.0.2.1/24)");
    other().param("cidr_netmask", "28").run("start").expect(0);
    assert!(addrs(&sb, "4").contains("198.51.100.10/28"));
    other().param("cidr_netmask", "28").run("monitor").expect(0);
    other().param("cidr_netmask", "28").run("stop").expect(0);
    // No nic and no subnet: the interfaces are listed.
    sb.agent("float-ip")
        .param("ip", "198.51.100.10")
        .run("validate-all")
        .expect_reason(2, "no interface has a subnet containing ip 198.51.100.10: set nic (and cidr_netmask) (IPv4 addresses here: eth0 192.0.2.1/24)");
    // Two interfaces in the subnet: ambiguous, both named; nic settles it.
    sb.sh_ok("ip link add d1 type veth peer name d2; ip addr add 192.0.2.5/24 dev d1");
    v4(&sb).run("validate-all").expect_reason(
        2,
        "ip 192.0.2.10 is in a subnet of more than one interface (",
    );
    let r = v4(&sb).run("validate-all");
    let reason = r.exit_reason().unwrap();
    assert!(
        reason.contains("eth0 192.0.2.1/24") && reason.contains("d1 192.0.2.5/24"),
        "{reason}"
    );
    v4(&sb).param("nic", "eth0").run("validate-all").expect(0);
    // A nic that is not here.
    v4(&sb)
        .param("nic", "eth7")
        .run("validate-all")
        .expect_reason(
            2,
            "nic eth7 does not exist on this node (interfaces: d1, d2, eth0, lo)",
        );
    // A label too long for this nic.
    v4(&sb)
        .param("nic", "eth0")
        .param("label", "abcdefghijk")
        .run("validate-all")
        .expect_reason(6, "eth0:abcdefghijk has 16 characters");
}

#[test]
fn not_root_is_refused_with_code_4() {
    let sb = sandbox!();
    let _peer = sb.veth_peer(&["192.0.2.1/24"], &["192.0.2.2/24"]);
    let bin = common::bin("float-ip");
    let as_nobody = |action: &str| {
        let out = sb.sh(&format!(
            "OCF_RESKEY_ip={V4} OCF_RESOURCE_INSTANCE=test HA_LOGFACILITY=none \
             setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all {} {action}",
            bin.display()
        ));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = as_nobody("start");
    assert_eq!(code, Some(4), "{err}");
    assert!(
        err.contains("ocf-exit-reason:float-ip start must run as root"),
        "{err}"
    );
    assert!(!addrs(&sb, "4").contains(V4));
    // Monitor needs no privileges.
    assert_eq!(as_nobody("monitor").0, Some(7));
    v4(&sb).param("arp_count", "1").run("start").expect(0);
    assert_eq!(as_nobody("monitor").0, Some(0));
    let (code, err) = as_nobody("stop");
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("needs root"), "{err}");
    v4(&sb).run("stop").expect(0);
}

#[test]
fn ocf_tester_passes_ipv4_and_ipv6() {
    let sb = sandbox!();
    let _peer = sb.veth_peer(
        &["192.0.2.1/24", "2001:db8::1/64"],
        &["192.0.2.2/24", "2001:db8::2/64"],
    );
    sb.install_agents();
    for opts in [
        format!("-o ip={V4} -o label=nfs -o arp_count=2"),
        format!("-o ip={V6} -o arp_count=2"),
    ] {
        sb.expect_ocf_tester_passes("float-ip", &opts);
    }
}

#[test]
fn crm_resource_validate_reports_code_and_reason() {
    let sb = sandbox!();
    let _peer = sb.veth_peer(
        &["192.0.2.1/24", "2001:db8::1/64"],
        &["192.0.2.2/24", "2001:db8::2/64"],
    );
    sb.install_agents();
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["ip=300.1.1.1"],
            6,
            "parameter ip=\"300.1.1.1\": not an IPv4 or IPv6 address",
        ),
        (&["ip=192.0.2.10/24"], 6, "prefix length in cidr_netmask"),
        (
            &["ip=192.0.2.10", "cidr_netmask=33"],
            6,
            "cidr_netmask=\"33\"",
        ),
        (
            &["ip=192.0.2.10", "cidr_netmask=255.0.255.0"],
            6,
            "not contiguous",
        ),
        (
            &["ip=192.0.2.10", "arp_count=1000"],
            6,
            "parameter arp_count=\"1000\": out of range",
        ),
        (
            &["ip=192.0.2.10", "arp_interval=fast"],
            6,
            "parameter arp_interval=\"fast\": not an integer",
        ),
        (
            &["ip=2001:db8::10", "label=nfs"],
            6,
            "parameter label=\"nfs\": cannot be used with an IPv6 ip",
        ),
        (
            &["ip=192.0.2.10", "nic=eth9"],
            2,
            "nic eth9 does not exist on this node (interfaces: eth0, lo)",
        ),
        (
            &["ip=203.0.113.7"],
            2,
            "no interface has a subnet containing ip 203.0.113.7",
        ),
        (&["cidr_netmask=24"], 6, "parameter ip is required"),
    ];
    for (opts, code, reason) in cases {
        // crm_resource exits with the agent's code too.
        sb.crm_validate("float-ip", opts)
            .expect_refused(*code, reason);
    }
    sb.crm_validate("float-ip", &["ip=192.0.2.10", "label=nfs"])
        .expect_ok();
    sb.crm_validate("float-ip", &["ip=2001:db8::10"])
        .expect_ok();
}

#[test]
fn metadata_forms_and_reload() {
    // No privileges needed: the agent on the host.
    let md = common::host_agent("float-ip")
        .env("OCF_RA_VERSION_MAJOR", "1")
        .env("OCF_RA_VERSION_MINOR", "1")
        .run("meta-data");
    md.expect(0);
    assert!(md.stdout.contains("<version>1.1</version>"));
    assert!(md
        .stdout
        .contains(r#"<action name="reload-agent" timeout="10s"/>"#));
    assert!(md
        .stdout
        .contains(r#"<parameter name="arp_count" unique="0" required="0" reloadable="1">"#));
    assert!(md
        .stdout
        .contains(r#"<parameter name="ip" unique="1" required="1">"#));
    let old = common::host_agent("float-ip").run("meta-data");
    old.expect(0);
    assert!(old.stdout.contains("ra-api-1.dtd") && !old.stdout.contains("reload"));
    // Announcement settings are reloadable: no restart of the address.
    common::host_agent("float-ip")
        .param("ip", V4)
        .env("OCF_RA_VERSION_MAJOR", "1")
        .env("OCF_RA_VERSION_MINOR", "1")
        .run("reload-agent")
        .expect(0);
    common::host_agent("float-ip").run("frobnicate").expect(3);
    common::host_agent("float-ip")
        .param("ip", "x")
        .run("validate-all")
        .expect_reason(6, "ip=\"x\"");
}

#[test]
fn stopping_one_address_keeps_the_others_of_its_subnet() {
    let sb = sandbox!();
    let _peer = sb.veth_peer(&["192.0.2.1/24"], &["192.0.2.2/24"]);
    // Two floating addresses in a subnet of their own on eth0 (active/active):
    // the first added is the subnet's primary, the second its secondary.
    let fip = |ip: &str, inst: &str| {
        sb.agent("float-ip")
            .param("ip", ip)
            .param("nic", "eth0")
            .param("cidr_netmask", "28")
            .param("arp_count", "1")
            .env("OCF_RESOURCE_INSTANCE", inst)
    };
    fip("198.51.100.10", "vip-a").run("start").expect(0);
    fip("198.51.100.11", "vip-b").run("start").expect(0);
    assert!(addrs(&sb, "4").contains("198.51.100.11/28 brd 198.51.100.15 scope global secondary"));
    fip("198.51.100.10", "vip-a").run("stop").expect(0);
    assert!(!addrs(&sb, "4").contains("198.51.100.10/"));
    fip("198.51.100.11", "vip-b").run("monitor").expect(0);
    fip("198.51.100.11", "vip-b").run("stop").expect(0);
}

// ---- connection tickles (tickle_dir) -------------------------------------

/// Accepts and holds every connection to port 2049 (nfsd's stand-in),
/// IPv4 and IPv6, for at most two minutes.
const LISTENER: &str = "timeout 120 python3 -c '
import socket
l = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
l.bind((\"::\", 2049)); l.listen(1024)
held = []
while True:
    held.append(l.accept()[0])
' >/dev/null 2>&1 &";

/// A client connection to the floating address (argv[1]) that waits,
/// idle, for the server to end it; then connects again.
const CLIENT: &str = r#"
import socket, sys, time
vip = sys.argv[1] if len(sys.argv) > 1 else "192.0.2.10"
s = socket.create_connection((vip, 2049), timeout=5)
print("CONNECTED", s.getsockname()[1], flush=True)
s.settimeout(None)
try:
    print("EOF" if not s.recv(1) else "DATA", time.time(), flush=True)
except ConnectionResetError:
    print("RESET", time.time(), flush=True)
s2 = socket.create_connection((vip, 2049), timeout=5)
print("RECONNECTED", flush=True)
time.sleep(60)
"#;

/// The lines a child prints, as they come.
struct Lines {
    child: Child,
    rx: Receiver<String>,
}

impl Lines {
    fn of(mut child: Child) -> Lines {
        let rx = lines_of(child.stdout.take().unwrap());
        Lines { child, rx }
    }

    /// The next line starting with `word`, waiting at most `limit`.
    fn next(&mut self, word: &str, limit: Duration) -> Option<String> {
        let until = Instant::now() + limit;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) if l.starts_with(word) => return Some(l),
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None
                }
            }
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// One address family's addresses for [`takeover_tickles`].
struct Family {
    vip: &'static str,
    prefix: &'static str,
    node1: &'static str,
    node2: &'static str,
    client: &'static str,
}

const IPV4: Family = Family {
    vip: V4,
    prefix: "24",
    node1: "192.0.2.1/24",
    node2: "192.0.2.2/24",
    client: "192.0.2.100",
};

const IPV6: Family = Family {
    vip: V6,
    prefix: "64",
    node1: "2001:db8::1/64",
    node2: "2001:db8::2/64",
    client: "2001:db8::100",
};

/// The form a connection list gives a socket address: `a:p`, `[a6]:p`.
fn sockaddr(ip: &str, port: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// Two "nodes" and a client on one bridge (in the client's namespace). The
/// client holds an idle connection to the floating address on node 1;
/// node 1's monitor records it; node 1 vanishes from the link without a
/// word (no FIN, no reset). Node 2 starting the address without tickle_dir
/// leaves the client unaware (the control); starting it with tickle_dir
/// resets the stale connection at once, and the client connects to node 2.
fn takeover_tickles(f: &Family) {
    let client_cidr = format!("{}/{}", f.client, f.prefix);
    let n1 = sandbox!();
    let client = n1.veth_peer(&[f.node1], &[&client_cidr]);
    let n2 = sandbox!();
    n2.veth_to(&client, "eth2", &[f.node2], &[]);
    client.sh_ok(&format!(
        "set -e; ip link add br0 type bridge stp_state 0 forward_delay 0; \
         ip link set eth0 master br0; ip link set eth2 master br0; \
         ip addr del {client_cidr} dev eth0; ip link set br0 up; ip addr add {client_cidr} dev br0 nodad",
    ));
    let dir = n1.path("shared/tickle");
    std::fs::create_dir_all(&dir).unwrap();
    let dir_s = dir.to_str().unwrap();
    n1.sh_ok(LISTENER);
    n2.sh_ok(LISTENER);
    let ip = |sb| {
        sb_agent(sb)
            .param("ip", f.vip)
            .param("cidr_netmask", f.prefix)
    };
    ip(&n1).param("tickle_dir", dir_s).run("start").expect(0);
    let mut c = Lines::of(client.spawn(&["python3", "-c", CLIENT, f.vip]));
    let port = c
        .next("CONNECTED", Duration::from_secs(10))
        .expect("client connected to node 1");
    let port = port.split_whitespace().nth(1).unwrap().to_string();
    ip(&n1)
        .param("tickle_dir", dir_s)
        .interval_ms(10_000)
        .run("monitor")
        .expect(0);
    let list = std::fs::read_to_string(dir.join(f.vip)).expect("list written by monitor");
    assert_eq!(
        list,
        format!(
            "{}\t{}\n",
            sockaddr(f.vip, "2049"),
            sockaddr(f.client, &port)
        )
    );

    // node 1 is gone from the link: it sends nothing more, ever
    client.sh_ok("ip link set eth0 down");

    // control: the address on node 2 without tickles: the client waits on
    let r = ip(&n2).run("start");
    r.expect(0);
    assert!(
        c.next("RESET", Duration::from_secs(3)).is_none(),
        "the client noticed the move without tickles: the test proves nothing"
    );
    ip(&n2).run("stop").expect(0);

    let r = ip(&n2).param("tickle_dir", dir_s).run("start");
    let returned = now_s();
    r.expect(0);
    assert!(
        r.stderr.contains("tickled 1 recorded connection(s)"),
        "{}",
        r.stderr
    );
    let reset = c
        .next("RESET", Duration::from_secs(5))
        .expect("stale connection reset after the tickle");
    let at: f64 = reset.split_whitespace().nth(1).unwrap().parse().unwrap();
    let after = at - returned;
    eprintln!(
        "{}: reset {after:.3} s after start returned (start took {:?})",
        f.vip, r.elapsed
    );
    assert!(after <= 1.0, "reset {after:.3} s after start returned");
    c.next("RECONNECTED", Duration::from_secs(5))
        .expect("the client connects to node 2");
    // a list naming connections that are gone is no reason to fail a start
    ip(&n2).param("tickle_dir", dir_s).run("stop").expect(0);
    ip(&n2).param("tickle_dir", dir_s).run("start").expect(0);
    ip(&n2).param("tickle_dir", dir_s).run("stop").expect(0);
    ip(&n1).param("tickle_dir", dir_s).run("stop").expect(0);
}

fn sb_agent(sb: &Sandbox) -> AgentCmd<'_> {
    sb.agent("float-ip")
}

#[test]
fn takeover_tickles_the_recorded_connections_and_the_client_reconnects() {
    takeover_tickles(&IPV4);
}

#[test]
fn takeover_tickles_ipv6_connections_too() {
    takeover_tickles(&IPV6);
}

/// Clients that connect after a start (those a takeover's tickles sent
/// back, NFSv3 clients that statd-holding notifies next) are in the list
/// within [`RECORD_AFTER`] of the start, without waiting for a recurring
/// monitor: a crash just after a takeover tickles them too.
#[test]
fn start_records_the_clients_that_connect_after_it() {
    let sb = sandbox!();
    let peer = sb.veth_peer(&["192.0.2.1/24"], &["192.0.2.100/24"]);
    let dir = sb.path("shared/tickle");
    std::fs::create_dir_all(&dir).unwrap();
    let dir_s = dir.to_str().unwrap();
    sb.sh_ok(LISTENER);
    let cmd = v4(&sb)
        .param("cidr_netmask", "24")
        .param("tickle_dir", dir_s);
    let r = cmd.run("start");
    let started = Instant::now();
    r.expect(0);
    assert!(
        !dir.join(V4).exists(),
        "nothing to record at start: no client yet"
    );
    let mut c = Lines::of(peer.spawn(&["python3", "-c", CLIENT]));
    let port = c
        .next("CONNECTED", Duration::from_secs(10))
        .expect("client connected");
    let port = port.split_whitespace().nth(1).unwrap().to_string();
    let want = format!("{V4}:2049\t192.0.2.100:{port}\n");
    let until = started + RECORD_AFTER + Duration::from_secs(3);
    let mut list = String::new();
    while Instant::now() < until {
        list = std::fs::read_to_string(dir.join(V4)).unwrap_or_default();
        if list == want {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(list, want, "list after {:?}", started.elapsed());
    assert!(
        started.elapsed() >= RECORD_AFTER - Duration::from_millis(200),
        "recorded before RECORD_AFTER: the test would not tell the follow-up from start"
    );
    cmd.run("stop").expect(0);
}

/// The list is replaced atomically: an agent killed (-9, with its writer)
/// at any moment of a monitor leaves the old list or the new one, never a
/// torn or empty file.
#[test]
fn connection_list_is_never_torn_by_kill_9() {
    let sb = sandbox!();
    let peer = sb.veth_peer(&["192.0.2.1/24"], &["192.0.2.100/24"]);
    let dir = sb.path("shared/tickle");
    std::fs::create_dir_all(&dir).unwrap();
    let dir_s = dir.to_str().unwrap().to_string();
    sb.sh_ok(LISTENER);
    let cmd = v4(&sb)
        .param("cidr_netmask", "24")
        .param("tickle_dir", &dir_s)
        .interval_ms(10_000);
    cmd.run("start").expect(0);
    let hold = |n: usize| {
        format!(
            "import socket, time\nk = [socket.create_connection((\"192.0.2.10\", 2049)) for _ in range({n})]\nprint(\"UP\", flush=True)\ntime.sleep(120)\n"
        )
    };
    let mut base = Lines::of(peer.spawn(&["python3", "-c", &hold(300)]));
    base.next("UP", Duration::from_secs(20))
        .expect("300 connections");
    let env: String = cmd
        .params_env()
        .iter()
        .map(|(k, v)| format!("{k}='{v}' "))
        .collect();
    let agent = common::bin("float-ip");
    let mut extra: Option<Lines> = None;
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..30u32 {
        // toggle 150 more connections, so that every monitor has news
        if extra.take().is_none() {
            let mut l = Lines::of(peer.spawn(&["python3", "-c", &hold(150)]));
            l.next("UP", Duration::from_secs(20)).expect("150 more");
            extra = Some(l);
        }
        std::thread::sleep(Duration::from_millis(100));
        let delay_us = (i * 7919) % 20_000;
        sb.sh_ok(&format!(
            "{env} setsid {} monitor >/dev/null 2>&1 & p=$!; sleep {}; kill -9 -$p 2>/dev/null; wait; true",
            agent.display(),
            delay_us as f64 / 1e6
        ));
        // the killed writer's child is gone too (same process group)
        let path = dir.join(V4);
        if let Ok(text) = std::fs::read_to_string(&path) {
            let lines: Vec<&str> = text.lines().collect();
            assert!(
                lines.len() == 300 || lines.len() == 450,
                "torn list after kill -9 at +{delay_us} us: {} lines",
                lines.len()
            );
            assert!(text.ends_with('\n'));
            for l in &lines {
                assert!(l.starts_with("192.0.2.10:2049\t192.0.2.100:"), "{l:?}");
            }
            seen.insert(lines.len());
        }
    }
    // and a monitor left alone records what is there now
    cmd.run("monitor").expect(0);
    let n = std::fs::read_to_string(dir.join(V4))
        .unwrap()
        .lines()
        .count();
    assert_eq!(n, if extra.is_some() { 450 } else { 300 });
    eprintln!("list sizes seen after kills: {seen:?}");
    drop(extra);
    drop(base);
    cmd.run("stop").expect(0);
}

/// tickle_dir is checked like every path parameter; a damaged list is
/// skipped and named, never a failed start; 10,000 recorded connections go
/// out in the first round.
#[test]
fn tickle_dir_errors_damaged_lists_and_ten_thousand_connections() {
    let sb = sandbox!();
    let _peer = sb.veth_peer(&["192.0.2.1/24"], &["192.0.2.100/24"]);
    let ip = || v4(&sb).param("cidr_netmask", "24");
    ip().param("tickle_dir", "shared/tickle")
        .run("validate-all")
        .expect_reason(
            6,
            "parameter tickle_dir=\"shared/tickle\": not an absolute path",
        );
    let missing = sb.path("nowhere/tickle");
    ip().param("tickle_dir", missing.to_str().unwrap())
        .run("start")
        .expect_reason(2, "does not exist on this node");
    assert!(
        !addrs(&sb, "4").contains(V4),
        "nothing added on a refused start"
    );
    let file = sb.path("afile");
    std::fs::write(&file, "x").unwrap();
    ip().param("tickle_dir", file.to_str().unwrap())
        .run("start")
        .expect_reason(2, "is not a directory");

    let dir = sb.path("shared/tickle");
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    // damaged: a torn line, garbage, another address's line
    std::fs::write(
        dir.join(V4),
        "192.0.2.10:2049\t192.0.2.100:700\n192.0.2.10:2049\t192.0\n\u{1}\u{2}zz\n192.0.2.99:2049\t192.0.2.100:1\n",
    )
    .unwrap();
    let r = ip().param("tickle_dir", d).run("start");
    r.expect(0);
    assert!(r.stderr.contains("skipped 3 line(s)"), "{}", r.stderr);
    assert!(
        r.stderr.contains("tickled 1 recorded connection(s)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("nothing listens on port(s) 2049 of"),
        "{}",
        r.stderr
    );
    ip().param("tickle_dir", d).run("stop").expect(0);
    // a FIFO where the list should be neither hangs nor fails the start
    std::fs::remove_file(dir.join(V4)).unwrap();
    sb.sh_ok(&format!("mkfifo {}/{V4}", d));
    let r = ip().param("tickle_dir", d).timeout_ms(10_000).run("start");
    r.expect(0);
    assert!(r.stderr.contains("not a regular file"), "{}", r.stderr);
    ip().param("tickle_dir", d).run("stop").expect(0);
    std::fs::remove_file(dir.join(V4)).unwrap();

    let mut big = String::new();
    for k in 0..10_000u32 {
        big.push_str(&format!("192.0.2.10:2049\t192.0.2.100:{}\n", 1024 + k));
    }
    std::fs::write(dir.join(V4), big).unwrap();
    let r = ip().param("tickle_dir", d).run("start");
    r.expect(0);
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("INFO: tickled "))
        .unwrap_or_default()
        .to_string();
    eprintln!("{line} (start took {:?})", r.elapsed);
    assert!(
        line.contains("tickled 10000 recorded connection(s)"),
        "{}",
        r.stderr
    );
    assert!(!line.contains("left for the next round"), "{line}");
    ip().param("tickle_dir", d).run("stop").expect(0);
}

/// Issue 14, item 6: a start whose deadline cannot cover the duplicate probe
/// adds nothing and says it timed out (it used to add the address after a
/// probe cut short, then fail with a netlink reason while the address was up).
#[test]
fn start_out_of_time_changes_nothing_and_says_so() {
    let sb = sandbox!();
    let _peer = sb.veth_peer(&["192.0.2.1/24"], &["192.0.2.100/24"]);
    v4(&sb).timeout_ms(500).run("start").expect_reason(
        1,
        "start timed out (timeout 0.5s) before the duplicate probe",
    );
    assert!(!addrs(&sb, "4").contains(V4), "{}", addrs(&sb, "4"));
    v4(&sb).run("stop").expect(0);
}

/// Issue 14, item 7: a state path that can never hold the state (a
/// directory, an instance name too long for a file name) does not fail
/// stop: the address is removed and what could not be cleaned is logged.
#[test]
fn stop_succeeds_when_the_state_path_cannot_hold_state() {
    let sb = sandbox!();
    let _peer = sb.veth_peer(&["192.0.2.1/24"], &["192.0.2.100/24"]);
    sb.sh_ok(&format!("mkdir -p {STATE}"));
    v4(&sb).run("start").expect(0);
    let r = v4(&sb).run("stop");
    r.expect(0);
    assert!(
        r.stderr.contains("cannot hold a state file"),
        "{}",
        r.stderr
    );
    assert!(!addrs(&sb, "4").contains(V4));
    let long = "r".repeat(300);
    v4(&sb)
        .env("OCF_RESOURCE_INSTANCE", &long)
        .run("start")
        .expect(0);
    v4(&sb)
        .env("OCF_RESOURCE_INSTANCE", &long)
        .run("stop")
        .expect(0);
    assert!(!addrs(&sb, "4").contains(V4));
}
