//! nfs-export: one directory exported over kernel NFS to one or more
//! clients, with a stable fsid (OCF provider hanfs; meta-data in
//! metadata/nfs-export.xml). The mechanism is in `hanfs::sys::exports`:
//! etab, exportfs, client names, the locks a stop releases, and what a
//! resource recorded (`ExportRecord`: conflicts, what a stop removes).
//!
//! - start: resolve the directory (in a child: storage may hang), name each
//!   client as etab will, refuse conflicts, record the state, run exportfs,
//!   then read etab back: success only if every client is there with our
//!   fsid.
//! - monitor: the state file says whether this resource is meant to run
//!   here (it lives on tmpfs, so it is gone after a reboot); etab, read
//!   in-process, says whether the exports are there. Depth 10 also asks the
//!   directory, from a child with a deadline.
//! - stop: remove this resource's exports only, release locks, optionally
//!   wait out the NFSv4 lease, forget the state; all within the timeout.

use hanfs::ocf::{self, Action, Agent, Ctx, OcfError, OcfResult, Params};
use hanfs::sys::exports::{
    locks, record, ClientSpec, ExportClient, ExportOptions, ExportRecord, ExportTable, Exportfs,
    Fsid,
};
use hanfs::sys::fsfile;
use hanfs::sys::nfsd::ProcRoots;
use hanfs::sys::storage::{self, DirProblem, Look};
use std::path::{Path, PathBuf};

struct NfsExport;

impl Agent for NfsExport {
    type Config = Config;
    const NAME: &'static str = "nfs-export";
    const METADATA: &'static str = include_str!("../metadata/nfs-export.xml");

    fn configure(p: &Params) -> OcfResult<Config> {
        let directory = p.abs_dir("directory")?;
        let clients = p.value("clientspec", ClientSpec::parse_list)?;
        let options = p.optional("options", ExportOptions::parse)?;
        let fsid = p.optional("fsid", Fsid::parse)?;
        Ok(Config {
            directory,
            clients,
            options: (options.unwrap_or_default().with_fsid(fsid))
                .map_err(|why| p.invalid("fsid", why))?,
            unlock_on_stop: p.bool("unlock_on_stop")?,
            wait_for_leasetime_on_stop: p.bool("wait_for_leasetime_on_stop")?,
        })
    }

    fn needs_root(action: &Action) -> Option<&'static str> {
        matches!(action, Action::ValidateAll | Action::Start)
            .then_some("the agent changes the NFS export table")
    }

    /// This host has exportfs and an NFS state directory. The directory to
    /// export is deliberately not looked at: validate-all must pass on a
    /// node where the shared file system is not mounted (it is mounted on
    /// one node at a time, and `pcs resource create` validates wherever it
    /// runs); start checks it, with code 2 when it is missing here.
    fn validate(_ctx: &Ctx, _cfg: &Config) -> OcfResult<()> {
        Exportfs::find()?;
        ExportTable::system().check_state_dir()
    }

    fn start(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        let exportfs = Exportfs::find()?;
        let table = ExportTable::system();
        // 1. The directory, symbolic links resolved (in a child: the
        //    storage may hang); each client as etab will name it.
        let dir = match storage::probe(&cfg.directory, Look::Resolve, &ctx.deadline) {
            Ok(d) => d,
            Err(p) => return Err(directory_error(&p, &cfg.directory, true)),
        };
        //    Its storage answers, as the depth-10 monitor checks: a start
        //    on hung storage fails (within half its timeout), so after such
        //    a monitor failure the cluster moves the service rather than
        //    restarting the export in place for ever.
        if let Err(p) = storage::answers(&dir.path, dir.dev, &ctx.deadline) {
            return Err(directory_error(&p, &cfg.directory, true));
        }
        if dir.path != cfg.directory {
            log::info!(
                "directory {} is {}",
                cfg.directory.display(),
                dir.path.display()
            );
        }
        if cfg.options.fsid.is_none() {
            log::warn!(
                "no fsid set for {}: its file handles depend on this node's device numbers, and clients may get stale file handles after a failover",
                dir.path.display()
            );
        }
        let clients = (cfg.clients.iter())
            .map(|c| ExportClient::name(c, &ctx.deadline))
            .collect::<OcfResult<Vec<_>>>()?;
        let state = ExportRecord {
            instance: ctx.instance().to_string(),
            directory: dir.path.clone(),
            dev: dir.dev,
            clients,
            fsid: cfg.options.fsid.map(|f| f.to_string()),
            etab: table.path().to_path_buf(),
            checked: None,
        };

        // 2. No collision with another export. The check and the export
        //    are one critical section on the node: two starts in parallel
        //    with one fsid (or one client) would both pass the check before
        //    either exported. Held to the end of start.
        let _lock = ctx.node_lock()?;
        let exports = table.read_all()?;
        state.check_fsid(&exports)?;
        state.check_owners(&exports, &other_states(ctx))?;

        // 3. Exports left by an earlier start with other parameters go.
        if let Some(old) = ctx.load_state::<ExportRecord>().unwrap_or(None) {
            remove_stale(ctx, &exportfs, &old, &state)?;
        }

        // 4. Record first, so that a start that fails half-way is cleaned
        //    up by the stop Pacemaker sends next; then export, and read
        //    etab back.
        ctx.save_state(&state)?;
        exportfs.add(
            &table,
            &dir.path,
            &state.clients,
            &cfg.options,
            &ctx.deadline,
        )
    }

    fn stop(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        // 1. What was exported is what the state says (the parameters may
        //    have changed since), and what the configuration names.
        let state = ctx.load_state::<ExportRecord>().unwrap_or_else(|e| {
            log::warn!("{e}; stopping by the configuration alone");
            None
        });
        let (dir, table) = match &state {
            Some(s) => (s.directory.clone(), ExportTable::at(&s.etab)),
            None => (cfg.directory.clone(), ExportTable::system()),
        };
        let others = other_states(ctx);
        let names = record::stop_names(&cfg.clients, state.as_ref(), &others, &dir);

        // 2. Nothing of ours exported: nothing to do.
        let exported = !table.clients_of(&dir, &names)?.is_empty();
        if state.is_none() && !exported {
            log::debug!("{} is not exported by this resource here", dir.display());
            // A damaged state file (unreadable, a FIFO) goes too.
            return fsfile::remove_state(&ctx.state_file());
        }
        if state.is_none() {
            log::info!(
                "{} is exported without a state file (left from before a reboot?): removing",
                dir.display()
            );
        }

        // 3. A lease wait that cannot fit fails now, before anything changes.
        let procs = ProcRoots::default();
        let lease_wait = match cfg.wait_for_leasetime_on_stop {
            true => locks::lease_wait(&procs, &ctx.deadline)?,
            false => None,
        };

        // 4. Unexport, release the locks, wait out the leases, forget.
        Exportfs::find()?.remove(&table, &dir, &names, &ctx.deadline)?;
        if cfg.unlock_on_stop {
            locks::release(&procs, &table, &dir, &ctx.deadline)?;
        }
        if let Some(w) = lease_wait {
            log::info!(
                "waiting {}s for NFSv4 leases on {} to expire",
                w.as_secs(),
                dir.display()
            );
            ctx.deadline.sleep(w);
        }
        fsfile::remove_state(&ctx.state_file())
    }

    fn monitor(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        // 1. Started here: the state says so (gone after a reboot).
        let Some(state) = ctx.load_state::<ExportRecord>()? else {
            return Err(not_started_here(cfg));
        };

        // 2. Every client exported with our fsid; not read again while
        //    etab is the version the last good check read.
        let table = ExportTable::at(&state.etab);
        let stamp = table.stamp()?;
        if stamp.is_none() || stamp != state.checked {
            if let Err(why) = table.verify(&state.directory, &state.clients, state.fsid())? {
                return Err(OcfError::generic(why));
            }
            // Read again after the check: a table replaced meanwhile gets
            // checked next time.
            if stamp == table.stamp()? {
                let mut checked = state.clone();
                checked.checked = stamp;
                if let Err(e) = ctx.save_state(&checked) {
                    log::debug!("cannot record the checked table: {e}");
                }
            }
        }

        // 3. Depth 10: the directory still answers, on the same file
        //    system, and so does the storage under it; hung storage is
        //    said within half the monitor's timeout, not at its end.
        if ctx.check_level() >= 10 {
            if let Err(p) = storage::answers(&state.directory, state.dev, &ctx.deadline) {
                return Err(directory_error(&p, &state.directory, false));
            }
        }
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    hanfs::ocf::run::<NfsExport>()
}

/// The checked parameters.
#[derive(Debug)]
struct Config {
    /// As configured (absolute, tidied; symbolic links not yet resolved).
    directory: PathBuf,
    clients: Vec<ClientSpec>,
    options: ExportOptions,
    unlock_on_stop: bool,
    wait_for_leasetime_on_stop: bool,
}

/// The other nfs-export resources' states on this node.
fn other_states(ctx: &Ctx) -> Vec<ExportRecord> {
    ctx.other_instances()
        .into_iter()
        .filter_map(|f| {
            ocf::load_state(&f.path).unwrap_or_else(|e| {
                log::warn!("ignoring another resource's state: {e}");
                None
            })
        })
        .collect()
}

/// Take down what an earlier start (`old`) exported that `new` does not.
fn remove_stale(
    ctx: &Ctx,
    exportfs: &Exportfs,
    old: &ExportRecord,
    new: &ExportRecord,
) -> OcfResult<()> {
    let stale = old.stale(new);
    if stale.is_empty() {
        return Ok(());
    }
    log::info!(
        "removing exports left by an earlier start: {} to {}",
        old.directory.display(),
        stale.join(" ")
    );
    let table = ExportTable::at(&old.etab);
    exportfs.remove(&table, &old.directory, &stale, &ctx.deadline)?;
    Ok(())
}

/// Monitor without a state: not started here (or the node rebooted: /run
/// is empty, etab on disk may still list the export). Say so if etab has
/// one.
fn not_started_here(cfg: &Config) -> OcfError {
    let names: Vec<String> = cfg
        .clients
        .iter()
        .filter_map(ClientSpec::etab_name)
        .collect();
    if let Ok(ours) = ExportTable::system().clients_of(&cfg.directory, &names) {
        if !ours.is_empty() {
            log::info!(
                "{} is in the export table for {} but not started by this resource here (leftover, or another resource)",
                cfg.directory.display(),
                ours.join(" ")
            );
        }
    }
    OcfError::not_running(format!(
        "{} is not exported by this resource here",
        cfg.directory.display()
    ))
}

/// Why the directory cannot be exported (`at_start`) or is no longer
/// usable (monitor), with the code for it: at start missing here, not a
/// directory or a link loop is this node's problem (2), a real path too
/// long is the configuration's (6).
fn directory_error(p: &DirProblem, dir: &Path, at_start: bool) -> OcfError {
    let why = p.reason("directory", dir);
    match p {
        _ if !at_start => OcfError::generic(why),
        DirProblem::Missing => {
            OcfError::args(format!("{why} on this node (is its file system mounted?)"))
        }
        DirProblem::NotADirectory | DirProblem::Loop => OcfError::args(why),
        DirProblem::NameTooLong => OcfError::configured(why),
        _ => OcfError::generic(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hanfs::ocf::{Metadata, OcfCode};

    fn params(vars: &[(&str, &str)]) -> Params {
        let meta = Metadata::parse(NfsExport::METADATA).unwrap();
        Params::from_vars(
            &meta,
            vars.iter()
                .map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.to_string())),
        )
    }

    fn configure(vars: &[(&str, &str)]) -> OcfResult<Config> {
        let p = params(vars);
        p.check_declared().and_then(|()| NfsExport::configure(&p))
    }

    #[test]
    fn code_and_description_agree() {
        hanfs::ocf::check_description_matches_code::<NfsExport>(&[
            ("directory", "/srv/a"),
            ("clientspec", "*"),
        ])
        .unwrap();
    }

    #[test]
    fn configuration() {
        let c = configure(&[
            ("directory", "/srv//nfs/a/"),
            (
                "clientspec",
                "192.0.2.5/24 [2001:db8::]/32 @ng *.example.com *",
            ),
            ("options", "rw,no_root_squash"),
            ("fsid", "root"),
        ])
        .unwrap();
        assert_eq!(c.directory, Path::new("/srv/nfs/a"));
        let specs: Vec<String> = c.clients.iter().map(ToString::to_string).collect();
        assert_eq!(
            specs,
            ["192.0.2.0/24", "2001:db8::/32", "@ng", "*.example.com", "*"]
        );
        assert_eq!(
            c.options.to_arg().as_deref(),
            Some("rw,no_root_squash,fsid=0")
        );
        assert!(c.unlock_on_stop, "default true");
        assert!(!c.wait_for_leasetime_on_stop, "default false");
    }

    #[test]
    fn bad_configurations_are_6_naming_the_parameter() {
        for (vars, needle) in [
            (vec![("directory", "/srv/a")], "clientspec"),
            (vec![("clientspec", "*")], "directory"),
            (
                vec![("directory", "srv/a"), ("clientspec", "*")],
                "directory",
            ),
            (
                vec![("directory", "/srv/a"), ("clientspec", "host(rw)")],
                "clientspec",
            ),
            (
                vec![
                    ("directory", "/srv/a"),
                    ("clientspec", "*"),
                    ("fsid", "twelve"),
                ],
                "fsid",
            ),
            (
                vec![
                    ("directory", "/srv/a"),
                    ("clientspec", "*"),
                    ("options", "fsid=1"),
                    ("fsid", "2"),
                ],
                "conflicts",
            ),
            (
                vec![
                    ("directory", "/srv/a"),
                    ("clientspec", "*"),
                    ("options", "rw,,sync"),
                ],
                "options",
            ),
            (
                vec![
                    ("directory", "/srv/a"),
                    ("clientspec", "*"),
                    ("unlock_on_stop", "maybe"),
                ],
                "unlock_on_stop",
            ),
        ] {
            let e = configure(&vars).unwrap_err();
            assert_eq!(e.code, OcfCode::ErrConfigured, "{vars:?}: {e}");
            assert!(e.reason.contains(needle), "{vars:?}: {e}");
        }
    }

    /// Start blames the node (2) for what another node may not have, the
    /// configuration (6) for what no node can; a monitor says 1.
    #[test]
    fn directory_problems_get_their_codes() {
        let dir = Path::new("/srv/a");
        for (p, code) in [
            (DirProblem::Missing, OcfCode::ErrArgs),
            (DirProblem::NotADirectory, OcfCode::ErrArgs),
            (DirProblem::Loop, OcfCode::ErrArgs),
            (DirProblem::NameTooLong, OcfCode::ErrConfigured),
            (DirProblem::Io("EIO".into()), OcfCode::ErrGeneric),
            (
                DirProblem::TimedOut("timed out".into()),
                OcfCode::ErrGeneric,
            ),
        ] {
            assert_eq!(directory_error(&p, dir, true).code, code, "{p:?}");
            assert_eq!(directory_error(&p, dir, false).code, OcfCode::ErrGeneric);
        }
        let e = directory_error(&DirProblem::Missing, dir, true);
        assert_eq!(
            e.reason,
            "directory /srv/a does not exist on this node (is its file system mounted?)"
        );
    }

    /// Issue 14, 8: an exit reason echoes at most a capped part of a
    /// value; a directory over PATH_MAX, or with a component over
    /// NAME_MAX, is wrong everywhere (6), naming the parameter.
    #[test]
    fn long_values_are_6_and_echoed_capped() {
        let long = format!("/{}", "x".repeat(5000));
        let e = configure(&[("directory", &long), ("clientspec", "*")]).unwrap_err();
        assert_eq!(e.code, OcfCode::ErrConfigured, "{e}");
        assert!(e.reason.contains("directory"), "{e}");
        assert!(e.reason.len() < 400, "{} bytes: {e}", e.reason.len());
        let comp = format!("/srv/{}", "y".repeat(300));
        let e = configure(&[("directory", &comp), ("clientspec", "*")]).unwrap_err();
        assert_eq!(e.code, OcfCode::ErrConfigured, "{e}");
        assert!(
            e.reason.contains("directory") && e.reason.len() < 500,
            "{e}"
        );
        for (k, v) in [
            ("directory", format!("rel/{}", "z".repeat(5000))),
            ("clientspec", format!("host({})", "r".repeat(5000))),
            ("options", format!("rw,{}x y", "o".repeat(5000))),
            ("fsid", "9".repeat(5000) + "q"),
            ("unlock_on_stop", "t".repeat(5000)),
        ] {
            let mut vars = vec![("directory", "/srv/a"), ("clientspec", "*")];
            vars.retain(|(n, _)| *n != k);
            vars.push((k, &v));
            let e = configure(&vars).unwrap_err();
            assert_eq!(e.code, OcfCode::ErrConfigured, "{k}: {e}");
            assert!(e.reason.contains(k), "{k}: {e}");
            assert!(e.reason.len() < 400, "{k}: {} bytes: {e}", e.reason.len());
        }
    }

    /// The one path rule (`ocf::abs_path`): tidied, not resolved, and
    /// (since it is one rule for every agent) neither `/` nor `..`.
    #[test]
    fn directories_are_tidied_not_resolved() {
        let dir = |d: &str| configure(&[("directory", d), ("clientspec", "*")]);
        assert_eq!(dir("/a//b/./c/").unwrap().directory, Path::new("/a/b/c"));
        assert!(dir("/").unwrap_err().reason.contains("root directory"));
        assert!(dir("/a/../b").unwrap_err().reason.contains("'..'"));
        assert!(dir("a/b").is_err());
    }
}
