//! nfsdcld: the daemon that keeps nfsd's NFSv4 client-recovery records (an
//! SQLite database in its storage directory) and answers the kernel's
//! upcalls over the `nfsd/cld` pipe in rpc_pipefs.
//!
//! Why nfsdcld: it is the one client-tracking method that works on Linux
//! 5.2 up to today's kernels (the legacy `v4recovery` directory and the
//! `nfsdcltrack` helper are behind CONFIG_NFSD_LEGACY_CLIENT_TRACKING since
//! ~6.8 and off by default in newer kernels), its storage directory is a
//! plain command-line option (so it can live on the service's shared
//! storage), and with it the kernel ends the NFSv4 grace period itself as
//! soon as every recorded client has sent RECLAIM_COMPLETE (NFSv4.1+), and
//! skips it when no client is recorded.
//!
//! The kernel looks for nfsdcld only when nfsd starts, and waits about one
//! second for it to open the pipe before falling back to other methods; so
//! nfsdcld must be running and watching rpc_pipefs before nfsd's threads
//! go above zero, and whether the kernel took it is seen afterwards from
//! nfsdcld holding the pipe open.

use super::server::{self, ServerSettings};
use super::{mounts, records, ProcRoots};
use crate::ocf::{Deadline, OcfError, OcfResult, ResultExt};
use crate::sys::{bounded, process, procs, program};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The database file nfsdcld keeps in its storage directory.
pub const DB_FILE: &str = "main.sqlite";

pub use crate::sys::procs::ProcId;

/// What a running nfsdcld is doing, from its open files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CldProc {
    pub id: ProcId,
    /// The storage directory whose database it has open.
    pub storage: Option<PathBuf>,
    /// It holds the kernel's `nfsd/cld` pipe open: nfsd uses it.
    pub has_pipe: bool,
    /// It waits (inotify) for the pipe to appear: ready for nfsd to start.
    pub watching: bool,
}

pub fn inspect(pid: i32) -> Option<CldProc> {
    let id = ProcId::of(pid)?;
    let mut c = CldProc {
        id,
        storage: None,
        has_pipe: false,
        watching: false,
    };
    for e in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        let Ok(t) = std::fs::read_link(e.path()) else {
            continue;
        };
        let ts = t.to_string_lossy();
        if t.file_name().is_some_and(|n| n == DB_FILE) {
            c.storage = t.parent().map(Path::to_path_buf);
        } else if ts.ends_with("/nfsd/cld") {
            c.has_pipe = true;
        } else if ts == "anon_inode:inotify" {
            c.watching = true;
        }
    }
    Some(c)
}

/// Every nfsdcld on the node.
pub fn find_all() -> Vec<CldProc> {
    procs::named("nfsdcld")
        .into_iter()
        .filter_map(inspect)
        .collect()
}

/// The rpc_pipefs directory: where it is mounted (the configured place
/// when it is mounted in several), or else mounted now at the place
/// nfs-utils is configured to use (`nfsconf --get general
/// pipefs-directory`, default /var/lib/nfs/rpc_pipefs). The usual case,
/// one mount, asks nfsconf nothing: a takeover waits for this.
pub fn pipefs_dir(deadline: &Deadline) -> OcfResult<PathBuf> {
    let mounted = mounts::of_type(&mounts::current(), "rpc_pipefs");
    if let [only] = mounted.as_slice() {
        return Ok(only.clone());
    }
    let configured = process::run(
        program::command("nfsconf").args(["--get", "general", "pipefs-directory"]),
        deadline,
    )
    .ok()
    .filter(|o| o.success())
    .map(|o| o.stdout.trim().to_string())
    .filter(|s| s.starts_with('/'))
    .map(PathBuf::from)
    .unwrap_or_else(|| PathBuf::from("/var/lib/nfs/rpc_pipefs"));
    if mounted.contains(&configured) {
        return Ok(configured);
    }
    if let Some(m) = mounted.into_iter().next() {
        return Ok(m);
    }
    std::fs::create_dir_all(&configured).or_generic(|| {
        format!(
            "cannot create rpc_pipefs directory {}",
            configured.display()
        )
    })?;
    nix::mount::mount(
        Some("sunrpc"),
        &configured,
        Some("rpc_pipefs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .or_generic(|| format!("cannot mount rpc_pipefs on {}", configured.display()))?;
    log::info!("mounted rpc_pipefs on {}", configured.display());
    Ok(configured)
}

/// The nfsdcld program; code 5 if absent.
pub fn program() -> OcfResult<PathBuf> {
    program::require("nfsdcld", "nfs-kernel-server / nfs-utils")
}

/// Start nfsdcld on `storage` (created if missing) and wait until it is
/// ready for nfsd: it has its database open and watches rpc_pipefs.
pub fn start(storage: &Path, pipefs: &Path, deadline: &Deadline) -> OcfResult<ProcId> {
    let prog = program()?;
    // On shared storage, which may hang: bounded like every look at it.
    let dir = storage.to_path_buf();
    let what = format!("creating recovery_dir {}", dir.display());
    bounded::run(deadline, &what, move || {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create recovery_dir {}: {e}", dir.display()))
    })?;
    let mut cmd = Command::new(&prog);
    cmd.arg("-F")
        .arg("-s")
        .arg(storage)
        .arg("-p")
        .arg(pipefs)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Its own session: not in the agent's process group, not tied to a
    // terminal; it outlives the agent (init adopts it).
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .or_generic(|| format!("cannot run {}", process::describe(&cmd)))?;
    let pid = child.id() as i32;
    drop(child); // not waited for: it is a daemon
    let id = deadline
        .poll(Duration::from_millis(5), || ProcId::of(pid))
        .ok_or_else(|| OcfError::generic("nfsdcld vanished at once"))?;
    let ready = deadline.poll(Duration::from_millis(10), || {
        if !id.alive() {
            return Some(false);
        }
        let c = inspect(pid)?;
        (c.storage.as_deref() == Some(storage) && (c.watching || c.has_pipe)).then_some(true)
    });
    match ready {
        Some(true) => {
            log::info!("started nfsdcld (pid {pid}) on {}", storage.display());
            Ok(id)
        }
        Some(false) => {
            reap(pid);
            Err(OcfError::generic(format!(
                "nfsdcld exited at once (storage {}, rpc_pipefs {}): see the system log",
                storage.display(),
                pipefs.display()
            )))
        }
        None => {
            let _ = stop(id, &Deadline::after(Duration::from_secs(2)));
            Err(OcfError::generic(format!(
                "timed out waiting for nfsdcld to open {}",
                storage.join(DB_FILE).display()
            )))
        }
    }
}

/// Make sure an nfsdcld serves `storage`, and no other nfsdcld runs: only
/// one can serve nfsd. One on another directory is stopped if it is `ours`
/// (the one the agent started for the node, no longer used), else refused
/// (code 2: an nfsdcld.service, say).
pub fn ensure(storage: &Path, ours: Option<ProcId>, deadline: &Deadline) -> OcfResult<ProcId> {
    let mut serving = None;
    for c in find_all() {
        if c.storage.as_deref() == Some(storage) {
            serving = Some(c.id);
        } else if ours == Some(c.id) {
            log::info!(
                "stopping nfsdcld (pid {}) on {}: no resource on this node uses it any more",
                c.id.pid,
                c.storage
                    .as_deref()
                    .map(|s| s.display().to_string())
                    .unwrap_or_default()
            );
            stop(c.id, deadline)?;
        } else {
            return Err(OcfError::args(format!(
                "nfsdcld (pid {}) is already running{}; only one nfsdcld can serve nfsd: stop it and disable nfsdcld.service, this resource runs nfsdcld on recovery_dir",
                c.id.pid,
                c.storage
                    .as_ref()
                    .map(|s| format!(" with storage {}", s.display()))
                    .unwrap_or_default()
            )));
        }
    }
    if let Some(id) = serving {
        log::info!(
            "nfsdcld (pid {}) already serves {}",
            id.pid,
            storage.display()
        );
        return Ok(id);
    }
    let pipefs = pipefs_dir(deadline)?;
    start(storage, &pipefs, deadline)
}

/// Wait (at most 3 s) until the kernel took nfsdcld `id` for client
/// tracking, which shows as nfsdcld holding the pipe.
pub fn check_tracking(id: ProcId, deadline: &Deadline) -> OcfResult<()> {
    let ok = deadline
        .within(Duration::from_secs(3))
        .poll(Duration::from_millis(20), || {
            inspect(id.pid)
                .filter(|c| c.has_pipe && id.alive())
                .map(|_| ())
        });
    ok.ok_or_else(|| {
        OcfError::generic(format!(
            "nfsd did not take nfsdcld (pid {}) for NFSv4 client tracking; NFSv4 clients could not reclaim after a takeover",
            id.pid
        ))
    })
}

/// Stop nfsdcld `known` and any nfsdcld left on `storage` (its database
/// would keep the file system busy); an error if one still holds it.
pub fn stop_on(storage: &Path, known: Option<ProcId>, deadline: &Deadline) -> OcfResult<()> {
    if let Some(id) = known {
        stop(id, deadline)?;
    }
    for c in find_all() {
        if c.storage.as_deref() == Some(storage) {
            stop(c.id, deadline)?;
        }
    }
    if let Some(c) = find_all()
        .into_iter()
        .find(|c| c.storage.as_deref() == Some(storage))
    {
        return Err(OcfError::generic(format!(
            "nfsdcld (pid {}) still holds {}",
            c.id.pid,
            storage.display()
        )));
    }
    Ok(())
}

/// Move nfsd's client tracking from nfsdcld `from` (serving `storage`) to
/// a new nfsdcld on `to`, when the service whose file system holds
/// `storage` leaves and others stay: nfsd stops (freeing that file
/// system), every copy gets the latest records, `from` stops, nfsdcld
/// starts on `to` (`record` is told its id at once) and nfsd comes back
/// with `settings`, then every other copy is brought up to date. Fails
/// only when the leaving service's file system cannot be freed; what goes
/// wrong for the others afterwards is logged (their monitors report it).
pub fn move_database(
    roots: &ProcRoots,
    (from, storage): (ProcId, &Path),
    to: &Path,
    settings: &ServerSettings,
    copies: &[PathBuf],
    record: impl FnOnce(ProcId) -> OcfResult<()>,
    deadline: &Deadline,
) -> OcfResult<()> {
    server::stop(roots, deadline)?;
    for c in copies {
        if let Err(e) = records::mirror_bounded(deadline, storage, c, false) {
            log::error!(
                "{e}: NFSv4 clients that first came since the last monitor may not reclaim"
            );
        }
    }
    stop_on(storage, Some(from), deadline)?;
    let restart = || -> OcfResult<()> {
        let pipefs = pipefs_dir(deadline)?;
        let id = start(to, &pipefs, deadline)?;
        record(id)?;
        server::start(roots, settings, deadline)?;
        check_tracking(id, deadline)?;
        for c in copies.iter().filter(|c| *c != to) {
            records::mirror_bounded(deadline, to, c, false)?;
        }
        Ok(())
    };
    if let Err(e) = restart() {
        log::error!("nfsd could not be brought back for the other services: {e}");
    }
    Ok(())
}

/// Collect an exited child of ours (no-op for a process we did not start).
fn reap(pid: i32) {
    let _ = nix::sys::wait::waitpid(
        nix::unistd::Pid::from_raw(pid),
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    );
}

/// Stop nfsdcld (TERM, then KILL) and wait until it is gone, so that its
/// database no longer keeps the storage's file system busy.
pub fn stop(id: ProcId, deadline: &Deadline) -> OcfResult<()> {
    use nix::sys::signal::{kill, Signal};
    let pid = nix::unistd::Pid::from_raw(id.pid);
    if !id.alive() {
        reap(id.pid);
        return Ok(());
    }
    let _ = kill(pid, Signal::SIGTERM);
    let gone = |d: &Deadline| {
        d.poll(Duration::from_millis(10), || {
            reap(id.pid);
            (!id.alive()).then_some(())
        })
    };
    if gone(&deadline.within(Duration::from_secs(3))).is_some() {
        log::info!("stopped nfsdcld (pid {})", id.pid);
        return Ok(());
    }
    log::warn!("nfsdcld (pid {}) ignored SIGTERM; killing it", id.pid);
    let _ = kill(pid, Signal::SIGKILL);
    gone(deadline).ok_or_else(|| {
        OcfError::generic(format!(
            "nfsdcld (pid {}) does not exit even after SIGKILL",
            id.pid
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifies_processes() {
        let me = std::process::id() as i32;
        let c = inspect(me).unwrap();
        assert_eq!(c.storage, None);
        assert!(!c.has_pipe);
    }

    #[test]
    fn reaped_child_is_not_alive() {
        let mut ch = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = ch.id() as i32;
        let id = ProcId::of(pid).unwrap();
        assert!(id.alive());
        stop(id, &Deadline::after(Duration::from_secs(5))).unwrap();
        assert!(!id.alive());
        let _ = ch.wait();
    }

    /// nfsd that does not let go of the leaving service's file system: the
    /// move fails, and nothing else is touched (the old nfsdcld runs on,
    /// no new one is recorded).
    #[test]
    fn a_move_that_cannot_free_the_file_system_changes_nothing() {
        let (d, roots) = crate::sys::nfsd::tests::fake();
        std::fs::write(roots.nfsd.join("threads"), "8\n").unwrap();
        std::fs::write(roots.nfsd.join("portlist"), "tcp 2049\n").unwrap();
        let mut ch = Command::new("sleep").arg("30").spawn().unwrap();
        let old = ProcId::of(ch.id() as i32).unwrap();
        let (from, to) = (d.path().join("a/cld"), d.path().join("b/cld"));
        let settings = ServerSettings {
            lease: 90,
            grace: 90,
            nlm_grace: 90,
            threads: 8,
            scope: "hanfs".into(),
            port: server::NFS_PORT,
        };
        let mut recorded = None;
        let e = move_database(
            &roots,
            (old, &from),
            &to,
            &settings,
            &[from.clone(), to.clone()],
            |id| {
                recorded = Some(id);
                Ok(())
            },
            &Deadline::after(Duration::from_millis(300)),
        )
        .unwrap_err();
        assert!(e.reason.contains("did not let go"), "{e}");
        assert!(old.alive(), "the old nfsdcld still serves the others");
        assert_eq!(recorded, None);
        assert!(!to.exists(), "no nfsdcld was started on the next copy");
        let _ = ch.kill();
        let _ = ch.wait();
    }
}
