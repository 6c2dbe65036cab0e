//! Looking at an exported directory without risking a hang.
//!
//! The directory lives on storage that may be dead (a lost SAN path, a hung
//! cluster file system, an unreachable NFS server underneath): any stat of
//! it can then block in the kernel for ever. Every look here runs in a
//! forked child that the agent abandons at the deadline
//! ([`in_child`]), and the child reports back over a pipe.

use crate::ocf::{Deadline, OcfError, OcfResult, ResultExt};
use crate::sys::process::{in_child, ChildOutcome};
use std::io::{Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// An exported directory as found at start: its real path (symbolic links
/// resolved) and the device of the file system it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    pub path: PathBuf,
    pub dev: u64,
}

/// Why a look at a directory failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// It does not exist (a file system not mounted here, a typo).
    Missing(String),
    /// It exists but is not a directory.
    NotADirectory,
    /// It is now on another file system than at start (unmounted under
    /// the export?).
    OtherFileSystem { now: u64, was: u64 },
    /// Too many levels of symbolic links (ELOOP): a link loop here.
    Loop,
    /// A name or the resolved path is too long (ENAMETOOLONG).
    NameTooLong,
    /// Any other error, with the system's words.
    Io(String),
}

/// Run `f` in a child and fetch its answer: `Ok(Ok(bytes))`,
/// `Ok(Err(problem))`, or `Err` (code 1) when the child did not answer by
/// the deadline (or died).
fn ask_child(
    what: &str,
    deadline: &Deadline,
    f: impl FnOnce() -> Result<Vec<u8>, Problem>,
) -> OcfResult<Result<Vec<u8>, Problem>> {
    let (r, w) = nix::unistd::pipe().or_generic(|| "cannot create a pipe")?;
    // Only the write end goes to the child; the parent's copy is closed
    // when `in_child` drops the unused closure.
    let outcome = in_child(deadline, move || {
        let mut out = std::fs::File::from(w);
        let msg = match f() {
            Ok(b) => [b"+".as_slice(), &b].concat(),
            Err(p) => format!("-{}", serde_problem(&p)).into_bytes(),
        };
        i32::from(out.write_all(&msg).is_err())
    })?;
    match outcome {
        ChildOutcome::Exited(0) => {
            let mut buf = Vec::new();
            std::fs::File::from(r)
                .read_to_end(&mut buf)
                .or_generic(|| format!("{what}: cannot read the answer"))?;
            match buf.split_first() {
                Some((b'+', rest)) => Ok(Ok(rest.to_vec())),
                Some((b'-', rest)) => Ok(Err(deserde_problem(&String::from_utf8_lossy(rest)))),
                _ => Err(OcfError::generic(format!(
                    "{what}: the check process gave no answer"
                ))),
            }
        }
        ChildOutcome::Exited(c) => Err(OcfError::generic(format!(
            "{what}: the check process failed (exit {c})"
        ))),
        ChildOutcome::Signalled => {
            Err(OcfError::generic(format!("{what}: the check process died")))
        }
        ChildOutcome::TimedOut => Err(OcfError::generic(format!(
            "{what}: no answer within {:.1}s (hung storage?)",
            deadline.total().as_secs_f64()
        ))),
    }
}

fn serde_problem(p: &Problem) -> String {
    match p {
        Problem::Missing(m) => format!("M{m}"),
        Problem::NotADirectory => "N".into(),
        Problem::Loop => "L".into(),
        Problem::NameTooLong => "T".into(),
        Problem::OtherFileSystem { now, was } => format!("F{now} {was}"),
        Problem::Io(m) => format!("E{m}"),
    }
}

fn deserde_problem(s: &str) -> Problem {
    let (tag, rest) = s.split_at(s.len().min(1));
    match tag {
        "M" => Problem::Missing(rest.into()),
        "N" => Problem::NotADirectory,
        "L" => Problem::Loop,
        "T" => Problem::NameTooLong,
        "F" => {
            let mut n = rest.split(' ').map(|x| x.parse().unwrap_or(0));
            Problem::OtherFileSystem {
                now: n.next().unwrap_or(0),
                was: n.next().unwrap_or(0),
            }
        }
        _ => Problem::Io(rest.into()),
    }
}

fn io_problem(e: std::io::Error) -> Problem {
    match e.raw_os_error() {
        _ if e.kind() == std::io::ErrorKind::NotFound => Problem::Missing(e.to_string()),
        Some(libc::ELOOP) => Problem::Loop,
        Some(libc::ENAMETOOLONG) => Problem::NameTooLong,
        _ => Problem::Io(e.to_string()),
    }
}

/// Resolve `dir` (symbolic links, `..`) to its real path and check that it
/// is a directory. `Ok(Err(_))` for a problem with the directory,
/// `Err` (code 1) when the storage does not answer by the deadline.
pub fn resolve(dir: &Path, deadline: &Deadline) -> OcfResult<Result<Directory, Problem>> {
    let what = format!("resolving directory {}", dir.display());
    let dir = dir.to_path_buf();
    let answer = ask_child(&what, deadline, move || {
        let real = std::fs::canonicalize(&dir).map_err(io_problem)?;
        let md = std::fs::metadata(&real).map_err(io_problem)?;
        if !md.is_dir() {
            return Err(Problem::NotADirectory);
        }
        let mut out = format!("{}\n", md.dev()).into_bytes();
        out.extend_from_slice(real.as_os_str().as_bytes());
        Ok(out)
    })?;
    Ok(answer.and_then(|bytes| {
        let nl = bytes.iter().position(|&b| b == b'\n').unwrap_or(0);
        let dev = std::str::from_utf8(&bytes[..nl])
            .ok()
            .and_then(|s| s.parse().ok());
        match dev {
            Some(dev) => Ok(Directory {
                dev,
                path: PathBuf::from(std::ffi::OsString::from_vec(bytes[nl + 1..].to_vec())),
            }),
            None => Err(Problem::Io("garbled answer from the check process".into())),
        }
    }))
}

/// The deeper check (monitor depth 10): the directory is still there, still
/// on the file system it was exported from, and can be listed.
pub fn check(dir: &Directory, deadline: &Deadline) -> OcfResult<Result<(), Problem>> {
    let what = format!("checking directory {}", dir.path.display());
    let d = dir.clone();
    let answer = ask_child(&what, deadline, move || {
        let md = std::fs::symlink_metadata(&d.path).map_err(io_problem)?;
        if !md.is_dir() {
            return Err(Problem::NotADirectory);
        }
        if md.dev() != d.dev {
            return Err(Problem::OtherFileSystem {
                now: md.dev(),
                was: d.dev,
            });
        }
        let mut rd = std::fs::read_dir(&d.path).map_err(io_problem)?;
        if let Some(Err(e)) = rd.next() {
            return Err(io_problem(e));
        }
        Ok(Vec::new())
    })?;
    Ok(answer.map(|_| ()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn dl() -> Deadline {
        Deadline::after(Duration::from_secs(10))
    }

    #[test]
    fn resolves_links_and_reports_problems() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real dir");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, t.path().join("link")).unwrap();
        std::fs::write(t.path().join("file"), "x").unwrap();
        let d = resolve(&t.path().join("link"), &dl()).unwrap().unwrap();
        assert_eq!(d.path, std::fs::canonicalize(&real).unwrap());
        assert_eq!(d.dev, std::fs::metadata(&real).unwrap().dev());
        assert!(matches!(
            resolve(&t.path().join("nope"), &dl()).unwrap(),
            Err(Problem::Missing(_))
        ));
        assert_eq!(
            resolve(&t.path().join("file"), &dl()).unwrap(),
            Err(Problem::NotADirectory)
        );
        assert_eq!(check(&d, &dl()).unwrap(), Ok(()));
        let moved = Directory {
            dev: d.dev + 1,
            ..d.clone()
        };
        assert!(matches!(
            check(&moved, &dl()).unwrap(),
            Err(Problem::OtherFileSystem { .. })
        ));
        std::fs::remove_dir(&real).unwrap();
        assert!(matches!(
            check(&d, &dl()).unwrap(),
            Err(Problem::Missing(_))
        ));
    }

    #[test]
    fn problems_survive_the_pipe() {
        for p in [
            Problem::Missing("No such file".into()),
            Problem::NotADirectory,
            Problem::Loop,
            Problem::NameTooLong,
            Problem::OtherFileSystem { now: 5, was: 7 },
            Problem::Io("Input/output error".into()),
        ] {
            assert_eq!(deserde_problem(&serde_problem(&p)), p);
        }
    }
}
