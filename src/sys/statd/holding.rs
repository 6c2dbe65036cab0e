//! The holding directory: the list of NFSv3 lock-holding clients of a
//! service, kept on the service's shared storage so the node that takes
//! the service over can notify them.
//!
//! Layout: one file per monitored peer, named like statd's `sm/` files and
//! holding statd's own record lines, at most one line per `mon_name`
//! (with `sm-notify -v` the notification names the floating address, so
//! `my_name` and the cookie do not matter for notifying, only who to
//! notify). Dot files are ours: `.hanfs-nsm-state` (the last NSM state
//! number sent, so every takeover sends a new one) and `.hanfs-tmp-*`
//! (atomic writes in progress); statd and our readers skip them.
//!
//! The directory only grows by additions (the callout's add-client, the
//! monitor's reconcile) and shrinks only by the callout's del-client, when
//! statd says the lock manager no longer monitors the client. A stale
//! record costs one harmless notification at the next takeover (the client
//! matches notifications by server name and address, and has nothing to
//! reclaim); a missing one loses that client's locks. So a reconcile never
//! removes anything: if this node's `sm/` were emptied (an unexpected
//! sm-notify run), the holding directory must keep the list.

use super::record::{self, MonitorRecord, RecordSet};
use super::registry::{self, Registration, Registry};
use super::statedir::{self, StatdDir};
use crate::ocf::{Deadline, OcfResult};
use crate::sys::bounded;
use crate::sys::storage::{self, DirProblem, Look};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub const STATE_FILE: &str = ".hanfs-nsm-state";

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Change {
    Unchanged,
    Written,
    Removed,
}

/// Write `data` to `path` atomically (temporary file in the same
/// directory, fsync, rename, fsync of the directory) with `mode`, owned by
/// `owner` when given and we are root.
pub fn write_file(
    path: &Path,
    data: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".hanfs-tmp-")
        .tempfile_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    statedir::give_to(tmp.path(), owner)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    crate::sys::fsfile::sync_dir(dir);
    Ok(())
}

fn remove_file(path: &Path) -> io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            crate::sys::fsfile::sync_dir(path.parent().unwrap_or(Path::new(".")));
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// `existing` with those of `new` whose mon_name it lacks appended: one
/// line per mon_name, and a line already held is kept as it is. Its
/// `my_name` and cookie are an earlier lock manager's, but nothing here
/// reads them (see the module notes; [`place_local`] puts this node's name
/// in, and statd replaces the line when lockd monitors the client again).
/// So a client that reclaims after a takeover, whose SM_MON changes only
/// those two fields, costs the holding directory no write.
pub fn merge(existing: &[MonitorRecord], new: &[MonitorRecord]) -> Vec<MonitorRecord> {
    let mut out: Vec<MonitorRecord> = Vec::with_capacity(existing.len() + new.len());
    for r in existing.iter().chain(new) {
        if !out.iter().any(|o| o.mon_name == r.mon_name) {
            out.push(r.clone());
        }
    }
    out
}

/// Put `records` (all for file `name`) into the holding directory.
pub fn add(
    holding: &Path,
    name: &str,
    records: &[MonitorRecord],
    owner: Option<(u32, u32)>,
) -> io::Result<Change> {
    if records.is_empty() || !record::valid_file_name(name) {
        return Ok(Change::Unchanged);
    }
    let path = holding.join(name);
    let existing = record::read_file(&path)?.unwrap_or_default();
    let merged = merge(&existing, records);
    if merged == existing {
        return Ok(Change::Unchanged);
    }
    write_file(&path, record::render(&merged).as_bytes(), 0o600, owner)?;
    Ok(Change::Written)
}

/// Drop `mon_name` from holding file `name` (the whole file when nothing
/// is left).
pub fn remove(
    holding: &Path,
    name: &str,
    mon_name: &str,
    owner: Option<(u32, u32)>,
) -> io::Result<Change> {
    if !record::valid_file_name(name) {
        return Ok(Change::Unchanged);
    }
    let path = holding.join(name);
    let Some(existing) = record::read_file(&path)? else {
        return Ok(Change::Unchanged);
    };
    let kept: Vec<MonitorRecord> = existing
        .iter()
        .filter(|r| r.mon_name != mon_name)
        .cloned()
        .collect();
    if kept.is_empty() {
        return Ok(if remove_file(&path)? {
            Change::Removed
        } else {
            Change::Unchanged
        });
    }
    if kept == existing {
        return Ok(Change::Unchanged);
    }
    write_file(&path, record::render(&kept).as_bytes(), 0o600, owner)?;
    Ok(Change::Written)
}

/// What a reconcile did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reconciled {
    /// Holding files written (a local client was missing).
    pub written: Vec<String>,
    /// Those of `written` whose record statd wrote less than
    /// [`IN_FLIGHT_SECS`] ago: the callout may still be on its way.
    #[serde(default)]
    pub in_flight: Vec<String>,
    /// Local record files compared.
    pub local: usize,
    /// Local record files not compared (unchanged since the last time).
    pub unchanged: usize,
    /// Local clients that could not be recorded (file name, why): the
    /// holding directory is full, read-only, failing.
    pub failed: Vec<(String, String)>,
}

/// At most this many client names in an exit reason (it must stay short).
const NAMES_IN_REASON: usize = 5;

impl Reconciled {
    /// The exit reason for the clients not recorded in `holding`, if any:
    /// "cannot record 2 NFSv3 lock holders in holding_dir /x: No space
    /// left on device (c1, c2)".
    pub fn unrecorded_reason(&self, holding: &Path) -> Option<String> {
        if self.failed.is_empty() {
            return None;
        }
        let mut why: Vec<&str> = Vec::new();
        for (_, e) in &self.failed {
            if !why.contains(&e.as_str()) {
                why.push(e);
            }
        }
        let n = self.failed.len();
        let names: Vec<&str> = self.failed.iter().map(|(name, _)| name.as_str()).collect();
        Some(format!(
            "cannot record {n} NFSv3 lock holder{} in holding_dir {}: {} ({})",
            if n == 1 { "" } else { "s" },
            holding.display(),
            why.join("; "),
            crate::ocf::listed(&names, NAMES_IN_REASON)
        ))
    }
}

/// An I/O error as an exit reason says it: "No space left on device",
/// without Rust's " (os error 28)".
/// (Also under the tempfile crate's "... (os error 28) at path ..."
/// wrapping, which hides the OS error from `raw_os_error`.)
pub fn io_reason(e: &io::Error) -> String {
    let text = e.to_string();
    let code = e.raw_os_error().or_else(|| {
        let (_, rest) = text.split_once(" (os error ")?;
        rest.split(')').next()?.parse().ok()
    });
    let Some(code) = code else {
        return text;
    };
    let s = io::Error::from_raw_os_error(code).to_string();
    match s.rsplit_once(" (os error ") {
        Some((text, _)) => text.to_string(),
        None => s,
    }
}

/// How long after statd writes a client's record the callout may still be
/// copying it: its time limit, and a margin for coarse time stamps.
pub const IN_FLIGHT_SECS: u64 = super::callout::BUDGET.as_secs() + 2;

/// Make sure every client in this node's `sm/` is in the holding
/// directory (additions only, see the module notes). `lock` is taken
/// around each file's read-merge-write, so it cannot interleave with the
/// callout's update of the same file; `held` is told the records found in
/// (or written to) the holding directory.
///
/// With `since` (unix seconds), only the local files changed since then
/// are looked at: statd replaces a record file whenever it changes, so
/// that is every change, and a monitor stays cheap with many clients.
///
/// A client that cannot be written (full or read-only storage) does not
/// stop the others: it is reported in [`Reconciled::failed`].
pub fn reconcile<L>(
    local_sm: &Path,
    holding: &Path,
    owner: Option<(u32, u32)>,
    since: Option<u64>,
    lock: impl Fn() -> L,
    held: impl Fn(&[MonitorRecord]),
) -> Reconciled {
    let mut out = Reconciled::default();
    let now = registry::now_secs();
    for name in record::list_names(local_sm) {
        let changed = std::fs::symlink_metadata(local_sm.join(&name))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        if let Some(since) = since {
            if changed.is_some_and(|c| c < since) {
                out.unchanged += 1;
                continue;
            }
        }
        let _guard = lock();
        // sm/ is the statd user's: a link, a FIFO or an endless file there
        // is skipped, never followed or copied.
        let local = match record::read_file(&local_sm.join(&name)) {
            Ok(Some(l)) => l,
            Ok(None) => continue,
            Err(e) => {
                log::warn!("skipped in {}: {e}", local_sm.display());
                continue;
            }
        };
        if local.is_empty() {
            continue;
        }
        out.local += 1;
        match add(holding, &name, &local, owner) {
            Ok(change) => {
                held(&local);
                if change == Change::Written {
                    if changed.is_some_and(|c| c + IN_FLIGHT_SECS > now) {
                        out.in_flight.push(name.clone());
                    }
                    out.written.push(name);
                }
            }
            Err(e) => out.failed.push((name, io_reason(&e))),
        }
    }
    out
}

/// What placing held records into this node's `sm/` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Placed {
    pub created: usize,
    /// Files statd already has (it monitors that peer already).
    pub present: usize,
}

/// Give this node's statd the held records: each file not yet in `sm/` is
/// created (never overwritten: statd may be writing it), with `my_name`
/// set to this node's name, which is what the kernel lock manager here
/// will use when the client reclaims; statd then replaces the line
/// instead of keeping a second one for the old node.
pub fn place_local(
    local_sm: &Path,
    held: &RecordSet,
    my_name: &str,
    owner: Option<(u32, u32)>,
) -> io::Result<Placed> {
    let mut out = Placed::default();
    for (name, recs) in held {
        let path = local_sm.join(name);
        if path.exists() {
            out.present += 1;
            continue;
        }
        let mine: Vec<MonitorRecord> = recs.iter().map(|r| r.with_my_name(my_name)).collect();
        let mut tmp = tempfile::Builder::new()
            .prefix(".hanfs-tmp-")
            .tempfile_in(local_sm)?;
        tmp.write_all(record::render(&mine).as_bytes())?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
        statedir::give_to(tmp.path(), owner)?;
        tmp.as_file().sync_all()?;
        // link(2) fails if statd created the file meanwhile: keep statd's.
        match std::fs::hard_link(tmp.path(), &path) {
            Ok(()) => out.created += 1,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => out.present += 1,
            Err(e) => return Err(e),
        }
    }
    crate::sys::fsfile::sync_dir(local_sm);
    Ok(out)
}

/// The NSM state number to send at this takeover: odd, larger than the
/// last one sent from this holding directory and at least the current
/// time in seconds, so a client (which ignores a notification carrying the
/// state it already knows) never ignores ours. Recorded before use.
pub fn next_state(holding: &Path, owner: Option<(u32, u32)>, now: u64) -> io::Result<i32> {
    let path = holding.join(STATE_FILE);
    // What cannot be a state we sent (garbage, above the 32-bit range) is
    // no record: the time then gives a state the clients do not know.
    let prev: u64 = match crate::sys::fsfile::read_own_file(&path, 64)? {
        Some(b) => String::from_utf8_lossy(&b)
            .trim()
            .parse()
            .ok()
            .filter(|&n| n <= i32::MAX as u64)
            .unwrap_or(0),
        None => 0,
    };
    // The state is a 32-bit signed number on the wire.
    let mut s = (prev + 2).max(now % (1 << 31)) | 1;
    if s > i32::MAX as u64 {
        s = 1;
    }
    write_file(&path, format!("{s}\n").as_bytes(), 0o644, owner)?;
    Ok(s as i32)
}

/// What the node taking a service over takes from its holding directory.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Taken {
    /// The clients the previous holder recorded.
    pub held: RecordSet,
    /// The NSM state number for this takeover ([`next_state`]); 0 when
    /// none was asked for (nobody is notified).
    pub state: i32,
    /// (st_dev, st_ino) of the directory ([`registry::dir_id`]).
    pub id: (u64, u64),
}

/// Take the holding directory `dir` over, in a child bounded by
/// `deadline` (it is on shared storage): check it, give it to statd's user
/// `owner` (the callout runs as that user and writes there), read the
/// records, and with `new_state` pick (and record) the state number for
/// this takeover. Without it nothing is written there unless the
/// directory's owner or mode needs mending (a restart in place, which
/// notifies nobody, works on a full or read-only holding directory).
pub fn take(
    dir: &Path,
    owner: Option<(u32, u32)>,
    new_state: bool,
    deadline: &Deadline,
) -> OcfResult<Taken> {
    let what = format!("reading holding_dir {}", dir.display());
    let dir = dir.to_path_buf();
    Ok(bounded::run(deadline, &what, move || {
        take_here(&dir, owner, new_state)
    })?)
}

fn take_here(dir: &Path, owner: Option<(u32, u32)>, new_state: bool) -> Result<Taken, String> {
    let show = dir.display();
    let m = match storage::look(dir, Look::Stat) {
        Ok(m) => m,
        Err(DirProblem::Missing) => {
            return Err(format!(
                "holding_dir {show} does not exist (shared file system not mounted?)"
            ))
        }
        Err(p @ DirProblem::NotADirectory) => return Err(format!("holding_dir {show} {p}")),
        Err(p) => return Err(format!("holding_dir {show}: {p}")),
    };
    if let Some((u, g)) = owner {
        if (m.uid, m.gid) != (u, g) {
            std::os::unix::fs::chown(dir, Some(u), Some(g))
                .map_err(|e| format!("cannot give holding_dir {show} to statd's user {u}: {e}"))?;
        }
        if m.mode & 0o700 != 0o700 {
            let mode = m.mode | 0o700;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
                .map_err(|e| format!("holding_dir {show}: {e}"))?;
        }
    }
    let held = record::read_dir(dir).map_err(|e| format!("cannot read holding_dir {show}: {e}"))?;
    let state = match new_state {
        true => next_state(dir, owner, registry::now_secs())
            .map_err(|e| format!("cannot write to holding_dir {show}: {e}"))?,
        false => 0,
    };
    let id = registry::dir_id(dir).map_err(|e| format!("holding_dir {show}: {e}"))?;
    Ok(Taken { held, state, id })
}

/// A complete reconcile at least this often (seconds); in between, a
/// monitor looks only at statd's files changed since its last pass.
pub const FULL_RECONCILE_EVERY: u64 = 600;

/// [`reconcile`] for a registered instance: every client its statd
/// monitors (changed since `since`, unix seconds) copied into its holding
/// directory, while that is still the directory registered, in a child
/// bounded by `deadline`, under the instance lock the callout takes too.
pub fn reconcile_registered(
    deadline: &Deadline,
    reg: &Registration,
    since: Option<u64>,
) -> OcfResult<Reconciled> {
    let reg = reg.clone();
    let what = format!(
        "copying statd's clients to holding_dir {}",
        reg.holding_dir.display()
    );
    Ok(bounded::run(deadline, &what, move || {
        reg.holding_dir_unchanged()?;
        let statd = StatdDir::new(&reg.statd_dir);
        let registry = Registry::default();
        Ok(reconcile(
            &statd.sm(),
            &reg.holding_dir,
            statd.owner().ok(),
            since,
            || registry.lock(&reg.instance, super::callout::LOCK_WAIT),
            |recs| registry.note_recorded(&reg.instance, recs),
        ))
    })?)
}

/// What the kernel lock manager here calls itself in SM_MON (`my_name`):
/// the node's host name.
pub fn my_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(mon: &str, my: &str, c: u8) -> MonitorRecord {
        MonitorRecord {
            callback: 0x0100007f,
            prog: 100021,
            vers: 4,
            proc_: 16,
            cookie: [c; 16],
            mon_name: mon.into(),
            my_name: my.into(),
        }
    }

    #[test]
    fn merge_keeps_one_line_per_client() {
        let a = rec("192.0.2.5", "n1", 1);
        let b = rec("192.0.2.5", "n2", 2);
        let c = rec("client", "n1", 3);
        // a client held already keeps its line (a reclaim after a
        // takeover changes only my_name and the cookie)
        assert_eq!(
            merge(std::slice::from_ref(&a), std::slice::from_ref(&b)),
            vec![a.clone()]
        );
        assert_eq!(
            merge(std::slice::from_ref(&a), &[b.clone(), c.clone()]),
            vec![a.clone(), c.clone()]
        );
        assert_eq!(merge(&[], &[a.clone(), c.clone()]), vec![a.clone(), c]);
        assert_eq!(merge(&[], &[a.clone(), b]), vec![a]);
    }

    #[test]
    fn add_and_remove() {
        let d = tempfile::tempdir().unwrap();
        let h = d.path();
        assert_eq!(
            add(h, "192.0.2.5", &[rec("192.0.2.5", "n1", 1)], None).unwrap(),
            Change::Written
        );
        assert_eq!(
            add(h, "192.0.2.5", &[rec("192.0.2.5", "n1", 1)], None).unwrap(),
            Change::Unchanged
        );
        assert_eq!(
            add(h, "192.0.2.5", &[rec("alias", "n1", 1)], None).unwrap(),
            Change::Written
        );
        assert_eq!(
            record::read_file(&h.join("192.0.2.5"))
                .unwrap()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            remove(h, "192.0.2.5", "alias", None).unwrap(),
            Change::Written
        );
        assert_eq!(
            remove(h, "192.0.2.5", "192.0.2.5", None).unwrap(),
            Change::Removed
        );
        assert_eq!(
            remove(h, "192.0.2.5", "192.0.2.5", None).unwrap(),
            Change::Unchanged
        );
        assert!(!h.join("192.0.2.5").exists());
        assert_eq!(
            add(h, "../x", &[rec("x", "n1", 1)], None).unwrap(),
            Change::Unchanged
        );
        // no temporaries left
        assert_eq!(std::fs::read_dir(h).unwrap().count(), 0);
    }

    #[test]
    fn reconcile_only_adds() {
        let d = tempfile::tempdir().unwrap();
        let (sm, h) = (d.path().join("sm"), d.path().join("h"));
        std::fs::create_dir_all(&sm).unwrap();
        std::fs::create_dir_all(&h).unwrap();
        std::fs::write(sm.join("192.0.2.5"), rec("192.0.2.5", "n1", 1).to_line()).unwrap();
        std::fs::write(h.join("192.0.2.9"), rec("192.0.2.9", "n0", 9).to_line()).unwrap();
        let seen = std::cell::RefCell::new(Vec::new());
        let note = |recs: &[MonitorRecord]| {
            seen.borrow_mut()
                .extend(recs.iter().map(|r| r.mon_name.clone()))
        };
        let r = reconcile(&sm, &h, None, None, || (), note);
        assert_eq!(r.written, vec!["192.0.2.5"]);
        // statd wrote it just now: its callout may still be running
        assert_eq!(r.in_flight, vec!["192.0.2.5"]);
        assert_eq!(record::list_names(&h), vec!["192.0.2.5", "192.0.2.9"]);
        let r = reconcile(&sm, &h, None, None, || (), note);
        assert!(r.written.is_empty());
        assert_eq!(*seen.borrow(), ["192.0.2.5", "192.0.2.5"]);
        // a record statd wrote long ago and missing from the holding
        // directory is no callout on its way
        std::fs::remove_file(h.join("192.0.2.5")).unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(IN_FLIGHT_SECS + 5);
        std::fs::File::options()
            .write(true)
            .open(sm.join("192.0.2.5"))
            .and_then(|f| f.set_modified(old))
            .unwrap();
        let r = reconcile(&sm, &h, None, None, || (), |_| ());
        assert_eq!((r.written.len(), r.in_flight.len()), (1, 0));
        // Only files changed since a given time.
        std::fs::write(sm.join("192.0.2.6"), rec("192.0.2.6", "n1", 6).to_line()).unwrap();
        let future = crate::sys::statd::registry::now_secs() + 100;
        let r = reconcile(&sm, &h, None, Some(future), || (), |_| ());
        assert_eq!((r.local, r.unchanged), (0, 2));
        assert!(!h.join("192.0.2.6").exists());
        let r = reconcile(&sm, &h, None, Some(0), || (), |_| ());
        assert_eq!(r.written, vec!["192.0.2.6"]);
        std::fs::remove_file(sm.join("192.0.2.6")).unwrap();
        // An emptied sm/ leaves the holding directory alone.
        std::fs::remove_file(sm.join("192.0.2.5")).unwrap();
        reconcile(&sm, &h, None, None, || (), |_| ());
        assert_eq!(record::list_names(&h).len(), 3);
    }

    /// A client that cannot be written does not stop the others, and the
    /// reason names it with the error as a person reads it.
    #[test]
    fn reconcile_reports_the_clients_it_cannot_record() {
        let d = tempfile::tempdir().unwrap();
        let (sm, h) = (d.path().join("sm"), d.path().join("h"));
        std::fs::create_dir_all(&sm).unwrap();
        for c in ["192.0.2.5", "192.0.2.6", "192.0.2.7"] {
            std::fs::write(sm.join(c), rec(c, "n1", 1).to_line()).unwrap();
        }
        // a directory where 192.0.2.5's and .7's record files go
        std::fs::create_dir_all(h.join("192.0.2.5")).unwrap();
        std::fs::create_dir_all(h.join("192.0.2.7")).unwrap();
        let r = reconcile(&sm, &h, None, None, || (), |_| ());
        assert_eq!(r.written, vec!["192.0.2.6"]);
        let names: Vec<&str> = r.failed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["192.0.2.5", "192.0.2.7"]);
        let why = r.unrecorded_reason(Path::new("/x")).unwrap();
        assert!(
            why.starts_with("cannot record 2 NFSv3 lock holders in holding_dir /x: ")
                && why.contains("192.0.2.5 is a directory")
                && why.ends_with(" (192.0.2.5, 192.0.2.7)"),
            "{why}"
        );
        let mut many = Reconciled::default();
        assert_eq!(many.unrecorded_reason(Path::new("/x")), None);
        for i in 0..7 {
            many.failed
                .push((format!("c{i}"), "No space left on device".into()));
        }
        many.failed[6].1 = "Read-only file system".into();
        assert_eq!(
            many.unrecorded_reason(Path::new("/x")).unwrap(),
            "cannot record 7 NFSv3 lock holders in holding_dir /x: No space left on device; Read-only file system (c0, c1, c2, c3, c4, +2 more)"
        );
        let one = Reconciled {
            failed: vec![("c".into(), "e".into())],
            ..Default::default()
        };
        assert!(one
            .unrecorded_reason(Path::new("/x"))
            .unwrap()
            .starts_with("cannot record 1 NFSv3 lock holder in"));
        assert_eq!(
            io_reason(&io::Error::from_raw_os_error(libc::ENOSPC)),
            "No space left on device"
        );
        assert_eq!(io_reason(&io::Error::other("odd")), "odd");
        // tempfile's error names its temporary file: the reason does not
        let full = tempfile::NamedTempFile::new_in("/nonexistent-hanfs-dir").unwrap_err();
        assert!(full.to_string().contains(" at path "), "{full}");
        assert_eq!(io_reason(&full), "No such file or directory", "{full}");
    }

    #[test]
    fn placing_never_overwrites_statd() {
        let d = tempfile::tempdir().unwrap();
        let sm = d.path();
        std::fs::write(sm.join("192.0.2.6"), rec("192.0.2.6", "here", 6).to_line()).unwrap();
        let mut held = RecordSet::new();
        held.insert("192.0.2.5".into(), vec![rec("192.0.2.5", "old", 5)]);
        held.insert("192.0.2.6".into(), vec![rec("192.0.2.6", "old", 7)]);
        let p = place_local(sm, &held, "here", None).unwrap();
        assert_eq!(
            p,
            Placed {
                created: 1,
                present: 1
            }
        );
        assert_eq!(
            std::fs::read_to_string(sm.join("192.0.2.5")).unwrap(),
            rec("192.0.2.5", "here", 5).to_line()
        );
        assert_eq!(
            std::fs::read_to_string(sm.join("192.0.2.6")).unwrap(),
            rec("192.0.2.6", "here", 6).to_line()
        );
        assert_eq!(record::list_names(sm).len(), 2, "no temporaries left");
    }

    #[test]
    fn state_numbers_grow_and_are_odd() {
        let d = tempfile::tempdir().unwrap();
        let a = next_state(d.path(), None, 1000).unwrap();
        assert_eq!(a, 1001);
        let b = next_state(d.path(), None, 1000).unwrap();
        assert_eq!(b, 1003);
        let c = next_state(d.path(), None, 5000).unwrap();
        assert_eq!(c, 5001);
        assert!(next_state(d.path(), None, u64::from(u32::MAX)).unwrap() % 2 == 1);
    }

    // Property test: whatever the state file holds (garbage, a huge
    // number, nothing), the next state is odd, positive and a 32-bit
    // number, and a second takeover gets a larger one (unless it wrapped).
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_state_file_gives_a_valid_next_state(
            bytes in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..40),
                any::<u64>().prop_map(|n| n.to_string().into_bytes()),
            ],
            now in any::<u64>(),
        ) {
            let d = tempfile::tempdir().unwrap();
            std::fs::write(d.path().join(STATE_FILE), &bytes).unwrap();
            let a = next_state(d.path(), None, now).unwrap();
            prop_assert!(a > 0 && a % 2 == 1, "{}", a);
            let b = next_state(d.path(), None, now).unwrap();
            prop_assert!(b > a || b == 1, "{} then {}", a, b);
        }
    }

    /// A state file holding the largest 64-bit number overflowed
    /// `prev + 2` (a panic where overflow is checked, a silent wrap
    /// elsewhere), and one above the 32-bit range wrapped the state sent
    /// to 1, which clients that know state 1 ignore. Neither can be a
    /// state this agent sent: the time decides.
    #[test]
    fn a_state_no_agent_wrote_counts_as_none() {
        let d = tempfile::tempdir().unwrap();
        for n in [u64::MAX, 5_000_000_000, u64::from(u32::MAX)] {
            std::fs::write(d.path().join(STATE_FILE), n.to_string()).unwrap();
            assert_eq!(next_state(d.path(), None, 1000).unwrap(), 1001, "{n}");
        }
    }
}
