//! statd-holding: the NFSv3 lock-holding clients of a service, kept on its
//! shared storage by the statd callout, and notified from the floating
//! address(es) after a takeover (see metadata/statd-holding.xml). The
//! mechanism is in `hanfs::sys::statd`: the holding directory, the node's
//! registry the callout reads, sm-notify, the NLM grace watcher.
//!
//! - start: run rpc.statd if it is not running (without notifying), take
//!   the holding directory over (its clients, a new NSM state number),
//!   give the clients to this node's statd, register for the callout and
//!   copy what statd has, notify from each address, watch the reclaims to
//!   end lockd's grace early.
//! - monitor: registered here (else 7); rpc.statd runs (else 1: no new
//!   NFSv3 client can lock); statd's clients copied into the holding
//!   directory (the callout's safety net), and 1 naming those that cannot
//!   be written there; clients notified again when lockd restarted under
//!   them.
//! - stop: a last copy, the registration kept draining for late callouts,
//!   the notifiers and the watcher ended.

use hanfs::ocf::{self, Action, Agent, Ctx, OcfError, OcfResult, Params, ResultExt};
use hanfs::sys::net::subnet;
use hanfs::sys::nfsd::ProcRoots;
use hanfs::sys::procs::ProcId;
use hanfs::sys::statd::holding::{self, Reconciled, Taken, FULL_RECONCILE_EVERY};
use hanfs::sys::statd::nlmgrace::{self, Notified, Watch, WatchSettings};
use hanfs::sys::statd::registry::{self, Registration, Registry, Unrecorded};
use hanfs::sys::statd::statedir::{self, StatdDir};
use hanfs::sys::statd::{notify, resolve};
use hanfs::sys::storage::{self, DirProblem, Look};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

struct StatdHolding;

impl Agent for StatdHolding {
    type Config = Config;
    const NAME: &'static str = "statd-holding";
    const METADATA: &'static str = include_str!("../metadata/statd-holding.xml");

    fn needs_root(action: &Action) -> Option<&'static str> {
        matches!(action, Action::Start).then_some(
            "the agent registers for statd's callout in /run and runs rpc.statd and sm-notify",
        )
    }

    fn configure(p: &Params) -> OcfResult<Config> {
        Ok(Config {
            holding_dir: p.abs_dir("holding_dir")?,
            ips: p.value("ip", subnet::parse_floating_ips)?,
            statd_dir: p.optional("statd_dir", ocf::abs_path)?,
            notify_timeout: Duration::from_secs(p.uint("notify_timeout", 0..=3600)?),
            end_nlm_grace_early: p.bool("end_nlm_grace_early")?,
            reclaim_settle: Duration::from_secs(p.uint("reclaim_settle", 1..=60)?),
        })
    }

    fn validate(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        notify::program()?;
        let statd = StatdDir::find(cfg.statd_dir.as_deref())?;
        if [statd.base.clone(), statd.sm(), statd.sm_bak()].contains(&cfg.holding_dir) {
            return Err(OcfError::args(format!(
                "holding_dir {} is statd's own directory; use a dedicated directory on shared storage",
                cfg.holding_dir.display()
            )));
        }
        // sm-notify -v needs a name for each address (and may hang on DNS).
        resolve::require_names(&cfg.ips, &ctx.deadline.within(Duration::from_secs(15)))?;
        let within = ctx.deadline.within(Duration::from_secs(10));
        match storage::probe(&cfg.holding_dir, Look::Stat, &within) {
            Ok(_) => {}
            // On a node where the shared file system is not mounted (a
            // passive node) that is normal; start checks again.
            Err(p @ DirProblem::Missing) => {
                if ctx.inv.action == Action::ValidateAll {
                    log::warn!(
                        "{} on this node: fine where the shared file system is not mounted, but it must exist when the resource starts",
                        p.reason("holding_dir", &cfg.holding_dir)
                    )
                }
            }
            Err(p @ DirProblem::NotADirectory) => {
                return Err(OcfError::args(p.reason("holding_dir", &cfg.holding_dir)))
            }
            Err(p) => return Err(OcfError::generic(p.reason("holding_dir", &cfg.holding_dir))),
        }
        // (start runs rpc.statd if absent, and says what it runs)
        if ctx.inv.action == Action::ValidateAll {
            statedir::warn_without_callout();
        }
        Ok(())
    }

    fn start(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        let registry = Registry::default();
        registry.prune_expired();
        // 1. Already started: notifying again outside the grace period
        //    would make clients reclaim and fail, so only resynchronize. A
        //    holding directory another instance uses is refused.
        let previous = registry.load(ctx.instance()).ok().flatten();
        if let Some(reg) = previous.as_ref().filter(|r| r.active) {
            log::info!("already started; not notifying again");
            holding::reconcile_registered(&ctx.deadline, reg, None)?;
            return Ok(());
        }
        if let Some(other) = registry.active_user_of(&cfg.holding_dir, ctx.instance()) {
            return Err(OcfError::configured(format!(
                "holding_dir {} is already used by {other}",
                cfg.holding_dir.display()
            )));
        }
        let statd = StatdDir::find(cfg.statd_dir.as_deref())?;
        let owner = statd.owner().ok();
        let sm_notify = notify::program()?;
        notify::stop_all(&registry.notify_root(ctx.instance()), &[], &ctx.deadline)?;

        // 2. The clients the previous holder recorded; a new state number
        //    unless this is a restart in place, which notifies nobody (step
        //    5) and so writes nothing there: it works on a full or
        //    read-only holding directory, which is when its monitor fails.
        let lockd = registry::lockd_now();
        let in_place = in_place(ctx, previous.as_ref(), lockd);
        let taken = holding::take(&cfg.holding_dir, owner, !in_place, &ctx.deadline)?;
        // Without rpc.statd no new NFSv3 client can lock: run it (the
        // recovery after it died), with the callout nfs.conf names.
        statedir::start_statd_if_absent(&ctx.deadline)?;
        statedir::warn_without_callout();

        // 3. Give them to this node's statd (noting first those statd
        //    already monitored in this grace period: their lockd is back).
        let early = nlmgrace::monitored_since(
            &Watch::baseline(&statd.sm(), taken.held.keys().cloned()),
            nlmgrace::grace_began(&ctx.runtime_dir()),
        );
        let placed = holding::place_local(&statd.sm(), &taken.held, &holding::my_name(), owner)
            .or_generic(|| format!("cannot write to {}", statd.sm().display()))?;
        log::info!(
            "{} client(s) in holding_dir; {} given to statd, {} it already monitored",
            taken.held.len(),
            placed.created,
            placed.present
        );
        // What statd has for them before they are told to reclaim.
        let baseline = Watch::baseline(&statd.sm(), taken.held.keys().cloned());

        // 4. Register for the callout, then copy the clients statd already
        //    had: from here on no new client is missed.
        let mut reg = Registration {
            instance: ctx.instance().to_string(),
            holding_dir: cfg.holding_dir.clone(),
            holding_id: taken.id,
            statd_dir: statd.base.clone(),
            ips: cfg.ips.iter().map(IpAddr::to_string).collect(),
            active: true,
            drain_until: 0,
            notifiers: Vec::new(),
            reconciled_at: 0,
            fully_reconciled_at: 0,
            lockd,
            // (in place, still named by the failed monitor that caused it)
            reported: (previous.as_ref().filter(|_| in_place))
                .map(|p| p.reported.clone())
                .unwrap_or_default(),
        };
        registry.prepare_for_callout(ctx.instance(), owner, &taken.held)?;
        register(&registry, &reg)?;
        let t0 = registry::now_secs();
        let noted = registry.unrecorded(ctx.instance());
        let r = holding::reconcile_registered(&ctx.deadline, &reg, None)?;
        match settle_unrecorded(&registry, &reg, &noted, &r) {
            // In place lockd keeps these clients' locks: the restart
            // succeeds (a failed start would move the service to a node
            // that does not know them, and their locks would be lost), and
            // the monitor logs them until they are recorded.
            Err(e) if in_place => log::error!(
                "{}: lost if this node fails before they are recorded",
                e.reason
            ),
            settled => settled?,
        }
        // (a complete pass at the next monitor while some are not recorded)
        (reg.reconciled_at, reg.fully_reconciled_at) =
            (t0, if r.failed.is_empty() { t0 } else { 0 });
        if !r.written.is_empty() {
            log::info!(
                "copied {} client file(s) from statd to holding_dir",
                r.written.len()
            );
        }

        // 5. Notify from each floating address; watch them reclaim (or,
        //    with nobody to notify, end lockd's grace where that is safe).
        //    Not after a restart in place (statd died): lockd still holds
        //    the clients' locks and is in no grace period, so it would
        //    refuse their reclaims, and a client's lockd forgets each lock
        //    whose reclaim was refused (fs/lockd/clntlock.c, reclaimer):
        //    it would not reclaim it at the next takeover.
        if in_place {
            log::info!(
                "not notifying the {} client(s) in holding_dir: lockd has kept their locks since this resource last started here (no nfsd restart, no grace period since; a notification would make them reclaim, be refused and forget those locks)",
                taken.held.len()
            );
            return register(&registry, &reg);
        }
        let root = registry.notify_root(ctx.instance());
        let held = (&taken.held, taken.state);
        let mut jobs = notify::start(&root, &cfg.ips, held, owner, &sm_notify, &mut reg.notifiers)?;
        if taken.held.is_empty() {
            nlmgrace::end_if_alone(&registry, ctx.instance(), &ctx.runtime_dir());
        }
        register(&registry, &reg)?;
        let notified = Notified { baseline, early };
        nlmgrace::watch(
            watch_settings(ctx, cfg, &registry, &statd, &reg),
            notified,
            &ctx.deadline,
        );

        // 6. Wait for the answers, at most notify_timeout and never past
        //    the action's deadline (less a reserve).
        let reserve = Duration::from_secs(1);
        let limit = (cfg.notify_timeout).min(ctx.deadline.remaining().saturating_sub(reserve));
        notify::wait(&mut jobs, limit)
    }

    fn stop(ctx: &Ctx, _cfg: &Config) -> OcfResult<()> {
        let registry = Registry::default();
        // 1. A last copy of statd's clients (the callout wrote every one
        //    already: a safety net, which must not turn a stop into a
        //    fence); the registration stays, inactive, draining late
        //    callouts.
        let mut recorded = Vec::new();
        match registry.load(ctx.instance()) {
            Ok(Some(mut reg)) => {
                if reg.active {
                    let sync = (ctx.deadline)
                        .within(Duration::from_secs(10).min(ctx.deadline.remaining() / 2));
                    match holding::reconcile_registered(&sync, &reg, None) {
                        Ok(r) => {
                            if !r.written.is_empty() {
                                log::info!(
                                    "final copy: {} client file(s) added to holding_dir",
                                    r.written.len()
                                );
                            }
                            if let Some(why) = r.unrecorded_reason(&reg.holding_dir) {
                                log::error!("final copy: {why}: lost at the next takeover");
                            }
                        }
                        Err(e) => log::warn!("final copy to holding_dir failed: {e}"),
                    }
                    reg.active = false;
                    reg.drain_until = registry::now_secs() + registry::DRAIN_SECS;
                }
                recorded = std::mem::take(&mut reg.notifiers);
                registry
                    .save(&reg)
                    .or_generic(|| format!("cannot update {}", registry.dir.display()))?;
            }
            Ok(None) => {}
            Err(e) => log::warn!("unreadable registration ({e}); stopping what is found"),
        }

        // 2. The notifiers and the watcher end; their directories go.
        let root = registry.notify_root(ctx.instance());
        notify::stop_all(&root, &recorded, &ctx.deadline)?;
        nlmgrace::stop_watcher(&registry, ctx.instance(), &ctx.deadline);
        registry.remove_notify_root(ctx.instance())?;
        registry.prune_expired();
        Ok(())
    }

    fn monitor(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        // 1. Registered and active here (else 7).
        let registry = Registry::default();
        let mut reg = match registry.load(ctx.instance()) {
            Ok(Some(r)) if r.active => r,
            Ok(_) => return Err(OcfError::not_running("not active on this node")),
            Err(e) => return Err(OcfError::generic(format!("registration unreadable: {e}"))),
        };
        if reg.holding_dir != cfg.holding_dir {
            log::warn!(
                "running with holding_dir {} (configured now: {}); restart to change it",
                reg.holding_dir.display(),
                cfg.holding_dir.display()
            );
        }

        // 2. rpc.statd runs (else no new client can lock: 1).
        let with_callout = statedir::require_statd()?;

        // 3. statd's clients in the holding directory: those changed since
        //    the last pass, and now and then all (at once when the callout
        //    could not record some).
        let now = registry::now_secs();
        let noted = registry.unrecorded(ctx.instance());
        let full = !noted.is_empty()
            || reg.reconciled_at > now
            || now.saturating_sub(reg.fully_reconciled_at) >= FULL_RECONCILE_EVERY;
        // A margin for coarse file time stamps.
        let since = (!full).then(|| reg.reconciled_at.saturating_sub(2));
        let r = holding::reconcile_registered(&ctx.deadline, &reg, since)?;
        reg.reconciled_at = now;
        if full {
            reg.fully_reconciled_at = now;
        }
        if !r.failed.is_empty() {
            reg.fully_reconciled_at = 0; // all again next time
        }

        // 4. lockd restarted under the clients: they are told to reclaim.
        let renotified = renotify_after_lockd_restart(ctx, cfg, &registry, &mut reg);

        // 5. Every client recorded, else 1 naming them; but only once for
        //    the same clients: the failed action stands until cleaned up,
        //    and its recovery, a restart in place, cannot record them
        //    either (failing again would restart it over and over).
        let unrecorded: Vec<String> = r.failed.iter().map(|(n, _)| n.clone()).collect();
        let settled = match settle_unrecorded(&registry, &reg, &noted, &r) {
            Err(e) if unrecorded.iter().all(|n| reg.reported.contains(n)) => {
                log::error!(
                    "{}: lost if this node fails before they are recorded (reported by a failed monitor already)",
                    e.reason
                );
                Ok(())
            }
            settled => settled,
        };
        reg.reported = unrecorded;
        if let Err(e) = registry.save(&reg) {
            log::warn!("cannot update the registration: {e}");
        }
        // Missing although the callout had its time (not one it could
        // not record, not one statd has just written while it runs the
        // callout).
        let noted_now: Vec<&str> = noted.iter().map(|u| u.name.as_str()).collect();
        let in_flight = |w: &str| with_callout && r.in_flight.iter().any(|f| f == w);
        let unexpected: Vec<&str> = (r.written.iter().map(String::as_str))
            .filter(|w| !noted_now.contains(w) && !in_flight(w))
            .collect();
        if !unexpected.is_empty() {
            log::warn!(
                "added {} client(s) missing from holding_dir: {} (is rpc.statd running with the hanfs callout?)",
                unexpected.len(),
                unexpected.join(" ")
            );
        }
        settled?;
        renotified
    }
}

fn main() -> std::process::ExitCode {
    ocf::run::<StatdHolding>()
}

#[derive(Debug, Clone)]
struct Config {
    holding_dir: PathBuf,
    ips: Vec<IpAddr>,
    statd_dir: Option<PathBuf>,
    notify_timeout: Duration,
    end_nlm_grace_early: bool,
    reclaim_settle: Duration,
}

/// After a complete reconcile: forget the clients the callout could not
/// record (`noted`) that are recorded now or no longer monitored, saying
/// so; an error (1) naming the clients still not recorded: they would not
/// be notified after a failover. (A callout failing again meanwhile is
/// caught by the next monitor: statd rewrote that client's sm/ file.)
fn settle_unrecorded(
    registry: &Registry,
    reg: &Registration,
    noted: &[Unrecorded],
    r: &Reconciled,
) -> OcfResult<()> {
    for u in noted {
        if !r.failed.iter().any(|(n, _)| *n == u.name) {
            log::warn!(
                "{} is in holding_dir now; the statd callout could not record it: {}",
                u.name,
                u.why
            );
            if let Err(e) = registry.clear_unrecorded(&reg.instance, &u.name) {
                log::warn!("{e}");
            }
        }
    }
    match r.unrecorded_reason(&reg.holding_dir) {
        Some(why) => Err(OcfError::generic(why)),
        None => Ok(()),
    }
}

/// A start on the node where this resource last started, with lockd's
/// locks still there: no grace period in force, the same lockd thread,
/// no nfs-grace start (a new grace) since that start, and lockd holding
/// NLM locks. Then the clients need no notification.
fn in_place(ctx: &Ctx, previous: Option<&Registration>, lockd: Option<ProcId>) -> bool {
    let Some(prev) = previous else { return false };
    // whole seconds: a start (or monitor) in the second the grace began
    // counts as after it (a new grace is still refused by the checks below)
    let since_grace = nlmgrace::grace_began(&ctx.runtime_dir())
        .is_some_and(|(began, _)| (prev.reconciled_at as i64) >= began);
    prev.lockd.is_some()
        && prev.lockd == lockd
        && since_grace
        && ProcRoots::default().grace_state().refuses_reclaims()
        && nlmgrace::lockd_locks().is_some_and(|n| n > 0)
}

/// Save the registration the callout reads.
fn register(registry: &Registry, reg: &Registration) -> OcfResult<()> {
    (registry.save(reg)).or_generic(|| format!("cannot register in {}", registry.dir.display()))
}

/// How this instance's NLM grace watcher goes, for the notifiers of `reg`.
fn watch_settings<'a>(
    ctx: &'a Ctx,
    cfg: &Config,
    registry: &'a Registry,
    statd: &StatdDir,
    reg: &Registration,
) -> WatchSettings<'a> {
    WatchSettings {
        instance: ctx.instance(),
        registry,
        runtime_dir: ctx.runtime_dir(),
        sm: statd.sm(),
        notify_dirs: reg.notifiers.iter().map(|n| n.dir.clone()).collect(),
        ips: cfg.ips.clone(),
        settle: cfg.end_nlm_grace_early.then_some(cfg.reclaim_settle),
    }
}

/// lockd restarted since this instance last notified its clients (nfsd
/// was restarted to give another service arriving on the node its grace
/// period, or to release a departing one's file system): every NLM lock
/// on the node is gone, and this service's NFSv3 clients get them back
/// only if they are told to reclaim, now, during the new NLM grace.
fn renotify_after_lockd_restart(
    ctx: &Ctx,
    cfg: &Config,
    registry: &Registry,
    reg: &mut Registration,
) -> OcfResult<()> {
    let Some(now) = registry::lockd_now() else {
        return Ok(()); // nfsd is down: nfs-grace's monitor says so
    };
    let Some(before) = reg.lockd.filter(|b| *b != now) else {
        reg.lockd = Some(now); // unchanged, or nobody could lock before
        return Ok(());
    };
    log::warn!(
        "lockd restarted (pid {} -> {}): the NLM locks of this service's NFSv3 clients were dropped; notifying them to reclaim",
        before.pid,
        now.pid
    );
    let statd = StatdDir::find(cfg.statd_dir.as_deref())?;
    let owner = statd.owner().ok();
    let sm_notify = notify::program()?;
    let root = registry.notify_root(ctx.instance());
    notify::stop_all(&root, &std::mem::take(&mut reg.notifiers), &ctx.deadline)?;
    let taken: Taken = holding::take(&reg.holding_dir, owner, true, &ctx.deadline)?;
    let baseline = Watch::baseline(&statd.sm(), taken.held.keys().cloned());
    let early = nlmgrace::monitored_since(&baseline, nlmgrace::grace_began(&ctx.runtime_dir()));
    // Not waited for: sm-notify works on in the background as after start.
    let held = (&taken.held, taken.state);
    notify::start(&root, &cfg.ips, held, owner, &sm_notify, &mut reg.notifiers)?;
    let notified = Notified { baseline, early };
    nlmgrace::watch(
        watch_settings(ctx, cfg, registry, &statd, reg),
        notified,
        &ctx.deadline,
    );
    reg.lockd = Some(now);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configure(vars: &[(&str, &str)]) -> OcfResult<Config> {
        let meta = ocf::Metadata::parse(StatdHolding::METADATA).unwrap();
        let p = Params::from_vars(
            &meta,
            vars.iter()
                .map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.to_string())),
        );
        p.check_declared()?;
        StatdHolding::configure(&p)
    }

    fn parse_ips(ip: &str) -> OcfResult<Vec<IpAddr>> {
        configure(&[("holding_dir", "/srv/h"), ("ip", ip)]).map(|c| c.ips)
    }

    fn abs_dir(name: &str, dir: &str) -> OcfResult<PathBuf> {
        let mut vars = vec![("holding_dir", "/srv/h"), ("ip", "192.0.2.10")];
        vars.retain(|(k, _)| *k != name);
        vars.push((name, dir));
        let c = configure(&vars)?;
        Ok(if name == "holding_dir" {
            c.holding_dir
        } else {
            c.statd_dir.unwrap()
        })
    }

    #[test]
    fn addresses() {
        let v = parse_ips("192.0.2.10, 2001:db8::10 [2001:db8::11],192.0.2.10").unwrap();
        assert_eq!(v.len(), 3);
        for bad in [
            "",
            " , ",
            "192.0.2",
            "host.example",
            "0.0.0.0",
            "ff02::1",
            "192.0.2.1/24",
        ] {
            let e = parse_ips(bad).unwrap_err();
            assert_eq!(e.code, ocf::OcfCode::ErrConfigured, "{bad}");
            assert!(e.reason.contains("ip"), "{e}");
        }
    }

    #[test]
    fn a_loopback_address_is_refused() {
        for lo in ["127.0.0.1", "127.1.2.3", "::1", "192.0.2.10 [::1]"] {
            let e = parse_ips(lo).unwrap_err();
            assert_eq!(e.code, ocf::OcfCode::ErrConfigured, "{lo}");
            assert!(
                e.reason.contains("parameter ip") && e.reason.contains("loopback"),
                "{lo}: {e}"
            );
        }
    }

    #[test]
    fn directories() {
        assert_eq!(
            abs_dir("holding_dir", "/srv/h/").unwrap(),
            PathBuf::from("/srv/h")
        );
        for bad in ["srv/h", "/srv/../h", "/", "//"] {
            let e = abs_dir("holding_dir", bad).unwrap_err();
            assert!(e.reason.contains("holding_dir"), "{e}");
        }
    }

    #[test]
    fn metadata_and_code_agree() {
        ocf::check_description_matches_code::<StatdHolding>(&[
            ("holding_dir", "/srv/h"),
            ("ip", "192.0.2.10"),
            ("statd_dir", "/var/lib/nfs"),
        ])
        .unwrap();
        let meta = ocf::Metadata::parse(StatdHolding::METADATA).unwrap();
        let p = Params::from_vars(
            &meta,
            [
                ("OCF_RESKEY_holding_dir".into(), "/srv/h".into()),
                ("OCF_RESKEY_ip".into(), "192.0.2.10".into()),
            ],
        );
        let cfg = StatdHolding::configure(&p).unwrap();
        assert_eq!(cfg.notify_timeout, Duration::from_secs(10));
        assert_eq!(cfg.reclaim_settle, Duration::from_secs(3));
    }
}
