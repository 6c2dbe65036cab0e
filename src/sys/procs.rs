//! Processes as /proc shows them: identity that survives pid reuse, and
//! lookup by command name and namespace. (No `ps`, no `pgrep`.)

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// The fields of `/proc/PID/stat` hanfs needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `R`, `S`, `D`, `Z`, ...
    pub state: char,
    pub ppid: i32,
    /// Field 22: clock ticks after boot when the process started.
    pub start: u64,
}

impl Stat {
    /// Neither a zombie nor dead.
    pub fn is_live(&self) -> bool {
        !matches!(self.state, 'Z' | 'X')
    }
}

pub fn stat(pid: i32) -> Option<Stat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may hold spaces and parentheses: fields start after the last ')'.
    let f: Vec<&str> = s[s.rfind(')')? + 1..].split_whitespace().collect();
    // f[0] is field 3 (state), f[1] field 4 (ppid), f[19] field 22.
    Some(Stat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

/// A process, identified across pid reuse by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcId {
    pub pid: i32,
    pub start: u64,
}

impl ProcId {
    /// The live process `pid` (`None` when gone or a zombie).
    pub fn of(pid: i32) -> Option<ProcId> {
        stat(pid).filter(Stat::is_live).map(|s| ProcId {
            pid,
            start: s.start,
        })
    }

    /// How long ago it started (from `/proc/uptime` and its start in
    /// clock ticks).
    pub fn age(&self) -> Option<std::time::Duration> {
        let up: f64 = std::fs::read_to_string("/proc/uptime")
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        let tck = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()?? as f64;
        std::time::Duration::try_from_secs_f64(up - self.start as f64 / tck).ok()
    }

    /// Still running, and still the same process.
    pub fn alive(&self) -> bool {
        matches!(stat(self.pid), Some(s) if s.start == self.start && s.is_live())
    }

    /// Send `sig` if it is still the same process; returns whether it was.
    pub fn signal(&self, sig: Signal) -> bool {
        self.alive() && kill(Pid::from_raw(self.pid), sig).is_ok()
    }

    /// `"<pid> <start>"`, as kept in a state file.
    pub fn to_record(&self) -> String {
        format!("{} {}", self.pid, self.start)
    }

    pub fn from_record(s: &str) -> Option<ProcId> {
        let mut it = s.split_whitespace();
        Some(ProcId {
            pid: it.next()?.parse().ok()?,
            start: it.next()?.parse().ok()?,
        })
    }
}

pub fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The arguments (argv) of `pid`; empty when unreadable.
pub fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Which namespace to compare with our own.
#[derive(Debug, Clone, Copy)]
pub enum Ns {
    Net,
    Mnt,
}

impl Ns {
    fn name(self) -> &'static str {
        match self {
            Ns::Net => "net",
            Ns::Mnt => "mnt",
        }
    }
}

/// Whether `pid` is in the same namespace of kind `ns` as this process
/// (/proc shows the processes of other namespaces too).
pub fn shares_namespace(pid: i32, ns: Ns) -> bool {
    let link = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/{}", ns.name())).ok();
    let mine = link("self");
    mine.is_some() && link(&pid.to_string()) == mine
}

/// Live processes whose command name is `name`, in pid order.
pub fn named(name: &str) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut v: Vec<i32> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| comm(p).as_deref() == Some(name))
        .filter(|&p| stat(p).is_some_and(|s| s.is_live()))
        .collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_age_is_how_long_ago_it_started() {
        // this process is younger than a day
        let me = ProcId::of(std::process::id() as i32).unwrap();
        assert!(me.age().unwrap() < std::time::Duration::from_secs(86400));
    }

    #[test]
    fn identity_and_lookup() {
        let me = std::process::id() as i32;
        let id = ProcId::of(me).unwrap();
        assert!(id.alive());
        assert!(!ProcId {
            pid: me,
            start: id.start + 1
        }
        .alive());
        assert_eq!(ProcId::from_record(&id.to_record()), Some(id));
        assert!(ProcId::of(-5).is_none());
        assert!(shares_namespace(me, Ns::Net) && shares_namespace(me, Ns::Mnt));
        assert!(!cmdline(me).is_empty());

        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // (poll: on a loaded machine /proc may show the exec a moment late)
        let seen = crate::ocf::Deadline::after(std::time::Duration::from_secs(5))
            .poll(std::time::Duration::from_millis(10), || {
                named("sleep").contains(&pid).then_some(())
            });
        assert!(seen.is_some(), "sleep (pid {pid}) not found by name");
        assert_eq!(stat(pid).unwrap().ppid, me);
        let c = ProcId::of(pid).unwrap();
        assert!(c.signal(Signal::SIGKILL));
        child.wait().unwrap();
        assert!(!c.alive());
        assert!(!c.signal(Signal::SIGKILL));
    }
}
