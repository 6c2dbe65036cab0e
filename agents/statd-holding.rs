//! statd-holding: the NFSv3 lock-holding clients of a service, kept on its
//! shared storage by the statd callout, and notified from the floating
//! address(es) after a takeover (see metadata/statd-holding.xml).

use hanfs::ocf::{self, Action, Agent, Ctx, Deadline, OcfError, OcfResult, Params, ResultExt};
use hanfs::sys::bounded;
use hanfs::sys::nfsd::{self, server};
use hanfs::sys::procs::ProcId;
use hanfs::sys::program;
use hanfs::sys::statd::holding::{self, Reconciled};
use hanfs::sys::statd::nlmgrace::{self, GraceId, Stamp, Status, Watch};
use hanfs::sys::statd::record::{self, RecordSet};
use hanfs::sys::statd::registry::{self, Notifier, Registration, Registry};
use hanfs::sys::statd::resolve::{self, AddrName};
use hanfs::sys::statd::statedir::{self, NfsConf, StatdDir};
use hanfs::sys::statd::{callout, notify};
use hanfs::sys::storage::{self, DirProblem, Look};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

struct StatdHolding;

#[derive(Debug, Clone)]
struct Config {
    holding_dir: PathBuf,
    ips: Vec<IpAddr>,
    statd_dir: Option<PathBuf>,
    notify_timeout: Duration,
    end_nlm_grace_early: bool,
    reclaim_settle: Duration,
}

/// `ip`: addresses separated by blanks or commas (IPv6 may be bracketed).
fn parse_ips(v: &str) -> Result<Vec<IpAddr>, String> {
    let tokens = v
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty());
    let mut out: Vec<IpAddr> = Vec::new();
    for a in ocf::each(tokens, floating_address)? {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    if out.is_empty() {
        return Err("names no address".into());
    }
    Ok(out)
}

fn floating_address(tok: &str) -> Result<IpAddr, String> {
    let bare = tok.trim_start_matches('[').trim_end_matches(']');
    let a: IpAddr = bare
        .parse()
        .map_err(|_| "not an IPv4 or IPv6 address".to_string())?;
    if a.is_unspecified() || a.is_multicast() {
        return Err("not a unicast address, which a floating address is".into());
    }
    // Notifications from loopback reach nobody (float-ip refuses it).
    if a.is_loopback() {
        return Err("a loopback address, which cannot be a floating address".into());
    }
    Ok(a)
}

fn sm_notify_program() -> OcfResult<PathBuf> {
    program::require("sm-notify", "nfs-utils / nfs-common")
}

fn statd_dir(cfg: &Config) -> OcfResult<StatdDir> {
    StatdDir::detect(cfg.statd_dir.as_deref(), &NfsConf::load()).map_err(|e| {
        if cfg.statd_dir.is_some() {
            OcfError::args(e)
        } else {
            OcfError::installed(e)
        }
    })
}

/// What the kernel lock manager here calls itself in SM_MON (`my_name`).
fn nodename() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// What start takes from the holding directory.
#[derive(serde::Serialize, serde::Deserialize)]
struct Taken {
    held: RecordSet,
    state: i32,
    id: (u64, u64),
}

/// Runs in a child (the directory is on shared storage): check the
/// directory, give it to statd's user, read the records, pick the state
/// number for this takeover.
fn take_holding(dir: &Path, owner: Option<(u32, u32)>) -> Result<Taken, String> {
    let show = dir.display();
    let m = match storage::look(dir, Look::Stat) {
        Ok(m) => m,
        Err(DirProblem::Missing) => {
            return Err(format!(
                "holding_dir {show} does not exist (shared file system not mounted?)"
            ))
        }
        Err(p @ DirProblem::NotADirectory) => return Err(format!("holding_dir {show} {p}")),
        Err(p) => return Err(format!("holding_dir {show}: {p}")),
    };
    // The callout runs as statd's user and writes here.
    if let Some((u, g)) = owner {
        if (m.uid, m.gid) != (u, g) {
            std::os::unix::fs::chown(dir, Some(u), Some(g))
                .map_err(|e| format!("cannot give holding_dir {show} to statd's user {u}: {e}"))?;
        }
        if m.mode & 0o700 != 0o700 {
            let mode = m.mode | 0o700;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
                .map_err(|e| format!("holding_dir {show}: {e}"))?;
        }
    }
    let held = record::read_dir(dir).map_err(|e| format!("cannot read holding_dir {show}: {e}"))?;
    let state = holding::next_state(dir, owner, registry::now_secs())
        .map_err(|e| format!("cannot write to holding_dir {show}: {e}"))?;
    let id = registry::dir_id(dir).map_err(|e| format!("holding_dir {show}: {e}"))?;
    Ok(Taken { held, state, id })
}

/// A complete reconcile at least this often (seconds); in between, a
/// monitor looks only at statd's files changed since its last pass.
const FULL_RECONCILE_EVERY: u64 = 600;

/// Copy every client statd monitors (changed since `since`, unix seconds)
/// into the registered holding directory (additions only), in a child
/// bounded by `deadline`, under the instance lock the callout takes too.
fn reconcile(deadline: &Deadline, reg: &Registration, since: Option<u64>) -> OcfResult<Reconciled> {
    let reg = reg.clone();
    let what = format!(
        "copying statd's clients to holding_dir {}",
        reg.holding_dir.display()
    );
    Ok(bounded::run(deadline, &what, move || {
        let show = reg.holding_dir.display();
        match registry::dir_id(&reg.holding_dir) {
            Ok(id) if id == reg.holding_id => {}
            Ok(_) => {
                return Err(format!(
                    "holding_dir {show} is no longer the directory registered at start (unmounted?)"
                ))
            }
            Err(e) => return Err(format!("holding_dir {show}: {e}")),
        }
        let statd = StatdDir::new(&reg.statd_dir);
        let registry = Registry::default();
        holding::reconcile(
            &statd.sm(),
            &reg.holding_dir,
            statd.owner().ok(),
            since,
            || registry.lock(&reg.instance, callout::LOCK_WAIT),
        )
        .map_err(|e| format!("cannot copy statd's clients to holding_dir {show}: {e}"))
    })?)
}

/// Warn when rpc.statd will not run the hanfs callout: then new clients
/// reach the holding directory only at the next monitor.
fn check_statd_callout() {
    let conf = NfsConf::load();
    let statds = statedir::running_statd(&conf);
    if statds.is_empty() {
        log::warn!(
            "no rpc.statd runs here: NFSv3 clients cannot lock until it does (run it with --no-notify and the hanfs callout)"
        );
    }
    for s in statds {
        match s.callout.as_deref() {
            Some(c) if Path::new(c).file_name().is_some_and(|n| n == "hanfs-statd-callout") => {
                log::debug!("rpc.statd (pid {}) runs the hanfs callout {c}", s.pid)
            }
            Some(c) => log::warn!(
                "rpc.statd (pid {}) runs the HA callout {c}, not hanfs-statd-callout: unless it calls ours, new clients reach holding_dir only at the next monitor",
                s.pid
            ),
            None => log::warn!(
                "rpc.statd (pid {}) runs without an HA callout: new clients reach holding_dir only at the next monitor; set [statd] ha-callout=/usr/libexec/hanfs/hanfs-statd-callout in /etc/nfs.conf and restart rpc.statd",
                s.pid
            ),
        }
    }
}

/// Stop this instance's notifiers: those recorded, and any sm-notify
/// working under its private directory. Error if one survives SIGKILL.
fn stop_notifiers(ctx: &Ctx, registry: &Registry, recorded: &[Notifier]) -> OcfResult<()> {
    let mut procs: Vec<ProcId> = recorded.iter().map(Notifier::process).collect();
    for p in notify::find_under(&registry.notify_root(ctx.instance())) {
        if !procs.iter().any(|q| q.pid == p.pid) {
            procs.push(p);
        }
    }
    procs.retain(ProcId::alive);
    if procs.is_empty() {
        return Ok(());
    }
    log::info!(
        "stopping sm-notify {:?}",
        procs.iter().map(|p| p.pid).collect::<Vec<_>>()
    );
    let left = notify::terminate(&procs, &ctx.deadline);
    if left.is_empty() {
        Ok(())
    } else {
        Err(OcfError::generic(format!(
            "sm-notify {left:?} did not exit after SIGKILL"
        )))
    }
}

/// Forget instances stopped longer ago than the drain time.
fn prune_expired(registry: &Registry) {
    let now = registry::now_secs();
    for r in registry.list() {
        if !r.receives_callouts(now) {
            let _ = registry.remove(&r.instance);
        }
    }
}

/// One address's notification run during start.
struct Job {
    addr: IpAddr,
    dir: PathBuf,
    log: PathBuf,
    child: Child,
    clients: usize,
    status: Option<std::process::ExitStatus>,
}

/// Wait until every notifier is done or has nobody left to notify, at
/// most `notify_timeout` (and never past the action's deadline minus a
/// reserve). A notifier that failed outright fails the start; clients
/// that have not answered are only logged.
fn wait_for_notifications(ctx: &Ctx, cfg: &Config, jobs: &mut [Job]) -> OcfResult<()> {
    let reserve = Duration::from_secs(1);
    let limit = cfg
        .notify_timeout
        .min(ctx.deadline.remaining().saturating_sub(reserve));
    let until = Deadline::after(limit);
    let reap = |jobs: &mut [Job]| {
        for j in jobs.iter_mut().filter(|j| j.status.is_none()) {
            j.status = j.child.try_wait().ok().flatten();
        }
    };
    until.poll(Duration::from_millis(50), || {
        reap(jobs);
        jobs.iter()
            .all(|j| j.status.is_some() || notify::pending(&j.dir).is_empty())
            .then_some(())
    });
    reap(jobs);
    for j in jobs.iter() {
        let left = notify::pending(&j.dir);
        match j.status {
            Some(st) if !st.success() && !left.is_empty() => {
                log::error!(
                    "sm-notify -v {} ended ({st}) before notifying anyone; is the address up on this node? Its log: {}",
                    j.addr,
                    j.log.display()
                );
                return Err(OcfError::generic(format!(
                    "sm-notify -v {} failed: {}",
                    j.addr,
                    notify::last_words(&j.log)
                )));
            }
            _ if left.is_empty() => {
                log::info!("notified all {} client(s) from {}", j.clients, j.addr)
            }
            _ => log::warn!(
                "from {}: {} of {} client(s) have not answered within {}s: {}; sm-notify keeps trying for {} minutes",
                j.addr,
                left.len(),
                j.clients,
                limit.as_secs(),
                left.join(" "),
                notify::RETRY_MINUTES
            ),
        }
    }
    Ok(())
}

/// The node's lockd thread (it runs while nfsd or an NFS mount needs it).
fn lockd_now() -> Option<ProcId> {
    server::lockd_thread().and_then(ProcId::of)
}

/// Start sm-notify for the clients in `taken` from each floating address,
/// recording the notifiers in `reg`.
fn notify_clients(
    registry: &Registry,
    ctx: &Ctx,
    cfg: &Config,
    reg: &mut Registration,
    taken: &Taken,
    owner: Option<(u32, u32)>,
    sm_notify: &Path,
) -> OcfResult<Vec<Job>> {
    let root = registry.notify_root(ctx.instance());
    std::fs::create_dir_all(&root)
        .and_then(|()| std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)))
        .or_generic(|| format!("cannot create {}", root.display()))?;
    let mut jobs = Vec::new();
    for addr in &cfg.ips {
        let recs = notify::records_for(addr, &taken.held);
        if recs.is_empty() {
            log::info!("no client to notify from {addr}");
            continue;
        }
        for (n, batch) in notify::batches(&recs).into_iter().enumerate() {
            let (dir, log) = notify::paths(&root, addr, n);
            notify::prepare_dir(&dir, &batch, taken.state, owner)
                .or_generic(|| format!("cannot prepare {}", dir.display()))?;
            let child = notify::spawn(sm_notify, addr, &dir, &log)
                .or_generic(|| format!("cannot run {}", sm_notify.display()))?;
            let pid = child.id() as i32;
            log::info!(
                "notifying {} client(s) from {addr} (state {}, sm-notify pid {pid})",
                batch.len(),
                taken.state
            );
            reg.notifiers.push(Notifier {
                pid,
                start_time: ProcId::of(pid).map_or(0, |p| p.start),
                addr: addr.to_string(),
                dir: dir.clone(),
            });
            jobs.push(Job {
                addr: *addr,
                dir,
                log,
                child,
                clients: batch.len(),
                status: None,
            });
        }
    }
    Ok(jobs)
}

/// sm-notify's own rule (it ends lockd's grace when it has nobody to
/// notify), kept only where it is safe with HA services: no client is
/// recorded for this service, so no NFSv3 client can reclaim an NLM lock,
/// and lockd's grace would only hold up new locks (NFSv3 and NFSv4) for
/// nothing. Not when another service runs on the node (its clients may be
/// notified later, into this same grace period), nor without exactly one
/// nfs-grace resource here (whoever else runs nfsd decides its grace).
fn end_nlm_grace_if_alone(ctx: &Ctx, registry: &Registry) {
    let others: Vec<String> = registry
        .list()
        .into_iter()
        .filter(|r| r.active && r.instance != ctx.instance())
        .map(|r| r.instance)
        .collect();
    let graces = nfsd::grace_resources(&ctx.runtime_dir());
    if !others.is_empty() || graces != 1 {
        log::info!(
            "no NFSv3 client to notify; lockd's grace period runs on ({} nfs-grace resource(s) on this node{})",
            graces,
            if others.is_empty() {
                String::new()
            } else {
                format!(", statd-holding {} active too", others.join(", "))
            }
        );
        return;
    }
    let roots = nfsd::ProcRoots::default();
    if roots.nlm_in_grace().unwrap_or(false) {
        match roots.end_nlm_grace() {
            Ok(()) => log::info!(
                "no NFSv3 client to notify and no other NFS service on this node: ended lockd's grace period (as sm-notify does), new locks need not wait"
            ),
            Err(e) => log::warn!("cannot end lockd's grace period: {e}"),
        }
    }
}

/// lockd restarted since this instance last notified its clients (nfsd
/// was restarted to give another service arriving on the node its grace
/// period, or to release a departing one's file system): every NLM lock
/// on the node is gone, and this service's NFSv3 clients get them back
/// only if they are told to reclaim, now, during the new NLM grace.
fn renotify_after_lockd_restart(ctx: &Ctx, cfg: &Config, reg: &mut Registration) -> OcfResult<()> {
    let Some(now) = lockd_now() else {
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
    let registry = Registry::default();
    let statd = statd_dir(cfg)?;
    let owner = statd.owner().ok();
    let sm_notify = sm_notify_program()?;
    stop_notifiers(ctx, &registry, &std::mem::take(&mut reg.notifiers))?;
    let dir = reg.holding_dir.clone();
    let what = format!("reading holding_dir {}", dir.display());
    let taken: Taken = bounded::run(&ctx.deadline, &what, move || take_holding(&dir, owner))?;
    let baseline = Watch::baseline(&statd.sm(), taken.held.keys().cloned());
    let early = nlmgrace::monitored_since(&baseline, nlmgrace::grace_began(&ctx.runtime_dir()));
    // Not waited for: sm-notify works on in the background as after start.
    notify_clients(&registry, ctx, cfg, reg, &taken, owner, &sm_notify)?;
    watch_nlm_grace(ctx, cfg, &registry, &statd, (baseline, early), reg);
    reg.lockd = Some(now);
    Ok(())
}

/// End this instance's NLM grace watcher, if one runs, and forget its
/// progress.
fn stop_watcher(ctx: &Ctx, registry: &Registry) {
    if let Some(w) = nlmgrace::load_status(registry, ctx.instance()).and_then(|s| s.watcher) {
        if w.alive() {
            log::info!("stopping the NLM grace watcher (pid {})", w.pid);
            notify::terminate(&[w], &ctx.deadline.within(Duration::from_secs(3)));
        }
    }
    nlmgrace::remove_status(registry, ctx.instance());
}

/// After notifying the clients of `baseline` (their statd records as they
/// were before the notifications; `early`, those statd monitored in this
/// grace before), watch for them to reclaim and end lockd's grace early
/// (see [`nlmgrace`]); or, when nobody was notified, record that this
/// instance has nobody to wait for.
fn watch_nlm_grace(
    ctx: &Ctx,
    cfg: &Config,
    registry: &Registry,
    statd: &StatdDir,
    (baseline, early): (BTreeMap<String, Stamp>, BTreeSet<String>),
    reg: &Registration,
) {
    stop_watcher(ctx, registry);
    let runtime_dir = ctx.runtime_dir();
    let grace = GraceId::now(&runtime_dir);
    let status = |done: bool, verdict: &str| Status {
        grace: grace.clone(),
        done,
        watcher: None,
        verdict: verdict.to_string(),
        ended_at: None,
        history: Vec::new(),
    };
    let save = |st: &Status| {
        if let Err(e) = nlmgrace::save_status(registry, ctx.instance(), st) {
            log::warn!("cannot record the NLM grace state: {e}");
        }
    };
    if baseline.is_empty() {
        save(&status(true, "no client notified"));
        return;
    }
    if !cfg.end_nlm_grace_early {
        log::info!(
            "end_nlm_grace_early=false: lockd's grace period runs its full time for the {} notified client(s)",
            baseline.len()
        );
        save(&status(false, "end_nlm_grace_early=false"));
        return;
    }
    let roots = nfsd::ProcRoots::default();
    let grace_secs = roots.nlm_grace_period().unwrap_or(240).min(240);
    let watch = Watch {
        instance: ctx.instance().to_string(),
        registry: registry.clone(),
        baseline,
        early,
        sm: statd.sm(),
        notify_dirs: reg.notifiers.iter().map(|n| n.dir.clone()).collect(),
        grace: grace.clone(),
        grace_lock: ocf::node_lock_file(&runtime_dir, "nfs-grace"),
        runtime_dir,
        roots,
        settle: cfg.reclaim_settle,
        // lockd rounds its grace up to 10 s; a little more, then give up.
        life: Duration::from_secs(u64::from(grace_secs) + 15),
        history: Default::default(),
    };
    let clients = watch.baseline.len();
    if !watch.early.is_empty() {
        let names: Vec<&str> = watch.early.iter().map(String::as_str).collect();
        log::info!(
            "statd monitored {} of the notified client(s) in this grace period before the notifications (their lockd is back): {}",
            names.len(),
            names.join(" ")
        );
    }
    save(&status(false, "watching"));
    match hanfs::sys::process::spawn_detached(c"statd-hold-nlmg", move || match watch.run() {
        nlmgrace::Verdict::End => 0,
        _ => 1,
    }) {
        Ok(p) => {
            log::info!(
                "watching the {clients} notified client(s) reclaim (pid {}): lockd's grace period ends once all are back and its locks are unchanged for {}s",
                p.pid,
                cfg.reclaim_settle.as_secs()
            );
            // The watcher records itself too; this covers a quick stop.
            let mut st = nlmgrace::load_status(registry, ctx.instance())
                .unwrap_or_else(|| status(false, "watching"));
            st.watcher = Some(p);
            save(&st);
        }
        Err(e) => {
            log::warn!("cannot watch the reclaims ({e}); lockd's grace period runs its full time")
        }
    }
}

impl Agent for StatdHolding {
    type Config = Config;
    const NAME: &'static str = "statd-holding";
    const METADATA: &'static str = include_str!("../metadata/statd-holding.xml");

    fn configure(p: &Params) -> OcfResult<Config> {
        Ok(Config {
            holding_dir: p.abs_dir("holding_dir")?,
            ips: p.value("ip", parse_ips)?,
            statd_dir: p.optional("statd_dir", ocf::abs_path)?,
            notify_timeout: Duration::from_secs(p.uint("notify_timeout", 0..=3600)?),
            end_nlm_grace_early: p.bool("end_nlm_grace_early")?,
            reclaim_settle: Duration::from_secs(p.uint("reclaim_settle", 1..=60)?),
        })
    }

    fn validate(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        sm_notify_program()?;
        let statd = statd_dir(cfg)?;
        if [statd.base.clone(), statd.sm(), statd.sm_bak()].contains(&cfg.holding_dir) {
            return Err(OcfError::args(format!(
                "holding_dir {} is statd's own directory; use a dedicated directory on shared storage",
                cfg.holding_dir.display()
            )));
        }
        // sm-notify -v needs a name for each address (and may hang on DNS).
        let ips = cfg.ips.clone();
        let names: Vec<(IpAddr, AddrName)> = bounded::run(
            &ctx.deadline.within(Duration::from_secs(15)),
            "looking up the host names of ip",
            move || Ok(ips.iter().map(|a| (*a, resolve::check_addr(*a))).collect()),
        )?;
        for (a, n) in names {
            match n {
                AddrName::Consistent(name) => log::debug!("ip {a} is {name}"),
                AddrName::OneWay { name, forward } => log::warn!(
                    "ip {a} maps to {name}, but {name} resolves to {forward}: clients may not match the notifications by name (they still match by address)"
                ),
                AddrName::NoName(why) => {
                    log::error!(
                        "ip {a} does not resolve to a host name on this node: add a PTR record or an /etc/hosts line for it on every node"
                    );
                    return Err(OcfError::args(format!(
                        "ip {a} has no host name ({why}); sm-notify -v needs one"
                    )));
                }
            }
        }
        let show = cfg.holding_dir.display();
        let within = ctx.deadline.within(Duration::from_secs(10));
        match storage::probe(&cfg.holding_dir, Look::Stat, &within) {
            Ok(_) => {}
            Err(p @ DirProblem::NotADirectory) => {
                return Err(OcfError::args(format!("holding_dir {show} {p}")))
            }
            // On a node where the shared file system is not mounted (a
            // passive node) that is normal; start checks again.
            Err(DirProblem::Missing) if ctx.inv.action == Action::ValidateAll => log::warn!(
                "holding_dir {show} does not exist on this node: fine where the shared file system is not mounted, but it must exist when the resource starts"
            ),
            Err(DirProblem::Missing) => {}
            Err(p @ DirProblem::TimedOut(_)) => return Err(OcfError::generic(p.to_string())),
            Err(p) => return Err(OcfError::generic(format!("holding_dir {show}: {p}"))),
        }
        check_statd_callout();
        Ok(())
    }

    fn start(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
        let registry = Registry::default();
        prune_expired(&registry);
        if let Ok(Some(reg)) = registry.load(ctx.instance()) {
            if reg.active {
                // Notifying again outside the grace period would make
                // clients reclaim and fail: only resynchronize.
                log::info!("already started; not notifying again");
                reconcile(&ctx.deadline, &reg, None)?;
                return Ok(());
            }
        }
        if let Some(other) = registry
            .list()
            .into_iter()
            .find(|r| r.active && r.holding_dir == cfg.holding_dir && r.instance != ctx.instance())
        {
            return Err(OcfError::configured(format!(
                "holding_dir {} is already used by {}",
                cfg.holding_dir.display(),
                other.instance
            )));
        }
        let statd = statd_dir(cfg)?;
        let owner = statd.owner().ok();
        let sm_notify = sm_notify_program()?;
        stop_notifiers(ctx, &registry, &[])?;

        // 1. The clients the previous holder recorded.
        let dir = cfg.holding_dir.clone();
        let what = format!("reading holding_dir {}", dir.display());
        let taken: Taken = bounded::run(&ctx.deadline, &what, move || take_holding(&dir, owner))?;

        // 2. Give them to this node's statd (noting first those statd
        //    already monitored in this grace period: their lockd is back).
        let early = nlmgrace::monitored_since(
            &Watch::baseline(&statd.sm(), taken.held.keys().cloned()),
            nlmgrace::grace_began(&ctx.runtime_dir()),
        );
        let placed = holding::place_local(&statd.sm(), &taken.held, &nodename(), owner)
            .or_generic(|| format!("cannot write to {}", statd.sm().display()))?;
        log::info!(
            "{} client(s) in holding_dir; {} given to statd, {} it already monitored",
            taken.held.len(),
            placed.created,
            placed.present
        );
        // What statd has for them before they are told to reclaim.
        let baseline = Watch::baseline(&statd.sm(), taken.held.keys().cloned());

        // 3. Register for the callout, then copy the clients statd already
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
            lockd: lockd_now(),
        };
        registry
            .save(&reg)
            .or_generic(|| "cannot register in /run/hanfs/statd-holding")?;
        let t0 = registry::now_secs();
        let r = reconcile(&ctx.deadline, &reg, None)?;
        (reg.reconciled_at, reg.fully_reconciled_at) = (t0, t0);
        if !r.written.is_empty() {
            log::info!(
                "copied {} client file(s) from statd to holding_dir",
                r.written.len()
            );
        }

        // 4. Notify from each floating address.
        let mut jobs = notify_clients(&registry, ctx, cfg, &mut reg, &taken, owner, &sm_notify)?;
        if taken.held.is_empty() {
            end_nlm_grace_if_alone(ctx, &registry);
        }
        registry
            .save(&reg)
            .or_generic(|| "cannot register in /run/hanfs/statd-holding")?;
        watch_nlm_grace(ctx, cfg, &registry, &statd, (baseline, early), &reg);
        wait_for_notifications(ctx, cfg, &mut jobs)
    }

    fn stop(ctx: &Ctx, _cfg: &Config) -> OcfResult<()> {
        let registry = Registry::default();
        let mut recorded = Vec::new();
        match registry.load(ctx.instance()) {
            Ok(Some(mut reg)) => {
                if reg.active {
                    let sync = ctx
                        .deadline
                        .within(Duration::from_secs(10).min(ctx.deadline.remaining() / 2));
                    match reconcile(&sync, &reg, None) {
                        Ok(r) if !r.written.is_empty() => {
                            log::info!(
                                "final copy: {} client file(s) added to holding_dir",
                                r.written.len()
                            )
                        }
                        Ok(_) => {}
                        // The callout wrote every client already; this copy
                        // is a safety net and must not turn a stop into a
                        // fence.
                        Err(e) => log::warn!("final copy to holding_dir failed: {e}"),
                    }
                    reg.active = false;
                    reg.drain_until = registry::now_secs() + registry::DRAIN_SECS;
                }
                recorded = std::mem::take(&mut reg.notifiers);
                registry
                    .save(&reg)
                    .or_generic(|| "cannot update /run/hanfs/statd-holding")?;
            }
            Ok(None) => {}
            Err(e) => log::warn!("unreadable registration ({e}); stopping what is found"),
        }
        stop_notifiers(ctx, &registry, &recorded)?;
        stop_watcher(ctx, &registry);
        let root = registry.notify_root(ctx.instance());
        if root.exists() {
            std::fs::remove_dir_all(&root)
                .or_generic(|| format!("cannot remove {}", root.display()))?;
        }
        prune_expired(&registry);
        Ok(())
    }

    fn monitor(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
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
        let now = registry::now_secs();
        let full = reg.reconciled_at > now
            || now.saturating_sub(reg.fully_reconciled_at) >= FULL_RECONCILE_EVERY;
        // A margin for coarse file time stamps.
        let since = (!full).then(|| reg.reconciled_at.saturating_sub(2));
        let r = reconcile(&ctx.deadline, &reg, since)?;
        reg.reconciled_at = now;
        if full {
            reg.fully_reconciled_at = now;
        }
        let renotified = renotify_after_lockd_restart(ctx, cfg, &mut reg);
        if let Err(e) = registry.save(&reg) {
            log::warn!("cannot update the registration: {e}");
        }
        if !r.written.is_empty() {
            log::warn!(
                "added {} client(s) missing from holding_dir: {} (is rpc.statd running with the hanfs callout?)",
                r.written.len(),
                r.written.join(" ")
            );
        }
        renotified
    }
}

fn main() -> std::process::ExitCode {
    ocf::run::<StatdHolding>()
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
