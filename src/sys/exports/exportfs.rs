//! Running `exportfs` (nfs-utils) to add and remove exports, within a
//! deadline.
//!
//! What exportfs does that shapes this module (nfs-utils 2.6, checked on
//! Debian 12):
//! - `exportfs -o OPTS client:/dir` adds or replaces one export in etab and
//!   flushes the kernel's export cache; several `client:/dir` may follow
//!   one `-o`, and etab is rewritten once.
//! - An IPv6 client must be bracketed (`[2001:db8::/32]:/dir`).
//! - A host name that does not resolve is skipped with a warning and exit
//!   status 0; so success is only ever judged by reading etab afterwards.
//! - Without `-i`, `/etc/exports` is read and its options for the same
//!   client and directory are merged in; `-i` makes the export exactly
//!   what the resource says.
//! - Exporting stats the directory (and hangs on dead storage);
//!   unexporting does not.

use super::{ExportClient, ExportOptions, ExportTable};
use crate::ocf::{Deadline, OcfError, OcfResult};
use crate::sys::process::{self, CmdOutput};
use crate::sys::program;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `exportfs` program.
#[derive(Debug, Clone)]
pub struct Exportfs {
    program: PathBuf,
}

impl Exportfs {
    /// Find exportfs ([`program::find`]); code 5 if absent.
    pub fn find() -> OcfResult<Exportfs> {
        let program = program::require("exportfs", "nfs-utils / nfs-kernel-server")?;
        Ok(Exportfs { program })
    }

    pub fn at(program: impl Into<PathBuf>) -> Exportfs {
        Exportfs {
            program: program.into(),
        }
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    /// `exportfs -i [-o options] -- client:dir ...` (clients in etab form).
    pub fn export(
        &self,
        dir: &Path,
        clients: &[String],
        options: Option<&str>,
        deadline: &Deadline,
    ) -> OcfResult<CmdOutput> {
        let mut cmd = Command::new(&self.program);
        cmd.arg("-i");
        if let Some(o) = options {
            cmd.arg("-o").arg(o);
        }
        cmd.arg("--");
        for c in clients {
            cmd.arg(super::client::exportfs_arg(c, dir));
        }
        process::run(&mut cmd, deadline)
    }

    /// `exportfs -u -- client:dir ...` (clients in etab form).
    pub fn unexport(
        &self,
        dir: &Path,
        clients: &[String],
        deadline: &Deadline,
    ) -> OcfResult<CmdOutput> {
        let mut cmd = Command::new(&self.program);
        cmd.args(["-u", "--"]);
        for c in clients {
            cmd.arg(super::client::exportfs_arg(c, dir));
        }
        process::run(&mut cmd, deadline)
    }
}

impl Exportfs {
    /// Export `dir` to `clients` with `options`, and read etab back: done
    /// only when every client is there with the fsid asked for (exportfs
    /// skips an unresolvable host and still exits 0). Options exportfs
    /// rejects are a configuration error (6).
    pub fn add(
        &self,
        table: &ExportTable,
        dir: &Path,
        clients: &[ExportClient],
        options: &ExportOptions,
        deadline: &Deadline,
    ) -> OcfResult<()> {
        let specs: Vec<String> = clients.iter().map(|c| c.spec.clone()).collect();
        let out = self.export(dir, &specs, options.to_arg().as_deref(), deadline)?;
        if !out.success() {
            let words = out.last_words();
            if words.contains("unknown keyword") || words.contains("bad ") {
                return Err(OcfError::configured(format!(
                    "options: exportfs rejects them: {words}"
                )));
            }
            return Err(OcfError::generic(format!(
                "exportfs failed ({}): {words}",
                out.status
            )));
        }
        if let Err(why) = table.verify(dir, clients, options.fsid)? {
            let words = out.last_words();
            let words = if words.is_empty() {
                "exportfs gave no reason".to_string()
            } else {
                format!("exportfs said: {words}")
            };
            return Err(OcfError::generic(format!("{why} after exportfs ({words})")));
        }
        log::info!(
            "exported {} to {}{}",
            dir.display(),
            specs.join(" "),
            options
                .fsid
                .map(|f| format!(" (fsid={f})"))
                .unwrap_or_default()
        );
        Ok(())
    }

    /// Remove the exports of `dir` to those of `clients` (etab names) that
    /// `table` lists, and check that they are gone. Returns how many were
    /// removed.
    pub fn remove(
        &self,
        table: &ExportTable,
        dir: &Path,
        clients: &[String],
        deadline: &Deadline,
    ) -> OcfResult<usize> {
        let present = table.clients_of(dir, clients)?;
        if present.is_empty() {
            return Ok(0);
        }
        let out = self.unexport(dir, &present, deadline)?;
        let still = table.clients_of(dir, &present)?;
        if !still.is_empty() {
            return Err(OcfError::generic(format!(
                "{} is still exported to {} after exportfs -u: {}",
                dir.display(),
                still.join(" "),
                out.last_words()
            )));
        }
        log::info!("unexported {} from {}", dir.display(), present.join(" "));
        Ok(present.len())
    }
}

/// The canonical name of host `name`, as exportfs records it in etab: the
/// resolver's canonical name (`getaddrinfo` with `AI_CANONNAME`, which is
/// what `getent ahosts` prints on its first line). Runs `getent` so that a
/// dead name server is bounded by the deadline. A name that does not
/// resolve is an error (code 1: name service may come back).
pub fn canonical_name(name: &str, deadline: &Deadline) -> OcfResult<String> {
    let out = process::run(program::command("getent").args(["ahosts", name]), deadline)?;
    if !out.success() {
        return Err(OcfError::generic(format!(
            "clientspec {name} does not resolve on this node (getent ahosts: exit {})",
            out.status.code().unwrap_or(-1)
        )));
    }
    Ok(parse_ahosts(&out.stdout).unwrap_or_else(|| name.to_string()))
}

/// First line of `getent ahosts`: `ADDRESS SOCKTYPE [CANONNAME]`.
fn parse_ahosts(out: &str) -> Option<String> {
    out.lines()
        .next()?
        .split_whitespace()
        .nth(2)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ahosts_first_line_has_the_canonical_name() {
        let out = "192.0.2.11      STREAM Client2.Example.Test\n192.0.2.11      DGRAM  \n";
        assert_eq!(parse_ahosts(out).as_deref(), Some("Client2.Example.Test"));
        assert_eq!(
            parse_ahosts("192.0.2.12      STREAM 192.0.2.12\n").as_deref(),
            Some("192.0.2.12")
        );
        assert_eq!(parse_ahosts("192.0.2.12      STREAM\n"), None);
        assert_eq!(parse_ahosts(""), None);
    }
}
