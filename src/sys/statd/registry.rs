//! The node's registry of statd-holding instances: which holding
//! directories the statd callout must write to.
//!
//! [`REGISTRY_DIR`] (tmpfs: a reboot empties it, so a probe after a reboot
//! answers "stopped"):
//!
//! - `<instance>.json`: the [`Registration`] (holding directory and its
//!   identity, statd directory, addresses, notifier processes), in the
//!   agents' one runtime state format ([`crate::ocf::load_state`]). Mode
//!   0644 ([`crate::ocf::save_state_readable`]): the callout runs as
//!   statd's unprivileged user and must read it.
//! - `<instance>.lock`: serializes the callout and the agent's reconcile on
//!   that instance's holding directory (flock; opened read-only, so the
//!   unprivileged callout can take it).
//! - `<instance>.notify/<address>/`: the private sm-notify directories
//!   (`sm/`, `sm.bak/`, `state`) and `<address>.log`, sm-notify's output.
//! - `<instance>.unrecorded/<name>`: a client the callout could not record,
//!   with the error ([`Registry::unrecorded`]).
//! - `<instance>.recorded/<mon_name>`: empty; that client has a line in
//!   the holding directory ([`Registry::is_recorded`]). The callout then
//!   has nothing to do and answers statd at once, without touching the
//!   shared storage: after a takeover every reclaiming client's SM_MON
//!   makes a callout, one at a time (lockd's single thread waits for statd,
//!   statd for the callout), and those clients are all held already.
//!   Written by start (the clients it took), the reconcile and the callout
//!   after a record is in place, removed before a record is taken out: a
//!   marker never claims a record that is not there.

use crate::ocf::{self, OcfResult, ResultExt};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where the registry is: a fixed path, not under `HA_RSCTMP` with the
/// agents' other state ([`crate::ocf::runtime_dir`]), because its reader,
/// statd's HA callout, is started by rpc.statd, not by the cluster
/// manager, and has no `HA_RSCTMP` to find it by: a path both sides know
/// without being told is the only meeting point.
pub const REGISTRY_DIR: &str = "/run/hanfs/statd-holding";

/// How long after a stop the callout still adds (never removes) records to
/// the instance's holding directory, as long as it is still the same
/// directory (same device and inode): covers clients that lock in the
/// moment between this resource's stop and the floating address going
/// away.
pub const DRAIN_SECS: u64 = 120;

/// An sm-notify process started for this instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notifier {
    pub pid: i32,
    /// Process start time (field 22 of /proc/PID/stat), so a reused pid is
    /// never mistaken for our notifier.
    pub start_time: u64,
    pub addr: String,
    pub dir: PathBuf,
}

impl Notifier {
    pub fn process(&self) -> crate::sys::procs::ProcId {
        crate::sys::procs::ProcId {
            pid: self.pid,
            start: self.start_time,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub instance: String,
    pub holding_dir: PathBuf,
    /// (st_dev, st_ino) of holding_dir when registered: the callout writes
    /// only while the path still leads to that directory (not to the empty
    /// mount point left behind by an unmounted shared file system).
    pub holding_id: (u64, u64),
    pub statd_dir: PathBuf,
    pub ips: Vec<String>,
    /// Started and not stopped. A stopped instance is kept, inactive, for
    /// `DRAIN_SECS` (see there).
    pub active: bool,
    /// Unix seconds until which an inactive registration still drains.
    #[serde(default)]
    pub drain_until: u64,
    #[serde(default)]
    pub notifiers: Vec<Notifier>,
    /// Unix seconds when the last reconcile began, and the last complete
    /// one (a monitor looks only at statd files changed since the former,
    /// with a complete pass now and then).
    #[serde(default)]
    pub reconciled_at: u64,
    #[serde(default)]
    pub fully_reconciled_at: u64,
    /// The lockd thread when this instance last notified its clients: if
    /// another lockd runs later, every NLM lock of the node was dropped
    /// (nfsd restarted for another service) and the clients are notified
    /// again.
    #[serde(default)]
    pub lockd: Option<crate::sys::procs::ProcId>,
    /// The clients it could not record that a failed monitor has named
    /// already (the alarm stands as Pacemaker's failed action; its
    /// recovery, a restart in place, cannot record them either).
    #[serde(default)]
    pub reported: Vec<String>,
}

/// A client the callout could not record ([`Registry::unrecorded`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrecorded {
    /// Its record file's name in sm/ (usually the client's address).
    pub name: String,
    /// The callout's error.
    pub why: String,
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Registration {
    /// Whether the callout should still write here (active, or draining).
    pub fn receives_callouts(&self, now: u64) -> bool {
        self.active || now < self.drain_until
    }

    /// Whether `holding_dir` still leads to the directory registered (not
    /// to the mount point an unmounted shared file system left behind).
    pub fn holding_dir_unchanged(&self) -> Result<(), String> {
        let show = self.holding_dir.display();
        match dir_id(&self.holding_dir) {
            Ok(id) if id == self.holding_id => Ok(()),
            Ok(_) => Err(format!(
                "holding_dir {show} is no longer the directory registered at start (unmounted?)"
            )),
            Err(e) => Err(format!("holding_dir {show}: {e}")),
        }
    }
}

/// The node's lockd thread now (it runs while nfsd or an NFS mount needs
/// it): what [`Registration::lockd`] records.
pub fn lockd_now() -> Option<crate::sys::procs::ProcId> {
    crate::sys::nfsd::server::lockd_thread().and_then(crate::sys::procs::ProcId::of)
}

/// An instance name made safe as a file name.
pub fn safe_name(instance: &str) -> String {
    instance
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.:".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}

/// (st_dev, st_ino) of a path.
pub fn dir_id(p: &Path) -> io::Result<(u64, u64)> {
    let m = std::fs::metadata(p)?;
    Ok((m.dev(), m.ino()))
}

#[derive(Debug, Clone)]
pub struct Registry {
    pub dir: PathBuf,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            dir: PathBuf::from(REGISTRY_DIR),
        }
    }
}

impl Registry {
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Registry { dir: dir.into() }
    }

    pub fn file(&self, instance: &str) -> PathBuf {
        self.dir.join(format!("{}.json", safe_name(instance)))
    }
    pub fn lock_file(&self, instance: &str) -> PathBuf {
        self.dir.join(format!("{}.lock", safe_name(instance)))
    }
    /// Parent of this instance's private sm-notify directories.
    pub fn notify_root(&self, instance: &str) -> PathBuf {
        self.dir.join(format!("{}.notify", safe_name(instance)))
    }

    /// Remove the instance's notifier directory, whatever is left in it.
    pub fn remove_notify_root(&self, instance: &str) -> OcfResult<()> {
        let root = self.notify_root(instance);
        match std::fs::remove_dir_all(&root) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(e).or_generic(|| format!("cannot remove {}", root.display()))
            }
            _ => Ok(()),
        }
    }

    /// Create the registry directory, and make it and its parent (the
    /// `hanfs` directory under /run) 0755 whatever the umask: the
    /// unprivileged callout reads it.
    pub fn ensure(&self) -> OcfResult<()> {
        let open = |p: &Path| std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755));
        std::fs::create_dir_all(&self.dir)
            .and_then(|()| open(&self.dir))
            .and_then(
                |()| match self.dir.parent().filter(|p| p.ends_with("hanfs")) {
                    Some(parent) => open(parent),
                    None => Ok(()),
                },
            )
            .or_generic(|| format!("cannot create {}", self.dir.display()))
    }

    /// The instance's registration; a damaged one is an error (1).
    pub fn load(&self, instance: &str) -> OcfResult<Option<Registration>> {
        ocf::load_state(&self.file(instance))
    }

    pub fn save(&self, reg: &Registration) -> OcfResult<()> {
        self.ensure()?;
        ocf::save_state_readable(&self.file(&reg.instance), reg)?;
        // The lock file must exist before anyone takes it. Created only
        // where nothing is (O_EXCL): a link planted there, even a dangling
        // one, is not followed, so nothing is created where it points.
        let lf = self.lock_file(&reg.instance);
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lf)
            .and_then(|_| std::fs::set_permissions(&lf, std::fs::Permissions::from_mode(0o644)));
        match created {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                Err(e).or_generic(|| format!("cannot create {}", lf.display()))
            }
            _ => Ok(()),
        }
    }

    pub fn remove(&self, instance: &str) -> io::Result<()> {
        for p in [self.file(instance), self.lock_file(instance)] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        for d in [self.unrecorded_dir(instance), self.recorded_dir(instance)] {
            match std::fs::remove_dir_all(d) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Where the callout remembers the clients it could not record in the
    /// instance's holding directory (one file per client, named like its
    /// record file, holding the error), for the monitor to report.
    pub fn unrecorded_dir(&self, instance: &str) -> PathBuf {
        self.dir.join(format!("{}.unrecorded", safe_name(instance)))
    }

    /// Where the clients known to be in the instance's holding directory
    /// are marked (see the module notes).
    pub fn recorded_dir(&self, instance: &str) -> PathBuf {
        self.dir.join(format!("{}.recorded", safe_name(instance)))
    }

    /// Create [`Registry::unrecorded_dir`] and a new, empty
    /// [`Registry::recorded_dir`] for the callout, which runs as statd's
    /// user `owner` (mode 0700: nobody else reads them), and mark the
    /// clients of `held`, just read from the holding directory.
    pub fn prepare_for_callout(
        &self,
        instance: &str,
        owner: Option<(u32, u32)>,
        held: &super::record::RecordSet,
    ) -> OcfResult<()> {
        self.ensure()?;
        let recorded = self.recorded_dir(instance);
        match std::fs::remove_dir_all(&recorded) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(e).or_generic(|| format!("cannot empty {}", recorded.display()))?
            }
            _ => {}
        }
        for d in [self.unrecorded_dir(instance), recorded] {
            let show = || format!("cannot create {}", d.display());
            match std::fs::create_dir(&d) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e).or_generic(show)?,
                _ => {}
            }
            super::statedir::give_to(&d, owner).or_generic(show)?;
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))
                .or_generic(show)?;
        }
        for recs in held.values() {
            self.note_recorded(instance, recs);
        }
        Ok(())
    }

    /// The clients of `recs` are in the instance's holding directory.
    /// Best effort: a marker missing only costs a callout its shortcut.
    pub fn note_recorded(&self, instance: &str, recs: &[super::record::MonitorRecord]) {
        let d = self.recorded_dir(instance);
        for r in recs {
            if super::record::valid_file_name(&r.mon_name) {
                let p = d.join(&r.mon_name);
                // created where nothing is, never through a planted link
                let _ = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&p);
            }
        }
    }

    /// Client `mon_name` is about to leave the holding directory (or may
    /// have): its marker goes first.
    pub fn forget_recorded(&self, instance: &str, mon_name: &str) -> OcfResult<()> {
        if !super::record::valid_file_name(mon_name) {
            return Ok(());
        }
        crate::sys::fsfile::remove_opt(&self.recorded_dir(instance).join(mon_name))
    }

    /// Whether client `mon_name` is marked as in the instance's holding
    /// directory (a regular file, not a link planted there).
    pub fn is_recorded(&self, instance: &str, mon_name: &str) -> bool {
        super::record::valid_file_name(mon_name)
            && std::fs::symlink_metadata(self.recorded_dir(instance).join(mon_name))
                .is_ok_and(|m| m.file_type().is_file())
    }

    /// The callout could not record client file `name` for `instance`.
    pub fn note_unrecorded(&self, instance: &str, name: &str, why: &str) -> OcfResult<()> {
        if !super::record::valid_file_name(name) {
            return Ok(());
        }
        let p = self.unrecorded_dir(instance).join(name);
        crate::sys::fsfile::write_atomic(&p, format!("{why}\n").as_bytes(), 0o600)
    }

    /// Client file `name` is recorded (or no longer monitored).
    pub fn clear_unrecorded(&self, instance: &str, name: &str) -> OcfResult<()> {
        if !super::record::valid_file_name(name) {
            return Ok(());
        }
        crate::sys::fsfile::remove_opt(&self.unrecorded_dir(instance).join(name))
    }

    /// The clients the callout could not record for `instance`. The
    /// directory is the statd user's: what is not a small regular file
    /// with a record file's name is skipped.
    pub fn unrecorded(&self, instance: &str) -> Vec<Unrecorded> {
        let d = self.unrecorded_dir(instance);
        let mut v: Vec<Unrecorded> = super::record::list_names(&d)
            .into_iter()
            .filter_map(|name| {
                let why = crate::sys::fsfile::read_own_file(&d.join(&name), 4096).ok()??;
                Some(Unrecorded {
                    name,
                    why: String::from_utf8_lossy(&why).trim().to_string(),
                })
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Forget the instances stopped longer ago than the drain time.
    pub fn prune_expired(&self) {
        let now = now_secs();
        for r in self.list() {
            if !r.receives_callouts(now) {
                let _ = self.remove(&r.instance);
            }
        }
    }

    /// Every registration on this node (unreadable and damaged ones are
    /// logged and skipped).
    pub fn list(&self) -> Vec<Registration> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut v: Vec<Registration> = rd
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.ends_with(".json") && !n.starts_with('.'))
            })
            .filter_map(|e| {
                ocf::load_state(&e.path()).unwrap_or_else(|e| {
                    log::warn!("skipping a registration: {e}");
                    None
                })
            })
            .collect();
        v.sort_by(|a, b| a.instance.cmp(&b.instance));
        v
    }

    /// The other started instance (not `me`) whose holding directory is
    /// `dir`, if any.
    pub fn active_user_of(&self, dir: &Path, me: &str) -> Option<String> {
        (self.list().into_iter())
            .find(|r| r.active && r.holding_dir == dir && r.instance != me)
            .map(|r| r.instance)
    }

    /// Take the instance's lock, waiting at most `wait`. `None` when it
    /// could not be had in time (or the lock file is missing): the caller
    /// goes on without it rather than stall statd.
    pub fn lock(&self, instance: &str, wait: Duration) -> Option<Flock<File>> {
        let lf = self.lock_file(instance);
        let start = Instant::now();
        // Not blocking on a FIFO planted there, not following a link.
        let mut f = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&lf)
        {
            Ok(f) => f,
            Err(e) => {
                log::warn!(
                    "cannot open {}: {e}; going on without the lock",
                    lf.display()
                );
                return None;
            }
        };
        loop {
            match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                Ok(l) => return Some(l),
                Err((back, _)) => {
                    if start.elapsed() >= wait {
                        log::warn!(
                            "could not lock {} within {:?}; going on without it",
                            lf.display(),
                            wait
                        );
                        return None;
                    }
                    f = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(inst: &str) -> Registration {
        Registration {
            instance: inst.into(),
            holding_dir: "/shared/h".into(),
            holding_id: (1, 2),
            statd_dir: "/var/lib/nfs".into(),
            ips: vec!["192.0.2.10".into()],
            active: true,
            drain_until: 0,
            notifiers: vec![],
            reconciled_at: 0,
            fully_reconciled_at: 0,
            lockd: None,
            reported: vec![],
        }
    }

    #[test]
    fn save_list_remove() {
        let d = tempfile::tempdir().unwrap();
        let r = Registry::at(d.path().join("reg"));
        assert!(r.list().is_empty());
        assert_eq!(r.load("a").unwrap(), None);
        r.save(&reg("a")).unwrap();
        r.save(&reg("b/../x")).unwrap();
        assert_eq!(r.list().len(), 2);
        assert_eq!(r.load("a").unwrap().unwrap(), reg("a"));
        assert!(r.file("b/../x").ends_with("b_.._x.json"));
        let l = r.lock("a", Duration::from_millis(10)).unwrap();
        assert!(
            r.lock("a", Duration::from_millis(30)).is_none(),
            "lock is exclusive"
        );
        drop(l);
        assert!(r.lock("a", Duration::from_millis(10)).is_some());
        r.remove("a").unwrap();
        r.remove("a").unwrap();
        assert_eq!(r.list().len(), 1);
    }

    /// The format is the one the registry had before it went through
    /// `ocf::load_state` (pretty JSON, optional fields defaulted): what a
    /// node upgraded under a running instance finds reads as before; a
    /// damaged file is an error for `load` and skipped by `list`.
    #[test]
    fn registrations_of_the_previous_version_read_and_damaged_ones_do_not() {
        let d = tempfile::tempdir().unwrap();
        let r = Registry::at(d.path());
        let old = r#"{
  "instance": "a",
  "holding_dir": "/shared/h",
  "holding_id": [1, 2],
  "statd_dir": "/var/lib/nfs",
  "ips": ["192.0.2.10"],
  "active": true
}"#;
        std::fs::write(r.file("a"), old).unwrap();
        assert_eq!(r.load("a").unwrap().unwrap(), reg("a"));
        r.save(&reg("b")).unwrap();
        let mode = std::fs::metadata(r.file("b")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "the unprivileged callout reads it");
        std::fs::write(r.file("b"), "{\"instance\": \"b\",").unwrap();
        let e = r.load("b").unwrap_err();
        assert!(e.reason.contains("is damaged"), "{e}");
        let names: Vec<String> = r.list().into_iter().map(|g| g.instance).collect();
        assert_eq!(names, ["a"]);
    }

    /// A link planted where the lock file goes is not followed: save
    /// creates nothing where it points, and the lock is done without.
    #[test]
    fn a_link_for_the_lock_file_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let r = Registry::at(d.path().join("reg"));
        r.ensure().unwrap();
        let target = d.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, r.lock_file("a")).unwrap();
        r.save(&reg("a")).unwrap();
        assert!(!target.exists(), "created through the link");
        assert!(r.lock("a", Duration::from_millis(10)).is_none());
        assert_eq!(r.load("a").unwrap().unwrap(), reg("a"));
    }

    #[test]
    fn draining() {
        let mut g = reg("a");
        assert!(g.receives_callouts(100));
        g.active = false;
        g.drain_until = 100;
        assert!(g.receives_callouts(99));
        assert!(!g.receives_callouts(100));
        assert_eq!(safe_name("..hidden"), "hidden");
    }

    // Property tests: any registration file is loaded or skipped, never a
    // panic; what is saved loads back under the instance's name.
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_registration_file_loads_or_is_skipped(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let d = tempfile::tempdir().unwrap();
            let r = Registry::at(d.path());
            std::fs::write(r.file("a"), &bytes).unwrap();
            let loaded = r.load("a");
            prop_assert_eq!(r.list().len(), usize::from(matches!(loaded, Ok(Some(_)))));
        }

        #[test]
        fn registrations_round_trip(
            instance in any::<String>(),
            ids in any::<(u64, u64, u64, u64, bool)>(),
            ips in proptest::collection::vec(any::<String>(), 0..3),
        ) {
            let d = tempfile::tempdir().unwrap();
            let r = Registry::at(d.path());
            let g = Registration {
                instance: instance.clone(),
                holding_id: (ids.0, ids.1),
                ips,
                active: ids.4,
                drain_until: ids.2,
                reconciled_at: ids.3,
                ..reg("x")
            };
            r.save(&g).unwrap();
            prop_assert_eq!(r.load(&instance).unwrap(), Some(g));
        }
    }
}
