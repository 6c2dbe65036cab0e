//! Files written so that a crash leaves the old or the new content, never a
//! torn one: temporary file in the same directory, fsync, rename, fsync of
//! the directory.

use crate::ocf::{OcfResult, ResultExt};
use std::io::Write;
use std::path::Path;

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
}
