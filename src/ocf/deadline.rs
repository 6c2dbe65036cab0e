use super::{OcfError, OcfResult};
use std::time::{Duration, Instant};

/// The moment by which the current action must have answered.
///
/// Built from `OCF_RESKEY_CRM_meta_timeout` (milliseconds) with a margin, so
/// that the agent reports its own timeout (with a reason) before Pacemaker
/// kills it. Every wait and child process in hanfs takes a `Deadline`.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    total: Duration,
}

impl Deadline {
    /// A deadline `timeout` from now, keeping back a safety margin of 5 %
    /// (at least 250 ms, at most 5 s, and never more than half the timeout).
    pub fn from_timeout(timeout: Duration) -> Self {
        let margin = (timeout / 20)
            .clamp(Duration::from_millis(250), Duration::from_secs(5))
            .min(timeout / 2);
        Deadline {
            at: Instant::now() + (timeout - margin),
            total: timeout,
        }
    }

    /// A deadline exactly `d` from now (no margin); for inner waits.
    pub fn after(d: Duration) -> Self {
        Deadline {
            at: Instant::now() + d,
            total: d,
        }
    }

    pub fn instant(&self) -> Instant {
        self.at
    }

    /// The action's whole timeout as configured.
    pub fn total(&self) -> Duration {
        self.total
    }

    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    pub fn expired(&self) -> bool {
        Instant::now() >= self.at
    }

    /// The earlier of this deadline and `d` from now.
    pub fn within(&self, d: Duration) -> Deadline {
        let other = Instant::now() + d;
        if other < self.at {
            Deadline {
                at: other,
                total: d,
            }
        } else {
            *self
        }
    }

    /// Error (code 1) if expired, naming what was being waited for.
    pub fn check(&self, what: &str) -> OcfResult<()> {
        if self.expired() {
            Err(OcfError::generic(format!(
                "timed out after {:.1}s: {what}",
                self.total.as_secs_f64()
            )))
        } else {
            Ok(())
        }
    }

    /// Poll `f` until it returns `Some`, sleeping `step` between tries (capped
    /// by the remaining time). Returns `None` when the deadline passes first.
    pub fn poll<T>(&self, step: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
        loop {
            if let Some(v) = f() {
                return Some(v);
            }
            let left = self.remaining();
            if left.is_zero() {
                return None;
            }
            std::thread::sleep(step.min(left));
        }
    }

    /// Sleep for `d` or until the deadline, whichever is sooner.
    pub fn sleep(&self, d: Duration) {
        std::thread::sleep(d.min(self.remaining()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_bounded() {
        let d = Deadline::from_timeout(Duration::from_secs(20));
        let r = d.remaining();
        assert!(
            r <= Duration::from_secs(19) && r > Duration::from_millis(18_500),
            "{r:?}"
        );
        let d = Deadline::from_timeout(Duration::from_millis(200));
        assert!(d.remaining() <= Duration::from_millis(100));
        let d = Deadline::from_timeout(Duration::from_secs(600));
        assert!(d.remaining() > Duration::from_secs(594));
    }

    #[test]
    fn poll_gives_up_at_deadline() {
        let d = Deadline::after(Duration::from_millis(30));
        let r: Option<()> = d.poll(Duration::from_millis(5), || None);
        assert!(r.is_none());
        assert!(d.expired());
        assert!(d.check("x").is_err());
        let mut n = 0;
        let r = Deadline::after(Duration::from_secs(5)).poll(Duration::from_millis(1), || {
            n += 1;
            (n == 3).then_some(n)
        });
        assert_eq!(r, Some(3));
    }
}
