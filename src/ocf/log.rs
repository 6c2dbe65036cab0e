//! Agent logging: syslog with the tag `agent(instance)[pid]` and the facility
//! from `HA_LOGFACILITY`, a mirror on stderr (which Pacemaker records with
//! the operation), optionally `HA_LOGFILE` (its lines dated); debug lines
//! only with `HA_debug=1`. Nothing ever goes to stdout, which is reserved
//! for meta-data.

use log::{Level, LevelFilter, Log, Metadata as LogMeta, Record};
use std::ffi::CString;
use std::io::Write;
use std::sync::OnceLock;

struct AgentLogger {
    tag: String,
    syslog: bool,
    stderr: bool,
    logfile: Option<std::path::PathBuf>,
    debug: bool,
}

static LOGGER: OnceLock<AgentLogger> = OnceLock::new();

/// Map a facility name (`daemon`, `local0`, ...) to its syslog constant;
/// `none` (or an unknown name) disables syslog.
pub fn facility(name: &str) -> Option<libc::c_int> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "daemon" => libc::LOG_DAEMON,
        "user" => libc::LOG_USER,
        "local0" => libc::LOG_LOCAL0,
        "local1" => libc::LOG_LOCAL1,
        "local2" => libc::LOG_LOCAL2,
        "local3" => libc::LOG_LOCAL3,
        "local4" => libc::LOG_LOCAL4,
        "local5" => libc::LOG_LOCAL5,
        "local6" => libc::LOG_LOCAL6,
        "local7" => libc::LOG_LOCAL7,
        "authpriv" => libc::LOG_AUTHPRIV,
        _ => return None,
    })
}

/// Install the logger for `agent` / `instance`. Safe to call once; later
/// calls are ignored.
pub fn init(agent: &str, instance: &str, stderr: bool) {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let fac_name = get("HA_LOGFACILITY")
        .or_else(|| get("HA_logfacility"))
        .or_else(|| get("PCMK_logfacility"))
        .unwrap_or_else(|| "daemon".into());
    let debug = get("HA_debug")
        .or_else(|| get("HA_DEBUG"))
        .map(|v| v != "0" && !v.eq_ignore_ascii_case("false"))
        .unwrap_or(false);
    let tag = format!("{agent}({instance})");
    let fac = facility(&fac_name);
    if let Some(f) = fac {
        // openlog keeps the pointer: the ident must live for the process.
        let ident: &'static CString =
            Box::leak(Box::new(CString::new(tag.clone()).unwrap_or_default()));
        unsafe { libc::openlog(ident.as_ptr(), libc::LOG_PID | libc::LOG_NDELAY, f) };
    }
    let logger = AgentLogger {
        tag,
        syslog: fac.is_some(),
        stderr,
        logfile: get("HA_LOGFILE").map(Into::into),
        debug,
    };
    if LOGGER.set(logger).is_ok() {
        let l = LOGGER.get().expect("set");
        let _ = log::set_logger(l);
        log::set_max_level(if debug {
            LevelFilter::Debug
        } else {
            LevelFilter::Info
        });
    }
}

impl Log for AgentLogger {
    fn enabled(&self, m: &LogMeta) -> bool {
        m.level() <= Level::Info || self.debug
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let (prio, word) = match r.level() {
            Level::Error => (libc::LOG_ERR, "ERROR"),
            Level::Warn => (libc::LOG_WARNING, "WARNING"),
            Level::Info => (libc::LOG_INFO, "INFO"),
            Level::Debug | Level::Trace => (libc::LOG_DEBUG, "DEBUG"),
        };
        let msg = format!("{word}: {}", r.args());
        if self.syslog {
            if let Ok(c) = CString::new(msg.replace('\0', " ")) {
                unsafe { libc::syslog(prio, c"%s".as_ptr(), c.as_ptr()) };
            }
        }
        let line = format!("{}[{}]: {msg}\n", self.tag, std::process::id());
        if self.stderr {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        if let Some(p) = &self.logfile {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(p)
            {
                // A file has no one to date its lines: the time goes first,
                // to the microsecond, as in Pacemaker's own log.
                let _ = f.write_all(format!("{} {line}", local_time()).as_bytes());
            }
        }
    }

    fn flush(&self) {}
}

/// Now, local time, as Pacemaker's log dates its lines: `Dec 04
/// 19:59:04.461234` (microseconds).
fn local_time() -> String {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: both point to live values of the types the calls expect.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let mut buf = [0u8; 32];
    let n = unsafe {
        libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts);
        libc::localtime_r(&ts.tv_sec, &mut tm);
        libc::strftime(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%b %d %H:%M:%S".as_ptr(),
            &tm,
        )
    };
    format!(
        "{}.{:06}",
        String::from_utf8_lossy(&buf[..n]),
        ts.tv_nsec / 1000
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn facilities() {
        assert_eq!(super::facility("daemon"), Some(libc::LOG_DAEMON));
        assert_eq!(super::facility("LOCAL7"), Some(libc::LOG_LOCAL7));
        assert_eq!(super::facility("none"), None);
    }

    #[test]
    fn local_time_is_dated_to_the_microsecond() {
        let t = super::local_time();
        // "Dec 04 19:59:04.461234"
        let (day, clock) = t.split_at(7);
        assert!(
            day.ends_with(' ') && day[..3].chars().all(|c| c.is_ascii_alphabetic()),
            "{t}"
        );
        let b = clock.as_bytes();
        assert_eq!(clock.len(), 15, "{t}");
        assert!(
            [2, 5, 8]
                .iter()
                .all(|&i| b[i] == if i == 8 { b'.' } else { b':' }),
            "{t}"
        );
    }
}
