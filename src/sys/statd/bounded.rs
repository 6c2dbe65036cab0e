//! Work on storage that may hang (the holding directory is on shared
//! storage; a DNS lookup may hang too), done in a forked child whose answer
//! comes back through a pipe, and abandoned at the deadline.
//!
//! Like [`crate::sys::process::in_child`], but the child returns a value
//! (serialized as JSON) instead of an exit code. The caller must be
//! single-threaded (hanfs agents and the callout are).

use crate::ocf::{Deadline, OcfError, OcfResult};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, pipe, ForkResult};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::time::Duration;

/// Run `f` in a child; its `Err(message)` becomes an error with code 1.
/// When the deadline passes first the child is killed (a process stuck in
/// the kernel on dead storage dies when the I/O returns) and an error names
/// `what`.
pub fn bounded<T, F>(deadline: &Deadline, what: &str, f: F) -> OcfResult<T>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    let (rd, wr) = pipe().map_err(|e| OcfError::generic(format!("pipe: {e}")))?;
    // SAFETY: callers are single-threaded; the child runs `f` and _exits.
    match unsafe { fork() } {
        Err(e) => Err(OcfError::generic(format!("fork: {e}"))),
        Ok(ForkResult::Child) => {
            drop(rd);
            let r: Result<T, String> = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .unwrap_or_else(|_| Err("internal error (panic)".into()));
            let mut w = std::fs::File::from(wr);
            let ok = serde_json::to_vec(&r)
                .ok()
                .map(|b| w.write_all(&b).is_ok())
                .unwrap_or(false);
            unsafe { libc::_exit(if ok { 0 } else { 3 }) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(wr);
            let mut r = std::fs::File::from(rd);
            set_nonblocking(&r);
            let mut buf = Vec::new();
            let mut open = true;
            let timed_out = loop {
                if open {
                    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
                    let ms = deadline
                        .remaining()
                        .min(Duration::from_millis(50))
                        .as_millis() as u16;
                    let mut fds = [PollFd::new(r.as_fd(), PollFlags::POLLIN)];
                    let _ = poll(&mut fds, PollTimeout::from(ms.max(1)));
                    let mut chunk = [0u8; 8192];
                    loop {
                        match r.read(&mut chunk) {
                            Ok(0) => {
                                open = false;
                                break;
                            }
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                            Err(_) => break,
                        }
                    }
                }
                if !open {
                    match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                        Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
                        _ => break false,
                    }
                    if deadline.expired() {
                        break true;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                } else if deadline.expired() {
                    break true;
                }
            };
            if timed_out {
                let _ = kill(child, Signal::SIGKILL);
                let _ = waitpid(child, Some(WaitPidFlag::WNOHANG));
                return Err(OcfError::generic(format!(
                    "timed out after {:.1}s: {what} (storage or name service not responding?)",
                    deadline.total().as_secs_f64()
                )));
            }
            match serde_json::from_slice::<Result<T, String>>(&buf) {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(msg)) => Err(OcfError::generic(msg)),
                Err(_) => Err(OcfError::generic(format!(
                    "{what}: the worker process died"
                ))),
            }
        }
    }
}

fn set_nonblocking(f: &std::fs::File) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    if let Ok(fl) = fcntl(f.as_fd(), FcntlArg::F_GETFL) {
        let _ = fcntl(
            f.as_fd(),
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(fl) | OFlag::O_NONBLOCK),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_childs_value_or_error() {
        let d = Deadline::after(Duration::from_secs(10));
        let v: Vec<String> = bounded(&d, "x", || Ok(vec!["a".into(); 20_000])).unwrap();
        assert_eq!(v.len(), 20_000);
        let e = bounded::<u32, _>(&d, "x", || Err("holding_dir is gone".into())).unwrap_err();
        assert_eq!(e.reason, "holding_dir is gone");
        let e = bounded::<u32, _>(&d, "x", || panic!("boom")).unwrap_err();
        assert!(e.reason.contains("panic"), "{e}");
    }

    #[test]
    fn abandons_a_hung_child() {
        let d = Deadline::after(Duration::from_millis(200));
        let t = std::time::Instant::now();
        let e = bounded::<u32, _>(&d, "reading /dead", || {
            std::thread::sleep(Duration::from_secs(20));
            Ok(1)
        })
        .unwrap_err();
        assert!(
            e.reason.contains("timed out") && e.reason.contains("/dead"),
            "{e}"
        );
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
