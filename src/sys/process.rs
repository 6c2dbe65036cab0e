//! Child processes that obey a deadline.
//!
//! hanfs agents stay single-threaded: output is read with poll(2), not with
//! reader threads, so that bounded work ([`crate::sys::bounded`]) and
//! [`spawn_detached`] may fork safely.

use crate::ocf::{Deadline, OcfError, OcfResult};
use crate::sys::procs::ProcId;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

#[derive(Debug)]
pub struct CmdOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }
    /// The last non-empty stderr line (or stdout line), for an exit reason.
    pub fn last_words(&self) -> String {
        let last = |s: &str| {
            s.lines()
                .map(str::trim)
                .rfind(|l| !l.is_empty())
                .map(str::to_string)
        };
        last(&self.stderr)
            .or_else(|| last(&self.stdout))
            .unwrap_or_default()
    }
}

/// `prog arg1 arg2` for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

pub(crate) fn set_nonblocking(fd: std::os::fd::BorrowedFd<'_>) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    if let Ok(fl) = fcntl(fd, FcntlArg::F_GETFL) {
        let _ = fcntl(
            fd,
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(fl) | OFlag::O_NONBLOCK),
        );
    }
}

/// Read what is available without blocking; `false` at EOF.
pub(crate) fn drain(r: &mut impl Read, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    loop {
        match r.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

/// Run `cmd` to completion (stdin closed, output captured) or until the
/// deadline, when its whole process group is killed and an error (code 1)
/// names the command. A missing program is code 5. A program that leaves a
/// daemon holding its output open does not hold us: we return once the
/// direct child has exited.
pub fn run(cmd: &mut Command, deadline: &Deadline) -> OcfResult<CmdOutput> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let what = describe(cmd);
    log::debug!("running: {what}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            super::program::missing(&cmd.get_program().to_string_lossy(), "it or fix PATH")
        } else {
            OcfError::generic(format!("cannot run {what}: {e}"))
        }
    })?;
    let pgid = Pid::from_raw(child.id() as i32);
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    set_nonblocking(out.as_fd());
    set_nonblocking(err.as_fd());
    let (mut obuf, mut ebuf) = (Vec::new(), Vec::new());
    let (mut oopen, mut eopen) = (true, true);
    let status = loop {
        if let Some(st) = child
            .try_wait()
            .map_err(|e| OcfError::generic(format!("{what}: {e}")))?
        {
            drain(&mut out, &mut obuf);
            drain(&mut err, &mut ebuf);
            break st;
        }
        if deadline.expired() {
            let _ = killpg(pgid, Signal::SIGKILL);
            let _ = child.wait();
            return Err(OcfError::generic(format!(
                "timed out after {:.1}s waiting for: {what}",
                deadline.total().as_secs_f64()
            )));
        }
        let wait_ms = deadline
            .remaining()
            .min(Duration::from_millis(20))
            .as_millis() as u16;
        if oopen || eopen {
            let mut fds = Vec::new();
            if oopen {
                fds.push(PollFd::new(out.as_fd(), PollFlags::POLLIN));
            }
            if eopen {
                fds.push(PollFd::new(err.as_fd(), PollFlags::POLLIN));
            }
            let _ = poll(&mut fds, PollTimeout::from(wait_ms.max(1)));
            drop(fds);
            if oopen {
                oopen = drain(&mut out, &mut obuf);
            }
            if eopen {
                eopen = drain(&mut err, &mut ebuf);
            }
        } else {
            std::thread::sleep(Duration::from_millis(u64::from(wait_ms.clamp(1, 5))));
        }
    };
    let o = CmdOutput {
        status,
        stdout: String::from_utf8_lossy(&obuf).into_owned(),
        stderr: String::from_utf8_lossy(&ebuf).into_owned(),
    };
    log::debug!("{what}: {} {}", o.status, o.last_words());
    Ok(o)
}

/// Like [`run`], but a non-zero exit is an error (code 1) carrying the
/// command's last words.
pub fn run_ok(cmd: &mut Command, deadline: &Deadline) -> OcfResult<CmdOutput> {
    let o = run(cmd, deadline)?;
    if o.success() {
        Ok(o)
    } else {
        Err(OcfError::generic(format!(
            "{} failed ({}): {}",
            describe(cmd),
            o.status,
            o.last_words()
        )))
    }
}

/// Run `f` in a detached process: a grandchild in its own session, with
/// its standard streams on /dev/null (so that neither the caller nor
/// whoever reads the caller's output waits for it), named `name`, exiting
/// with `f`'s code (1 if it panics). Returns its identity once it runs,
/// for a later stop to end it. The caller must be single-threaded.
pub fn spawn_detached(name: &std::ffi::CStr, f: impl FnOnce() -> i32) -> OcfResult<ProcId> {
    use std::io::Write;
    let (rd, wr) = nix::unistd::pipe().map_err(|e| OcfError::generic(format!("pipe: {e}")))?;
    let (mut rd, wr) = (std::fs::File::from(rd), std::fs::File::from(wr));
    // SAFETY: the caller is single-threaded.
    match unsafe { fork() } {
        Err(e) => Err(OcfError::generic(format!("fork: {e}"))),
        Ok(ForkResult::Child) => {
            drop(rd);
            let _ = nix::unistd::setsid();
            // SAFETY: still single-threaded.
            match unsafe { fork() } {
                Ok(ForkResult::Parent { child }) => {
                    let mut wr = wr;
                    let _ = wr.write_all(&child.as_raw().to_le_bytes());
                    unsafe { libc::_exit(0) }
                }
                Ok(ForkResult::Child) => {
                    drop(wr);
                    detach_stdio();
                    let _ = nix::sys::prctl::set_name(name);
                    let code =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(1);
                    unsafe { libc::_exit(code) }
                }
                Err(_) => unsafe { libc::_exit(1) },
            }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(wr);
            let mut b = [0u8; 4];
            let got = rd.read_exact(&mut b);
            let _ = waitpid(child, None);
            got.map_err(|e| {
                OcfError::generic(format!("{} did not start: {e}", name.to_string_lossy()))
            })?;
            let pid = i32::from_le_bytes(b);
            // It may already be done (a short run); then a dead reference
            // is harmless.
            Ok(ProcId::of(pid).unwrap_or(ProcId { pid, start: 0 }))
        }
    }
}

fn detach_stdio() {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocf::OcfCode;

    #[test]
    fn captures_output_and_status() {
        let d = Deadline::after(Duration::from_secs(10));
        let o = run(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            &d,
        )
        .unwrap();
        assert_eq!(o.status.code(), Some(3));
        assert_eq!(o.stdout, "out\n");
        assert_eq!(o.last_words(), "err");
        let e = run_ok(Command::new("sh").args(["-c", "echo boom >&2; exit 1"]), &d).unwrap_err();
        assert!(e.reason.contains("boom"), "{e}");
    }

    #[test]
    fn missing_program_is_not_installed() {
        let d = Deadline::after(Duration::from_secs(10));
        let e = run(&mut Command::new("/nonexistent/hanfs-prog"), &d).unwrap_err();
        assert_eq!(e.code, OcfCode::ErrInstalled);
        // the one message for a missing program (sys::program::missing)
        assert_eq!(
            e.reason,
            "/nonexistent/hanfs-prog not found (install it or fix PATH)"
        );
    }

    #[test]
    fn deadline_kills_the_group() {
        let d = Deadline::after(Duration::from_millis(300));
        let t = std::time::Instant::now();
        let e = run(Command::new("sh").args(["-c", "sleep 30 & sleep 30"]), &d).unwrap_err();
        assert!(e.reason.contains("timed out"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn daemon_holding_pipes_does_not_hold_us() {
        let d = Deadline::after(Duration::from_secs(10));
        let t = std::time::Instant::now();
        let o = run(
            Command::new("sh").args(["-c", "(sleep 3 &) ; echo parent-done"]),
            &d,
        )
        .unwrap();
        assert!(o.success());
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
}
