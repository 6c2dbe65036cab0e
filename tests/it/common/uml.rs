//! A tiny User-Mode-Linux runner: boot a throwaway Linux guest on the
//! host's root file system, run one shell script in it as root and bring
//! back its output and exit code.
//!
//! The kernel is `HANFS_UML_KERNEL` when set, else Debian's
//! `user-mode-linux` (6.1, nfsd, lockd and the NFS client as modules, from
//! /usr/lib/uml/modules). `scripts/uml-kernel.sh 6.12` builds a 6.12 one
//! with everything built in and a `lib/modules/RELEASE` tree beside it
//! holding only modules.builtin, so the guest's `modprobe nfsd` succeeds
//! and loads nothing. A kernel without any module tree boots too (its
//! guests' modprobe fails). Tests that depend on the kernel ask
//! [`Uml::release`].
//!
//! The guest sees the host's root read-only (hostfs), so everything built
//! in `target/` and every installed tool runs inside unchanged. Node-local
//! state is private: tmpfs on /run, /tmp, /var/tmp, /var/lib/nfs (laid out
//! like Debian's), /var/log, /root and /dev/shm. The script's directory is
//! a writable hostfs window, `$UML_WINDOW`, for files the host should see.
//!
//! ```ignore
//! let vm = uml!();                       // or a loud SKIPPED line
//! let r = vm.run("modprobe nfsd && echo ok", Duration::from_secs(60));
//! r.assert_ok();
//! ```
//!
//! The guest's host name is `uml-guest` (in its /etc/hosts), and its
//! resolv.conf points at 127.0.0.1, where nothing answers, so that no name
//! lookup waits for an unreachable DNS server.
//!
//! Traps met (kernel 6.1 guests): start rpc.mountd only after nfsd is
//! loaded (`modprobe nfsd`), or it never opens nfsd's cache channels and
//! NFS clients hang (the first request is dropped, the client retries
//! after its 60 s timeout).
//!
//! `HANFS_UML_SHOW=1 cargo test ... -- --nocapture` prints every guest's
//! output, also when the test passes.
//!
//! Every guest gets a unique `umid` and its own `uml_dir`; on return (and on
//! timeout) every host process of the guest is killed and its directory
//! removed. Runs are serialized (one guest at a time: the machine is small).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `let vm = uml!();` — a runner, or skip the test loudly when the machine
/// has no User-Mode Linux (or the test does not run as root).
macro_rules! uml {
    () => {
        match $crate::common::uml::Uml::new() {
            Ok(u) => u,
            Err(why) => {
                $crate::common::skip_or_fail(&why);
                return;
            }
        }
    };
}

/// Guest memory (UML syntax).
const MEM: &str = "384M";

/// How to boot guests.
#[derive(Debug, Clone)]
pub struct Uml {
    kernel: PathBuf,
    release: (u32, u32),
}

/// What a guest run gave back.
#[derive(Debug)]
pub struct UmlResult {
    /// The script's stdout and stderr, interleaved.
    pub output: String,
    /// The script's exit code (None when it never finished).
    pub code: Option<i32>,
    /// Exit code 0 and no timeout.
    pub ok: bool,
    pub timed_out: bool,
    /// The guest console (kernel messages, init's own words).
    pub console: String,
    /// From launching the guest to its init running (measured on the host
    /// clock by a marker file the guest writes first).
    pub boot: Option<Duration>,
}

impl UmlResult {
    /// Panic with the script's output and the end of the console unless the
    /// script exited 0 in time.
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(
            self.ok,
            "UML script failed (code {:?}, timed out: {}):\n--- output ---\n{}\n--- console (tail) ---\n{}",
            self.code,
            self.timed_out,
            self.output,
            tail(&self.console, 40)
        );
        self
    }

    /// Lines of the output that start with `prefix`, prefix removed.
    pub fn lines_with(&self, prefix: &str) -> Vec<String> {
        self.output
            .lines()
            .filter_map(|l| l.strip_prefix(prefix).map(|s| s.trim().to_string()))
            .collect()
    }

    /// The value printed by the script as `KEY=value` (last one wins).
    pub fn value(&self, key: &str) -> Option<String> {
        self.lines_with(&format!("{key}=")).pop()
    }
}

/// "6.12.117" → (6, 12).
fn parse_release(v: &str) -> (u32, u32) {
    let mut it = v
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn find_kernel() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HANFS_UML_KERNEL") {
        return Some(PathBuf::from(p));
    }
    super::which("linux.uml").or_else(|| {
        let p = PathBuf::from("/usr/bin/linux.uml");
        p.is_file().then_some(p)
    })
}

/// The guest kernel's version: `linux.uml --version`, else the only module
/// directory Debian's package ships.
fn kernel_version(kernel: &Path) -> Result<String, String> {
    if let Ok(out) = Command::new(kernel)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !v.is_empty() && !v.contains(char::is_whitespace) {
            return Ok(v);
        }
    }
    let dirs: Vec<String> = std::fs::read_dir("/usr/lib/uml/modules")
        .map_err(|e| format!("/usr/lib/uml/modules: {e}"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    match dirs.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(format!(
            "cannot tell the UML kernel version (module dirs: {dirs:?})"
        )),
    }
}

/// Where the guest's modprobe finds `version`'s modules: the tree
/// `scripts/uml-kernel.sh` puts next to a kernel it built (`lib/modules/`,
/// holding only modules.builtin: everything is built in), else Debian's
/// user-mode-linux package tree. None: the kernel has no module tree here.
fn module_tree(kernel: &Path, version: &str) -> Option<PathBuf> {
    let beside = kernel
        .parent()
        .map(|d| d.join("lib/modules").join(version))
        .filter(|d| d.join("modules.dep").is_file());
    beside.or_else(|| {
        let deb = PathBuf::from("/usr/lib/uml/modules").join(version);
        deb.is_dir().then_some(deb)
    })
}

/// The guest loads modules from the host's /lib/modules/<version> (its
/// root is the host's): make that a link to the kernel's module tree.
/// Idempotent, and safe when several runners race to do it.
fn link_modules(target: &Path, version: &str) -> Result<(), String> {
    let link = PathBuf::from("/lib/modules").join(version);
    if link.join("modules.dep").exists()
        && std::fs::canonicalize(&link).ok() == std::fs::canonicalize(target).ok()
    {
        return Ok(());
    }
    let _ = std::fs::create_dir_all("/lib/modules");
    let tmp = PathBuf::from(format!(
        "/lib/modules/.{version}.hanfs-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .map_err(|e| format!("symlink {}: {e}", tmp.display()))?;
    // rename over a stale link; a real directory there is left alone.
    if let Err(e) = std::fs::rename(&tmp, &link) {
        let _ = std::fs::remove_file(&tmp);
        if !link.join("modules.dep").exists() {
            return Err(format!(
                "cannot link {} -> {}: {e}",
                link.display(),
                target.display()
            ));
        }
    }
    Ok(())
}

/// Processes whose command line names this guest (`umid=...`): UML's host
/// processes are clones of the kernel process and keep its command line.
fn guest_pids(umid: &str) -> Vec<i32> {
    let needle = format!("umid={umid}");
    let mut pids = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            if cmd.split(|&b| b == 0).any(|a| a == needle.as_bytes()) {
                pids.push(pid);
            }
        }
    }
    pids
}

fn kill_guest(umid: &str, main: i32) {
    // The process group first (children that kept it), then every clone
    // still naming the guest, until none is left.
    unsafe { libc::kill(-main, libc::SIGKILL) };
    let t = Instant::now();
    loop {
        let left = guest_pids(umid);
        if left.is_empty() || t.elapsed() > Duration::from_secs(10) {
            break;
        }
        for p in left {
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Uml {
    /// A runner, or why the machine cannot boot guests.
    pub fn new() -> Result<Uml, String> {
        if !super::nix_is_root() {
            return Err(
                "not root (User-Mode Linux guests need root for their modules link)".into(),
            );
        }
        let kernel =
            find_kernel().ok_or("linux.uml not installed (apt-get install user-mode-linux)")?;
        if !kernel.is_file() {
            return Err(format!(
                "UML kernel {} missing (HANFS_UML_KERNEL; build one with scripts/uml-kernel.sh)",
                kernel.display()
            ));
        }
        let version = kernel_version(&kernel)?;
        match module_tree(&kernel, &version) {
            Some(tree) => link_modules(&tree, &version)?,
            None if kernel == Path::new("/usr/bin/linux.uml") => {
                return Err(format!(
                    "/usr/lib/uml/modules/{version} missing (is user-mode-linux installed?)"
                ))
            }
            // a kernel without modules: guests load nothing
            None => {}
        }
        let release = parse_release(&version);
        Ok(Uml { kernel, release })
    }

    /// The guest kernel's release as (major, minor), e.g. (6, 12).
    pub fn release(&self) -> (u32, u32) {
        self.release
    }

    fn init_script(window: &Path) -> String {
        let bin_dir = super::bin("nfs-grace")
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let visible = format!("{} {bin_dir}", env!("CARGO_MANIFEST_DIR"));
        format!(
            r#"#!/bin/sh
# PID 1 of a hanfs test guest (generated by tests/it/common/uml.rs)
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /run
W=/run/uml-window
mkdir -p $W && mount -t hostfs none $W -o {window}
echo booted > $W/booted
for d in /tmp /var/tmp /var/lib/nfs /var/log /root; do mount -t tmpfs tmpfs $d; done
# The checkout and its built binaries stay visible at their host paths even
# when they live under a directory the guest just covered with a tmpfs.
for p in {visible}; do
  case $p in /tmp/*|/var/tmp/*|/var/log/*|/root/*|/run/*)
    mkdir -p "$p" && mount -t hostfs none "$p" -o "$p";;
  esac
done
mkdir -p /dev/shm && mount -t tmpfs tmpfs /dev/shm
mkdir -p /run/lock /run/rpcbind /run/resource-agents /run/sendsigs.omit.d
mkdir -p /var/lib/nfs/sm /var/lib/nfs/sm.bak /var/lib/nfs/v4recovery /var/lib/nfs/nfsdcld /var/lib/nfs/rpc_pipefs
touch /var/lib/nfs/etab /var/lib/nfs/rmtab /var/lib/nfs/state
chown statd /var/lib/nfs/sm /var/lib/nfs/sm.bak /var/lib/nfs/state 2>/dev/null
ip link set lo up
hostname uml-guest
# The guest's name resolves; unknown names fail at once (no DNS server to wait for).
mkdir -p /run/uml-etc
{{ cat /etc/hosts; echo "127.0.1.1 uml-guest"; }} > /run/uml-etc/hosts
echo "nameserver 127.0.0.1" > /run/uml-etc/resolv.conf
mount --bind /run/uml-etc/hosts /etc/hosts
mount --bind /run/uml-etc/resolv.conf /etc/resolv.conf
export UML_WINDOW=$W
cd /root
sh $W/script.sh > $W/output 2>&1 < /dev/null
echo $? > $W/rc
sync
halt -f 2>/dev/null; poweroff -f 2>/dev/null; echo o > /proc/sysrq-trigger
sleep 60
"#,
            window = window.display()
        )
    }

    /// Boot a guest, run `script` with `sh` as root inside, wait at most
    /// `timeout` for the guest to power off, and return what happened. The
    /// guest is killed (all its host processes) and its files removed in
    /// every case.
    pub fn run(&self, script: &str, timeout: Duration) -> UmlResult {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::Builder::new()
            .prefix("hanfs-uml-")
            .tempdir()
            .expect("temp dir");
        let w = dir.path();
        std::fs::write(w.join("script.sh"), script).expect("write script");
        let init = w.join("init.sh");
        std::fs::write(&init, Self::init_script(w)).expect("write init");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            // the guest's root writes through hostfs as root: let it.
            std::fs::set_permissions(w, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        }
        let umid = super::unique_name("hanfs");
        let console = std::fs::File::create(w.join("console.log")).expect("console file");
        let mut cmd = Command::new(&self.kernel);
        cmd.arg(format!("umid={umid}"))
            .arg(format!("uml_dir={}", w.display()))
            .arg(format!("mem={MEM}"))
            .args(["root=/dev/root", "rootfstype=hostfs", "rootflags=/", "ro"])
            .arg(format!("init={}", init.display()))
            .args(["con=null", "con0=fd:0,fd:1"]);
        cmd.stdin(Stdio::null())
            .stdout(console.try_clone().expect("dup"))
            .stderr(console)
            .process_group(0);
        let launched = SystemTime::now();
        let t0 = Instant::now();
        let mut child = cmd.spawn().expect("spawn linux.uml");
        let main = child.id() as i32;
        let mut timed_out = false;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if t0.elapsed() >= timeout => {
                    timed_out = true;
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => break,
            }
        }
        kill_guest(&umid, main);
        let _ = child.wait();
        let elapsed = t0.elapsed();
        let read = |n: &str| std::fs::read_to_string(w.join(n)).unwrap_or_default();
        let code = read("rc").trim().parse::<i32>().ok();
        let boot = std::fs::metadata(w.join("booted"))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| m.duration_since(launched).ok());
        let r = UmlResult {
            output: read("output"),
            ok: code == Some(0) && !timed_out,
            code,
            timed_out,
            console: read("console.log"),
            boot,
        };
        if std::env::var_os("HANFS_UML_SHOW").is_some() {
            eprintln!("--- uml {umid} output ---\n{}", r.output);
        }
        assert!(
            guest_pids(&umid).is_empty(),
            "UML guest {umid} left processes behind"
        );
        eprintln!(
            "uml {umid}: boot {:?}, total {:.1}s, code {:?}{}",
            r.boot.map(|b| format!("{:.2}s", b.as_secs_f64())),
            elapsed.as_secs_f64(),
            r.code,
            if timed_out { ", TIMED OUT" } else { "" }
        );
        r
    }
}

/// A shell function in guest scripts that runs a built agent:
/// `NAME [ARG ...] ACTION [PARAM=VALUE ...]`. The instance and the
/// parameters given here are shell words, expanded when the function runs
/// (they may use the leading `ARG`s, named by `args`); the call's own
/// `PARAM=VALUE` words come after them, so they win.
pub struct GuestAgent {
    name: String,
    agent: String,
    args: Vec<String>,
    instance: String,
    params: Vec<(String, String)>,
}

impl GuestAgent {
    /// `name` runs `agent` as instance `${INST:-svc1}` (`INST=svc2 name
    /// ACTION` for another).
    pub fn new(name: &str, agent: &str) -> GuestAgent {
        GuestAgent {
            name: name.into(),
            agent: agent.into(),
            args: Vec::new(),
            instance: "${INST:-svc1}".into(),
            params: Vec::new(),
        }
    }

    /// Leading arguments before the action, as shell variables of these names.
    pub fn args(mut self, names: &[&str]) -> Self {
        self.args = names.iter().map(|n| n.to_string()).collect();
        self
    }

    pub fn instance(mut self, word: &str) -> Self {
        self.instance = word.into();
        self
    }

    pub fn param(mut self, name: &str, word: &str) -> Self {
        self.params.push((name.into(), word.into()));
        self
    }

    /// The function's definition.
    pub fn sh(&self) -> String {
        let mut s = format!("{}() {{\n", self.name);
        if !self.args.is_empty() {
            let set: Vec<String> = (1..)
                .zip(&self.args)
                .map(|(i, n)| format!("{n}=${i}"))
                .collect();
            s.push_str(&format!(
                "    {}; shift {}\n",
                set.join(" "),
                self.args.len()
            ));
        }
        s.push_str("    act=$1; shift\n");
        s.push_str(&format!("    env OCF_RESOURCE_INSTANCE={}", self.instance));
        for (k, v) in &self.params {
            s.push_str(&format!(" OCF_RESKEY_{k}={v}"));
        }
        s.push_str(&format!(
            " \\\n        $(for kv in \"$@\"; do printf 'OCF_RESKEY_%s ' \"$kv\"; done) {} $act\n}}\n",
            super::bin(&self.agent).display()
        ));
        s
    }
}

/// The start of a guest script that runs agents: the environment every
/// agent gets (as `AgentCmd` gives it on the host, with a 30 s timeout),
/// `val KEY VALUE` to report a result (`UmlResult::value`), and a function
/// for each of `agents`.
pub fn agents_sh(agents: &[GuestAgent]) -> String {
    let mut s = String::from(
        "export OCF_ROOT=/usr/lib/ocf HA_LOGFACILITY=none OCF_RESKEY_CRM_meta_timeout=30000\n\
         val() { echo \"$1=$2\"; }\n",
    );
    for a in agents {
        s.push_str(&a.sh());
    }
    s
}
