use super::OcfCode;
use std::fmt;

/// An error that knows its OCF exit code. Its message becomes the exit
/// reason: one line, naming the parameter or object and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcfError {
    pub code: OcfCode,
    pub reason: String,
}

pub type OcfResult<T> = Result<T, OcfError>;

impl OcfError {
    pub fn new(code: OcfCode, reason: impl Into<String>) -> Self {
        let reason: String = reason.into();
        // An exit reason is one line.
        let reason = reason.replace('\n', " ");
        OcfError { code, reason }
    }
    /// 1: something failed here and may work after recovery.
    pub fn generic(reason: impl Into<String>) -> Self {
        Self::new(OcfCode::ErrGeneric, reason)
    }
    /// 2: the configuration cannot work on this host.
    pub fn args(reason: impl Into<String>) -> Self {
        Self::new(OcfCode::ErrArgs, reason)
    }
    /// 4: not permitted (e.g. not root).
    pub fn perm(reason: impl Into<String>) -> Self {
        Self::new(OcfCode::ErrPerm, reason)
    }
    /// 5: a program or kernel facility is missing on this host.
    pub fn installed(reason: impl Into<String>) -> Self {
        Self::new(OcfCode::ErrInstalled, reason)
    }
    /// 6: the configuration is wrong everywhere.
    pub fn configured(reason: impl Into<String>) -> Self {
        Self::new(OcfCode::ErrConfigured, reason)
    }
    /// 7: (monitor) cleanly not running.
    pub fn not_running(reason: impl Into<String>) -> Self {
        Self::new(OcfCode::NotRunning, reason)
    }
    /// 190: (monitor) running, but the administrator must look: shown
    /// with its reason, nothing recovered.
    pub fn degraded(reason: impl Into<String>) -> Self {
        Self::new(OcfCode::Degraded, reason)
    }
    pub fn unimplemented(reason: impl Into<String>) -> Self {
        Self::new(OcfCode::Unimplemented, reason)
    }
    pub fn is_not_running(&self) -> bool {
        self.code == OcfCode::NotRunning
    }
}

/// Items as an exit reason lists them: "a, b, c" when at most `max`, else
/// the first `max` and "+N more" (a reason is one short line).
pub fn listed<S: AsRef<str>>(items: &[S], max: usize) -> String {
    let mut v: Vec<&str> = items.iter().take(max).map(AsRef::as_ref).collect();
    let more = format!("+{} more", items.len().saturating_sub(max));
    if items.len() > max {
        v.push(&more);
    }
    v.join(", ")
}

/// The most characters of a value an exit reason echoes.
pub const ECHO_MAX: usize = 128;

/// A value as an exit reason may echo it: whole when short, else its first
/// [`ECHO_MAX`] characters and an ellipsis (a parameter can be of any
/// length; an exit reason is one short line).
pub fn echo(v: &str) -> std::borrow::Cow<'_, str> {
    match v.char_indices().nth(ECHO_MAX) {
        None => v.into(),
        Some((i, _)) => format!("{}…", &v[..i]).into(),
    }
}

impl fmt::Display for OcfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for OcfError {}

/// Attach an OCF code and a message to any displayable error:
/// `fs::read(p).ocf(OcfCode::ErrGeneric, || format!("cannot read {p}"))?`
/// gives "cannot read /x: No such file or directory".
pub trait ResultExt<T> {
    fn ocf<S: Into<String>>(self, code: OcfCode, what: impl FnOnce() -> S) -> OcfResult<T>;
    /// Shorthand for code 1.
    fn or_generic<S: Into<String>>(self, what: impl FnOnce() -> S) -> OcfResult<T>
    where
        Self: Sized,
    {
        self.ocf(OcfCode::ErrGeneric, what)
    }
}

impl<T, E: fmt::Display> ResultExt<T> for Result<T, E> {
    fn ocf<S: Into<String>>(self, code: OcfCode, what: impl FnOnce() -> S) -> OcfResult<T> {
        self.map_err(|e| OcfError::new(code, format!("{}: {}", what().into(), e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_capped() {
        assert_eq!(listed(&["a", "b"], 2), "a, b");
        assert_eq!(listed(&["a", "b", "c"], 2), "a, b, +1 more");
        assert_eq!(listed::<&str>(&[], 2), "");
    }

    #[test]
    fn echo_caps_long_values() {
        assert_eq!(echo("short"), "short");
        let v = "é".repeat(ECHO_MAX);
        assert_eq!(echo(&v), v, "exactly the cap: whole");
        let long = format!("{v}tail");
        assert_eq!(echo(&long), format!("{v}…"));
        assert_eq!(
            format!("{:?}", echo(&"x".repeat(10_000))).chars().count(),
            ECHO_MAX + 3
        );
    }
}
