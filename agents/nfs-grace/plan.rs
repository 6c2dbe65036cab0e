//! nfs-grace's policy for sharing a node: what start and stop do about
//! the other nfs-grace resources here, decided from what the node records
//! (no I/O), and carried out by the actions.
//!
//! One node, one nfsd, one nfsdcld, one database. The first service on a
//! node has nfsdcld serve its recovery_dir; each service that joins merges
//! its records into that database and restarts nfsd (a new grace period
//! for everyone), and keeps a copy of the database in its own
//! recovery_dir. A service that leaves takes its copy; if nfsdcld served
//! its recovery_dir, nfsdcld moves to another service's copy (nfsd
//! restarts); else nfsd keeps running unless NFSv4 state pins the
//! leaving service's file system. Once nfsd runs, [`end_nlm_grace_now`]
//! is the monitor's one decision about grace.

use crate::state::{Config, NodeCld, NodeSettings, Phase, State};
use hanfs::ocf::{OcfError, OcfResult};
use hanfs::sys::nfsd::{GraceState, NfsdVersions};
use hanfs::sys::procs::ProcId;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a start does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartPlan {
    /// Started with these settings, and nfsd and nfsdcld run: nothing to do.
    AlreadyStarted,
    Start(Start),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// The database nfsdcld is to serve: the one it already serves for the
    /// other services, else this service's.
    pub serving: PathBuf,
    /// The other recovery_dirs (this service's too, unless served): merged
    /// into `serving` before nfsd starts, copies of it afterwards.
    pub copies: Vec<PathBuf>,
    /// Why nfsd, when found running, is restarted.
    pub if_running: Restart,
}

/// Why a start restarts an nfsd it finds running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restart {
    /// A start of this resource that did not complete, or was undone.
    EarlierStart,
    /// No nfs-grace resource runs it.
    Outsider,
    /// It serves these resources, whose clients get a new grace period.
    NewGraceFor(Vec<String>),
}

impl Restart {
    pub fn warning(&self) -> String {
        match self {
            Restart::EarlierStart => "nfsd runs from an earlier start of this resource that is no longer intact; restarting it".into(),
            Restart::Outsider => "nfsd is already running outside this resource's control; restarting it with this resource's settings".into(),
            Restart::NewGraceFor(names) => format!(
                "restarting nfsd for a new grace period: the clients of {} lose their server state and must reclaim it",
                names.join(", ")
            ),
        }
    }
}

/// The start of `cfg`, given this resource's state (`None` when absent or
/// damaged), the other resources on the node, the node's nfsdcld (if it
/// is alive) and whether nfsd has threads. Refused (code 1) when another
/// resource runs nfsd with other node settings.
pub fn start(
    cfg: &Config,
    me: Option<&State>,
    others: &[(String, State)],
    node: Option<&NodeCld>,
    nfsd_up: bool,
) -> OcfResult<StartPlan> {
    if let Some(st) = me {
        if st.phase == Phase::Started
            && st.config.node == cfg.node
            && st.config.recovery_dir == cfg.recovery_dir
            && nfsd_up
            && node.is_some()
        {
            return Ok(StartPlan::AlreadyStarted);
        }
    }
    for (inst, st) in others {
        if let Some(diff) = cfg.node.difference(&st.config.node) {
            return Err(OcfError::generic(format!(
                "nfsd on this node already serves nfs-grace resource {inst} with other settings ({diff}): one node has one nfsd; give every nfs-grace resource that may share a node the same settings"
            )));
        }
    }
    let serving = match node {
        Some(n) if !others.is_empty() => n.storage.clone(),
        _ => cfg.recovery_dir.clone(),
    };
    let if_running = if me.is_some() {
        Restart::EarlierStart
    } else if others.is_empty() {
        Restart::Outsider
    } else {
        Restart::NewGraceFor(names(others))
    };
    Ok(StartPlan::Start(Start {
        copies: record_dirs(others, Some(&cfg.recovery_dir), &serving),
        serving,
        if_running,
    }))
}

/// What a stop does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopPlan {
    /// The last resource on the node leaves: nfsd stops, and nfsdcld (the
    /// node's, and any on this recovery_dir).
    Last { nfsdcld: Option<ProcId> },
    /// nfsdcld serves this service's recovery_dir while others stay: it
    /// moves to the copy of `to` (the first of `copies`), which takes an
    /// nfsd restart, i.e. a new grace period for `others`.
    MoveDatabase {
        from: NodeCld,
        to: Config,
        copies: Vec<PathBuf>,
        others: Vec<String>,
    },
    /// Others stay and nfsdcld serves elsewhere (or has exited).
    Leave(Leave),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leave {
    pub others: Vec<String>,
    /// The serving database, to copy to this service's recovery_dir: its
    /// clients' latest records go with the service.
    pub save_from: Option<PathBuf>,
    /// An nfsdcld on this recovery_dir would not be the node's: stop it.
    pub stop_stray_nfsdcld: bool,
    /// The node's nfsdcld, for nfsd to take again if it restarts.
    pub nfsdcld: Option<ProcId>,
}

/// The stop of a resource started with `started`, given the other
/// resources on the node and the node's nfsdcld (and whether it is alive).
pub fn stop(
    started: &Config,
    others: &[(String, State)],
    node: Option<&NodeCld>,
    nfsdcld_alive: bool,
) -> StopPlan {
    if others.is_empty() {
        return StopPlan::Last {
            nfsdcld: node.map(|n| n.nfsdcld),
        };
    }
    let mine = &started.recovery_dir;
    let node = node.filter(|_| nfsdcld_alive);
    let copies = record_dirs(others, None, mine);
    match node {
        Some(n) if n.storage == *mine && !copies.is_empty() => {
            let to = others
                .iter()
                .map(|(_, s)| &s.config)
                .find(|c| c.recovery_dir == copies[0])
                .expect("copies come from others")
                .clone();
            StopPlan::MoveDatabase {
                from: n.clone(),
                to,
                copies,
                others: names(others),
            }
        }
        _ => StopPlan::Leave(Leave {
            others: names(others),
            save_from: node
                .filter(|n| n.storage != *mine)
                .map(|n| n.storage.clone()),
            stop_stray_nfsdcld: !node.is_some_and(|n| n.storage == *mine),
            nfsdcld: node.map(|n| n.nfsdcld),
        }),
    }
}

/// What becomes of nfsd when a service leaves and others stay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NfsdAfterLeave {
    /// It keeps running: the others' clients keep their state.
    Keep,
    /// NFSv4 state remains on these unexported file systems (devices):
    /// before Linux ~6.9 nothing else releases it, and the file system
    /// could not be unmounted. Or (6.9+) `revoked` states that
    /// unlock_filesystem revoked are not yet freed by their clients: they
    /// name no file system but keep theirs busy. A restart drops both,
    /// and gives the others' clients a new grace period.
    Restart {
        pinned: Vec<(u32, u32)>,
        revoked: usize,
    },
}

/// nfsd's fate, from the devices with NFSv4 state that are not exported
/// and the revoked states still held.
pub fn nfsd_after_leave(pinned: Vec<(u32, u32)>, revoked: usize) -> NfsdAfterLeave {
    if pinned.is_empty() && revoked == 0 {
        NfsdAfterLeave::Keep
    } else {
        NfsdAfterLeave::Restart { pinned, revoked }
    }
}

impl NfsdAfterLeave {
    /// What holds the file systems, for the log: "devices 8:1, 8:2; 2
    /// revoked states their clients have not freed" (empty for `Keep`).
    pub fn held(&self) -> String {
        let NfsdAfterLeave::Restart { pinned, revoked } = self else {
            return String::new();
        };
        let mut held: Vec<String> = Vec::new();
        if !pinned.is_empty() {
            let devs: Vec<String> = pinned.iter().map(|(a, b)| format!("{a}:{b}")).collect();
            held.push(format!("devices {}", devs.join(", ")));
        }
        if *revoked > 0 {
            held.push(format!(
                "{revoked} revoked states their clients have not freed"
            ));
        }
        held.join("; ")
    }
}

/// How long a leaving service waits for the clients to free the NFSv4
/// states that unlock_filesystem revoked (Linux 6.9 and later; a revoked
/// state keeps its file system busy until its client frees it, which an
/// active client does at its next SEQUENCE): `None` when none is held
/// (kernels that do not revoke, or nothing to free), else min(lease time,
/// 10 s) and at most half the `remaining` time of the stop.
pub fn revoked_wait(revoked: usize, lease_time: u32, remaining: Duration) -> Option<Duration> {
    (revoked > 0).then(|| Duration::from_secs(u64::from(lease_time.min(10))).min(remaining / 2))
}

/// The one early end of lockd's grace that is safe to decide here: the
/// NFSv4 grace is over (the kernel ended it, every recorded client having
/// reclaimed, or its time ran out) and nfsd serves no NFSv3, so no NLM
/// reclaim can arrive through it; the NLM grace would only hold up new
/// NFSv4 locks. (Unknown versions count as serving NFSv3.)
pub fn end_nlm_grace_now(enabled: bool, g: &GraceState, versions: &NfsdVersions) -> bool {
    enabled
        && g.nfsd_running
        && !g.v4
        && g.nlm == Some(true)
        && !versions.entries.is_empty()
        && !versions.needs_lockd()
}

/// One node has one nfsd: every resource sharing it must agree on these.
impl NodeSettings {
    /// The first parameter in which `other` differs, as "name=ours vs theirs".
    pub fn difference(&self, other: &NodeSettings) -> Option<String> {
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

fn names(others: &[(String, State)]) -> Vec<String> {
    others.iter().map(|(i, _)| i.clone()).collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use hanfs::ocf::OcfCode;

    fn cfg(dir: &str) -> Config {
        Config {
            node: NodeSettings {
                lease_time: 90,
                grace_time: 90,
                nlm_grace_time: 90,
                server_scope: "hanfs".into(),
            },
            recovery_dir: dir.into(),
            threads: 8,
            end_grace_early: true,
        }
    }

    fn state(phase: Phase, dir: &str) -> State {
        State {
            phase,
            config: cfg(dir),
        }
    }

    fn other(inst: &str, dir: &str) -> (String, State) {
        (inst.into(), state(Phase::Started, dir))
    }

    fn cld(pid: i32, dir: &str) -> NodeCld {
        NodeCld {
            nfsdcld: ProcId { pid, start: 1 },
            storage: dir.into(),
        }
    }

    fn paths(v: &[&str]) -> Vec<PathBuf> {
        v.iter().map(PathBuf::from).collect()
    }

    fn started(p: OcfResult<StartPlan>) -> Start {
        match p.unwrap() {
            StartPlan::Start(s) => s,
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn alone_on_the_node_nfsdcld_serves_this_service() {
        let a = cfg("/a/cld");
        let s = started(start(&a, None, &[], None, false));
        assert_eq!(s.serving, PathBuf::from("/a/cld"));
        assert!(s.copies.is_empty());
        assert_eq!(s.if_running, Restart::Outsider);
        assert!(s
            .if_running
            .warning()
            .contains("outside this resource's control"));
        // alone, the database is this service's, whatever nfsdcld served
        let s = started(start(&a, None, &[], Some(&cld(9, "/b/cld")), true));
        assert_eq!(s.serving, PathBuf::from("/a/cld"));
    }

    #[test]
    fn started_with_the_same_settings_and_running_is_already_started() {
        let a = cfg("/a/cld");
        let me = state(Phase::Started, "/a/cld");
        let n = cld(9, "/a/cld");
        assert_eq!(
            start(&a, Some(&me), &[], Some(&n), true).unwrap(),
            StartPlan::AlreadyStarted
        );
        // changed end_grace_early or threads: still the same start
        let mut b = a.clone();
        b.threads = 16;
        b.end_grace_early = false;
        assert_eq!(
            start(&b, Some(&me), &[], Some(&n), true).unwrap(),
            StartPlan::AlreadyStarted
        );
    }

    #[test]
    fn an_incomplete_or_changed_start_starts_again() {
        let a = cfg("/a/cld");
        let n = cld(9, "/a/cld");
        let me = state(Phase::Started, "/a/cld");
        for (me, node, nfsd_up, why) in [
            (state(Phase::Starting, "/a/cld"), Some(&n), true, "starting"),
            (me.clone(), None, true, "nfsdcld gone"),
            (me.clone(), Some(&n), false, "nfsd stopped"),
            (
                state(Phase::Started, "/old/cld"),
                Some(&n),
                true,
                "moved dir",
            ),
        ] {
            let s = started(start(&a, Some(&me), &[], node, nfsd_up));
            assert_eq!(s.if_running, Restart::EarlierStart, "{why}");
            assert!(s.if_running.warning().contains("earlier start"), "{why}");
        }
        let mut scope = state(Phase::Started, "/a/cld");
        scope.config.node.server_scope = "other".into();
        let s = started(start(&a, Some(&scope), &[], Some(&n), true));
        assert_eq!(s.serving, PathBuf::from("/a/cld"));
    }

    #[test]
    fn a_damaged_own_state_starts_afresh() {
        // read_state's error becomes None: no "already started"
        let a = cfg("/a/cld");
        let s = started(start(&a, None, &[], Some(&cld(9, "/a/cld")), true));
        assert_eq!(s.if_running, Restart::Outsider);
        let others = [other("svc1", "/b/cld")];
        let s = started(start(&a, None, &others, Some(&cld(9, "/b/cld")), true));
        assert_eq!(s.if_running, Restart::NewGraceFor(vec!["svc1".into()]));
    }

    #[test]
    fn a_second_service_joins_the_serving_database() {
        let b = cfg("/b/cld");
        let others = [other("svc1", "/a/cld")];
        let s = started(start(&b, None, &others, Some(&cld(9, "/a/cld")), true));
        assert_eq!(s.serving, PathBuf::from("/a/cld"));
        assert_eq!(s.copies, paths(&["/b/cld"]), "merged in, then mirrored");
        assert_eq!(
            s.if_running.warning(),
            "restarting nfsd for a new grace period: the clients of svc1 lose their server state and must reclaim it"
        );
        // a third: every other copy, sorted, each once
        let c = cfg("/c/cld");
        let others = [
            other("svc1", "/a/cld"),
            other("svc2", "/b/cld"),
            other("svc3", "/b/cld"),
        ];
        let s = started(start(&c, None, &others, Some(&cld(9, "/a/cld")), true));
        assert_eq!(s.copies, paths(&["/b/cld", "/c/cld"]));
        assert!(s.if_running.warning().contains("svc1, svc2, svc3"));
    }

    #[test]
    fn others_without_a_live_nfsdcld_get_this_services_database() {
        let b = cfg("/b/cld");
        let others = [other("svc1", "/a/cld")];
        let s = started(start(&b, None, &others, None, true));
        assert_eq!(s.serving, PathBuf::from("/b/cld"));
        assert_eq!(s.copies, paths(&["/a/cld"]));
    }

    #[test]
    fn a_service_with_other_node_settings_is_refused() {
        let mut b = cfg("/b/cld");
        b.node.server_scope = "other".into();
        let others = [other("svc1", "/a/cld")];
        let e = start(&b, None, &others, Some(&cld(9, "/a/cld")), true).unwrap_err();
        assert_eq!(e.code, OcfCode::ErrGeneric);
        assert!(
            e.reason.starts_with(
                "nfsd on this node already serves nfs-grace resource svc1 with other settings (server_scope=\"other\" here, \"hanfs\" there)"
            ),
            "{e}"
        );
        // per-resource settings may differ
        let mut c = cfg("/c/cld");
        c.threads = 2;
        c.end_grace_early = false;
        assert!(start(&c, None, &others, None, true).is_ok());
    }

    #[test]
    fn the_last_one_stops_nfsd_and_nfsdcld() {
        let a = cfg("/a/cld");
        let n = cld(9, "/a/cld");
        for alive in [true, false] {
            assert_eq!(
                stop(&a, &[], Some(&n), alive),
                StopPlan::Last {
                    nfsdcld: Some(n.nfsdcld)
                }
            );
        }
        assert_eq!(stop(&a, &[], None, false), StopPlan::Last { nfsdcld: None });
    }

    #[test]
    fn leaving_while_nfsdcld_serves_elsewhere_takes_the_records_along() {
        let b = cfg("/b/cld");
        let others = [other("svc1", "/a/cld")];
        let n = cld(9, "/a/cld");
        assert_eq!(
            stop(&b, &others, Some(&n), true),
            StopPlan::Leave(Leave {
                others: vec!["svc1".into()],
                save_from: Some("/a/cld".into()),
                stop_stray_nfsdcld: true,
                nfsdcld: Some(n.nfsdcld),
            })
        );
        // nfsdcld exited: nothing to save from, nothing to check
        assert_eq!(
            stop(&b, &others, Some(&n), false),
            StopPlan::Leave(Leave {
                others: vec!["svc1".into()],
                save_from: None,
                stop_stray_nfsdcld: true,
                nfsdcld: None,
            })
        );
    }

    #[test]
    fn the_database_moves_when_its_service_leaves() {
        let a = cfg("/a/cld");
        let others = [other("svc3", "/c/cld"), other("svc2", "/b/cld")];
        let n = cld(9, "/a/cld");
        let StopPlan::MoveDatabase {
            from,
            to,
            copies,
            others: names,
        } = stop(&a, &others, Some(&n), true)
        else {
            panic!()
        };
        assert_eq!(from, n);
        assert_eq!(to.recovery_dir, PathBuf::from("/b/cld"), "the first copy");
        assert_eq!(copies, paths(&["/b/cld", "/c/cld"]));
        assert_eq!(names, ["svc3", "svc2"]);
        // with its nfsdcld dead, there is nothing to move: a stray on
        // this recovery_dir is stopped
        let StopPlan::Leave(l) = stop(&a, &others, Some(&n), false) else {
            panic!()
        };
        assert!(l.stop_stray_nfsdcld && l.save_from.is_none());
    }

    #[test]
    fn others_sharing_this_recovery_dir_keep_nfsdcld_on_it() {
        let a = cfg("/a/cld");
        let others = [other("svc2", "/a/cld")];
        let n = cld(9, "/a/cld");
        assert_eq!(
            stop(&a, &others, Some(&n), true),
            StopPlan::Leave(Leave {
                others: vec!["svc2".into()],
                save_from: None,
                stop_stray_nfsdcld: false,
                nfsdcld: Some(n.nfsdcld),
            })
        );
    }

    #[test]
    fn nfsd_restarts_only_to_release_pinned_file_systems() {
        assert_eq!(nfsd_after_leave(vec![], 0), NfsdAfterLeave::Keep);
        assert_eq!(NfsdAfterLeave::Keep.held(), "");
        let pinned = nfsd_after_leave(vec![(7, 1), (8, 2)], 0);
        assert_eq!(
            pinned,
            NfsdAfterLeave::Restart {
                pinned: vec![(7, 1), (8, 2)],
                revoked: 0
            }
        );
        assert_eq!(pinned.held(), "devices 7:1, 8:2");
        let revoked = nfsd_after_leave(vec![], 2);
        assert_eq!(
            revoked,
            NfsdAfterLeave::Restart {
                pinned: vec![],
                revoked: 2
            }
        );
        assert_eq!(
            revoked.held(),
            "2 revoked states their clients have not freed"
        );
        assert_eq!(
            nfsd_after_leave(vec![(7, 1)], 1).held(),
            "devices 7:1; 1 revoked states their clients have not freed"
        );
    }

    #[test]
    fn revoked_states_are_awaited_briefly_and_only_when_held() {
        let s = Duration::from_secs;
        assert_eq!(
            revoked_wait(0, 90, s(60)),
            None,
            "nothing revoked (before 6.9)"
        );
        assert_eq!(revoked_wait(3, 90, s(60)), Some(s(10)), "at most 10 s");
        assert_eq!(revoked_wait(3, 10, s(60)), Some(s(10)));
        assert_eq!(revoked_wait(1, 90, s(8)), Some(s(4)), "half the time left");
        assert_eq!(revoked_wait(1, 90, s(0)), Some(s(0)));
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
        for (enabled, grace, versions, why) in [
            (false, g(false, Some(true)), &v4only, "disabled"),
            (
                true,
                g(false, Some(true)),
                &v3,
                "NFSv3 clients may still reclaim",
            ),
            (true, g(true, Some(true)), &v4only, "NFSv4 grace still on"),
            (true, g(false, Some(false)), &v4only, "nothing to end"),
            (true, g(false, None), &v4only, "no lockd grace file"),
            (
                true,
                g(false, Some(true)),
                &NfsdVersions::default(),
                "versions unknown",
            ),
        ] {
            assert!(!end_nlm_grace_now(enabled, &grace, versions), "{why}");
        }
        let stopped = GraceState {
            nfsd_running: false,
            v4: false,
            nlm: Some(true),
        };
        assert!(!end_nlm_grace_now(true, &stopped, &v4only), "nfsd stopped");
    }

    #[test]
    fn node_settings_must_agree() {
        let a = cfg("/a/cld");
        let mut b = cfg("/b/cld");
        b.threads = 16;
        b.end_grace_early = false;
        assert_eq!(
            a.node.difference(&b.node),
            None,
            "threads, end_grace_early and recovery_dir are per resource"
        );
        for (change, want) in [
            (
                &(|n: &mut NodeSettings| n.lease_time = 60) as &dyn Fn(&mut NodeSettings),
                "lease_time=90 here, 60 there",
            ),
            (
                &|n: &mut NodeSettings| n.grace_time = 120,
                "grace_time=90 here, 120 there",
            ),
            (
                &|n: &mut NodeSettings| n.nlm_grace_time = 30,
                "nlm_grace_time=90 here, 30 there",
            ),
            (
                &|n: &mut NodeSettings| n.server_scope = "other".into(),
                "server_scope=\"hanfs\" here, \"other\" there",
            ),
        ] {
            let mut c = cfg("/a/cld");
            change(&mut c.node);
            assert_eq!(a.node.difference(&c.node).as_deref(), Some(want));
        }
    }
}
