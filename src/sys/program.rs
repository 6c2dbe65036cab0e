//! The one way to find a program: `PATH` first, then `/usr/sbin` and
//! `/sbin` (the NFS tools live there, and the `PATH` a cluster manager or
//! an administrator's shell gives may lack them).

use crate::ocf::{OcfError, OcfResult};
use std::path::PathBuf;
use std::process::Command;

/// Where `name` is, if anywhere.
pub fn find(name: &str) -> Option<PathBuf> {
    which::which(name).ok().or_else(|| {
        ["/usr/sbin", "/sbin"]
            .iter()
            .map(|d| PathBuf::from(d).join(name))
            .find(|p| p.is_file())
    })
}

/// `name`, or code 5 saying which `package` to install.
pub fn require(name: &str, package: &str) -> OcfResult<PathBuf> {
    find(name).ok_or_else(|| missing(name, package))
}

/// The one answer for a program that is not there: code 5, "`name` not
/// found (install `package`)".
pub fn missing(name: &str, package: &str) -> OcfError {
    OcfError::installed(format!("{name} not found (install {package})"))
}

/// A command running `name` as [`find`] finds it (as `name` when it is
/// nowhere, so that running it reports the program missing: code 5).
pub fn command(name: &str) -> Command {
    Command::new(find(name).unwrap_or_else(|| PathBuf::from(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_in_path_and_reports_missing_with_code_5() {
        assert!(find("sh").is_some());
        assert!(find("hanfs-no-such-program").is_none());
        let e = require("hanfs-no-such-program", "nfs-utils").unwrap_err();
        assert_eq!(e.code, crate::ocf::OcfCode::ErrInstalled);
        assert_eq!(
            e.reason,
            "hanfs-no-such-program not found (install nfs-utils)"
        );
    }
}
