//! "Is this a directory, on storage that answers?" — asked without risking
//! a hang.
//!
//! The directories the agents depend on (an exported directory,
//! nfs-grace's `recovery_dir`, statd-holding's `holding_dir`, float-ip's
//! `tickle_dir`) live on shared storage that may be dead: any stat of them
//! can then block in the kernel for ever. [`probe`] looks from a child
//! process bounded by the deadline ([`super::bounded`]); [`look`] is the
//! same look for work that already runs in such a child.

use super::bounded;
use crate::ocf::Deadline;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// Stat the path, following symbolic links.
    Stat,
    /// Resolve the path first (symbolic links, `..`): [`Found::path`] is
    /// its real path.
    Resolve,
    /// The deeper look at a directory found before on device `dev`: still
    /// a directory itself (not a link put in its place), still on that file
    /// system, it can be listed, and the block device under that file
    /// system answers a read that bypasses the page cache (a listing
    /// answers from the cache when the storage under it hangs).
    Unchanged { dev: u64 },
}

/// A directory as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    /// The path looked at (its real path with [`Look::Resolve`]).
    pub path: PathBuf,
    /// The device of the file system it is on.
    pub dev: u64,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// Why a path is not a directory on responsive storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirProblem {
    /// It does not exist (a file system not mounted here, a typo).
    Missing,
    /// It exists but is not a directory.
    NotADirectory,
    /// It is on another file system than before (unmounted under us?).
    OtherFileSystem { now: u64, was: u64 },
    /// Too many levels of symbolic links (ELOOP): a link loop.
    Loop,
    /// A name or the resolved path is too long (ENAMETOOLONG).
    NameTooLong,
    /// The storage did not answer by the deadline: the one timeout
    /// message of [`bounded::Failure`].
    TimedOut(String),
    /// Any other error, in the system's words.
    Io(String),
}

impl std::fmt::Display for DirProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirProblem::Missing => f.write_str("does not exist"),
            DirProblem::NotADirectory => f.write_str("is not a directory"),
            DirProblem::OtherFileSystem { now, was } => {
                write!(
                    f,
                    "is on another file system (device {now:#x}, was {was:#x})"
                )
            }
            DirProblem::Loop => f.write_str("too many levels of symbolic links"),
            DirProblem::NameTooLong => f.write_str("file name too long"),
            DirProblem::TimedOut(m) | DirProblem::Io(m) => f.write_str(m),
        }
    }
}

impl DirProblem {
    /// The exit reason for parameter `name`'s directory `dir` with this
    /// problem (the value echoed capped, as every exit reason does).
    pub fn reason(&self, name: &str, dir: &Path) -> String {
        let shown = dir.display().to_string();
        let d = crate::ocf::echo(&shown);
        match self {
            DirProblem::Loop => format!(
                "{name} {d}: too many levels of symbolic links on this node (a link loop?)"
            ),
            DirProblem::NameTooLong => {
                format!("{name} {d}: its real path (symbolic links resolved) is too long")
            }
            DirProblem::Missing => format!("{name} {d} does not exist"),
            DirProblem::NotADirectory => format!("{name} {d} is not a directory"),
            DirProblem::OtherFileSystem { now, was } => format!(
                "{name} {d} is no longer on the file system it was exported from (device {now:#x}, was {was:#x}; unmounted under the export?)"
            ),
            DirProblem::TimedOut(m) => m.clone(),
            DirProblem::Io(m) => format!("{name} {d}: {m}"),
        }
    }
}

fn io_problem(e: std::io::Error) -> DirProblem {
    match e.raw_os_error() {
        _ if e.kind() == std::io::ErrorKind::NotFound => DirProblem::Missing,
        Some(libc::ELOOP) => DirProblem::Loop,
        Some(libc::ENAMETOOLONG) => DirProblem::NameTooLong,
        _ => DirProblem::Io(e.to_string()),
    }
}

/// Look at `path` in this process (which may block on dead storage: for
/// work already running in a [`bounded`] child).
pub fn look(path: &Path, how: Look) -> Result<Found, DirProblem> {
    let path = match how {
        Look::Resolve => std::fs::canonicalize(path).map_err(io_problem)?,
        Look::Stat | Look::Unchanged { .. } => path.to_path_buf(),
    };
    let md = match how {
        Look::Unchanged { .. } => std::fs::symlink_metadata(&path),
        Look::Stat | Look::Resolve => std::fs::metadata(&path),
    }
    .map_err(io_problem)?;
    if !md.is_dir() {
        return Err(DirProblem::NotADirectory);
    }
    if let Look::Unchanged { dev } = how {
        if md.dev() != dev {
            return Err(DirProblem::OtherFileSystem {
                now: md.dev(),
                was: dev,
            });
        }
        let mut entries = std::fs::read_dir(&path).map_err(io_problem)?;
        if let Some(Err(e)) = entries.next() {
            return Err(io_problem(e));
        }
        read_device(dev).map_err(|(dev, e)| {
            DirProblem::Io(format!("its storage {} does not read: {e}", dev.display()))
        })?;
    }
    Ok(Found {
        path,
        dev: md.dev(),
        uid: md.uid(),
        gid: md.gid(),
        mode: md.permissions().mode(),
    })
}

/// One 4-KiB read at the start of the block device with number `dev`,
/// with O_DIRECT: from the device, not the page cache, so it blocks when
/// the storage does (a suspended device-mapper table, a lost SAN path).
/// A file system on no block device (tmpfs, NFS, btrfs's anonymous
/// devices), a device without a node in /dev or one this node does not
/// let root open has nothing to read: Ok.
fn read_device(dev: u64) -> Result<(), (PathBuf, std::io::Error)> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let uevent = format!("/sys/dev/block/{major}:{minor}/uevent");
    let Ok(text) = std::fs::read_to_string(uevent) else {
        return Ok(());
    };
    let Some(name) = text.lines().find_map(|l| l.strip_prefix("DEVNAME=")) else {
        return Ok(());
    };
    let node = Path::new("/dev").join(name);
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(&node)
    {
        Ok(f) => f,
        // the device failing or gone; anything else (no node, a device
        // this node does not let root open) tells nothing about the storage
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EIO | libc::ENXIO | libc::ENODEV)
            ) =>
        {
            return Err((node, e))
        }
        Err(_) => return Ok(()),
    };
    // O_DIRECT wants a buffer aligned to the logical block size (4 KiB
    // covers every device); the aligned part of a larger one is.
    const BLOCK: usize = 4096;
    let mut buf = vec![0u8; 2 * BLOCK];
    let at = buf.as_ptr().align_offset(BLOCK);
    match file.read_at(&mut buf[at..at + BLOCK], 0) {
        Ok(_) => Ok(()),
        Err(e) => Err((node, e)),
    }
}

/// [`look`] from a child abandoned at `deadline`: a hung storage is
/// [`DirProblem::TimedOut`], never a hung agent.
pub fn probe(path: &Path, how: Look, deadline: &Deadline) -> Result<Found, DirProblem> {
    let verb = match how {
        Look::Resolve => "resolving",
        Look::Stat | Look::Unchanged { .. } => "checking",
    };
    let what = format!("{verb} directory {}", path.display());
    let p = path.to_path_buf();
    match bounded::run(deadline, &what, move || Ok(look(&p, how))) {
        Ok(found) => found,
        Err(f) if f.timed_out() => Err(DirProblem::TimedOut(f.to_string())),
        Err(f) => Err(DirProblem::Io(f.to_string())),
    }
}

/// The deep look ([`Look::Unchanged`]) at a directory found before on
/// device `dev`, given half of `deadline`'s remaining time: hung storage
/// is said with time to spare.
pub fn answers(dir: &Path, dev: u64, deadline: &Deadline) -> Result<(), DirProblem> {
    let half = deadline.within(deadline.remaining() / 2);
    probe(dir, Look::Unchanged { dev }, &half).map(|_| ())
}

/// Why `dir`'s storage does not answer by `deadline` (looking at it, or
/// the deep look's read from its device, timed out), or `None`: it
/// answers, or fails otherwise (not hung).
pub fn hung(dir: &Path, deadline: &Deadline) -> Option<String> {
    let found = match probe(dir, Look::Stat, deadline) {
        Ok(f) => f,
        Err(DirProblem::TimedOut(why)) => return Some(why),
        Err(_) => return None,
    };
    match probe(dir, Look::Unchanged { dev: found.dev }, deadline) {
        Err(DirProblem::TimedOut(why)) => Some(why),
        _ => None,
    }
}

/// [`probe`] of a directory that may be created when missing: `dir`, and
/// when it is not there (missing, or any problem but "not a directory"),
/// its parent. Ok when either is a directory; else `dir`'s problem, or
/// the parent's when the storage did not answer for it.
pub fn probe_dir_or_parent(dir: &Path, deadline: &Deadline) -> Result<(), DirProblem> {
    let missing = match probe(dir, Look::Stat, deadline) {
        Ok(_) => return Ok(()),
        Err(p @ (DirProblem::NotADirectory | DirProblem::TimedOut(_))) => return Err(p),
        Err(p) => p,
    };
    match dir.parent().map(|d| probe(d, Look::Stat, deadline)) {
        Some(Ok(_)) => Ok(()),
        Some(Err(p @ DirProblem::TimedOut(_))) => Err(p),
        _ => Err(missing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn dl() -> Deadline {
        Deadline::after(Duration::from_secs(10))
    }

    #[test]
    fn reasons_name_the_parameter_and_echo_the_path_capped() {
        let dir = Path::new("/srv/a");
        assert_eq!(
            DirProblem::NotADirectory.reason("directory", dir),
            "directory /srv/a is not a directory"
        );
        assert_eq!(
            DirProblem::Io("Input/output error".into()).reason("directory", dir),
            "directory /srv/a: Input/output error"
        );
        let t = DirProblem::TimedOut("the storage did not answer".into());
        assert_eq!(t.reason("directory", dir), "the storage did not answer");
        let long = PathBuf::from(format!("/{}", "x".repeat(5000)));
        assert!(DirProblem::Missing.reason("directory", &long).len() < 400);
    }

    #[test]
    fn resolves_links_and_reports_problems() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real dir");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, t.path().join("link")).unwrap();
        std::os::unix::fs::symlink("loop", t.path().join("loop")).unwrap();
        std::fs::write(t.path().join("file"), "x").unwrap();
        let d = probe(&t.path().join("link"), Look::Resolve, &dl()).unwrap();
        assert_eq!(d.path, std::fs::canonicalize(&real).unwrap());
        assert_eq!(d.dev, std::fs::metadata(&real).unwrap().dev());
        let s = probe(&t.path().join("link"), Look::Stat, &dl()).unwrap();
        assert_eq!((s.path, s.dev), (t.path().join("link"), d.dev));
        for how in [Look::Stat, Look::Resolve] {
            let at = |n: &str| probe(&t.path().join(n), how, &dl());
            assert_eq!(at("nope"), Err(DirProblem::Missing));
            assert_eq!(at("file"), Err(DirProblem::NotADirectory));
            assert_eq!(at("loop"), Err(DirProblem::Loop));
            assert!(matches!(at("file/x"), Err(DirProblem::Io(_))));
        }
        let unchanged = Look::Unchanged { dev: d.dev };
        assert!(probe(&d.path, unchanged, &dl()).is_ok());
        // a link in the directory's place is not the directory
        assert_eq!(
            probe(&t.path().join("link"), unchanged, &dl()),
            Err(DirProblem::NotADirectory)
        );
        assert!(matches!(
            probe(&d.path, Look::Unchanged { dev: d.dev + 1 }, &dl()),
            Err(DirProblem::OtherFileSystem { .. })
        ));
        std::fs::remove_dir(&real).unwrap();
        assert_eq!(probe(&d.path, unchanged, &dl()), Err(DirProblem::Missing));
    }

    #[test]
    fn a_directory_to_create_needs_its_parent() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("file"), "x").unwrap();
        let at = |n: &str| probe_dir_or_parent(&t.path().join(n), &dl());
        assert_eq!(at(""), Ok(()), "there");
        assert_eq!(at("new"), Ok(()), "missing, its parent there");
        assert_eq!(at("file"), Err(DirProblem::NotADirectory));
        assert_eq!(at("nope/new"), Err(DirProblem::Missing), "nor its parent");
        assert!(
            matches!(at("file/new"), Err(DirProblem::Io(_))),
            "parent a file"
        );
        assert_eq!(probe_dir_or_parent(Path::new("/"), &dl()), Ok(()));
    }
}
