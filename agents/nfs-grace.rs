//! nfs-grace: this node's kernel NFS server, started so that the clients
//! arriving with an HA NFS service get a grace period to reclaim their
//! state, with the service's timers, NFSv4 client-recovery records
//! (nfsdcld on shared storage) and server scope; stopped so that the
//! service's file system can be unmounted. See metadata/nfs-grace.xml.
//!
//! One node has one nfsd, one nfsdcld and one database, whatever number of
//! services it runs: what start and stop decide about the other services
//! is in [`plan`], from what the node records ([`state`]).

#[path = "nfs-grace/plan.rs"]
mod plan;
#[path = "nfs-grace/state.rs"]
mod state;

use hanfs::ocf::{self, Action, Agent, Ctx, OcfError, OcfResult, Params};
use hanfs::sys::exports::ExportTable;
use hanfs::sys::fsfile;
use hanfs::sys::nfsd::server;
use hanfs::sys::nfsd::{cld, mounts, records, ProcRoots};
use hanfs::sys::storage::{self, DirProblem};
use plan::{NfsdAfterLeave, StartPlan, StopPlan};
use state::{others, read_node, Config, NodeSettings, Phase, State};
use std::path::Path;
use std::time::Duration;

struct NfsGrace;

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
                server_scope: p.value("server_scope", server::parse_scope)?,
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
        server::available(&ProcRoots::default(), &ctx.deadline)?;
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
        let roots = ProcRoots::default();
        let _lock = ctx.node_lock()?; // the node's starts and stops, one at a time

        // 1. What the node records decides: already started, refused (other
        //    node settings), or which database nfsdcld serves.
        let me = ctx.load_state::<State>().unwrap_or_else(|e| {
            log::warn!("{e}: starting afresh");
            None
        });
        let node = read_node(ctx).filter(|n| n.nfsdcld.alive());
        let nfsd_up = roots.threads().unwrap_or(0) > 0;
        let others = others(ctx);
        let plan = match plan::start(cfg, me.as_ref(), &others, node.as_ref(), nfsd_up)? {
            StartPlan::AlreadyStarted => {
                log::info!("already started");
                return Ok(());
            }
            StartPlan::Start(p) => p,
        };

        // 2. nfsd loaded and stopped: its timers change only while it is
        //    stopped, and its grace period begins when it starts.
        server::load(&roots, &ctx.deadline)?;
        if server::running(&roots) || !roots.clients().is_empty() {
            log::warn!("{}", plan.if_running.warning());
            server::stop(&roots, &ctx.deadline)?;
        }
        let serves_v3 = roots.versions().map(|v| v.needs_lockd()).unwrap_or(true);
        if serves_v3 && !server::rpcbind_reachable() {
            return Err(OcfError::generic(
                "rpcbind is not running: nfsd registers NFSv3 with it (start rpcbind before this resource)",
            ));
        }
        let mut st = State {
            phase: Phase::Starting,
            config: cfg.clone(),
        };
        ctx.save_state(&st)?;

        // 3. Every client of every service here may reclaim at this start:
        //    their records merged into the database nfsdcld serves.
        for c in &plan.copies {
            records::merge_bounded(&ctx.deadline, c, &plan.serving)?;
        }
        let cld_id = cld::ensure(&plan.serving, node.map(|n| n.nfsdcld), &ctx.deadline)?;
        state::save_node(ctx, cld_id, &plan.serving)?;

        // 4. nfsd starts (its grace period with it), tracked by nfsdcld,
        //    with lockd's grace for NFSv3 (how, this kernel decides: said
        //    once per start).
        let lockd_kept_up = serves_v3 && server::lockd_thread().is_some();
        log::info!(
            "{}",
            server::kernel_paths(server::kernel_release(), lockd_kept_up)
        );
        server::check_mountd();
        let leases = state::leases_marker(ctx);
        server::hold_delegations(&roots, &leases)?;
        if let Err(e) = server::start(&roots, &cfg.server(), &ctx.deadline)
            .and_then(|()| cld::check_tracking(cld_id, &ctx.deadline))
            .and_then(|()| server::ensure_nlm_grace(&roots, &ctx.deadline))
        {
            let _ = server::stop(&roots, &ctx.deadline.within(Duration::from_secs(10)));
            let _ = server::allow_delegations(&roots, &leases);
            return Err(e);
        }

        // 5. Each service carries every record, whichever node it goes to.
        for c in &plan.copies {
            if let Err(e) = records::mirror_bounded(&ctx.deadline, &plan.serving, c, false) {
                log::warn!("{e} (retried at each monitor)");
            }
        }
        if !roots.grace_state().v4 {
            log::info!(
                "no NFSv4 client is recorded in {}: the kernel skipped the NFSv4 grace period",
                plan.serving.display()
            );
        }
        server::log_grace(&roots, true);
        st.phase = Phase::Started;
        ctx.save_state(&st)
    }

    fn stop(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        let roots = ProcRoots::default();
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

        // 1. What was started is what the state says (the parameters may
        //    have changed since); when that is unknown, stop by the
        //    configuration and what runs on the node.
        let st = match ctx.load_state::<State>() {
            Ok(Some(st)) => st,
            Ok(None) => {
                log::info!("not started on this node; nothing to stop");
                return Ok(());
            }
            Err(e) => {
                log::warn!("{e}: stopping by the configuration and the node's state");
                State {
                    phase: Phase::Starting,
                    config: cfg.clone(),
                }
            }
        };
        let started = &st.config;
        let mine = &started.recovery_dir;

        // 2. What the other services on the node need decides.
        let node = read_node(ctx);
        let alive = node.as_ref().is_some_and(|n| n.nfsdcld.alive());
        let leave = match plan::stop(started, &others(ctx), node.as_ref(), alive) {
            // 3a. The last one: nfsd and nfsdcld stop.
            StopPlan::Last { nfsdcld } => {
                server::stop_serving(&roots, &[mine], &ctx.deadline)?;
                if let Err(e) = server::allow_delegations(&roots, &state::leases_marker(ctx)) {
                    log::error!(
                        "{e}: NFSv4 delegations stay refused on this node (fs.leases-enable)"
                    );
                }
                cld::stop_on(mine, nfsdcld, &ctx.deadline)?;
                state::forget_node(ctx)?;
                if let Some(pid) = server::lockd_thread() {
                    log::info!(
                        "lockd (pid {pid}) keeps running for NFS client mounts on this node"
                    );
                }
                return fsfile::remove_state(&ctx.state_file());
            }
            // 3b. nfsdcld holds our file system: it moves to the next
            //     service's copy of the records.
            StopPlan::MoveDatabase {
                from,
                to,
                copies,
                others,
            } => {
                log::warn!(
                    "nfsdcld serves this resource's {}: moving it to {} and restarting nfsd; the clients of {} get a new grace period",
                    mine.display(),
                    to.recovery_dir.display(),
                    others.join(", ")
                );
                hold_delegations_logged(ctx, &roots);
                let record = |id| state::save_node(ctx, id, &to.recovery_dir);
                let old = (from.nfsdcld, from.storage.as_path());
                let (next, settings) = (&to.recovery_dir, &to.server());
                cld::move_database(&roots, old, next, settings, &copies, record, &ctx.deadline)?;
                return fsfile::remove_state(&ctx.state_file());
            }
            StopPlan::Leave(leave) => leave,
        };

        // 3c. Others stay: our clients' latest records go with the service,
        //     and nfsd keeps running unless it pins our file systems.
        let others = leave.others.join(", ");
        if let Some(serving) = leave.save_from {
            if let Err(e) = records::mirror_bounded(&ctx.deadline, &serving, mine, false) {
                log::error!("{e}: NFSv4 clients that first came since the last monitor may not reclaim where the service goes next");
            }
        }
        if leave.stop_stray_nfsdcld {
            cld::stop_on(mine, None, &ctx.deadline)?;
        }
        let revoked = roots.v4_revoked_states();
        let remaining = ctx.deadline.remaining();
        let revoked = match plan::revoked_wait(revoked, started.node.lease_time, remaining) {
            None => 0,
            Some(wait) => {
                log::info!(
                    "{revoked} NFSv4 states revoked by unlock_filesystem are still held (this kernel revokes, from Linux 6.9): waiting up to {:.1} s for their clients to free them",
                    wait.as_secs_f64()
                );
                roots.wait_revoked_freed(&ctx.deadline.within(wait))
            }
        };
        let after =
            plan::nfsd_after_leave(roots.v4_state_unexported(&ExportTable::system()), revoked);
        match after {
            NfsdAfterLeave::Keep => log::info!(
                "nfsd keeps running for {others}: no NFSv4 state is left on unexported file systems"
            ),
            NfsdAfterLeave::Restart { .. } => {
                log::warn!(
                    "NFSv4 state remains on unexported file systems ({}): restarting nfsd to release it; the clients of {others} get a new grace period",
                    after.held()
                );
                hold_delegations_logged(ctx, &roots);
                server::stop_serving(&roots, &[mine], &ctx.deadline)?;
                // This resource's file systems are free now. Bringing nfsd
                // back is for the others: if it fails, their monitors report
                // it; failing this stop would only get the node fenced.
                let back = server::start(&roots, &started.server(), &ctx.deadline).and_then(|()| {
                    leave
                        .nfsdcld
                        .map_or(Ok(()), |id| cld::check_tracking(id, &ctx.deadline))
                });
                if let Err(e) = back {
                    log::error!("nfsd could not be restarted for {others}: {e}");
                }
            }
        }
        fsfile::remove_state(&ctx.state_file())
    }

    fn monitor(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        let roots = ProcRoots::default();
        // 1. Started here, and the start completed.
        let Some(st) = ctx.load_state::<State>()? else {
            return Err(OcfError::not_running("not started on this node"));
        };
        if st.phase == Phase::Starting {
            return Err(OcfError::generic("start did not complete on this node"));
        }
        // 2. nfsd runs, as this resource started it: judged after any start
        //    or stop of another instance under way here (one arriving
        //    restarts nfsd for its grace, which is no failure of this one).
        let _lock = ctx.node_lock()?;
        let threads = roots.threads().unwrap_or(0);
        if threads == 0 {
            return Err(OcfError::generic("nfsd is not running (0 threads)"));
        }
        server::check_timers(&roots, st.config.node.lease_time, st.config.node.grace_time)?;
        // 3. nfsdcld records new NFSv4 clients.
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
        // Clients nfsd serves but the database lacks are recorded here
        // (NFSv4.0 ones that only reclaimed, and any whose record nfsdcld
        // could not write): else the next takeover loses their state. One
        // that cannot be recorded makes the resource degraded, not failed:
        // a restart would not record it, and a move would lose it.
        let unrecorded = match records::record_missing_bounded(
            &ctx.deadline,
            &node.storage,
            &roots.clients(),
        ) {
            Ok(r) => {
                if !r.added.is_empty() {
                    log::info!(
                        "recorded {} NFSv4 client(s) missing from {}: {}",
                        r.added.len(),
                        node.storage.display(),
                        r.added.join(", ")
                    );
                }
                r.failed.map(|(names, e)| {
                    log::error!(
                        "NFSv4 clients not recorded in {} lose their opens and locks at a failover: {}",
                        node.storage.display(),
                        names.join(", ")
                    );
                    OcfError::degraded(format!(
                        "cannot record {} NFSv4 client(s) for reclaim ({}): {e}",
                        names.len(),
                        ocf::listed(&names, 5)
                    ))
                })
            }
            Err(e) => Some(OcfError::degraded(format!(
                "{}: NFSv4 clients may not be recorded for reclaim",
                e.reason
            ))),
        };
        if node.storage != st.config.recovery_dir {
            // Sharing the node: keep this service's copy of the records
            // current, so that it can leave (or its node fail) with them.
            if let Err(e) =
                records::mirror_bounded(&ctx.deadline, &node.storage, &st.config.recovery_dir, true)
            {
                log::warn!("{e}");
            }
        }
        // 4. The grace period: logged while on, lockd's ended when no
        //    reclaim can come through it.
        server::log_grace(&roots, false);
        if let Err(e) = server::allow_delegations(&roots, &state::leases_marker(ctx)) {
            log::warn!("{e} (retried at each monitor)");
        }
        let versions = roots.versions().unwrap_or_default();
        if plan::end_nlm_grace_now(cfg.end_grace_early, &roots.grace_state(), &versions) {
            log::info!(
                "NFSv4 grace is over and nfsd serves no NFSv3: ending lockd's grace period early"
            );
            roots.end_nlm_grace()?;
        }
        unrecorded.map_or(Ok(()), Err)
    }

    fn reload(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        let Some(mut st) = ctx.load_state::<State>()? else {
            return Err(OcfError::generic(
                "not started on this node: nothing to reload",
            ));
        };
        st.config.end_grace_early = cfg.end_grace_early;
        ctx.save_state(&st)?;
        log::info!("end_grace_early={} now in effect", cfg.end_grace_early);
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    ocf::run::<NfsGrace>()
}

/// Whether `dir` (or, when missing, its parent: start creates it) is a
/// directory, on storage that answers.
/// A stop that restarts nfsd for the services staying: their clients
/// reclaim, so delegations are held back as at a start; failing that is
/// logged, not a failed stop (which would fence the node).
fn hold_delegations_logged(ctx: &Ctx, roots: &hanfs::sys::nfsd::ProcRoots) {
    if let Err(e) = server::hold_delegations(roots, &state::leases_marker(ctx)) {
        log::error!("{e}");
    }
}

fn probe_dir(ctx: &Ctx, dir: &Path) -> OcfResult<()> {
    let shown = dir.display();
    match storage::probe_dir_or_parent(dir, &ctx.deadline.within(Duration::from_secs(10))) {
        Ok(()) => Ok(()),
        Err(p @ DirProblem::NotADirectory) => {
            Err(OcfError::args(format!("recovery_dir {shown} {p}")))
        }
        Err(p @ DirProblem::TimedOut(_)) => Err(OcfError::generic(p.to_string())),
        Err(p) => {
            log::debug!("recovery_dir {shown}: {p}");
            Err(OcfError::args(format!(
                "recovery_dir {shown} does not exist, nor its parent (is the shared file system mounted?)"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hanfs::ocf::{Metadata, OcfCode};

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
            std::path::PathBuf::from("/srv/nfs/cld")
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let long = "x".repeat(65);
        for (k, v, needle) in [
            ("lease_time", "5", "out of range"),
            ("grace_time", "4000", "out of range"),
            ("grace_time", "20", "shorter than lease_time=90"),
            ("nlm_grace_time", "300", "out of range"),
            ("threads", "0", "out of range"),
            ("threads", "many", "not an integer"),
            ("recovery_dir", "var/lib/nfs", "not an absolute path"),
            ("recovery_dir", "/srv/../etc", "'..'"),
            ("recovery_dir", "/", "root directory"),
            ("server_scope", "my scope", "contains ' '"),
            ("server_scope", &long, "1 to 64 characters"),
            ("end_grace_early", "perhaps", "not a boolean"),
        ] {
            let e = conf(&[(k, v)]).unwrap_err();
            assert_eq!(e.code, OcfCode::ErrConfigured, "{k}={v}: {e}");
            let named = format!("parameter {k}=\"{v}\": ");
            assert!(
                e.reason.contains(&named) && e.reason.contains(needle),
                "{k}={v}: {e}"
            );
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
}
