//! statd-holding on the host, for real: rpc.statd running the built
//! callout, SM_MON/SM_UNMON sent to it the way the kernel lock manager
//! does (a small ONC RPC client in python3, since the host kernel has no
//! lockd), real sm-notify reaching a real rpc.statd in a peer namespace
//! (whose own HA callout logs every SM_NOTIFY it receives), ocf-tester and
//! crm_resource.
use crate::common::uml::{agents_sh, GuestAgent};
use crate::common::{self, bin, wait_until, AgentCmd, Sandbox};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const AGENT: &str = "statd-holding";

/// An NSM client: SM_MON / SM_UNMON to the local statd, over UDP from
/// 127.0.0.1, exactly as lockd sends them (statd refuses other callers).
const NSM_CLIENT: &str = r#"
import os, socket, struct, sys

def xstr(s):
    b = s.encode()
    return struct.pack(">I", len(b)) + b + b"\0" * ((4 - len(b) % 4) % 4)

def call(port, prog, vers, proc, args):
    xid = struct.unpack(">I", os.urandom(4))[0]
    msg = struct.pack(">IIIIII", xid, 0, 2, prog, vers, proc) + struct.pack(">IIII", 0, 0, 0, 0) + args
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(10)
    s.sendto(msg, ("127.0.0.1", port))
    data, _ = s.recvfrom(65536)
    rxid, mtype, stat = struct.unpack(">III", data[:12])
    assert rxid == xid and mtype == 1 and stat == 0, (rxid, mtype, stat)
    vlen = struct.unpack(">I", data[16:20])[0]
    off = 20 + vlen
    assert struct.unpack(">I", data[off:off + 4])[0] == 0, "call not accepted"
    return data[off + 4:]

port = struct.unpack(">I", call(111, 100000, 2, 3, struct.pack(">IIII", 100024, 1, 17, 0))[:4])[0]
op, mon, my = sys.argv[1], sys.argv[2], sys.argv[3]
ident = xstr(mon) + xstr(my) + struct.pack(">III", 100021, 4, 16)
if op == "mon":
    res, state = struct.unpack(">Ii", call(port, 100024, 1, 2, ident + bytes.fromhex(sys.argv[4]))[:8])
    sys.exit(0 if res == 0 else 1)
else:
    call(port, 100024, 1, 3, ident)
"#;

/// A daemon run in a namespace in the foreground; killed on drop.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_in(ns_pid: u32, args: &[&str], log: &Path) -> Daemon {
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let out = std::fs::File::create(log).unwrap();
    let err = out.try_clone().unwrap();
    Daemon(
        Command::new("nsenter")
            .args(["-t", &ns_pid.to_string(), "-n", "-m", "--"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn daemon"),
    )
}

/// rpcbind and rpc.statd (foreground, --no-notify, optional HA callout)
/// in namespace `ns_pid`, with statd running as the `statd` user (the
/// owner of sm/, as on Debian), which the callout then runs as too.
fn start_statd(
    ns_pid: u32,
    sh: impl Fn(&str) -> String,
    callout: Option<&Path>,
    logdir: &Path,
) -> Vec<Daemon> {
    sh("chown statd /var/lib/nfs/sm /var/lib/nfs/sm.bak");
    let rpcbind = spawn_in(
        ns_pid,
        &["rpcbind", "-f", "-w"],
        &logdir.join("rpcbind.log"),
    );
    assert!(
        wait_until(Duration::from_secs(10), || sh(
            "rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && echo up; true"
        )
        .contains("up")),
        "rpcbind did not come up"
    );
    let mut args = vec!["rpc.statd", "-F", "-d", "--no-notify"];
    let c;
    if let Some(p) = callout {
        c = p.to_string_lossy().into_owned();
        args.extend(["-H", c.as_str()]);
    }
    let statd = spawn_in(ns_pid, &args, &logdir.join("statd.log"));
    assert!(
        wait_until(Duration::from_secs(10), || sh(
            "rpcinfo -p 127.0.0.1 2>&1; true"
        )
        .contains("status")),
        "rpc.statd did not register: {}",
        std::fs::read_to_string(logdir.join("statd.log")).unwrap_or_default()
    );
    vec![statd, rpcbind]
}

/// A directory for a test's shared storage and files, reachable by the
/// unprivileged statd user (which the callout runs as).
fn open_dir(sb_dir: &Path) {
    std::fs::set_permissions(sb_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

const VIP_HOSTS: &str =
    "192.0.2.10 nfs-vip.example\\n2001:db8::10 nfs-vip6.example\\n192.0.2.20 nfs-vip2.example\\n";

/// The node every test here starts from: the sandbox reachable by the
/// statd user (`open_dir`), a private /etc/hosts naming the floating
/// addresses (they must map back to names, or sm-notify refuses them), and
/// `addrs` (CIDR; IPv6 without DAD) on lo.
fn node(sb: &Sandbox, addrs: &[&str]) {
    open_dir(sb.dir.path());
    sb.sh_ok(&format!(
        "printf '127.0.0.1 localhost\\n{VIP_HOSTS}' > /run/.test-hosts && mount --bind /run/.test-hosts /etc/hosts"
    ));
    for a in addrs {
        let nodad = if a.contains(':') { " nodad" } else { "" };
        sb.sh_ok(&format!("ip addr add {a} dev lo{nodad}"));
    }
}

/// An empty holding directory at `rel` in the sandbox's scratch space.
fn holding_dir(sb: &Sandbox, rel: &str) -> PathBuf {
    let p = sb.path(rel);
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// The statd-holding resource of most tests: `hold`, address 192.0.2.10.
fn resource<'a>(sb: &'a Sandbox, hold: &Path) -> AgentCmd<'a> {
    sb.agent(AGENT)
        .param("holding_dir", hold.to_str().unwrap())
        .param("ip", "192.0.2.10")
}

/// rpcbind and rpc.statd in a sandbox (with the hanfs callout, or none),
/// and the NSM client that talks to statd as lockd does; stopped on drop.
struct Statd<'a> {
    sb: &'a Sandbox,
    nsm: PathBuf,
    /// rpc.statd, then rpcbind.
    daemons: Vec<Daemon>,
}

impl<'a> Statd<'a> {
    fn start(sb: &'a Sandbox, callout: bool) -> Statd<'a> {
        let callout = callout.then(|| bin("hanfs-statd-callout"));
        let daemons = start_statd(sb.pid(), |s| sb.sh_ok(s), callout.as_deref(), sb.dir.path());
        let nsm = sb.path("nsmrpc.py");
        std::fs::write(&nsm, NSM_CLIENT).unwrap();
        Statd { sb, nsm, daemons }
    }

    /// rpc.statd dies (SIGKILL, as in a crash); rpcbind stays.
    fn kill_statd(&mut self) {
        drop(self.daemons.remove(0));
    }

    /// SM_MON of `mon` by `my`, with `cookie`; returns once statd answered.
    fn mon(&self, mon: &str, my: &str, cookie: &str) {
        self.sb.sh_ok(&format!(
            "python3 {} mon {mon} {my} {cookie}",
            self.nsm.display()
        ));
    }

    fn unmon(&self, mon: &str, my: &str) {
        self.sb
            .sh_ok(&format!("python3 {} unmon {mon} {my}", self.nsm.display()));
    }
}

fn line(mon: &str, my: &str, cookie: &str) -> String {
    format!("0100007f 000186b5 00000004 00000010 {cookie} {mon} {my}\n")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// Processes named `comm` alive in the sandbox's mount namespace.
fn live(sb: &Sandbox, comm: &str) -> String {
    sb.sh_ok(&format!(
        r#"me=$(readlink /proc/self/ns/mnt); for p in /proc/[0-9]*; do
             [ "$(readlink $p/ns/mnt 2>/dev/null)" = "$me" ] || continue
             [ "$(cat $p/comm 2>/dev/null)" = {comm} ] || continue
             grep -q '^State:[[:space:]]*[RSD]' $p/status 2>/dev/null && echo ${{p#/proc/}}
           done; true"#
    ))
    .trim()
    .to_string()
}

/// sm-notify processes alive in the sandbox's mount namespace.
fn live_notifiers(sb: &Sandbox) -> String {
    live(sb, "sm-notify")
}

/// Kills any process named `.1` left in the sandbox when a test ends,
/// passed or failed (sm-notify: the tests check themselves that stop
/// leaves none; rpc.statd: the daemon an agent started).
struct Reap<'a>(&'a Sandbox, &'static str);

impl Drop for Reap<'_> {
    fn drop(&mut self) {
        let pids = live(self.0, self.1);
        if !pids.is_empty() {
            let _ = self.0.sh(&format!(
                "kill -9 {}",
                pids.split_whitespace().collect::<Vec<_>>().join(" ")
            ));
        }
    }
}

fn registration(sb: &Sandbox, instance: &str) -> serde_json::Value {
    let s = sb.sh_ok(&format!("cat /run/hanfs/statd-holding/{instance}.json"));
    serde_json::from_str(&s).unwrap()
}

/// The whole chain: a client locks through node 1 (its SM_MON reaches the
/// holding directory before statd answers), node 1 crashes, node 2 takes
/// over and notifies the client from the floating addresses, IPv4 and
/// IPv6, with real sm-notify reaching the client's real rpc.statd.
#[test]
fn lock_on_crashed_node_is_notified_from_the_new_node() {
    let shared = tempfile::Builder::new()
        .prefix("hanfs-shared-")
        .tempdir()
        .unwrap();
    open_dir(shared.path());
    let holding = shared.path().join("hold");
    std::fs::create_dir(&holding).unwrap();
    let h = holding.to_str().unwrap();

    // Node 1: statd with the callout; the service is active there.
    {
        let node1 = sandbox!();
        node(&node1, &["192.0.2.10/32", "2001:db8::10/128"]);
        let statd = Statd::start(&node1, true);
        node1
            .agent(AGENT)
            .param("holding_dir", h)
            .param("ip", "192.0.2.10 2001:db8::10")
            .run("start")
            .expect(0);
        // Each SM_MON returns only after the callout wrote the client to
        // shared storage: checked at once, no waiting.
        let clients = [
            ("192.0.2.2", "11"),
            ("2001:db8::2", "22"),
            ("192.0.2.99", "99"),
        ];
        for (mon, c) in clients {
            let cookie = c.repeat(16);
            statd.mon(mon, "node1", &cookie);
            assert_eq!(
                read(&holding.join(mon)),
                line(mon, "node1", &cookie),
                "{mon} not in holding_dir"
            );
        }
        // Written by the unprivileged statd user, atomically.
        let owner = Command::new("stat").args(["-c", "%U", h]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&owner.stdout).trim(), "statd");
        // Crash: no stop; node 1's namespaces and daemons go away.
    }

    // Node 2, with the client on its link.
    let node2 = sandbox!();
    let _reap = Reap(&node2, "sm-notify");
    node(&node2, &[]);
    let _statd2 = Statd::start(&node2, true);
    let peer = node2.veth_peer(
        &[
            "192.0.2.1/24",
            "192.0.2.10/24",
            "2001:db8::1/64",
            "2001:db8::10/64",
        ],
        &["192.0.2.2/24", "2001:db8::2/64"],
    );
    peer.sh_ok(
        "mount -t tmpfs tmpfs /run && mkdir -p /run/rpcbind && mount -t tmpfs tmpfs /var/lib/nfs && \
         mkdir -p /var/lib/nfs/sm /var/lib/nfs/sm.bak && \
         printf '#!/bin/sh\\necho \"$*\" >> /run/notified.log\\n' > /run/peer-callout && chmod 755 /run/peer-callout",
    );
    let peer_logs = node2.path("peer");
    let _client = start_statd(
        peer.pid(),
        |s| peer.sh_ok(s),
        Some(Path::new("/run/peer-callout")),
        &peer_logs,
    );

    let start = node2
        .agent(AGENT)
        .param("holding_dir", h)
        .param("ip", "192.0.2.10,2001:db8::10")
        .param("notify_timeout", "5")
        .timeout_ms(30_000)
        .run("start");
    start.expect(0);

    // The client's statd got SM_NOTIFY from each floating address, naming
    // the server by the address's host name, with the state recorded in
    // the holding directory.
    let state = read(&holding.join(".hanfs-nsm-state")).trim().to_string();
    assert!(
        state.parse::<u64>().unwrap() % 2 == 1,
        "state {state} must be odd"
    );
    let got = || peer.sh_ok("cat /run/notified.log 2>/dev/null; true");
    assert!(
        wait_until(Duration::from_secs(20), || {
            let l = got();
            l.contains(&format!("sm-notify nfs-vip.example 192.0.2.10 {state}"))
                && l.contains(&format!("sm-notify nfs-vip6.example 2001:db8::10 {state}"))
        }),
        "client not notified from both addresses: {:?}\nstart: {}",
        got(),
        start.stderr
    );
    // The unreachable client did not hold up start: it is still being
    // retried in the background, and start said so.
    assert!(start.stderr.contains("192.0.2.99"), "{}", start.stderr);
    let reg = registration(&node2, "test");
    let notifiers: Vec<i64> = reg["notifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["pid"].as_i64().unwrap())
        .collect();
    assert_eq!(notifiers.len(), 2, "{reg}");
    assert!(
        !live_notifiers(&node2).is_empty(),
        "retrying notifier for 192.0.2.99 should still run"
    );
    let pending = node2.sh_ok("ls /run/hanfs/statd-holding/test.notify/192.0.2.10-0/sm.bak");
    assert_eq!(pending.trim(), "192.0.2.99");

    // Node 2's statd now monitors the clients under node 2's own name.
    let here = node2.sh_ok("uname -n").trim().to_string();
    assert_eq!(
        node2.sh_ok("cat /var/lib/nfs/sm/192.0.2.2"),
        line("192.0.2.2", &here, &"11".repeat(16))
    );
    assert_eq!(
        node2.sh_ok("ls /var/lib/nfs/sm").split_whitespace().count(),
        3
    );

    node2
        .agent(AGENT)
        .param("holding_dir", h)
        .param("ip", "192.0.2.10 2001:db8::10")
        .run("monitor")
        .expect(0);
    // A repeated start does not notify again (clients outside grace would
    // fail to reclaim).
    let again = node2
        .agent(AGENT)
        .param("holding_dir", h)
        .param("ip", "192.0.2.10 2001:db8::10")
        .run("start");
    again.expect(0);
    assert!(again.stderr.contains("already started"), "{}", again.stderr);
    assert_eq!(
        registration(&node2, "test")["notifiers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Stop leaves nothing running; the list stays on shared storage.
    node2
        .agent(AGENT)
        .param("holding_dir", h)
        .param("ip", "192.0.2.10 2001:db8::10")
        .run("stop")
        .expect(0);
    assert_eq!(
        live_notifiers(&node2),
        "",
        "sm-notify left running after stop"
    );
    node2
        .agent(AGENT)
        .param("holding_dir", h)
        .param("ip", "192.0.2.10 2001:db8::10")
        .run("monitor")
        .expect(7);
    for mon in ["192.0.2.2", "2001:db8::2", "192.0.2.99"] {
        assert!(holding.join(mon).exists(), "{mon} lost from holding_dir");
    }
}

/// Two instances on one node: the callout (run by rpc.statd, and by
/// hand) records every client in both holding directories and removes it
/// on SM_UNMON; after one instance stops, it only gains clients (for the
/// drain time) while the other keeps following statd.
#[test]
fn two_instances_follow_statd_through_the_callout() {
    let sb = sandbox!();
    node(&sb, &["192.0.2.10/32", "192.0.2.20/32"]);
    let (ha, hb) = (holding_dir(&sb, "a/hold"), holding_dir(&sb, "b/hold"));
    open_dir(&sb.path("a"));
    open_dir(&sb.path("b"));
    let statd = Statd::start(&sb, true);
    let a = || resource(&sb, &ha).env("OCF_RESOURCE_INSTANCE", "svc-a");
    let b = || {
        resource(&sb, &hb)
            .env("OCF_RESOURCE_INSTANCE", "svc-b")
            .param("ip", "192.0.2.20")
    };
    a().run("monitor").expect(7);
    a().run("start").expect(0);
    b().run("start").expect(0);
    // One holding directory per resource.
    resource(&sb, &ha)
        .env("OCF_RESOURCE_INSTANCE", "svc-c")
        .run("start")
        .expect_reason(6, "already used by svc-a");

    let c1 = "c1".repeat(16);
    statd.mon("192.0.2.31", "node1", &c1);
    for h in [&ha, &hb] {
        assert_eq!(
            read(&h.join("192.0.2.31")),
            line("192.0.2.31", "node1", &c1)
        );
    }
    statd.unmon("192.0.2.31", "node1");
    for h in [&ha, &hb] {
        assert!(
            !h.join("192.0.2.31").exists(),
            "del-client not applied to {}",
            h.display()
        );
    }

    // The callout run by hand, as statd would run it, on a record statd
    // (here: we) put in sm/.
    let c2 = "c2".repeat(16);
    sb.sh_ok(&format!(
        "printf '{}' > /var/lib/nfs/sm/client.example",
        line("192.0.2.32", "node1", &c2)
    ));
    let callout = bin("hanfs-statd-callout");
    sb.sh_ok(&format!(
        "{} add-client 192.0.2.32 node1",
        callout.display()
    ));
    for h in [&ha, &hb] {
        assert_eq!(
            read(&h.join("client.example")),
            line("192.0.2.32", "node1", &c2)
        );
    }
    sb.sh_ok(&format!(
        "{} del-client 192.0.2.32 node1 && {} sm-notify peer 192.0.2.5 7",
        callout.display(),
        callout.display()
    ));
    assert!(!ha.join("client.example").exists() && !hb.join("client.example").exists());

    // Stop a: it leaves the callout's list; b goes on.
    a().run("stop").expect(0);
    a().run("monitor").expect(7);
    b().run("monitor").expect(0);
    let c3 = "c3".repeat(16);
    statd.mon("192.0.2.33", "node1", &c3);
    assert!(hb.join("192.0.2.33").exists());
    assert!(
        ha.join("192.0.2.33").exists(),
        "a stopped instance still gains clients while draining"
    );
    statd.unmon("192.0.2.33", "node1");
    assert!(!hb.join("192.0.2.33").exists());
    assert!(
        ha.join("192.0.2.33").exists(),
        "a stopped instance never loses clients"
    );
    b().run("stop").expect(0);
    b().run("stop").expect(0);
}

/// Start must run as root (it registers in /run and runs rpc.statd and
/// sm-notify): as another user it is refused with 4, before doing anything.
#[test]
fn not_root_is_refused_with_code_4() {
    let sb = sandbox!();
    node(&sb, &["192.0.2.10/32"]);
    let hold = holding_dir(&sb, "hold");
    open_dir(&hold);
    let out = sb.sh(&format!(
        "OCF_RESKEY_holding_dir={} OCF_RESKEY_ip=192.0.2.10 OCF_RESOURCE_INSTANCE=test HA_LOGFACILITY=none \
         setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all {} start",
        hold.display(),
        bin(AGENT).display()
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("ocf-exit-reason:statd-holding start must run as root"),
        "{err}"
    );
    let registered = sb.sh("test -e /run/hanfs/statd-holding/test.json");
    assert!(!registered.status.success(), "registered as nobody");
    resource(&sb, &hold).run("monitor").expect(7);
}

/// Without the callout, the monitor is the safety net: it copies what
/// statd monitors into the holding directory. A probe after a reboot says
/// stopped.
#[test]
fn monitor_copies_clients_when_statd_has_no_callout() {
    let sb = sandbox!();
    node(&sb, &["192.0.2.10/32"]);
    let hold = holding_dir(&sb, "hold");
    let statd = Statd::start(&sb, false);
    let agent = || resource(&sb, &hold);
    let st = agent().run("start");
    st.expect(0);
    assert!(
        st.stderr.contains("without an HA callout"),
        "no warning: {}",
        st.stderr
    );
    let c = "c4".repeat(16);
    statd.mon("192.0.2.34", "node1", &c);
    assert!(!hold.join("192.0.2.34").exists());
    let m = agent().interval_ms(30_000).run("monitor");
    m.expect(0);
    assert!(m.stderr.contains("192.0.2.34"), "{}", m.stderr);
    assert_eq!(
        read(&hold.join("192.0.2.34")),
        line("192.0.2.34", "node1", &c)
    );
    sb.reboot_runtime_state();
    agent().run("monitor").expect(7);
    agent().run("stop").expect(0);
}

/// Make the sandbox's /etc/nfs.conf name the built callout as statd's HA
/// callout, as the meta-data tells administrators to (for an rpc.statd
/// started without -H, by the agent).
fn nfs_conf_with_callout(sb: &Sandbox) {
    sb.sh_ok(&format!(
        "printf '[statd]\\nha-callout=%s\\n' {} > /run/.test-nfs.conf && mount --bind /run/.test-nfs.conf /etc/nfs.conf",
        bin("hanfs-statd-callout").display()
    ));
}

/// Issue 12, 4: rpc.statd dies on the active node. The monitor fails
/// (1) saying so; the recovery (stop, start) runs rpc.statd again without
/// notifying anyone, with the same NSM state number and the clients it
/// monitored, and with the callout from nfs.conf: a client locking
/// afterwards is in the holding directory when its SM_MON returns.
#[test]
fn statd_dies_monitor_fails_and_start_runs_it_again() {
    let sb = sandbox!();
    let _reap = Reap(&sb, "rpc.statd");
    node(&sb, &["192.0.2.10/32"]);
    nfs_conf_with_callout(&sb);
    let hold = holding_dir(&sb, "hold");
    let mut statd = Statd::start(&sb, true);
    let agent = || resource(&sb, &hold).param("notify_timeout", "1");
    agent().run("start").expect(0);
    let c1 = "a1".repeat(16);
    statd.mon("192.0.2.61", "node1", &c1);
    assert!(hold.join("192.0.2.61").exists());
    let state = sb.sh_ok("od -An -tx1 /var/lib/nfs/state");

    statd.kill_statd();
    let m = agent().interval_ms(30_000).run("monitor");
    m.expect_reason(1, "rpc.statd is not running: ");
    assert!(m.stderr.contains("(ENOLCK)"), "{}", m.stderr);
    agent().run("monitor").expect(1); // a probe says so too

    agent().run("stop").expect(0);
    let st = agent().run("start");
    st.expect(0);
    assert!(
        st.stderr
            .contains("rpc.statd is not running: starting it (")
            && st.stderr.contains("rpc.statd --no-notify)"),
        "{}",
        st.stderr
    );
    assert!(
        !st.stderr.contains("without an HA callout"),
        "statd must run the callout from nfs.conf:\n{}",
        st.stderr
    );
    assert_eq!(live(&sb, "rpc.statd").split_whitespace().count(), 1);
    agent().interval_ms(30_000).run("monitor").expect(0);
    // statd came back without notifying: same state, same clients.
    assert_eq!(sb.sh_ok("od -An -tx1 /var/lib/nfs/state"), state);
    assert_eq!(sb.sh_ok("ls /var/lib/nfs/sm").trim(), "192.0.2.61");
    // A later client is recorded by the callout before statd answers.
    let c2 = "a2".repeat(16);
    statd.mon("192.0.2.62", "node1", &c2);
    assert_eq!(
        read(&hold.join("192.0.2.62")),
        line("192.0.2.62", "node1", &c2)
    );
    // A second start finds statd running and leaves it alone.
    agent().run("stop").expect(0);
    let again = agent().run("start");
    again.expect(0);
    assert!(!again.stderr.contains("starting it"), "{}", again.stderr);
    agent().run("stop").expect(0);
}

/// Issue 12, 7: the shared storage under the holding directory is full,
/// then read-only, while clients lock. The callout (run by rpc.statd)
/// cannot record them: it logs at error level (here on statd's stderr),
/// statd still answers, and the monitor fails naming the clients and the
/// error, once for the same clients (then logs them at error level); once
/// the storage takes writes again the monitor records them and passes.
#[test]
fn full_or_read_only_holding_storage_fails_the_monitor_until_recorded() {
    let sb = sandbox!();
    node(&sb, &["192.0.2.10/32"]);
    let mnt = sb.path("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let hold = mnt.join("hold");
    let h = hold.display().to_string();
    sb.sh_ok(&format!(
        "mount -t tmpfs -o size=64k,mode=755 small {m} && mkdir {h}",
        m = mnt.display()
    ));
    let statd = Statd::start(&sb, true);
    let agent = || resource(&sb, &hold).param("notify_timeout", "1");
    let monitor = || agent().interval_ms(30_000).run("monitor");
    // (the small file system is mounted in the sandbox only)
    let held =
        |c: &str| String::from_utf8_lossy(&sb.sh(&format!("cat {h}/{c}")).stdout).into_owned();
    agent().run("start").expect(0);

    // Full: a filler takes every block.
    sb.sh_ok(&format!(
        "dd if=/dev/zero of={}/fill bs=4k 2>/dev/null; true",
        mnt.display()
    ));
    let (ca, cb) = ("b1".repeat(16), "b2".repeat(16));
    statd.mon("192.0.2.71", "node1", &ca);
    statd.mon("192.0.2.72", "node1", &cb);
    assert_eq!(held("192.0.2.71") + &held("192.0.2.72"), "");
    let statd_log = read(&sb.path("statd.log"));
    assert!(
        statd_log
            .contains("ERROR: test: cannot record NFSv3 lock holder 192.0.2.71 in holding_dir")
            && statd_log.contains("No space left on device"),
        "the callout's error is not in statd's log:\n{statd_log}"
    );
    assert_eq!(
        sb.sh_ok("ls /run/hanfs/statd-holding/test.unrecorded")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["192.0.2.71", "192.0.2.72"]
    );
    monitor().expect_reason(
        1,
        &format!(
            "cannot record 2 NFSv3 lock holders in holding_dir {h}: No space left on device (192.0.2.71, 192.0.2.72)"
        ),
    );
    // Still full, the same clients: failed once (Pacemaker shows the failed
    // action until it is cleaned up; its recovery cannot record them either),
    // now an error in the log at every monitor.
    let again = monitor();
    again.expect(0);
    assert!(
        again
            .stderr
            .contains("ERROR: cannot record 2 NFSv3 lock holders")
            && again
                .stderr
                .contains("reported by a failed monitor already"),
        "{}",
        again.stderr
    );

    // Space again: the monitor records them, says so, and passes.
    sb.sh_ok(&format!("rm {}/fill", mnt.display()));
    let m = monitor();
    m.expect(0);
    assert!(
        m.stderr
            .contains("192.0.2.71 is in holding_dir now; the statd callout could not record it"),
        "{}",
        m.stderr
    );
    assert_eq!(held("192.0.2.71"), line("192.0.2.71", "node1", &ca));
    assert_eq!(held("192.0.2.72"), line("192.0.2.72", "node1", &cb));
    assert_eq!(sb.sh_ok("ls /run/hanfs/statd-holding/test.unrecorded"), "");
    monitor().expect(0);

    // Read-only: the same, with that error.
    sb.sh_ok(&format!("mount -o remount,ro {}", mnt.display()));
    let cc = "b3".repeat(16);
    statd.mon("192.0.2.73", "node1", &cc);
    monitor().expect_reason(
        1,
        &format!(
            "cannot record 1 NFSv3 lock holder in holding_dir {h}: Read-only file system (192.0.2.73)"
        ),
    );
    sb.sh_ok(&format!("mount -o remount,rw {}", mnt.display()));
    monitor().expect(0);
    assert_eq!(held("192.0.2.73"), line("192.0.2.73", "node1", &cc));
    agent().run("stop").expect(0);
}

/// Issue 14, 4: the callout (run by rpc.statd, which waits for it) reads
/// the registry and sm/ without blocking: a FIFO in either is skipped at
/// once, and statd goes on recording clients.
#[test]
fn the_callout_is_not_blocked_by_fifos() {
    let sb = sandbox!();
    node(&sb, &["192.0.2.10/32"]);
    let hold = holding_dir(&sb, "hold");
    let statd = Statd::start(&sb, true);
    let agent = || resource(&sb, &hold);
    agent().run("start").expect(0);
    let _f1 = sb.fifo(
        "/run/hanfs/statd-holding/zz-fifo.json",
        Duration::from_secs(8),
    );
    let _f2 = sb.fifo("/var/lib/nfs/sm/192.0.2.77", Duration::from_secs(8));
    let t = std::time::Instant::now();
    sb.sh_ok(&format!(
        "{} add-client 192.0.2.77 node1",
        bin("hanfs-statd-callout").display()
    ));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the callout took {:?} (blocked on a FIFO?)",
        t.elapsed()
    );
    let c = "c7".repeat(16);
    let t = std::time::Instant::now();
    statd.mon("192.0.2.78", "node1", &c);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "SM_MON took {:?} (the callout blocked statd?)",
        t.elapsed()
    );
    assert_eq!(
        read(&hold.join("192.0.2.78")),
        line("192.0.2.78", "node1", &c)
    );
    agent().run("stop").expect(0);
}

/// Issue 14, 5: sm/ belongs to the statd user. The root monitor that
/// copies it into the holding directory (which that user can read) must
/// not follow a link to a root-only file, read a FIFO or an endless file:
/// each is skipped and logged, and the real clients are still copied.
#[test]
fn the_root_monitor_treats_sm_as_untrusted() {
    let sb = sandbox!();
    node(&sb, &["192.0.2.10/32"]);
    let hold = holding_dir(&sb, "hold");
    let statd = Statd::start(&sb, false);
    let agent = || resource(&sb, &hold);
    agent().run("start").expect(0);
    // A root-only file with a record-shaped line, linked from sm/.
    let secret = sb.path("root-only/secret");
    std::fs::write(&secret, line("192.0.2.50", "node1", &"5e".repeat(16))).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    sb.sh_ok(&format!(
        "ln -s {} /var/lib/nfs/sm/192.0.2.50 && chown -h statd /var/lib/nfs/sm/192.0.2.50",
        secret.display()
    ));
    let _fifo = sb.fifo("/var/lib/nfs/sm/192.0.2.51", Duration::from_secs(8));
    // An endless file: a record line, then a hole of 100 MiB.
    sb.sh_ok(&format!(
        "printf '{}' > /var/lib/nfs/sm/192.0.2.52 && truncate -s 100M /var/lib/nfs/sm/192.0.2.52",
        line("192.0.2.52", "node1", &"52".repeat(16)).trim_end()
    ));
    let c = "c5".repeat(16);
    statd.mon("192.0.2.53", "node1", &c);
    let m = agent().interval_ms(30_000).run("monitor");
    assert!(
        m.elapsed < Duration::from_secs(5),
        "monitor took {:?} (blocked on sm/?)",
        m.elapsed
    );
    m.expect(0);
    for planted in ["192.0.2.50", "192.0.2.51", "192.0.2.52"] {
        assert!(
            !hold.join(planted).exists(),
            "{planted} was copied into the holding directory"
        );
        assert!(
            m.stderr.contains(planted) && m.stderr.contains("skipped"),
            "{planted}: not logged as skipped:\n{}",
            m.stderr
        );
    }
    assert_eq!(
        read(&hold.join("192.0.2.53")),
        line("192.0.2.53", "node1", &c)
    );
    agent().run("stop").expect(0);
}

/// The holding directory lives on shared storage: validate-all only warns
/// where it is not mounted, start needs it, and a monitor notices when it
/// is unmounted under the running resource.
#[test]
fn holding_dir_on_shared_storage() {
    let sb = sandbox!();
    let _reap = Reap(&sb, "sm-notify");
    node(&sb, &["192.0.2.10/32"]);
    // statd's user owns sm/, as on Debian.
    let _statd = Statd::start(&sb, true);
    let mnt = sb.path("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let hold = mnt.join("hold");
    let agent = || resource(&sb, &hold);
    let v = agent().run("validate-all");
    v.expect(0);
    assert!(
        v.stderr.contains("does not exist on this node"),
        "{}",
        v.stderr
    );
    agent().run("start").expect_reason(1, "does not exist");
    agent().run("monitor").expect(7);
    agent().run("stop").expect(0);

    sb.sh_ok(&format!(
        "mount -t tmpfs shared {} && mkdir {}",
        mnt.display(),
        hold.display()
    ));
    sb.sh_ok(&format!(
        "printf '{}' > {}/192.0.2.77",
        line("192.0.2.77", "old", &"77".repeat(16)),
        hold.display()
    ));
    agent().param("notify_timeout", "1").run("start").expect(0);
    agent().run("monitor").expect(0);
    assert_eq!(
        sb.sh_ok(&format!("stat -c %U {}", hold.display())).trim(),
        "statd",
        "holding_dir must be writable by statd's user"
    );
    sb.sh_ok(&format!(
        "umount -l {} && mkdir -p {}",
        mnt.display(),
        hold.display()
    ));
    agent()
        .run("monitor")
        .expect_reason(1, "no longer the directory registered");
    agent().run("stop").expect(0);
    assert_eq!(live_notifiers(&sb), "");
}

#[test]
fn ocf_tester_passes() {
    let sb = sandbox!();
    node(&sb, &["192.0.2.10/32"]);
    let hold = holding_dir(&sb, "hold");
    let _statd = Statd::start(&sb, true);
    sb.install_agents();
    sb.expect_ocf_tester_passes(
        AGENT,
        &format!("-o holding_dir={} -o ip=192.0.2.10", hold.display()),
    );
}

#[test]
fn crm_resource_validate_reports_bad_input() {
    let sb = sandbox!();
    node(&sb, &[]);
    sb.install_agents();
    let hold = holding_dir(&sb, "hold");
    let h = hold.to_str().unwrap();
    sb.crm_validate(
        AGENT,
        &[("holding_dir", h), ("ip", "192.0.2.10 2001:db8::10")],
    )
    .expect_ok();
    for (opts, rc, needle) in [
        (
            vec![("holding_dir", h), ("ip", "not-an-address")],
            6,
            "parameter ip=\"not-an-address\": not an IPv4 or IPv6 address",
        ),
        (
            vec![("holding_dir", "srv/hold"), ("ip", "192.0.2.10")],
            6,
            "parameter holding_dir=\"srv/hold\": not an absolute path",
        ),
        (vec![("holding_dir", h)], 6, "parameter ip is required"),
        (
            vec![("holding_dir", h), ("ip", "192.0.2.10 192.0.2.77")],
            2,
            "ip 192.0.2.77 has no host name (",
        ),
        (
            vec![
                ("holding_dir", h),
                ("ip", "192.0.2.10"),
                ("statd_dir", "/nonexistent"),
            ],
            2,
            "statd_dir /nonexistent has no sm/",
        ),
    ] {
        let v = sb.crm_validate(AGENT, &opts);
        assert!(
            v.reason(rc).starts_with(needle),
            "{opts:?}: expected {rc} / {needle:?} in:\n{}",
            v.output
        );
    }
    // The reason is short enough to reach crm_resource whole.
    let v = sb.crm_validate(AGENT, &[("holding_dir", h), ("ip", "192.0.2.77")]);
    assert!(
        v.output.contains("; sm-notify -v needs one)"),
        "{}",
        v.output
    );
}

/// Shell prelude for the UML tests below: a node with two services' disks
/// ($S/a, $S/b), `grace INSTANCE RECOVERY_DIR ACTION` (nfs-grace), `hold
/// ACTION` (statd-holding svc1 on $S/a/hold, address 192.0.2.10 on lo,
/// named in /etc/hosts: a loopback address is refused) and `val`.
fn guest_prelude() -> String {
    let grace = GuestAgent::new("grace", "nfs-grace")
        .args(&["inst", "dir"])
        .instance("$inst")
        .param("recovery_dir", "$dir")
        .param("server_scope", "t")
        .param("grace_time", "20")
        .param("lease_time", "10")
        .param("nlm_grace_time", "60");
    let hold = GuestAgent::new("hold", AGENT)
        .param("holding_dir", "$S/a/hold")
        .param("ip", "192.0.2.10")
        .param("notify_timeout", "2");
    r#"
S=/run/hanfs-srv; mkdir -p $S/a/hold $S/b
ip addr add 192.0.2.10/32 dev lo; echo "192.0.2.10 nfs-vip.example" >> /etc/hosts
"#
    .to_string()
        + &agents_sh(&[grace, hold])
}

/// In a UML guest with the real kernel nfsd and lockd: when nfsd restarts
/// under a running service (here: a second service arrives on the node and
/// nfs-grace restarts nfsd for its grace period), lockd restarts and drops
/// every NLM lock; the next monitor of the first service's statd-holding
/// notices and notifies its NFSv3 clients again, with a new state number,
/// once.
#[test]
fn uml_lockd_restart_renotifies_the_clients() {
    let vm = uml!();
    let script = guest_prelude()
        + r#"
lockd() { for p in $(pgrep -x lockd); do [ "$(awk '{print $4}' /proc/$p/stat)" = 2 ] && echo $p; done; }
modprobe nfsd; rpcbind -w; rpc.statd --no-notify; rpc.mountd
grace svc1 $S/a/cld start; val grace1 $?
val lockd_before $(lockd)
# a client that held an NFSv3 lock through the floating address
printf '0100007f 000186b5 00000004 00000010 00000000000000000000000000000000 127.0.0.2 127.0.0.1\n' > $S/a/hold/127.0.0.2
hold start; val start $?
hold monitor; val monitor_same_lockd $?
# a second service arrives: nfsd (and lockd) restart for its grace period
grace svc2 $S/b/cld start; val grace2 $?
val lockd_after $(lockd)
hold monitor; val monitor_new_lockd $?
hold monitor; val monitor_again $?
hold stop; val stop $?
grace svc2 $S/b/cld stop; grace svc1 $S/a/cld stop
"#;
    let r = vm.run(&script, Duration::from_secs(150));
    r.assert_ok();
    for (k, v) in [
        ("grace1", "0"),
        ("start", "0"),
        ("monitor_same_lockd", "0"),
        ("grace2", "0"),
        ("monitor_new_lockd", "0"),
        ("monitor_again", "0"),
        ("stop", "0"),
    ] {
        assert_eq!(r.value(k).as_deref(), Some(v), "{k}\n{}", r.output);
    }
    assert_ne!(
        r.value("lockd_before"),
        r.value("lockd_after"),
        "{}",
        r.output
    );
    assert_eq!(
        r.output.matches("lockd restarted (pid").count(),
        1,
        "renotified exactly once:\n{}",
        r.output
    );
    let states: Vec<&str> = r
        .output
        .lines()
        .filter(|l| l.contains("notifying 1 client(s) from 192.0.2.10"))
        .collect();
    assert_eq!(
        states.len(),
        2,
        "at start and after the restart:\n{}",
        r.output
    );
    assert_ne!(states[0], states[1], "a new state number:\n{}", r.output);
}

/// Issue 12, 4, in a UML guest with the real kernel lockd and two real
/// NFSv3 clients: rpc.statd dies on the server. The monitor fails; c1,
/// which lockd monitors already, still gets new locks; c2, a new lock
/// holder, is refused (ENOLCK: lockd cannot register it with statd)
/// and, being refused, is not recorded. The recovery (stop, start) runs
/// rpc.statd again (with the callout from nfs.conf); c2's lock is then
/// granted and c2 is in the holding directory. lockd kept every lock and
/// no grace period is in force, so the restarted statd-holding does not
/// notify the clients (their reclaims would be refused).
#[test]
fn uml_statd_down_refuses_new_lock_holders_until_start_runs_it() {
    let vm = uml!();
    let script = guest_nfs3_service()
        + GUEST_LOCKJOBS
        + r#"
lockjob 1 c1_first 0
val recorded_before "$(ls $S/a/hold | tr '\n' ' ')"
# rpc.statd crashes
kill -9 $(cat /run/rpc.statd.pid); sleep 0.5
val statd_gone $(kill -0 $(cat /run/rpc.statd.pid) 2>/dev/null && echo no || echo yes)
hold monitor 2> /tmp/mon.err; val monitor_dead $?
val monitor_reason "$(sed -n 's/^ocf-exit-reason://p' /tmp/mon.err)"
lockjob 1 c1_more 10
lockjob 2 c2_dead 20
val recorded_dead "$(ls $S/a/hold | tr '\n' ' ')"
# the recovery: statd's callout configured in nfs.conf, as documented
printf '[statd]\nha-callout=%s\n' $CALLOUT > /run/nfs.conf; mount --bind /run/nfs.conf /etc/nfs.conf
hold stop; val stop $?
val grace_flags "v4=$(cat /proc/fs/nfsd/v4_end_grace) nlm=$(cat /proc/fs/lockd/nlm_end_grace) threads=$(cat /proc/fs/nfsd/threads) lockd=$(pgrep -x lockd | tr "\n" " ")"
hold start 2> /tmp/start.err; val restart $?
grep -i statd /tmp/start.err
val statd_args "$(tr '\0' ' ' < /proc/$(cat /run/rpc.statd.pid)/cmdline)"
hold monitor; val monitor_back $?
lockjob 2 c2_back 20
val recorded_after "$(ls $S/a/hold | tr '\n' ' ')"
sleep 3
val locks_now "$(lockd_locks)"
val reclaim_failures $(dmesg | grep -c 'failed to reclaim')
dmesg | grep -i -E 'lockd|statd' | tail -5
touch /tmp/stop; sleep 1
cat /tmp/out
hold stop; grace svc1 $S/a/cld stop
"#;
    let r = vm.run(&script, Duration::from_secs(240));
    r.assert_ok();
    eprintln!(
        "after the recovery: {:?} NLM locks on the server, {:?} refused reclaims on the clients",
        r.value("locks_now"),
        r.value("reclaim_failures")
    );
    for (k, v) in [
        ("grace1", "0"),
        ("hold1", "0"),
        ("c1_first", "ok"),
        ("recorded_before", "10.1.0.2"),
        ("statd_gone", "yes"),
        ("monitor_dead", "1"),
        ("c1_more", "ok"),
        ("c2_dead", "ENOLCK"),
        ("recorded_dead", "10.1.0.2"),
        ("stop", "0"),
        ("restart", "0"),
        ("statd_args", "/usr/sbin/rpc.statd --no-notify"),
        ("monitor_back", "0"),
        ("c2_back", "ok"),
        ("recorded_after", "10.1.0.2 10.2.0.2"),
        // c1's two locks and c2's, all still held after the recovery
        ("locks_now", "3"),
        // and not notified outside a grace period: a refused reclaim makes
        // the client's lockd forget the lock, so it would not reclaim it
        // at the next takeover (lab run 20261202-180338 lost them so)
        ("reclaim_failures", "0"),
    ] {
        assert_eq!(r.value(k).as_deref(), Some(v), "{k}\n{}", r.output);
    }
    let reason = r.value("monitor_reason").unwrap_or_default();
    assert!(reason.starts_with("rpc.statd is not running: "), "{reason}");
}

/// Shell text for the UML lock tests after [`guest_nfs3_service`]:
/// `lockjob CLIENT KEY BYTE` takes a non-blocking lock of byte BYTE in
/// client CLIENT and keeps it until /tmp/stop (KEY=ok in /tmp/out, or
/// KEY=<errno name> when refused); `lockd_locks` counts lockd's locks.
const GUEST_LOCKJOBS: &str = r#"
waitfor() { for i in $(seq 1 600); do grep -q "^$1=" /tmp/out && return 0; sleep 0.1; done; return 1; }
# lockjob CLIENT KEY BYTE: a non-blocking lock of byte BYTE, kept until
# /tmp/stop; prints KEY=ok, or KEY=<errno name> when refused
lockjob() {
    client $1 "python3 -c \"
import errno, fcntl, os, time
f = open('/tmp/mc/f', 'r+')
try:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, $3)
except OSError as e:
    print('$2=' + errno.errorcode.get(e.errno, str(e.errno)), flush=True)
    raise SystemExit
print('$2=ok', flush=True)
while not os.path.exists('/tmp/stop'): time.sleep(0.2)
\""
    waitfor $2
}
lockd_locks() { awk -v p="$(pgrep -x lockd | head -1)" '$2 == "POSIX" && $5 == p' /proc/locks | wc -l; }
"#;

/// Issue 12, 7, in a UML guest with the real kernel lockd and two real
/// NFSv3 clients: the holding directory turns read-only on the node (a
/// read-only bind mount) and c2, a new lock holder, locks: it gets its
/// lock, unrecorded, and the monitor fails naming it. Pacemaker's
/// recovery, a restart in place, succeeds (nothing to write: nobody is
/// notified) and logs the unrecorded client at error level; the monitor
/// does not fail again for the same client (it would restart the resource
/// over and over: lab run 20261203-065051), it logs it at error level.
/// Writable again, the monitor records c2 and passes; lockd kept every
/// lock, nobody was told to reclaim.
#[test]
fn uml_read_only_holding_dir_restart_in_place_keeps_the_unrecorded_lock() {
    let vm = uml!();
    let script = guest_nfs3_service()
        + GUEST_LOCKJOBS
        + r#"
lockjob 1 c1_first 0
val recorded_before "$(ls $S/a/hold | tr '\n' ' ')"
mount --bind $S/a/hold $S/a/hold && mount -o remount,bind,ro $S/a/hold; val ro $?
lockjob 2 c2_ro 20
val recorded_ro "$(ls $S/a/hold | tr '\n' ' ')"
hold monitor 2> /tmp/mon.err; val monitor_ro $?
val monitor_reason "$(sed -n 's/^ocf-exit-reason://p' /tmp/mon.err)"
hold stop; val stop $?
hold start 2> /tmp/start.err; val restart $?
cat /tmp/start.err
val start_logged $(grep -c 'ERROR: .*cannot record 1 NFSv3 lock holder.*lost if this node fails before they are recorded' /tmp/start.err)
val start_notified $(grep -c 'not notifying' /tmp/start.err)
hold monitor 2> /tmp/mon2.err; val monitor_still $?
val monitor_still_logged $(grep -c 'ERROR: .*10.2.0.2.*reported by a failed monitor already' /tmp/mon2.err)
umount $S/a/hold; val rw $?
hold monitor; val monitor_back $?
val recorded_after "$(ls $S/a/hold | tr '\n' ' ')"
sleep 3
val locks_now "$(lockd_locks)"
val reclaim_failures $(dmesg | grep -c 'failed to reclaim')
touch /tmp/stop; sleep 1
cat /tmp/out
hold stop; grace svc1 $S/a/cld stop
"#;
    let r = vm.run(&script, Duration::from_secs(240));
    r.assert_ok();
    for (k, v) in [
        ("grace1", "0"),
        ("hold1", "0"),
        ("c1_first", "ok"),
        ("recorded_before", "10.1.0.2"),
        ("ro", "0"),
        ("c2_ro", "ok"),
        ("recorded_ro", "10.1.0.2"),
        ("monitor_ro", "1"),
        ("stop", "0"),
        ("restart", "0"),
        ("start_logged", "1"),
        ("start_notified", "1"),
        ("monitor_still", "0"),
        ("monitor_still_logged", "1"),
        ("rw", "0"),
        ("monitor_back", "0"),
        ("recorded_after", "10.1.0.2 10.2.0.2"),
        ("locks_now", "2"),
        ("reclaim_failures", "0"),
    ] {
        assert_eq!(r.value(k).as_deref(), Some(v), "{k}\n{}", r.output);
    }
    let reason = r.value("monitor_reason").unwrap_or_default();
    assert!(
        reason.contains("cannot record 1 NFSv3 lock holder in holding_dir")
            && reason.ends_with("Read-only file system (10.2.0.2)"),
        "{reason}"
    );
}

/// In a UML guest with the real lockd: with no NFSv3 client recorded and
/// one NFS service on the node, start ends lockd's grace (nobody can
/// reclaim; new locks need not wait); with a second nfs-grace resource on
/// the node it leaves the grace alone.
#[test]
fn uml_nlm_grace_ends_when_nobody_can_reclaim() {
    let vm = uml!();
    let script = guest_prelude()
        + r#"
modprobe nfsd; rpcbind -w; rpc.statd --no-notify; rpc.mountd
grace svc1 $S/a/cld start; val grace1 $?
val nlm_after_grace_start $(cat /proc/fs/lockd/nlm_end_grace)
hold start; val start1 $?
val nlm_alone $(cat /proc/fs/lockd/nlm_end_grace)
hold stop; val stop1 $?
grace svc2 $S/b/cld start; val grace2 $?
val nlm_after_second_service $(cat /proc/fs/lockd/nlm_end_grace)
hold start; val start2 $?
val nlm_two_services $(cat /proc/fs/lockd/nlm_end_grace)
hold stop; grace svc2 $S/b/cld stop; grace svc1 $S/a/cld stop
"#;
    let r = vm.run(&script, Duration::from_secs(150));
    r.assert_ok();
    for (k, v) in [
        ("grace1", "0"),
        ("nlm_after_grace_start", "N"),
        ("start1", "0"),
        ("nlm_alone", "Y"),
        ("stop1", "0"),
        ("grace2", "0"),
        ("nlm_after_second_service", "N"),
        ("start2", "0"),
        ("nlm_two_services", "N"),
    ] {
        assert_eq!(r.value(k).as_deref(), Some(v), "{k}\n{}", r.output);
    }
}

/// The start of the UML lock scenarios: `guest_prelude`, the server
/// (nfsd through nfs-grace svc1, rpc.statd with the hanfs callout, the
/// export $S/a/data, statd-holding started) and [`GUEST_CLIENTS`].
fn guest_nfs3_service() -> String {
    guest_prelude()
        + &format!("CALLOUT={}\n", bin("hanfs-statd-callout").display())
        + r#"
modprobe nfsd; modprobe nfsv3; modprobe veth
rpcbind -w; rpc.statd --no-notify -H $CALLOUT; rpc.mountd
mkdir -p $S/a/data; chmod 777 $S/a/data; : > $S/a/data/f; chmod 666 $S/a/data/f
grace svc1 $S/a/cld start; val grace1 $?
exportfs -o rw,no_root_squash,fsid=7,no_subtree_check,insecure '*':$S/a/data
hold start; val hold1 $?
"# + GUEST_CLIENTS
}

/// Shell text for the UML lock scenarios: two NFSv3 clients c1 and c2,
/// each in its own network, mount and UTS namespace (own lockd instance,
/// rpcbind and rpc.statd; addresses 10.1.0.2, 10.2.0.2, reached over a
/// veth pair), mounting 192.0.2.10:$S/a/data on /tmp/mc; `client C
/// SCRIPT` runs SCRIPT in client C (output appended to /tmp/out).
const GUEST_CLIENTS: &str = r#"
for c in 1 2; do
    ip netns add c$c; ip link add v$c type veth peer name v${c}c; ip link set v${c}c netns c$c
    ip addr add 10.$c.0.1/24 dev v$c; ip link set v$c up
    ip -n c$c addr add 10.$c.0.2/24 dev v${c}c; ip -n c$c link set v${c}c up; ip -n c$c link set lo up
    ip -n c$c route add default via 10.$c.0.1
done
# client CLIENT SCRIPT: run SCRIPT in client CLIENT's namespaces (the mount
# and daemons are set up once by the first call, kept by a holder process)
cat > /tmp/client.sh <<'CL'
c=$1; hostname c$c
mount -t tmpfs t /run; mount -t tmpfs t /var/lib/nfs; mkdir -p /var/lib/nfs/sm /var/lib/nfs/sm.bak /tmp/mc
rpcbind -w; rpc.statd --no-notify
timeout 60 mount -v -t nfs -o vers=3,proto=tcp,hard 192.0.2.10:/run/hanfs-srv/a/data /tmp/mc >> /tmp/c$c.mount 2>&1; echo "mount$c=$?" >> /tmp/out
echo ready > /tmp/c$c.ready
while ! [ -e /tmp/stop ]; do
    for f in /tmp/c$c.job.*; do [ -e "$f" ] || continue; r=/tmp/c$c.run.${f##*.}; mv "$f" $r; sh $r >> /tmp/out 2>&1 & done
    sleep 0.1
done
CL
for c in 1 2; do ip netns exec c$c unshare -m -u sh /tmp/client.sh $c > /tmp/c$c.log 2>&1 & done
for i in $(seq 1 900); do [ -e /tmp/c1.ready ] && [ -e /tmp/c2.ready ] && break; sleep 0.1; done
grep -q "mount1=0" /tmp/out && grep -q "mount2=0" /tmp/out || { cat /tmp/out /tmp/c*.mount /tmp/c*.log; ip -n c1 addr; ip -n c1 route; ip netns exec c1 rpcinfo -p 192.0.2.10; dmesg | tail; exit 1; }
job=0
client() { job=$((job+1)); echo "$2" > /tmp/c$1.job.$job; }
"#;

/// The two-client lock scenario of the NLM grace tests below, in one UML
/// guest: the server (nfsd, lockd, rpc.statd with the hanfs callout, the
/// address 192.0.2.10 on lo) in the initial namespaces, and two NFSv3
/// clients, each in its own network, mount and UTS namespace (own lockd
/// instance, rpcbind and rpc.statd, reached over a veth pair): c1 holds
/// `N` byte-range locks (bytes 0, 2, 4, ...) on one file; c2 is the other
/// lock owner. `takeover` simulates the move the way the other UML tests
/// do: statd-holding stops, nfsd stops (lockd drops every lock), nfsd
/// starts again (a new NLM grace), statd-holding starts and notifies c1.
/// `$1` of the script decides what happens at the takeover: `early` (the
/// agent's default), `monitored` (the same, but c1 asks for a new lock
/// before it is notified, as a client does whose applications lock during
/// the failover: statd monitors it then, not when it reclaims), `known`
/// (the same, then c1's statd record is dated an hour back: as on a node
/// whose statd monitored c1 before the grace began, no record tells the
/// watcher that c1 is back, only its connection to lockd), `control`
/// (lockd's grace ended before the clients are notified, as an unsafe
/// early end would), `known-control` (both).
fn nlm_scenario(n: usize, mode: &str) -> String {
    guest_nfs3_service()
        + &format!("N={n}; MODE={mode}\n")
        + r#"
now() { date +%s.%N; }
# c1: the holder, N locks, held until /tmp/stop
client 1 "python3 -c \"
import fcntl, os, time
f = open('/tmp/mc/f', 'r+')
for i in range($N): fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 2 * i)
print('held=%d' % $N, flush=True)
while not os.path.exists('/tmp/stop'): time.sleep(0.2)
\""
for i in $(seq 1 300); do grep -q "^held=" /tmp/out && break; sleep 0.1; done
cat /tmp/out
lockd_locks() { awk -v p="$(pgrep -x lockd | head -1)" '$2 == "POSIX" && $5 == p' /proc/locks | wc -l; }
val locks_before "$(lockd_locks)"
for i in $(seq 1 100); do [ -e $S/a/hold/10.1.0.2 ] && break; sleep 0.1; done
val held_recorded "$(ls $S/a/hold | tr '\n' ' ')"
head -3 /proc/locks
# --- the takeover ---
hold stop; val hold_stop $?
# nfs-export stop: unexport, and release the file system's NLM locks (on
# a real takeover they die with the old node)
exportfs -u '*':$S/a/data; echo $S/a/data > /proc/fs/nfsd/unlock_filesystem
grace svc1 $S/a/cld stop; val grace_stop $?
val locks_after_stop "$(lockd_locks)"
grace svc1 $S/a/cld start; val grace2 $?
exportfs -o rw,no_root_squash,fsid=7,no_subtree_check,insecure '*':$S/a/data
val nlm_grace_at_start $(cat /proc/fs/lockd/nlm_end_grace)
if [ $MODE = monitored ] || [ $MODE = known ] || [ $MODE = known-control ]; then
    client 1 "python3 -c \"
import fcntl, os, time
f = open('/tmp/mc/f', 'r+')
fcntl.lockf(f, fcntl.LOCK_EX, 1, 200000)
print('early_lock=%.3f' % time.time(), flush=True)
while not os.path.exists('/tmp/stop'): time.sleep(0.2)
\""
    for i in $(seq 1 200); do [ -e /var/lib/nfs/sm/10.1.0.2 ] && break; sleep 0.1; done
    val monitored_before "$(ls /var/lib/nfs/sm | tr '\n' ' ')"
    case $MODE in known*) touch -d '1 hour ago' /var/lib/nfs/sm/10.1.0.2; val lockd_conns "$(ss -Htn state established | grep -c '192.0.2.10:')";; esac
fi
# c2: the other owner keeps trying to take the LAST lock of the set; a
# second process of c2 waits for a new, non-conflicting lock
client 2 "python3 -c \"
import fcntl, os, time
f = open('/tmp/mc/f', 'r+')
tries = 0
while not os.path.exists('/tmp/stop'):
    tries += 1
    try:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 2 * ($N - 1))
        print('stolen=%.3f' % time.time(), flush=True)
        break
    except OSError:
        time.sleep(0.05)
print('steal_tries=%d' % tries, flush=True)
\""
if [ $MODE = shared ]; then
    # another service on the node whose client never answers
    mkdir -p $S/b/hold
    printf '0100007f 000186b5 00000004 00000010 00000000000000000000000000000000 10.1.0.99 uml-guest\n' > $S/b/hold/10.1.0.99
    INST=svc2 hold start holding_dir=$S/b/hold notify_timeout=1; val hold_other $?
fi
T0=$(now)
if [ $MODE = control ] || [ $MODE = known-control ]; then echo Y > /proc/fs/lockd/nlm_end_grace; export OCF_RESKEY_end_nlm_grace_early=false; fi
( while [ "$(cat /proc/fs/lockd/nlm_end_grace)" = N ]; do sleep 0.05; done; echo "grace_end=$(now)" >> /tmp/out ) &
hold start; val hold2 $?
client 2 "python3 -c \"
import fcntl, time
f = open('/tmp/mc/f', 'r+')
fcntl.lockf(f, fcntl.LOCK_EX, 1, 100000)
print('new_lock=%.3f' % time.time(), flush=True)
\""
for i in $(seq 1 1200); do grep -q "^new_lock=" /tmp/out && break; sleep 0.1; done
if [ $MODE = monitored ] || [ $MODE = known ]; then for i in $(seq 1 300); do grep -q "^early_lock=" /tmp/out && break; sleep 0.1; done; fi
sleep 2
val locks_after_reclaim "$(lockd_locks)"
val watch "$(tr -d '\n' < /run/hanfs/statd-holding/svc1.nlm)"
val ended_at "$(python3 -c "import json; print(json.load(open('/run/hanfs/statd-holding/svc1.nlm')).get('ended_at'))")"
touch /tmp/stop; sleep 1
val t0 $T0
cat /tmp/out
dmesg | grep -E 'lockd' | tail -5
val reclaim_failures $(dmesg | grep -c 'failed to reclaim')
hold stop; grace svc1 $S/a/cld stop
"#
}

/// The measured points of an NLM grace scenario, in seconds after
/// statd-holding start.
fn nlm_times(r: &common::uml::UmlResult) -> (Option<f64>, Option<f64>, Option<f64>) {
    let t = |k: &str| r.value(k).and_then(|v| v.parse::<f64>().ok());
    let t0 = t("t0").expect("t0");
    (
        t("grace_end").map(|x| x - t0),
        t("new_lock").map(|x| x - t0),
        t("stolen").map(|x| x - t0),
    )
}

/// Control: lockd's grace ended before the notified client reclaims (what
/// an unsafe early end does): the reclaims are refused and the other
/// owner takes a lock the first client still believes it holds. Shows the
/// scenario can fail.
#[test]
fn uml_nlm_grace_control_unsafe_end_loses_locks() {
    let vm = uml!();
    unsafe_end_loses_locks(&vm, "control");
}

/// A control mode: a lock stolen from the reclaiming client and reclaims
/// refused.
fn unsafe_end_loses_locks(vm: &common::uml::Uml, mode: &str) {
    let r = vm.run(&nlm_scenario(300, mode), Duration::from_secs(280));
    r.assert_ok();
    let (grace_end, new_lock, stolen) = nlm_times(&r);
    eprintln!("{mode}: grace end {grace_end:?} s, new lock {new_lock:?} s, stolen {stolen:?} s after start");
    eprintln!("{}", r.output);
    assert!(stolen.is_some(), "expected a stolen lock:\n{}", r.output);
    assert_ne!(
        r.value("reclaim_failures").as_deref(),
        Some("0"),
        "{}",
        r.output
    );
}

/// Runs `nlm_scenario(300, mode)` and checks what every early end must
/// give: each of `expect`, no held lock taken by the other owner, no
/// reclaim refused, the watcher's verdict. Returns the script's result and
/// the watcher's end, in seconds after statd-holding start.
fn early_end(
    vm: &common::uml::Uml,
    mode: &str,
    expect: &[(&str, &str)],
) -> (common::uml::UmlResult, f64) {
    let r = vm.run(&nlm_scenario(300, mode), Duration::from_secs(280));
    r.assert_ok();
    let (grace_end, new_lock, stolen) = nlm_times(&r);
    eprintln!(
        "{mode}: grace end {grace_end:?} s, new lock {new_lock:?} s after statd-holding start; steal attempts {:?}",
        r.value("steal_tries")
    );
    let common = [
        ("held", "300"),
        ("locks_before", "300"),
        ("locks_after_stop", "0"),
        ("nlm_grace_at_start", "N"),
        ("hold2", "0"),
        ("reclaim_failures", "0"),
    ];
    for (k, v) in common.iter().chain(expect) {
        assert_eq!(r.value(k).as_deref(), Some(*v), "{k}\n{}", r.output);
    }
    assert!(
        stolen.is_none(),
        "the other owner got a held lock:\n{}",
        r.output
    );
    let watch = r.value("watch").unwrap_or_default();
    assert!(
        watch.contains("\"done\": true") && watch.contains("ended lockd's grace period"),
        "{watch}\n{}",
        r.output
    );
    // the watcher's own time, taken just before it ended the grace (the
    // shell poller's grace_end lags by up to a poll)
    let t0: f64 = r.value("t0").unwrap().parse().unwrap();
    let ended: f64 = r
        .value("ended_at")
        .and_then(|v| v.parse().ok())
        .expect("ended_at");
    let new = new_lock.expect("new lock");
    eprintln!(
        "{mode}: the watcher ended lockd's grace {:.1} s after statd-holding start (poller {grace_end:?}); first new lock {new:.1} s",
        ended - t0
    );
    assert!(
        new >= ended - t0,
        "a new lock before the grace ended?\n{}",
        r.output
    );
    (r, ended - t0)
}

/// The fix: a client holding 300 NFSv3 locks is notified after a takeover
/// and reclaims them all while another client keeps trying to take the
/// last one; statd-holding's watcher ends lockd's grace (60 s here) only
/// once every lock is back and the table is quiet: the other owner never
/// gets the lock, no reclaim is refused, and a new non-conflicting lock is
/// granted seconds after start instead of after the full grace.
#[test]
fn uml_nlm_grace_ends_early_once_every_lock_is_reclaimed() {
    let vm = uml!();
    early_end(
        &vm,
        "early",
        &[
            ("mount1", "0"),
            ("mount2", "0"),
            ("held_recorded", "10.1.0.2"),
            ("locks_after_reclaim", "300"),
        ],
    );
}

/// The same when the client holding 300 locks asks for a new one before
/// it is notified (its application locks during the failover; the lab's
/// clients do): statd monitors it then, lockd does not ask again when it
/// reclaims, and the watcher counts it as back from the start. Its
/// reclaims must still all be in before the grace ends, and its own new
/// lock comes after.
#[test]
fn uml_nlm_grace_ends_early_when_clients_locked_before_the_notification() {
    let vm = uml!();
    early_lock_end(&vm, "monitored");
}

/// `early_end` for the modes where c1 asks for a new lock before it is
/// notified: that lock, too, only after the grace ended.
fn early_lock_end(vm: &common::uml::Uml, mode: &str) -> (common::uml::UmlResult, f64) {
    let (r, ended) = early_end(
        vm,
        mode,
        &[
            ("monitored_before", "10.1.0.2"),
            ("locks_after_reclaim", "301"),
        ],
    );
    let t0: f64 = r.value("t0").unwrap().parse().unwrap();
    let early: f64 = r
        .value("early_lock")
        .and_then(|v| v.parse().ok())
        .expect("early_lock");
    assert!(
        early - t0 >= ended,
        "the new lock came before the grace ended?\n{}",
        r.output
    );
    (r, ended)
}

/// Two services on the node: the other one's notified client never
/// answers, so this service's watcher, although its own 300 locks are all
/// back, leaves the node-wide grace alone; it runs its full 60 s, and the
/// other owner still never gets the lock.
#[test]
fn uml_nlm_grace_waits_for_another_services_clients() {
    let vm = uml!();
    let r = vm.run(&nlm_scenario(300, "shared"), Duration::from_secs(280));
    r.assert_ok();
    let (grace_end, new_lock, stolen) = nlm_times(&r);
    eprintln!("shared node: grace end {grace_end:?} s, new lock {new_lock:?} s after start");
    for (k, v) in [
        ("hold_other", "0"),
        ("hold2", "0"),
        ("locks_after_reclaim", "300"),
        ("reclaim_failures", "0"),
        ("ended_at", "None"),
    ] {
        assert_eq!(r.value(k).as_deref(), Some(v), "{k}\n{}", r.output);
    }
    assert!(stolen.is_none(), "{}", r.output);
    let watch = r.value("watch").unwrap_or_default();
    // it waited (for svc2) until lockd's own timer ended the grace
    assert!(
        watch.contains("lockd's grace period is over"),
        "{watch}\n{}",
        r.output
    );
    // lockd's own timer ended it (60 s, rounded up to its 10 s ticks)
    assert!(grace_end.expect("grace ended") > 50.0, "{}", r.output);
}

/// The shared-node case (issue 9): statd on this node monitored the
/// client holding 300 locks before the grace began, so it writes no new
/// record when the client asks for a lock or reclaims; the client's lockd
/// asked for a new lock before it was notified (its connection to lockd is
/// there before the notification, and the reclaims use it). Only the
/// connection shows the client is back: the watcher still waits for its
/// answer and for the lock table to stay quiet, ends the grace long
/// before its 60 s, and the other owner never gets a held lock.
#[test]
fn uml_nlm_grace_ends_early_when_statd_knew_the_client_before_the_grace() {
    let vm = uml!();
    let (r, ended) = early_lock_end(&vm, "known");
    eprintln!(
        "known: TCP connections to 192.0.2.10 before the notification: {:?}; watch: {}",
        r.value("lockd_conns"),
        r.value("watch").unwrap_or_default()
    );
    // no record rule can have fired: without the connection the watcher
    // waits for lockd's own timer (60 s)
    assert!(ended < 30.0, "{ended}\n{}", r.output);
}

/// Its control: the same client and contender, but lockd's grace ended
/// before the notification: reclaims are refused and the contender takes
/// a lock the client still believes it holds (the test above would fail).
#[test]
fn uml_nlm_grace_control_statd_knew_the_client_unsafe_end_loses_locks() {
    let vm = uml!();
    unsafe_end_loses_locks(&vm, "known-control");
}
