//! What a stopping export leaves behind in nfsd: the NFS locks on its file
//! system, and NFSv4 clients' state until their lease runs out.

use super::ExportTable;
use crate::ocf::{Deadline, OcfError, OcfResult};
use crate::sys::bounded;
use crate::sys::nfsd::ProcRoots;
use std::path::Path;
use std::time::Duration;

/// Release the NFS locks held on the file system of `dir` (nfsd's
/// `unlock_filesystem`), unless `table` still exports `dir` (to another
/// resource's clients, whose locks would go too) or nfsd is not running.
/// The kernel looks the path up, which blocks on dead storage: the write
/// is bounded by `deadline`, and only running out of time is an error (a
/// refused write is logged).
pub fn release(
    procs: &ProcRoots,
    table: &ExportTable,
    dir: &Path,
    deadline: &Deadline,
) -> OcfResult<()> {
    if !procs.nfsd_mounted() {
        log::info!(
            "nfsd is not running here: no NFS locks to release for {}",
            dir.display()
        );
        return Ok(());
    }
    let remaining = table.exports_of(dir)?;
    if !remaining.is_empty() {
        let who: Vec<&str> = remaining.iter().map(|e| e.client.as_str()).collect();
        log::warn!(
            "not releasing NFS locks on {}: it is still exported to {} (another resource)",
            dir.display(),
            who.join(" ")
        );
        return Ok(());
    }
    let what = format!("releasing NFS locks on {}", dir.display());
    let (p, d) = (procs.clone(), dir.to_path_buf());
    match bounded::run(deadline, &what, move || {
        p.unlock_filesystem(&d).map_err(|e| e.reason)
    }) {
        Ok(()) => {
            log::info!(
                "released the NFS locks on the file system of {}",
                dir.display()
            );
            Ok(())
        }
        Err(e) if e.timed_out() => Err(e.into()),
        Err(e) => {
            log::warn!("releasing NFS locks on {} failed: {e}", dir.display());
            Ok(())
        }
    }
}

/// How long NFSv4 clients' state here takes to expire once they cannot
/// reach the node: nfsd's lease time (90 s when it cannot be read) plus 2
/// seconds, and the lease time. `None` when nfsd is not running.
pub fn lease_expiry(procs: &ProcRoots) -> Option<(Duration, u32)> {
    if !procs.nfsd_mounted() {
        return None;
    }
    let lease = procs.lease_time().unwrap_or_else(|e| {
        log::warn!("{e}; assuming the default NFSv4 lease of 90s");
        90
    });
    Some((Duration::from_secs(u64::from(lease) + 2), lease))
}

/// wait_for_leasetime_on_stop: how long a stop waits for the NFSv4 leases
/// to run out ([`lease_expiry`]; `None` when nfsd is not running); an error
/// when `deadline` cannot hold the wait and a little for the rest of stop.
pub fn lease_wait(procs: &ProcRoots, deadline: &Deadline) -> OcfResult<Option<Duration>> {
    let Some((wait, lease)) = lease_expiry(procs) else {
        log::info!("nfsd is not running here: no NFSv4 lease to wait for");
        return Ok(None);
    };
    // Leave a little for the rest of stop.
    if wait + Duration::from_secs(2) > deadline.remaining() {
        return Err(OcfError::generic(format!(
            "wait_for_leasetime_on_stop needs {}s (NFSv4 lease {lease}s + 2s) but the stop timeout leaves {}s: raise the stop timeout",
            wait.as_secs(),
            deadline.remaining().as_secs()
        )));
    }
    Ok(Some(wait))
}
