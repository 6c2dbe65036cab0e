//! Bounded work: a closure run in a forked child, under a deadline.
//!
//! "Never hang on dead storage": a stat, read or write on storage that
//! stopped answering (a lost SAN path, a hung cluster file system), a
//! kernel control file that blocks, or a name-service lookup can sleep in
//! the kernel for ever. Such work runs here, in a child process; its typed
//! answer comes back as JSON through a pipe, and at the deadline the child
//! is killed and the caller told so, in one format:
//! `timed out after 4.0s: <what> (hung storage, kernel or name service?)`.
//!
//! Kill and reap: at the deadline the child gets SIGKILL and is waited for
//! at most [`REAP_GRACE`]. A child asleep in user space or in a killable
//! wait dies at once and is reaped; one in uninterruptible sleep (D state)
//! dies only when its I/O returns, so it is left behind rather than holding
//! the caller (the agent exits soon after, and init reaps it).
//!
//! The caller must be single-threaded (hanfs agents and the callout are):
//! fork copies only the calling thread.

use super::process;
use crate::ocf::{Deadline, OcfError};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// How long a killed child is waited for before it is left behind.
pub const REAP_GRACE: Duration = Duration::from_millis(100);

/// Why bounded work gave no value. Every kind is a generic error (code 1)
/// as an [`OcfError`]; callers that mean something else match first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The deadline passed first; the child was killed.
    TimedOut { what: String, after: Duration },
    /// The work's own error message.
    Failed(String),
    /// The work panicked.
    Panicked { what: String, message: String },
    /// The child exited (or its answer was lost) without an answer.
    Exited { what: String, code: i32 },
    /// The child was killed by a signal before it answered.
    Signalled { what: String, signal: String },
    /// No child could be started (fork, pipe).
    Start { what: String, error: String },
}

impl Failure {
    pub fn timed_out(&self) -> bool {
        matches!(self, Failure::TimedOut { .. })
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::TimedOut { what, after } => write!(
                f,
                "timed out after {:.1}s: {what} (hung storage, kernel or name service?)",
                after.as_secs_f64()
            ),
            Failure::Failed(m) => f.write_str(m),
            Failure::Panicked { what, message } => {
                write!(f, "{what}: internal error (panic: {message})")
            }
            Failure::Exited { what, code } => {
                write!(
                    f,
                    "{what}: the worker process exited ({code}) without an answer"
                )
            }
            Failure::Signalled { what, signal } => {
                write!(f, "{what}: the worker process was killed ({signal})")
            }
            Failure::Start { what, error } => write!(f, "{what}: cannot start a worker: {error}"),
        }
    }
}

impl From<Failure> for OcfError {
    fn from(f: Failure) -> OcfError {
        OcfError::generic(f.to_string())
    }
}

/// What the child writes to the pipe.
#[derive(Serialize, Deserialize)]
enum Answer<T> {
    Value(T),
    Failed(String),
    Panicked(String),
}

/// Run `f` in a child and wait for its answer until `deadline`. `what`
/// names the work for messages ("checking directory /srv/a").
pub fn run<T, F>(deadline: &Deadline, what: &str, f: F) -> Result<T, Failure>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    spawn(what, f)?.wait(deadline)
}

/// Bounded work under way; [`Running::wait`] for its answer. Dropped
/// without waiting, the child is killed and reaped.
pub struct Running<T> {
    pid: Pid,
    what: String,
    pipe: File,
    buf: Vec<u8>,
    done: bool,
    _answer: std::marker::PhantomData<T>,
}

/// Start `f` in a child, to run alongside others ([`run`] for one).
pub fn spawn<T, F>(what: &str, f: F) -> Result<Running<T>, Failure>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    let start = |e: Errno| Failure::Start {
        what: what.to_string(),
        error: e.desc().to_string(),
    };
    // Close-on-exec: a program the work runs does not hold the pipe open.
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(start)?;
    // SAFETY: callers are single-threaded; the child runs `f` and _exits.
    match unsafe { fork() }.map_err(start)? {
        ForkResult::Child => {
            drop(rd);
            // A panic is answered through the pipe, not printed: the
            // default hook takes locks (stderr, backtraces) that another
            // thread of a multi-threaded caller (the unit tests) may have
            // held at the fork, and would wait on them for ever.
            std::panic::set_hook(Box::new(|_| {}));
            let answer = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                Ok(Ok(v)) => Answer::Value(v),
                Ok(Err(m)) => Answer::Failed(m),
                Err(p) => Answer::Panicked(panic_message(p.as_ref())),
            };
            let ok = serde_json::to_vec(&answer)
                .map(|b| File::from(wr).write_all(&b).is_ok())
                .unwrap_or(false);
            // SAFETY: leave without running the parent's exit handlers.
            unsafe { libc::_exit(if ok { 0 } else { 3 }) }
        }
        ForkResult::Parent { child } => {
            drop(wr);
            let pipe = File::from(rd);
            process::set_nonblocking(pipe.as_fd());
            Ok(Running {
                pid: child,
                what: what.to_string(),
                pipe,
                buf: Vec::new(),
                done: false,
                _answer: std::marker::PhantomData,
            })
        }
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "no message".into())
}

impl<T: DeserializeOwned> Running<T> {
    /// The child's pid (for tests and logs).
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Wait for the answer until `deadline`, reading it as it comes (an
    /// answer larger than the pipe holds does not block the child); the
    /// child is killed when it has not answered by then.
    pub fn wait(mut self, deadline: &Deadline) -> Result<T, Failure> {
        match self.answer_by(deadline) {
            Some(answer) => answer,
            None => {
                kill_and_reap(self.pid);
                self.done = true;
                Err(Failure::TimedOut {
                    what: std::mem::take(&mut self.what),
                    after: deadline.total(),
                })
            }
        }
    }

    /// The answer if it comes by `deadline`; `None` when the child is
    /// still at work then (it goes on: wait again, or drop it).
    pub fn answer_by(&mut self, deadline: &Deadline) -> Option<Result<T, Failure>> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut open = true;
        let status = loop {
            if open {
                let ms = deadline
                    .remaining()
                    .min(Duration::from_millis(20))
                    .as_millis() as u16;
                let mut fds = [PollFd::new(self.pipe.as_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::from(ms.max(1)));
                open = process::drain(&mut self.pipe, &mut self.buf);
            } else {
                // The answer is in; the exit follows at once.
                deadline.sleep(Duration::from_millis(1));
            }
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
                Ok(st @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => break Ok(st),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
            if deadline.expired() {
                return None;
            }
        };
        self.done = true;
        process::drain(&mut self.pipe, &mut self.buf);
        let what = std::mem::take(&mut self.what);
        Some(match serde_json::from_slice::<Answer<T>>(&self.buf) {
            Ok(Answer::Value(v)) => Ok(v),
            Ok(Answer::Failed(m)) => Err(Failure::Failed(m)),
            Ok(Answer::Panicked(message)) => Err(Failure::Panicked { what, message }),
            Err(_) => Err(match status {
                Ok(WaitStatus::Signaled(_, sig, _)) => Failure::Signalled {
                    what,
                    signal: sig.as_str().to_string(),
                },
                Ok(WaitStatus::Exited(_, code)) => Failure::Exited { what, code },
                _ => Failure::Exited { what, code: -1 },
            }),
        })
    }
}

impl<T> Drop for Running<T> {
    fn drop(&mut self) {
        if !self.done {
            kill_and_reap(self.pid);
        }
    }
}

/// SIGKILL `pid` and reap it, waiting at most [`REAP_GRACE`] (a child in
/// uninterruptible sleep dies only when its I/O returns). `true` when
/// reaped.
fn kill_and_reap(pid: Pid) -> bool {
    let _ = kill(pid, Signal::SIGKILL);
    let until = Instant::now() + REAP_GRACE;
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
            Ok(_) | Err(_) => return true,
        }
        if Instant::now() >= until {
            log::debug!(
                "worker process {pid} did not die at once (stuck in the kernel?); left behind"
            );
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocf::OcfCode;

    fn dl(ms: u64) -> Deadline {
        Deadline::after(Duration::from_millis(ms))
    }

    /// The child is gone: no zombie, nothing left to wait for.
    fn reaped(pid: i32) {
        assert_eq!(
            waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)),
            Err(Errno::ECHILD)
        );
        assert!(
            crate::sys::procs::stat(pid).is_none(),
            "{pid} still in /proc"
        );
    }

    #[test]
    fn a_typed_value_comes_back() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        enum Seen {
            Dir { dev: u64 },
            Gone,
        }
        let w = spawn("x", || Ok(Seen::Dir { dev: 7 })).unwrap();
        let pid = w.pid();
        assert_eq!(w.wait(&dl(10_000)), Ok(Seen::Dir { dev: 7 }));
        reaped(pid);
        assert_eq!(run(&dl(10_000), "x", || Ok(Seen::Gone)), Ok(Seen::Gone));
        // larger than a pipe holds
        let v: Vec<String> = run(&dl(10_000), "x", || Ok(vec!["a".into(); 20_000])).unwrap();
        assert_eq!(v.len(), 20_000);
    }

    #[test]
    fn the_works_error_is_the_message() {
        let e = run::<u32, _>(&dl(10_000), "x", || Err("holding_dir is gone".into())).unwrap_err();
        assert_eq!(e, Failure::Failed("holding_dir is gone".into()));
        let e = OcfError::from(e);
        assert_eq!(
            (e.code, e.reason.as_str()),
            (OcfCode::ErrGeneric, "holding_dir is gone")
        );
    }

    #[test]
    fn a_sleeper_is_killed_at_the_deadline() {
        let w = spawn::<u32, _>("reading /dead", || {
            std::thread::sleep(Duration::from_secs(20));
            Ok(1)
        })
        .unwrap();
        let pid = w.pid();
        let (d, t) = (dl(300), Instant::now());
        let e = w.wait(&d).unwrap_err();
        let took = t.elapsed();
        assert!(e.timed_out(), "{e:?}");
        assert_eq!(
            e.to_string(),
            "timed out after 0.3s: reading /dead (hung storage, kernel or name service?)"
        );
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_millis(300) + REAP_GRACE,
            "{took:?}"
        );
        reaped(pid);
        assert_eq!(OcfError::from(e).code, OcfCode::ErrGeneric);
    }

    #[test]
    fn work_not_done_by_a_first_deadline_goes_on_to_answer() {
        let mut w = spawn("slow work", || {
            std::thread::sleep(Duration::from_millis(400));
            Ok(7u32)
        })
        .unwrap();
        assert!(w.answer_by(&dl(50)).is_none());
        assert!(kill(w.pid, None).is_ok(), "the work was killed");
        assert_eq!(w.wait(&dl(10_000)), Ok(7));
    }

    #[test]
    fn a_panic_is_reported() {
        let e = run::<u32, _>(&dl(10_000), "checking /x", || panic!("boom")).unwrap_err();
        assert_eq!(
            e,
            Failure::Panicked {
                what: "checking /x".into(),
                message: "boom".into()
            }
        );
        assert!(e.to_string().contains("panic: boom"), "{e}");
    }

    #[test]
    fn an_exit_or_a_signal_is_reported() {
        let e = run::<u32, _>(&dl(10_000), "checking /x", || std::process::exit(4)).unwrap_err();
        assert_eq!(
            e,
            Failure::Exited {
                what: "checking /x".into(),
                code: 4
            }
        );
        let e = run::<u32, _>(&dl(10_000), "checking /x", || {
            let _ = kill(nix::unistd::getpid(), Signal::SIGTERM);
            std::thread::sleep(Duration::from_secs(5));
            Ok(1)
        })
        .unwrap_err();
        assert!(
            matches!(&e, Failure::Signalled { signal, .. } if signal == "SIGTERM"),
            "{e:?}"
        );
    }

    #[test]
    fn dropped_work_is_killed_and_reaped() {
        let w = spawn::<u32, _>("x", || {
            std::thread::sleep(Duration::from_secs(20));
            Ok(1)
        })
        .unwrap();
        let pid = w.pid();
        drop(w);
        reaped(pid);
    }

    #[test]
    fn a_child_that_leaves_a_daemon_does_not_hold_us() {
        let t = Instant::now();
        let v = run(&dl(10_000), "x", || {
            std::process::Command::new("sleep")
                .arg("3")
                .spawn()
                .map_err(|e| e.to_string())?;
            Ok(5)
        });
        assert_eq!(v, Ok(5));
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
}
