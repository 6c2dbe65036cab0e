//! Host-side robustness, run for real: every file an agent reads, damaged
//! each way (torn, empty, garbage, huge, another user's, a link
//! elsewhere), under the actions that read it. Each answers with its OCF
//! code and an exit reason (or ignores the file and logs), within a time
//! bound, and writes nothing where a link points. And instances of one
//! agent started at once on one node do not corrupt each other.
use crate::common::{AgentCmd, AgentRun, Sandbox};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every action here must be done by then; a hang is killed at `LIMIT`.
const BOUND: Duration = Duration::from_secs(8);
const LIMIT: Duration = Duration::from_secs(30);

/// A way a file can be damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    /// The first half of a good file (a torn write, a full disk).
    Truncated,
    Empty,
    /// Binary bytes, no line or JSON structure.
    Garbage,
    /// A good file followed by a sparse hole of 200 MiB: over every cap.
    Huge,
    /// A good file, owned by `nobody`.
    WrongOwner,
    /// A link to a good file elsewhere (outside the agent's directories).
    LinkElsewhere,
}

use Damage::*;
const DAMAGES: [Damage; 6] = [Truncated, Empty, Garbage, Huge, WrongOwner, LinkElsewhere];

/// `path` inside the sandbox, seen from the host.
fn inside(sb: &Sandbox, path: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{}/root{path}", sb.pid()))
}

/// A planted damage; for a link, where it points and what that held.
struct Planted {
    damage: Damage,
    target: Option<(PathBuf, Vec<u8>)>,
}

impl Planted {
    /// The link's target is as it was: nothing was written through it.
    #[track_caller]
    fn target_unchanged(&self) {
        if let Some((t, was)) = &self.target {
            assert_eq!(
                &std::fs::read(t).unwrap(),
                was,
                "{} was written through the link",
                t.display()
            );
        }
    }
}

/// Plant `damage` at `path` (inside the sandbox) over a file whose good
/// content is `good`.
fn plant(sb: &Sandbox, path: &str, good: &[u8], damage: Damage) -> Planted {
    let p = inside(sb, path);
    let _ = std::fs::remove_file(&p);
    let mut target = None;
    match damage {
        Truncated => std::fs::write(&p, &good[..good.len() / 2]).unwrap(),
        Empty => std::fs::write(&p, b"").unwrap(),
        Garbage => {
            let g: Vec<u8> = (0..4096u32).map(|i| (i * 167 % 256) as u8).collect();
            std::fs::write(&p, g).unwrap()
        }
        Huge => {
            std::fs::write(&p, good).unwrap();
            let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
            f.set_len(200 << 20).unwrap();
        }
        WrongOwner => {
            std::fs::write(&p, good).unwrap();
            std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
        }
        LinkElsewhere => {
            let t = sb.path(&format!("elsewhere/{}", crate::common::unique_name("t")));
            std::fs::write(&t, good).unwrap();
            std::os::unix::fs::symlink(&t, &p).unwrap();
            target = Some((t, good.to_vec()));
        }
    }
    Planted { damage, target }
}

/// Run `action` bounded; check its code, and for a failure an exit reason
/// containing one of `needles` (for 7, a log line).
#[track_caller]
fn check(cmd: AgentCmd<'_>, action: &str, d: Damage, code: i32, needles: &[&str]) -> AgentRun {
    let r = cmd.within(LIMIT).run(action);
    assert!(
        r.elapsed < BOUND,
        "{d:?}: {action} took {:?}; stderr:\n{}",
        r.elapsed,
        r.stderr
    );
    assert_eq!(
        r.code, code,
        "{d:?}: {action} returned {}; stderr:\n{}",
        r.code, r.stderr
    );
    if code == 7 {
        // "not running" is a state, not a failure: logged, no exit reason.
        assert!(
            needles.iter().any(|n| r.stderr.contains(n)),
            "{d:?}: {action}: stderr lacks any of {needles:?}:\n{}",
            r.stderr
        );
    } else if code != 0 {
        let reason = r.exit_reason().unwrap_or_default();
        assert!(
            needles.iter().any(|n| reason.contains(n)),
            "{d:?}: {action}: exit reason {reason:?} lacks any of {needles:?}; stderr:\n{}",
            r.stderr
        );
    }
    r
}

/// What the state file's reader says of each damage (`load_state`).
fn state_reason(d: Damage) -> &'static [&'static str] {
    match d {
        Truncated | Empty | Garbage => &["is damaged"],
        Huge => &["is larger than"],
        WrongOwner => &["is owned by user 65534, not root"],
        LinkElsewhere => &["is a symbolic link (not followed)"],
    }
}

fn read_inside(sb: &Sandbox, path: &str) -> Vec<u8> {
    std::fs::read(inside(sb, path)).unwrap()
}

fn exists_inside(sb: &Sandbox, path: &str) -> bool {
    std::fs::symlink_metadata(inside(sb, path)).is_ok()
}

// ------------------------------------------------------------ nfs-export ---

fn export<'a>(sb: &'a Sandbox, instance: &str, dir: &Path, fsid: &str) -> AgentCmd<'a> {
    sb.agent("nfs-export")
        .env("OCF_RESOURCE_INSTANCE", instance)
        .param("directory", dir.to_str().unwrap())
        .param("clientspec", "192.0.2.0/24")
        .param("fsid", fsid)
}

/// A directory to export (its real path, as etab names it).
fn export_dir(sb: &Sandbox, rel: &str) -> PathBuf {
    std::fs::create_dir_all(sb.path(rel)).unwrap();
    std::fs::canonicalize(sb.path(rel)).unwrap()
}

fn exported(sb: &Sandbox, dir: &Path) -> bool {
    String::from_utf8_lossy(&read_inside(sb, "/var/lib/nfs/etab"))
        .lines()
        .any(|l| l.starts_with(&format!("{}\t192.0.2.0/24(", dir.display())))
}

/// nfs-export's state file: start over it starts afresh; a monitor fails
/// (1) saying what is wrong; stop goes by the configuration, unexports and
/// removes the file (never what a link points at).
#[test]
fn nfs_export_state_file() {
    let sb = sandbox!();
    let dir = export_dir(&sb, "exp");
    let res = || export(&sb, "st", &dir, "31");
    let state = "/run/resource-agents/hanfs-nfs-export-st";
    res().run("start").expect(0);
    let good = read_inside(&sb, state);
    for d in DAMAGES {
        let p = plant(&sb, state, &good, d);
        check(res(), "start", d, 0, &[]);
        check(res(), "monitor", d, 0, &[]);
        let p2 = plant(&sb, state, &good, p.damage);
        check(res(), "monitor", d, 1, state_reason(d));
        check(res(), "validate-all", d, 0, &[]);
        check(res(), "stop", d, 0, &[]);
        assert!(!exported(&sb, &dir), "{d:?}: still exported after stop");
        assert!(!exists_inside(&sb, state), "{d:?}: state left");
        check(res(), "monitor", d, 7, &["not exported"]);
        p.target_unchanged();
        p2.target_unchanged();
        res().run("start").expect(0);
    }
    res().run("stop").expect(0);
}

/// Another resource's damaged state does not stop this one's start or
/// stop (it is ignored and logged), and is left as it is.
#[test]
fn nfs_export_other_instances_state_file() {
    let sb = sandbox!();
    let (a, b) = (export_dir(&sb, "a"), export_dir(&sb, "b"));
    let other = "/run/resource-agents/hanfs-nfs-export-other";
    export(&sb, "other", &b, "33").run("start").expect(0);
    let good = read_inside(&sb, other);
    for d in DAMAGES {
        let p = plant(&sb, other, &good, d);
        let r = check(export(&sb, "mine", &a, "32"), "start", d, 0, &[]);
        assert!(
            r.stderr.contains("ignoring another resource's state"),
            "{d:?}: not logged:\n{}",
            r.stderr
        );
        check(export(&sb, "mine", &a, "32"), "monitor", d, 0, &[]);
        check(export(&sb, "mine", &a, "32"), "stop", d, 0, &[]);
        assert!(exported(&sb, &b), "{d:?}: the other resource's export went");
        assert!(
            exists_inside(&sb, other),
            "{d:?}: the other state was removed"
        );
        p.target_unchanged();
    }
}

/// The export table itself damaged under a started export: a monitor says
/// the export is not there (1) or the table cannot be read (1); a table of
/// another owner, or reached through a link, is still the table (0);
/// stop succeeds and writes nothing through a link, except over a table it
/// cannot read (huge), where it cannot know the export is gone (1).
#[test]
fn nfs_export_etab() {
    let sb = sandbox!();
    let dir = export_dir(&sb, "exp");
    let res = || export(&sb, "et", &dir, "34");
    let etab = "/var/lib/nfs/etab";
    res().run("start").expect(0);
    let good = read_inside(&sb, etab);
    for d in DAMAGES {
        let p = plant(&sb, etab, &good, d);
        match d {
            Truncated | Empty | Garbage => {
                check(res(), "monitor", d, 1, &["is not exported to 192.0.2.0/24"]);
            }
            Huge => {
                check(res(), "monitor", d, 1, &["is larger than"]);
            }
            WrongOwner | LinkElsewhere => {
                check(res(), "monitor", d, 0, &[]);
            }
        }
        if d == Huge {
            // Stop cannot tell whether the export is gone: it fails, so
            // the cluster does not unmount under a live export.
            check(res(), "stop", d, 1, &["is larger than"]);
            std::fs::write(inside(&sb, etab), &good).unwrap();
        }
        check(res(), "stop", d, 0, &[]);
        p.target_unchanged();
        check(res(), "monitor", d, 7, &["not exported"]);
        std::fs::remove_file(inside(&sb, etab)).unwrap();
        std::fs::write(inside(&sb, etab), b"").unwrap();
        res().run("start").expect(0);
    }
    res().run("stop").expect(0);
}

// -------------------------------------------------------------- float-ip ---

const VIP: &str = "192.0.2.10";

fn float_ip<'a>(sb: &'a Sandbox, instance: &str, ip: &str) -> AgentCmd<'a> {
    sb.agent("float-ip")
        .env("OCF_RESOURCE_INSTANCE", instance)
        .param("ip", ip)
        .param("cidr_netmask", "24")
        .param("check_duplicate", "false")
        .param("arp_count", "1")
}

fn holds(sb: &Sandbox, ip: &str) -> bool {
    sb.sh_ok("ip -4 -o addr show")
        .split_whitespace()
        .any(|w| w == format!("{ip}/24"))
}

/// A process a state file can name: the stop that trusts the file kills it.
struct Bystander(std::process::Child);

impl Bystander {
    fn new() -> Bystander {
        Bystander(
            std::process::Command::new("sleep")
                .arg("600")
                .spawn()
                .unwrap(),
        )
    }
    /// An announcer record naming it, as float-ip writes one.
    fn record(&self) -> Vec<u8> {
        let id = hanfs::sys::procs::ProcId::of(self.0.id() as i32).unwrap();
        serde_json::to_vec(&serde_json::json!({"announcer": {"pid": id.pid, "start": id.start}}))
            .unwrap()
    }
    fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// float-ip's state file names the announcer stop kills. Damaged, it is
/// no announcer (logged); another user's or a link's is not trusted: the
/// process it names lives on. A monitor reads the interfaces, not the
/// file. (The control: a good record of root's is trusted, and kills.)
#[test]
fn float_ip_state_file() {
    let sb = sandbox!();
    let _peer = sb.veth_peer(&["192.0.2.1/24"], &["192.0.2.100/24"]);
    let res = || float_ip(&sb, "st", VIP);
    let state = "/run/resource-agents/hanfs-float-ip-st";
    for d in DAMAGES {
        let mut victim = Bystander::new();
        check(res(), "start", d, 0, &[]);
        let p = plant(&sb, state, &victim.record(), d);
        check(res(), "monitor", d, 0, &[]);
        check(res(), "stop", d, 0, &[]);
        assert!(
            victim.alive(),
            "{d:?}: stop killed the process the file named"
        );
        assert!(!holds(&sb, VIP), "{d:?}: address left");
        assert!(!exists_inside(&sb, state), "{d:?}: state left");
        check(res(), "monitor", d, 7, &["is not on this node"]);
        p.target_unchanged();
    }
    let mut victim = Bystander::new();
    res().run("start").expect(0);
    std::fs::write(inside(&sb, state), victim.record()).unwrap();
    res().run("stop").expect(0);
    assert!(
        crate::common::wait_until(Duration::from_secs(2), || !victim.alive()),
        "control: a trusted record's announcer was not ended"
    );
}

/// The connection list in tickle_dir (shared storage): any damage gives
/// no (or fewer) tickles and a log line, never a failed or hung start;
/// monitor and stop record the list anew, replacing a link, never
/// writing through it.
#[test]
fn float_ip_connection_list() {
    let sb = sandbox!();
    let _peer = sb.veth_peer(&["192.0.2.1/24"], &["192.0.2.100/24"]);
    let dir = sb.path("tickle");
    std::fs::create_dir_all(&dir).unwrap();
    let res = || {
        float_ip(&sb, "tk", VIP)
            .param("tickle_dir", dir.to_str().unwrap())
            .interval_ms(10_000)
    };
    let list = dir.join(VIP).display().to_string();
    let good = format!("{VIP}:2049\t192.0.2.100:700\n{VIP}:2049\t192.0.2.100:701\n");
    for d in DAMAGES {
        let p = plant(&sb, &list, good.as_bytes(), d);
        check(res(), "start", d, 0, &[]);
        check(res(), "monitor", d, 0, &[]);
        check(res(), "stop", d, 0, &[]);
        assert!(!holds(&sb, VIP), "{d:?}: address left");
        p.target_unchanged();
    }
}

// ------------------------------------------------------------- nfs-grace ---

/// nfs-grace's state file (the torn, empty and FIFO cases are in
/// nfs_grace): a monitor says what is wrong (1); stop goes by the
/// configuration (0) and removes the file, not what a link points at.
/// The node's file (`hanfs-nfs-grace.node`) damaged: stop still succeeds.
#[test]
fn nfs_grace_state_and_node_files() {
    let sb = sandbox!();
    let dir = sb.path("shared/cld");
    std::fs::create_dir_all(&dir).unwrap();
    let res = || {
        sb.agent("nfs-grace")
            .env("OCF_RESOURCE_INSTANCE", "g")
            .param("recovery_dir", dir.to_str().unwrap())
            .param("server_scope", "hanfs-1")
    };
    let state = "/run/resource-agents/hanfs-nfs-grace-g";
    let node = "/run/resource-agents/hanfs-nfs-grace.node";
    let starting = br#"{"phase":"starting"}"#;
    let node_good = br#"{"nfsdcld":{"pid":1,"start":1},"storage":"/srv/x"}"#;
    for d in DAMAGES {
        let p = plant(&sb, state, starting, d);
        check(res(), "monitor", d, 1, state_reason(d));
        check(res(), "stop", d, 0, &[]);
        assert!(!exists_inside(&sb, state), "{d:?}: state left");
        check(res(), "monitor", d, 7, &["not started on this node"]);
        p.target_unchanged();
        std::fs::write(inside(&sb, state), starting).unwrap();
        let n = plant(&sb, node, node_good, d);
        check(res(), "stop", d, 0, &[]);
        n.target_unchanged();
        let _ = std::fs::remove_file(inside(&sb, node));
    }
}

// ------------------------------------------- instances started at once ---

/// Run `a` and `b` at once (each on its own thread).
fn at_once(
    a: impl FnOnce() -> AgentRun + Send,
    b: impl FnOnce() -> AgentRun + Send,
) -> [AgentRun; 2] {
    std::thread::scope(|s| {
        let ta = s.spawn(a);
        let tb = s.spawn(b);
        [ta.join().unwrap(), tb.join().unwrap()]
    })
}

/// A state file that parses (JSON) and is root's, mode 0600.
#[track_caller]
fn intact(sb: &Sandbox, path: &str) -> serde_json::Value {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(inside(sb, path)).unwrap();
    assert!(
        m.is_file() && m.uid() == 0 && m.mode() & 0o777 == 0o600,
        "{path}: {m:?}"
    );
    serde_json::from_slice(&read_inside(sb, path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Two nfs-export resources (own directories and fsids) started at once,
/// many times: both start, both states are intact and their own, both
/// monitors pass. The same resource started twice at once (recovery):
/// it ends exported once, its state intact.
#[test]
fn nfs_export_instances_started_at_once() {
    let sb = sandbox!();
    let (a, b) = (export_dir(&sb, "pa"), export_dir(&sb, "pb"));
    let ra = || export(&sb, "pa", &a, "41");
    let rb = || export(&sb, "pb", &b, "42");
    for round in 0..8 {
        for r in at_once(|| ra().run("start"), || rb().run("start")) {
            assert_eq!(r.code, 0, "round {round}: {}", r.stderr);
        }
        for (inst, dir) in [("pa", &a), ("pb", &b)] {
            let st = intact(
                &sb,
                &format!("/run/resource-agents/hanfs-nfs-export-{inst}"),
            );
            assert_eq!(st["instance"], inst, "round {round}");
            assert_eq!(st["directory"], dir.to_str().unwrap(), "round {round}");
        }
        ra().run("monitor").expect(0);
        rb().run("monitor").expect(0);
        ra().run("stop").expect(0);
        rb().run("stop").expect(0);
    }
    for round in 0..8 {
        for r in at_once(|| ra().run("start"), || ra().run("start")) {
            assert_eq!(r.code, 0, "round {round}: {}", r.stderr);
        }
        let etab = String::from_utf8_lossy(&read_inside(&sb, "/var/lib/nfs/etab")).into_owned();
        let lines = etab
            .lines()
            .filter(|l| l.starts_with(&format!("{}\t", a.display())))
            .count();
        assert_eq!(lines, 1, "round {round}: etab:\n{etab}");
        intact(&sb, "/run/resource-agents/hanfs-nfs-export-pa");
        ra().run("monitor").expect(0);
        ra().run("stop").expect(0);
        ra().run("monitor").expect(7);
    }
}

/// Two float-ip resources (two addresses on one interface) started at
/// once, many times: both up, both states intact, both monitors pass; the
/// same one started twice at once ends with its address up once.
#[test]
fn float_ip_instances_started_at_once() {
    let sb = sandbox!();
    let _peer = sb.veth_peer(&["192.0.2.1/24"], &["192.0.2.100/24"]);
    let ra = || float_ip(&sb, "fa", "192.0.2.11");
    let rb = || float_ip(&sb, "fb", "192.0.2.12");
    for round in 0..6 {
        for r in at_once(|| ra().run("start"), || rb().run("start")) {
            assert_eq!(r.code, 0, "round {round}: {}", r.stderr);
        }
        assert!(
            holds(&sb, "192.0.2.11") && holds(&sb, "192.0.2.12"),
            "round {round}"
        );
        intact(&sb, "/run/resource-agents/hanfs-float-ip-fa");
        intact(&sb, "/run/resource-agents/hanfs-float-ip-fb");
        ra().run("monitor").expect(0);
        rb().run("monitor").expect(0);
        ra().run("stop").expect(0);
        rb().run("stop").expect(0);
        assert!(
            !holds(&sb, "192.0.2.11") && !holds(&sb, "192.0.2.12"),
            "round {round}"
        );
    }
    for round in 0..6 {
        let both = at_once(|| ra().run("start"), || ra().run("start"));
        for r in &both {
            assert_eq!(r.code, 0, "round {round}: {}", r.stderr);
        }
        let n = sb
            .sh_ok("ip -4 -o addr show")
            .matches("192.0.2.11/24")
            .count();
        assert_eq!(n, 1, "round {round}");
        intact(&sb, "/run/resource-agents/hanfs-float-ip-fa");
        ra().run("monitor").expect(0);
        ra().run("stop").expect(0);
        ra().run("monitor").expect(7);
    }
}

// --------------------------------------------------------- statd-holding ---

/// statd-holding's registration (`/run/hanfs/statd-holding/<instance>.json`,
/// which statd's callout reads too) damaged: a monitor says what is wrong
/// (1); stop succeeds (0) and writes nothing where a link points.
#[test]
fn statd_holding_registration() {
    let sb = sandbox!();
    let hold = sb.path("hold");
    std::fs::create_dir_all(&hold).unwrap();
    let res = || {
        sb.agent("statd-holding")
            .env("OCF_RESOURCE_INSTANCE", "h")
            .param("holding_dir", hold.to_str().unwrap())
            .param("ip", VIP)
    };
    sb.sh_ok("mkdir -p /run/hanfs/statd-holding");
    let reg = "/run/hanfs/statd-holding/h.json";
    let good = serde_json::to_vec(&serde_json::json!({
        "instance": "h", "holding_dir": hold, "holding_id": [1, 2],
        "statd_dir": "/var/lib/nfs", "ips": [VIP], "active": true
    }))
    .unwrap();
    for d in DAMAGES {
        let p = plant(&sb, reg, &good, d);
        check(res(), "monitor", d, 1, state_reason(d));
        check(res(), "stop", d, 0, &[]);
        p.target_unchanged();
        let _ = std::fs::remove_file(inside(&sb, reg));
    }
}
