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

/// The most an agent's state or registration file may hold.
pub const STATE_CAP: u64 = 1 << 20;

/// Why a file was not read.
#[derive(Debug)]
pub enum BadFile {
    /// A symbolic link where the file is ours (not followed).
    SymbolicLink,
    /// Not a regular file: a FIFO, a device, a directory, a socket.
    NotRegular(&'static str),
    /// More than the cap.
    TooLarge(u64),
    /// Owned by this user id: neither root nor us, so written by someone
    /// who could not have been an agent ([`read_trusted_file`]).
    WrongOwner(u32),
    Io(std::io::Error),
}

/// A file not read, and why.
#[derive(Debug)]
pub struct FileError {
    pub path: std::path::PathBuf,
    pub problem: BadFile,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = self.path.display();
        match &self.problem {
            BadFile::SymbolicLink => write!(f, "{p} is a symbolic link (not followed)"),
            BadFile::NotRegular(kind) => write!(f, "{p} is {kind}, not a regular file"),
            BadFile::TooLarge(cap) => write!(f, "{p} is larger than {cap} bytes"),
            BadFile::WrongOwner(uid) => {
                write!(f, "{p} is owned by user {uid}, not root (not trusted)")
            }
            BadFile::Io(e) => write!(f, "cannot read {p}: {e}"),
        }
    }
}

impl std::error::Error for FileError {}

impl From<FileError> for OcfError {
    fn from(e: FileError) -> OcfError {
        OcfError::generic(e.to_string())
    }
}

impl From<FileError> for std::io::Error {
    fn from(e: FileError) -> std::io::Error {
        match e.problem {
            BadFile::Io(io) => io,
            other => std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                FileError {
                    path: e.path,
                    problem: other,
                },
            ),
        }
    }
}

fn kind_of(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Open `path` for reading if it is a regular file: with O_NONBLOCK (a
/// FIFO cannot block the open) and, when `follow` is false, O_NOFOLLOW (a
/// symbolic link is refused); the type is checked on the open file
/// (fstat), so it cannot be swapped in between. `None` when it does not
/// exist. Returns the file and its size.
pub fn open_regular(path: &Path, follow: bool) -> Result<Option<(File, u64)>, FileError> {
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |problem| FileError {
        path: path.to_path_buf(),
        problem,
    };
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    if !follow {
        flags |= libc::O_NOFOLLOW;
    }
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) && !follow => {
            return Err(fail(BadFile::SymbolicLink))
        }
        Err(e) => return Err(fail(BadFile::Io(e))),
    };
    let md = f.metadata().map_err(|e| fail(BadFile::Io(e)))?;
    if !md.file_type().is_file() {
        return Err(fail(BadFile::NotRegular(kind_of(md.file_type()))));
    }
    Ok(Some((f, md.len())))
}

/// Read one of the agents' own files (states, registrations, records):
/// never following a symbolic link, regular files only, at most `cap`
/// bytes (checked on the size and on what is read, so a file growing
/// meanwhile cannot go over). A FIFO, device or link is refused at once
/// instead of blocking or reading for ever. `None` when it does not exist.
pub fn read_own_file(path: &Path, cap: u64) -> Result<Option<Vec<u8>>, FileError> {
    read_capped(path, cap, false)
}

/// [`read_own_file`] for a file only an agent writes (the runtime states
/// and registrations, written by root into root's directories): one owned
/// by another user is refused too ([`BadFile::WrongOwner`]), checked on the
/// open file. Such a file was planted, not written by an agent, and must
/// never decide what is stopped, killed or removed. Root's files are
/// trusted by everyone (statd's callout reads root's registrations as
/// statd's user), a user's own by that user.
pub fn read_trusted_file(path: &Path, cap: u64) -> Result<Option<Vec<u8>>, FileError> {
    read_capped(path, cap, true)
}

fn read_capped(path: &Path, cap: u64, trusted: bool) -> Result<Option<Vec<u8>>, FileError> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let Some((f, len)) = open_regular(path, false)? else {
        return Ok(None);
    };
    let fail = |problem| FileError {
        path: path.to_path_buf(),
        problem,
    };
    if trusted {
        let uid = f.metadata().map_err(|e| fail(BadFile::Io(e)))?.uid();
        if uid != 0 && uid != nix::unistd::geteuid().as_raw() {
            return Err(fail(BadFile::WrongOwner(uid)));
        }
    }
    if len > cap {
        return Err(fail(BadFile::TooLarge(cap)));
    }
    let mut buf = Vec::with_capacity(len as usize);
    f.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| fail(BadFile::Io(e)))?;
    if buf.len() as u64 > cap {
        return Err(fail(BadFile::TooLarge(cap)));
    }
    Ok(Some(buf))
}

/// An agent's own text file ([`read_own_file`] with [`STATE_CAP`]); `None`
/// when it does not exist.
pub fn read_opt(path: &Path) -> OcfResult<Option<String>> {
    match read_own_file(path, STATE_CAP)? {
        None => Ok(None),
        Some(b) => String::from_utf8(b)
            .map(Some)
            .or_generic(|| format!("cannot read {}", path.display())),
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

/// Whether `path` is missing or a regular file (not followed), i.e. could
/// be a lock file or a state: a directory, FIFO or link there never can.
pub fn may_be_lock(path: &Path) -> bool {
    std::fs::symlink_metadata(path).map_or(true, |m| m.file_type().is_file())
}

/// Remove an agent's own state file at stop. A path that can never hold
/// one (a directory, a name too long for the file system, a parent that is
/// not a directory, a symbolic-link loop) is logged, not a failure: stop
/// must succeed whenever the resource is in fact stopped, or the node is
/// fenced for a file.
pub fn remove_state(path: &Path) -> OcfResult<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EISDIR)
                    | Some(libc::EPERM)
                    | Some(libc::ENAMETOOLONG)
                    | Some(libc::ENOTDIR)
                    | Some(libc::ELOOP)
            ) =>
        {
            log::warn!(
                "state path {} cannot hold a state file ({e}); left as it is",
                path.display()
            );
            Ok(())
        }
        Err(e) => Err(e).or_generic(|| format!("cannot remove {}", path.display())),
    }
}

/// Take an exclusive flock on `path` (created when missing), waiting until
/// the deadline: for actions of one node that must not interleave. Released
/// when the returned guard is dropped or the process exits.
pub fn lock_exclusive(path: &Path, deadline: &Deadline) -> OcfResult<Flock<File>> {
    use std::os::unix::fs::OpenOptionsExt;
    // A FIFO planted there fails the open (ENXIO) instead of blocking it.
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC)
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
    fn own_files_are_regular_not_linked_and_capped() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read_own_file(&p, 5).unwrap().unwrap(), b"12345");
        let e = read_own_file(&p, 4).unwrap_err();
        assert!(matches!(e.problem, BadFile::TooLarge(4)), "{e}");
        assert!(read_own_file(&d.path().join("none"), 5).unwrap().is_none());
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        let e = read_own_file(&link, 5).unwrap_err();
        assert!(matches!(e.problem, BadFile::SymbolicLink), "{e}");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        // A FIFO with no writer: refused at once, not waited on.
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = read_own_file(&fifo, 5).unwrap_err();
        assert!(
            e.to_string().contains("is a FIFO, not a regular file"),
            "{e}"
        );
        let e = read_own_file(d.path(), 5).unwrap_err();
        assert!(
            matches!(e.problem, BadFile::NotRegular("a directory")),
            "{e}"
        );
        // A device (endless): refused, even where links are followed.
        let e = open_regular(Path::new("/dev/zero"), true).unwrap_err();
        assert!(matches!(e.problem, BadFile::NotRegular("a device")), "{e}");
        assert_eq!(read_opt(&p).unwrap().as_deref(), Some("12345"));
    }

    /// A file of another user where only an agent writes is refused by
    /// [`read_trusted_file`] (root's and our own are read), and still read
    /// by [`read_own_file`] (statd's records are statd's user's).
    #[test]
    fn trusted_files_are_root_s_or_ours() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state");
        std::fs::write(&p, b"{}").unwrap();
        assert_eq!(read_trusted_file(&p, 5).unwrap().unwrap(), b"{}");
        if !nix::unistd::geteuid().is_root() {
            eprintln!("not root: cannot give a file to another user; skipped");
            return;
        }
        std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
        let e = read_trusted_file(&p, 5).unwrap_err();
        assert!(matches!(e.problem, BadFile::WrongOwner(65534)), "{e}");
        assert!(e.to_string().contains("owned by user 65534"), "{e}");
        assert_eq!(read_own_file(&p, 5).unwrap().unwrap(), b"{}");
        assert!(read_trusted_file(&d.path().join("none"), 5)
            .unwrap()
            .is_none());
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
