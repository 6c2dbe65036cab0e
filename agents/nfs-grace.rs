//! nfs-grace: this node's kernel NFS server, started so that the clients
//! arriving with an HA NFS service get a grace period to reclaim their
//! state, with the service's timers, NFSv4 client-recovery records
//! (nfsdcld on shared storage) and server scope; stopped so that the
//! service's file system can be unmounted. See metadata/nfs-grace.xml.
//!
//! One node, one nfsd, one nfsdcld, one database: when several services
//! share a node, nfsdcld serves the recovery_dir of the one that came
//! first (the node's "serving" database); the records of each service that
//! joins are merged into it before nfsd restarts, and it is copied back to
//! every other service's recovery_dir after the start, at each monitor and
//! at stop, so that each service carries its clients' records when it
//! leaves or its node fails.

use hanfs::ocf::{self, Action, Agent, Ctx, OcfCode, OcfError, OcfResult, Params, ResultExt};
use hanfs::sys::bounded;
use hanfs::sys::exports::ExportTable;
use hanfs::sys::fsfile;
use hanfs::sys::nfsd::server::{self, ServerSettings};
use hanfs::sys::nfsd::{cld, records};
use hanfs::sys::nfsd::{mounts, GraceState, NfsdVersions, ProcRoots};
use hanfs::sys::procs::{self, ProcId};
use hanfs::sys::storage::{self, DirProblem, Look};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The checked parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Config {
    /// What nfsd runs with: shared by every nfs-grace resource on a node.
    node: NodeSettings,
    /// This service's client-recovery records (on its shared storage).
    recovery_dir: PathBuf,
    threads: u32,
    end_grace_early: bool,
}

/// The settings one nfsd (one node) can have only once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct NodeSettings {
    lease_time: u32,
    grace_time: u32,
    nlm_grace_time: u32,
    server_scope: String,
}

impl NodeSettings {
    /// The first parameter in which `other` differs, as "name=ours vs theirs".
    fn difference(&self, other: &NodeSettings) -> Option<String> {
        let d = |n: &str, a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| {
            format!("{n}={a:?} here, {b:?} there")
        };
        if self.lease_time != other.lease_time {
            return Some(d("lease_time", &self.lease_time, &other.lease_time));
        }
        if self.grace_time != other.grace_time {
            return Some(d("grace_time", &self.grace_time, &other.grace_time));
        }
        if self.nlm_grace_time != other.nlm_grace_time {
            return Some(d(
                "nlm_grace_time",
                &self.nlm_grace_time,
                &other.nlm_grace_time,
            ));
        }
        if self.server_scope != other.server_scope {
            return Some(d("server_scope", &self.server_scope, &other.server_scope));
        }
        None
    }
}

impl Config {
    fn server(&self) -> ServerSettings {
        ServerSettings {
            lease: self.node.lease_time,
            grace: self.node.grace_time,
            nlm_grace: self.node.nlm_grace_time,
            threads: self.threads,
            scope: self.node.server_scope.clone(),
            port: server::NFS_PORT,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Phase {
    /// Written before nfsd is touched: a failed start leaves a record, so
    /// that stop cleans up and a probe does not answer "stopped".
    Starting,
    Started,
}

/// This instance's record on this node (`Ctx::state_file`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    phase: Phase,
    config: Config,
}

const STATE_PREFIX: &str = hanfs::sys::nfsd::GRACE_STATE_PREFIX;

/// The node's nfsdcld, shared by every nfs-grace resource on the node, and
/// the recovery_dir whose database it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct NodeCld {
    nfsdcld: ProcId,
    storage: PathBuf,
}

/// Not an instance's state file (no STATE_PREFIX).
fn node_file(ctx: &Ctx) -> PathBuf {
    ctx.runtime_dir().join("hanfs-nfs-grace.node")
}

fn read_node(ctx: &Ctx) -> Option<NodeCld> {
    let text = fsfile::read_opt(&node_file(ctx)).ok().flatten()?;
    serde_json::from_str(&text).ok()
}

fn write_node(ctx: &Ctx, n: &NodeCld) -> OcfResult<()> {
    let json = serde_json::to_vec_pretty(n).or_generic(|| "cannot encode node state")?;
    fsfile::write_atomic(&node_file(ctx), &json, 0o600)
}

/// Bounded: the databases live on shared storage that may hang.
fn merge_records(ctx: &Ctx, from: &Path, into: &Path) -> OcfResult<()> {
    let what = format!(
        "merging the NFSv4 client records of {} into {}",
        from.display(),
        into.display()
    );
    let n = bounded::run(&ctx.deadline.within(Duration::from_secs(15)), &what, || {
        records::merge(from, into).map_err(|e| format!("{what}: {e}"))
    })?;
    log::info!(
        "{n} NFSv4 client records of {} added to {}",
        from.display(),
        into.display()
    );
    Ok(())
}

/// Copy the serving database to `copy` (bounded). With `only_if_newer`,
/// nothing is written unless the serving database changed since.
fn mirror_records(ctx: &Ctx, serving: &Path, copy: &Path, only_if_newer: bool) -> OcfResult<()> {
    let mtime = |d: &Path| {
        std::fs::metadata(d.join(cld::DB_FILE))
            .and_then(|m| m.modified())
            .ok()
    };
    let what = format!(
        "copying the NFSv4 client records of {} to {}",
        serving.display(),
        copy.display()
    );
    let copied = bounded::run(&ctx.deadline.within(Duration::from_secs(10)), &what, || {
        if only_if_newer {
            if let (Some(s), Some(c)) = (mtime(serving), mtime(copy)) {
                if c > s {
                    return Ok(None);
                }
            }
        }
        let n = records::mirror(serving, copy).map_err(|e| format!("{what}: {e}"))?;
        Ok(Some(n))
    })?;
    if let Some(n) = copied {
        log::debug!("{n} NFSv4 client records copied to {}", copy.display());
    }
    Ok(())
}

/// An instance's state: `None` when there is none, an error (code 1)
/// when there is a file the agent cannot read (empty, truncated,
/// garbled): a state is then unknown, never "stopped".
fn read_state(path: &Path) -> OcfResult<Option<State>> {
    let Some(text) = fsfile::read_opt(path)? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .or_generic(|| format!("state file {} is damaged", path.display()))
}

fn write_state(ctx: &Ctx, st: &State) -> OcfResult<()> {
    let dir = ctx.runtime_dir();
    std::fs::create_dir_all(&dir).or_generic(|| format!("cannot create {}", dir.display()))?;
    let json = serde_json::to_vec_pretty(st).or_generic(|| "cannot encode state")?;
    fsfile::write_atomic(&ctx.state_file(), &json, 0o600)
}

/// The other nfs-grace resources recorded as active on this node.
fn others(ctx: &Ctx) -> Vec<(String, State)> {
    let me = ctx.state_file();
    let Ok(rd) = std::fs::read_dir(ctx.runtime_dir()) else {
        return Vec::new();
    };
    let mut v: Vec<(String, State)> = rd
        .flatten()
        .filter(|e| e.path() != me)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let inst = name.strip_prefix(STATE_PREFIX)?.to_string();
            match read_state(&e.path()) {
                Ok(st) => Some((inst, st?)),
                Err(e) => {
                    log::warn!("ignoring nfs-grace resource {inst}: {e}");
                    None
                }
            }
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The recovery_dirs of `others` (and `also`), but `except`, each once.
fn record_dirs(others: &[(String, State)], also: Option<&PathBuf>, except: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = others
        .iter()
        .map(|(_, st)| &st.config.recovery_dir)
        .chain(also)
        .filter(|d| d.as_path() != except)
        .cloned()
        .collect();
    v.sort();
    v.dedup();
    v
}

/// A server scope: what the kernel can announce and an administrator can
/// type the same on every node.
fn parse_scope(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
    {
        return Err(format!("contains {c:?} (use letters, digits and . _ -)"));
    }
    Ok(s.to_string())
}

/// Whether `dir` (or, when missing, its parent) is a directory, checked in
/// a child process so that dead shared storage cannot hang the agent.
fn probe_dir(ctx: &Ctx, dir: &Path) -> OcfResult<()> {
    let within = ctx.deadline.within(Duration::from_secs(10));
    let shown = dir.display();
    let missing = match storage::probe(dir, Look::Stat, &within) {
        Ok(_) => return Ok(()),
        Err(DirProblem::NotADirectory) => {
            return Err(OcfError::args(format!(
                "recovery_dir {shown} is not a directory"
            )))
        }
        Err(p @ DirProblem::TimedOut(_)) => return Err(OcfError::generic(p.to_string())),
        Err(p) => p,
    };
    match dir.parent().map(|d| storage::probe(d, Look::Stat, &within)) {
        Some(Ok(_)) => Ok(()),
        Some(Err(p @ DirProblem::TimedOut(_))) => Err(OcfError::generic(p.to_string())),
        _ => {
            log::debug!("recovery_dir {shown}: {missing}");
            Err(OcfError::args(format!(
                "recovery_dir {shown} does not exist, nor its parent (is the shared file system mounted?)"
            )))
        }
    }
}

/// rpcbind answers on its local socket (nfsd registers NFSv3 there).
fn rpcbind_reachable() -> bool {
    ["/run/rpcbind.sock", "/var/run/rpcbind.sock"]
        .iter()
        .any(|p| std::os::unix::net::UnixStream::connect(p).is_ok())
}

/// The one early end of lockd's grace that is safe to decide here: the
/// NFSv4 grace is over (the kernel ended it, every recorded client having
/// reclaimed, or its time ran out) and nfsd serves no NFSv3, so no NLM
/// reclaim can arrive through it; the NLM grace would only hold up new
/// NFSv4 locks. (Unknown versions count as serving NFSv3.)
fn end_nlm_grace_now(enabled: bool, g: &GraceState, versions: &NfsdVersions) -> bool {
    enabled
        && g.nfsd_running
        && !g.v4
        && g.nlm == Some(true)
        && !versions.entries.is_empty()
        && !versions.needs_lockd()
}

/// rpc.mountd answers nfsd's export upcalls only if it opened the cache
/// channels, which exist once nfsd is loaded: one started before that is
/// deaf, and clients then hang at mount (seen in the UML lab).
fn check_mountd() {
    let mountds = procs::named("rpc.mountd");
    if mountds.is_empty() {
        log::warn!("rpc.mountd is not running: clients cannot mount until it is started");
        return;
    }
    let serves = mountds.iter().any(|p| {
        std::fs::read_dir(format!("/proc/{p}/fd"))
            .map(|rd| {
                rd.flatten().any(|e| {
                    std::fs::read_link(e.path()).is_ok_and(|t| t.ends_with("nfsd.export/channel"))
                })
            })
            .unwrap_or(false)
    });
    if !serves {
        log::warn!(
            "rpc.mountd (pid {}) does not serve nfsd's export cache (it was started before nfsd was loaded): clients will hang at mount until it is restarted",
            mountds[0]
        );
    }
}

struct NfsGrace;

impl NfsGrace {
    fn roots() -> ProcRoots {
        ProcRoots::default()
    }

    /// Make sure an nfsdcld serves `dir`, and no other nfsdcld runs. One
    /// this agent started for the node (`ours`) on another directory, with
    /// no other nfs-grace resource left to serve, is stopped.
    fn ensure_nfsdcld(ctx: &Ctx, dir: &Path, ours: Option<&NodeCld>) -> OcfResult<ProcId> {
        let mut mine = None;
        for c in cld::find_all() {
            if c.storage.as_deref() == Some(dir) {
                mine = Some(c.id);
            } else if ours.is_some_and(|n| n.nfsdcld == c.id) {
                log::info!(
                    "stopping nfsdcld (pid {}) on {}: no resource on this node uses it any more",
                    c.id.pid,
                    c.storage
                        .as_deref()
                        .map(|s| s.display().to_string())
                        .unwrap_or_default()
                );
                cld::stop(c.id, &ctx.deadline)?;
            } else {
                return Err(OcfError::args(format!(
                    "nfsdcld (pid {}) is already running{}; only one nfsdcld can serve nfsd: stop it and disable nfsdcld.service, this resource runs nfsdcld on recovery_dir",
                    c.id.pid,
                    c.storage
                        .as_ref()
                        .map(|s| format!(" with storage {}", s.display()))
                        .unwrap_or_default()
                )));
            }
        }
        if let Some(id) = mine {
            log::info!("nfsdcld (pid {}) already serves {}", id.pid, dir.display());
            return Ok(id);
        }
        let pipefs = cld::pipefs_dir(&ctx.deadline)?;
        cld::start(dir, &pipefs, &ctx.deadline)
    }

    /// The kernel took nfsdcld for client tracking: nfsdcld holds its pipe.
    fn check_tracking(ctx: &Ctx, id: ProcId) -> OcfResult<()> {
        let ok =
            ctx.deadline
                .within(Duration::from_secs(3))
                .poll(Duration::from_millis(20), || {
                    cld::inspect(id.pid)
                        .filter(|c| c.has_pipe && id.alive())
                        .map(|_| ())
                });
        ok.ok_or_else(|| {
            OcfError::generic(format!(
                "nfsd did not take nfsdcld (pid {}) for NFSv4 client tracking; NFSv4 clients could not reclaim after a takeover",
                id.pid
            ))
        })
    }

    /// NFSv3: lockd's grace must be on for the arriving clients.
    fn check_nlm_grace(ctx: &Ctx, roots: &ProcRoots) -> OcfResult<()> {
        let serves_v3 = roots.versions().map(|v| v.needs_lockd()).unwrap_or(true);
        if !serves_v3 {
            return Ok(());
        }
        match roots.nlm_in_grace() {
            Ok(true) => Ok(()),
            Ok(false) => {
                log::warn!("lockd did not restart with nfsd (NFS client mounts on this node keep it up); restarting its grace period");
                server::restart_nlm_grace(roots, &ctx.deadline.within(Duration::from_secs(10))).map_err(|e| {
                    OcfError::generic(format!(
                        "no NLM grace period for NFSv3 clients: {e}; unmount NFSv3 mounts on this node or serve NFSv4 only"
                    ))
                })
            }
            Err(e) => Err(OcfError::generic(format!(
                "cannot read lockd's grace state: {e}"
            ))),
        }
    }

    fn log_grace(roots: &ProcRoots, at_info: bool) {
        let g = roots.grace_state();
        let clients = roots.clients();
        let msg = format!("{g}; {} NFSv4 clients connected", clients.len());
        if at_info || g.any() {
            log::info!("{msg}");
        } else {
            log::debug!("{msg}");
        }
    }

    /// Devices that hold NFSv4 state but are no longer exported: what an
    /// unexport left pinned (kernels before ~6.9 do not revoke it).
    fn pinned_unexported() -> Vec<(u32, u32)> {
        let roots = Self::roots();
        let held = roots.v4_state_devices();
        if held.is_empty() {
            return held;
        }
        let mounts = mounts::current();
        let table = ExportTable::system().read_all().unwrap_or_else(|e| {
            log::warn!("{e}");
            Vec::new()
        });
        let exported: Vec<(u32, u32)> = table
            .iter()
            .filter_map(|e| mounts::containing(&mounts, &e.directory).map(|m| m.dev))
            .collect();
        held.into_iter().filter(|d| !exported.contains(d)).collect()
    }

    /// Stop the node's nfsdcld and any nfsdcld left on `dir` (it would
    /// keep the file system busy).
    fn stop_nfsdcld(ctx: &Ctx, known: Option<ProcId>, dir: &Path) -> OcfResult<()> {
        if let Some(id) = known {
            cld::stop(id, &ctx.deadline)?;
        }
        for c in cld::find_all() {
            if c.storage.as_deref() == Some(dir) {
                cld::stop(c.id, &ctx.deadline)?;
            }
        }
        if let Some(c) = cld::find_all()
            .into_iter()
            .find(|c| c.storage.as_deref() == Some(dir))
        {
            return Err(OcfError::generic(format!(
                "nfsdcld (pid {}) still holds {}",
                c.id.pid,
                dir.display()
            )));
        }
        Ok(())
    }

    /// An nfsdcld on `dir` that is not the one serving the node.
    fn stop_nfsdcld_on_mine_if_stray(
        ctx: &Ctx,
        node: Option<&NodeCld>,
        dir: &Path,
    ) -> OcfResult<()> {
        if node.is_some_and(|n| n.storage == dir) {
            return Ok(());
        }
        Self::stop_nfsdcld(ctx, None, dir)
    }

    /// nfsdcld serves the records of a service that stops while others stay
    /// on the node: move it to `next`'s copy, which takes an nfsd restart,
    /// i.e. a new grace period for the remaining clients. Fails only when
    /// the leaving service's file system cannot be freed; what goes wrong
    /// for the others afterwards is logged (their monitors report it).
    fn move_nfsdcld(ctx: &Ctx, node: &NodeCld, next: &Config, copies: &[PathBuf]) -> OcfResult<()> {
        let roots = Self::roots();
        server::stop(&roots, &ctx.deadline)?;
        for c in copies {
            if let Err(e) = mirror_records(ctx, &node.storage, c, false) {
                log::error!(
                    "{e}: NFSv4 clients that first came since the last monitor may not reclaim"
                );
            }
        }
        Self::stop_nfsdcld(ctx, Some(node.nfsdcld), &node.storage)?;
        let restart = || -> OcfResult<()> {
            let pipefs = cld::pipefs_dir(&ctx.deadline)?;
            let id = cld::start(&next.recovery_dir, &pipefs, &ctx.deadline)?;
            let moved = NodeCld {
                nfsdcld: id,
                storage: next.recovery_dir.clone(),
            };
            write_node(ctx, &moved)?;
            server::start(&roots, &next.server(), &ctx.deadline)?;
            Self::check_tracking(ctx, id)?;
            for c in copies.iter().filter(|c| **c != moved.storage) {
                mirror_records(ctx, &moved.storage, c, false)?;
            }
            Ok(())
        };
        if let Err(e) = restart() {
            log::error!("nfsd could not be brought back for the other services: {e}");
        }
        Ok(())
    }
}

impl Agent for NfsGrace {
    type Config = Config;
    const NAME: &'static str = "nfs-grace";
    const METADATA: &'static str = include_str!("../metadata/nfs-grace.xml");

    fn configure(p: &Params) -> OcfResult<Config> {
        let lease_time = p.uint("lease_time", 10..=3600)? as u32;
        let grace_time = p.uint("grace_time", 10..=3600)? as u32;
        if grace_time < lease_time {
            return Err(p.invalid("grace_time", format!(
                "shorter than lease_time={lease_time}: clients renew once per lease and could miss the grace period"
            )));
        }
        // Not in the meta-data: it follows grace_time, within lockd's limit.
        let nlm_grace_time = p
            .optional("nlm_grace_time", |v| ocf::uint_in(v, &(10..=240)))?
            .map_or(grace_time.min(240), |n| n as u32);
        Ok(Config {
            node: NodeSettings {
                lease_time,
                grace_time,
                nlm_grace_time,
                server_scope: p.value("server_scope", parse_scope)?,
            },
            recovery_dir: p.abs_dir("recovery_dir")?,
            threads: p.uint("threads", 1..=8192)? as u32,
            end_grace_early: p.bool("end_grace_early")?,
        })
    }

    fn needs_root(action: &Action) -> Option<&'static str> {
        matches!(action, Action::ValidateAll | Action::Start)
            .then_some("the agent runs nfsd and nfsdcld")
    }

    fn validate(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        server::available(&Self::roots(), &ctx.deadline)?;
        cld::program()?;
        probe_dir(ctx, &cfg.recovery_dir)?;
        if mounts::on_root_fs(&cfg.recovery_dir) {
            log::warn!(
                "recovery_dir {} is on the root file system, not on shared storage: NFSv4 clients could not reclaim on another node",
                cfg.recovery_dir.display()
            );
        }
        Ok(())
    }

    fn start(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        let roots = Self::roots();
        let _lock = ctx.node_lock()?; // the node's starts and stops, one at a time
        let me = read_state(&ctx.state_file()).unwrap_or_else(|e| {
            log::warn!("{e}: starting afresh");
            None
        });
        let node = read_node(ctx).filter(|n| n.nfsdcld.alive());
        if let Some(st) = &me {
            if st.phase == Phase::Started
                && st.config.node == cfg.node
                && st.config.recovery_dir == cfg.recovery_dir
                && roots.threads().unwrap_or(0) > 0
                && node.is_some()
            {
                log::info!("already started");
                return Ok(());
            }
        }
        let others = others(ctx);
        for (inst, st) in &others {
            if let Some(diff) = cfg.node.difference(&st.config.node) {
                return Err(OcfError::generic(format!(
                    "nfsd on this node already serves nfs-grace resource {inst} with other settings ({diff}): one node has one nfsd; give every nfs-grace resource that may share a node the same settings"
                )));
            }
        }
        // The database nfsdcld serves: the one it already serves for the
        // others, else ours.
        let serving = match &node {
            Some(n) if !others.is_empty() => n.storage.clone(),
            _ => cfg.recovery_dir.clone(),
        };
        // The other services' records, and ours, live in copies.
        let copies = record_dirs(&others, Some(&cfg.recovery_dir), &serving);

        server::load(&roots, &ctx.deadline)?;
        if server::running(&roots) || !roots.clients().is_empty() {
            if me.is_some() {
                log::warn!("nfsd runs from an earlier start of this resource that is no longer intact; restarting it");
            } else if others.is_empty() {
                log::warn!("nfsd is already running outside this resource's control; restarting it with this resource's settings");
            } else {
                let names: Vec<&str> = others.iter().map(|(i, _)| i.as_str()).collect();
                log::warn!(
                    "restarting nfsd for a new grace period: the clients of {} lose their server state and must reclaim it",
                    names.join(", ")
                );
            }
            server::stop(&roots, &ctx.deadline)?;
        }
        let serves_v3 = roots.versions().map(|v| v.needs_lockd()).unwrap_or(true);
        if serves_v3 && !rpcbind_reachable() {
            return Err(OcfError::generic(
                "rpcbind is not running: nfsd registers NFSv3 with it (start rpcbind before this resource)",
            ));
        }
        let mut st = State {
            phase: Phase::Starting,
            config: cfg.clone(),
        };
        write_state(ctx, &st)?;
        // Every client of every service here may reclaim at this start.
        for c in &copies {
            merge_records(ctx, c, &serving)?;
        }
        let cld_id = Self::ensure_nfsdcld(ctx, &serving, node.as_ref())?;
        write_node(
            ctx,
            &NodeCld {
                nfsdcld: cld_id,
                storage: serving.clone(),
            },
        )?;

        check_mountd();
        server::start(&roots, &cfg.server(), &ctx.deadline)?;
        if let Err(e) =
            Self::check_tracking(ctx, cld_id).and_then(|()| Self::check_nlm_grace(ctx, &roots))
        {
            let _ = server::stop(&roots, &ctx.deadline.within(Duration::from_secs(10)));
            return Err(e);
        }
        // Each service carries every record, whichever node it goes to.
        for c in &copies {
            if let Err(e) = mirror_records(ctx, &serving, c, false) {
                log::warn!("{e} (retried at each monitor)");
            }
        }
        let g = roots.grace_state();
        if !g.v4 {
            log::info!(
                "no NFSv4 client is recorded in {}: the kernel skipped the NFSv4 grace period",
                serving.display()
            );
        }
        Self::log_grace(&roots, true);
        st.phase = Phase::Started;
        write_state(ctx, &st)
    }

    fn stop(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        let roots = Self::roots();
        // The node's starts and stops, one at a time. A lock path that can
        // never be locked (a directory, a FIFO, a link) fails every other
        // start and stop too, so none is under way: stop without it rather
        // than fail (and have the node fenced) over a file.
        let _lock = match ctx.node_lock() {
            Ok(l) => Some(l),
            Err(e) if !fsfile::may_be_lock(&ctx.node_lock_path()) => {
                log::error!("{e}: stopping without the node lock (remove it by hand)");
                None
            }
            Err(e) => return Err(e),
        };
        let st = match read_state(&ctx.state_file()) {
            Ok(Some(st)) => st,
            Ok(None) => {
                log::info!("not started on this node; nothing to stop");
                return Ok(());
            }
            // What was started is unknown: stop by the configuration and
            // what runs on the node (nfsd, nfsdcld on our recovery_dir).
            Err(e) => {
                log::warn!("{e}: stopping by the configuration and the node's state");
                State {
                    phase: Phase::Starting,
                    config: cfg.clone(),
                }
            }
        };
        // What was started is what the state says (the parameters may have
        // changed since).
        let started = &st.config;
        let mine = &started.recovery_dir;
        let others = others(ctx);
        let node = read_node(ctx);
        if others.is_empty() {
            server::stop(&roots, &ctx.deadline)?;
            Self::stop_nfsdcld(ctx, node.as_ref().map(|n| n.nfsdcld), mine)?;
            fsfile::remove_state(&node_file(ctx))?;
            if let Some(pid) = server::lockd_thread() {
                log::info!("lockd (pid {pid}) keeps running for NFS client mounts on this node");
            }
            return fsfile::remove_state(&ctx.state_file());
        }
        let names: Vec<&str> = others.iter().map(|(i, _)| i.as_str()).collect();
        let node = node.filter(|n| n.nfsdcld.alive());
        let copies = record_dirs(&others, None, mine);
        match &node {
            Some(n) if n.storage == *mine && !copies.is_empty() => {
                // nfsdcld holds our file system: it moves to the next
                // service's copy of the records.
                let next = others
                    .iter()
                    .map(|(_, s)| &s.config)
                    .find(|c| c.recovery_dir == copies[0])
                    .expect("copies come from others");
                log::warn!(
                    "nfsdcld serves this resource's {}: moving it to {} and restarting nfsd; the clients of {} get a new grace period",
                    mine.display(),
                    next.recovery_dir.display(),
                    names.join(", ")
                );
                Self::move_nfsdcld(ctx, n, next, &copies)?;
                return fsfile::remove_state(&ctx.state_file());
            }
            Some(n) if n.storage != *mine => {
                // Our clients' latest records go with the service.
                if let Err(e) = mirror_records(ctx, &n.storage, mine, false) {
                    log::error!("{e}: NFSv4 clients that first came since the last monitor may not reclaim where the service goes next");
                }
            }
            _ => {}
        }
        Self::stop_nfsdcld_on_mine_if_stray(ctx, node.as_ref(), mine)?;
        let pinned: Vec<String> = Self::pinned_unexported()
            .iter()
            .map(|(a, b)| format!("{a}:{b}"))
            .collect();
        if pinned.is_empty() {
            log::info!(
                "nfsd keeps running for {}: no NFSv4 state is left on unexported file systems",
                names.join(", ")
            );
        } else {
            log::warn!(
                "NFSv4 state remains on unexported file systems (devices {}): restarting nfsd to release it; the clients of {} get a new grace period",
                pinned.join(", "),
                names.join(", ")
            );
            server::stop(&roots, &ctx.deadline)?;
            // This resource's file systems are free now. Bringing nfsd
            // back is for the others: if it fails, their monitors report
            // it; failing this stop would only get the node fenced.
            let back =
                server::start(&roots, &started.server(), &ctx.deadline).and_then(
                    |()| match &node {
                        Some(n) => Self::check_tracking(ctx, n.nfsdcld),
                        None => Ok(()),
                    },
                );
            if let Err(e) = back {
                log::error!("nfsd could not be restarted for {}: {e}", names.join(", "));
            }
        }
        fsfile::remove_state(&ctx.state_file())
    }

    fn monitor(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        let roots = Self::roots();
        let Some(st) = read_state(&ctx.state_file())? else {
            return Err(OcfError::not_running("not started on this node"));
        };
        if st.phase == Phase::Starting {
            return Err(OcfError::generic("start did not complete on this node"));
        }
        let threads = roots.threads().unwrap_or(0);
        if threads == 0 {
            return Err(OcfError::generic("nfsd is not running (0 threads)"));
        }
        // nfsd restarted behind the cluster's back (rpc.nfsd, nfs-server)
        // shows in its timers; its server scope is then likely wrong too.
        let times = (roots.lease_time().ok(), roots.grace_time().ok());
        if times
            != (
                Some(st.config.node.lease_time),
                Some(st.config.node.grace_time),
            )
        {
            let show = |t: Option<u32>| {
                t.map(|v| format!("{v} s"))
                    .unwrap_or_else(|| "unknown".into())
            };
            return Err(OcfError::generic(format!(
                "nfsd runs with lease time {} and grace time {}, not {} s and {} s: it was restarted outside the cluster (its server scope and client tracking may be wrong too)",
                show(times.0),
                show(times.1),
                st.config.node.lease_time,
                st.config.node.grace_time
            )));
        }
        let Some(node) = read_node(ctx) else {
            return Err(OcfError::generic(
                "no nfsdcld is recorded for this node: new NFSv4 clients are not recorded for reclaim",
            ));
        };
        if !node.nfsdcld.alive() {
            return Err(OcfError::generic(format!(
                "nfsdcld (pid {}) has exited: new NFSv4 clients are not recorded for reclaim",
                node.nfsdcld.pid
            )));
        }
        if node.storage != st.config.recovery_dir {
            // Sharing the node: keep this service's copy of the records
            // current, so that it can leave (or its node fail) with them.
            if let Err(e) = mirror_records(ctx, &node.storage, &st.config.recovery_dir, true) {
                log::warn!("{e}");
            }
        }
        Self::log_grace(&roots, false);
        let versions = roots.versions().unwrap_or_default();
        if end_nlm_grace_now(cfg.end_grace_early, &roots.grace_state(), &versions) {
            log::info!(
                "NFSv4 grace is over and nfsd serves no NFSv3: ending lockd's grace period early"
            );
            roots.end_nlm_grace()?;
        }
        Ok(())
    }

    fn reload(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        let Some(mut st) = read_state(&ctx.state_file())? else {
            return Err(OcfError::new(
                OcfCode::ErrGeneric,
                "not started on this node: nothing to reload",
            ));
        };
        st.config.end_grace_early = cfg.end_grace_early;
        write_state(ctx, &st)?;
        log::info!("end_grace_early={} now in effect", cfg.end_grace_early);
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    ocf::run::<NfsGrace>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hanfs::ocf::Metadata;

    fn params(v: &[(&str, &str)]) -> Params {
        let meta = Metadata::parse(NfsGrace::METADATA).unwrap();
        Params::from_vars(
            &meta,
            v.iter()
                .map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.to_string())),
        )
    }

    fn conf(v: &[(&str, &str)]) -> OcfResult<Config> {
        let mut all = vec![("recovery_dir", "/srv/nfs/cld"), ("server_scope", "hanfs")];
        all.extend_from_slice(v);
        let p = params(&all);
        p.check_declared()?;
        NfsGrace::configure(&p)
    }

    #[test]
    fn defaults() {
        let c = conf(&[]).unwrap();
        assert_eq!(c.node.lease_time, 90);
        assert_eq!(c.node.grace_time, 90);
        assert_eq!(c.node.nlm_grace_time, 90);
        assert_eq!(c.threads, 8);
        assert!(c.end_grace_early);
        assert_eq!(
            conf(&[("grace_time", "600")]).unwrap().node.nlm_grace_time,
            240
        );
        assert_eq!(
            conf(&[("recovery_dir", "/srv//nfs/cld/")])
                .unwrap()
                .recovery_dir,
            PathBuf::from("/srv/nfs/cld")
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        for (k, v, needle) in [
            (
                "lease_time",
                "5",
                "parameter lease_time=\"5\": out of range",
            ),
            (
                "grace_time",
                "4000",
                "parameter grace_time=\"4000\": out of range",
            ),
            (
                "grace_time",
                "20",
                "parameter grace_time=\"20\": shorter than lease_time=90",
            ),
            (
                "nlm_grace_time",
                "300",
                "parameter nlm_grace_time=\"300\": out of range",
            ),
            ("threads", "0", "parameter threads=\"0\": out of range"),
            (
                "threads",
                "many",
                "parameter threads=\"many\": not an integer",
            ),
            ("recovery_dir", "var/lib/nfs", "not an absolute path"),
            ("recovery_dir", "/srv/../etc", "'..'"),
            ("recovery_dir", "/", "root directory"),
            ("server_scope", "my scope", "contains ' '"),
            ("server_scope", &"x".repeat(65), "1 to 64 characters"),
            ("end_grace_early", "perhaps", "not a boolean"),
        ] {
            let e = conf(&[(k, v)]).unwrap_err();
            assert_eq!(e.code, OcfCode::ErrConfigured, "{k}={v}: {e}");
            assert!(e.reason.contains(needle), "{k}={v}: {e}");
        }
        let p = params(&[("server_scope", "x")]);
        let e = p.check_declared().unwrap_err();
        assert!(e.reason.contains("recovery_dir is required"), "{e}");
    }

    #[test]
    fn every_parameter_is_read_and_declared() {
        let p = params(&[("recovery_dir", "/x/y"), ("server_scope", "s")]);
        NfsGrace::configure(&p).unwrap();
        let declared: std::collections::BTreeSet<String> =
            p.metadata().params.iter().map(|s| s.name.clone()).collect();
        assert_eq!(p.names_read(), declared);
        ocf::check_description_matches_code::<NfsGrace>(&[
            ("recovery_dir", "/x/y"),
            ("server_scope", "s"),
        ])
        .unwrap();
    }

    #[test]
    fn node_settings_must_agree() {
        let a = conf(&[]).unwrap();
        let b = conf(&[("threads", "16"), ("end_grace_early", "false")]).unwrap();
        assert_eq!(
            a.node.difference(&b.node),
            None,
            "threads and end_grace_early are per resource"
        );
        let c = conf(&[("server_scope", "other")]).unwrap();
        assert_eq!(
            a.node.difference(&c.node).unwrap(),
            "server_scope=\"hanfs\" here, \"other\" there"
        );
        let d = conf(&[("recovery_dir", "/elsewhere/cld")]).unwrap();
        assert_eq!(
            a.node.difference(&d.node),
            None,
            "each service has its own records"
        );
    }

    #[test]
    fn nlm_grace_ends_early_only_when_no_nfsv3_reclaim_can_come() {
        let v4only = NfsdVersions::parse("-3 +4 +4.1 +4.2");
        let v3 = NfsdVersions::parse("+3 +4 +4.1 +4.2");
        let g = |v4, nlm| GraceState {
            nfsd_running: true,
            v4,
            nlm,
        };
        assert!(end_nlm_grace_now(true, &g(false, Some(true)), &v4only));
        assert!(
            !end_nlm_grace_now(false, &g(false, Some(true)), &v4only),
            "disabled"
        );
        assert!(
            !end_nlm_grace_now(true, &g(false, Some(true)), &v3),
            "NFSv3 clients may still reclaim"
        );
        assert!(
            !end_nlm_grace_now(true, &g(true, Some(true)), &v4only),
            "NFSv4 grace still on"
        );
        assert!(
            !end_nlm_grace_now(true, &g(false, Some(false)), &v4only),
            "nothing to end"
        );
        assert!(
            !end_nlm_grace_now(true, &g(false, Some(true)), &NfsdVersions::default()),
            "versions unknown"
        );
        let stopped = GraceState {
            nfsd_running: false,
            v4: false,
            nlm: Some(true),
        };
        assert!(!end_nlm_grace_now(true, &stopped, &v4only));
    }

    #[test]
    fn state_round_trip() {
        let st = State {
            phase: Phase::Started,
            config: conf(&[]).unwrap(),
        };
        let j = serde_json::to_string(&st).unwrap();
        assert!(j.contains("\"phase\":\"started\""), "{j}");
        let back: State = serde_json::from_str(&j).unwrap();
        assert_eq!(back.config, st.config);
        let n = NodeCld {
            nfsdcld: ProcId { pid: 42, start: 7 },
            storage: "/srv/a/cld".into(),
        };
        let back: NodeCld = serde_json::from_str(&serde_json::to_string(&n).unwrap()).unwrap();
        assert_eq!(back, n);
    }
}
