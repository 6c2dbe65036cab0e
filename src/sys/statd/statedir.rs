//! Where this node's statd keeps its state, and how statd is configured.
//!
//! Debian and SUSE keep the monitor list in `/var/lib/nfs/sm`, Red Hat in
//! `/var/lib/nfs/statd/sm`; `[statd] state-directory-path` in
//! `/etc/nfs.conf` overrides both. statd and sm-notify drop root for the
//! owner of `sm/`, so files made for them must belong to that owner.

use crate::ocf::{Deadline, OcfError, OcfResult};
use crate::sys::procs::{self, Ns};
use crate::sys::{process, program};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A statd state directory (`sm/`, `sm.bak/`, `state`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatdDir {
    pub base: PathBuf,
}

impl StatdDir {
    pub fn new(base: impl Into<PathBuf>) -> Self {
        StatdDir { base: base.into() }
    }
    /// The monitor list.
    pub fn sm(&self) -> PathBuf {
        self.base.join("sm")
    }
    /// The notify list (records being notified).
    pub fn sm_bak(&self) -> PathBuf {
        self.base.join("sm.bak")
    }
    /// Whether `sm/` is there.
    pub fn exists(&self) -> bool {
        self.sm().is_dir()
    }
    /// The user and group statd and sm-notify run as: the owner of `sm/`.
    pub fn owner(&self) -> std::io::Result<(u32, u32)> {
        let m = std::fs::metadata(self.sm())?;
        Ok((m.uid(), m.gid()))
    }

    /// The directory to use: `configured` when given, else nfs.conf's
    /// `[statd] state-directory-path`, else the first of the distribution
    /// defaults that has an `sm/`. `Err` lists what was tried.
    /// [`StatdDir::detect`] with this node's nfs.conf: a `configured`
    /// directory that is not statd's is this node's problem (2), none found
    /// a missing installation (5).
    pub fn find(configured: Option<&Path>) -> OcfResult<StatdDir> {
        StatdDir::detect(configured, &NfsConf::load()).map_err(|e| match configured {
            Some(_) => OcfError::args(e),
            None => OcfError::installed(e),
        })
    }

    pub fn detect(configured: Option<&Path>, conf: &NfsConf) -> Result<StatdDir, String> {
        if let Some(p) = configured {
            let d = StatdDir::new(p);
            return if d.exists() {
                Ok(d)
            } else {
                Err(format!("statd_dir {} has no sm/ subdirectory", p.display()))
            };
        }
        if let Some(p) = conf.get("statd", "state-directory-path") {
            let d = StatdDir::new(p);
            return if d.exists() {
                Ok(d)
            } else {
                Err(format!(
                    "nfs.conf [statd] state-directory-path={p} has no sm/ subdirectory"
                ))
            };
        }
        for cand in ["/var/lib/nfs/statd", "/var/lib/nfs"] {
            let d = StatdDir::new(cand);
            if d.exists() {
                return Ok(d);
            }
        }
        Err("no statd state directory found (neither /var/lib/nfs/statd/sm nor /var/lib/nfs/sm; is nfs-utils installed?)".into())
    }
}

/// `/etc/nfs.conf` (and `/etc/nfs.conf.d/*.conf`), read as nfs-utils does
/// for the few keys hanfs needs: `[section]`, `key = value`, `#`/`;`
/// comments; later files override earlier ones.
#[derive(Debug, Clone, Default)]
pub struct NfsConf {
    values: BTreeMap<(String, String), String>,
}

impl NfsConf {
    pub fn load() -> NfsConf {
        let mut c = NfsConf::default();
        if let Ok(s) = std::fs::read_to_string("/etc/nfs.conf") {
            c.add(&s);
        }
        if let Ok(rd) = std::fs::read_dir("/etc/nfs.conf.d") {
            let mut files: Vec<PathBuf> = rd
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "conf"))
                .collect();
            files.sort();
            for f in files {
                if let Ok(s) = std::fs::read_to_string(&f) {
                    c.add(&s);
                }
            }
        }
        c
    }

    pub fn parse(text: &str) -> NfsConf {
        let mut c = NfsConf::default();
        c.add(text);
        c
    }

    fn add(&mut self, text: &str) {
        let mut section = String::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                if let Some(end) = rest.find(']') {
                    section = rest[..end].trim().to_ascii_lowercase();
                }
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                let v = v.trim().trim_matches('"').to_string();
                self.values
                    .insert((section.clone(), k.trim().to_ascii_lowercase()), v);
            }
        }
    }

    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.values
            .get(&(section.to_ascii_lowercase(), key.to_ascii_lowercase()))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Give `path` (not following a symbolic link) to statd's user `owner`,
/// where there is one and we are root (an unprivileged test run keeps
/// its own files).
pub fn give_to(path: &Path, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    match owner {
        Some((u, g)) if nix::unistd::geteuid().is_root() => {
            std::os::unix::fs::lchown(path, Some(u), Some(g))
        }
        _ => Ok(()),
    }
}

/// An `rpc.statd` running in this network namespace, with the HA callout
/// it was started with (`-H`/`--ha-callout`, else nfs.conf's
/// `[statd] ha-callout`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningStatd {
    pub pid: i32,
    pub callout: Option<String>,
}

impl RunningStatd {
    /// Whether it runs the hanfs callout (by file name: the package's
    /// path or a test's build).
    pub fn runs_hanfs_callout(&self) -> bool {
        (self.callout.as_deref()).is_some_and(|c| {
            Path::new(c)
                .file_name()
                .is_some_and(|n| n == "hanfs-statd-callout")
        })
    }
}

/// The `-H` value in an rpc.statd command line.
pub fn callout_from_cmdline(args: &[String]) -> Option<String> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "-H" || a == "--ha-callout" {
            return it.next().cloned();
        }
        if let Some(v) = a.strip_prefix("--ha-callout=") {
            return Some(v.to_string());
        }
        if let Some(v) = a.strip_prefix("-H").filter(|v| !v.is_empty()) {
            return Some(v.to_string());
        }
    }
    None
}

/// rpc.statd processes in this network namespace (/proc may show other
/// namespaces' processes too).
pub fn running_statd(conf: &NfsConf) -> Vec<RunningStatd> {
    procs::named("rpc.statd")
        .into_iter()
        .filter(|&pid| procs::shares_namespace(pid, Ns::Net))
        .map(|pid| RunningStatd {
            pid,
            callout: callout_from_cmdline(&procs::cmdline(pid))
                .or_else(|| conf.get("statd", "ha-callout").map(str::to_string)),
        })
        .collect()
}

/// The monitor's check: an rpc.statd runs in this network namespace.
/// Without it lockd cannot register a new NFSv3 lock holder (SM_MON) and
/// refuses its locks (the client gets ENOLCK); clients already monitored
/// keep locking, but nothing new is protected, so this is a failure (1).
/// Says whether every rpc.statd here runs the hanfs callout.
pub fn require_statd() -> OcfResult<bool> {
    let statds = running_statd(&NfsConf::load());
    if statds.is_empty() {
        return Err(OcfError::generic(
            "rpc.statd is not running: lockd refuses NFSv3 locks of new clients (ENOLCK) until it runs again; start runs it",
        ));
    }
    Ok(statds.iter().all(RunningStatd::runs_hanfs_callout))
}

/// Whether systemd manages this node's network namespace (it is PID 1's
/// and systemd booted it): then rpc.statd is started as its unit.
fn systemd_here() -> bool {
    Path::new("/run/systemd/system").is_dir() && procs::shares_namespace(1, Ns::Net)
}

/// Start rpc.statd when none runs in this network namespace, without
/// notifying anyone (statd-holding notifies, from the floating
/// addresses): `systemctl start rpc-statd.service` where systemd manages
/// the node (the unit sets RPC_STATD_NO_NOTIFY=1; its rpc-statd-notify
/// runs once a boot), else `rpc.statd --no-notify`, which returns once
/// statd serves. Either way statd reads its HA callout from nfs.conf.
/// Returns whether it had to start it.
pub fn start_statd_if_absent(deadline: &Deadline) -> OcfResult<bool> {
    if !running_statd(&NfsConf::load()).is_empty() {
        return Ok(false);
    }
    let mut cmd = if systemd_here() {
        let mut c = program::command("systemctl");
        c.args(["start", "rpc-statd.service"]);
        c
    } else {
        let mut c = Command::new(program::require("rpc.statd", "nfs-utils or nfs-common")?);
        c.arg("--no-notify");
        c
    };
    let what = process::describe(&cmd);
    log::warn!("rpc.statd is not running: starting it ({what})");
    let out = process::run(&mut cmd, deadline)?;
    if !out.success() {
        let said = out.last_words();
        return Err(OcfError::generic(format!(
            "rpc.statd is not running and {what} failed: {}",
            if said.is_empty() {
                "see its messages in syslog (is rpcbind running?)"
            } else {
                &said
            }
        )));
    }
    deadline
        .poll(Duration::from_millis(20), || {
            (!running_statd(&NfsConf::load()).is_empty()).then_some(())
        })
        .ok_or_else(|| {
            OcfError::generic(format!(
                "rpc.statd is not running: {what} succeeded but no rpc.statd runs"
            ))
        })?;
    Ok(true)
}

/// Warn when rpc.statd will not run the hanfs callout: then new clients
/// reach the holding directory only at the next monitor.
pub fn warn_without_callout() {
    let conf = NfsConf::load();
    let statds = running_statd(&conf);
    if statds.is_empty() {
        log::warn!(
            "no rpc.statd runs here: NFSv3 clients cannot lock until it does (statd-holding's start starts it)"
        );
    }
    for s in statds {
        match s.callout.as_deref() {
            Some(c) if s.runs_hanfs_callout() => {
                log::debug!("rpc.statd (pid {}) runs the hanfs callout {c}", s.pid)
            }
            Some(c) => log::warn!(
                "rpc.statd (pid {}) runs the HA callout {c}, not hanfs-statd-callout: unless it calls ours, new clients reach holding_dir only at the next monitor",
                s.pid
            ),
            None => log::warn!(
                "rpc.statd (pid {}) runs without an HA callout: new clients reach holding_dir only at the next monitor; set [statd] ha-callout=/usr/libexec/hanfs/hanfs-statd-callout in /etc/nfs.conf and restart rpc.statd",
                s.pid
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfs_conf_keys() {
        let c = NfsConf::parse(
            "# comment\n[general]\npipefs-directory=/run/rpc_pipefs\n[Statd]\n  ha-callout = /usr/libexec/hanfs/hanfs-statd-callout\n; x\nstate-directory-path=\n[sm-notify]\nlift-grace = n\n",
        );
        assert_eq!(
            c.get("statd", "ha-callout"),
            Some("/usr/libexec/hanfs/hanfs-statd-callout")
        );
        assert_eq!(c.get("statd", "state-directory-path"), None);
        assert_eq!(c.get("sm-notify", "lift-grace"), Some("n"));
        assert_eq!(c.get("nfsd", "threads"), None);
    }

    #[test]
    fn statd_command_lines() {
        let v = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            callout_from_cmdline(&v("rpc.statd --no-notify -H /x/callout")).as_deref(),
            Some("/x/callout")
        );
        assert_eq!(
            callout_from_cmdline(&v("rpc.statd --ha-callout=/y")).as_deref(),
            Some("/y")
        );
        assert_eq!(
            callout_from_cmdline(&v("rpc.statd -H/z -F")).as_deref(),
            Some("/z")
        );
        assert_eq!(callout_from_cmdline(&v("rpc.statd -F")), None);
    }

    #[test]
    fn detection_order() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("st/sm")).unwrap();
        let conf = NfsConf::default();
        let got = StatdDir::detect(Some(&d.path().join("st")), &conf).unwrap();
        assert_eq!(got.sm(), d.path().join("st/sm"));
        let e = StatdDir::detect(Some(d.path()), &conf).unwrap_err();
        assert!(e.contains("no sm/"), "{e}");
        let conf = NfsConf::parse(&format!(
            "[statd]\nstate-directory-path={}\n",
            d.path().join("st").display()
        ));
        assert_eq!(
            StatdDir::detect(None, &conf).unwrap().base,
            d.path().join("st")
        );
    }
}
