//! Files written so that a crash leaves the old or the new content, never a
//! torn one: temporary file in the same directory, fsync, rename, fsync of
//! the directory.

use crate::ocf::{Deadline, OcfError, OcfResult, ResultExt};
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> OcfResult<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let ctx = || format!("cannot write {}", path.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(".hanfs-tmp-")
        .tempfile_in(dir)
        .or_generic(ctx)?;
    tmp.write_all(data).or_generic(ctx)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .or_generic(ctx)?;
    tmp.as_file().sync_all().or_generic(ctx)?;
    tmp.persist(path).map_err(|e| e.error).or_generic(ctx)?;
    sync_dir(dir);
    Ok(())
}

/// fsync a directory so a rename or unlink in it is durable (best effort).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Read a file; `None` when it does not exist.
pub fn read_opt(path: &Path) -> OcfResult<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).or_generic(|| format!("cannot read {}", path.display())),
    }
}

/// Remove a file; fine when it is already gone.
pub fn remove_opt(path: &Path) -> OcfResult<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).or_generic(|| format!("cannot remove {}", path.display())),
    }
}

/// Take an exclusive flock on `path` (created when missing), waiting until
/// the deadline: for actions of one node that must not interleave. Released
/// when the returned guard is dropped or the process exits.
pub fn lock_exclusive(path: &Path, deadline: &Deadline) -> OcfResult<Flock<File>> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .or_generic(|| format!("cannot open lock file {}", path.display()))?;
    loop {
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(l) => return Ok(l),
            Err((back, _)) if !deadline.expired() => {
                f = back;
                deadline.sleep(Duration::from_millis(10));
            }
            Err((_, e)) => {
                return Err(OcfError::generic(format!(
                    "could not lock {} in time (another action holds it): {e}",
                    path.display()
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_roundtrip() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state");
        assert_eq!(read_opt(&p).unwrap(), None);
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o644).unwrap();
        assert_eq!(read_opt(&p).unwrap().as_deref(), Some("two"));
        // no temporaries left behind
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        remove_opt(&p).unwrap();
        remove_opt(&p).unwrap();
    }

    #[test]
    fn lock_is_exclusive_until_dropped() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lock");
        let held = lock_exclusive(&p, &Deadline::after(Duration::from_secs(1))).unwrap();
        let e = lock_exclusive(&p, &Deadline::after(Duration::from_millis(50))).unwrap_err();
        assert!(e.reason.contains("could not lock"), "{e}");
        drop(held);
        lock_exclusive(&p, &Deadline::after(Duration::from_millis(50))).unwrap();
    }
}
