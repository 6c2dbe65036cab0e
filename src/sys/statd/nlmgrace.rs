//! Ending lockd's (NLM) grace period early after a takeover, when every
//! NFSv3 client notified has reclaimed (statd-holding).
//!
//! NLM has no end-of-reclaim signal, and a reclaim that arrives after the
//! grace is refused and the lock silently lost (the client logs "lockd:
//! spurious grace period reject?!", fs/lockd/clntproc.c nlmclnt_call;
//! its process still believes it holds the lock). What the server can see
//! (Linux 6.1, fs/lockd):
//!
//! - a notified client's lockd answers SM_NOTIFY (sm-notify then deletes
//!   the client's file from its `sm.bak/`), spawns a reclaimer thread per
//!   server host (clntlock.c nlmclnt_recovery, reclaimer) that sends one
//!   NLM_LOCK with `reclaim` set per lock, synchronously, one after the
//!   other, as hard RPCs; its own new locks wait until it is done
//!   (`h_reclaiming`);
//! - the server lockd asks the local rpc.statd to monitor a client at its
//!   first NLM_LOCK (svc4proc.c nlm4svc_retrieve_args → mon.c
//!   nsm_monitor), and statd writes the client's `sm/` file (and runs the
//!   HA callout) when it did not monitor it yet; statd-holding start puts
//!   the file there itself just before notifying, so a later change of it
//!   means the client's reclaim has begun;
//! - every lock lockd grants is a POSIX lock owned by the lockd thread
//!   (`fl_pid` = lockd's pid in `/proc/locks`).
//!
//! The rule ([`decide`]): every client notified has answered *and* has come
//! back (its `sm/` file changed since start, or statd wrote it in this
//! grace period before the notifications: the client's lockd sent a new
//! lock as soon as it could reach the node again, which is what a client
//! whose applications lock during the failover does, and lockd, which
//! monitors a host once, does not ask statd again when it reclaims), and
//! lockd's lock table has not changed for the settle time (statd-holding's
//! `reclaim_settle`) since the last of
//! those events (an answer included: the reclaimer starts when its client
//! gets the notification); every other
//! statd-holding instance on the node has reached the same point in this
//! same grace period; the node's nfs-grace resources allow an early end.
//! A client that does not answer, or answers but sends no lock in this
//! grace period (it holds none, or statd already monitored it before the
//! grace began), keeps the grace to its end.

use super::notify;
use super::registry::Registry;
use crate::ocf::{Deadline, OcfResult};
use crate::sys::net::tickle::Connection;
use crate::sys::nfsd::{self, ProcRoots};
use crate::sys::procs::ProcId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often the watcher looks.
pub const POLL: Duration = Duration::from_millis(200);
/// The most of `/proc/locks` read; a larger table counts as changing.
pub const LOCKS_CAP: u64 = 32 << 20;

/// Which grace period: lockd's thread and the nfs-grace resources of the
/// node (their state files, rewritten by each of their starts and stops,
/// which is when nfsd and lockd restart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraceId {
    pub lockd: Option<ProcId>,
    pub graces: u64,
}

impl GraceId {
    pub fn now(runtime_dir: &Path) -> GraceId {
        let files: Vec<(String, (i64, i64))> = nfsd::grace_states(runtime_dir)
            .into_iter()
            .map(|g| (g.instance, g.mtime))
            .collect();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        files.hash(&mut h);
        GraceId {
            lockd: nfsd::server::lockd_thread().and_then(ProcId::of),
            graces: h.finish(),
        }
    }
}

/// When the node's current grace period began, as far as this node can
/// tell: the last write of an nfs-grace state file (each start writes it
/// once nfsd and lockd run in their new grace). `None`: no nfs-grace here.
pub fn grace_began(runtime_dir: &Path) -> Option<(i64, i64)> {
    nfsd::grace_states(runtime_dir)
        .into_iter()
        .map(|g| g.mtime)
        .max()
}

/// The clients whose statd record statd wrote in this grace period, before
/// they were notified: their lockd already sent this node a lock since
/// lockd's grace began (a lock its application asked for after the
/// failover, sent when the connection came back), so lockd had statd
/// monitor them then and will not ask again when they reclaim. `stamps`
/// are their records before statd-holding puts its own in `sm/` (only
/// files present then count; see [`Watch::baseline`]).
pub fn monitored_since(
    stamps: &BTreeMap<String, Stamp>,
    began: Option<(i64, i64)>,
) -> std::collections::BTreeSet<String> {
    let Some(began) = began else {
        return Default::default();
    };
    stamps
        .iter()
        .filter(|(_, st)| matches!(st, Some((_, s, ns)) if (*s, *ns) >= began))
        .map(|(c, _)| c.clone())
        .collect()
}

/// An instance's progress, in `<registry>/<instance>.nlm` (read by the
/// other instances' watchers and by stop).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub grace: GraceId,
    /// Every client this instance notified into this grace is back and
    /// its reclaims are over (true at once when it notified nobody).
    pub done: bool,
    pub watcher: Option<ProcId>,
    /// The watcher's last word, for people and tests.
    pub verdict: String,
    /// When the watcher ended lockd's grace (unix seconds, taken just
    /// before the write).
    #[serde(default)]
    pub ended_at: Option<f64>,
    /// Every verdict the watcher reached, with its unix time: how the
    /// decision went, for people and the lab report (at most 64 kept).
    #[serde(default)]
    pub history: Vec<String>,
}

pub fn status_file(registry: &Registry, instance: &str) -> PathBuf {
    registry
        .dir
        .join(format!("{}.nlm", super::registry::safe_name(instance)))
}

/// The instance's progress; `None` when there is none or it is damaged.
pub fn load_status(registry: &Registry, instance: &str) -> Option<Status> {
    crate::ocf::load_state(&status_file(registry, instance))
        .ok()
        .flatten()
}

pub fn save_status(registry: &Registry, instance: &str, st: &Status) -> OcfResult<()> {
    registry.ensure()?;
    crate::ocf::save_state_readable(&status_file(registry, instance), st)
}

pub fn remove_status(registry: &Registry, instance: &str) {
    let _ = std::fs::remove_file(status_file(registry, instance));
}

/// One notified client as seen now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub name: String,
    /// It answered SM_NOTIFY.
    pub answered: bool,
    /// Its lockd sent this node a lock since start (statd recorded it anew).
    pub back: bool,
    /// It has a TCP connection to lockd on one of this service's
    /// addresses, accepted by lockd in this grace ([`connected_clients`]).
    pub connected: bool,
}

/// The nfs-grace resources of the node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeGrace {
    pub resources: usize,
    /// Those that run with end_grace_early=false (keep the timers).
    pub keep_timers: Vec<String>,
}

/// What the watcher saw.
#[derive(Debug, Clone)]
pub struct Observation {
    /// `nlm_end_grace` reads N (None: unreadable).
    pub grace_on: Option<bool>,
    /// Still the grace period the clients were notified into.
    pub same_grace: bool,
    pub clients: Vec<Client>,
    /// Since the last client came back or lockd's lock table changed.
    pub quiet: Duration,
    /// The other active statd-holding instances: (name, done in this grace).
    pub others: Vec<(String, bool)>,
    pub node: NodeGrace,
    /// Why connections to lockd are no evidence in this grace (see
    /// [`connections_count`]); `None`: they are.
    pub connections_ignored: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// End lockd's grace now.
    End,
    /// Not yet (why).
    Wait(String),
    /// Never, in this grace period (why).
    Never(String),
}

/// The decision, and whether this instance's own clients are done.
pub fn decide(o: &Observation, settle: Duration) -> (bool, Verdict) {
    let never = |s: String| (false, Verdict::Never(s));
    match o.grace_on {
        Some(true) => {}
        Some(false) => return never("lockd's grace period is over".into()),
        None => return never("lockd's grace state is unreadable".into()),
    }
    if !o.same_grace {
        return never(
            "lockd or an nfs-grace resource restarted since the notifications: another grace period".into(),
        );
    }
    if o.node.resources == 0 {
        return never(
            "no nfs-grace resource on this node: whoever runs nfsd decides its grace".into(),
        );
    }
    if !o.node.keep_timers.is_empty() {
        return never(format!(
            "nfs-grace {} runs with end_grace_early=false",
            o.node.keep_timers.join(", ")
        ));
    }
    let names = |f: &dyn Fn(&Client) -> bool| -> Vec<&str> {
        o.clients
            .iter()
            .filter(|c| f(c))
            .map(|c| c.name.as_str())
            .collect()
    };
    let silent = names(&|c| !c.answered);
    if !silent.is_empty() {
        return (
            false,
            Verdict::Wait(format!("not answered yet: {}", silent.join(" "))),
        );
    }
    let away = names(&|c| !c.back && !c.connected);
    if !away.is_empty() {
        let why = match &o.connections_ignored {
            Some(w) => format!(" (connections to lockd not counted: {w})"),
            None => String::new(),
        };
        return (
            false,
            Verdict::Wait(format!("no lock reclaimed yet by {}{why}", away.join(" "))),
        );
    }
    if o.quiet < settle {
        return (
            false,
            Verdict::Wait(format!(
                "reclaims still arriving ({:.1}s quiet of {}s)",
                o.quiet.as_secs_f64(),
                settle.as_secs()
            )),
        );
    }
    let busy: Vec<&str> = o
        .others
        .iter()
        .filter(|(_, done)| !done)
        .map(|(n, _)| n.as_str())
        .collect();
    if !busy.is_empty() {
        return (
            true,
            Verdict::Wait(format!(
                "the clients of statd-holding {} may still reclaim",
                busy.join(", ")
            )),
        );
    }
    let holdings = o.others.len() + 1;
    if o.node.resources > holdings {
        return (
            true,
            Verdict::Wait(format!(
                "{} nfs-grace resources but {holdings} statd-holding: the NFSv3 clients of a service without one are unknown",
                o.node.resources
            )),
        );
    }
    (true, Verdict::End)
}

/// lockd's locks in `/proc/locks` text (`pid` = lockd's pid as this
/// process sees it; every lock when unknown): how many, and a digest.
pub fn lock_digest(text: &str, lockd_pid: Option<i32>) -> (usize, u64) {
    let mut lines: Vec<Vec<&str>> = text
        .lines()
        .filter_map(|l| {
            let t: Vec<&str> = l.split_whitespace().skip(1).collect();
            let body = t.strip_prefix(&["->"]).unwrap_or(&t[..]);
            let pid = body.get(3).and_then(|p| p.parse::<i32>().ok());
            (pid.is_some() && (lockd_pid.is_none() || pid == lockd_pid)).then_some(t)
        })
        .collect();
    lines.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    lines.hash(&mut h);
    (lines.len(), h.finish())
}

/// The notified clients (name → addresses) with an established TCP
/// connection from one of their addresses to lockd's TCP `port` on one of
/// this service's addresses `ips`: their lockd (client side, the one
/// transport per server address it sends new locks and reclaims on:
/// fs/lockd/clntlock.c reclaimer, host.c nlm_bind_host) reached this
/// node's lockd. A client whose name resolves to several addresses counts
/// from any of them.
pub fn connected_clients(
    conns: &[Connection],
    ips: &[IpAddr],
    port: u16,
    addrs: &BTreeMap<String, Vec<IpAddr>>,
) -> BTreeSet<String> {
    let peers: BTreeSet<IpAddr> = conns
        .iter()
        .filter(|c| c.local.port() == port && ips.contains(&c.local.ip()))
        .map(|c| c.remote.ip())
        .collect();
    addrs
        .iter()
        .filter(|(_, a)| a.iter().any(|ip| peers.contains(ip)))
        .map(|(n, _)| n.clone())
        .collect()
}

/// Whether a connection to lockd says anything about this grace period:
/// only when every connection lockd has was accepted in it. A lockd that
/// starts (lockd_up, when nfsd starts) begins its grace with no socket,
/// and its stop (the last lockd_down) closes every one; but a grace
/// restarted without a new lockd (SIGKILL on kernels before 6.6,
/// fs/lockd/svc.c restart_grace) keeps the connections made before it,
/// from clients whose locks it has just dropped. So: `lockd_age`, the
/// age of lockd's thread, must be under `grace` (lockd's grace length,
/// `nlm_grace_period` rounded up to lockd's 10-s ticks): a grace that is
/// still on then began with that thread. `Err`: why not.
pub fn connections_count(lockd_age: Option<Duration>, grace: Duration) -> Result<(), String> {
    match lockd_age {
        None => Err("lockd's age is unknown".into()),
        Some(a) if a >= grace => Err(format!(
            "lockd's thread is {}s old, older than its {}s grace: the grace was restarted without a new lockd, whose earlier connections remain",
            a.as_secs(),
            grace.as_secs()
        )),
        Some(_) => Ok(()),
    }
}

/// How many NLM locks lockd holds on this node (its entries in
/// `/proc/locks`); `None` when its thread or the table cannot be read.
pub fn lockd_locks() -> Option<usize> {
    let pid = nfsd::server::lockd_thread()?;
    Some(lock_digest(&read_locks()?, Some(pid)).0)
}

/// `/proc/locks`, at most [`LOCKS_CAP`] (`None`: unreadable or larger).
fn read_locks() -> Option<String> {
    let f = std::fs::File::open("/proc/locks").ok()?;
    let mut s = String::new();
    let n = f.take(LOCKS_CAP + 1).read_to_string(&mut s).ok()?;
    (n as u64 <= LOCKS_CAP).then_some(s)
}

/// A statd record file's identity: changes when statd writes it.
pub type Stamp = Option<(u64, i64, i64)>;

pub fn stamp(p: &Path) -> Stamp {
    std::fs::symlink_metadata(p)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| (m.ino(), m.mtime(), m.mtime_nsec()))
}

/// The nfs-grace resources of the node, from their state files.
pub fn node_grace(runtime_dir: &Path) -> NodeGrace {
    let states = nfsd::grace_states(runtime_dir);
    let mut g = NodeGrace {
        resources: states.len(),
        keep_timers: Vec::new(),
    };
    for st in states {
        let v: Option<serde_json::Value> = crate::ocf::load_state(&st.path).ok().flatten();
        if v.as_ref()
            .and_then(|v| v.pointer("/config/end_grace_early"))
            .and_then(serde_json::Value::as_bool)
            == Some(false)
        {
            g.keep_timers.push(st.instance);
        }
    }
    g.keep_timers.sort();
    g
}

/// What a watcher works from (taken by start, right after it notified).
#[derive(Debug, Clone)]
pub struct Watch {
    pub instance: String,
    pub registry: Registry,
    /// Client name → its statd record file's stamp at start.
    pub baseline: BTreeMap<String, Stamp>,
    /// The clients statd monitored in this grace before they were
    /// notified ([`monitored_since`]): back already.
    pub early: std::collections::BTreeSet<String>,
    pub sm: PathBuf,
    /// The private sm-notify directories (who has not answered).
    pub notify_dirs: Vec<PathBuf>,
    /// This service's floating addresses (its clients' lockd connects there).
    pub ips: Vec<IpAddr>,
    /// Lockd's grace length, rounded up to lockd's 10-s ticks.
    pub grace_len: Duration,
    pub grace: GraceId,
    pub runtime_dir: PathBuf,
    /// nfs-grace's node lock, held by its starts and stops (nfsd restarts).
    pub grace_lock: PathBuf,
    pub roots: ProcRoots,
    /// How long lockd's lock table must stay unchanged after the last
    /// client came back before the reclaims count as done (statd-holding's
    /// `reclaim_settle`).
    pub settle: Duration,
    /// The watcher gives up after this (lockd's grace is over by then).
    pub life: Duration,
    /// The verdicts published so far (see [`Status::history`]).
    pub history: std::cell::RefCell<Vec<String>>,
}

impl Watch {
    /// The baseline for `clients`, now.
    pub fn baseline(
        sm: &Path,
        clients: impl IntoIterator<Item = String>,
    ) -> BTreeMap<String, Stamp> {
        clients
            .into_iter()
            .map(|c| {
                let s = stamp(&sm.join(&c));
                (c, s)
            })
            .collect()
    }

    /// The clients' addresses: a name that is an address is that address,
    /// any other is resolved (once, by the watcher; a name that does not
    /// resolve has no connection to show).
    fn client_addrs(&self) -> BTreeMap<String, Vec<IpAddr>> {
        (self.baseline.keys())
            .map(|n| {
                let a = match n.parse::<IpAddr>() {
                    Ok(ip) => vec![ip],
                    Err(_) => super::resolve::forward_addrs(n).unwrap_or_default(),
                };
                (n.clone(), a)
            })
            .collect()
    }

    /// The clients connected to lockd now ([`connected_clients`]), or why
    /// connections do not count.
    fn connected(&self, addrs: &BTreeMap<String, Vec<IpAddr>>) -> Result<BTreeSet<String>, String> {
        connections_count(self.grace.lockd.and_then(|p| p.age()), self.grace_len)?;
        let port = nfsd::server::lockd_port(&self.roots, true)
            .ok_or("lockd's TCP port is unknown (rpcbind?)")?;
        let d = Deadline::after(Duration::from_secs(1));
        let mut conns = Vec::new();
        for ip in &self.ips {
            conns.extend(
                crate::sys::net::sockdiag::established_to(*ip, &d)
                    .map_err(|e| format!("cannot list TCP connections: {e}"))?,
            );
        }
        Ok(connected_clients(&conns, &self.ips, port, addrs))
    }

    fn observe(&self, quiet_since: Instant, addrs: &BTreeMap<String, Vec<IpAddr>>) -> Observation {
        let connected = self.connected(addrs);
        let pending: Vec<String> = self
            .notify_dirs
            .iter()
            .flat_map(|d| notify::pending(d))
            .collect();
        let me = self.instance.as_str();
        let others = self
            .registry
            .list()
            .into_iter()
            .filter(|r| r.active && r.instance != me)
            .map(|r| {
                let done = load_status(&self.registry, &r.instance)
                    .is_some_and(|s| s.done && s.grace == self.grace);
                (r.instance, done)
            })
            .collect();
        Observation {
            grace_on: self.roots.nlm_in_grace().ok(),
            same_grace: GraceId::now(&self.runtime_dir) == self.grace,
            clients: self
                .baseline
                .iter()
                .map(|(name, base)| {
                    let now = stamp(&self.sm.join(name));
                    Client {
                        name: name.clone(),
                        answered: !pending.contains(name),
                        back: self.early.contains(name) || (now.is_some() && now != *base),
                        connected: connected.as_ref().is_ok_and(|c| c.contains(name)),
                    }
                })
                .collect(),
            quiet: quiet_since.elapsed(),
            others,
            node: node_grace(&self.runtime_dir),
            connections_ignored: connected.err(),
        }
    }

    fn publish(&self, done: bool, verdict: &str) {
        self.publish_at(done, verdict, None)
    }

    fn publish_at(&self, done: bool, verdict: &str, ended_at: Option<f64>) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let history = {
            let mut h = self.history.borrow_mut();
            if h.len() < 64 {
                h.push(format!("{now:.3} {verdict}"));
            }
            h.clone()
        };
        let st = Status {
            grace: self.grace.clone(),
            done,
            watcher: ProcId::of(std::process::id() as i32),
            verdict: verdict.to_string(),
            ended_at,
            history,
        };
        if let Err(e) = save_status(&self.registry, &self.instance, &st) {
            log::warn!("cannot record the NLM grace watch: {e}");
        }
    }

    /// Watch until lockd's grace can end (then end it), cannot, or the
    /// watcher's life is over. Returns the last verdict.
    pub fn run(&self) -> Verdict {
        let t0 = Instant::now();
        let lockd_pid = self.grace.lockd.map(|p| p.pid);
        let mut last = read_locks().map(|t| lock_digest(&t, lockd_pid));
        let mut quiet_since = t0;
        let mut back: usize = 0;
        let mut done = false;
        let mut said = String::new();
        let addrs = self.client_addrs();
        loop {
            let now = read_locks().map(|t| lock_digest(&t, lockd_pid));
            if now.is_none() || now != last {
                quiet_since = Instant::now();
                last = now;
            }
            let o = self.observe(quiet_since, &addrs);
            let b = o
                .clients
                .iter()
                .map(|c| c.back as usize + c.answered as usize + c.connected as usize)
                .sum();
            if b != back {
                back = b;
                quiet_since = Instant::now();
            }
            let (mine, v) = decide(&o, self.settle);
            let words = match &v {
                Verdict::End => "ending".to_string(),
                Verdict::Wait(w) | Verdict::Never(w) => w.clone(),
            };
            if mine != done || words != said {
                done = mine;
                said = words.clone();
                self.publish(done, &words);
            }
            match v {
                Verdict::End => {
                    if let Some(v) = self.end(t0, last.map_or(0, |l| l.0), &addrs) {
                        return v;
                    }
                    if t0.elapsed() >= self.life {
                        let why = "an nfs-grace action held its node lock".to_string();
                        log::info!("lockd's grace period runs to its end: {why}");
                        return Verdict::Never(why);
                    }
                    std::thread::sleep(POLL);
                }
                Verdict::Never(why) => {
                    log::info!("lockd's grace period is not ended early: {why}");
                    return Verdict::Never(why);
                }
                Verdict::Wait(why) if t0.elapsed() >= self.life => {
                    log::info!("lockd's grace period runs to its end: {why}");
                    self.publish(done, &format!("gave up: {why}"));
                    return Verdict::Never(why);
                }
                Verdict::Wait(_) => std::thread::sleep(POLL),
            }
        }
    }

    /// End the grace, under nfs-grace's node lock (so that no nfsd restart,
    /// which starts a new grace period for other clients, slips in between
    /// the last look and the write).
    fn end(
        &self,
        t0: Instant,
        locks: usize,
        addrs: &BTreeMap<String, Vec<IpAddr>>,
    ) -> Option<Verdict> {
        // Held by an nfs-grace start or stop under way: look again later.
        let _lock = crate::sys::fsfile::lock_exclusive(
            &self.grace_lock,
            &crate::ocf::Deadline::after(Duration::from_secs(2)),
        )
        .ok()?;
        let again = self.observe(Instant::now(), addrs);
        if again.grace_on != Some(true) || !again.same_grace {
            let why = "the grace period changed at the last moment".to_string();
            log::info!("lockd's grace period is not ended early: {why}");
            self.publish(true, &why);
            return Some(Verdict::Never(why));
        }
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .ok();
        match self.roots.end_nlm_grace() {
            Ok(()) => {
                let words = format!(
                    "ended lockd's grace period {:.1}s after the notifications: all {} notified client(s) answered and reclaimed, lockd's {locks} lock(s) unchanged for {}s, no other service's client left to reclaim",
                    t0.elapsed().as_secs_f64(),
                    self.baseline.len(),
                    self.settle.as_secs()
                );
                log::info!("{words}");
                self.publish_at(true, &words, at);
                Some(Verdict::End)
            }
            Err(e) => {
                log::warn!("cannot end lockd's grace period: {e}");
                self.publish(true, &e.reason);
                Some(Verdict::Never(e.reason))
            }
        }
    }
}

/// sm-notify's own rule (it ends lockd's grace when it has nobody to
/// notify), kept only where it is safe with HA services: `instance` has no
/// client recorded, so no NFSv3 client can reclaim an NLM lock, and
/// lockd's grace would only hold up new locks (NFSv3 and NFSv4) for
/// nothing. Not when another statd-holding instance is active on the node
/// (its clients may be notified later, into this same grace period), nor
/// without exactly one nfs-grace resource here (whoever else runs nfsd
/// decides its grace).
pub fn end_if_alone(registry: &Registry, instance: &str, runtime_dir: &Path) {
    let others: Vec<String> = registry
        .list()
        .into_iter()
        .filter(|r| r.active && r.instance != instance)
        .map(|r| r.instance)
        .collect();
    let graces = nfsd::grace_resources(runtime_dir);
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
    let roots = ProcRoots::default();
    if roots.nlm_in_grace().unwrap_or(false) {
        match roots.end_nlm_grace() {
            Ok(()) => log::info!(
                "no NFSv3 client to notify and no other NFS service on this node: ended lockd's grace period (as sm-notify does), new locks need not wait"
            ),
            Err(e) => log::warn!("cannot end lockd's grace period: {e}"),
        }
    }
}

/// End `instance`'s watcher, if one runs, and forget its progress.
pub fn stop_watcher(registry: &Registry, instance: &str, deadline: &Deadline) {
    if let Some(w) = load_status(registry, instance).and_then(|s| s.watcher) {
        if w.alive() {
            log::info!("stopping the NLM grace watcher (pid {})", w.pid);
            notify::terminate(&[w], &deadline.within(Duration::from_secs(3)));
        }
    }
    remove_status(registry, instance);
}

/// The clients an instance has just notified: their statd records as they
/// were before the notifications, and those statd monitored in this grace
/// before ([`monitored_since`]).
pub struct Notified {
    pub baseline: BTreeMap<String, Stamp>,
    pub early: BTreeSet<String>,
}

/// How an instance's watch goes: `settle` is `reclaim_settle`, `None`
/// when the early end is off (end_nlm_grace_early=false).
pub struct WatchSettings<'a> {
    pub instance: &'a str,
    pub registry: &'a Registry,
    pub runtime_dir: PathBuf,
    /// This node's statd `sm/`.
    pub sm: PathBuf,
    /// The notifiers' private directories (who has not answered).
    pub notify_dirs: Vec<PathBuf>,
    /// The service's floating addresses.
    pub ips: Vec<IpAddr>,
    pub settle: Option<Duration>,
}

/// After an instance notified `notified`, watch for them to reclaim and
/// end lockd's grace early, from a detached watcher (the [`Watch`]); or,
/// when nobody was notified or the early end is off, record that this
/// instance will not end it. Any earlier watcher of the instance ends
/// first. Failing to watch is logged: the grace then runs its full time.
pub fn watch(w: WatchSettings, notified: Notified, deadline: &Deadline) {
    let (registry, instance) = (w.registry, w.instance);
    stop_watcher(registry, instance, deadline);
    let grace = GraceId::now(&w.runtime_dir);
    let status = |done: bool, verdict: &str| Status {
        grace: grace.clone(),
        done,
        watcher: None,
        verdict: verdict.to_string(),
        ended_at: None,
        history: Vec::new(),
    };
    let save = |st: &Status| {
        if let Err(e) = save_status(registry, instance, st) {
            log::warn!("cannot record the NLM grace state: {e}");
        }
    };
    if notified.baseline.is_empty() {
        save(&status(true, "no client notified"));
        return;
    }
    let Some(settle) = w.settle else {
        log::info!(
            "end_nlm_grace_early=false: lockd's grace period runs its full time for the {} notified client(s)",
            notified.baseline.len()
        );
        save(&status(false, "end_nlm_grace_early=false"));
        return;
    };
    let roots = ProcRoots::default();
    let grace_secs = roots.nlm_grace_period().unwrap_or(240).min(240);
    let watch = Watch {
        instance: instance.to_string(),
        registry: registry.clone(),
        baseline: notified.baseline,
        early: notified.early,
        sm: w.sm,
        notify_dirs: w.notify_dirs,
        ips: w.ips,
        grace_len: Duration::from_secs(u64::from(grace_secs).div_ceil(10) * 10),
        grace: grace.clone(),
        grace_lock: crate::ocf::node_lock_file(&w.runtime_dir, "nfs-grace"),
        runtime_dir: w.runtime_dir,
        roots,
        settle,
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
    match crate::sys::process::spawn_detached(c"statd-hold-nlmg", move || match watch.run() {
        Verdict::End => 0,
        _ => 1,
    }) {
        Ok(p) => {
            log::info!(
                "watching the {clients} notified client(s) reclaim (pid {}): lockd's grace period ends once all are back and its locks are unchanged for {}s",
                p.pid,
                settle.as_secs()
            );
            // The watcher records itself too; this covers a quick stop.
            let mut st =
                load_status(registry, instance).unwrap_or_else(|| status(false, "watching"));
            st.watcher = Some(p);
            save(&st);
        }
        Err(e) => {
            log::warn!("cannot watch the reclaims ({e}); lockd's grace period runs its full time")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs() -> Observation {
        Observation {
            grace_on: Some(true),
            same_grace: true,
            clients: vec![
                Client {
                    name: "10.1.0.2".into(),
                    answered: true,
                    back: true,
                    connected: false,
                },
                Client {
                    name: "10.1.0.3".into(),
                    answered: true,
                    back: true,
                    connected: false,
                },
            ],
            quiet: Duration::from_secs(6),
            others: vec![],
            node: NodeGrace {
                resources: 1,
                keep_timers: vec![],
            },
            connections_ignored: None,
        }
    }

    fn s() -> Duration {
        Duration::from_secs(3)
    }

    #[test]
    fn ends_when_everyone_is_back_and_quiet() {
        assert_eq!(decide(&obs(), s()), (true, Verdict::End));
    }

    #[test]
    fn waits_for_silent_or_absent_clients_and_for_quiet() {
        let mut o = obs();
        o.clients[1].answered = false;
        o.clients[1].back = false;
        let (mine, v) = decide(&o, s());
        assert!(!mine);
        assert!(
            matches!(&v, Verdict::Wait(w) if w.contains("not answered yet: 10.1.0.3")),
            "{v:?}"
        );
        // answered but never sent a lock (none held, or statd knew it):
        // indistinguishable from a slow reclaimer, so wait
        o.clients[1].answered = true;
        let (_, v) = decide(&o, s());
        assert!(
            matches!(&v, Verdict::Wait(w) if w.contains("no lock reclaimed yet by 10.1.0.3")),
            "{v:?}"
        );
        o.clients[1].back = true;
        o.quiet = s() - Duration::from_millis(100);
        let (mine, v) = decide(&o, s());
        assert!(!mine);
        assert!(
            matches!(&v, Verdict::Wait(w) if w.contains("still arriving")),
            "{v:?}"
        );
    }

    #[test]
    fn a_connection_to_lockd_counts_as_back_unless_ignored() {
        // statd monitored the client before the grace: no new record
        let mut o = obs();
        o.clients[1].back = false;
        o.clients[1].connected = true;
        assert_eq!(decide(&o, s()), (true, Verdict::End));
        // the answer is still needed, and the quiet after it
        o.clients[1].answered = false;
        assert!(matches!(decide(&o, s()).1, Verdict::Wait(w) if w.contains("not answered")));
        o.clients[1].answered = true;
        o.quiet = Duration::from_secs(1);
        assert!(matches!(decide(&o, s()).1, Verdict::Wait(w) if w.contains("still arriving")));
        // no record, no connection (a UDP client, or one that holds none):
        // the full grace, and the verdict says why connections did not count
        o.quiet = s();
        o.clients[1].connected = false;
        o.connections_ignored = Some("lockd's age is unknown".into());
        let (_, v) = decide(&o, s());
        assert!(
            matches!(&v, Verdict::Wait(w) if w.contains("no lock reclaimed yet by 10.1.0.3 (connections to lockd not counted: lockd's age is unknown)")),
            "{v:?}"
        );
    }

    #[test]
    fn connections_count_only_from_lockd_on_a_service_address() {
        let c = |l: &str, r: &str| Connection {
            local: l.parse().unwrap(),
            remote: r.parse().unwrap(),
        };
        let ip = |a: &str| a.parse::<IpAddr>().unwrap();
        let conns = [
            c("192.0.2.10:4045", "10.1.0.2:801"),      // lockd, our address
            c("192.0.2.10:2049", "10.2.0.2:700"),      // nfsd, not lockd
            c("192.0.2.11:4045", "10.3.0.2:802"),      // lockd, another service's address
            c("192.0.2.10:4045", "[2001:db8::5]:900"), // second address of "multi"
        ];
        let addrs: BTreeMap<String, Vec<IpAddr>> = [
            ("10.1.0.2", vec![ip("10.1.0.2")]),
            ("c2", vec![ip("10.2.0.2")]),
            ("c3", vec![ip("10.3.0.2")]),
            ("multi", vec![ip("10.9.0.9"), ip("2001:db8::5")]),
            ("unresolved", vec![]),
        ]
        .into_iter()
        .map(|(n, a)| (n.to_string(), a))
        .collect();
        let got = connected_clients(&conns, &[ip("192.0.2.10")], 4045, &addrs);
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            vec!["10.1.0.2".to_string(), "multi".to_string()]
        );
        assert!(connected_clients(&conns, &[ip("192.0.2.10")], 4046, &addrs).is_empty());
    }

    #[test]
    fn connections_count_only_when_lockd_began_this_grace() {
        let g = Duration::from_secs(90);
        assert!(connections_count(Some(Duration::from_secs(5)), g).is_ok());
        // a grace restarted by SIGKILL keeps lockd and its old connections
        let e = connections_count(Some(Duration::from_secs(3600)), g).unwrap_err();
        assert!(e.contains("without a new lockd"), "{e}");
        assert!(connections_count(Some(g), g).is_err());
        assert!(connections_count(None, g).is_err());
        // nlm_grace_period 0: lockd's own length is unknown here
        assert!(connections_count(Some(Duration::from_secs(1)), Duration::ZERO).is_err());
    }

    #[test]
    fn other_services_hold_it() {
        let mut o = obs();
        o.others = vec![("svc2".into(), false), ("svc3".into(), true)];
        let (mine, v) = decide(&o, s());
        assert!(mine, "our own clients are done");
        assert!(
            matches!(&v, Verdict::Wait(w) if w.contains("svc2") && !w.contains("svc3")),
            "{v:?}"
        );
        o.others[0].1 = true;
        o.node.resources = 3;
        assert_eq!(decide(&o, s()), (true, Verdict::End));
        // a service with nfs-grace but no statd-holding
        o.node.resources = 4;
        assert!(matches!(decide(&o, s()).1, Verdict::Wait(w) if w.contains("without one")));
    }

    #[test]
    fn never_when_the_grace_is_not_ours_to_end() {
        type Change = Box<dyn Fn(&mut Observation)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|o| o.grace_on = Some(false)), "over"),
            (Box::new(|o| o.grace_on = None), "unreadable"),
            (Box::new(|o| o.same_grace = false), "another grace period"),
            (Box::new(|o| o.node.resources = 0), "no nfs-grace"),
            (
                Box::new(|o| o.node.keep_timers = vec!["g1".into()]),
                "g1 runs with end_grace_early=false",
            ),
        ];
        for (f, want) in cases {
            let mut o = obs();
            f(&mut o);
            let (mine, v) = decide(&o, s());
            assert!(!mine);
            assert!(
                matches!(&v, Verdict::Never(w) if w.contains(want)),
                "{want}: {v:?}"
            );
        }
    }

    #[test]
    fn no_client_means_done() {
        let mut o = obs();
        o.clients.clear();
        o.quiet = Duration::ZERO;
        // quiet is still required: other services' reclaims move the table
        assert!(matches!(decide(&o, s()).1, Verdict::Wait(_)));
        o.quiet = s();
        assert_eq!(decide(&o, s()), (true, Verdict::End));
    }

    #[test]
    fn digest_counts_lockd_locks_only() {
        let t = "1: POSIX  ADVISORY  WRITE 853 00:23:19 598 598\n\
                 2: POSIX  ADVISORY  WRITE 741 00:12:19 598 598\n\
                 3: POSIX  ADVISORY  READ 741 00:12:19 0 EOF\n\
                 3: -> POSIX  ADVISORY  WRITE 741 00:12:19 0 EOF\n\
                 garbage\n\n";
        let (n, d) = lock_digest(t, Some(741));
        assert_eq!(n, 3);
        // the ordinals do not matter, the locks do
        let renumbered = t.replace("2: POSIX", "7: POSIX");
        assert_eq!(lock_digest(&renumbered, Some(741)), (3, d));
        let changed = t.replace("0 EOF\n3: ->", "1 EOF\n3: ->");
        assert_ne!(lock_digest(&changed, Some(741)).1, d);
        assert_eq!(lock_digest(t, None).0, 4);
    }

    #[test]
    fn statd_rewriting_a_record_changes_its_stamp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("10.1.0.2");
        assert_eq!(stamp(&p), None);
        std::fs::write(&p, "x").unwrap();
        let a = stamp(&p);
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&p, "x").unwrap();
        assert_ne!(stamp(&p), a);
        std::os::unix::fs::symlink(&p, d.path().join("l")).unwrap();
        assert_eq!(stamp(&d.path().join("l")), None);
    }

    #[test]
    fn node_grace_reads_nfs_grace_state() {
        let d = tempfile::tempdir().unwrap();
        let w = |n: &str, j: &str| std::fs::write(d.path().join(n), j).unwrap();
        w(
            "hanfs-nfs-grace-a",
            r#"{"phase":"started","config":{"end_grace_early":true}}"#,
        );
        w(
            "hanfs-nfs-grace-b",
            r#"{"phase":"started","config":{"end_grace_early":false}}"#,
        );
        w("hanfs-nfs-grace-c", "not json");
        w("hanfs-nfs-grace.node", "{}");
        let g = node_grace(d.path());
        assert_eq!(g.resources, 3);
        assert_eq!(g.keep_timers, vec!["b".to_string()]);
        let id = GraceId::now(d.path());
        assert_eq!(GraceId::now(d.path()), id);
        std::thread::sleep(Duration::from_millis(20));
        w("hanfs-nfs-grace-a", "{}");
        assert_ne!(GraceId::now(d.path()).graces, id.graces);
    }

    #[test]
    fn status_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let r = Registry::at(d.path());
        assert_eq!(load_status(&r, "svc/1"), None);
        let st = Status {
            grace: GraceId {
                lockd: None,
                graces: 7,
            },
            done: true,
            watcher: None,
            verdict: "x".into(),
            ended_at: Some(1.5),
            history: vec!["1.0 watching".into()],
        };
        save_status(&r, "svc/1", &st).unwrap();
        assert_eq!(load_status(&r, "svc/1"), Some(st));
        // not a registration
        assert!(r.list().is_empty());
        remove_status(&r, "svc/1");
        assert_eq!(load_status(&r, "svc/1"), None);
    }

    #[test]
    fn monitored_since_counts_records_statd_wrote_in_this_grace() {
        let d = tempfile::tempdir().unwrap();
        let (rt, sm) = (d.path().join("rt"), d.path().join("sm"));
        std::fs::create_dir_all(&rt).unwrap();
        std::fs::create_dir_all(&sm).unwrap();
        let names = || ["old", "new", "absent"].map(String::from);
        // no nfs-grace on the node: nobody counts
        assert!(monitored_since(&Watch::baseline(&sm, names()), grace_began(&rt)).is_empty());
        std::fs::write(sm.join("old"), "x").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(rt.join("hanfs-nfs-grace-a"), "{}").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(sm.join("new"), "x").unwrap();
        let began = grace_began(&rt);
        assert!(began.is_some());
        let got = monitored_since(&Watch::baseline(&sm, names()), began);
        assert_eq!(got.into_iter().collect::<Vec<_>>(), vec!["new".to_string()]);
        // a later nfs-grace start begins another grace: "new" is old then
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(rt.join("hanfs-nfs-grace-b"), "{}").unwrap();
        assert!(monitored_since(&Watch::baseline(&sm, names()), grace_began(&rt)).is_empty());
    }
}
