//! Reboot notifications from a floating address: one `sm-notify` per
//! address, each over a private state directory (`-P`) holding the
//! records to notify, so neither the node's own statd directory nor
//! another address's list is touched.
//!
//! sm-notify (nfs-utils 2.6) with `-P DIR`: moves `DIR/sm/*` to
//! `DIR/sm.bak/`, reads the state number from `DIR/state` (with `-n` it
//! does not bump it; it still copies it to
//! `/proc/sys/fs/nfs/nsm_local_state`), binds to `-v ADDR` and sends
//! `SM_NOTIFY` naming the host name ADDR maps back to (it exits when ADDR
//! has none), drops root for the owner of `DIR/sm`, deletes each
//! `sm.bak` file when its peer answers, and gives up after `-m` minutes.
//! `-d` keeps it in the foreground (so its pid is the one we started) and
//! logs to stderr. With an empty list it would end lockd's grace period
//! (`lift-grace`), so it is never started without records.

use super::record::{self, RecordSet};
use super::registry::Notifier;
use super::statedir;
use crate::ocf::{Deadline, OcfError, OcfResult, ResultExt};
use crate::sys::procs::{self, Ns, ProcId};
use crate::sys::program;
use nix::sys::signal::Signal;
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long sm-notify keeps retrying unreachable peers (its own default;
/// given explicitly so nfs.conf's `retry-time=0`, "forever", cannot make
/// our notifiers immortal).
pub const RETRY_MINUTES: u32 = 15;

/// Clients per sm-notify process. One sm-notify sends its whole list
/// before it reads replies; with many clients its socket buffer overflows,
/// replies are lost and it waits out 2, 4, 8 s retries. Measured with 1,000
/// clients: one process 6-14 s, ten of 100 about 0.2 s (benches/).
pub const BATCH: usize = 100;

/// Split `records` into lists of at most [`BATCH`] clients.
pub fn batches(records: &RecordSet) -> Vec<RecordSet> {
    let mut out: Vec<RecordSet> = Vec::new();
    for (name, recs) in records {
        match out.last_mut() {
            Some(b) if b.len() < BATCH => {
                b.insert(name.clone(), recs.clone());
            }
            _ => out.push(RecordSet::from([(name.clone(), recs.clone())])),
        }
    }
    out
}

/// The records that one address should notify: every record, except
/// peers named by an address of the other family (an IPv6 source cannot
/// reach an IPv4 peer, nor the reverse).
pub fn records_for(addr: &IpAddr, all: &RecordSet) -> RecordSet {
    all.iter()
        .filter(|(name, _)| !record::other_family(name, addr))
        .map(|(n, r)| (n.clone(), r.clone()))
        .collect()
}

/// Build a private sm-notify directory: `sm/` with the records, an empty
/// `sm.bak/`, and `state` (4 bytes, host order) = `state`. `sm/` and
/// `sm.bak/` belong to `owner` (sm-notify drops root for it and must be
/// able to delete notified records).
pub fn prepare_dir(
    dir: &Path,
    records: &RecordSet,
    state: i32,
    owner: Option<(u32, u32)>,
) -> io::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    let (sm, bak) = (dir.join("sm"), dir.join("sm.bak"));
    for d in [&sm, &bak] {
        std::fs::create_dir(d)?;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
    }
    for (name, recs) in records {
        let p = sm.join(name);
        std::fs::write(&p, record::render(recs))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
        statedir::give_to(&p, owner)?;
    }
    statedir::give_to(&sm, owner)?;
    statedir::give_to(&bak, owner)?;
    std::fs::write(dir.join("state"), state.to_ne_bytes())?;
    Ok(())
}

/// Start `sm-notify -d -f -n -m RETRY -v ADDR -P DIR` in its own process
/// group (it outlives the agent), output to `log`.
pub fn spawn(prog: &Path, addr: &IpAddr, dir: &Path, log: &Path) -> io::Result<Child> {
    let out = std::fs::File::create(log)?;
    let err = out.try_clone()?;
    Command::new(prog)
        .args([
            "-d",
            "-f",
            "-n",
            "-m",
            &RETRY_MINUTES.to_string(),
            "-v",
            &addr.to_string(),
            "-P",
        ])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
}

/// Peers not yet notified from `dir` (still in `sm/` or `sm.bak/`).
pub fn pending(dir: &Path) -> Vec<String> {
    let mut v = record::list_names(&dir.join("sm.bak"));
    v.extend(record::list_names(&dir.join("sm")));
    v.sort();
    v.dedup();
    v
}

/// The last meaningful line of an sm-notify log.
pub fn last_words(log: &Path) -> String {
    let text = crate::sys::fsfile::read_own_file(log, crate::sys::fsfile::STATE_CAP)
        .ok()
        .flatten()
        .unwrap_or_default();
    String::from_utf8_lossy(&text)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

/// sm-notify processes in this mount namespace whose command line names a
/// directory under `root` (finds our notifiers even without a record of
/// their pids).
pub fn find_under(root: &Path) -> Vec<ProcId> {
    let needle = root.to_string_lossy().into_owned();
    procs::named("sm-notify")
        .into_iter()
        .filter(|&pid| procs::shares_namespace(pid, Ns::Mnt))
        .filter(|&pid| procs::cmdline(pid).iter().any(|a| a.contains(&needle)))
        .filter_map(ProcId::of)
        .collect()
}

/// Terminate `procs`: SIGTERM, then SIGKILL after a grace of up to 2 s;
/// waits until they are gone or the deadline. Returns the pids still alive.
pub fn terminate(procs: &[ProcId], deadline: &Deadline) -> Vec<i32> {
    let live =
        |procs: &[ProcId]| -> Vec<ProcId> { procs.iter().copied().filter(ProcId::alive).collect() };
    let mut left = live(procs);
    for p in &left {
        p.signal(Signal::SIGTERM);
    }
    let soft = deadline.within(Duration::from_secs(2));
    soft.poll(Duration::from_millis(20), || {
        left = live(&left);
        left.is_empty().then_some(())
    });
    for p in &left {
        p.signal(Signal::SIGKILL);
    }
    deadline.poll(Duration::from_millis(20), || {
        left = live(&left);
        left.is_empty().then_some(())
    });
    left.iter().map(|p| p.pid).collect()
}

/// Where the notifier of batch `n` for `addr` keeps its directory and log
/// under `root`.
pub fn paths(root: &Path, addr: &IpAddr, n: usize) -> (PathBuf, PathBuf) {
    (
        root.join(format!("{addr}-{n}")),
        root.join(format!("{addr}-{n}.log")),
    )
}

/// The sm-notify program; code 5 if absent.
pub fn program() -> OcfResult<PathBuf> {
    program::require("sm-notify", "nfs-utils / nfs-common")
}

/// One notifier started: sm-notify for a batch of clients from one
/// floating address.
pub struct Job {
    pub addr: IpAddr,
    pub dir: PathBuf,
    pub log: PathBuf,
    pub child: Child,
    pub clients: usize,
    pub status: Option<std::process::ExitStatus>,
}

/// Start sm-notify from each of `ips` for the clients of `held` that
/// address serves, in private directories under `root`, with NSM state
/// `state`; the notifiers started are appended to `notifiers` (recorded
/// for stop) as they start.
pub fn start(
    root: &Path,
    ips: &[IpAddr],
    (held, state): (&RecordSet, i32),
    owner: Option<(u32, u32)>,
    sm_notify: &Path,
    notifiers: &mut Vec<Notifier>,
) -> OcfResult<Vec<Job>> {
    std::fs::create_dir_all(root)
        .and_then(|()| std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)))
        .or_generic(|| format!("cannot create {}", root.display()))?;
    let mut jobs = Vec::new();
    for addr in ips {
        let recs = records_for(addr, held);
        if recs.is_empty() {
            log::info!("no client to notify from {addr}");
            continue;
        }
        for (n, batch) in batches(&recs).into_iter().enumerate() {
            let (dir, log) = paths(root, addr, n);
            prepare_dir(&dir, &batch, state, owner)
                .or_generic(|| format!("cannot prepare {}", dir.display()))?;
            let child = spawn(sm_notify, addr, &dir, &log)
                .or_generic(|| format!("cannot run {}", sm_notify.display()))?;
            let pid = child.id() as i32;
            log::info!(
                "notifying {} client(s) from {addr} (state {state}, sm-notify pid {pid})",
                batch.len()
            );
            notifiers.push(Notifier {
                pid,
                start_time: ProcId::of(pid).map_or(0, |p| p.start),
                addr: addr.to_string(),
                dir: dir.clone(),
            });
            jobs.push(Job {
                addr: *addr,
                dir,
                log,
                child,
                clients: batch.len(),
                status: None,
            });
        }
    }
    Ok(jobs)
}

/// Wait until every notifier is done or has nobody left to notify, at
/// most `limit`. A notifier that failed outright is an error; clients that
/// have not answered are only logged (sm-notify keeps trying them).
pub fn wait(jobs: &mut [Job], limit: Duration) -> OcfResult<()> {
    let until = Deadline::after(limit);
    let reap = |jobs: &mut [Job]| {
        for j in jobs.iter_mut().filter(|j| j.status.is_none()) {
            j.status = j.child.try_wait().ok().flatten();
        }
    };
    until.poll(Duration::from_millis(50), || {
        reap(jobs);
        jobs.iter()
            .all(|j| j.status.is_some() || pending(&j.dir).is_empty())
            .then_some(())
    });
    reap(jobs);
    for j in jobs.iter() {
        let left = pending(&j.dir);
        match j.status {
            Some(st) if !st.success() && !left.is_empty() => {
                log::error!(
                    "sm-notify -v {} ended ({st}) before notifying anyone; is the address up on this node? Its log: {}",
                    j.addr,
                    j.log.display()
                );
                return Err(OcfError::generic(format!(
                    "sm-notify -v {} failed: {}",
                    j.addr,
                    last_words(&j.log)
                )));
            }
            _ if left.is_empty() => {
                log::info!("notified all {} client(s) from {}", j.clients, j.addr)
            }
            _ => log::warn!(
                "from {}: {} of {} client(s) have not answered within {}s: {}; sm-notify keeps trying for {} minutes",
                j.addr,
                left.len(),
                j.clients,
                limit.as_secs(),
                left.join(" "),
                RETRY_MINUTES
            ),
        }
    }
    Ok(())
}

/// Stop an instance's notifiers: those `recorded`, and any sm-notify
/// working under its private directory `root`. An error if one survives
/// SIGKILL.
pub fn stop_all(root: &Path, recorded: &[Notifier], deadline: &Deadline) -> OcfResult<()> {
    let mut procs: Vec<ProcId> = recorded.iter().map(Notifier::process).collect();
    for p in find_under(root) {
        if !procs.iter().any(|q| q.pid == p.pid) {
            procs.push(p);
        }
    }
    procs.retain(ProcId::alive);
    if procs.is_empty() {
        return Ok(());
    }
    log::info!(
        "stopping sm-notify {:?}",
        procs.iter().map(|p| p.pid).collect::<Vec<_>>()
    );
    let left = terminate(&procs, deadline);
    if left.is_empty() {
        Ok(())
    } else {
        Err(OcfError::generic(format!(
            "sm-notify {left:?} did not exit after SIGKILL"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::statd::record::MonitorRecord;

    fn set(names: &[&str]) -> RecordSet {
        names
            .iter()
            .map(|n| {
                let r = MonitorRecord {
                    callback: 0x0100007f,
                    prog: 100021,
                    vers: 4,
                    proc_: 16,
                    cookie: [1; 16],
                    mon_name: n.to_string(),
                    my_name: "n1".into(),
                };
                (n.to_string(), vec![r])
            })
            .collect()
    }

    #[test]
    fn records_by_family() {
        let all = set(&["192.0.2.5", "2001:db8::5", "client.example"]);
        let v4 = records_for(&"192.0.2.10".parse().unwrap(), &all);
        assert_eq!(
            v4.keys().collect::<Vec<_>>(),
            vec!["192.0.2.5", "client.example"]
        );
        let v6 = records_for(&"2001:db8::10".parse().unwrap(), &all);
        assert_eq!(
            v6.keys().collect::<Vec<_>>(),
            vec!["2001:db8::5", "client.example"]
        );
    }

    #[test]
    fn private_directory_layout() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("192.0.2.10");
        prepare_dir(&dir, &set(&["192.0.2.5"]), 1001, None).unwrap();
        assert_eq!(pending(&dir), vec!["192.0.2.5"]);
        assert_eq!(
            std::fs::read(dir.join("state")).unwrap(),
            1001i32.to_ne_bytes()
        );
        assert!(dir.join("sm.bak").is_dir());
        // rebuilt from scratch
        prepare_dir(&dir, &set(&["192.0.2.6"]), 1003, None).unwrap();
        assert_eq!(pending(&dir), vec!["192.0.2.6"]);
    }

    #[test]
    fn batches_cover_every_client_once() {
        let names: Vec<String> = (0..250).map(|i| format!("192.0.2.{i}")).collect();
        let all = set(&names.iter().map(String::as_str).collect::<Vec<_>>());
        let b = batches(&all);
        assert_eq!(
            b.iter().map(RecordSet::len).collect::<Vec<_>>(),
            vec![100, 100, 50]
        );
        let back: RecordSet = b.into_iter().flatten().collect();
        assert_eq!(back, all);
        assert!(batches(&RecordSet::new()).is_empty());
    }

    #[test]
    fn terminate_ends_a_process() {
        let mut c = Command::new("sleep").arg("30").spawn().unwrap();
        let id = ProcId::of(c.id() as i32).unwrap();
        let left = terminate(&[id], &Deadline::after(Duration::from_secs(5)));
        // our own child stays a zombie until reaped: not alive
        assert!(left.is_empty(), "{left:?}");
        let _ = c.wait();
    }
}
