//! The host test harness: a `Sandbox` is a private network + mount
//! namespace (held open by a sleeping process) with its own /sys, /run and
//! /var/lib/nfs, optionally joined by a veth pair to a `Peer` namespace.
//! Agents run inside it for real, through `nsenter`.
//!
//! Tests that need root and namespaces call `sandbox!()`: where the machine
//! cannot provide them the test prints a loud SKIPPED line and returns,
//! unless `HANFS_REQUIRE_SANDBOX=1` (CI), where it fails instead.
pub mod tools;
#[macro_use]
pub mod uml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A short name unique on this host (interface names are at most 15 chars).
pub fn unique_name(prefix: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}{}x{n}", std::process::id() % 100_000)
}

pub fn skip_or_fail(why: &str) {
    if std::env::var("HANFS_REQUIRE_SANDBOX").as_deref() == Ok("1") {
        panic!("sandbox required (HANFS_REQUIRE_SANDBOX=1) but unavailable: {why}");
    }
    eprintln!("\n*** SKIPPED: {why} (needs root and namespaces; set HANFS_REQUIRE_SANDBOX=1 to make this fatal) ***\n");
}

/// `let sb = sandbox!();` — a fresh sandbox, or skip the test loudly.
macro_rules! sandbox {
    () => {
        match $crate::common::Sandbox::new() {
            Ok(s) => s,
            Err(why) => {
                $crate::common::skip_or_fail(&why);
                return;
            }
        }
    };
}

/// A process holding a namespace open; killed on drop.
struct Holder {
    child: Child,
}

impl Holder {
    fn new(args: &[&str]) -> Result<Holder, String> {
        let child = Command::new("unshare")
            .args(args)
            .args(["--", "sleep", "infinity"])
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("unshare: {e}"))?;
        let h = Holder { child };
        // Wait until the sleeper runs in its own namespace.
        let me = std::fs::read_link("/proc/self/ns/net").ok();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            let theirs = std::fs::read_link(format!("/proc/{}/ns/net", h.pid())).ok();
            let comm =
                std::fs::read_to_string(format!("/proc/{}/comm", h.pid())).unwrap_or_default();
            if theirs.is_some() && theirs != me && comm.trim() == "sleep" {
                return Ok(h);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err("namespace holder did not start (unshare failed?)".into())
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run a shell script inside the namespaces of `pid` (net + mount).
fn nsenter_sh(pid: u32, mount: bool, script: &str) -> Output {
    let mut c = Command::new("nsenter");
    c.arg("-t").arg(pid.to_string()).arg("-n");
    if mount {
        c.arg("-m");
    }
    c.args(["sh", "-c", script]).stdin(Stdio::null());
    c.output().expect("nsenter")
}

pub fn sh_ok(out: Output, script: &str) -> String {
    let so = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "script failed ({}): {script}\nstdout: {so}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    so
}

/// What an agent invocation returned.
#[derive(Debug)]
pub struct AgentRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl AgentRun {
    /// The exit reason line's text, if any.
    pub fn exit_reason(&self) -> Option<String> {
        self.stderr.lines().find_map(|l| {
            l.strip_prefix("ocf-exit-reason:")
                .map(|s| s.trim().to_string())
        })
    }
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code; stderr:\n{}",
            self.stderr
        );
        self
    }
    /// Expect `code` and an exit reason containing `needle`.
    #[track_caller]
    pub fn expect_reason(&self, code: i32, needle: &str) -> &Self {
        self.expect(code);
        let r = self.exit_reason().unwrap_or_default();
        assert!(
            r.contains(needle),
            "exit reason {r:?} lacks {needle:?}; stderr:\n{}",
            self.stderr
        );
        self
    }
}

/// The path of a built binary of this package.
pub fn bin(name: &str) -> PathBuf {
    let p = match name {
        "nfs-export" => env!("CARGO_BIN_EXE_nfs-export"),
        "float-ip" => env!("CARGO_BIN_EXE_float-ip"),
        "statd-holding" => env!("CARGO_BIN_EXE_statd-holding"),
        "nfs-grace" => env!("CARGO_BIN_EXE_nfs-grace"),
        "hanfs-statd-callout" => env!("CARGO_BIN_EXE_hanfs-statd-callout"),
        "hanfs-import-state" => env!("CARGO_BIN_EXE_hanfs-import-state"),
        other => panic!("no binary {other}"),
    };
    PathBuf::from(p)
}

/// An agent invocation being built: parameters and environment.
pub struct AgentCmd<'a> {
    sb: Option<&'a Sandbox>,
    agent: String,
    params: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
    limit: Option<Duration>,
}

impl<'a> AgentCmd<'a> {
    pub fn param(mut self, k: &str, v: &str) -> Self {
        self.params.insert(k.into(), v.into());
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.insert(k.into(), v.into());
        self
    }
    pub fn timeout_ms(self, ms: u64) -> Self {
        self.env("OCF_RESKEY_CRM_meta_timeout", &ms.to_string())
    }
    /// Killed (SIGKILL, exit code 137) if still running after `limit`: a
    /// test of a hang fails instead of hanging itself.
    pub fn within(mut self, limit: Duration) -> Self {
        self.limit = Some(limit);
        self
    }
    /// A recurring monitor (interval > 0) instead of a probe.
    pub fn interval_ms(self, ms: u64) -> Self {
        self.env("OCF_RESKEY_CRM_meta_interval", &ms.to_string())
    }
    pub fn params_env(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = vec![
            ("OCF_ROOT".into(), "/usr/lib/ocf".into()),
            ("OCF_RESOURCE_INSTANCE".into(), "test".into()),
            ("OCF_RESKEY_CRM_meta_timeout".into(), "20000".into()),
            ("HA_LOGFACILITY".into(), "none".into()),
        ];
        v.extend(
            self.params
                .iter()
                .map(|(k, val)| (format!("OCF_RESKEY_{k}"), val.clone())),
        );
        v.extend(self.env.iter().map(|(k, val)| (k.clone(), val.clone())));
        v
    }
    pub fn run(&self, action: &str) -> AgentRun {
        let mut c = match self.sb {
            Some(sb) => {
                let mut c = Command::new("nsenter");
                c.args(["-t", &sb.pid().to_string(), "-n", "-m", "--"]);
                c
            }
            None => Command::new("env"),
        };
        if let Some(l) = self.limit {
            c.args(["timeout", "-s", "KILL", &format!("{:.1}", l.as_secs_f64())]);
        }
        c.arg(bin(&self.agent));
        c.arg(action).stdin(Stdio::null());
        for (k, v) in self.params_env() {
            c.env(k, v);
        }
        let t = Instant::now();
        let out = c.output().expect("run agent");
        AgentRun {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: t.elapsed(),
        }
    }
}

/// Shell text that makes the built agents appear as
/// `/usr/lib/ocf/resource.d/hanfs/<agent>` in the mount namespace it runs
/// in: a tmpfs takes the providers' place (the root may be read-only, as in
/// a UML guest), the other providers are bound back in, and whatever the
/// host has installed as hanfs stays out of sight.
pub fn install_agents_sh() -> String {
    let mut s = String::from(
        "R=/usr/lib/ocf/resource.d; mkdir -p /run/ocf-orig; mount --bind $R /run/ocf-orig; \
         mount -t tmpfs tmpfs $R; for d in /run/ocf-orig/*; do n=$(basename $d); [ $n = hanfs ] && continue; mkdir $R/$n; mount --bind $d $R/$n; done; \
         mkdir -p $R/hanfs; ",
    );
    for a in ["nfs-export", "float-ip", "statd-holding", "nfs-grace"] {
        s.push_str(&format!("ln -sf {} $R/hanfs/{a}; ", bin(a).display()));
    }
    s.push('\n');
    s
}

/// An agent run on the host itself (for meta-data and validation tests that
/// need no privileges).
pub fn host_agent(agent: &str) -> AgentCmd<'static> {
    AgentCmd {
        sb: None,
        agent: agent.into(),
        params: BTreeMap::new(),
        env: BTreeMap::new(),
        limit: None,
    }
}

/// A private network + mount namespace with its own /sys, /run (tmpfs) and
/// /var/lib/nfs (tmpfs, laid out like Debian's: etab, rmtab, sm, sm.bak,
/// state). Everything it made vanishes when it is dropped.
pub struct Sandbox {
    holder: Holder,
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Result<Sandbox, String> {
        if !nix_is_root() {
            return Err("not root".into());
        }
        for tool in ["unshare", "nsenter", "ip"] {
            if which(tool).is_none() {
                return Err(format!("{tool} not installed"));
            }
        }
        let holder = Holder::new(&["--net", "--mount", "--propagation", "private"])?;
        let dir = tempfile::Builder::new()
            .prefix("hanfs-sb-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let sb = Sandbox { holder, dir };
        let setup = r#"
            set -e
            mount -t sysfs sysfs /sys
            mount -t tmpfs tmpfs /run
            mkdir -p /run/resource-agents /run/rpcbind /run/lock
            mkdir -p /var/lib/nfs
            mount -t tmpfs tmpfs /var/lib/nfs
            mkdir -p /var/lib/nfs/sm /var/lib/nfs/sm.bak /var/lib/nfs/v4recovery
            touch /var/lib/nfs/etab /var/lib/nfs/rmtab
            ip link set lo up
        "#;
        let out = nsenter_sh(sb.pid(), true, setup);
        if !out.status.success() {
            return Err(format!(
                "sandbox setup failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(sb)
    }

    pub fn pid(&self) -> u32 {
        self.holder.pid()
    }

    /// Run a shell script inside; returns its output (not checked).
    pub fn sh(&self, script: &str) -> Output {
        nsenter_sh(self.pid(), true, script)
    }

    /// Run a shell script inside; panics with its stderr when it fails.
    #[track_caller]
    pub fn sh_ok(&self, script: &str) -> String {
        sh_ok(self.sh(script), script)
    }

    pub fn agent(&self, agent: &str) -> AgentCmd<'_> {
        AgentCmd {
            sb: Some(self),
            agent: agent.into(),
            params: BTreeMap::new(),
            env: BTreeMap::new(),
            limit: None,
        }
    }

    /// Make the built agents visible as `/usr/lib/ocf/resource.d/hanfs/*`
    /// inside the sandbox only (the other providers stay visible), so that
    /// `crm_resource --class ocf --provider hanfs` and `ocf-tester` find them.
    pub fn install_agents(&self) {
        self.sh_ok(&format!("set -e; {}", install_agents_sh()));
    }

    /// A host directory (under the sandbox's temporary dir) for test files.
    pub fn path(&self, rel: &str) -> PathBuf {
        let p = self.dir.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        p
    }

    /// Simulate a reboot of the node for the agents' runtime state: /run is
    /// a fresh tmpfs again (persistent files such as etab are kept, as on a
    /// real disk).
    pub fn reboot_runtime_state(&self) {
        self.sh_ok("umount -l /run; mount -t tmpfs tmpfs /run; mkdir -p /run/resource-agents /run/rpcbind /run/lock");
    }

    /// Join a new `Peer` namespace by a veth pair: `eth0` in here with
    /// `local` addresses, `eth0` in the peer with `peer` addresses (CIDR
    /// strings, IPv4 or IPv6). IPv6 DAD is disabled on the configured
    /// addresses so they are usable at once.
    pub fn veth_peer(&self, local: &[&str], peer: &[&str]) -> Peer {
        let p = Peer {
            holder: Holder::new(&["--net", "--mount", "--propagation", "private"])
                .expect("peer namespace"),
        };
        self.veth_to(&p, "eth0", local, peer);
        p
    }

    /// Another veth pair to an existing peer: `eth0` in here with `local`
    /// addresses, `peer_if` in the peer with `peer` addresses.
    pub fn veth_to(&self, p: &Peer, peer_if: &str, local: &[&str], peer: &[&str]) {
        let (a, b) = (unique_name("hfa"), unique_name("hfb"));
        sh_ok(
            Command::new("sh")
                .args(["-c", &format!(
                    "set -e; ip link add {a} type veth peer name {b}; ip link set {a} netns {}; ip link set {b} netns {}",
                    self.pid(),
                    p.pid()
                )])
                .output()
                .unwrap(),
            "veth",
        );
        let conf = |ifname: &str, new: &str, addrs: &[&str]| {
            let mut s = format!("set -e; ip link set {ifname} name {new}; ip link set lo up; ");
            s.push_str(&format!(
                "sysctl -qw net.ipv6.conf.{new}.accept_dad=0 2>/dev/null || true; "
            ));
            for ad in addrs {
                let fam = if ad.contains(':') { "-6" } else { "-4" };
                s.push_str(&format!("ip {fam} addr add {ad} dev {new} nodad 2>/dev/null || ip {fam} addr add {ad} dev {new}; "));
            }
            s.push_str(&format!("ip link set {new} up"));
            s
        };
        self.sh_ok(&conf(&a, "eth0", local));
        p.sh_ok(&conf(&b, peer_if, peer));
        // Let the link come up on both ends.
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            let st = self.sh_ok("cat /sys/class/net/eth0/operstate");
            if st.trim() == "up" {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The other end of a veth pair: another host on the sandbox's link.
pub struct Peer {
    holder: Holder,
}

impl Peer {
    pub fn pid(&self) -> u32 {
        self.holder.pid()
    }
    pub fn sh(&self, script: &str) -> Output {
        nsenter_sh(self.pid(), true, script)
    }
    #[track_caller]
    pub fn sh_ok(&self, script: &str) -> String {
        sh_ok(self.sh(script), script)
    }
    /// Start a background command in the peer (e.g. a packet listener);
    /// killed on drop of the returned guard.
    pub fn spawn(&self, args: &[&str]) -> Child {
        Command::new("nsenter")
            .args(["-t", &self.pid().to_string(), "-n", "-m", "--"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn in peer")
    }
}

pub fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() == 0 }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|d| d.join(tool))
            .find(|p| Path::new(p).is_file())
    })
}

/// Wait until `f` holds, up to `limit`.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// A FIFO at `path` inside the sandbox (where an agent expects one of its
/// own files), with no writer. So that an agent that wrongly opens it
/// cannot hang a test for ever, a helper opens it for writing every
/// `release_after` (releasing any blocked reader with end-of-file) until
/// the guard is dropped: a test asserting that an action took less than
/// `release_after` then fails instead of hanging.
pub struct Fifo {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    helper: Option<std::thread::JoinHandle<()>>,
}

impl Sandbox {
    pub fn fifo(&self, path: &str, release_after: Duration) -> Fifo {
        self.sh_ok(&format!("rm -f {path}; mkfifo -m 0666 {path}"));
        let seen = PathBuf::from(format!("/proc/{}/root{path}", self.pid()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let helper = std::thread::spawn(move || {
            let mut t = Instant::now();
            while !s.load(Ordering::SeqCst) {
                if t.elapsed() >= release_after {
                    // O_RDWR never blocks on a FIFO; closing it gives a
                    // blocked reader end-of-file.
                    let _ = std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(&seen);
                    t = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Fifo {
            stop,
            helper: Some(helper),
        }
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.helper.take() {
            let _ = h.join();
        }
    }
}
