//! nfs-export: one directory exported over kernel NFS to one or more
//! clients, with a stable fsid (OCF provider hanfs; meta-data in
//! metadata/nfs-export.xml).
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
    exportfs, ClientSpec, Export, ExportOptions, ExportTable, Exportfs, Fsid, TableStamp,
};
use hanfs::sys::nfsd::ProcRoots;
use hanfs::sys::storage::{self, DirProblem, Look};
use hanfs::sys::{bounded, fsfile};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

struct NfsExport;

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

/// What start exported, kept in the state file until stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct State {
    instance: String,
    /// The real path exported (symbolic links resolved).
    directory: PathBuf,
    /// Its file system's device at start (depth 10 checks it is unchanged).
    dev: u64,
    clients: Vec<StateClient>,
    fsid: Option<String>,
    /// The export table exportfs wrote to.
    etab: PathBuf,
    /// The version of that table the last good check read: while etab is
    /// unchanged, a monitor need not read it again (flat in its size).
    #[serde(default)]
    checked: Option<TableStamp>,
}

/// One client: as configured, and as etab names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StateClient {
    spec: String,
    etab: String,
}

impl State {
    fn fsid(&self) -> Option<Fsid> {
        self.fsid.as_deref().and_then(|f| Fsid::parse(f).ok())
    }
    fn etab_names(&self) -> Vec<String> {
        self.clients.iter().map(|c| c.etab.clone()).collect()
    }
}

/// The other nfs-export resources' states on this node.
fn other_states(ctx: &Ctx) -> Vec<State> {
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

/// Whether every client of `s` is exported as recorded. `Ok(Err(why))`
/// names the first one that is not.
fn check_exports(s: &State) -> OcfResult<Result<(), String>> {
    let names = s.etab_names();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let found = ExportTable::at(&s.etab).lookup(&s.directory, &refs)?;
    let want = s.fsid();
    for (c, e) in s.clients.iter().zip(found) {
        let Some(e) = e else {
            let also = if c.spec.eq_ignore_ascii_case(&c.etab) {
                String::new()
            } else {
                format!(" (as {})", c.etab)
            };
            return Ok(Err(format!(
                "{} is not exported to {}{also}",
                s.directory.display(),
                c.spec
            )));
        };
        if let (Some(w), got) = (want, e.fsid()) {
            if got != Some(w) {
                let got = got.map_or_else(|| "no fsid".to_string(), |g| format!("fsid={g}"));
                return Ok(Err(format!(
                    "{} is exported to {} with {got}, not fsid={w}",
                    s.directory.display(),
                    c.spec
                )));
            }
        }
    }
    Ok(Ok(()))
}

/// Refuse an export that would collide with another: the same fsid on a
/// different directory, or the same directory and client owned by another
/// running resource.
fn check_conflicts(ctx: &Ctx, s: &State, table: &[Export]) -> OcfResult<()> {
    if let Some(f) = s.fsid() {
        if let Some(e) = table
            .iter()
            .find(|e| e.directory != s.directory && e.fsid() == Some(f))
        {
            return Err(OcfError::configured(format!(
                "fsid={f} is already used by the export of {} to {}; every export needs its own fsid",
                e.directory.display(),
                e.client
            )));
        }
    }
    for other in other_states(ctx) {
        if other.directory != s.directory {
            continue;
        }
        for c in &s.clients {
            let theirs = other
                .clients
                .iter()
                .any(|o| o.etab.eq_ignore_ascii_case(&c.etab));
            if theirs && table.iter().any(|e| e.is(&s.directory, &c.etab)) {
                return Err(OcfError::configured(format!(
                    "{} is already exported to {} by resource {}",
                    s.directory.display(),
                    c.spec,
                    other.instance
                )));
            }
        }
    }
    Ok(())
}

fn describe(p: &DirProblem, dir: &Path) -> String {
    let shown = dir.display().to_string();
    let dir = hanfs::ocf::echo(&shown);
    match p {
        DirProblem::Loop => format!(
            "directory {dir}: too many levels of symbolic links on this node (a link loop?)"
        ),
        DirProblem::NameTooLong => format!(
            "directory {dir}: its real path (symbolic links resolved) is too long"
        ),
        DirProblem::Missing => format!("directory {dir} does not exist"),
        DirProblem::NotADirectory => format!("directory {dir} is not a directory"),
        DirProblem::OtherFileSystem { now, was } => format!(
            "directory {dir} is no longer on the file system it was exported from (device {now:#x}, was {was:#x}; unmounted under the export?)"
        ),
        DirProblem::TimedOut(m) => m.clone(),
        DirProblem::Io(m) => format!("directory {dir}: {m}"),
    }
}

/// Remove the exports of `dir` to `clients` that are in etab, and check
/// that they are gone. Returns how many were removed.
fn unexport(ctx: &Ctx, table: &ExportTable, dir: &Path, clients: &[String]) -> OcfResult<usize> {
    let present: Vec<String> = table
        .exports_of(dir)?
        .into_iter()
        .filter(|e| clients.iter().any(|c| e.client.eq_ignore_ascii_case(c)))
        .map(|e| e.client)
        .collect();
    if present.is_empty() {
        return Ok(0);
    }
    let out = Exportfs::find()?.unexport(dir, &present, &ctx.deadline)?;
    let still: Vec<String> = table
        .exports_of(dir)?
        .into_iter()
        .filter(|e| present.iter().any(|c| e.client.eq_ignore_ascii_case(c)))
        .map(|e| e.client)
        .collect();
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

/// Release the NFS locks held on the file system of `dir`, unless another
/// export of the same directory remains (its clients' locks would go too).
fn unlock(ctx: &Ctx, procs: &ProcRoots, table: &ExportTable, dir: &Path) -> OcfResult<()> {
    if !procs.nfsd_mounted() {
        log::info!(
            "nfsd is not running here: no NFS locks to release for {}",
            dir.display()
        );
        return Ok(());
    }
    let remaining = table.exports_of(dir)?;
    if !remaining.is_empty() {
        let who: Vec<&str> = remaining.iter().map(|e| e.client.as_str()).collect();
        log::warn!(
            "not releasing NFS locks on {}: it is still exported to {} (another resource)",
            dir.display(),
            who.join(" ")
        );
        return Ok(());
    }
    // The kernel looks the path up: on dead storage that blocks, so the
    // write happens in a child that the deadline can abandon.
    let what = format!("releasing NFS locks on {}", dir.display());
    let (p, d) = (procs.clone(), dir.to_path_buf());
    match bounded::run(&ctx.deadline, &what, move || {
        p.unlock_filesystem(&d).map_err(|e| e.reason)
    }) {
        Ok(()) => {
            log::info!(
                "released the NFS locks on the file system of {}",
                dir.display()
            );
            Ok(())
        }
        Err(e) if e.timed_out() => Err(e.into()),
        Err(e) => {
            log::warn!("releasing NFS locks on {} failed: {e}", dir.display());
            Ok(())
        }
    }
}

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

    /// This host has exportfs and an NFS state directory. The directory to
    /// export is deliberately not looked at: validate-all must pass on a
    /// node where the shared file system is not mounted (it is mounted on
    /// one node at a time, and `pcs resource create` validates wherever it
    /// runs); start checks it, with code 2 when it is missing here.
    fn needs_root(action: &Action) -> Option<&'static str> {
        matches!(action, Action::ValidateAll | Action::Start)
            .then_some("the agent changes the NFS export table")
    }

    fn validate(_ctx: &Ctx, _cfg: &Config) -> OcfResult<()> {
        Exportfs::find()?;
        let table = ExportTable::system();
        let state_dir = table.path().parent().unwrap_or(Path::new("/"));
        if !state_dir.is_dir() {
            return Err(OcfError::installed(format!(
                "NFS state directory {} does not exist (is nfs-utils installed?)",
                state_dir.display()
            )));
        }
        Ok(())
    }

    fn start(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        let exportfs = Exportfs::find()?;
        let table = ExportTable::system();
        let dir = match storage::probe(&cfg.directory, Look::Resolve, &ctx.deadline) {
            Ok(d) => d,
            Err(p @ DirProblem::Missing) => {
                return Err(OcfError::args(format!(
                    "{} on this node (is its file system mounted?)",
                    describe(&p, &cfg.directory)
                )))
            }
            Err(p @ (DirProblem::NotADirectory | DirProblem::Loop)) => {
                return Err(OcfError::args(describe(&p, &cfg.directory)))
            }
            Err(p @ DirProblem::NameTooLong) => {
                return Err(OcfError::configured(describe(&p, &cfg.directory)))
            }
            Err(p) => return Err(OcfError::generic(describe(&p, &cfg.directory))),
        };
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
        let mut clients = Vec::new();
        for c in &cfg.clients {
            let etab = match c.etab_name() {
                Some(n) => n,
                None => exportfs::canonical_name(&c.to_string(), &ctx.deadline)?,
            };
            clients.push(StateClient {
                spec: c.to_string(),
                etab,
            });
        }
        let state = State {
            instance: ctx.instance().to_string(),
            directory: dir.path.clone(),
            dev: dir.dev,
            clients,
            fsid: cfg.options.fsid.map(|f| f.to_string()),
            etab: table.path().to_path_buf(),
            checked: None,
        };
        // The check and the export are one critical section on the node:
        // two starts in parallel with one fsid (or one client) would both
        // pass the check before either exported. Held to the end of start.
        let _lock = ctx.node_lock()?;
        check_conflicts(ctx, &state, &table.read_all()?)?;

        // A state left by an earlier start with other parameters: take its
        // exports down first.
        if let Some(old) = ctx.load_state::<State>().unwrap_or(None) {
            let stale: Vec<String> = old
                .etab_names()
                .into_iter()
                .filter(|n| {
                    old.directory != state.directory
                        || !state.clients.iter().any(|c| c.etab.eq_ignore_ascii_case(n))
                })
                .collect();
            if !stale.is_empty() {
                log::info!(
                    "removing exports left by an earlier start: {} to {}",
                    old.directory.display(),
                    stale.join(" ")
                );
                unexport(ctx, &ExportTable::at(&old.etab), &old.directory, &stale)?;
            }
        }

        // Record first, so that a start that fails half-way is cleaned up
        // by the stop Pacemaker sends next.
        ctx.save_state(&state)?;
        let specs: Vec<String> = cfg.clients.iter().map(ToString::to_string).collect();
        let out = exportfs.export(
            &dir.path,
            &specs,
            cfg.options.to_arg().as_deref(),
            &ctx.deadline,
        )?;
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
        if let Err(why) = check_exports(&state)? {
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
            dir.path.display(),
            specs.join(" "),
            state
                .fsid
                .as_ref()
                .map(|f| format!(" (fsid={f})"))
                .unwrap_or_default()
        );
        Ok(())
    }

    fn stop(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        let state = ctx.load_state::<State>().unwrap_or_else(|e| {
            log::warn!("{e}; stopping by the configuration alone");
            None
        });
        let (dir, table) = match &state {
            Some(s) => (s.directory.clone(), ExportTable::at(&s.etab)),
            None => (cfg.directory.clone(), ExportTable::system()),
        };
        // Ours: what the state recorded, and what the configuration names
        // (a host name by the name etab recorded at start, else as given).
        let mut names: Vec<String> = state.as_ref().map(State::etab_names).unwrap_or_default();
        for c in &cfg.clients {
            let n = c.etab_name().unwrap_or_else(|| {
                state
                    .as_ref()
                    .and_then(|s| s.clients.iter().find(|sc| sc.spec == c.to_string()))
                    .map_or_else(|| c.to_string(), |sc| sc.etab.clone())
            });
            if !names.iter().any(|m| m.eq_ignore_ascii_case(&n)) {
                names.push(n);
            }
        }
        // Never what another resource on this node has started: a stop
        // after a refused start (same directory and client) would take the
        // owner's export down.
        for other in other_states(ctx).iter().filter(|o| o.directory == dir) {
            names.retain(|n| {
                let theirs = other.clients.iter().any(|o| o.etab.eq_ignore_ascii_case(n));
                if theirs {
                    log::info!(
                        "not removing the export of {} to {n}: resource {} owns it",
                        dir.display(),
                        other.instance
                    );
                }
                !theirs
            });
        }
        let exported = table
            .exports_of(&dir)?
            .iter()
            .any(|e| names.iter().any(|n| e.client.eq_ignore_ascii_case(n)));
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

        let procs = ProcRoots::default();
        let lease_wait = if cfg.wait_for_leasetime_on_stop && procs.nfsd_mounted() {
            let lease = procs.lease_time().unwrap_or_else(|e| {
                log::warn!("{e}; assuming the default NFSv4 lease of 90s");
                90
            });
            let wait = Duration::from_secs(u64::from(lease) + 2);
            // Leave a little for the rest of stop.
            if wait + Duration::from_secs(2) > ctx.deadline.remaining() {
                return Err(OcfError::generic(format!(
                    "wait_for_leasetime_on_stop needs {}s (NFSv4 lease {lease}s + 2s) but the stop timeout leaves {}s: raise the stop timeout",
                    wait.as_secs(),
                    ctx.deadline.remaining().as_secs()
                )));
            }
            Some(wait)
        } else {
            if cfg.wait_for_leasetime_on_stop {
                log::info!("nfsd is not running here: no NFSv4 lease to wait for");
            }
            None
        };

        unexport(ctx, &table, &dir, &names)?;
        if cfg.unlock_on_stop {
            unlock(ctx, &procs, &table, &dir)?;
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
        let Some(state) = ctx.load_state::<State>()? else {
            // Not started here (or the node rebooted: /run is empty, etab on
            // disk may still list the export). Say so if etab has one.
            if let Ok(left) = ExportTable::system().exports_of(&cfg.directory) {
                let ours: Vec<&str> = left
                    .iter()
                    .map(|e| e.client.as_str())
                    .filter(|c| {
                        cfg.clients
                            .iter()
                            .any(|s| s.etab_name().is_some_and(|n| n.eq_ignore_ascii_case(c)))
                    })
                    .collect();
                if !ours.is_empty() {
                    log::info!(
                        "{} is in the export table for {} but not started by this resource here (leftover, or another resource)",
                        cfg.directory.display(),
                        ours.join(" ")
                    );
                }
            }
            return Err(OcfError::not_running(format!(
                "{} is not exported by this resource here",
                cfg.directory.display()
            )));
        };
        let table = ExportTable::at(&state.etab);
        let stamp = table.stamp()?;
        if stamp.is_none() || stamp != state.checked {
            if let Err(why) = check_exports(&state)? {
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
        if ctx.check_level() >= 10 {
            let unchanged = Look::Unchanged { dev: state.dev };
            if let Err(p) = storage::probe(&state.directory, unchanged, &ctx.deadline) {
                return Err(OcfError::generic(describe(&p, &state.directory)));
            }
        }
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    hanfs::ocf::run::<NfsExport>()
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

    #[test]
    fn state_round_trips() {
        let s = State {
            instance: "exp1".into(),
            directory: "/srv/a b".into(),
            dev: 2049,
            clients: vec![StateClient {
                spec: "client1".into(),
                etab: "client1.example.test".into(),
            }],
            fsid: Some("3f1b8b8c-1234-4cde-8a00-aaaaaaaaaaaa".into()),
            etab: "/var/lib/nfs/etab".into(),
            checked: None,
        };
        let back: State = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert!(matches!(back.fsid(), Some(Fsid::Uuid(_))));
    }

    #[test]
    fn exports_are_checked_against_the_state() {
        let d = tempfile::tempdir().unwrap();
        let etab = d.path().join("etab");
        std::fs::write(
            &etab,
            "/srv/a\t192.0.2.0/24(rw,sync,fsid=7)\n/srv/a\tclient1.example.test(rw,fsid=7)\n/srv/a\t*(rw,fsid=8)\n",
        )
        .unwrap();
        let mut s = State {
            instance: "x".into(),
            directory: "/srv/a".into(),
            dev: 1,
            clients: vec![
                StateClient {
                    spec: "192.0.2.0/24".into(),
                    etab: "192.0.2.0/24".into(),
                },
                StateClient {
                    spec: "client1".into(),
                    etab: "CLIENT1.example.test".into(),
                },
            ],
            fsid: Some("7".into()),
            etab: etab.clone(),
            checked: None,
        };
        assert_eq!(check_exports(&s).unwrap(), Ok(()));
        s.clients.push(StateClient {
            spec: "*".into(),
            etab: "*".into(),
        });
        let why = check_exports(&s).unwrap().unwrap_err();
        assert!(why.contains("with fsid=8, not fsid=7"), "{why}");
        s.clients[2] = StateClient {
            spec: "@ng".into(),
            etab: "@ng".into(),
        };
        let why = check_exports(&s).unwrap().unwrap_err();
        assert_eq!(why, "/srv/a is not exported to @ng");
        s.clients.pop();
        s.fsid = None;
        s.directory = "/srv".into();
        assert!(check_exports(&s).unwrap().is_err());
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
